"""Clients: upload lists, filter, select, and act on the selection."""

from comms.ui import directory
from comms.ui.common import get_store

directory.render(get_store())
