"""Bulk send: one generated, validated, editable message per selected client."""

import streamlit as st

from comms.ui.common import get_store
from comms.ui.wizard import render

st.title("Bulk send")
render(get_store())
