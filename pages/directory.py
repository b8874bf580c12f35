"""Clients: upload lists, filter, select, and act on the selection."""

from comms.ui.common import get_store
from comms.ui.directory import render

render(get_store())
