"""Settings: which backend sends each channel, the sending limits, and a test message."""

from comms.ui import settings
from comms.ui.common import get_store

settings.render(get_store())
