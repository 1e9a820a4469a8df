"""``PostgresPersister``: one PostgreSQL schema, shared by every node that opens its URL.

Commit: one PostgreSQL transaction per hutch transaction. :meth:`begin` opens it
and takes the store's write lock (``pg_advisory_xact_lock``, waiting at most
``lock_timeout``) and notes how far the change log goes; :meth:`poll` then reads
what others committed since this node last looked (the lines of the log after
its position, and only the rows they name); :meth:`apply` writes the rows, the
tables' triggers number them and log them, and commits; :meth:`end` rolls back
what no commit ended. The lock is held from before the first number is handed
out until the commit is visible, so the log's order is the commit order and a
reader never skips a line that commits later with a lower number.

Outside the lock, :meth:`behind` compares the log's last number with this node's
position (on a connection of its own), and :meth:`catch_up` reads what is new in
one snapshot (``REPEATABLE READ``), for the :meth:`poll` that follows.

The layout, the SQL and its checks are in :mod:`.schema`; docs/postgres-format.md
describes them for a person.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from hutch import (
    BackendConfig,
    Changes,
    ClosedError,
    CollectionSettings,
    ConfigError,
    CorruptData,
    DiskFull,
    HutchError,
    InvalidId,
    InvalidValue,
    LockTimeout,
    Persister,
    ReadOnlyStorage,
    Snapshot,
    StorageError,
    StoragePermissionError,
)
from hutch.cells import Row, check_exact_numbers, check_row, check_value
from hutch.config import URL, redact_text
from hutch.ids import check_value_id, is_row_id
from hutch.persister import ProcessGuard, Unseen

from . import CAPABILITIES
from .schema import (
    CHANGES_TABLE,
    META_TABLE,
    VALUE_COLUMNS,
    VALUES,
    VALUES_TABLE,
    Layout,
    check_collections,
    check_columns,
    check_format,
    literal,
    table_name,
)

log = logging.getLogger("hutch.backends.postgres")

Connection = psycopg.Connection[tuple[Any, ...]]

#: Seconds to wait for the server when the URL sets no ``connect_timeout``: a server that
#: cannot be reached is an error after that, not a hang.
CONNECT_TIMEOUT = 10
#: ``synchronous_commit`` for each durability: ``batch`` and ``none`` let the server
#: acknowledge a commit before its WAL reaches the disk (a crash may lose the last ones).
_SYNCHRONOUS = {"commit": "on", "batch": "off", "none": "off"}
#: PostgreSQL's ``lock_timeout`` is an int of milliseconds (0: wait for ever).
_LONGEST_LOCK_TIMEOUT_MS = 2**31 - 1


class PostgresPersister(Persister):
    """The ``postgresql://`` backend: a schema of plain tables that many nodes share."""

    capabilities = CAPABILITIES

    def __init__(self, config: BackendConfig) -> None:
        config.check_options()
        self._url = config.url
        self._where = config.url.redacted()  # the schema is added once known
        self._params = _connection_parameters(config.url)
        self._durability = config.durability
        self._settings: dict[str, CollectionSettings] = dict(config.collections)
        self._lock_timeout = config.lock_timeout
        self._read_only = config.read_only
        # The connection serves one thread at a time: a transaction's, from begin() to end().
        self._connection_lock = threading.Lock()
        self._user: int | None = None  # the thread holding it
        self._watch: Connection | None = None  # for behind(), from any thread
        self._watch_lock = threading.Lock()
        self._unseen = Unseen()  # read by catch_up(), for the next poll()
        self._closed = False
        self._locked = False  # between begin() and the commit of apply() or end()
        self._head = 0  # the log's last number when the write lock was taken
        self._seq = 0  # the last line of the change log this node has taken in
        #: What the commit of this node set off beside its own writes (a person's triggers),
        #: read before it: the poll that follows the commit, under the same lock, reports it.
        self._set_off: Changes | None = None
        self._tables: dict[str, str] = {}  # collection -> its table, as last read
        self._ids: dict[str, set[str]] = {}  # the row ids this node knows, by collection
        self._value_keys: set[str] = set()
        self._found = False  # hutch's tables are there (a writing open makes them)
        self._conn = self._connect()
        try:
            self._layout = self._find_schema()
        except BaseException:
            self._conn.close()
            raise
        self._where = f"{self._where} (schema {self._layout.schema!r})"
        self._process = ProcessGuard(self._where)

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        self._process.check()
        with self._errors("open"), self._connection():
            if not self._read_only:  # a read-only open reads the schema as it is
                self._prepare()
            with self._snapshot():
                tables, values = self._read_everything()
        return Snapshot(tables=tables, values=values)

    def begin(self) -> None:
        self._process.check()
        self._refuse_writing("lock")
        self._take_connection()
        try:
            self._head = self._lock()
        except BaseException:
            self._give_connection()
            raise

    def end(self) -> None:
        try:
            if self._locked:
                with self._errors("release the lock of"):
                    self._rollback()  # nothing was committed since begin()
        finally:
            self._locked = False
            self._set_off = None  # (a mirror's: nobody polls it)
            self._give_connection()

    def behind(self) -> bool:
        """Whether the change log goes further than this node's position (asked on a
        connection of its own: the other may be a transaction's, on another thread)."""
        if self._user == threading.get_ident():  # holding the lock: nobody else commits
            return self._set_off is not None
        if os.getpid() != self._process.pid:  # a forked child: never the parent's connection
            return True  # (catch_up refuses it, saying why)
        try:
            with self._watch_lock:
                if self._watch is None or self._watch.broken:
                    self._watch = self._connect()
                if not self._found:  # read-only, before any writer made the store
                    query = f"SELECT to_regclass({literal(self._layout.changes)}) IS NOT NULL"
                    return bool(_one(self._watch.execute(query)))
                head = _one(self._watch.execute(f"SELECT max(seq) FROM {self._layout.changes}"))
            # The log first, then what is read or waiting (see hutch.persister.Unseen).
            return (head or 0) != self._seq or bool(self._unseen)
        except (psycopg.Error, HutchError):
            return True  # catch_up and poll say what is wrong

    def catch_up(self) -> None:
        """Read what others committed, in one snapshot (waiting for this node's connection,
        which a transaction of another thread may hold); the next :meth:`poll` reports it."""
        self._process.check()
        with self._errors("read"), self._connection(), self._unseen.reading():
            with self._snapshot():
                news = self._read_news()
            if news:
                self._unseen.put(news)

    def poll(self) -> Changes | None:
        self._process.check()
        if self._user == threading.get_ident():
            if self._locked:  # a transaction begins: read up to the last line, under the lock
                with self._errors("read"):
                    if news := self._read_news():
                        self._unseen.put(news)  # after what catch_up() read before it
            if self._set_off is not None:  # a transaction ends, having set triggers off
                self._unseen.put(self._set_off)
                self._set_off = None
        return self._unseen.take()

    def apply(self, changes: Changes) -> None:
        self._process.check()
        self._refuse_writing("write to")
        with self._errors("write to"), self._connection():
            if not self._locked:  # (a persister used on its own, without begin())
                self._head = self._lock()
            tables = dict(self._tables)
            try:
                written = sum(self._write(*target) for target in self._targets(changes))
                # How far the log goes, read in the COMMIT's round trip: a line beyond what
                # hutch wrote was set off by a person's trigger (read below).
                cursor = self._conn.execute(
                    f"SELECT count(*), max(seq) FROM {self._layout.changes} "
                    f"WHERE seq > {self._head}; COMMIT"
                )
                lines, last = _row(cursor)
            except BaseException:
                self._tables = tables  # a table made in the transaction is gone with it
                with contextlib.suppress(psycopg.Error):
                    self._rollback()
                raise
            finally:
                self._locked = False
            self._take_in(changes)
            if lines != written and not self._take_set_off(changes, last):
                return  # (this node reads the commit again, as another node's)
        if self._seq == self._head:  # this node had taken in everything before its commit
            self._seq = last or self._head

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings given to ``hutch.open``: the schema keeps none of its own."""
        return dict(self._settings)

    def close(self) -> None:
        # Another thread's catch_up may be using the connection: wait for it, a while.
        taken = self._connection_lock.acquire(timeout=min(self._lock_timeout, 60))
        try:
            self._closed = True
            with contextlib.suppress(psycopg.Error):
                self._rollback()  # (a transaction a failed begin or apply left open)
            self._conn.close()
            with self._watch_lock:
                if self._watch is not None:
                    self._watch.close()
        finally:
            if taken:
                self._connection_lock.release()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Connection:
        """A connection in autocommit mode (hutch says BEGIN and COMMIT itself), giving up
        after ``connect_timeout``, committing as the durability asks."""
        try:
            conn = psycopg.connect(self._url.raw, autocommit=True, **self._params)
        except psycopg.OperationalError as error:
            raise connect_error(error, self._url, self._where) from error
        try:
            conn.execute(f"SET synchronous_commit = {_SYNCHRONOUS[self._durability]}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _find_schema(self) -> Layout:
        """The store's schema: the first on the search path that exists, in a UTF8 database."""
        with self._errors("open"):
            name, oid, path, encoding = _row(
                self._conn.execute(
                    "SELECT s.name, n.oid, current_setting('search_path'), "
                    "current_setting('server_encoding') FROM (SELECT current_schema() AS name) s "
                    "LEFT JOIN pg_namespace n ON n.nspname = s.name"
                )
            )
        if encoding != "UTF8":
            raise ConfigError(
                f"{self._where}: the database's encoding is {encoding}, which cannot hold every "
                "string hutch stores; make one with CREATE DATABASE ... ENCODING 'UTF8' "
                "TEMPLATE template0"
            )
        if name is None:
            raise ConfigError(
                f"{self._where}: no schema on the search_path ({path}) exists, so there is no "
                "place for hutch's tables; create one (CREATE SCHEMA name) and name it in the "
                "URL: ?options=-csearch_path%3Dname"
            )
        return Layout(name, oid)

    def _take_connection(self) -> None:
        wait = min(self._lock_timeout, threading.TIMEOUT_MAX)
        if not self._connection_lock.acquire(timeout=wait):
            raise LockTimeout(
                f"could not use the connection to {self._where} within {self._lock_timeout:g} s "
                "(lock_timeout): another thread of this process held it (a transaction); find "
                "out why it takes so long, or give hutch.open a larger lock_timeout"
            )
        try:
            if self._closed:  # a stray call through a closed database
                raise ClosedError("the database is closed; open it again with hutch.open(...)")
            if self._conn.broken or self._conn.closed:  # the server restarted, the network cut
                self._conn = self._connect()
        except BaseException:
            self._connection_lock.release()
            raise
        self._user = threading.get_ident()

    def _give_connection(self) -> None:
        self._user = None
        self._connection_lock.release()

    @contextmanager
    def _connection(self) -> Iterator[None]:
        """The connection, for this thread alone (already so inside its transaction)."""
        if self._user == threading.get_ident():
            yield
            return
        self._take_connection()
        try:
            yield
        finally:
            self._give_connection()

    # -- transactions ------------------------------------------------------------------------

    def _lock(self, *, head: bool = True) -> int:
        """Open a transaction and take the store's write lock, waiting at most lock_timeout;
        return how far the change log goes (read once the lock is held: ``head``)."""
        timeout = self._lock_timeout * 1000
        millis = 0 if timeout > _LONGEST_LOCK_TIMEOUT_MS else max(1, math.ceil(timeout))
        statements = [
            "BEGIN ISOLATION LEVEL READ COMMITTED",  # each statement sees what committed before
            f"SET LOCAL lock_timeout = {millis}",
            f"SELECT pg_advisory_xact_lock({self._layout.lock_key})",
        ]
        if head:
            statements.append(f"SELECT max(seq) FROM {self._layout.changes}")
        self._locked = True
        try:
            cursor = self._conn.execute("; ".join(statements))
            while cursor.nextset():
                pass  # to the last statement's result
            return (_one(cursor) or 0) if head else 0
        except BaseException as error:
            with contextlib.suppress(psycopg.Error):
                self._rollback()
            if isinstance(error, pg_errors.LockNotAvailable):
                raise LockTimeout(
                    f"could not take the write lock of {self._where} within "
                    f"{self._lock_timeout:g} s (lock_timeout): {self._lock_holders()} held it. "
                    "Find out why it holds it so long (a stuck transaction, a session left open "
                    "in psql: SELECT pg_terminate_backend(pid) ends it), or give hutch.open a "
                    "larger lock_timeout"
                ) from error
            if isinstance(error, psycopg.Error):
                raise storage_error(error, "lock", self._where) from error
            raise

    def _lock_holders(self) -> str:
        """Who holds the store's write lock, as ``pg_locks`` and ``pg_stat_activity`` say."""
        try:
            found = self._conn.execute(
                "SELECT l.pid, a.application_name, a.client_addr::text, a.state, "
                "extract(epoch FROM now() - a.xact_start)::int FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                "current_database()) AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
                (self._layout.lock_key >> 32, self._layout.oid),
            ).fetchall()
        except psycopg.Error:
            found = []
        if not found:
            return "another session"
        described = []
        for pid, application, address, state, seconds in found:
            facts = [f"application {application!r}"] if application else []
            facts += [f"from {address}"] if address else []
            facts += [f"{state} for {seconds} s"] if state and seconds is not None else []
            described.append(f"process {pid}" + (f" ({', '.join(facts)})" if facts else ""))
        return ", ".join(described)

    def _rollback(self) -> None:
        """End the transaction in flight, if any, writing nothing."""
        self._locked = False
        if not self._conn.broken and self._conn.info.transaction_status != TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read-only transaction, so that the log and every table read as of one commit."""
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._rollback()
            raise
        self._conn.execute("COMMIT")

    def _refuse_writing(self, doing: str) -> None:
        """The store refuses every write of a read-only open; so does the backend."""
        if self._read_only:
            raise ReadOnlyStorage(
                f"cannot {doing} {self._where}: it was opened with read_only=True, which writes "
                "nothing; open it again without read_only to write"
            )

    # -- the layout --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Make hutch's tables, functions and triggers where they are missing (under the write
        lock, so that two nodes opening a new store do not both make them)."""
        layout = self._layout
        self._lock(head=False)
        try:
            names = self._relations()
            if not {META_TABLE, VALUES_TABLE, CHANGES_TABLE} <= names:
                for statement in layout.create():
                    self._conn.execute(statement)
            self._check_format()
            functions: dict[str, str] = dict(self._conn.execute(layout.functions_query()))
            for name, body in layout.functions().items():
                if functions.get(name) != body:
                    self._conn.execute(layout.create_function(name, body))
            have = set(self._conn.execute(layout.triggers_query()).fetchall())
            tables = {VALUES_TABLE: VALUES} | {
                name: collection for collection, name in self._read_tables().items()
            }
            for name, collection in tables.items():
                for trigger, statement in layout.triggers(name, collection).items():
                    if (name, trigger) not in have:
                        self._conn.execute(statement)
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._rollback()
            raise
        finally:
            self._locked = False

    def _relations(self) -> set[str]:
        return {name for (name,) in self._conn.execute(self._layout.names_query())}

    def _check_format(self) -> None:
        stored: dict[str, str] = dict(
            self._conn.execute(f"SELECT key, value FROM {self._layout.meta}")
        )
        check_format(stored, self._where)

    def _read_tables(self) -> dict[str, str]:
        """Which table holds which collection, checked (see :func:`.schema.check_collections`)."""
        columns: dict[str, dict[str, str]] = {}
        for table, column, kind in self._conn.execute(self._layout.columns_query()):
            columns.setdefault(table, {})[column] = kind
        check_columns(columns.get(VALUES_TABLE, {}), VALUE_COLUMNS, f"{self._where}, keyed values")
        mapping = self._conn.execute(
            f"SELECT collection, table_name FROM {self._layout.collections}"
        ).fetchall()
        self._tables = check_collections(mapping, columns, self._where)
        return self._tables

    def _table_of(self, collection: str) -> str | None:
        """The table of a collection, reading the tables again if it is new to this node."""
        name = self._tables.get(collection)
        return name if name is not None else self._read_tables().get(collection)

    def _create_table(self, collection: str) -> str:
        """A new collection's table, with its triggers and its line in _hutch_collections."""
        layout = self._layout
        name = table_name(collection, self._relations() | set(self._tables.values()))
        self._conn.execute(layout.create_table(name))
        for statement in layout.triggers(name, collection).values():
            self._conn.execute(statement)
        self._conn.execute(
            f"INSERT INTO {layout.collections} (collection, table_name) VALUES (%s, %s)",
            (collection, name),
        )
        self._tables[collection] = name
        return name

    # -- writing -----------------------------------------------------------------------------

    def _targets(self, changes: Changes) -> list[_Target]:
        """What ``changes`` writes, table by table (a new collection's table made first)."""
        targets: list[_Target] = []
        if changes.values or changes.deleted_values:
            values = [(key, orjson.dumps(value).decode()) for key, value in changes.values.items()]
            targets.append((VALUES_TABLE, "value", list(changes.deleted_values), values))
        for collection, rows in changes.tables.items():
            kept = [
                (row_id, orjson.dumps(row).decode())
                for row_id, row in rows.items()
                if row is not None
            ]
            name = self._table_of(collection)
            if name is None:
                if not kept:
                    continue  # deleting rows of a collection never written: nothing to do
                name = self._create_table(collection)
            deleted = [row_id for row_id, row in rows.items() if row is None]
            targets.append((name, "row", deleted, kept))
        return targets

    def _write(
        self, table: str, column: str, deleted: list[str], kept: list[tuple[str, str]]
    ) -> int:
        """Write one table's part of a commit; how many rows it wrote (each logs one line)."""
        quoted = self._layout.qualified(table)
        logged = 0
        if deleted:
            cursor = self._conn.execute(f"DELETE FROM {quoted} WHERE id = ANY(%s)", (deleted,))
            logged += cursor.rowcount
        if kept:
            cursor = self._conn.execute(
                f"INSERT INTO {quoted} (id, {column}) SELECT * FROM "
                "unnest(%s::text[], %s::text[]::json[]) "
                f"ON CONFLICT (id) DO UPDATE SET {column} = excluded.{column}",
                ([key for key, _ in kept], [text for _, text in kept]),
            )
            self._check_written(cursor.rowcount, len(kept), table)
            logged += cursor.rowcount
        return logged

    def _check_written(self, written: int, rows: int, table: str) -> None:
        """Fail if PostgreSQL skipped a row without an error (a person's ``BEFORE`` trigger
        that returns NULL): memory, which holds the write, would part from the table."""
        if written != rows:
            raise StorageError(
                f"{self._where}, table {table!r}: PostgreSQL skipped {rows - written} of "
                f"{rows} row(s) without an error: a trigger of the table (not hutch's) returns "
                "NULL for them, so the table would not hold what hutch holds. The transaction was "
                "rolled back and nothing was written: change or drop the trigger"
            )

    def _take_set_off(self, changes: Changes, last: int) -> bool:
        """Read what the commit just made wrote beside ``changes`` (a person's triggers on
        hutch's tables), for the poll that follows it; whether that went well.

        Read once committed, in a snapshot (another node's later commit to those rows reads
        as newer: its own lines bring it again). A row that does not read back is logged
        here, and this node reads the commit again from its position, as another's, which
        raises :class:`~hutch.CorruptData` naming it.
        """
        ours = {(collection, row_id) for collection, row_id, _ in changes.rows()}
        ours |= {(VALUES, key) for key in (*changes.values, *changes.deleted_values)}
        named: dict[str, set[str] | None] = {}
        try:
            with self._snapshot():
                for collection, row_id in self._conn.execute(
                    f"SELECT DISTINCT collection, row_id FROM {self._layout.changes} "
                    "WHERE seq > %s AND seq <= %s",
                    (self._head, last),
                ):
                    if (collection, row_id) not in ours:
                        _name(named, collection, row_id)
                set_off = self._read_named(named)
        except (psycopg.Error, StorageError):
            log.warning("reading what a commit set off in %s failed", self._where, exc_info=True)
            return False
        self._take_in(set_off)
        self._set_off = set_off
        return True

    # -- reading -----------------------------------------------------------------------------

    def _read_everything(self) -> tuple[dict[str, dict[str, Row]], dict[str, Any]]:
        """Every row and value (inside a snapshot, or the write lock's transaction); a read-only
        open of a schema where no writer made the store yet finds nothing."""
        if self._read_only and META_TABLE not in self._relations():
            return {}, {}
        self._check_format()
        head = self._last_seq()
        tables = {}
        for collection, name in self._read_tables().items():
            if rows := self._read_rows(collection, name):
                tables[collection] = rows
        values = self._read_values()
        self._seq, self._found = head, True
        self._ids = {collection: set(rows) for collection, rows in tables.items()}
        self._value_keys = set(values)
        return tables, values

    def _read_news(self) -> Changes | None:
        """What others committed since this node last looked, as the change log names it (in a
        snapshot, or holding the write lock): the rows it names, never a whole table, unless
        a line names one whole (a ``TRUNCATE``) or the log restarted (then every row)."""
        if not self._found:
            return self._difference() if META_TABLE in self._relations() else None
        head = self._head if self._locked else self._last_seq()
        if head == self._seq:
            return None
        if head < self._seq:
            log.warning(
                "the change log of %s ends at %d, before this node's position %d (it was "
                "restarted or emptied): reading every row",
                self._where,
                head,
                self._seq,
            )
            return self._difference()
        named: dict[str, set[str] | None] = {}
        for collection, row_id in self._conn.execute(
            f"SELECT DISTINCT collection, row_id FROM {self._layout.changes} WHERE seq > %s",
            (self._seq,),
        ):
            _name(named, collection, row_id)
        changes = self._read_named(named)
        self._seq = head
        self._take_in(changes)
        return changes if changes else None

    def _last_seq(self) -> int:
        return _one(self._conn.execute(f"SELECT max(seq) FROM {self._layout.changes}")) or 0

    def _read_named(self, named: dict[str, set[str] | None]) -> Changes:
        """The rows and values ``named`` names (``None``: every one of that collection), and
        ``None`` for each named one that is gone."""
        tables: dict[str, dict[str, Row | None]] = {}
        for collection, ids in named.items():
            name = None if collection == VALUES else self._table_of(collection)
            if name is None:
                continue  # the keyed values (below), or a line naming no collection of hutch's
            found = self._read_rows(collection, name, ids)
            gone = self._ids.get(collection, set()) if ids is None else ids
            rows: dict[str, Row | None] = {row_id: None for row_id in gone if row_id not in found}
            rows.update(found)
            if rows:
                tables[collection] = rows
        values: dict[str, Any] = {}
        deleted: frozenset[str] = frozenset()
        if VALUES in named:
            keys = named[VALUES]
            values = self._read_values(keys)
            gone = self._value_keys if keys is None else keys
            deleted = frozenset(key for key in gone if key not in values)
        return Changes(tables, values, deleted)

    def _difference(self) -> Changes | None:
        """Every row and value as ``Changes``, with what this node knew and is gone."""
        known, known_values = self._ids, self._value_keys
        tables, values = self._read_everything()
        changed: dict[str, dict[str, Row | None]] = {}
        for collection in set(tables) | set(known):
            rows: dict[str, Row | None] = dict(tables.get(collection, {}))
            for gone in known.get(collection, set()) - rows.keys():
                rows[gone] = None
            if rows:
                changed[collection] = rows
        changes = Changes(changed, values, frozenset(known_values - values.keys()))
        return changes if changes else None

    def _read_rows(
        self, collection: str, name: str, ids: Collection[str] | None = None
    ) -> dict[str, Row]:
        """The rows of a collection's table (those with ``ids``, if given), each checked as a
        write is: one that is not is :class:`~hutch.CorruptData`, until a person fixes it."""
        select = f"SELECT id, row::text FROM {self._layout.qualified(name)}"
        cursor = (
            self._conn.execute(select)
            if ids is None
            else self._conn.execute(f"{select} WHERE id = ANY(%s)", (list(ids),))
        )
        rows: dict[str, Row] = {}
        for row_id, text in cursor.fetchall():
            where = f"{self._where}, table {name!r}, row id {row_id!r}"
            if not is_row_id(row_id):
                raise CorruptData(f"{where}: not a valid row id; fix or delete it")
            try:
                loaded = orjson.loads(text)
                check_exact_numbers(text)
                if type(loaded) is not dict:
                    raise TypeError("the row is not a JSON object")
                row, _ = check_row(collection, row_id, loaded)
            except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                raise CorruptData(f"{where}: {error}; fix or delete it") from None
            if row:  # a row without cells does not exist
                rows[row_id] = row
        return rows

    def _read_values(self, keys: Collection[str] | None = None) -> dict[str, Any]:
        select = f"SELECT id, value::text FROM {self._layout.values}"
        cursor = (
            self._conn.execute(select)
            if keys is None
            else self._conn.execute(f"{select} WHERE id = ANY(%s)", (list(keys),))
        )
        values: dict[str, Any] = {}
        for key, text in cursor.fetchall():
            try:
                check_value_id(key)
                values[key] = check_value(orjson.loads(text), f"value {key!r}")
                check_exact_numbers(text)
            except (ValueError, TypeError, InvalidId, InvalidValue) as error:
                where = f"{self._where}, table {VALUES_TABLE!r}, id {key!r}"
                raise CorruptData(f"{where}: {error}; fix or delete it") from None
        return values

    def _take_in(self, changes: Changes) -> None:
        """Keep the known ids current with ``changes``, for the next whole read."""
        for collection, rows in changes.tables.items():
            ids = self._ids.setdefault(collection, set())
            for row_id, row in rows.items():
                if row is None:
                    ids.discard(row_id)
                else:
                    ids.add(row_id)
        self._value_keys.update(changes.values)
        self._value_keys.difference_update(changes.deleted_values)

    # -- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            raise storage_error(error, doing, self._where) from error


#: One table's part of a commit: the table, its JSON column, the ids deleted, and the
#: ``(id, JSON text)`` upserted.
_Target = tuple[str, str, list[str], list[tuple[str, str]]]


def _name(named: dict[str, set[str] | None], collection: str, row_id: str | None) -> None:
    """Note a line of the change log: a row of ``collection``, or (``None``) all of them."""
    if row_id is None:
        named[collection] = None
    elif (ids := named.setdefault(collection, set())) is not None:
        ids.add(row_id)


def _row(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    found = cursor.fetchone()
    if found is None:
        raise StorageError("PostgreSQL returned no row for a query that always returns one")
    return found


def _one(cursor: psycopg.Cursor[tuple[Any, ...]]) -> Any:
    return _row(cursor)[0]


def _connection_parameters(url: URL) -> dict[str, Any]:
    """What hutch adds to the URL's own parameters: ``connect_timeout`` and an
    ``application_name`` (that lock holders are shown by), unless the URL sets them, and
    ``client_encoding`` (the text hutch sends is UTF-8, whatever the environment says)."""
    try:
        given = conninfo_to_dict(url.raw)
    except psycopg.Error as error:
        raise ConfigError(
            f"{url.redacted()!r} is not a libpq URL ({_scrubbed(error, url)}); write "
            "postgresql://user:password@host:port/database"
        ) from None
    added: dict[str, Any] = {"client_encoding": "UTF8"}
    if "connect_timeout" not in given:
        added["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in given:
        added["application_name"] = "hutch"
    return added


#: What libpq says when the server refuses the URL's credentials (or this host).
_REFUSED = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role .* does not exist"
).search


def connect_error(error: psycopg.OperationalError, url: URL, where: str) -> HutchError:
    """What to raise when no connection could be made (libpq gives no SQLSTATE there: its
    message tells refused credentials and a missing database apart)."""
    text = _scrubbed(error, url)
    what = f"could not connect to {where} ({text})"
    if _REFUSED(text):
        return StoragePermissionError(
            f"{what}; check the user and password of the URL, and that the server's pg_hba.conf "
            "lets this host in"
        )
    if re.search(r"database .* does not exist", text):
        return ConfigError(f"{what}; create the database (CREATE DATABASE), or fix the URL")
    return StorageError(
        f"{what}; the server could not be reached within connect_timeout: check that it runs, "
        "the host and port of the URL, and that the network reaches it"
    )


def _scrubbed(error: psycopg.Error, url: URL) -> str:
    """libpq's message, with the URL's password hidden however libpq split the URL: it ends a
    password at its first unescaped ``@`` or ``/`` (and may show the rest as the host), where
    :meth:`~hutch.URL.redacted` hides everything up to the last ``@``."""
    text = redact_text(str(error).strip())
    userinfo = url.rest[2:].rpartition("@")[0] if url.rest.startswith("//") else ""
    _, colon, password = userinfo.partition(":")
    pieces = re.split(r"[@/]", password) if colon else []
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 3:  # (shorter ones are never shown apart)
            text = text.replace(piece, "***")
    return text


def storage_error(error: psycopg.Error, doing: str, where: str) -> HutchError:
    """The :class:`~hutch.HutchError` that says what went wrong and what to do."""
    state = error.sqlstate or ""
    what = f"PostgreSQL could not {doing} {where} ({type(error).__name__}: "
    what += f"{redact_text(str(error).strip())})"
    if state == "53100":
        return DiskFull(f"{what}; the server's disk is full: free space on it, then retry")
    if state == "55P03":  # lock_not_available: a row or table lock, past lock_timeout
        return LockTimeout(
            f"{what}; another session held a lock of a row or table hutch writes longer than "
            "lock_timeout (pg_locks shows who): find out why, or give hutch.open a larger "
            "lock_timeout. Nothing was written"
        )
    if state == "42501":
        return StoragePermissionError(
            f"{what}; the URL's role may not do that in this schema: connect as its owner, or "
            "GRANT the role what it needs"
        )
    if state == "25006":
        return ReadOnlyStorage(
            f"{what}; the server takes no writes (a standby, or default_transaction_read_only): "
            "connect to the primary"
        )
    if state in ("40001", "40P01"):
        return StorageError(f"{what}; nothing was written: try again")
    lost = isinstance(error, psycopg.OperationalError) and not state  # (libpq's own)
    if lost or state.startswith(("08", "57P")):
        return StorageError(
            f"{what}; the connection to the server was lost (it restarted, or the network "
            "failed). Nothing of a transaction in flight was written (a commit in flight may "
            "have been: this node reads it from the change log once connected again), and the "
            "next call connects again"
        )
    return StorageError(what)
