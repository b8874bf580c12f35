"""Communication: every message from every source, filterable; one client's timeline."""

from comms.ui import communication
from comms.ui.common import get_store

communication.render(get_store())
