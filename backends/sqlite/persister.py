"""``SqlitePersister``: one SQLite table per collection, through sqlite-utils.

Commit: one SQLite transaction per hutch transaction. :meth:`begin` takes the
write lock (``BEGIN IMMEDIATE``), :meth:`poll` reads what other connections
committed (``PRAGMA data_version`` says whether there is anything), and
:meth:`apply` writes the changes and commits; :meth:`end` releases the lock if
no commit did. The journal is WAL; ``synchronous`` is FULL, NORMAL or OFF for
the durability ``commit``, ``batch`` or ``none``.

The layout and the cell tags are described in docs/sqlite-format.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils
from sqlite_utils.db import quote_identifier

from hutch import (
    BackendConfig,
    Capabilities,
    Changes,
    CollectionSettings,
    ConfigError,
    CorruptData,
    DiskFull,
    InvalidId,
    InvalidValue,
    Persister,
    ReadOnlyStorage,
    Snapshot,
    StorageError,
    StoragePermissionError,
    UnsupportedFormat,
)
from hutch.cells import Row, check_row, check_value
from hutch.config import URL
from hutch.ids import check_value_id, is_row_id

from .cells import META, decode_row, encode_row

FORMAT_VERSION = 1
KIND = "sqlite"
#: Format version and kind: ``key TEXT PRIMARY KEY, value TEXT``.
HUTCH_TABLE = "_hutch"
#: Which SQLite table holds which collection: ``collection TEXT PRIMARY KEY, name TEXT``.
TABLES_TABLE = "_hutch_tables"
#: Keyed values: ``key TEXT PRIMARY KEY, value TEXT`` (JSON).
VALUES_TABLE = "_values"
#: A table holds at most this many columns; further cells live in ``_hutch_meta``.
MAX_COLUMNS = 1000
_SYNCHRONOUS = {"commit": "FULL", "batch": "NORMAL", "none": "OFF"}


class _Table:
    """The columns of one SQLite table, as this connection last read them."""

    def __init__(self, name: str, columns: list[str]) -> None:
        self.name = name
        self.columns = set(columns)
        self.folded = {column.lower() for column in columns}


class SqlitePersister(Persister):
    """The ``sqlite://`` backend: a SQLite file a person can query with ordinary SQL."""

    capabilities = Capabilities(durable=True, multi_process=True, change_feed=True)

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("busy_timeout")
        self.path = sqlite_path(config.url)
        self._durability = config.durability
        self._settings: dict[str, CollectionSettings] = dict(config.collections)
        timeout = config.options.get("busy_timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ConfigError(f"busy_timeout must be a number of seconds >= 0, not {timeout!r}")
        if not self.path.parent.is_dir():
            raise ConfigError(
                f"cannot open {self.path}: its folder {self.path.parent} does not exist; create it"
            )
        if self.path.is_dir():
            raise ConfigError(f"cannot open {self.path}: it is a folder, not a SQLite file")
        with self._errors("open"):
            self._conn = sqlite3.connect(
                self.path, timeout=float(timeout), isolation_level=None, check_same_thread=False
            )
        self._db = sqlite_utils.Database(
            self._conn, recursive_triggers=False, execute_plugins=False
        )
        self._pid = os.getpid()
        self._prepared = False
        self._locked = False  # between begin() and the commit of apply() or end()
        self._collections: dict[str, str] = {}  # collection -> SQLite table
        self._tables: dict[str, _Table] = {}  # SQLite table -> its columns
        self._schema_version = -1
        self._data_version: int | None = None
        self._ids: dict[str, set[str]] = {}  # what this persister last saw, for poll's diff
        self._value_keys: set[str] = set()

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        self._check_process()
        with self._errors("open"):
            if not self._prepared:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self._durability]}")
            with self._write():
                self._prepare()
            self._prepared = True
            tables, values = self._read_everything()
        self._remember(tables, values)
        return Snapshot(tables=tables, values=values)

    def begin(self) -> None:
        self._check_process()
        with self._errors("lock"):
            self._conn.execute("BEGIN IMMEDIATE")
        self._locked = True

    def end(self) -> None:
        if not self._locked:
            return
        self._locked = False
        if self._conn.in_transaction:
            with self._errors("release the lock of"):
                self._conn.execute("ROLLBACK")  # nothing was written since begin()

    def poll(self) -> Changes | None:
        self._check_process()
        with self._errors("read"):
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return None
            tables, values = self._read_everything()
        changed: dict[str, dict[str, Row | None]] = {}
        for collection in set(tables) | set(self._ids):
            rows: dict[str, Row | None] = dict(tables.get(collection, {}))
            for gone in self._ids.get(collection, set()) - rows.keys():
                rows[gone] = None
            if rows:
                changed[collection] = rows
        deleted = frozenset(self._value_keys - values.keys())
        self._remember(tables, values)
        changes = Changes(changed, values, deleted)
        return changes if changes else None

    def apply(self, changes: Changes) -> None:
        self._check_process()
        with self._errors("write to"), self._write():
            self._check_schema()
            for collection, rows in changes.tables.items():
                self._write_rows(collection, rows)
            if changes.values:
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO {VALUES_TABLE} (key, value) VALUES (?, ?)",
                    [(k, orjson.dumps(v).decode()) for k, v in changes.values.items()],
                )
            if changes.deleted_values:
                self._conn.executemany(
                    f"DELETE FROM {VALUES_TABLE} WHERE key = ?",
                    [(k,) for k in changes.deleted_values],
                )
        # Committed: remember it, so that poll reports only what others write.
        for collection, rows in changes.tables.items():
            ids = self._ids.setdefault(collection, set())
            for row_id, row in rows.items():
                if row is None:
                    ids.discard(row_id)
                else:
                    ids.add(row_id)
        self._value_keys.update(changes.values)
        self._value_keys.difference_update(changes.deleted_values)

    def reindex(self) -> None:
        self._check_process()
        with self._errors("reindex"), self._write():
            self._check_schema()
            for collection in self._settings:
                self._ensure_indexes(collection)
            self._conn.execute("REINDEX")

    def close(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if self._prepared and self._durability != "none":
                self._conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass  # closing must go on; nothing uncommitted is lost by a failed ROLLBACK
        finally:
            self._locked = False
            with self._errors("close"):
                self._conn.close()

    # -- transactions ------------------------------------------------------------------------

    def _check_process(self) -> None:
        """A forked child must not share the parent's connection (SQLite forbids it)."""
        if os.getpid() != self._pid:
            raise StorageError(
                f"this database on {self.path} was opened by process {self._pid}, before a "
                "fork; open it again in each process (for web servers: in each worker)"
            )

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Write and commit in the transaction of begin(), or in one of its own."""
        own = not self._locked
        if own:
            self._conn.execute("BEGIN IMMEDIATE")
        self._locked = False  # the transaction ends here either way
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._schema_version = -1  # the cached schema may hold what was rolled back
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    # -- schema ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create hutch's own tables, check the format, and index the configured fields."""
        names = set(self._db.table_names())
        if HUTCH_TABLE not in names:
            self._db.table(HUTCH_TABLE).create({"key": str, "value": str}, pk="key")
            self._conn.executemany(
                f"INSERT INTO {HUTCH_TABLE} (key, value) VALUES (?, ?)",
                [("format", str(FORMAT_VERSION)), ("kind", KIND)],
            )
        else:
            stored = dict(self._conn.execute(f"SELECT key, value FROM {HUTCH_TABLE}").fetchall())
            kind = stored.get("kind", KIND)
            if kind != KIND:
                raise ConfigError(f"{self.path}: this file holds a {kind} store, not a sqlite one")
            try:
                version = int(stored.get("format", FORMAT_VERSION))
            except (TypeError, ValueError):
                raise CorruptData(
                    f"{self.path}: the format in table {HUTCH_TABLE} is {stored['format']!r}, "
                    "not a number; fix it"
                ) from None
            if version > FORMAT_VERSION:
                raise UnsupportedFormat(
                    f"{self.path} says format {version}, newer than the {FORMAT_VERSION} this "
                    "hutch reads; upgrade hutch to open it"
                )
        if TABLES_TABLE not in names:
            self._db.table(TABLES_TABLE).create({"collection": str, "name": str}, pk="collection")
        if VALUES_TABLE not in names:
            self._db.table(VALUES_TABLE).create({"key": str, "value": str}, pk="key")
        self._load_schema()
        for collection, settings in self._settings.items():
            if settings.indexed:
                self._table_of(collection, create=True)

    def _load_schema(self) -> None:
        self._collections = dict(
            self._conn.execute(f"SELECT collection, name FROM {TABLES_TABLE}").fetchall()
        )
        self._tables = {}
        for name in self._collections.values():
            columns = [column.name for column in self._db.table(name).columns]
            if columns:  # a table dropped by hand is created again when written to
                self._tables[name] = _Table(name, columns)
        self._schema_version = self._conn.execute("PRAGMA schema_version").fetchone()[0]

    def _check_schema(self) -> None:
        """Read the schema again if anyone (this connection's rollback included) changed it."""
        if self._conn.execute("PRAGMA schema_version").fetchone()[0] != self._schema_version:
            self._load_schema()

    def _table_of(self, collection: str, *, create: bool) -> _Table | None:
        """The SQLite table of a collection, created (with its indexes) if ``create``."""
        name = self._collections.get(collection)
        if name is not None and name in self._tables:
            return self._tables[name]
        if not create:
            return None
        if name is None:
            taken = {
                str(n).lower() for (n,) in self._conn.execute("SELECT name FROM sqlite_master")
            }
            # SQLite reserves sqlite_* and compares names ignoring case; hutch does neither.
            base = f"hutch_{collection}" if collection.lower().startswith("sqlite_") else collection
            name, suffix = base, 2
            while name.lower() in taken:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self._conn.execute(
                f"INSERT INTO {TABLES_TABLE} (collection, name) VALUES (?, ?)", (collection, name)
            )
            self._collections[collection] = name
        self._db.table(name).create({"id": str, META: str}, pk="id")
        table = self._tables[name] = _Table(name, ["id", META])
        self._ensure_indexes(collection)
        return table

    def _has_column(self, table: _Table, cell: str) -> bool:
        """Whether ``cell`` has a column of its own in ``table``, adding one if it may."""
        if cell in table.columns:
            return cell != META
        folded = cell.lower()
        if folded in table.folded or len(table.columns) >= MAX_COLUMNS:
            return False  # SQLite column names ignore case: the cell lives in _hutch_meta
        # No declared type: SQLite stores each value exactly as bound (docs/sqlite-format.md).
        self._conn.execute(
            f"ALTER TABLE {quote_identifier(table.name)} ADD COLUMN {quote_identifier(cell)}"
        )
        table.columns.add(cell)
        table.folded.add(folded)
        return True

    def _ensure_indexes(self, collection: str) -> None:
        settings = self._settings.get(collection)
        if settings is None or not settings.indexed:
            return
        table = self._table_of(collection, create=True)
        assert table is not None
        sqlite_table = self._db.table(table.name)
        existing = [index.columns for index in sqlite_table.indexes]
        for field in settings.indexed:
            if [field] in existing or not self._has_column(table, field):
                continue
            sqlite_table.create_index(
                [field], index_name=f"idx_{table.name}_{field}", find_unique_name=True
            )

    # -- reading and writing -----------------------------------------------------------------

    def _write_rows(self, collection: str, rows: Mapping[str, Row | None]) -> None:
        deleted = [(row_id,) for row_id, row in rows.items() if row is None]
        table = self._table_of(collection, create=len(deleted) < len(rows))
        if table is None:
            return  # deleting rows of a table that was never written: nothing to do
        quoted = quote_identifier(table.name)
        if deleted:
            self._conn.executemany(f"DELETE FROM {quoted} WHERE id = ?", deleted)
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row_id, row in rows.items():
            if row is None:
                continue
            columns, meta = encode_row(row, lambda cell: self._has_column(table, cell))
            groups.setdefault(tuple(columns), []).append((row_id, meta, *columns.values()))
        for names, params in groups.items():
            listed = ", ".join(["id", META, *map(quote_identifier, names)])
            marks = ", ".join("?" * (len(names) + 2))
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {quoted} ({listed}) VALUES ({marks})", params
            )

    def _read_everything(self) -> tuple[dict[str, dict[str, Row]], dict[str, Any]]:
        """Every row and value, in one read transaction (or in the write lock's)."""
        own = not self._conn.in_transaction
        if own:
            self._conn.execute("BEGIN")
        try:
            self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            self._check_schema()
            tables = {}
            for collection, name in self._collections.items():
                if name in self._tables and (rows := self._read_table(collection, name)):
                    tables[collection] = rows
            values = self._read_values()
        finally:
            if own:
                self._conn.execute("COMMIT")
        return tables, values

    def _read_table(self, collection: str, name: str) -> dict[str, Row]:
        cursor = self._conn.execute(f"SELECT * FROM {quote_identifier(name)}")
        names = [column[0] for column in cursor.description]
        skip, meta_at = names.index("id"), names.index(META)
        rows: dict[str, Row] = {}
        for record in cursor:
            row_id = record[skip]
            where = f"{self.path}, table {name!r}, row id {row_id!r}"
            if not is_row_id(row_id):
                raise CorruptData(f"{where}: not a valid row id; fix or delete that row")
            try:
                row, _ = check_row(collection, row_id, decode_row(names, record, meta_at, skip))
            except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                raise CorruptData(f"{where}: {error}; fix or delete that row") from None
            if row:  # a row without cells does not exist
                rows[row_id] = row
        return rows

    def _read_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, text in self._conn.execute(f"SELECT key, value FROM {VALUES_TABLE}"):
            try:
                check_value_id(key)
                values[key] = check_value(orjson.loads(text), f"value {key!r}")
            except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                raise CorruptData(
                    f"{self.path}, table {VALUES_TABLE}, key {key!r}: {error}; fix or delete it"
                ) from None
        return values

    def _remember(self, tables: dict[str, dict[str, Row]], values: dict[str, Any]) -> None:
        self._ids = {collection: set(rows) for collection, rows in tables.items()}
        self._value_keys = set(values)

    # -- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise storage_error(error, doing, self.path) from error


def sqlite_path(url: URL) -> Path:
    """The file of a SQLAlchemy-style URL: ``sqlite:///relative.db``, ``sqlite:////abs.db``."""
    rest = url.rest
    if "?" in rest or "#" in rest:
        raise ConfigError(
            f"{url.redacted()!r}: the sqlite backend takes no query or fragment; pass options "
            "to hutch.open as keywords (busy_timeout=...)"
        )
    if not rest.startswith("//"):
        raise ConfigError(
            f"{url.redacted()!r} is not a sqlite URL; write sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    host, _, path = rest[2:].partition("/")
    if host:
        raise ConfigError(
            f"{url.redacted()!r} names the host {host!r}; a sqlite URL names a local file: "
            "write sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    if not path or path == ":memory:":
        raise ConfigError(
            f"{url.redacted()!r} names no file; an in-memory SQLite database would forget "
            "everything on close, so it is refused: use memory:// for that, or name a file "
            "(sqlite:///relative.db, sqlite:////absolute/path.db)"
        )
    return Path(path)


# SQLite's primary result codes (https://sqlite.org/rescode.html).
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = (
    3,
    5,
    6,
    8,
    11,
    13,
    14,
    23,
    26,
)


def storage_error(error: sqlite3.Error, doing: str, path: Path) -> StorageError:
    """The :class:`~hutch.StorageError` subclass that says what went wrong and what to do."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    name = getattr(error, "sqlite_errorname", None) or type(error).__name__
    what = f"SQLite could not {doing} {path} ({name}: {error})"
    if primary == _FULL:
        return DiskFull(f"{what}; the disk (or quota) is full: free space, then retry")
    if primary in (_READONLY, _PERM, _AUTH, _CANTOPEN):
        if _read_only_file_system(path):
            return ReadOnlyStorage(
                f"{what}; the file system is read-only: remount it read-write or open a copy"
            )
        if not _may_write(path):
            return StoragePermissionError(
                f"{what}; this process may not write {path} (or its folder, where SQLite "
                "keeps the -wal and -shm files): fix the permissions"
            )
        if primary == _READONLY:
            return ReadOnlyStorage(f"{what}; the database is read-only: open a writable copy")
    if primary in (_CORRUPT, _NOTADB):
        return CorruptData(
            f"{what}; the file is not a SQLite database or is damaged: restore it from a backup "
            "(or try `sqlite3 FILE .recover`)"
        )
    if primary in (_BUSY, _LOCKED):
        return StorageError(
            f"{what}; another connection held the lock longer than busy_timeout: retry, or "
            "give hutch.open a larger busy_timeout"
        )
    return StorageError(what)


def _read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _may_write(path: Path) -> bool:
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return False
    return os.access(path.parent, os.W_OK | os.X_OK)
