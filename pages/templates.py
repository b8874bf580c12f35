"""Templates: the library of e-mail and SMS templates with attachments."""

import streamlit as st

from comms.ui.common import get_store
from comms.ui.templates import render

st.title("Templates")
st.caption("E-mail (Markdown, HTML or text) and SMS templates with {{ placeholders }}.")
render(get_store())
