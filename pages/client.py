"""Client detail: fields, edit, opt-out, write one message, the client's communication."""

import streamlit as st

from comms.clients.profile import load_client
from comms.errors import NotFound
from comms.i18n import _
from comms.ui import client as ui
from comms.ui.common import get_store

store = get_store()
client_id = ui.current_client_id()
if client_id is None:
    st.title(_("Client detail"))
    ui.client_picker(store)
    st.stop()
try:
    client = load_client(store, client_id)
except NotFound:
    st.title(_("Client detail"))
    st.error(_("Client {id} does not exist (it may have been removed).").format(id=client_id))
    ui.forget_client()
    ui.client_picker(store)
    st.stop()

ui.header(client)
ui.flash()
left, right = st.columns([2, 3], gap="large")
with left:
    ui.fields(client)
    with st.expander(_("Edit details"), icon=":material/edit:"):
        ui.edit_form(store, client)
    with st.expander(_("Opt-out"), icon=":material/block:"):
        ui.opt_out_panel(store, client)
with right:
    ui.compose_panel(store, client)
st.divider()
ui.client_messages(store, client_id)
