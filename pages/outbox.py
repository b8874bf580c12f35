"""Outbox: what is waiting, scheduled, sending, failed or interrupted, by batch."""

from __future__ import annotations

import streamlit as st

from comms.ui import outbox as outbox_ui
from comms.ui.common import get_store

store = get_store()
st.title("Outbox")
st.caption(
    "Queued and scheduled messages by batch. Send now, pause, cancel, retry what failed, "
    "and decide about messages whose delivery is unknown."
)
outbox_ui.show_flashes()
live = st.toggle(
    "Live updates",
    value=True,
    key="outbox_live",
    help=f"Refresh counts and progress every {outbox_ui.LIVE_SECONDS} s while messages are "
    "due or being sent.",
)
outbox_ui.render_outbox(store, live=live)
