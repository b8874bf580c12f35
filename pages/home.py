"""Home: where a new user starts."""

import streamlit as st

from comms.ui.common import get_store

store = get_store()
st.title("Client communication desk")
clients = store.scalar("SELECT count(*) FROM clients") or 0
st.metric("Clients", f"{clients:,}")
if clients == 0:
    st.info("First step: open **Clients** and upload a client list (CSV or XLSX).")
