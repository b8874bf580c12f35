"""Settings from environment variables, else `.streamlit/secrets.toml`, else defaults.

Secrets (passwords, tokens) are read here and handed to the senders; they are
never stored in the database, logged or shown.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    return _load_secrets(str(path), mtime)


def setting(
    env: str, section: str | None = None, key: str | None = None, default: Any = None
) -> Any:
    """$ENV, else secrets[section][key], else default."""
    value = os.environ.get(env)
    if value not in (None, ""):
        return value
    if section and key:
        value = secrets().get(section, {}).get(key)
        if value not in (None, ""):
            return value
    return default


def int_setting(env: str, section: str | None, key: str | None, default: int) -> int:
    return int(setting(env, section, key, default))


def default_region() -> str:
    """Region used to parse phone numbers written without a country code."""
    return str(setting("COMMS_REGION", "comms", "region", "CZ")).upper()


def max_upload_bytes() -> int:
    """Largest client list accepted, in bytes (default 50 MB)."""
    return int_setting("COMMS_MAX_UPLOAD_MB", "comms", "max_upload_mb", 50) * 1024 * 1024
