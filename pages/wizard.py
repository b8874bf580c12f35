"""Bulk send: one generated, validated, editable message per selected client."""

import streamlit as st

from comms.i18n import _
from comms.ui.common import get_store
from comms.ui.wizard import render

store = get_store()  # first: this run's language
st.title(_("Bulk send"))
render(store)
