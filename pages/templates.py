"""Templates: the library of e-mail and SMS templates with attachments."""

from comms.ui import templates
from comms.ui.common import get_store

templates.render(get_store())
