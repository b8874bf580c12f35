"""Streamlit widgets shared by pages: the only part of comms that imports streamlit."""
