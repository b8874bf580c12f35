"""Client detail: fields, edit, opt-out, write one message, the client's communication."""

import streamlit as st

from comms.clients.profile import load_client
from comms.errors import NotFound
from comms.ui import client as ui
from comms.ui.common import get_store

store = get_store()
client_id = ui.current_client_id()
if client_id is None:
    st.title("Client detail")
    ui.client_picker(store)
    st.stop()
try:
    client = load_client(store, client_id)
except NotFound:
    st.title("Client detail")
    st.error(f"Client {client_id} does not exist (it may have been removed).")
    ui.forget_client()
    ui.client_picker(store)
    st.stop()

ui.header(client)
ui.flash()
left, right = st.columns([2, 3], gap="large")
with left:
    ui.fields(client)
    with st.expander("Edit details", icon=":material/edit:"):
        ui.edit_form(store, client)
    with st.expander("Opt-out", icon=":material/block:"):
        ui.opt_out_panel(store, client)
with right:
    ui.compose_panel(store, client)
st.divider()
ui.client_messages(store, client_id)
