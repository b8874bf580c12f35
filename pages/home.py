"""Home: the figures that matter, recent batches, and the next step for a new user."""

from comms.ui import home
from comms.ui.common import get_store

home.render(get_store())
