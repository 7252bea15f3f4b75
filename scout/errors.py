"""The one error tree of Deal Scout; boundaries map each type to a user message, a result or a health event."""


class DealScoutError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(DealScoutError):
    """A user gave something we cannot accept; the message is safe to show them as is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(InputError):
    """The thing a user named does not exist, or is not theirs to see."""


class PermissionDeniedError(InputError):
    """The caller may not do this; the message says why."""


class AdapterError(DealScoutError):
    """A marketplace adapter could not produce a result."""


class FetchError(AdapterError):
    """The request failed: connection, timeout, or the server kept failing after retries."""


class BlockedError(AdapterError):
    """The site refused us (403/429, captcha, challenge or login wall, or robots.txt)."""


class ParseError(AdapterError):
    """The page no longer has the shape the parser knows: the layout changed."""


class ConfigError(DealScoutError):
    """A setting is missing or invalid; the message names the environment variable."""


class StorageError(DealScoutError):
    """The database refused or failed an operation."""
