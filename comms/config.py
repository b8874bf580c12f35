"""Settings from environment variables, else `.streamlit/secrets.toml`, else defaults.

Secrets (passwords, tokens) are read here and handed to the senders; they are
never stored in the database, logged or shown. A malformed setting raises
ConfigError naming the variable (or the secrets.toml key) and what it should
be, never the value itself: a password pasted into the wrong variable must not
end up in a terminal, a log file or the action log.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from comms.errors import ConfigError
from comms.i18n import N_, _

ROOT = Path(__file__).resolve().parent.parent


def secrets_path() -> Path:
    return Path(os.environ.get("COMMS_SECRETS", ROOT / ".streamlit" / "secrets.toml"))


@lru_cache(maxsize=4)
def _load_secrets(path: str, mtime: float) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def secrets() -> dict[str, Any]:
    """The parsed secrets.toml, or {} when there is none (re-read when it changes)."""
    path = secrets_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    try:
        return _load_secrets(str(path), mtime)
    except tomllib.TOMLDecodeError as exc:
        # The parser's message may quote the broken text (a secret, perhaps): only the place.
        where = re.search(r"line (\d+)", str(exc))
        if where:
            text = _(
                "{path} is not valid TOML at line {line}: fix it (see "
                ".streamlit/secrets.toml.example) or remove it."
            )
        else:
            text = _(
                "{path} is not valid TOML: fix it (see .streamlit/secrets.toml.example) "
                "or remove it."
            )
        raise ConfigError(text.format(path=path, line=where and where.group(1))) from None
    except OSError as exc:
        raise ConfigError(
            _("{path} cannot be read: {reason}.").format(path=path, reason=exc.strerror)
        ) from None


def _lookup(env: str, section: str | None, key: str | None) -> tuple[Any, str]:
    """The raw value and the name a person knows it by (the variable, or the TOML key)."""
    value = os.environ.get(env)
    if value not in (None, ""):
        return value, env
    if section and key:
        table = secrets().get(section, {})
        value = table.get(key) if isinstance(table, dict) else None
        if value not in (None, ""):
            return value, _("{key} in [{section}] of {file} ({env})").format(
                key=key, section=section, file=secrets_path().name, env=env
            )
    return None, env


def setting(
    env: str, section: str | None = None, key: str | None = None, default: Any = None
) -> Any:
    """$ENV, else secrets[section][key], else default."""
    value, _ = _lookup(env, section, key)
    return default if value is None else value


def _number(raw: Any, whole: bool) -> float | int | None:
    """A setting as a number, or None when it is not one (booleans are not numbers)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        value = raw
    else:
        text = str(raw).strip()
        if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            return None
        value = float(text)
    if not math.isfinite(value):
        return None
    if whole:
        return int(value) if value.is_integer() else None
    return value


def int_setting(
    env: str,
    section: str | None,
    key: str | None,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    unit: str = "",
) -> int:
    """A whole-number setting; ConfigError naming it (never its value) when it is not one."""
    return int(_number_setting(env, section, key, default, True, minimum, maximum, unit))


def float_setting(
    env: str,
    section: str | None,
    key: str | None,
    default: float,
    *,
    minimum: float | None = 0,
    maximum: float | None = None,
    unit: str = "",
) -> float:
    """A number setting (decimals allowed); ConfigError naming it (never its value)."""
    return float(_number_setting(env, section, key, default, False, minimum, maximum, unit))


def _number_setting(
    env: str,
    section: str | None,
    key: str | None,
    default: float,
    whole: bool,
    minimum: float | None,
    maximum: float | None,
    unit: str,
) -> float:
    raw, name = _lookup(env, section, key)
    if raw is None:
        return default
    value = _number(raw, whole=whole)
    if (
        value is None
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        raise ConfigError(_refusal(name, whole, unit, minimum, maximum, default))
    return value


# What a number setting must be, in the viewer's language; another unit reads in English.
_WHAT = {
    (True, ""): N_("a whole number"),
    (False, ""): N_("a number"),
    (True, "megabytes"): N_("a whole number of megabytes"),
    (True, "kilobytes"): N_("a whole number of kilobytes"),
    (True, "rows"): N_("a whole number of rows"),
    (True, "columns"): N_("a whole number of columns"),
    (False, "seconds"): N_("a number of seconds"),
}


def _refusal(name: str, whole: bool, unit: str, minimum: Any, maximum: Any, default: Any) -> str:
    """'COMMS_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1, e.g. 50.'

    The numbers are written as a setting takes them (a decimal point), in any language.
    """
    kind = _WHAT[(whole, "")]
    what = _WHAT.get((whole, unit)) or (f"{kind} of {unit}" if unit else kind)
    if minimum is not None and maximum is not None:
        text = _("{name} must be {what} from {minimum} to {maximum}, e.g. {example}.")
    elif minimum is not None:
        text = _("{name} must be {what}, at least {minimum}, e.g. {example}.")
    elif maximum is not None:
        text = _("{name} must be {what}, at most {maximum}, e.g. {example}.")
    else:
        text = _("{name} must be {what}, e.g. {example}.")
    return text.format(name=name, what=_(what), minimum=minimum, maximum=maximum, example=default)


def default_region() -> str:
    """Region used to parse phone numbers written without a country code."""
    region = str(setting("COMMS_REGION", "comms", "region", "CZ")).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise ConfigError(_("COMMS_REGION must be a two-letter country code, e.g. CZ."))
    return region


def max_upload_bytes() -> int:
    """Largest client list accepted, in bytes (default 50 MB)."""
    mb = int_setting(
        "COMMS_MAX_UPLOAD_MB", "comms", "max_upload_mb", 50, minimum=1, unit="megabytes"
    )
    return mb * 1024 * 1024


def max_rows() -> int:
    """Most data rows a client list may have (default 1,000,000)."""
    return int_setting("COMMS_MAX_ROWS", "comms", "max_rows", 1_000_000, minimum=1, unit="rows")


def max_columns() -> int:
    """Most columns a client list may have (default 1,000)."""
    return int_setting("COMMS_MAX_COLUMNS", "comms", "max_columns", 1000, minimum=1, unit="columns")


def max_unpacked_bytes() -> int:
    """Most bytes the XML inside an XLSX workbook may unpack to (default 500 MB)."""
    mb = int_setting(
        "COMMS_MAX_XLSX_UNPACKED_MB",
        "comms",
        "max_xlsx_unpacked_mb",
        500,
        minimum=1,
        unit="megabytes",
    )
    return mb * 1024 * 1024


def render_seconds() -> float:
    """CPU seconds one message's render may take (COMMS_RENDER_SECONDS, default 0.5)."""
    return float_setting(
        "COMMS_RENDER_SECONDS", "comms", "render_seconds", 0.5, minimum=0.01, unit="seconds"
    )


def render_max_bytes() -> int:
    """Most text one message's render may make (COMMS_RENDER_MAX_KB, default 1024: 1 MB)."""
    kb = int_setting(
        "COMMS_RENDER_MAX_KB", "comms", "render_max_kb", 1024, minimum=1, unit="kilobytes"
    )
    return kb * 1024
