"""Every error hutch raises derives from :class:`HutchError`.

Messages say what failed, where (collection, row, path, URL) and what to do.
Errors about bad input also derive from :class:`ValueError`, so code that
already catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class HutchError(Exception):
    """Base class of every error raised by hutch."""


class InvalidId(HutchError, ValueError):
    """A table, row, cell or value id breaks the id rules; nothing was written."""


class InvalidValue(HutchError, ValueError):
    """A row, cell or value is not JSON that every backend can store; nothing was written."""


class ConfigError(HutchError, ValueError):
    """A URL, an argument of ``hutch.open`` or a collection setting is wrong."""


class UnknownBackend(ConfigError):
    """No installed plugin provides a backend for the URL's scheme."""


class PluginError(HutchError):
    """A plugin failed to load or registered something that clashes with another plugin."""


class DefinitionError(HutchError, LookupError):
    """An index, relationship, model or listener is unknown or wrongly defined, or an
    index's definition failed on a row."""


class StorageError(HutchError):
    """The backend could not make a transaction durable; the transaction was rolled back."""


class ClosedError(HutchError):
    """The database was closed; open it again to go on."""


class ListenerError(HutchError):
    """The transaction committed, but one or more listeners raised afterwards."""

    def __init__(self, message: str, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.errors = errors


class DiskFull(StorageError):
    """The disk (or quota) is full; free space, then retry. Nothing was written."""


class StoragePermissionError(StorageError):
    """The process may not write (or read) where the store lives; fix the permissions."""


class ReadOnlyStorage(StorageError):
    """The store was opened with ``read_only=True``, or lives where this process may not
    write (a read-only file system); open it for writing, or write to a copy."""


class LockTimeout(StorageError):
    """Another process held the store's lock longer than ``lock_timeout``; nothing was
    written. The message names the holding process: find out why it is stuck."""


class CorruptData(StorageError):
    """Stored data cannot be read back (a malformed record, a damaged log line)."""


class UnsupportedFormat(StorageError):
    """The store was written by a newer (or unknown) format version; upgrade hutch."""


class ValidationError(HutchError, ValueError):
    """A model's fields are wrong; ``errors`` maps each bad field to what is wrong with it."""

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors


class IntegrityError(HutchError):
    """A write would break a unique field, a foreign key or a delete policy; nothing was written.

    ``row_id`` is the row of the written collection that the write clashes with (the holder
    of a unique value, or of the id), where there is one.
    """

    def __init__(self, message: str, *, row_id: str | None = None) -> None:
        super().__init__(message)
        self.row_id = row_id


class NotFound(HutchError, LookupError):
    """No row has that id (in ``repo.update``, say)."""


class QueryError(HutchError, ValueError):
    """A filter or an ordering names an unknown field or lookup."""


class MigrationError(HutchError):
    """A migration failed, or left rows that do not fit their model; it was rolled back, and
    the message names the collection, the version and the step."""


class SchemaMismatch(HutchError):
    """A collection's stored schema version is not the model's: a newer version of the
    application migrated it (deploy that version), or migrations are pending (run them)."""
