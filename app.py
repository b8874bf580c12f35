"""Entry point: page config, navigation over pages/, the store and the dispatcher."""

from __future__ import annotations

import streamlit as st

from comms.ui.auth import sign_in_pending
from comms.ui.common import PAGES, existing_pages, start_app

st.set_page_config(page_title="comms: client communication desk", page_icon="✉️", layout="wide")

# Navigation is declared before start_app()'s sign-in gate, so Streamlit never
# falls back to serving pages/ files by itself; the menu is hidden until sign-in.
navigation = st.navigation(
    [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
        for p in existing_pages(PAGES)
    ],
    position="hidden" if sign_in_pending() else "sidebar",
)
start_app()
navigation.run()
