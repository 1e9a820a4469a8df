"""hutch: describe your data once, choose by URL where it lives.

>>> import hutch
>>> with hutch.open("memory://") as db:
...     db.store.set_row("users", "u1", {"email": "a@x.io"})
...     db.store.get_row("users", "u1")
{'email': 'a@x.io'}
"""

from hutch.changes import Changes
from hutch.config import URL, CollectionSettings, Durability, parse_url
from hutch.database import Database, open
from hutch.errors import (
    ClosedError,
    ConfigError,
    CorruptData,
    DefinitionError,
    DiskFull,
    HutchError,
    InvalidId,
    InvalidValue,
    ListenerError,
    PluginError,
    ReadOnlyStorage,
    StorageError,
    StoragePermissionError,
    UnknownBackend,
    UnsupportedFormat,
)
from hutch.hookspecs import RegisterBackend, hookimpl
from hutch.indexes import Indexes
from hutch.persister import BackendConfig, Capabilities, Persister, Snapshot
from hutch.relationships import Relationship, Relationships
from hutch.store import Store

__all__ = [
    "URL",
    "BackendConfig",
    "Capabilities",
    "Changes",
    "ClosedError",
    "CollectionSettings",
    "ConfigError",
    "CorruptData",
    "Database",
    "DefinitionError",
    "DiskFull",
    "Durability",
    "HutchError",
    "Indexes",
    "InvalidId",
    "InvalidValue",
    "ListenerError",
    "Persister",
    "PluginError",
    "ReadOnlyStorage",
    "RegisterBackend",
    "Relationship",
    "Relationships",
    "Snapshot",
    "StorageError",
    "StoragePermissionError",
    "Store",
    "UnknownBackend",
    "UnsupportedFormat",
    "hookimpl",
    "open",
    "parse_url",
]
