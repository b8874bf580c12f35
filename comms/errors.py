"""Domain exceptions: each carries a message a user can act on."""


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
