"""The viewer's language: gettext catalogues, Babel formatting and collation.

Everything a person reads goes through `_()` (or `ngettext()`), in the language
of whoever is looking: the browser session's choice in the app, LANG / LC_ALL or
`--lang` in the CLI. English is the default when nothing says otherwise. Stored
data is never translated: reasons and actions are stored as codes (English
msgids) and translated when shown, so switching language changes nothing in the
database.

Catalogues: `comms/locale/<lang>/LC_MESSAGES/*.po`, one per area of the app
(pages, core, CLI), extracted and compiled with Babel; a `.mo` older than its
`.po`, or missing, is compiled in memory on first use.
"""

from __future__ import annotations

import contextvars
import gettext
import os
import threading
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "comms"
LANGUAGES: dict[str, str] = {"en": "English", "cs": "Čeština"}
DEFAULT = "en"
# Babel locale per language: the formats of numbers, dates and sizes.
_BABEL = {"en": "en_US", "cs": "cs_CZ"}
# DuckDB ICU collation per language (Č after C, "Ch" after H, Ř after R ... in Czech).
COLLATIONS = {"en": "en", "cs": "cs"}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("comms_language", default=DEFAULT)


def normalise(tag: str | None) -> str | None:
    """'cs-CZ', 'cs_CZ.UTF-8', 'CS' -> 'cs'; None for a language we do not have."""
    if not tag:
        return None
    code = tag.replace("-", "_").split(".")[0].split("_")[0].strip().lower()
    return code if code in LANGUAGES else None


def from_environment(environ: dict[str, str] | None = None) -> str:
    """The language LC_ALL, LC_MESSAGES or LANG ask for (in that order), else English."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:  # the first one set decides, as in POSIX
            return normalise(value) or DEFAULT
    return DEFAULT


def set_language(lang: str | None) -> str:
    """Use `lang` in this thread / script run (unknown -> English); returns the one in use."""
    chosen = normalise(lang) or DEFAULT
    _current.set(chosen)
    return chosen


def language() -> str:
    """The language in use in this thread / script run."""
    return _current.get()


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    """Every catalogue of `lang` (one .po per area of the app), chained as one."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    chain: gettext.NullTranslations | None = None
    for po in sorted(folder.glob("*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            with mo.open("rb") as fh:
                part = gettext.GNUTranslations(fh)
        else:
            part = gettext.GNUTranslations(_compile(po))
        if chain is None:
            chain = part
        else:
            chain.add_fallback(part)
    return chain or gettext.NullTranslations()


def _compile(po: Path):
    """A .po file compiled in memory (Babel), as a file object gettext can read."""
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return buf


def _(message: str) -> str:
    """`message` in the viewer's language."""
    return _translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message for n, in the viewer's language."""
    return _translations(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark for extraction"
    """Mark a code (a stored reason, an action name) for the catalogue; translate it later."""
    return message


def has_translation(message: str, lang: str) -> bool:
    """Whether a catalogue of `lang` translates `message` (for the coverage test)."""
    part: gettext.NullTranslations | None = _translations(lang)
    while part is not None:
        if isinstance(part, gettext.GNUTranslations) and (
            part._catalog.get(message) or part._catalog.get((message, 0))  # plural entries
        ):
            return True
        part = part._fallback
    return False


def shown_code(code: Any) -> str:
    """A stored code (status, reason, action, source) in the viewer's language.

    Reasons may carry a detail after a colon ("invalid e-mail: no @"; "missing
    field: name"): the named part is translated, the detail is data and stays.
    English: the code itself.
    """
    if code is None or (isinstance(code, float) and code != code):
        return ""
    text = str(code)
    if language() == DEFAULT or not text:
        return text
    translated = _(text)
    if translated != text:
        return translated
    head, sep, detail = text.partition(": ")
    if sep:
        template = head + ": {" + ("field" if head == "missing field" else "error") + "}"
        if _(template) != template:
            return _(template).replace("{field}", detail).replace("{error}", detail)
        return f"{_(head)}: {detail}"
    return text


# -- formatting -----------------------------------------------------------------------


def babel_locale(lang: str | None = None) -> Locale:
    """The Babel locale of a language (the viewer's by default)."""
    try:
        return Locale.parse(_BABEL.get(lang or language(), "en_US"))
    except UnknownLocaleError:  # pragma: no cover - both are in Babel's data
        return Locale.parse("en_US")


def number(value: float | int | None, digits: int | None = None) -> str:
    """A number with the locale's grouping: '1,234,567' in English, '1 234 567' in Czech."""
    if value is None:
        return ""
    if digits is None and float(value).is_integer():
        return babel_numbers.format_decimal(int(value), locale=babel_locale())
    fmt = None if digits is None else "#,##0." + "0" * digits
    return babel_numbers.format_decimal(value, format=fmt, locale=babel_locale())


def format_date(value: date | None) -> str:
    """A date in the locale's short form: '1. 12. 2026' in Czech, '12/1/26' in English."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return babel_dates.format_date(value, format=_DATE[language()], locale=babel_locale())


def format_datetime(value: datetime | None) -> str:
    """A date and time: '1. 12. 2026 14:05' in Czech, 'Dec 1, 2026, 2:05 PM' in English."""
    if value is None:
        return ""
    return babel_dates.format_datetime(value, format=_DATETIME[language()], locale=babel_locale())


_DATE = {"en": "MMM d, y", "cs": "d. M. y"}
_DATETIME = {"en": "MMM d, y, HH:mm", "cs": "d. M. y HH:mm"}
# Column formats for st.column_config (moment.js-style tokens): dates in tables.
TABLE_DATETIME = {"en": "MMM D, YYYY, HH:mm", "cs": "D. M. YYYY HH:mm"}


def size(n_bytes: int | None) -> str:
    """A file size: '1.5 MB' in English, '1,5 MB' in Czech."""
    if n_bytes is None:
        return ""
    value, unit = float(n_bytes), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    digits = 0 if unit == "B" else 1
    return f"{number(round(value, digits), digits if digits and value % 1 else None)} {unit}"


def collation(lang: str | None = None) -> str:
    """The DuckDB ICU collation that sorts names and cities the language's way."""
    return COLLATIONS.get(lang or language(), "en")


_SORTER: list = []  # one in-memory DuckDB for sorted_texts (a connect costs ~13 ms)
_SORTER_LOCK = threading.Lock()


def sorted_texts(values: Iterable[str], lang: str | None = None) -> list[str]:
    """Texts sorted the language's way (Czech: Č after C, Ch after H, Ř after R, ...)."""
    import duckdb

    items = [v for v in values if v is not None]
    if not items:
        return []
    with _SORTER_LOCK:
        if not _SORTER:
            _SORTER.append(duckdb.connect())
        rows = (
            _SORTER[0]
            .execute(
                "SELECT v FROM (SELECT unnest(?::VARCHAR[]) AS v) "
                f"ORDER BY v COLLATE {collation(lang)}, v",  # then bytes: one order for equals
                [items],
            )
            .fetchall()
        )
    return [r[0] for r in rows]
