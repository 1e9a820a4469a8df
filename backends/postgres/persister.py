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

Outside the lock, :meth:`behind` compares the last number the change feed heard
(:mod:`.feed`: ``LISTEN``, a wake-up only; on the follower thread) or the log's last
number (now and then, and for ``refresh()``) with this node's position, and
:meth:`catch_up` reads what is new in one snapshot
(``REPEATABLE READ``), for the :meth:`poll` that follows. Now and then a commit
prunes the log (:mod:`.pruning`); a node whose position was pruned, or that finds
the log restarted, reads everything again.

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
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

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
from hutch.cells import Row, check_exact_numbers, check_value
from hutch.config import URL, redact_text
from hutch.ids import check_value_id
from hutch.persister import KnownIds, OpenStores, ProcessGuard, Turns, Unseen, is_follower

from . import CAPABILITIES, forks, pruning, upkeep
from .connection import BoundedConnection, Silent, ended
from .feed import Feed
from .rows import read_at_once, read_each
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

if TYPE_CHECKING:
    from hutch.relationships import Relationship

log = logging.getLogger("hutch.backends.postgres")

Connection = psycopg.Connection[tuple[Any, ...]]

#: Seconds to wait for the server when the URL sets no ``connect_timeout``: a server that
#: cannot be reached is an error after that, not a hang.
CONNECT_TIMEOUT = 10
#: libpq's TCP settings hutch adds where the URL sets none of its own: a peer that is gone (a
#: machine off, a network cut) fails the connection within about 30 s, not the kernel's
#: hours. The server's side of each session gets the same (see :func:`_session_setup`).
TCP = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # milliseconds
}
#: Seconds a command may go without a word from the server, beyond ``lock_timeout``, when
#: ``hutch.open`` is given no ``response_timeout`` (see :mod:`.connection`).
RESPONSE_TIMEOUT = 60.0
#: ``synchronous_commit`` for each durability: ``batch`` and ``none`` let the server
#: acknowledge a commit before its WAL reaches the disk (a crash may lose the last ones).
_SYNCHRONOUS = {"commit": "on", "batch": "off", "none": "off"}
#: PostgreSQL's ``lock_timeout`` is an int of milliseconds (0: wait for ever).
_LONGEST_LOCK_TIMEOUT_MS = 2**31 - 1


def _lock_timeout_ms(seconds: float) -> int:
    """``lock_timeout`` in seconds as PostgreSQL's setting (beyond its longest: for ever)."""
    timeout = seconds * 1000
    return 0 if timeout > _LONGEST_LOCK_TIMEOUT_MS else max(1, math.ceil(timeout))


class PostgresPersister(Persister):
    """The ``postgresql://`` backend: a schema of plain tables that many nodes share."""

    capabilities = CAPABILITIES

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("response_timeout", *pruning.OPTIONS)
        self._url = config.url
        self._where = config.url.redacted()  # the schema is added once known
        self._pruning = pruning.Pruning(config.options, self._where)
        #: How often this node read everything again, its position in the change log lost
        #: (pruned past it, or the log restarted): each time is logged, saying why.
        self.reloads = 0
        #: How many rows and values this node read from the store's tables (at open, then
        #: those the change log named, and everything at each reload).
        self.rows_read = 0
        self._params = _connection_parameters(config.url)
        self._session = _session_setup(config.url, self._params, config.durability)
        #: How long a command may hear nothing from the server: a lock wait, then an answer.
        self._patience = config.lock_timeout + _response_timeout(config)
        self._durability = config.durability
        self._settings: dict[str, CollectionSettings] = dict(config.collections)
        self._lock_timeout = config.lock_timeout
        self._read_only = config.read_only
        self._turns = Turns(config.lock_timeout, self._where)  # (one thread's at a time)
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
        self._known = KnownIds()  # what this node has handed the store
        self._found = False  # hutch's tables are there (a writing open makes them)
        self._conn = self._connect()
        try:
            self._layout = self._find_schema()
            self._where = f"{self._where} (schema {self._layout.schema!r})"
            with self._errors("open"):
                key = upkeep.store_key(self._conn, self._layout)
            self._claim = OpenStores(key, self._where)
        except BaseException:
            self._conn.close()
            raise
        self._process = ProcessGuard(self._where)
        self._feed = Feed(self._connect, self._layout.channel, self._where)

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        self._process.check()
        with self._errors("open"), self._connection():
            if not self._read_only:  # a read-only open reads the schema as it is
                self._prepare()
            with self._snapshot():
                tables, values = self._read_everything()
        self._known.reset(tables, values)
        return Snapshot(tables=tables, values=values)

    def begin(self) -> None:
        self._process.check()
        self._refuse_writing("lock")
        self._turns.take(self._ready)
        try:
            self._head = self._lock()
        except BaseException:
            self._turns.give()
            raise

    def end(self) -> None:
        try:
            if self._locked:
                with self._errors("release the lock of"):
                    self._rollback()  # nothing was committed since begin()
        finally:
            self._locked = False
            self._set_off = None  # (a mirror's: nobody polls it)
            self._turns.give()

    def behind(self) -> bool:
        """Whether the change log goes further than this node's position: for the follower,
        without a query while the feed can tell (see :mod:`.feed`); else asked on a
        connection of its own (the other may be a transaction's, on another thread), so that
        ``refresh()`` sees every commit made before it was called."""
        if self._turns.mine():  # holding the lock: nobody else commits
            return self._set_off is not None
        if os.getpid() != self._process.pid:  # a forked child: never the parent's connection
            return True  # (catch_up refuses it, saying why)
        # What was heard first, then what is read or waiting (see hutch.persister.Unseen).
        if self._found and is_follower() and (news := self._feed.news(self._seq)) is not None:
            return news or bool(self._unseen)
        try:
            with self._watch_lock:
                if self._watch is None or self._watch.broken:
                    self._watch = self._connect()
                if not self._found:  # read-only, before any writer made the store
                    query = f"SELECT to_regclass({literal(self._layout.changes)}) IS NOT NULL"
                    return bool(_one(self._watch.execute(query)))
                asked = self._feed.asking(self._seq)
                head = _one(self._watch.execute(f"SELECT max(seq) FROM {self._layout.changes}"))
                self._feed.answered(asked, head or 0)
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
        if self._turns.mine():
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
                targets = self._targets(changes)
                if self._pruning.due():  # now and then (see .pruning)
                    self._pruning.run(self._conn, self._layout, self._head, self._where)
                # One message, one round trip: each table's writes, how far the log then goes
                # (a line beyond what hutch wrote was set off by a person's trigger: read
                # below; a range: see _read_news), and the COMMIT, which PostgreSQL skips once
                # a statement before it failed.
                changes_table = self._layout.changes
                statements = [self._write(*target) for target in targets]
                statements.append(
                    f"SELECT count(*), max(seq) FROM {changes_table} WHERE seq > {self._head} "
                    f"AND seq <= (SELECT max(seq) FROM {changes_table})"
                )
                if ended(self._conn):  # the server ended the session as the transaction ran
                    raise psycopg.OperationalError("the connection is closed; nothing was sent")
                with self._committing():
                    cursor = self._conn.execute("; ".join([*statements, "COMMIT"]))
                written, reworked = 0, 0
                for _ in targets:
                    count, changed = _row(cursor)
                    written += count
                    reworked += changed
                    cursor.nextset()
                lines, last = _row(cursor)
            except BaseException:
                self._tables = tables  # a table made in the transaction is gone with it
                with contextlib.suppress(psycopg.Error):
                    self._rollback()
                raise
            finally:
                self._locked = False
            self._known.take_in(changes)
            if (lines != written or reworked) and not self._take_set_off(changes, last):
                return  # (this node reads the commit again, as another node's)
        if self._seq == self._head:  # this node had taken in everything before its commit
            self._seq = last or self._head

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings given to ``hutch.open``: the schema keeps none of its own."""
        return dict(self._settings)

    # -- looking after the store (see .upkeep) -----------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Sizes, rows, the change log's length and oldest line, waiters for the write lock."""
        self._process.check()
        with self._errors("look at"), self._connection(), self._snapshot():
            if META_TABLE not in self._relations():  # read-only, before any writer made it
                return {}
            return upkeep.stats(self._conn, self._layout, self._read_tables())

    def verify(self) -> list[str]:
        """What a person's SQL may have broken (see :func:`.upkeep.problems`), in one snapshot."""
        self._process.check()
        with self._errors("check"), self._connection(), self._snapshot():
            if META_TABLE not in self._relations():
                return []
            shown = self._url.redacted()
            return upkeep.problems(self._conn, self._layout, self._where, shown, self._settings)

    def reindex(self) -> None:
        """Make the missing indexes of ``indexed`` fields (holding the write lock: two nodes
        making one index would collide), then ``REINDEX`` every table."""
        self._process.check()
        self._refuse_writing("reindex")
        with self._errors("reindex"):
            with self._connection(), self._holding_the_lock():
                self._make_indexes(self._read_tables())
            with self._maintenance() as conn:
                upkeep.rebuild(conn, self._layout, self._tables.values())

    def compact(self) -> None:
        """Prune the change log as far as its policy allows (see :mod:`.pruning`), then rewrite
        every table (``VACUUM FULL``) so that deleted and overwritten rows leave its files."""
        self._process.check()
        self._refuse_writing("compact")
        with self._errors("compact"):
            with self._connection(), self._holding_the_lock() as head:
                tables = list(self._read_tables().values())
                self._pruning.run(self._conn, self._layout, head, self._where)
            with self._maintenance() as conn:
                upkeep.vacuum(conn, self._layout, tables, self._where)

    def describe_relationship(self, relationship_id: str, relationship: Relationship) -> None:
        """One line of the comment of the local collection's table (made if missing) says what
        the relationship links; nothing enforces it. A role that may not comment on the
        table (only its owner may) leaves it as it is, saying so in the log."""
        self._process.check()
        if self._read_only:
            return  # the comment only describes: a read-only open changes nothing
        with self._errors(f"describe relationship {relationship_id!r} in"), self._connection():
            local = self._table_of(relationship.local)
            if local is not None and not self._comments(relationship_id, relationship, local):
                return  # described already (every node defines it as it starts)
            tables = dict(self._tables)
            try:
                with self._holding_the_lock():
                    local = self._table_of(relationship.local) or self._create_table(
                        relationship.local
                    )
                    changed = self._comments(relationship_id, relationship, local)
                    for table, comment in changed.items():
                        self._conn.execute(upkeep.comment_statement(self._layout, table, comment))
            except BaseException as error:
                self._tables = tables  # a table made in the transaction is gone with it
                if not isinstance(error, pg_errors.InsufficientPrivilege):
                    raise
                log.warning(
                    "relationship %r is not described in %s: %s (only a table's owner may "
                    "comment on it)",
                    relationship_id,
                    self._where,
                    redact_text(str(error).strip()),
                )

    @contextmanager
    def _holding_the_lock(self, *, head: bool = True) -> Iterator[int]:
        """One transaction holding the store's write lock, committed as the block ends (rolled
        back if it raises); yields how far the change log went when the lock was taken (0
        without ``head``)."""
        last = self._lock(head=head)
        try:
            yield last
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._rollback()
            raise
        finally:
            self._locked = False

    @contextmanager
    def _maintenance(self) -> Iterator[Connection]:
        """A connection of its own for ``VACUUM`` and ``REINDEX``, closed after: this node's
        transactions go on meanwhile, and the server may stay silent for as long as a large
        table takes (no bound on silence, as :mod:`.connection` sets for the others). The
        wait for a table's lock is bounded by ``lock_timeout``: a session holding one for long
        would otherwise queue every node's reads and writes of it behind this one."""
        conn = self._connect()
        if isinstance(conn, BoundedConnection):
            conn.patience = None
        with contextlib.closing(conn):
            conn.execute(f"SET lock_timeout = {_lock_timeout_ms(self._lock_timeout)}")
            yield conn

    def _comments(
        self, relationship_id: str, relationship: Relationship, local: str
    ) -> dict[str, str | None]:
        """The comments of collections' tables that must change to describe the relationship
        on ``local`` (and on no other table, where an earlier definition put it)."""
        remote = self._tables.get(relationship.remote, relationship.remote)
        line = upkeep.relationship_line(relationship_id, relationship.on, remote)
        now = upkeep.comments(self._conn, self._layout)
        changed: dict[str, str | None] = {}
        for table in {local} | (now.keys() & set(self._tables.values())):
            comment = upkeep.commented(
                now.get(table), relationship_id, line if table == local else None
            )
            if comment != now.get(table):
                changed[table] = comment
        return changed

    def _make_indexes(self, tables: dict[str, str]) -> None:
        """Make the index of each ``indexed`` field of ``tables`` (collection -> table) that is
        missing (holding the write lock)."""
        statements = upkeep.missing_indexes(self._layout, tables, self._settings, self._relations())
        for statement in statements:
            self._conn.execute(statement)

    def close(self) -> None:
        if os.getpid() != self._process.pid:  # a forked child: the connections went at the
            self._closed = True  # fork (see .forks), and a lock that a thread of the parent's
            return  # held then would never be let go here
        self._feed.close()
        # Another thread's catch_up may be using the connection: wait for it, a while.
        taken = self._turns.take_within(min(self._lock_timeout, 60))
        try:
            self._closed = True
            with contextlib.suppress(psycopg.Error):
                self._rollback()  # (a transaction a failed begin or apply left open)
            self._conn.close()
            with self._watch_lock:
                if self._watch is not None:
                    self._watch.close()
        finally:
            self._claim.release()
            if taken:
                self._turns.give()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Connection:
        """A connection in autocommit mode (hutch says BEGIN and COMMIT itself), giving up
        after ``connect_timeout``, and on a command the server leaves unanswered (see
        :mod:`.connection`), committing as the durability asks."""
        try:
            conn = BoundedConnection.connect(self._url.raw, autocommit=True, **self._params)
        except psycopg.OperationalError as error:
            raise connect_error(error, self._url, self._where) from error
        conn.patience = self._patience
        try:
            conn.execute(self._session)
        except BaseException as error:
            conn.close()
            if isinstance(error, psycopg.Error):
                raise storage_error(error, "set up a session with", self._where) from error
            raise
        return forks.track(conn)

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
        if "%" in name:  # (psycopg would read it in hutch's queries as a placeholder)
            raise ConfigError(
                f"{self._where}: hutch cannot keep a store in a schema whose name holds '%' "
                f"({name!r}); create one without it (CREATE SCHEMA name) and name it in the URL: "
                "?options=-csearch_path%3Dname"
            )
        return Layout(name, oid)

    def _ready(self) -> None:
        """The connection, ready for the thread whose turn it is."""
        if self._closed:  # a stray call through a closed database
            raise ClosedError("the database is closed; open it again with hutch.open(...)")
        if ended(self._conn):  # the server restarted, the network cut
            self._conn = self._connect()

    def _connection(self) -> AbstractContextManager[None]:
        """The connection, for this thread alone (already so inside its transaction)."""
        return self._turns.held(self._ready)

    # -- transactions ------------------------------------------------------------------------

    def _lock(self, *, head: bool = True) -> int:
        """Open a transaction and take the store's write lock, waiting at most lock_timeout;
        return how far the change log goes (read once the lock is held: ``head``)."""
        statements = [
            "BEGIN ISOLATION LEVEL READ COMMITTED",  # each statement sees what committed before
            f"SET LOCAL lock_timeout = {_lock_timeout_ms(self._lock_timeout)}",
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

    @contextmanager
    def _committing(self) -> Iterator[None]:
        """A COMMIT in flight: a connection lost meanwhile leaves it unknown whether it
        happened, and the error says so. This node's position stays before it, so the node
        takes it in from the change log, if it happened, as it next reads the log."""
        try:
            yield
        except psycopg.Error as error:
            if self._conn.closed or connection_lost(error):
                raise commit_unknown(error, self._where) from error
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
        if not self._conn.closed and self._conn.info.transaction_status != TransactionStatus.IDLE:
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
        with self._holding_the_lock(head=False):
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
            self._make_indexes(self._tables)

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
        self._make_indexes({collection: name})
        return name

    # -- writing -----------------------------------------------------------------------------

    def _targets(self, changes: Changes) -> list[_Target]:
        """What ``changes`` writes, table by table (a new collection's table made first)."""
        targets: list[_Target] = []
        if changes.values or changes.deleted_values:
            values = dict(changes.values)  # (orjson writes dicts only)
            targets.append((VALUES_TABLE, "value", list(changes.deleted_values), values))
        for collection, rows in changes.tables.items():
            kept = {row_id: row for row_id, row in rows.items() if row is not None}
            name = self._table_of(collection)
            if name is None:
                if not kept:
                    continue  # deleting rows of a collection never written: nothing to do
                name = self._create_table(collection)
            deleted = [row_id for row_id, row in rows.items() if row is None]
            targets.append((name, "row", deleted, kept))
        return targets

    def _write(self, table: str, column: str, deleted: list[str], kept: dict[str, Any]) -> str:
        """The statement that writes one table's part of a commit and answers how many rows it
        wrote or deleted (each logs one line), and how many a person's trigger stored other
        than sent (those are read back once committed: :meth:`_take_set_off`). It fails if
        PostgreSQL skipped a row without an error (``_hutch_written``, see
        :meth:`.schema.Layout.functions`). The rows are literals, so that the commit is one
        message of the simple protocol: that costs both sides less than psycopg's pipeline of
        statements with parameters."""
        quoted = self._layout.qualified(table)
        written = self._layout.written
        parts, counts, changed = [], [], "0"
        if deleted:
            ids = ", ".join(map(literal, deleted))
            parts.append(f"gone AS (DELETE FROM {quoted} WHERE id IN ({ids}) RETURNING 1)")
            counts.append(
                f"{written}({literal(table)}, {len(deleted)}, (SELECT count(*) FROM gone))"
            )
        if kept:
            rows = ", ".join(
                f"({literal(key)}, {literal(orjson.dumps(value).decode())})"
                for key, value in kept.items()
            )
            parts.append(f"sent (id, body) AS (VALUES {rows})")
            parts.append(
                f"put AS (INSERT INTO {quoted} (id, {column}) SELECT id, body::json FROM sent "
                f"ON CONFLICT (id) DO UPDATE SET {column} = excluded.{column} "
                f"RETURNING id, {column}::text AS stored)"
            )
            counts.append(f"{written}({literal(table)}, {len(kept)}, (SELECT count(*) FROM put))")
            changed = "(SELECT count(*) FROM put JOIN sent USING (id) WHERE stored <> body)"
        return f"WITH {', '.join(parts)} SELECT {' + '.join(counts)}, {changed}"

    def _take_set_off(self, changes: Changes, last: int) -> bool:
        """Read what the commit just made wrote beyond ``changes`` (a person's triggers on
        hutch's tables: other rows, or ``changes``' own rows stored otherwise than sent), for
        the poll that follows it; whether that went well. Every row the commit logged is read
        back: the store keeps only those that differ from what it holds.

        Read once committed, in a snapshot (another node's later commit to those rows reads
        as newer: its own lines bring it again). A row that does not read back is logged
        here, and this node reads the commit again from its position, as another's, which
        raises :class:`~hutch.CorruptData` naming it.
        """
        named: dict[str, set[str] | None] = {}
        for collection, row_id, _ in changes.rows():  # (a BEFORE trigger logs no line more)
            _name(named, collection, row_id)
        for key in (*changes.values, *changes.deleted_values):
            _name(named, VALUES, key)
        try:
            with self._snapshot():
                for collection, row_id in self._conn.execute(
                    f"SELECT DISTINCT collection, row_id FROM {self._layout.changes} "
                    "WHERE seq > %s::bigint AND seq <= %s::bigint",  # (see _read_news)
                    (self._head, last),
                ):
                    _name(named, collection, row_id)
                set_off = self._read_named(named)
        except (psycopg.Error, StorageError):
            log.warning("reading what a commit set off in %s failed", self._where, exc_info=True)
            return False
        self._known.take_in(set_off)
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
        return tables, values

    def _read_news(self) -> Changes | None:
        """What others committed since this node last looked, as the change log names it (in a
        snapshot, or holding the write lock): the rows it names, never a whole table, unless
        a line names one whole (a ``TRUNCATE``), or the log lost this node's position: it
        was restarted, or pruned past it (then every row)."""
        if not self._found:
            return self._difference() if META_TABLE in self._relations() else None
        head = self._head if self._locked else self._last_seq()
        if head == self._seq:
            return None
        if head < self._seq:
            return self._reload(
                f"its change log ends at {head}, before this node's position {self._seq} (it "
                "was restarted or emptied)"
            )
        through = pruning.pruned_through(self._conn, self._layout, self._where)
        if self._seq < through <= head:  # (beyond the end: from before a restart, read above)
            return self._reload(
                f"its change log was pruned through line {through}, past this node's position "
                f"{self._seq} (see log_keep_seconds, log_keep_rows)"
            )
        named: dict[str, set[str] | None] = {}
        for collection, row_id in self._conn.execute(
            f"SELECT DISTINCT collection, row_id FROM {self._layout.changes} "
            # A range of bigints (as seq: psycopg sends a small int as a smallint), so that
            # the end of the log is read through its index however many lines it has: for a
            # bound on one side, PostgreSQL guesses that a third of the lines match (without
            # statistics yet, or in the plan psycopg prepares for any number), and reads all.
            "WHERE seq > %s::bigint AND seq <= %s::bigint",
            (self._seq, head),
        ):
            _name(named, collection, row_id)
        changes = self._read_named(named)
        self._seq = head
        self._known.take_in(changes)
        return changes if changes else None

    def _last_seq(self) -> int:
        return _one(self._conn.execute(f"SELECT max(seq) FROM {self._layout.changes}")) or 0

    def _reload(self, why: str) -> Changes | None:
        """Every row and value again, as :meth:`_difference` reads them, when the log cannot
        say what this node missed: counted (:attr:`reloads`) and logged, saying ``why``."""
        self.reloads += 1
        log.warning("%s: %s; this node reads every row again", self._where, why)
        return self._difference()

    def _read_named(self, named: dict[str, set[str] | None]) -> Changes:
        """The rows and values ``named`` names (``None``: every one of that collection), and
        ``None`` for each named one that is gone."""
        tables: dict[str, dict[str, Row | None]] = {}
        for collection, ids in named.items():
            name = None if collection == VALUES else self._table_of(collection)
            if name is None:
                continue  # the keyed values (below), or a line naming no collection of hutch's
            found = self._read_rows(collection, name, ids)
            gone = self._known.rows.get(collection, set()) if ids is None else ids
            rows: dict[str, Row | None] = {row_id: None for row_id in gone if row_id not in found}
            rows.update(found)
            if rows:
                tables[collection] = rows
        values: dict[str, Any] = {}
        deleted: frozenset[str] = frozenset()
        if VALUES in named:
            keys = named[VALUES]
            values = self._read_values(keys)
            gone = self._known.values if keys is None else keys
            deleted = frozenset(key for key in gone if key not in values)
        return Changes(tables, values, deleted)

    def _difference(self) -> Changes | None:
        """Every row and value as ``Changes``, with what this node knew and is gone."""
        changes = self._known.difference(*self._read_everything())
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
            else self._conn.execute(f"{select} WHERE id = ANY(%b)", (list(ids),))
        )
        pairs = cursor.fetchall()
        rows = read_at_once(pairs, collection)
        if rows is None:  # one may not check: read them one by one, to name the first
            rows = read_each(pairs, collection, f"{self._where}, table {name!r}")
        self.rows_read += len(rows)
        return rows

    def _read_values(self, keys: Collection[str] | None = None) -> dict[str, Any]:
        select = f"SELECT id, value::text FROM {self._layout.values}"
        cursor = (
            self._conn.execute(select)
            if keys is None
            else self._conn.execute(f"{select} WHERE id = ANY(%b)", (list(keys),))
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
        self.rows_read += len(values)
        return values

    # -- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            raise storage_error(error, doing, self._where) from error


#: One table's part of a commit: the table, its JSON column, the ids deleted, and the rows
#: (or values) upserted, by id.
_Target = tuple[str, str, list[str], dict[str, Any]]


def _name(named: dict[str, set[str] | None], collection: str, row_id: str | None) -> None:
    """Note a line of the change log: a row of ``collection``, or (``None``) all of them."""
    if row_id is None:
        named[collection] = None
    elif (ids := named.setdefault(collection, set())) is not None:
        ids.add(row_id)


Cursor = psycopg.Cursor[tuple[Any, ...]]


def _row(cursor: Cursor) -> tuple[Any, ...]:
    found = cursor.fetchone()
    if found is None:
        raise StorageError("PostgreSQL returned no row for a query that always returns one")
    return found


def _one(cursor: Cursor) -> Any:
    return _row(cursor)[0]


def _connection_parameters(url: URL) -> dict[str, Any]:
    """What hutch adds to the URL's own parameters: ``connect_timeout``, an
    ``application_name`` (that lock holders are shown by) and the :data:`TCP` settings,
    each unless the URL sets it, and ``client_encoding`` (the text hutch sends is UTF-8,
    whatever the environment says)."""
    try:
        given = conninfo_to_dict(url.raw)
    except (psycopg.Error, ValueError) as error:  # (ValueError: a %-escape that is not UTF-8)
        raise ConfigError(
            f"{url.redacted()!r} is not a libpq URL ({_scrubbed(error, url)}); write "
            "postgresql://user:password@host:port/database"
        ) from None
    added: dict[str, Any] = {"client_encoding": "UTF8"}
    if "connect_timeout" not in given:
        added["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in given:
        added["application_name"] = "hutch"
    added.update((name, value) for name, value in TCP.items() if name not in given)
    return added


def _session_setup(url: URL, params: dict[str, Any], durability: str) -> str:
    """What each new session runs first: the durability's ``synchronous_commit``, and the
    server's side of the connection's TCP settings (the URL's, else hutch's), so that the
    server ends the session of a node that died or was cut off, letting its write lock go,
    as soon as the node would notice; while a command runs, the server also looks for the
    node that often (``client_connection_check_interval``). A setting the server does not
    know (an older version) or cannot take (on its platform) is left as it is."""
    used = {**params, **conninfo_to_dict(url.raw)}
    settings: dict[str, int] = {}
    try:
        if str(used["keepalives"]).strip() != "0":
            interval = int(used["keepalives_interval"])
            settings["tcp_keepalives_idle"] = int(used["keepalives_idle"])
            settings["tcp_keepalives_interval"] = interval
            settings["tcp_keepalives_count"] = int(used["keepalives_count"])
            settings["client_connection_check_interval"] = interval * 1000
        settings["tcp_user_timeout"] = int(used["tcp_user_timeout"])
    except ValueError:
        raise ConfigError(
            f"{url.redacted()!r}: keepalives, keepalives_idle, keepalives_interval, "
            "keepalives_count and tcp_user_timeout take whole numbers (seconds, and "
            "milliseconds for tcp_user_timeout)"
        ) from None
    values = ", ".join(f"('{name}', '{value}')" for name, value in settings.items())
    return (
        f"SET synchronous_commit = {_SYNCHRONOUS[durability]}; "
        "DO $$ DECLARE s record; BEGIN "
        f"FOR s IN SELECT * FROM (VALUES {values}) AS v (name, setting) LOOP "
        "BEGIN PERFORM set_config(s.name, s.setting, false); "
        "EXCEPTION WHEN undefined_object OR invalid_parameter_value THEN NULL; END; "
        "END LOOP; END $$"
    )


def _response_timeout(config: BackendConfig) -> float:
    """The ``response_timeout`` given to ``hutch.open`` (seconds), else :data:`RESPONSE_TIMEOUT`."""
    value = config.options.get("response_timeout", RESPONSE_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            f"response_timeout takes a number of seconds above 0, not {value!r} (given to "
            f"hutch.open for {config.url.redacted()})"
        )
    return float(value)


#: What the server says while it starts, stops or recovers (SQLSTATE 57P03, which libpq drops).
_STARTING_OR_STOPPING = re.compile(
    r"the database system is (starting up|shutting down|in recovery mode|"
    r"not (yet )?accepting connections)"
).search
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
    if _STARTING_OR_STOPPING(text):
        return StorageError(
            f"{what}; the server is starting or stopping (a restart, a recovery): try again in "
            "a moment"
        )
    return StorageError(
        f"{what}; the server could not be reached within connect_timeout: check that it runs, "
        "the host and port of the URL, and that the network reaches it"
    )


def _scrubbed(error: Exception, url: URL) -> str:
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
    if connection_lost(error):
        return StorageError(
            f"{what}; the connection to the server was lost ({_why_lost(error)}). Nothing was "
            "written, and the next call connects again"
        )
    return StorageError(what)


def _why_lost(error: psycopg.Error) -> str:
    """What may have ended a connection that ``error`` says was lost."""
    if isinstance(error, Silent):
        return (
            "lock_timeout + response_timeout: the network may be cut, or the server or a proxy "
            "on the way stuck; give hutch.open a larger response_timeout if the server is only "
            "slow"
        )
    return "it restarted, the session was ended, or the network failed"


def connection_lost(error: psycopg.Error) -> bool:
    """Whether ``error`` ended the connection: libpq's own errors carry no SQLSTATE, and the
    server's that end a session are 08... (connection) and 57P.. (shut down, ended)."""
    state = error.sqlstate or ""
    own = isinstance(error, psycopg.OperationalError) and not state
    return own or state.startswith(("08", "57P"))


def commit_unknown(error: psycopg.Error, where: str) -> StorageError:
    """The error of a COMMIT whose connection was lost while it was in flight (sent with the
    commit's rows, in one message)."""
    return StorageError(
        f"PostgreSQL did not confirm the commit to {where} ({type(error).__name__}: "
        f"{redact_text(str(error).strip())}): the connection was lost while the commit was in "
        f"flight ({_why_lost(error)}), so it may or may not have happened. Memory was rolled "
        "back, and the next call connects again; this node then reads the change log (its "
        "next transaction, or db.refresh()) and takes the commit in if it happened: read the "
        "rows again then, before writing them once more"
    )
