"""Action log: who did what and when; filter, inspect an entry, export to CSV."""

from comms.ui import action_log
from comms.ui.common import get_store

action_log.render(get_store())
