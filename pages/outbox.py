"""Outbox: what is waiting, scheduled, sending, failed or interrupted, by batch."""

from __future__ import annotations

import streamlit as st

from comms.i18n import _
from comms.ui import outbox as outbox_ui
from comms.ui.common import get_store

store = get_store()
st.title(_("Outbox"))
st.caption(
    _(
        "Queued and scheduled messages by batch. Send now, pause, cancel, retry what failed, "
        "and decide about messages whose delivery is unknown."
    )
)
outbox_ui.show_flashes()
live = st.toggle(
    _("Live updates"),
    value=True,
    key="outbox_live",
    help=_(
        "Refresh counts and progress every {seconds} s while messages are due or being sent."
    ).format(seconds=outbox_ui.LIVE_SECONDS),
)
outbox_ui.render_outbox(store, live=live)
