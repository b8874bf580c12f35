"""What every page shares: the store, the sign-in gate, the acting user, the banners,
the viewer's language, the words and colours pages use for channels, statuses and
body formats, the one number format, and the button that asks before it destroys
anything."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from comms import actionlog, i18n, preferences
from comms.i18n import (
    N_,
    _,
    ngettext,
    shown_code,  # noqa: F401  (re-exported: the pages import it from here)
)
from comms.rules.validation import CHANNEL_NAMES
from comms.store import Store, open_store
from comms.ui import auth
from comms.ui.widgets import banners

ROOT = Path(__file__).resolve().parent.parent.parent


class TranslatedLabels(dict):
    """Codes -> English labels, read in the viewer's language (`[]`, get, items, values).

    Module-level tables are built once, at import; the language changes per script
    run, so the translation happens on every read. `__missing__` makes pandas'
    Series.map look each code up through `[]` too.
    """

    def __getitem__(self, key: Any) -> str:
        return _(super().__getitem__(key))

    def __missing__(self, key: Any) -> str:
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self):  # type: ignore[override]
        return [self[k] for k in self]

    def items(self):  # type: ignore[override]
        return [(k, self[k]) for k in self]


# "E-mail", "SMS": the in-sentence names, capitalised for labels and column values.
N_("E-mail")
CHANNEL_LABELS = TranslatedLabels(
    {c: name[0].upper() + name[1:] for c, name in CHANNEL_NAMES.items()}
)
STATUS_COLORS = {
    "draft": "#9e9e9e",
    "invalid": "#ff9800",
    "queued": "#1e88e5",
    "sending": "#8e24aa",
    "sent": "#2e7d32",
    "failed": "#d32f2f",
    "cancelled": "#616161",
    "interrupted": "#f57c00",
    "excluded": "#bdbdbd",
    "delivered": "#1b5e20",
    "undelivered": "#c62828",
    "bounced": "#b71c1c",
}
FORMAT_LABELS = TranslatedLabels(
    {
        "markdown": N_("Markdown (recommended)"),
        "html": N_("Raw HTML (advanced)"),
        "text": N_("Plain text"),
    }
)


def number(value: Any, digits: int = 0) -> str:
    """THE way a page writes a number, in the viewer's locale ("98,000", "98 000"); "—" for none."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if digits:
        return i18n.number(float(value), digits)
    return i18n.number(int(round(float(value))))


# -- charts (Altair / Vega-Lite) in the viewer's language ---------------------------------

# d3 time formats of chart axes and tooltips: the date with a 24-hour time ("1. 12. 2026
# 14:05" in Czech; Vega's default mixed "06:50" and "07 PM").
CHART_DATETIME = {"en": "%Y-%m-%d %H:%M", "cs": "%-d. %-m. %Y %H:%M"}


def chart_datetime() -> str:
    """The d3 time format of a chart's date and time, in the viewer's language."""
    return CHART_DATETIME.get(i18n.language(), CHART_DATETIME[i18n.DEFAULT])


def chart_locale() -> dict[str, Any]:
    """Vega's number and time locale for the viewer (config.locale of a chart).

    Numbers: the decimal mark and grouping ("1 234,5" in Czech); dates: day and
    month names of Vega's own axis labels. From Babel, the same data as i18n's formats.
    """
    from babel.numbers import get_decimal_symbol, get_group_symbol

    loc = i18n.babel_locale()
    days = loc.days["stand-alone"]
    months = loc.months["stand-alone"]
    sunday_first = [6, 0, 1, 2, 3, 4, 5]  # Babel counts from Monday, d3 from Sunday
    periods = loc.day_periods.get("stand-alone", {}).get("abbreviated", {})
    return {
        "number": {
            "decimal": get_decimal_symbol(loc),
            "thousands": get_group_symbol(loc),
            "grouping": [3],
            "currency": ["", ""],
        },
        "time": {
            "dateTime": "%x %X",
            "date": "%-d. %-m. %Y" if i18n.language() == "cs" else "%-m/%-d/%Y",
            "time": "%H:%M:%S",
            "periods": [periods.get("am", "AM"), periods.get("pm", "PM")],
            "days": [days["wide"][d] for d in sunday_first],
            "shortDays": [days["abbreviated"][d] for d in sunday_first],
            "months": [months["wide"][m] for m in range(1, 13)],
            "shortMonths": [months["abbreviated"][m] for m in range(1, 13)],
        },
    }


def counted(n: Any, noun: str, plural: str | None = None) -> str:
    """ "1 message", "98,000 messages": the number through number(), the noun agreeing.

    The noun goes through ngettext, so its Czech plural forms come from the catalogue
    (pages.po holds the nouns callers pass); new call sites should prefer ngettext
    with the whole sentence.
    """
    count = int(n or 0)
    return f"{number(n)} {ngettext(noun, plural or noun + 's', count)}"


# -- the viewer's language ---------------------------------------------------------------

LANGUAGE_KEY = "ui_language"  # the sidebar switch's key: the session's choice


def browser_language() -> str | None:
    """The browser's language (st.context.locale), when it is one we have."""
    try:
        return i18n.normalise(st.context.locale)
    except Exception:  # no script context
        return None


def use_language(store: Store) -> str:
    """This run's language: the session's switch, else the signed-in user's saved choice,
    else the browser's, else English. Set for `_()` and kept in the session."""
    chosen = st.session_state.get(LANGUAGE_KEY)
    if i18n.normalise(chosen) is None:
        chosen = (
            preferences.saved_language(store, auth.signed_in_user())
            or browser_language()
            or i18n.DEFAULT
        )
        st.session_state[LANGUAGE_KEY] = chosen
    return i18n.set_language(chosen)


def _language_changed() -> None:
    """The switch moved: use it at once, and remember it for a signed-in user."""
    lang = i18n.set_language(st.session_state.get(LANGUAGE_KEY))
    user = auth.signed_in_user()
    if user:
        preferences.save_language(open_store(), user, lang)


def language_switch() -> None:
    """The sidebar's language switch (bilingual label: whoever reads it finds it)."""
    st.sidebar.selectbox(
        "Jazyk / Language",
        list(i18n.LANGUAGES),
        format_func=i18n.LANGUAGES.get,
        key=LANGUAGE_KEY,
        on_change=_language_changed,
    )


def confirmed_action(
    key: str,
    label: str,
    *,
    question: str,
    confirm_label: str,
    container: Any = None,
    disabled: bool = False,
    icon: str | None = None,
    help: str | None = None,
    keep_label: str | None = None,
) -> bool:
    """A button that asks first: True only in the run where the person confirmed.

    Every destructive action of the app goes through it, its question naming the count.
    """
    where = container if container is not None else st
    flag = f"confirm_{key}"
    if where.button(label, key=key, disabled=disabled, icon=icon, help=help):
        st.session_state[flag] = True
    if not st.session_state.get(flag) or disabled:
        return False
    st.warning(question, icon=":material/warning:")
    row = st.container(horizontal=True)
    if row.button(confirm_label, key=f"{key}_yes", type="primary"):
        st.session_state[flag] = False
        return True
    if row.button(keep_label or _("Keep them"), key=f"{key}_no"):
        st.session_state[flag] = False
        st.rerun()
    return False


FLASH_SECONDS = 20  # how long an action's outcome stays on its page

# A sentence kept in the session to show later: a plain string (shown as it is), or
# a zero-argument callable that writes it in the viewer's language when it is shown.
# An outcome kept across reruns is made with the callable: after the person switches
# the language in the sidebar it reads in the new language, not in the one it was made in.
Text = str | Callable[[], str]


def text_of(text: Text) -> str:
    """A kept sentence in the language of this run (a callable is called now)."""
    return text() if callable(text) else str(text)


def set_flash(key: str, kind: str, text: Text, *, once: bool = False) -> None:
    """Keep an action's outcome ('success', 'warning', 'error' ...) to show under `key`.

    It stays FLASH_SECONDS (or until the next action's outcome replaces it): a live
    panel that settles reruns the page, which must not take the outcome with it.
    `once`: shown by the next run only. `text` is best a callable
    (`lambda: _("...").format(...)`): it is translated when shown, so the outcome
    follows a language switch.
    """
    st.session_state[key] = (kind, text) if once else (kind, text, time.monotonic())


def show_flash(key: str) -> None:
    """Draw the outcome kept under `key` while it is fresh (a plain (kind, text) once)."""
    kept = st.session_state.get(key)
    if not kept:
        return
    if len(kept) == 2 or time.monotonic() - kept[2] > FLASH_SECONDS:
        st.session_state.pop(key, None)
        if len(kept) != 2:
            return
    getattr(st, kept[0])(text_of(kept[1]))


def md_escape(text: str) -> str:
    """Client data shown through st.markdown: every Markdown character escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def get_store() -> Store:
    """The process-wide store ($COMMS_DB or data/comms.duckdb), this run's language set.

    Every page calls it first, so a page run on its own (AppTest) speaks the
    session's language too.
    """
    _through_app_entry()
    store = open_store()
    use_language(store)
    return store


def _through_app_entry() -> None:
    """Rerun through app.py when Streamlit served a pages/ file by itself.

    On a server process's first script run, Streamlit's legacy pages/ mode can run
    a page asked for by URL (e.g. /outbox) directly, skipping app.py and with it
    the sign-in gate and the demo banner. Every page calls get_store() first, so
    this switches the process to app.py's st.navigation and reruns.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not PagesManager.uses_pages_directory:
        return
    if Path(ctx.main_script_path).resolve() != ROOT / "app.py":
        return  # a page run on its own (AppTest.from_file("pages/x.py"))
    PagesManager.uses_pages_directory = False
    st.rerun()


def start_app() -> None:
    """Run once per script run, before the page: store, language, sign-in gate, identity,
    banners."""
    get_store()
    language_switch()
    start_dispatcher()
    # Stops the run at the sign-in screen when needed; None (sign-in off) logs the OS user.
    actionlog.set_user(auth.require_sign_in())
    banners.demo_banner()


def start_dispatcher() -> None:
    """The background sender thread, once per process, in a real server only.

    The app's lifespan (comms.web) starts it with the server; a page view starts
    it only when the lifespan could not (the database was held by another
    process then). Not under AppTest (its Runtime is a mock), nor when
    COMMS_DISPATCHER=off.
    """
    import os

    from streamlit.runtime import Runtime

    from comms.web import lifespan_started

    if lifespan_started() or os.environ.get("COMMS_DISPATCHER", "on").lower() == "off":
        return
    if type(Runtime._instance) is not Runtime:
        return
    from comms.sending.dispatcher import start_background

    start_background(get_store())
