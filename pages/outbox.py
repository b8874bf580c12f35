"""Outbox: what is waiting, scheduled, sending, failed or interrupted, by batch."""

from __future__ import annotations

import streamlit as st

from comms import outbox
from comms.ui import outbox_ui
from comms.ui.common import get_store

store = get_store()
st.title("Outbox")
st.caption(
    "Queued and scheduled messages by batch. Send now, pause, cancel, retry what failed, "
    "and decide about messages whose delivery is unknown."
)
outbox_ui.show_flashes()
outbox_ui.render_overview(store)

show_all = st.toggle("Show finished batches too", key="outbox_show_all")
batches = outbox.batch_progress(store)
active = [b for b in batches if any(b.get(s) for s in outbox_ui.ACTIVE)]
shown = batches[:50] if show_all else active

st.subheader("Batches")
if not shown:
    st.caption(
        "No batch is waiting or sending."
        + ("" if show_all or not batches else " Finished batches are hidden.")
    )
for batch in shown:
    outbox_ui.render_batch(store, batch)

outbox_ui.render_loose(store)
