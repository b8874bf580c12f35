"""comms: the client communication desk's core, usable without Streamlit."""

__version__ = "0.1.0"
