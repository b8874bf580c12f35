"""What every page shares: the store, the acting user, page registry, banners."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from comms import actionlog
from comms.store import Store, open_store
from comms.ui import auth
from comms.ui.widgets import banners

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    url_path: str
    default: bool = False


# The app's pages, in menu order. A page whose file does not exist yet is left
# out of the menu, and actions that lead to it are shown disabled.
# Each url_path is its file's stem: on a server's first request Streamlit still
# resolves URLs through the pages/ folder, so any other name (a bookmark to
# /log, say) would greet the user with "Page not found".
PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/home.py", "Home", ":material/home:", "home", default=True),
    PageInfo("pages/directory.py", "Clients", ":material/group:", "directory"),
    PageInfo("pages/wizard.py", "Bulk send", ":material/campaign:", "wizard"),
    PageInfo("pages/communication.py", "Communication", ":material/forum:", "communication"),
    PageInfo("pages/client.py", "Client detail", ":material/person:", "client"),
    PageInfo("pages/outbox.py", "Outbox", ":material/outbox:", "outbox"),
    PageInfo("pages/templates.py", "Templates", ":material/description:", "templates"),
    PageInfo("pages/action_log.py", "Action log", ":material/history:", "action_log"),
    PageInfo("pages/settings.py", "Settings", ":material/settings:", "settings"),
)


def page_exists(path: str) -> bool:
    return (ROOT / path).is_file()


def existing_pages(pages: tuple[PageInfo, ...]) -> list[PageInfo]:
    """The pages whose files exist; the first one is the default when home is missing."""
    found = [p for p in pages if page_exists(p.path)]
    if found and not any(p.default for p in found):
        first = found[0]
        found[0] = PageInfo(first.path, first.title, first.icon, first.url_path, default=True)
    return found


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

    Not under AppTest (its Runtime is a mock), nor when COMMS_DISPATCHER=off.
    """
    import os

    from streamlit.runtime import Runtime

    if os.environ.get("COMMS_DISPATCHER", "on").lower() == "off":
        return
    if type(Runtime._instance) is not Runtime:
        return
    from comms.sending.dispatcher import start_background

    start_background(get_store())
