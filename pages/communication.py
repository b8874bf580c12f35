"""Communication: every message from every source, filterable; one client's timeline."""

import streamlit as st

from comms.clients.profile import load_client
from comms.errors import NotFound
from comms.ui import communication as ui
from comms.ui.client import open_client_detail
from comms.ui.common import get_store, page_exists

store = get_store()
st.title("Communication")

client_id = ui.comm_client_id()
if client_id is not None:
    try:
        client = load_client(store, client_id)
    except NotFound:
        st.warning(f"Client {client_id} does not exist; showing every message.")
        ui.clear_client()
        client_id = None
if client_id is not None:
    head, b1, b2 = st.columns([3, 1, 1], vertical_alignment="center")
    head.subheader(f"{client['name'] or '(no name)'} · client {client_id}")
    b1.button("Show every client", icon=":material/groups:", on_click=ui.clear_client)
    if b2.button(
        "Open client detail", icon=":material/person:", disabled=not page_exists("pages/client.py")
    ):
        open_client_detail(client_id)
    ui.timeline(store, client_id)
else:
    st.caption("Every message from bulk sends, client details and the command line.")

flt = ui.filters(store, client_id)
st.button("Clear filters", icon=":material/filter_alt_off:", on_click=ui.reset_filters)
selected = ui.paged_table(store, flt)
if selected is not None:  # no "select messages…" hint under an empty list
    ui.actions(store, selected)
    if len(selected) == 1:
        ui.message_view(store, selected[0])
    elif len(selected) > 1:
        st.caption(f"{len(selected)} messages selected; select one to see it as it was sent.")

st.divider()
with st.expander("Suppression list (opted-out addresses)", icon=":material/block:"):
    ui.suppression_panel(store)
