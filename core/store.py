"""The Store: tables of rows of cells, plus keyed values, resident in memory.

Reads are dictionary lookups that return copies. Every write runs in a
transaction (an implicit one for a single call). A transaction records the
state of each row and value the first time it touches it; at the end of the
outermost transaction those records give the net :class:`~hutch.Changes`,
which flow to the persister (which makes them durable or raises) and then to
the listeners. A failure anywhere before the persister returns puts every
touched row back as it was. Change consumers (indexes, relationships) follow
each write as it happens, so that they answer for a transaction's own writes;
a rollback feeds them the rows as they were.

Rows are replaced, never mutated in place, so a record of "the row before" is
just a reference, and ``Changes`` can share rows with the store.

One re-entrant lock guards the store: a transaction holds it from start to
end, so no other thread's write interleaves with it, and reads wait for a
transaction in flight rather than see its uncommitted rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from threading import get_ident
from types import TracebackType
from typing import Any, Protocol

from hutch.cells import Row, check_row, check_value, copy_row, copy_value, has_containers, same_json
from hutch.changes import Changes
from hutch.errors import (
    ClosedError,
    DefinitionError,
    HutchError,
    InvalidId,
    ListenerError,
    ReadOnlyStorage,
    StorageError,
)
from hutch.ids import check_cell_id, check_row_id, check_table_id, check_value_id
from hutch.persister import Persister, Snapshot

log = logging.getLogger("hutch.store")

Listener = Callable[[Changes], None]

_MISSING: Any = object()
#: How often a transaction lets a reader of this process go first (see Store._take_locks).
_TRIES = 8


class ChangeConsumer(Protocol):
    """Something kept current with every write to one table (indexes, relationships, caches)."""

    table_id: str

    def update_row(self, row_id: str, row: Row | None) -> None:
        """Take in a row's new state (``None``: deleted), or raise having changed nothing."""


class _Table:
    """The rows of one table, and which of them hold a list or dict (deep-copied on reads)."""

    __slots__ = ("deep", "rows")

    def __init__(self, rows: dict[str, Row]) -> None:
        self.rows = rows
        self.deep = {row_id for row_id, row in rows.items() if has_containers(row)}


class _Level:
    """One level of a (possibly nested) transaction: what its rows and values were before it."""

    __slots__ = ("rows", "values")

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Row | None]] = {}
        self.values: dict[str, Any] = {}


class _ListenerEntry:
    __slots__ = ("fn", "row_id", "table_id")

    def __init__(self, fn: Listener, table_id: str | None, row_id: str | None) -> None:
        self.fn = fn
        self.table_id = table_id
        self.row_id = row_id


class Store:
    """Tables → rows → cells, and keyed values; see DESIGN.md, "Public contract"."""

    def __init__(
        self, persister: Persister, snapshot: Snapshot, *, read_only: bool = False
    ) -> None:
        #: Opened with ``read_only=True``: every write raises :class:`~hutch.ReadOnlyStorage`.
        self.read_only = read_only
        self._lock = threading.RLock()
        self._persister = persister
        self._tables = {t: _Table(dict(rows)) for t, rows in snapshot.tables.items() if rows}
        self._values = dict(snapshot.values)
        self._levels: list[_Level] = []
        self._consumers: dict[str, list[ChangeConsumer]] = {}  # by the table they follow
        self._listeners: dict[int, _ListenerEntry] = {}
        self._next_listener_id = 1
        self._closed = False
        # A sequence number, odd while a transaction is in flight, lets the hot reads skip the
        # lock: a read that saw the same even number before and after saw only committed rows
        # (rows are replaced, never mutated in place, and each dict access is atomic).
        self._seq = 0
        self._owner: int | None = None  # the thread whose transaction is open
        self._heard_late: Changes | None = None  # others' commits taken in as it began
        # Skip the calls a persister does not override (most do not): they sit on every write.
        kind = type(persister)
        self._brackets = kind.begin is not Persister.begin or kind.end is not Persister.end
        self._polls = kind.poll is not Persister.poll

    # -- reads ---------------------------------------------------------------------------------

    def get_row(self, table_id: str, row_id: str) -> Row | None:
        """Return a copy of the row, or ``None`` if there is no such row."""
        seq = self._seq
        if not seq & 1:
            try:
                table = self._tables[table_id]
                row = table.rows[row_id]
                found = copy_row(row) if row_id in table.deep else row.copy()
            except (KeyError, TypeError):
                pass  # a miss: the locked path below checks the ids and the state
            else:
                if self._seq == seq:
                    return found
        with self._lock:
            held = self._tables.get(table_id) if type(table_id) is str else None
            stored = held.rows.get(row_id) if held is not None and type(row_id) is str else None
            if held is None or stored is None:
                self._check_read(table_id, row_id)
                return None
            return copy_row(stored) if row_id in held.deep else stored.copy()

    def get_cell(self, table_id: str, row_id: str, cell_id: str, default: Any = None) -> Any:
        """Return a copy of the cell's value, or ``default`` if the row or cell is missing."""
        with self._lock:
            try:
                value = self._tables[table_id].rows[row_id].get(cell_id, _MISSING)
            except (KeyError, TypeError):
                value = _MISSING
            if value is _MISSING:
                self._check_read(table_id, row_id)
                check_cell_id(table_id, row_id, cell_id)
                return default
            return copy_value(value)

    def has_row(self, table_id: str, row_id: str) -> bool:
        """Tell whether the row exists."""
        with self._lock:
            try:
                if row_id in self._tables[table_id].rows:
                    return True
            except (KeyError, TypeError):
                pass
            self._check_read(table_id, row_id)
            return False

    def has_cell(self, table_id: str, row_id: str, cell_id: str) -> bool:
        """Tell whether the row exists and has the cell (whose value may be ``None``)."""
        with self._lock:
            try:
                if cell_id in self._tables[table_id].rows[row_id]:
                    return True
            except (KeyError, TypeError):
                pass
            self._check_read(table_id, row_id)
            check_cell_id(table_id, row_id, cell_id)
            return False

    def has_table(self, table_id: str) -> bool:
        """Tell whether the table has any rows (a table with no rows does not exist)."""
        with self._lock:
            self._check_read(table_id)
            return table_id in self._tables

    def get_row_ids(self, table_id: str) -> list[str]:
        """Return the table's row ids in sorted order (empty for a missing table)."""
        with self._lock:
            self._check_read(table_id)
            table = self._tables.get(table_id)
            return [] if table is None else sorted(table.rows)

    def get_row_count(self, table_id: str) -> int:
        """Return how many rows the table has."""
        with self._lock:
            self._check_read(table_id)
            table = self._tables.get(table_id)
            return 0 if table is None else len(table.rows)

    def get_table(self, table_id: str) -> dict[str, Row]:
        """Return a copy of the table, ``{row_id: row}`` in row id order."""
        with self._lock:
            self._check_read(table_id)
            table = self._tables.get(table_id)
            if table is None:
                return {}
            deep = table.deep
            rows = table.rows
            return {r: copy_row(rows[r]) if r in deep else rows[r].copy() for r in sorted(rows)}

    def get_table_ids(self) -> list[str]:
        """Return the ids of the tables that have rows, sorted."""
        with self._lock:
            self.check_open()
            return sorted(self._tables)

    def get_value(self, value_id: str, default: Any = None) -> Any:
        """Return a copy of the keyed value, or ``default`` if it is not set."""
        with self._lock:
            try:
                value = self._values.get(value_id, _MISSING)
            except TypeError:  # unhashable: not an id at all
                value = _MISSING
            if value is _MISSING:
                self.check_open()
                check_value_id(value_id)
                return default
            return copy_value(value)

    def has_value(self, value_id: str) -> bool:
        """Tell whether the keyed value is set (its value may be ``None``)."""
        with self._lock:
            self.check_open()
            return check_value_id(value_id) in self._values

    def get_values(self) -> dict[str, Any]:
        """Return a copy of every keyed value, sorted by key."""
        with self._lock:
            self.check_open()
            return {key: copy_value(self._values[key]) for key in sorted(self._values)}

    # -- writes --------------------------------------------------------------------------------

    def set_row(self, table_id: str, row_id: str, row: Row) -> None:
        """Replace the row (creating it); a row of no cells deletes it."""
        self._check_write(table_id, row_id)
        checked, nested = check_row(table_id, row_id, row)
        if self._owner == get_ident():  # inside this thread's transaction (see _write)
            self._put(table_id, row_id, checked or None, nested)
        else:
            self._write(self._put, table_id, row_id, checked or None, nested)

    def set_partial_row(self, table_id: str, row_id: str, partial: Row) -> None:
        """Set the given cells and keep the others, creating the row if it is missing."""
        self._check_write(table_id, row_id)
        checked, nested = check_row(table_id, row_id, partial)
        if not checked:
            self.check_open()
            return
        self._write(self._merge, table_id, row_id, checked, nested)

    def set_cell(self, table_id: str, row_id: str, cell_id: str, value: Any) -> None:
        """Set one cell, creating the row if it is missing; ``None`` is a value, not a deletion."""
        check_cell_id(table_id, row_id, cell_id)
        self.set_partial_row(table_id, row_id, {cell_id: value})

    def del_row(self, table_id: str, row_id: str) -> None:
        """Delete the row; deleting a missing row does nothing."""
        self._check_write(table_id, row_id)
        self._write(self._put, table_id, row_id, None, False)

    def del_cell(self, table_id: str, row_id: str, cell_id: str) -> None:
        """Delete one cell; a row whose last cell goes no longer exists."""
        self._check_write(table_id, row_id)
        check_cell_id(table_id, row_id, cell_id)
        self._write(self._drop_cell, table_id, row_id, cell_id)

    def del_table(self, table_id: str) -> None:
        """Delete every row of the table."""
        check_table_id(table_id)
        self._write(self._drop_table, table_id)

    def set_value(self, value_id: str, value: Any) -> None:
        """Set a keyed value; ``None`` is a value, not a deletion."""
        check_value_id(value_id)
        checked = check_value(value, f"value {value_id!r}")
        self._write(self._put_value, value_id, checked)

    def del_value(self, value_id: str) -> None:
        """Delete a keyed value; deleting a missing value does nothing."""
        check_value_id(value_id)
        self._write(self._put_value, value_id, _MISSING)

    # -- transactions and listeners --------------------------------------------------------------

    def transaction(self) -> Store:
        """Group writes: ``with store.transaction(): ...`` commits all of them or none.

        An exception that leaves the block rolls its writes back and goes on up.
        A transaction nested in another joins it: its changes commit with the
        outer one, and an exception that leaves it undoes just its own writes.
        Listeners fire once, after the outermost commit. (The store itself is
        the context manager, as a ``sqlite3`` connection is: ``with store:`` is
        the same thing.)
        """
        return self

    def __enter__(self) -> Store:
        if self._owner == get_ident():  # nested: this thread's transaction is open
            self._lock.acquire()
            self._levels.append(_Level())
            return self
        if self.read_only:
            raise ReadOnlyStorage(
                "this database was opened with read_only=True: it writes nothing; open it "
                "again without read_only to write"
            )
        self.check_open()  # (before the backend is asked for anything)
        self._take_locks()
        try:
            self.check_open()
            if self._polls:  # heard once the backend's lock is let go (see __exit__)
                self._heard_late = self._take_external(notify=False)
        except BaseException:
            try:
                if self._brackets:
                    self._persister.end()
            finally:
                self._lock.release()
            raise
        self._seq += 1  # odd: a transaction is in flight (see get_row)
        self._owner = get_ident()
        self._levels.append(_Level())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        level = self._levels.pop()
        try:
            if self._levels:
                if kind is None:
                    self._merge_into_parent(level)
                else:
                    self._restore(level)
                return
            changes = late = None
            others, self._heard_late = self._heard_late, None
            try:
                if kind is None:
                    changes = self._commit(level)
                    if changes is not None and self._polls:
                        late = self._set_off()
                else:
                    self._restore(level)
            finally:
                self._owner = None
                self._seq += 1  # even again: what readers see is committed
                if self._brackets:
                    self._persister.end()
            # Listeners run after the backend's lock is let go (so one may write), first
            # hearing what other processes committed before this transaction, then it.
            heard = [c for c in (others, changes, late) if c is not None]
            if heard and self._listeners:
                self._notify(*heard)
        finally:
            self._lock.release()

    def add_listener(self, fn: Listener, table: str | None = None, row: str | None = None) -> int:
        """Call ``fn(changes)`` after each commit touching ``table`` (and ``row``); return an id.

        With no table, ``fn`` hears every commit. Listeners run on the committing
        thread, in the order of commits, and receive a private copy of the changes.
        """
        if not callable(fn):
            raise DefinitionError(
                f"add_listener takes a function of one argument (the changes), not {fn!r}"
            )
        if table is not None:
            check_table_id(table)
        if row is not None:
            if table is None:
                raise InvalidId(
                    f"a row listener needs its table: add_listener(fn, table=..., row={row!r})"
                )
            check_row_id(table, row)
        with self._lock:
            self.check_open()
            listener_id = self._next_listener_id
            self._next_listener_id += 1
            self._listeners[listener_id] = _ListenerEntry(fn, table, row)
            return listener_id

    def remove_listener(self, listener_id: int) -> None:
        """Stop calling a listener; removing an unknown id does nothing."""
        with self._lock:
            self.check_open()
            if isinstance(listener_id, int):
                self._listeners.pop(listener_id, None)

    # -- what Database, Indexes and Relationships use ----------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """The store's lock; hold it to read several things consistently."""
        return self._lock

    def add_consumer(self, consumer: ChangeConsumer) -> None:
        """Feed every write to ``consumer`` as it happens (and every rollback, reversed)."""
        with self._lock:
            self._consumers.setdefault(consumer.table_id, []).append(consumer)

    def rows_of(self, table_id: str) -> dict[str, Row]:
        """The live rows of a table, for code holding :attr:`lock` that only reads them."""
        table = self._tables.get(table_id)
        return {} if table is None else table.rows

    def refresh(self) -> None:
        """Take in what other processes or machines committed, as the persister reports it.

        About one ``stat`` when nothing changed (the persister's ``behind``); the
        backend reads what is new (``catch_up``) before the store's lock is taken.
        """
        self.check_open()
        if not self._polls or self._owner == get_ident():
            return  # inside a transaction, the view stays as it began
        if not self._persister.behind():
            return
        self._persister.catch_up()
        with self._lock:
            self.check_open()
            if not self._levels:  # inside a transaction, the view stays as it began
                self._take_external()

    def close(self) -> None:
        """Release the persister; later calls raise :class:`~hutch.ClosedError`."""
        with self._lock:
            if self._closed:
                return
            if self._levels:
                raise HutchError(
                    "the database cannot close inside a transaction; close it after the "
                    "`with ...transaction():` block ends"
                )
            self._closed = True
            self._seq |= 1  # for good: every read takes the lock, which reports the close
            self._tables = {}
            self._values = {}
        # Outside the lock: closing takes the backend's locks, which come before it.
        self._persister.close()

    def read_unlocked(self, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)`` without the lock, or ``None`` if a write may have run meanwhile.

        ``read`` must only read, and return ``None`` when it cannot answer
        without the lock; the caller then reads again holding it.
        """
        seq = self._seq
        if seq & 1:
            return None
        result = read(*args)
        return result if self._seq == seq else None

    def owns_transaction(self) -> bool:
        """Whether the calling thread has a transaction open on this store."""
        return self._owner == get_ident()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (meaningful to the thread holding :attr:`lock`)."""
        return bool(self._levels)

    def remove_consumer(self, consumer: ChangeConsumer) -> None:
        """Stop feeding changes to ``consumer``."""
        with self._lock:
            self._consumers[consumer.table_id].remove(consumer)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- internals -----------------------------------------------------------------------------

    def check_open(self) -> None:
        """Raise :class:`~hutch.ClosedError` if the database was closed."""
        if self._closed:
            raise ClosedError("the database is closed; open it again with hutch.open(...)")

    def _check_read(self, table_id: str, row_id: object = _MISSING) -> None:
        """Validate ids on a read that found nothing (a hit proves them valid already)."""
        self.check_open()
        check_table_id(table_id)
        if row_id is not _MISSING:
            check_row_id(table_id, row_id)

    def _check_write(self, table_id: str, row_id: str) -> None:
        table = self._tables.get(table_id) if type(table_id) is str else None
        if table is None:
            check_table_id(table_id)
        if table is None or type(row_id) is not str or row_id not in table.rows:
            check_row_id(table_id, row_id)

    def _write(self, change: Callable[..., None], *args: Any) -> None:
        """Make one checked write: its own transaction, or part of this thread's open one.

        Inside a transaction a single write needs no nested level: it was checked
        before anything changed, and ``change`` itself cannot fail half-way.
        """
        if self._owner == get_ident():
            change(*args)
            return
        with self:
            change(*args)

    def _merge(self, table_id: str, row_id: str, cells: Row, nested: bool) -> None:
        table = self._tables.get(table_id)
        old = None if table is None else table.rows.get(row_id)
        if old is None:
            self._put(table_id, row_id, cells, nested)
            return
        merged = old | cells
        if not nested and row_id in table.deep:  # type: ignore[union-attr]
            nested = has_containers(merged)
        self._put(table_id, row_id, merged, nested)

    def _drop_cell(self, table_id: str, row_id: str, cell_id: str) -> None:
        table = self._tables.get(table_id)
        old = None if table is None else table.rows.get(row_id)
        if old is None or cell_id not in old:
            return
        row = {c: v for c, v in old.items() if c != cell_id}
        nested = row_id in table.deep and has_containers(row)  # type: ignore[union-attr]
        self._put(table_id, row_id, row or None, nested)

    def _drop_table(self, table_id: str) -> None:
        table = self._tables.get(table_id)
        for row_id in [] if table is None else list(table.rows):
            self._put(table_id, row_id, None, False)

    def _put(self, table_id: str, row_id: str, row: Row | None, nested: bool) -> None:
        """Replace (or, with ``None``, delete) a row, remembering what it was before.

        The consumers take the write first, so that indexes answer for the
        transaction's own writes; one that refuses it stops the write here.
        """
        table = self._tables.get(table_id)
        old = None if table is None else table.rows.get(row_id)
        if old is None and row is None:
            return
        consumers = self._consumers.get(table_id)
        if consumers:
            self._feed(consumers, row_id, row, old)
        touched = self._levels[-1].rows
        before = touched.get(table_id)
        if before is None:
            before = touched[table_id] = {}
        if row_id not in before:
            before[row_id] = old
        if table is None or row is None:
            self._store_row(table_id, row_id, row, nested)
            return
        table.rows[row_id] = row  # the common case of _store_row, on the path of every write
        if nested:
            table.deep.add(row_id)
        elif table.deep:
            table.deep.discard(row_id)

    def _store_row(self, table_id: str, row_id: str, row: Row | None, nested: bool) -> None:
        table = self._tables.get(table_id)
        if row is None:
            if table is not None and row_id in table.rows:
                del table.rows[row_id]
                table.deep.discard(row_id)
                if not table.rows:
                    del self._tables[table_id]
            return
        if table is None:
            self._tables[table_id] = _Table({row_id: row})
            return
        table.rows[row_id] = row
        if nested:
            table.deep.add(row_id)
        elif table.deep:
            table.deep.discard(row_id)

    def _put_value(self, value_id: str, value: Any) -> None:
        old = self._values.get(value_id, _MISSING)
        if old is _MISSING and value is _MISSING:
            return
        self._levels[-1].values.setdefault(value_id, old)
        if value is _MISSING:
            del self._values[value_id]
        else:
            self._values[value_id] = value

    def _take_locks(self) -> None:
        """The backend's write lock (which may wait for another process), then the store's.

        The store's lock is never waited for holding the backend's: if another
        thread holds it (a reader), the backend's lock is let go, and taken again
        once the reader is done; after a few tries, or at once if this very thread
        holds the store's lock (a listener that writes), the store's lock is taken
        first. So no thread ever waits for the store's lock while it holds the
        backend's, and the two cannot deadlock; and a thread waiting for another
        process holds nothing this process's readers need, but in that last case.
        """
        if not self._brackets:
            self._lock.acquire()
            return
        for _ in range(_TRIES):
            self._persister.begin()
            try:
                if self._lock.acquire(blocking=False):
                    return
            except BaseException:
                self._persister.end()
                raise
            self._persister.end()
            if self._lock._is_owned():  # type: ignore[attr-defined]  # a listener that writes
                break
            with self._lock:  # a reader: let it finish, then try again
                pass
        self._lock.acquire()
        try:
            self._persister.begin()
        except BaseException:
            self._lock.release()
            raise

    def _merge_into_parent(self, level: _Level) -> None:
        parent = self._levels[-1]
        for table_id, rows in level.rows.items():
            parent_rows = parent.rows.setdefault(table_id, {})
            for row_id, old in rows.items():
                parent_rows.setdefault(row_id, old)
        for value_id, old in level.values.items():
            parent.values.setdefault(value_id, old)

    def _feed(
        self, consumers: list[ChangeConsumer], row_id: str, row: Row | None, old: Row | None
    ) -> None:
        """Give a write to the consumers; if one refuses, give those before it the old row."""
        done = 0
        try:
            for consumer in consumers:
                consumer.update_row(row_id, row)
                done += 1
        except BaseException:
            for consumer in consumers[:done]:
                consumer.update_row(row_id, old)
            raise

    def _restore(self, level: _Level) -> None:
        """Put every row and value the level touched back as it was (consumers too)."""
        for table_id, rows in level.rows.items():
            for row_id, old in rows.items():
                self._store_row(table_id, row_id, old, old is not None and has_containers(old))
        for table_id, rows in level.rows.items():
            for consumer in self._consumers.get(table_id, ()):
                for row_id, old in rows.items():
                    consumer.update_row(row_id, old)
        for value_id, old in level.values.items():
            if old is _MISSING:
                self._values.pop(value_id, None)
            else:
                self._values[value_id] = old

    def _commit(self, level: _Level) -> Changes | None:
        """Persist the level's net changes, or restore everything it touched and raise.

        Returns the changes, or ``None`` if the transaction changed nothing in the end.
        """
        changes = self._net_changes(level)
        if changes is None:
            return None
        try:
            self._persister.apply(changes)
        except BaseException as error:
            self._restore(level)
            if isinstance(error, Exception) and not isinstance(error, HutchError):
                raise StorageError(
                    f"the backend failed to persist the transaction ({type(error).__name__}: "
                    f"{error}); it was rolled back and nothing was written"
                ) from error
            raise
        return changes

    def _net_changes(self, level: _Level) -> Changes | None:
        tables: dict[str, dict[str, Row | None]] = {}
        for table_id, rows in level.rows.items():
            table = self._tables.get(table_id)
            current = {} if table is None else table.rows
            changed: dict[str, Row | None] = {}
            for row_id, old in rows.items():
                new = current.get(row_id)
                if new is not old and (
                    new is None or old is None or new != old or not same_json(new, old)
                ):
                    changed[row_id] = new
            if changed:
                tables[table_id] = changed
        if not level.values:
            return Changes(tables) if tables else None
        values: dict[str, Any] = {}
        deleted: set[str] = set()
        for value_id, old in level.values.items():
            new = self._values.get(value_id, _MISSING)
            if new is old:
                continue
            if new is _MISSING:
                deleted.add(value_id)
            elif old is _MISSING or new != old or not same_json(new, old):
                values[value_id] = new
        if not (tables or values or deleted):
            return None
        return Changes(tables, values, frozenset(deleted))

    def _set_off(self) -> Changes | None:
        """What the commit just made set off in the backend (a trigger of a SQLite file's
        own), read under the same write lock. The commit stands: a backend that fails to
        read it (a ``StorageError``) is logged, and its next poll reads it again."""
        try:
            return self._take_external(notify=False) if self._persister.behind() else None
        except StorageError:
            log.warning("reading back what a commit set off failed", exc_info=True)
            return None

    def _take_external(self, *, notify: bool = True) -> Changes | None:
        """Apply what the persister reports others committed: memory, consumers and (given
        ``notify``) listeners; what was applied, if anything."""
        # In flight from before the poll: what it takes from the persister is in no
        # store until applied, and a reader that saw nothing new must wait for it.
        seq = self._seq
        self._seq |= 1
        try:
            reported = self._persister.poll()
            changes = None if reported is None else self._net_external(reported)
            if changes is None:
                return None
            for table_id, row_id, row in changes.rows():
                self._store_row(table_id, row_id, row, row is not None and has_containers(row))
            for value_id, value in changes.values.items():
                self._values[value_id] = value
            for value_id in changes.deleted_values:
                self._values.pop(value_id, None)
            for table_id, rows in changes.tables.items():
                for consumer in self._consumers.get(table_id, ()):
                    for row_id, row in rows.items():
                        consumer.update_row(row_id, row)
        finally:
            if not seq & 1:
                self._seq = seq + 2  # even again, and not what a reader saw before
        if notify and self._listeners:
            self._notify(changes)
        return changes

    def _net_external(self, reported: Changes) -> Changes | None:
        """What ``reported`` changes here: rows and values that differ from this store's."""
        tables: dict[str, dict[str, Row | None]] = {}
        for table_id, rows in reported.tables.items():
            table = self._tables.get(table_id)
            current = {} if table is None else table.rows
            changed = {
                row_id: row
                for row_id, row in rows.items()
                if not _same_row(current.get(row_id), row)
            }
            if changed:
                tables[table_id] = changed
        values = {
            key: value
            for key, value in reported.values.items()
            if not (key in self._values and same_json(self._values[key], value))
        }
        deleted = frozenset(key for key in reported.deleted_values if key in self._values)
        if not (tables or values or deleted):
            return None
        return Changes(tables, values, deleted)

    def _notify(self, *heard: Changes) -> None:
        errors: list[BaseException] = []
        for changes in heard:
            for entry in list(self._listeners.values()):
                if changes.touches(entry.table_id, entry.row_id):
                    try:
                        entry.fn(changes.copy())
                    except Exception as error:
                        errors.append(error)
        if errors:
            names = ", ".join(repr(e) for e in errors)
            raise ListenerError(
                f"the transaction committed, but {len(errors)} listener(s) raised: {names}",
                errors,
            ) from errors[0]


def _same_row(a: Row | None, b: Row | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b and same_json(a, b)
