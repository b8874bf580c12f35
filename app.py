"""Entry point: the server (st.App with comms' routes and lifespan) and, per page view,
page config, navigation over pages/, the store and the sign-in gate.

`streamlit run app.py` (which `comms serve` and `make run` call) finds the
`st.App` below and serves it with uvicorn: the pages, and on the same port
comms' own routes (unsubscribe links, Twilio callbacks: comms.web), whose
lifespan starts the background sender with the server. Streamlit then runs
this same file as `__main__` for every page view, which draws the page.
"""

from __future__ import annotations

import streamlit as st

from comms.web import ROUTES, lifespan


def pages() -> None:
    """One page view: page config, the navigation, the gate, the chosen page."""
    from comms.i18n import _
    from comms.ui.auth import sign_in_pending
    from comms.ui.common import get_store, start_app

    get_store()  # this run's language, before the titles below are written
    st.set_page_config(
        page_title=_("comms: client communication desk"), page_icon="✉️", layout="wide"
    )

    # The app's pages, in menu order; each one calls comms/ui/<page>.py.
    # Each url_path is its file's stem: on a server's first request Streamlit still
    # resolves URLs through the pages/ folder, so any other name (a bookmark to
    # /log, say) would greet the user with "Page not found".
    menu = [
        st.Page(
            "pages/home.py", title=_("Home"), icon=":material/home:", url_path="home", default=True
        ),
        st.Page(
            "pages/directory.py", title=_("Clients"), icon=":material/group:", url_path="directory"
        ),
        st.Page(
            "pages/wizard.py", title=_("Bulk send"), icon=":material/campaign:", url_path="wizard"
        ),
        st.Page(
            "pages/communication.py",
            title=_("Communication"),
            icon=":material/forum:",
            url_path="communication",
        ),
        st.Page(
            "pages/client.py", title=_("Client detail"), icon=":material/person:", url_path="client"
        ),
        st.Page("pages/outbox.py", title=_("Outbox"), icon=":material/outbox:", url_path="outbox"),
        st.Page(
            "pages/templates.py",
            title=_("Templates"),
            icon=":material/description:",
            url_path="templates",
        ),
        st.Page(
            "pages/action_log.py",
            title=_("Action log"),
            icon=":material/history:",
            url_path="action_log",
        ),
        st.Page(
            "pages/settings.py",
            title=_("Settings"),
            icon=":material/settings:",
            url_path="settings",
        ),
    ]

    # Navigation is declared before start_app()'s sign-in gate, so Streamlit never
    # falls back to serving pages/ files by itself; the menu is hidden until sign-in.
    navigation = st.navigation(menu, position="hidden" if sign_in_pending() else "sidebar")
    start_app()
    navigation.run()


if __name__ == "__main__":  # a page view: Streamlit runs this file as __main__ each time
    pages()
else:  # imported by the server (`streamlit run app.py`): the ASGI app it serves
    app = st.App(__file__, routes=ROUTES, lifespan=lifespan)
