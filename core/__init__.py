"""hutch: describe your data once, choose by URL where it lives.

>>> import hutch
>>> with hutch.open("memory://") as db:
...     db.store.set_row("users", "u1", {"email": "a@x.io"})
...     db.store.get_row("users", "u1")
{'email': 'a@x.io'}
"""

from importlib.metadata import PackageNotFoundError, version

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
    IntegrityError,
    InvalidId,
    InvalidValue,
    ListenerError,
    LockTimeout,
    MigrationError,
    NotFound,
    PluginError,
    QueryError,
    ReadOnlyStorage,
    SchemaMismatch,
    StorageError,
    StoragePermissionError,
    UnknownBackend,
    UnsupportedFormat,
    ValidationError,
)
from hutch.hookspecs import RegisterBackend, hookimpl
from hutch.indexes import Indexes
from hutch.migrations import Migrated
from hutch.models import Migration, Model, OnDelete, Relation, Unique
from hutch.persister import BackendConfig, Capabilities, Persister, Snapshot
from hutch.relationships import Relationship, Relationships
from hutch.repository import Repository
from hutch.serialise import from_json, to_json
from hutch.store import Store

try:
    __version__ = version("hutch")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

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
    "IntegrityError",
    "InvalidId",
    "InvalidValue",
    "ListenerError",
    "LockTimeout",
    "Migrated",
    "Migration",
    "MigrationError",
    "Model",
    "NotFound",
    "OnDelete",
    "Persister",
    "PluginError",
    "QueryError",
    "ReadOnlyStorage",
    "RegisterBackend",
    "Relation",
    "Relationship",
    "Relationships",
    "Repository",
    "SchemaMismatch",
    "Snapshot",
    "StorageError",
    "StoragePermissionError",
    "Store",
    "Unique",
    "UnknownBackend",
    "UnsupportedFormat",
    "ValidationError",
    "__version__",
    "from_json",
    "hookimpl",
    "open",
    "parse_url",
    "to_json",
]
