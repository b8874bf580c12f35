"""What every page shares: the store, the sign-in gate, the acting user, the banners,
the words and colours pages use for channels, statuses and body formats, the one
number format, and the button that asks before it destroys anything."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import streamlit as st

from comms import actionlog
from comms.rules.validation import CHANNEL_NAMES
from comms.store import Store, open_store
from comms.ui import auth
from comms.ui.widgets import banners

ROOT = Path(__file__).resolve().parent.parent.parent

# "E-mail", "SMS": the in-sentence names, capitalised for labels and column values.
CHANNEL_LABELS = {c: name[0].upper() + name[1:] for c, name in CHANNEL_NAMES.items()}
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
FORMAT_LABELS = {
    "markdown": "Markdown (recommended)",
    "html": "Raw HTML (advanced)",
    "text": "Plain text",
}


def number(value: Any, digits: int = 0) -> str:
    """THE way a page writes a number: thousands separated ("98,000"); "—" for none.

    One helper so the Czech / English issue can make every figure locale-aware at once.
    """
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if digits:
        return f"{float(value):,.{digits}f}"
    return f"{int(round(float(value))):,}"


def counted(n: Any, noun: str, plural: str | None = None) -> str:
    """ "1 message", "98,000 messages": the number through number(), the noun agreeing."""
    word = noun if int(n or 0) == 1 else (plural or noun + "s")
    return f"{number(n)} {word}"


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
    keep_label: str = "Keep them",
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
    if row.button(keep_label, key=f"{key}_no"):
        st.session_state[flag] = False
        st.rerun()
    return False


FLASH_SECONDS = 20  # how long an action's outcome stays on its page


def set_flash(key: str, kind: str, text: str) -> None:
    """Keep an action's outcome ('success', 'warning', 'error' ...) to show under `key`.

    It stays FLASH_SECONDS (or until the next action's outcome replaces it): a live
    panel that settles reruns the page, which must not take the outcome with it.
    """
    st.session_state[key] = (kind, text, time.monotonic())


def show_flash(key: str) -> None:
    """Draw the outcome kept under `key` while it is fresh (a plain (kind, text) once)."""
    kept = st.session_state.get(key)
    if not kept:
        return
    if len(kept) == 2 or time.monotonic() - kept[2] > FLASH_SECONDS:
        st.session_state.pop(key, None)
        if len(kept) != 2:
            return
    getattr(st, kept[0])(kept[1])


def md_escape(text: str) -> str:
    """Client data shown through st.markdown: every Markdown character escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def get_store() -> Store:
    """The process-wide store ($COMMS_DB or data/comms.duckdb)."""
    _through_app_entry()
    return open_store()


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
    """Run once per script run, before the page: store, sign-in gate, identity, banners."""
    get_store()
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
