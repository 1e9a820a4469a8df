"""The persister protocol: what a backend implements to hold a store's data.

A persister is small (DESIGN.md, "Data flow"): it loads everything once,
applies each transaction's :class:`~hutch.Changes` durably or raises, and
closes. A backend shared by several processes or machines also brackets each
write transaction with :meth:`Persister.begin` / :meth:`Persister.end` (to take
and release its write lock) and reports what others committed through
:meth:`Persister.poll`.

The store calls every method while holding its own lock, so a persister never
sees two calls at once from one store.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from hutch.cells import Row
from hutch.changes import Changes
from hutch.config import URL, CollectionSettings, Durability
from hutch.errors import ConfigError, LockTimeout, StorageError

if TYPE_CHECKING:
    from hutch.relationships import Relationship


@attrs.frozen
class Capabilities:
    """What a backend can do; the parity suite reads these to choose its tests."""

    durable: bool = False
    """A commit survives the process (and, under ``durability="commit"``, a power cut)."""
    multi_process: bool = False
    """Several processes on one machine may open the same store at once."""
    multi_node: bool = False
    """Several machines may open the same store at once."""
    change_feed: bool = False
    """:meth:`Persister.poll` reports changes committed by other processes or machines."""
    lazy_loading: bool = False
    """Rows may be fetched on demand rather than all at open."""
    read_only: bool = False
    """``hutch.open(url, read_only=True)`` opens the store writing nothing at all."""


@attrs.frozen
class Snapshot:
    """Everything a persister holds, as :meth:`Persister.load` returns it."""

    tables: dict[str, dict[str, Row]] = attrs.field(factory=dict)
    values: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class BackendConfig:
    """What ``hutch.open`` hands a backend's factory."""

    url: URL
    durability: Durability = "commit"
    collections: Mapping[str, CollectionSettings] = attrs.field(factory=dict)
    lock_timeout: float = 30.0
    """The longest wait, in seconds, for a lock another process holds (then
    :class:`~hutch.LockTimeout`); backends that lock honour it."""
    read_only: bool = False
    """Open writing nothing (only backends with ``capabilities.read_only``)."""
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=lambda o: f"<{', '.join(o)}>")
    """Keyword arguments of ``hutch.open`` that hutch itself does not know (backend options).

    ``repr`` shows their names only: a backend's option may be a password."""

    def check_options(self, *accepted: str) -> None:
        """Raise :class:`~hutch.ConfigError` if ``options`` holds a name not in ``accepted``."""
        unknown = sorted(set(self.options) - set(accepted))
        if unknown:
            takes = ", ".join(accepted) if accepted else "none"
            raise ConfigError(
                f"the {self.url.scheme} backend does not take the option(s) {', '.join(unknown)} "
                f"(given to hutch.open for {self.url.redacted()}); the options it takes: {takes}"
            )


class Persister(abc.ABC):
    """Base class of every backend; subclass it and register a factory by URL scheme.

    A factory is any callable taking a :class:`BackendConfig` and returning a
    ``Persister`` (usually the subclass itself).
    """

    capabilities: ClassVar[Capabilities] = Capabilities()

    @abc.abstractmethod
    def load(self) -> Snapshot:
        """Return everything stored; called once, when the database opens."""

    @abc.abstractmethod
    def apply(self, changes: Changes) -> None:
        """Make ``changes`` durable (as the durability setting asks) or raise.

        If this raises, the transaction fails and the store rolls memory back,
        so ``apply`` must leave the stored state as it was before the call.
        The rows in ``changes`` are shared with the store: read, never mutate.
        """

    def begin(self) -> None:  # noqa: B027 - optional hook, empty by default
        """A write transaction starts: take the backend's write lock, if it has one."""

    def end(self) -> None:  # noqa: B027 - optional hook, empty by default
        """The transaction begun by :meth:`begin` committed or rolled back: release the lock."""

    def poll(self) -> Changes | None:
        """Return what others committed since the last load or poll, or ``None`` for nothing.

        Called holding the store's lock: after :meth:`begin` (then read what is new,
        under the write lock), after an :meth:`apply` that succeeded when :meth:`behind`
        is true (what the commit set off, such as a trigger's writes), and after
        :meth:`catch_up` (then report what it read).
        """
        return None

    def behind(self) -> bool:
        """Whether others may have committed what :meth:`poll` has not reported yet.

        Called without any lock, about every 10 ms by the follower thread and by
        ``Database.refresh()``; it must be cheap (one ``stat``, say) and may err
        towards ``True``. Backends without a change feed never need to answer.
        """
        return True

    def catch_up(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Read what others committed, for the :meth:`poll` that follows to report.

        Called by ``Database.refresh()`` and the follower thread, without the
        store's lock, so it may wait for the backend's lock; :meth:`poll` then runs
        holding the store's lock and must not wait for the backend. A backend
        whose ``poll`` never waits needs nothing here.
        """

    def describe_relationship(  # noqa: B027 - optional hook, empty by default
        self, relationship_id: str, relationship: Relationship
    ) -> None:
        """A relationship was defined (or replaced): show the link where the format can.

        The SQLite backend declares a foreign key, so that tools such as
        Datasette show it. Describe, never enforce: a cell may point at a row
        that does not exist. Called outside any transaction; if this raises,
        the relationship is not defined.
        """

    def reindex(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Rebuild whatever on-disk indexes the backend keeps from its records."""

    def compact(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Drop superseded history now: a deleted or overwritten value leaves every file.

        Logs, journals and free pages keep old values for a while; this is the
        moment they must go (``Database.compact()``).
        """

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings each collection is stored with, given to ``hutch.open`` or kept by the
        backend (a folder's manifest): what a copy or a backup carries to another store, so
        that it opens there as it did here. Only collections with settings need be named."""
        return {}

    def verify(self) -> list[str]:
        """What is wrong in what the backend keeps beside the loaded rows, one line each.

        ``hutch verify`` calls it on a database opened read-only: an index file
        that does not match its records, two files or rows claiming one id (or
        ids that differ only in case, which a case-insensitive file system
        merges). Say what is wrong, where, and what to do; write nothing.
        """
        return []

    def stats(self) -> dict[str, Any]:
        """What the backend holds on disk, as JSON-able facts for ``hutch stats``.

        The keys a backend fills in where they apply: ``bytes`` (everything it
        keeps), ``log_bytes`` (logs and journals), ``collections`` (a mapping
        of collection to ``{"bytes": ..., "index_files": ...}``), and any
        others of its own. A backend with nothing on disk returns ``{}``.
        """
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release files, connections and locks; called once, by ``Database.close()``."""


class ProcessGuard:
    """Refuses a backend's use in a process forked after it opened.

    A forked child shares its parent's file locks, file offsets and
    connections; writing through them would corrupt both processes' view, so
    each process must open the database itself.
    """

    def __init__(self, where: object) -> None:
        self.pid = os.getpid()
        self._where = where

    def check(self) -> None:
        """Raise :class:`~hutch.StorageError` in a process other than the one that opened."""
        if os.getpid() != self.pid:
            raise StorageError(
                f"this database on {self._where} was opened by process {self.pid}, before a "
                "fork; open it again in each process (for web servers: in each worker)"
            )


class AlreadyOpen(ConfigError):
    """The store is open already in this process (through another path, perhaps)."""


class OpenStores:
    """The stores open in this process, keyed on their file or folder's device and inode (or
    on what else names a store wherever it is reached from: a PostgreSQL schema's cluster,
    database and schema), so that another path to one counts too.

    Two ``Database`` objects on one store in one process would each keep a copy of
    every row and take each other's commits in only as another process's: refused,
    with a message saying to share the one between threads. A process forked from
    one that had a store open may open it (its parent's entry is not its own).
    """

    _held: ClassVar[dict[Hashable, tuple[int, str]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _several: ClassVar[int] = 0  # how many allow_several() blocks are open

    @classmethod
    @contextmanager
    def allow_several(cls) -> Iterator[None]:
        """For tests only: stores opened inside the block may be opened several times in
        this process, each ``Database`` with its own files, locks and threads, as another
        process would have them, so that a test can play several processes in one."""
        with cls._lock:
            cls._several += 1
        try:
            yield
        finally:
            with cls._lock:
                cls._several -= 1

    def __init__(self, found: os.stat_result | tuple[Hashable, ...], where: object) -> None:
        """Claim the store ``found`` describes: its file or folder's ``stat``, or a key of the
        backend's own (``where`` names it in messages)."""
        self._key = (found.st_dev, found.st_ino) if isinstance(found, os.stat_result) else found
        self._pid = os.getpid()
        self._claimed = False
        with OpenStores._lock:
            if OpenStores._several:
                return
            held = OpenStores._held.get(self._key)
            if held is not None and held[0] == self._pid:
                raise AlreadyOpen(
                    f"{where} is open already in this process (as {held[1]}): a second "
                    "Database on one store would keep a second copy of every row. Share the "
                    "one Database between threads (it is thread-safe), or close it first"
                )
            OpenStores._held[self._key] = (self._pid, str(where))
            self._claimed = True

    def release(self) -> None:
        """The store is closed: it may open again. Releasing twice does nothing."""
        with OpenStores._lock:
            if self._claimed:
                self._claimed = False
                del OpenStores._held[self._key]


class Unseen:
    """Others' commits a backend has read (in ``catch_up``, a checkpoint...) and not yet
    handed to the store (``poll`` takes them, holding the store's lock), in log order.

    ``behind()`` asks, after its own look at the log: ``bool(unseen)`` is true while a
    read is in flight or something waits. A read marks itself (:meth:`reading`) before
    it notes how far the log goes, and puts what it read before it unmarks itself, so
    no read in flight goes unnoticed by a ``refresh()`` on another thread.
    """

    def __init__(self) -> None:
        self._waiting: list[Changes] = []
        self._lock = threading.Lock()
        self._readers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Mark a read of others' commits in flight, for as long as the block runs."""
        with self._lock:
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1

    def put(self, changes: Changes) -> None:
        with self._lock:
            self._waiting.append(changes)

    def take(self) -> Changes | None:
        """Everything waiting, combined (``None`` for nothing)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        return Changes.combined(waiting) if waiting else None

    def __bool__(self) -> bool:
        return bool(self._readers or self._waiting)


class Turns:
    """A backend's one connection, used by one thread at a time: a transaction's, from
    ``begin`` to ``end``, or a read's. A thread waits its turn at most ``lock_timeout`` (then
    :class:`~hutch.LockTimeout`), and the thread whose turn it is goes on without waiting
    (a read inside its own transaction)."""

    def __init__(self, lock_timeout: float, where: object) -> None:
        self._lock = threading.Lock()
        self._lock_timeout = lock_timeout
        self._where = where
        self._holder: int | None = None

    def mine(self) -> bool:
        """Whether it is the calling thread's turn."""
        return self._holder == threading.get_ident()

    def take(self, ready: Callable[[], None]) -> None:
        """Wait for the turn, then call ``ready`` (which may raise, giving the turn back: the
        database was closed, the connection must be made again...)."""
        if not self._lock.acquire(timeout=min(self._lock_timeout, threading.TIMEOUT_MAX)):
            raise LockTimeout(
                f"could not use the connection to {self._where} within "
                f"{self._lock_timeout:g} s (lock_timeout): another thread of this process held "
                "it (a transaction); find out why it takes so long, or give hutch.open a "
                "larger lock_timeout"
            )
        try:
            ready()
        except BaseException:
            self._lock.release()
            raise
        self._holder = threading.get_ident()

    def take_within(self, seconds: float) -> bool:
        """Wait for the turn at most ``seconds`` (a close); whether it came."""
        if not self._lock.acquire(timeout=min(seconds, threading.TIMEOUT_MAX)):
            return False
        self._holder = threading.get_ident()
        return True

    def give(self) -> None:
        self._holder = None
        self._lock.release()

    @contextmanager
    def held(self, ready: Callable[[], None]) -> Iterator[None]:
        """The turn for the block: taken (see :meth:`take`) unless it is already this
        thread's, and then given back."""
        if self.mine():
            yield
            return
        self.take(ready)
        try:
            yield
        finally:
            self.give()


class KnownIds:
    """The ids of the rows and keyed values a backend has handed its store, kept current
    with every change it takes in: what tells, when the backend must read everything again
    (a log it cannot follow), which rows and values are gone."""

    def __init__(self) -> None:
        self.rows: dict[str, set[str]] = {}  # by collection
        self.values: set[str] = set()

    def reset(self, tables: Mapping[str, Mapping[str, Row]], values: Mapping[str, Any]) -> None:
        """Know exactly ``tables`` and ``values`` (what was read whole)."""
        self.rows = {collection: set(rows) for collection, rows in tables.items()}
        self.values = set(values)

    def take_in(self, changes: Changes) -> None:
        for collection, rows in changes.tables.items():
            ids = self.rows.setdefault(collection, set())
            for row_id, row in rows.items():
                if row is None:
                    ids.discard(row_id)
                else:
                    ids.add(row_id)
        self.values.update(changes.values)
        self.values.difference_update(changes.deleted_values)

    def difference(
        self, tables: Mapping[str, Mapping[str, Row]], values: Mapping[str, Any]
    ) -> Changes:
        """Everything read whole, as ``Changes`` that also delete what was known and is
        gone (then known as it now is)."""
        changed: dict[str, dict[str, Row | None]] = {}
        for collection in set(tables) | set(self.rows):
            rows: dict[str, Row | None] = dict(tables.get(collection, {}))
            for gone in self.rows.get(collection, set()) - rows.keys():
                rows[gone] = None
            if rows:
                changed[collection] = rows
        deleted = frozenset(self.values - values.keys())
        self.reset(tables, values)
        return Changes(changed, dict(values), deleted)


#: Marks the follower thread (see :func:`become_follower`).
_this_thread = threading.local()


def become_follower() -> None:
    """Mark the calling thread as a database's follower: :meth:`Background.check` raises
    nothing there, so a background failure waits for a call of the application."""
    _this_thread.follower = True


def is_follower() -> bool:
    """Whether the calling thread is a database's follower: a backend's ``behind`` may answer
    it from a wake-up that can come late (a notification), where ``refresh()`` on another
    thread must see every commit made before it was called."""
    return bool(getattr(_this_thread, "follower", False))


class Background:
    """A backend's background thread (flushes, checkpoints), which no error stops.

    The thread calls :meth:`run` in a loop: whatever one round raises is logged
    and kept, and the next call of the application (:meth:`check`, from ``begin``
    or ``poll``) raises it as a :class:`~hutch.StorageError`, so a failure is
    never silent and the work goes on at the next round.
    """

    def __init__(self, what: str, where: object, logger: logging.Logger) -> None:
        self._what = what
        self._where = where
        self._log = logger
        self._failure: BaseException | None = None
        self._last: str | None = None  # the last failure, as repr
        self._lock = threading.Lock()

    def run(self, work: Callable[[], None]) -> bool:
        """One round of the background work; whether it went well.

        A failure is logged as a warning with its traceback the first time; the
        same failure again, round after round, only at debug level.
        """
        try:
            work()
        except Exception as error:  # kept (before it is logged), and raised in the foreground
            with self._lock:
                self._failure = error
            again = repr(error) == self._last
            self._last = repr(error)
            self._log.log(
                logging.DEBUG if again else logging.WARNING,
                "%s of %s failed in the background (tried again; the next call raises it): %s",
                self._what,
                self._where,
                error,
                exc_info=not again,
            )
            return False
        self._last = None
        return True

    def check(self) -> None:
        """Raise what the background last failed with (once), if it failed; on the follower
        thread, nothing (the application's next call raises it)."""
        if getattr(_this_thread, "follower", False):
            return
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            kind = type(failure) if isinstance(failure, StorageError) else StorageError
            raise kind(
                f"the {self._what} of {self._where} failed in the background: "
                f"{type(failure).__name__}: {failure}. It goes on trying; if this repeats, "
                "close the database and open it again"
            ) from failure
