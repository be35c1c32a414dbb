"""The error tree. User-facing errors are shown as they are; anything else is a bug.

Connectors catch `UserError` and show its message; any other exception is logged once
with its traceback at the connector boundary and the user gets a short apology.
"""

from __future__ import annotations


class PaperbotError(Exception):
    """Base class of every error this package raises on purpose."""


class UserError(PaperbotError):
    """Something the user can fix: the message says what and how."""


class InvalidInputError(UserError):
    """Input that is malformed or out of bounds (a bad ID, an empty or oversized query)."""


class NotFoundError(UserError):
    """A paper, week or file that does not exist."""


class ConfigError(UserError):
    """A missing or inconsistent setting; the message names the setting to change."""


class SourceError(UserError):
    """A paper source failed (network, HTTP status, unparseable payload): the message says
    which source and what to try."""


class SourceUnavailableError(SourceError):
    """A source could not be reached at all; callers may fall back to offline data."""


class IndexUnavailableError(UserError):
    """The vector index cannot be opened or reached right now."""


class DataDirError(PaperbotError):
    """The data dir cannot be used: disk full, read-only, or a corrupt or emptied state
    file. Not the user's input: the CLI prints the message (naming the dir) and exits 1."""


class IndexDamagedError(IndexUnavailableError):
    """The index is missing, unreadable, from an older version, or out of step with the
    stored papers; the message says to run `paperbot index rebuild`, which works from any
    of these states."""
