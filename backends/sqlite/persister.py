"""``SqlitePersister``: one SQLite table per collection, through sqlite-utils.

Commit: one SQLite transaction per hutch transaction. :meth:`begin` takes the
write lock (``BEGIN IMMEDIATE``), :meth:`poll` reads what other connections
committed (``PRAGMA data_version`` says whether there is anything), and
:meth:`apply` writes the changes (each statement must change its one row: a
trigger's ``RAISE(IGNORE)`` fails the commit), reads back what the file's own
triggers did with them, and commits; :meth:`end` releases the lock if no commit
did. The journal is WAL; ``synchronous`` is FULL, NORMAL or OFF for the durability
``commit``, ``batch`` or ``none``.

Other connections' commits are found in ``_hutch_changes``, the log that
triggers keep of every row written (by hutch or by hand): :meth:`poll` reads
the rows it names, not the whole file. The layout and the cell tags are
described in docs/sqlite-format.md; the tables are kept by :mod:`.schema`, and
what a person changed in them is checked by :mod:`.layout`.

``read_only=True`` opens the file writing nothing at all: through a ``mode=ro``
URI, or ``immutable=1`` where ``mode=ro`` would make SQLite create files (see
:meth:`SqlitePersister._read_only_uri` and docs/sqlite-format.md, "Read-only opens").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from sqlite_utils.db import quote_identifier

from hutch import (
    BackendConfig,
    Changes,
    ClosedError,
    CollectionSettings,
    ConfigError,
    CorruptData,
    DiskFull,
    InvalidId,
    InvalidValue,
    LockTimeout,
    Persister,
    ReadOnlyStorage,
    Relationship,
    Snapshot,
    StorageError,
    StoragePermissionError,
)
from hutch.backends.file.folder import folder_url, layout_at
from hutch.backends.file.fsio import kind_of
from hutch.backends.file.fsio import lock_holders as lock_holders_of
from hutch.cells import Row, check_exact_numbers, check_row, check_value
from hutch.config import URL
from hutch.ids import check_value_id, is_row_id
from hutch.persister import KnownIds, OpenStores, ProcessGuard, Turns, Unseen

from . import CAPABILITIES
from .cells import META, OrphanTag, decode_row, encode_row
from .layout import TABLES_TABLE, Shape, Table
from .schema import CHANGES_TABLE, HUTCH_TABLE, VALUES_TABLE, Schema

_SYNCHRONOUS = {"commit": "FULL", "batch": "NORMAL", "none": "OFF"}
#: The change log is cut back to its newest KEEP_CHANGES lines once it holds twice as many;
#: a connection that had not read the lines cut reads every table instead.
KEEP_CHANGES = 10_000
#: Ids bound to one ``IN (...)`` (SQLite allows at least 999 parameters).
_IDS_PER_QUERY = 500
#: How many ids held by several rows ``verify`` names in one table.
_LISTED = 10


class SqlitePersister(Persister):
    """The ``sqlite://`` backend: a SQLite file a person can query with ordinary SQL."""

    capabilities = CAPABILITIES

    def __init__(self, config: BackendConfig) -> None:
        if "busy_timeout" in config.options:
            raise ConfigError(
                "the sqlite backend's busy_timeout is now lock_timeout, the one option of every "
                "backend that locks: pass hutch.open(..., lock_timeout=SECONDS)"
            )
        config.check_options()
        self.path = sqlite_path(config.url)
        self._url = config.url.redacted()  # as given, for the commands messages suggest
        self._durability = config.durability
        self._settings: dict[str, CollectionSettings] = dict(config.collections)
        self._lock_timeout = config.lock_timeout
        self._read_only = config.read_only
        if not self.path.parent.is_dir():
            raise ConfigError(
                f"cannot open {self.path}: its folder {self.path.parent} does not exist; create it"
            )
        if self.path.is_dir():
            hint = ""
            if kind := layout_at(self.path):
                hint = f": it holds a {kind}:// store; open it with {folder_url(kind, self.path)!r}"
            raise ConfigError(f"cannot open {self.path}: it is a folder, not a SQLite file{hint}")
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            if self._read_only:
                raise ConfigError(
                    f"cannot open {self.path} read-only: it does not exist, and read_only=True "
                    "creates nothing; open it once without read_only to create it"
                ) from None
            mode = stat.S_IFREG  # SQLite makes it
        except OSError as error:
            raise StorageError(f"cannot open {self.path}: {error.strerror}") from None
        if not stat.S_ISREG(mode):  # SQLite would wait on a FIFO, or fail obscurely
            raise ConfigError(f"cannot open {self.path}: it is {kind_of(mode)}, not a SQLite file")
        #: How a read-only open reaches the file (None: a writing open, by its path) and
        #: whether SQLite reads it immutable, following no other connection (see _read_only_uri).
        self._uri: str | None = None
        self._immutable = False
        #: Read-only, immutable since no writer had the file open: one comes, and this one
        #: follows it (poll opens the file again with mode=ro); tried once.
        self._await_writer = False
        if self._read_only:
            self._uri, self._immutable = self._read_only_uri()
            self._await_writer = self._immutable and not _read_only_file_system(self.path)
        with self._errors("open"):
            self._conn = self._connect()
        try:
            self._claim = OpenStores(os.stat(self.path), self.path)
        except BaseException:
            self._conn.close()
            raise
        self._schema = Schema(self._conn, self.path)
        self._process = ProcessGuard(self.path)
        self._turns = Turns(config.lock_timeout, self.path)  # (one thread's at a time)
        self._watch: sqlite3.Connection | None = None  # for behind(), from any thread
        self._watch_lock = threading.Lock()
        self._unseen = Unseen()  # read by catch_up(), for the next poll()
        self._closed = False
        self._watched: int | None = None  # the watch's data_version when poll() last read
        self._prepared = False  # the writing open's setup ran (never read-only)
        self._locked = False  # between begin() and the commit of apply() or end()
        self._data_version: int | None = None
        self._seq = 0  # the last line of the change log that this connection has taken in
        #: The tables as this connection last took them in, and the schema version then:
        #: apart from the schema's cache, which any check (or a write rolled back) reloads.
        self._taken: dict[str, Shape] = {}
        self._taken_version: int | None = None
        #: What the file's own triggers did in this connection's last commit, read back
        #: before it: the poll that follows the commit, under the same lock, reports it.
        self._set_off: Changes | None = None
        self._known = KnownIds()  # what this connection has handed the store

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        self._process.check()
        with self._errors("open"):
            if not self._read_only:  # a read-only open reads the file as it is
                self._prepare()
            tables, values = self._read_everything()
        self._known.reset(tables, values)
        return Snapshot(tables=tables, values=values)

    def _prepare(self) -> None:
        """Set the connection up for writing; make hutch's tables and the indexes."""
        if not self._prepared:
            self._set_wal_mode()
            self._conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self._durability]}")
            # Foreign keys describe relationships; the model layer enforces them.
            self._conn.execute("PRAGMA foreign_keys=OFF")
            # Deleted and overwritten content is zeroed in the file, and the -wal file
            # is cut back to nothing each time a checkpoint resets it: old values do not
            # linger in free pages or old frames (docs/sqlite-format.md).
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA journal_size_limit=0")
        with self._write():
            self._schema.prepare()
            for collection, settings in self._settings.items():
                for field in settings.indexed:
                    self._schema.index(collection, field)
        self._prepared = True

    def _set_wal_mode(self) -> None:
        """``PRAGMA journal_mode=WAL``, waiting up to ``lock_timeout`` for another opener.

        Switching a new file to WAL needs it to itself, and SQLite refuses at once (its busy
        timeout does not apply) while another connection holds its lock: two workers
        opening a new file together would fail one of them.
        """
        deadline = time.monotonic() + self._lock_timeout
        pause = 0.001
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)  # (SQLite's own busy handler waits the same way)
            pause = min(pause * 2, 0.05)

    def begin(self) -> None:
        self._process.check()
        self._refuse_writing("lock")
        self._turns.take(self._ready)
        try:
            with self._errors("lock"):
                self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:  # (an interrupt may come just after the lock was taken)
            try:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
            finally:
                self._turns.give()
            raise
        self._locked = True

    def end(self) -> None:
        try:
            if self._locked and self._conn.in_transaction:
                with self._errors("release the lock of"):
                    self._conn.execute("ROLLBACK")  # nothing was written since begin()
        finally:
            self._locked = False
            self._set_off = None  # (a mirror's: nobody polls it)
            self._turns.give()

    def behind(self) -> bool:
        """Whether another connection committed since :meth:`poll` last read (SQLite's
        ``data_version``, on a connection of its own: this one may be another thread's)."""
        if self._immutable:  # read-only, the file alone: no commit to see until a writer comes
            return self._await_writer and _wal_files_exist(self.path)
        if self._set_off is not None:
            return True  # what this connection's commit set off, for the poll after it
        try:
            with self._watch_lock:
                if self._watch is None:
                    self._watch = self._connect()
                version: int = self._watch.execute("PRAGMA data_version").fetchone()[0]
            # The version first, then what is read or waiting (see hutch.persister.Unseen).
            return version != self._watched or bool(self._unseen)
        except sqlite3.Error:
            return True  # poll says what is wrong

    def catch_up(self) -> None:
        """Read what other connections committed (waiting for this one, which a transaction
        of another thread may hold); the next :meth:`poll` reports it."""
        self._process.check()
        with self._errors("read"), self._connection(), self._unseen.reading():
            if news := self._read_news():
                self._unseen.put(news)

    def poll(self) -> Changes | None:
        self._process.check()
        if self._turns.mine():  # a transaction begins: read up to the last
            with self._errors("read"):
                if news := self._read_news():
                    self._unseen.put(news)  # after what catch_up() read before it
            if self._set_off is not None:  # a transaction ends, having set triggers off
                self._unseen.put(self._set_off)
                self._set_off = None
        return self._unseen.take()

    def _read_news(self) -> Changes | None:
        """What others committed since this connection last looked (holding it)."""
        if self._immutable:
            return self._follow_the_writer() if self.behind() else None
        with self._watch_lock:
            if self._watch is not None:
                self._watched = self._watch.execute("PRAGMA data_version").fetchone()[0]
        if self._conn.execute("PRAGMA data_version").fetchone()[0] == self._data_version:
            return None
        try:
            with self._reading():
                changes = self._read_logged()
                if changes is None:  # the log cannot tell: compare every row
                    changes = self._known.difference(*self._read_everything())
        except BaseException:
            # Nothing was taken in: behind() says so, and the next refresh() (or the
            # follower) reads again, and meets the same error until it is fixed.
            self._watched = None
            raise
        return changes if changes else None

    def apply(self, changes: Changes) -> None:
        self._process.check()
        self._refuse_writing("write to")
        with self._errors("write to"), self._connection(), self._write():
            self._schema.check()
            self._schema.check_writable()
            self._schema.log_every_table()
            start = self._last_seq()
            for collection, rows in changes.tables.items():
                self._write_rows(collection, rows)
            if changes.values or changes.deleted_values:
                self._write_values(changes)
            # What the file's own triggers made of it is read back before COMMIT, checked as
            # a load checks it: a commit hutch could not read back fails, writing nothing.
            set_off = self._read_back(start) if self._schema.triggers else None
            self._cut_changes()
        self._known.take_in(changes)
        if set_off is not None:
            self._known.take_in(set_off)
            self._set_off = set_off  # for the poll that follows, still under the lock

    def describe_relationship(self, relationship_id: str, relationship: Relationship) -> None:
        self._process.check()
        if self._read_only:
            return  # the foreign key only describes: a read-only open leaves the file as it is
        local, on, remote = relationship.local, relationship.on, relationship.remote
        if self._schema.links(local, on, remote):
            return
        doing = f"declare the foreign key of relationship {relationship_id!r} in"
        with self._errors(doing), self._connection(), self._write():
            self._schema.check()
            self._schema.check_writable()
            self._schema.link(local, on, remote)

    def reindex(self) -> None:
        self._process.check()
        self._refuse_writing("reindex")
        with self._errors("reindex"), self._connection(), self._write():
            self._schema.check()
            for collection, settings in self._settings.items():
                for field in settings.indexed:
                    self._schema.index(collection, field)
            self._conn.execute("REINDEX")

    def compact(self) -> None:
        """Copy the database into fresh pages (``VACUUM``) and empty the -wal file."""
        self._process.check()
        self._refuse_writing("compact")
        with self._errors("compact"), self._connection():
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- checks (hutch verify, hutch stats) ---------------------------------------------------

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings given to ``hutch.open``: a SQLite file keeps none of its own (a read-only
        open given none has none to report)."""
        return dict(self._settings)

    def verify(self) -> list[str]:
        """What SQLite's ``quick_check`` finds wrong, ids held by several rows of one table
        (a hand-made table without the primary key: hutch loaded only one of them), and
        the indexes of ``indexed`` fields that are missing; in one read transaction."""
        self._process.check()
        with self._errors("check"), self._connection(), self._reading():
            problems = [
                f"{self.path}: SQLite's quick_check says: {found}; restore the file from a "
                f"backup, or try `sqlite3 {self.path} .recover`"
                for (found,) in self._conn.execute("PRAGMA quick_check")
                if found != "ok"
            ]
            if self._schema.found:  # what would keep a writing open from writing
                self._schema.check()
                problems += self._schema.refusals
            existing = self._table_names()
            tables = self._tables_now(existing)
            for collection, table in sorted(tables.items()):
                problems += self._duplicates(table, "id", f"collection {collection!r}")
            if VALUES_TABLE in existing:
                problems += self._duplicates(VALUES_TABLE, "key", "the keyed values")
            for collection, settings in sorted(self._settings.items()):
                name = tables.get(collection)
                if name is None:
                    continue
                columns = self._columns(name) - {META}  # (a cell named so has no column)
                covered = self._indexed_columns(name)
                for field in settings.indexed:
                    if field in columns and field not in covered:
                        problems.append(
                            f"{self.path}, table {name!r}: the indexed field {field!r} "
                            f"has no index; run `hutch reindex {self._url}` to make it"
                        )
        return problems

    def _table_names(self) -> set[str]:
        return {name for (name,) in self._conn.execute("SELECT name FROM sqlite_master")}

    def _tables_now(self, existing: set[str]) -> dict[str, str]:
        """Each collection's table, as the file says now (read apart from the schema this
        connection keeps, which tells poll what changed since it last read)."""
        if TABLES_TABLE not in existing:
            return {}  # no store yet, or not hutch's (the load said which)
        listed = self._conn.execute(f"SELECT collection, name FROM {TABLES_TABLE}")
        return {collection: name for collection, name in listed if name in existing}

    def _columns(self, table: str) -> set[str]:
        return {
            row[1] for row in self._conn.execute(f"PRAGMA table_info({quote_identifier(table)})")
        }

    def _duplicates(self, table: str, key: str, holding: str) -> list[str]:
        """One line for each key that several rows of ``table`` hold (the first few)."""
        quoted, column = quote_identifier(table), quote_identifier(key)
        found = self._conn.execute(
            f"SELECT {column}, count(*) FROM {quoted} GROUP BY {column} HAVING count(*) > 1 "
            f"ORDER BY {column} LIMIT {_LISTED + 1}"
        ).fetchall()
        problems = [
            f"{self.path}, table {table!r} ({holding}): {count} rows have the {key} {value!r}, "
            f"and hutch reads only one of them; delete the others, and give the table its "
            f"PRIMARY KEY on {key} back (it was lost, by hand or by another tool)"
            for value, count in found[:_LISTED]
        ]
        if len(found) > _LISTED:
            problems.append(
                f"{self.path}, table {table!r} ({holding}): more {key}s are held by several rows"
            )
        return problems

    def _indexed_columns(self, table: str) -> set[str]:
        """The columns of ``table`` that an index of that one column covers."""
        covered = set()
        for index in self._conn.execute(f"PRAGMA index_list({quote_identifier(table)})"):
            info = self._conn.execute(f"PRAGMA index_info({quote_identifier(index[1])})")
            columns = [column[2] for column in info]
            if len(columns) == 1:
                covered.add(columns[0])
        return covered

    def stats(self) -> dict[str, Any]:
        """The file, its ``-wal`` and ``-shm`` files, SQLite's page counts, and each collection's
        table with its indexes (from ``dbstat``, where this SQLite has it: it walks the pages,
        reading no row)."""
        self._process.check()
        with self._errors("look at"), self._connection(), self._reading():
            page_size, page_count, freelist = (
                self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("page_size", "page_count", "freelist_count")
            )
            collections: dict[str, dict[str, int]] = {}
            if self._schema.found:  # hutch's tables as they must be, or what to do
                self._schema.check()
            tables = self._tables_now(self._table_names())
            sizes = self._table_sizes() if tables else None
            for collection, table in sorted(tables.items()):
                indexes = self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                    (table,),
                ).fetchall()
                found = {"indexes": len(indexes)}
                if sizes is not None:
                    names = [table, *(name for (name,) in indexes)]
                    found["bytes"] = sum(sizes.get(name, 0) for name in names)
                collections[collection] = found
        try:
            files = {path: _size(path) for path in (self.path, *_wal_files(self.path))}
            journal = _journal_mode(self.path)
        except OSError as error:
            raise StorageError(f"could not look at {self.path}: {error.strerror}") from error
        wal = files[_wal_files(self.path)[0]]
        return {
            "bytes": sum(files.values()),
            "log_bytes": wal,
            "file_bytes": files[self.path],
            "wal_bytes": wal,
            "shm_bytes": files[_wal_files(self.path)[1]],
            "page_size": page_size,
            "page_count": page_count,
            "freelist_count": freelist,
            "journal_mode": journal,
            "collections": collections,
        }

    def _table_sizes(self) -> dict[str, int] | None:
        """Bytes of each table and index, from ``dbstat`` (``None`` where SQLite lacks it)."""
        try:
            rows = self._conn.execute(
                "SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE"
            ).fetchall()
        except sqlite3.OperationalError:
            return None
        return {name: size for name, size in rows}

    def close(self) -> None:
        with self._connection():  # another thread's poll may be using it
            self._closed = True
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if self._prepared and self._durability != "none":
                    self._conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass  # closing must go on; nothing uncommitted is lost by a failed ROLLBACK
            finally:
                self._locked = False
                self._claim.release()
                with self._errors("close"):
                    self._conn.close()
                    if self._watch is not None:
                        self._watch.close()

    # -- transactions ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A connection that waits ``lock_timeout`` for another's lock (SQLite's busy timeout)."""
        timeout = min(self._lock_timeout, _LONGEST_BUSY_TIMEOUT)
        return sqlite3.connect(
            self.path if self._uri is None else self._uri,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=self._uri is not None,
        )

    # -- read-only opens ---------------------------------------------------------------------

    def _read_only_uri(self) -> tuple[str, bool]:
        """The URI that opens the file writing nothing, and whether it is ``immutable``.

        ``mode=ro`` reads the file as any connection does, following others'
        commits, but a WAL database needs its ``-wal`` and ``-shm`` files: where
        they are missing, SQLite would create them (and leave them behind), or
        fail in a folder this process may not write. There, and on a read-only
        file system, the URI adds ``immutable=1``: SQLite reads the database file
        alone, without locks, assuming nobody writes it. A ``-wal`` that holds
        commits is never skipped that way: it is read with ``mode=ro`` (its
        ``-shm`` beside it), or refused.
        """
        wal, shm = _wal_files(self.path)
        try:
            logged = wal.stat().st_size > 0
        except FileNotFoundError:
            logged = False
        if logged and not shm.exists():
            raise ReadOnlyStorage(
                f"cannot open {self.path} read-only: its {wal.name} holds commits that are not "
                f"in the file yet, and reading them needs the {shm.name} file that SQLite would "
                "create; open it once without read_only where it can be written (the commits "
                "then move into the file)"
            )
        immutable = not logged and (
            _read_only_file_system(self.path) or not (wal.exists() and shm.exists())
        )
        uri = f"file://{quote(str(self.path.absolute()))}?mode=ro"
        return (f"{uri}&immutable=1" if immutable else uri), immutable

    def _follow_the_writer(self) -> Changes | None:
        """A writer opened the file this read-only open reads immutable (its ``-wal`` and
        ``-shm`` are there now): open it again with ``mode=ro`` and read it again, so that
        its commits are followed from now on. Tried once."""
        self._await_writer = False
        uri, immutable = self._read_only_uri()
        if immutable:
            return None
        before = self._uri, self._conn, self._schema
        self._uri = uri
        try:
            self._conn = self._connect()
            self._schema = Schema(self._conn, self.path)
            changes = self._known.difference(*self._read_everything())
        except BaseException:
            if self._conn is not before[1]:
                self._conn.close()
            self._uri, self._conn, self._schema = before  # immutable, following nothing
            raise
        self._immutable = False
        before[1].close()
        return changes if changes else None

    def _refuse_writing(self, doing: str) -> None:
        """The store refuses every write of a read-only open; so does the backend."""
        if self._read_only:
            raise ReadOnlyStorage(
                f"cannot {doing} {self.path}: it was opened with read_only=True, which writes "
                "nothing; open it again without read_only to write"
            )

    def _ready(self) -> None:
        if self._closed:  # a stray call through a closed database
            raise ClosedError("the database is closed; open it again with hutch.open(...)")

    def _connection(self) -> AbstractContextManager[None]:
        """The connection, for this thread alone (already so inside its transaction)."""
        return self._turns.held(self._ready)

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Write and commit in the transaction of begin(), or in one of its own; if this
        connection had taken in every commit before it, it takes in its own (the log lines
        and the schema it changed), so that the next poll reads none of it again."""
        own = not self._locked
        if own:
            self._conn.execute("BEGIN IMMEDIATE")
        self._locked = False  # the transaction ends here either way
        try:
            in_step = self._in_step()
            yield
            if in_step:
                last, version = self._last_seq(), self._schema.schema_version()
            self._conn.execute("COMMIT")
        except BaseException:
            self._schema.forget()  # (what this connection took in stands: see _taken)
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise
        if in_step:
            self._seq = last
            if version != self._taken_version:
                self._taken, self._taken_version = _shapes(self._schema.tables), version

    def _in_step(self) -> bool:
        """Whether this connection has taken in every commit (holding the write lock)."""
        return (
            self._taken_version == self._schema.schema_version() and self._last_seq() == self._seq
        )

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One read transaction, so that every table is read as of one commit (or begin()'s)."""
        own = not self._conn.in_transaction
        if own:
            self._conn.execute("BEGIN")
        try:
            yield
        finally:
            if own:
                self._conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------

    def _write_rows(self, collection: str, rows: Mapping[str, Row | None]) -> None:
        deleted = [(row_id,) for row_id, row in rows.items() if row is None]
        if len(deleted) < len(rows):
            table: Table | None = self._schema.create_table(collection)
        else:
            table = self._schema.table_of(collection)
            if table is None:
                return  # deleting rows of a table that was never written: nothing to do
        assert table is not None
        quoted = quote_identifier(table.name)
        if deleted:
            self._write_each(
                f"DELETE FROM {quoted} WHERE id = ?", deleted, table.name, "id", deleting=True
            )
        fields, add_column = table.fields, partial(self._schema.has_column, table)
        records = [
            encode_row(row_id, row, fields, add_column)
            for row_id, row in rows.items()
            if row is not None
        ]
        if not records:
            return
        width = len(fields) + 2
        for record in records:
            if len(record) < width:  # encoded before a later row added columns
                record.extend([None] * (width - len(record)))
        # Every column is set, a missing cell's to NULL: no DEFAULT fills it. An upsert,
        # not INSERT OR REPLACE, which would delete other rows that a person's UNIQUE
        # index finds in the way (and put a NOT NULL column's default in place of a NULL).
        names = [quote_identifier(name) for name in ("id", META, *fields)]
        updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
        self._write_each(
            f"INSERT INTO {quoted} ({', '.join(names)}) VALUES ({', '.join('?' * width)}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            records,
            table.name,
            "id",
        )

    def _write_values(self, changes: Changes) -> None:
        self._write_each(
            f"INSERT INTO {VALUES_TABLE} (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(k, orjson.dumps(v).decode()) for k, v in changes.values.items()],
            VALUES_TABLE,
            "key",
        )
        self._write_each(
            f"DELETE FROM {VALUES_TABLE} WHERE key = ?",
            [(k,) for k in changes.deleted_values],
            VALUES_TABLE,
            "key",
            deleting=True,
        )

    def _write_each(
        self,
        statement: str,
        rows: Iterable[Sequence[Any]],
        table: str,
        key: str,
        *,
        deleting: bool = False,
    ) -> None:
        """Run ``statement`` once for each of ``rows`` (its key first), and fail if SQLite
        skipped one without an error (a trigger's ``RAISE(IGNORE)``): memory, which holds
        the write, would part from the file, which does not."""
        execute = self._conn.execute
        for row in rows:
            if execute(statement, row).rowcount == 1:
                continue
            if (
                deleting
                and not execute(
                    f"SELECT 1 FROM {quote_identifier(table)} WHERE {key} = ?", row[:1]
                ).fetchone()
            ):
                continue  # nothing to delete
            doing = "deletion" if deleting else "write"
            raise StorageError(
                f"{self.path}, table {table!r}: SQLite skipped the {doing} of the {key} "
                f"{row[0]!r} without an error: {self._triggers_on(table)} ignores it "
                "(RAISE(IGNORE)), so the file would not hold what hutch holds. The transaction "
                "was rolled back and nothing was written: change or drop the trigger, or "
                "write what it lets through"
            )

    def _triggers_on(self, table: str) -> str:
        """The file's own triggers on ``table``, for a message."""
        names = self._schema.triggers.get(table.lower(), [])
        if not names:
            return "a trigger of the file"
        return f"the file's trigger {', '.join(map(repr, names))} (not hutch's)"

    def _read_back(self, start: int) -> Changes:
        """Every row and value that the log names after ``start`` (this commit's writes, and
        what the file's triggers wrote with them), read inside the commit and checked as a
        load checks them."""
        named: dict[str, set[Any]] = {}
        for name, key in self._conn.execute(
            f"SELECT table_name, row_id FROM {CHANGES_TABLE} WHERE seq > ?", (start,)
        ):
            named.setdefault(name, set()).add(key)
        tables: dict[str, dict[str, Row | None]] = {}
        for name, keys in named.items():
            collection = self._schema.collection_of(name)
            if collection is None:
                continue  # _values, or a table that holds no collection
            found = self._read_rows(collection, self._schema.tables[name], keys, set_off=True)
            rows: dict[str, Row | None] = {k: None for k in keys if is_row_id(k)}
            rows.update(found)
            if rows:
                tables[collection] = rows
        keys = named.get(VALUES_TABLE, set())
        values = self._read_values(keys, set_off=True) if keys else {}
        deleted = frozenset(k for k in keys if k not in values and _is_value_id(k))
        return Changes(tables, values, deleted)

    def _last_seq(self) -> int:
        last: int | None = self._conn.execute(f"SELECT max(seq) FROM {CHANGES_TABLE}").fetchone()[0]
        return last or 0

    def _cut_changes(self) -> None:
        """Cut the change log back to its newest lines once it has grown."""
        first, last = self._conn.execute(  # one aggregate a query: each is a B-tree end
            f"SELECT (SELECT min(seq) FROM {CHANGES_TABLE}), (SELECT max(seq) FROM {CHANGES_TABLE})"
        ).fetchone()
        if first is None or last - first < 2 * KEEP_CHANGES:
            return
        cut = last - KEEP_CHANGES
        self._conn.execute(f"DELETE FROM {CHANGES_TABLE} WHERE seq <= ?", (cut,))
        self._conn.execute(
            f"INSERT OR REPLACE INTO {HUTCH_TABLE} (key, value) VALUES ('changes_cut', ?)",
            (str(cut),),
        )

    # -- reading -----------------------------------------------------------------------------

    def _read_everything(self) -> tuple[dict[str, dict[str, Row]], dict[str, Any]]:
        """Every row and value, in one read transaction (or in the write lock's); what this
        connection has taken in is noted once all of it was read."""
        with self._reading():
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if not self._schema.find():
                self._data_version = data_version
                return {}, {}  # a read-only open of a file without any table: nothing stored
            self._schema.check()
            seq = self._last_seq()
            tables = {}
            for collection, table in self._schema.collections().items():
                if rows := self._read_rows(collection, table):
                    tables[collection] = rows
            values = self._read_values()
            version = self._schema.schema_version()
        self._data_version, self._seq = data_version, seq
        self._taken, self._taken_version = _shapes(self._schema.tables), version
        return tables, values

    def _read_logged(self) -> Changes | None:
        """What others wrote since this connection last read, as the change log names it.

        ``None`` when the log cannot tell: a table was dropped or created again,
        or lost its triggers (by hand: what happened to its rows is not in the
        log), or the lines this connection needs were cut. A table new to this
        connection is read whole. What it has taken in is noted once all of it was
        read (a row that fails its checks is read again at the next poll).
        """
        data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if not self._schema.found:
            return None  # a read-only open of a file that had no table: look at it whole
        self._schema.check()
        version = self._schema.schema_version()
        now = self._schema.tables
        if not (self._schema.values_logged and all(table.logged for table in now.values())):
            return None  # until a write gives the triggers back, nothing logs that table
        new: set[str] = set()
        taken = self._taken
        if version != self._taken_version:
            taken = _shapes(now)
            for name, shape in taken.items():
                before = self._taken.get(name)
                if before is not None and before.root != shape.root:
                    return None
                if before is None or before.rewritten_as(shape):
                    new.add(name)
            if self._taken.keys() - taken.keys():
                return None
        cut = self._conn.execute(
            f"SELECT value FROM {HUTCH_TABLE} WHERE key = 'changes_cut'"
        ).fetchone()
        last = self._last_seq()
        if last < self._seq or (cut is not None and _cut_after(cut[0], self._seq)):
            return None
        named: dict[str, set[Any] | None] = dict.fromkeys(new)  # None: the whole table
        for name, key in self._conn.execute(
            f"SELECT table_name, row_id FROM {CHANGES_TABLE} WHERE seq > ?", (self._seq,)
        ):
            keys = named.setdefault(name, set())
            if keys is not None:
                keys.add(key)
        tables: dict[str, dict[str, Row | None]] = {}
        for name, keys in named.items():
            collection = self._schema.collection_of(name)
            if collection is None:
                continue  # _values, or a table that holds no collection
            found = self._read_rows(collection, self._schema.tables[name], keys)
            known_ids = self._known.rows.get(collection, set())
            gone = known_ids if keys is None else keys & known_ids  # None: read whole
            rows: dict[str, Row | None] = {key: None for key in gone if key not in found}
            rows.update(found)
            if rows:
                tables[collection] = rows
        values: dict[str, Any] = {}
        deleted: frozenset[str] = frozenset()
        keys = named.get(VALUES_TABLE)
        if keys:
            values = self._read_values(keys)
            deleted = frozenset(key for key in keys & self._known.values if key not in values)
        self._data_version, self._seq = data_version, last
        self._taken, self._taken_version = taken, version
        changes = Changes(tables, values, deleted)
        self._known.take_in(changes)
        return changes

    def _read_rows(
        self,
        collection: str,
        table: Table,
        ids: Collection[Any] | None = None,
        *,
        set_off: bool = False,
    ) -> dict[str, Row]:
        """The rows of a table (those with ``ids``, if given), checked as hutch's own
        (``set_off``: read back in a commit, which fails if one does not read back)."""
        fields = table.fields
        listed = ", ".join(quote_identifier(name) for name in ("id", META, *fields))
        select = f"SELECT {listed} FROM {quote_identifier(table.name)}"
        rows: dict[str, Row] = {}
        for cursor in self._select(select, "id", ids):
            for record in cursor:
                row_id = record[0]
                where = f"{self.path}, table {table.name!r}, row id {row_id!r}"
                if not is_row_id(row_id):
                    raise self._bad_record(where, "not a valid row id", set_off)
                try:
                    row, _ = check_row(collection, row_id, decode_row(fields, record))
                except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                    problem = error.explain(table.name) if isinstance(error, OrphanTag) else error
                    raise self._bad_record(where, str(problem), set_off) from None
                if row:  # a row without cells does not exist
                    rows[row_id] = row
        return rows

    def _read_values(
        self, keys: Collection[Any] | None = None, *, set_off: bool = False
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for cursor in self._select(f"SELECT key, value FROM {VALUES_TABLE}", "key", keys):
            for key, text in cursor:
                try:
                    check_value_id(key)
                    values[key] = check_value(orjson.loads(text), f"value {key!r}")
                    check_exact_numbers(text)
                except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                    where = f"{self.path}, table {VALUES_TABLE}, key {key!r}"
                    raise self._bad_record(where, str(error), set_off) from None
        return values

    def _bad_record(self, where: str, problem: str, set_off: bool) -> StorageError:
        """What to raise for a row or value that does not read back: the file is damaged
        (:class:`~hutch.CorruptData`), or, ``set_off`` in a commit by the file's own
        triggers, the commit fails and is rolled back."""
        if not set_off:
            return CorruptData(f"{where}: {problem}; fix or delete it")
        names = sorted({name for names in self._schema.triggers.values() for name in names})
        return StorageError(
            f"{where}: {problem}. The file's trigger(s) {', '.join(map(repr, names))} (not "
            "hutch's) wrote it in this commit, and hutch could not read back what it would "
            "commit: the transaction was rolled back and nothing was written. Make the "
            "trigger write what hutch reads (a valid row id, JSON values as hutch writes "
            "them, no BLOB), or drop it"
        )

    def _select(
        self, select: str, key: str, keys: Collection[Any] | None
    ) -> Iterator[sqlite3.Cursor]:
        """``select`` over the whole table, or over the rows whose ``key`` is in ``keys``."""
        if keys is None:
            yield self._conn.execute(select)
            return
        listed = list(keys)
        for start in range(0, len(listed), _IDS_PER_QUERY):
            chunk = listed[start : start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            yield self._conn.execute(f"{select} WHERE {key} IN ({marks})", chunk)

    # -- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise storage_error(error, doing, self.path, read_only=self._read_only) from error


def _shapes(tables: Mapping[str, Table]) -> dict[str, Shape]:
    return {name: table.shape() for name, table in tables.items()}


def _is_value_id(key: object) -> bool:
    try:
        check_value_id(key)
    except InvalidId:
        return False
    return True


def _cut_after(cut: object, seq: int) -> bool:
    """Whether the change log was cut past ``seq`` (a value that is no number: assume so)."""
    try:
        return int(str(cut)) > seq
    except (TypeError, ValueError):
        return True


def sqlite_path(url: URL) -> Path:
    """The file of a SQLAlchemy-style URL: ``sqlite:///relative.db``, ``sqlite:////abs.db``."""
    rest = url.rest
    if "?" in rest or "#" in rest:
        raise ConfigError(
            f"{url.redacted()!r}: the sqlite backend takes no query or fragment; pass options "
            "to hutch.open as keywords (lock_timeout=...)"
        )
    if not rest.startswith("//"):
        raise ConfigError(
            f"{url.redacted()!r} is not a sqlite URL; write sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    host, _, path = rest[2:].partition("/")
    if host:
        raise ConfigError(
            f"{url.redacted()!r} names the host {url.host()!r}; a sqlite URL names a local file: "
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
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _CONSTRAINT, _AUTH, _NOTADB = (
    3,
    5,
    6,
    8,
    11,
    13,
    14,
    19,
    23,
    26,
)


def storage_error(
    error: sqlite3.Error, doing: str, path: Path, *, read_only: bool = False
) -> StorageError:
    """The :class:`~hutch.StorageError` subclass that says what went wrong and what to do
    (``read_only``: for a connection of a read-only open, which only reads)."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    name = getattr(error, "sqlite_errorname", None) or type(error).__name__
    what = f"SQLite could not {doing} {path} ({name}: {error})"
    if primary == _FULL:
        return DiskFull(f"{what}; the disk (or quota) is full: free space, then retry")
    if primary in (_READONLY, _PERM, _AUTH, _CANTOPEN):
        if read_only:
            return _unreadable(what, path)
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
    if primary == _CONSTRAINT:
        return StorageError(
            f"{what}; a constraint or trigger of the file refuses it (hutch makes none that a "
            "valid row breaks: a person or another tool added it), and nothing was written: "
            "write rows that satisfy it, or drop the constraint"
        )
    if primary in (_BUSY, _LOCKED):
        return LockTimeout(
            f"{what}; {lock_holders(path)} held the lock longer than lock_timeout: find out "
            "why it holds it so long (a stuck transaction, a stopped process), or give "
            "hutch.open a larger lock_timeout"
        )
    return StorageError(what)


def lock_holders(path: Path) -> str:
    """The processes holding SQLite's write lock on ``path`` (in WAL mode, a POSIX lock on
    a byte of its ``-shm`` file), as ``/proc/locks`` shows them; "another connection"
    where that cannot tell."""
    try:
        pids = lock_holders_of(os.stat(f"{path}-shm"), "POSIX", _WAL_WRITE_LOCK)
    except OSError:
        pids = set()
    pids.discard(os.getpid())
    if not pids:
        return "another connection"
    return "process " + ", ".join(map(str, sorted(pids)))


#: The byte of the ``-shm`` file whose lock is SQLite's write lock in WAL mode.
_WAL_WRITE_LOCK = 120

#: SQLite's busy timeout is an int of milliseconds: "wait for ever" is about 24 days.
_LONGEST_BUSY_TIMEOUT = (2**31 - 1) / 1000


def _unreadable(what: str, path: Path) -> StorageError:
    """Why a read-only open could not read: permissions, or what SQLite would have written."""
    files = (path, *_wal_files(path))
    unreadable = [str(file) for file in files if file.exists() and not os.access(file, os.R_OK)]
    if unreadable:
        return StoragePermissionError(
            f"{what}; this process may not read {' nor '.join(unreadable)}: fix the permissions "
            "(a read-only open needs to read them, nothing more)"
        )
    return ReadOnlyStorage(
        f"{what}; SQLite could not read it without writing, and it was opened with "
        "read_only=True: open it once without read_only, or read a copy"
    )


def _wal_files(path: Path) -> tuple[Path, Path]:
    """The ``-wal`` and ``-shm`` files of a database in WAL mode."""
    return Path(f"{path}-wal"), Path(f"{path}-shm")


def _journal_mode(path: Path) -> str:
    """``"wal"`` or ``"rollback"``, as the file's header says (an ``immutable=1`` connection
    would say ``"delete"`` of a WAL file)."""
    with path.open("rb") as file:
        header = file.read(20)
    return "wal" if header[18:19] == b"\x02" else "rollback"


def _size(path: Path) -> int:
    """A file's size; 0 if it is not there."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _wal_files_exist(path: Path) -> bool:
    return all(file.exists() for file in _wal_files(path))


def _read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _may_write(path: Path) -> bool:
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return False
    return os.access(path.parent, os.W_OK | os.X_OK)
