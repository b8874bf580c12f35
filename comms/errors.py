"""Domain exceptions: each carries a message a user can act on.

The message is in the language of whoever reads it (comms.i18n), chosen when the
exception is raised; what is stored in the database never comes from here.
"""

from comms.i18n import _


class CommsError(Exception):
    """Base for every error comms reports to a person."""


class DatabaseInUse(CommsError):
    """The DuckDB file is locked by another process."""


class ImportFailed(CommsError):
    """A whole uploaded file could not be imported; nothing was written."""


class TemplateError(CommsError):
    """A template does not parse, or tries to escape the sandbox."""


class ConfigError(CommsError):
    """A setting is missing or malformed."""


class NotFound(CommsError):
    """A client, template, batch or message does not exist."""


class InvalidTransition(CommsError):
    """A message cannot move from its current status to the one asked for."""


class DatabaseUnusable(CommsError):
    """The database path is a folder, not a DuckDB file, or cannot be written."""


class ConsentNotStated(ImportFailed):
    """A client list says nothing about consent for a channel and the uploader did not either.

    `channels` names the channels ('e-mail', 'SMS'); `sentence(option)` is the
    message naming the option a caller offers (the CLI's --consent, the panel's choice).
    """

    def __init__(
        self, channels: list[str], option: str = "consent='email,sms'|'email'|'sms'|'none'"
    ):
        self.channels = channels
        super().__init__(self.sentence(option))

    def sentence(self, option: str) -> str:
        names = [_(c) for c in self.channels]  # 'e-mail', 'SMS': core.po's channel names
        channels = (
            names[0]
            if len(names) == 1
            else _("{first} and {last}").format(first=", ".join(names[:-1]), last=names[-1])
        )
        return _(
            "The file has no consent column for {channels}: state the consent these clients"
            " gave with {option} (or add a column such as 'Souhlas'); nothing was imported."
        ).format(channels=channels, option=option)
