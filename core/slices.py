"""The engine under Indexes and Relationships: row ids of one table, grouped into ordered slices.

A ``SliceIndex`` maps each row to zero or more slice keys and keeps every
slice as a sorted list, so a read is a list copy. It is kept current from each
transaction's :class:`~hutch.Changes`: only the changed rows are looked at,
and a row moves between slices in constant time (never a rebuild per write).

Keys are JSON scalars. ``True`` and ``1`` are different keys (as in JSON),
while ``1`` and ``1.0`` are the same number. Within a slice, rows are ordered
by row id, or by a sort key and then row id; sort keys of mixed types order as
None < booleans < numbers < strings < lists and objects, so any data sorts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import orjson

from hutch.cells import Row
from hutch.errors import DefinitionError

#: A row's slice keys, normalised (see :func:`slice_key`), without duplicates.
Keys = tuple[Hashable, ...]
#: Where a row sits: its keys and its sort entry (the row id, or ``(sort key, row id)``).
Place = tuple[Keys, Any]
KeysOf = Callable[[Row], Keys]
SortOf = Callable[[Row], Any]

_SCALARS = (str, int, float, bool, type(None))


def slice_key(value: Any) -> Hashable:
    """Normalise a key so that ``True`` and ``1`` land in different slices."""
    return (value,) if type(value) is bool else value


def order_key(value: Any) -> Any:
    """A sort key that orders any JSON value (and tuples of them) without a TypeError."""
    kind = type(value)
    if value is None:
        return (0,)
    if kind is bool:
        return (1, value)
    if kind is int or kind is float:
        return (2, value)
    if kind is str:
        return (3, value)
    if kind is tuple:
        return (5, tuple(order_key(item) for item in value))
    return (4, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def keys_from_cell(cell_id: str) -> KeysOf:
    """Keys from a cell: its value, each scalar of a list value, or none if the cell is absent."""

    def keys_of(row: Row) -> Keys:
        value = row.get(cell_id, _ABSENT)
        kind = type(value)
        if kind is str or kind is int or kind is float or value is None:
            return (value,)
        if kind is bool:
            return ((value,),)  # see slice_key
        if kind is list:
            return tuple(dict.fromkeys(slice_key(v) for v in value if type(v) in _SCALARS))
        return ()  # absent, or an object

    return keys_of


def keys_from_function(fn: Callable[[Row], Any]) -> KeysOf:
    """Keys from ``fn(row)``: one JSON scalar, or a list, tuple or set of them."""

    def keys_of(row: Row) -> Keys:
        result = fn(row)
        if isinstance(result, list | tuple | set | frozenset):
            return tuple(dict.fromkeys(slice_key(_checked_key(v)) for v in result))
        return (slice_key(_checked_key(result)),)

    return keys_of


def sort_from_cell(cell_id: str) -> SortOf:
    """Order rows by one cell (a missing cell sorts like ``None``)."""
    return lambda row: order_key(row.get(cell_id))


def sort_from_function(fn: Callable[[Row], Any]) -> SortOf:
    """Order rows by ``fn(row)``."""
    return lambda row: order_key(fn(row))


class _Slice:
    """The rows under one key, kept sorted lazily.

    A write only records the row as added or removed (O(1)); the next read
    folds what was recorded into the sorted list, in time proportional to the
    slice, which a read must copy anyway. So a slice of a million rows under
    one key costs a write no more than a slice of ten, and building an index
    sorts no slice until it is read.

    A new slice sets only ``entries`` and ``_ordered`` (an index of unique
    values makes one per row); the other fields exist once ``_ordered`` is a
    list, so read them only after checking it.
    """

    __slots__ = ("_added", "_ids", "_ordered", "_removed", "entries")

    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries  # row id -> its sort entry
        self._ordered: list[Any] | None = None  # None: sort everything at the next read
        self._ids: list[str]
        self._added: dict[str, Any]  # replaced, not filled, on the first add
        self._removed: set[Any]

    def add(self, row_id: str, entry: Any) -> None:
        self.entries[row_id] = entry
        if self._ordered is not None:
            if self._added is _NOTHING_ADDED:
                self._added = {}
            self._added[row_id] = entry

    def remove(self, row_id: str) -> None:
        entry = self.entries.pop(row_id)
        if self._ordered is not None and self._added.pop(row_id, None) is None:
            if self._removed is _NOTHING_REMOVED:
                self._removed = set()
            self._removed.add(entry)

    def ids(self) -> list[str]:
        """The row ids in order (the list itself: copy it before handing it out).

        Call it holding the store's lock. A published list is never changed
        again; the new list is published before the pending records are
        cleared, and ``_ordered`` last, so :meth:`SliceIndex.peek_row_ids` can run
        without the lock.
        """
        ordered = self._ordered
        if ordered is None:
            ordered = sorted(self.entries.values())
        elif self._added or self._removed:
            if self._removed:
                removed = self._removed
                ordered = [entry for entry in ordered if entry not in removed]
            if self._added:
                ordered = ordered + sorted(self._added.values())
                ordered.sort()  # two sorted runs: a linear merge
        else:
            return self._ids
        self._ids = _ids_of(ordered)
        self._added = _NOTHING_ADDED
        self._removed = _NOTHING_REMOVED
        self._ordered = ordered
        return self._ids


# Shared empty placeholders, so that a sorted slice allocates nothing it may never need.
# They are never filled: add() and remove() put a fresh dict or set in their place.
_NOTHING_ADDED: dict[str, Any] = {}
_NOTHING_REMOVED: set[Any] = set()


def _ids_of(ordered: list[Any]) -> list[str]:
    """Entries are row ids, or ``(sort key, row id)`` pairs."""
    if ordered and type(ordered[0]) is tuple:
        return [entry[1] for entry in ordered]
    return ordered


class SliceIndex:
    """Slices of one table's row ids, kept current from each transaction's changes."""

    def __init__(
        self,
        name: str,
        table_id: str,
        keys_of: KeysOf,
        sort_of: SortOf | None = None,
        *,
        reverse: bool = False,
    ) -> None:
        self.name = name
        self.table_id = table_id
        self._keys_of = keys_of
        self._sort_of = sort_of
        self._reverse = reverse
        self._slices: dict[Hashable, _Slice] = {}
        self._placed: dict[str, Place] = {}

    def build(self, rows: Mapping[str, Row]) -> None:
        """Fill the index from every row of the table at once (sorting each slice once)."""
        grouped: dict[Hashable, dict[str, Any]] = {}
        placed: dict[str, Place] = {}
        for row_id, row in rows.items():
            place = self._place(row_id, row)
            if place is not None:
                placed[row_id] = place
                for key in place[0]:
                    grouped.setdefault(key, {})[row_id] = place[1]
        self._placed = placed
        self._slices = {key: _Slice(entries) for key, entries in grouped.items()}

    def update_row(self, row_id: str, row: Row | None) -> None:
        """Move a row to its new slices, or raise (its key function failed) moving nothing."""
        place = None if row is None else self._place(row_id, row)
        placed = self._placed
        old = placed.get(row_id)
        if place == old:
            return
        slices = self._slices
        if old is not None:
            del placed[row_id]
            for key in old[0]:
                held = slices[key]
                held.remove(row_id)
                if not held.entries:
                    del slices[key]
        if place is not None:
            placed[row_id] = place
            keys, entry = place
            for key in keys:
                found = slices.get(key)
                if found is None:
                    slices[key] = _Slice({row_id: entry})
                else:
                    found.add(row_id, entry)

    def row_ids(self, key: Any) -> list[str]:
        """The row ids under ``key``, in order (a new list)."""
        try:
            found = self._slices.get(slice_key(key))
        except TypeError:  # an unhashable key (a list, a dict) names no slice
            return []
        if found is None:
            return []
        return found.ids()[::-1] if self._reverse else found.ids().copy()

    def peek_row_ids(self, key: Any) -> list[str] | None:
        """:meth:`row_ids` without the lock, or ``None`` when the slice must first be sorted."""
        try:
            found = self._slices.get((key,) if type(key) is bool else key)  # slice_key, inline
        except TypeError:
            return []
        if found is None:
            return []
        # Checks _ordered first: until it is a list, the other fields may not exist (see ids()).
        if found._ordered is None or found._added or found._removed:
            return None
        return found._ids[::-1] if self._reverse else found._ids.copy()

    def keys(self) -> list[Any]:
        """Every key that has rows, in the order of :func:`order_key`."""
        return sorted((_original(key) for key in self._slices), key=order_key)

    def placed(self) -> int:
        """How many rows are in a slice or more (a row without the cell is in none)."""
        return len(self._placed)

    def _place(self, row_id: str, row: Row) -> Place | None:
        """Where a row goes: its keys and its sort entry, or ``None`` for no slice."""
        try:
            keys = self._keys_of(row)
            if not keys:
                return None
            return keys, row_id if self._sort_of is None else (self._sort_of(row), row_id)
        except Exception as error:
            raise DefinitionError(
                f"{self.name!r} failed on row {self.table_id}/{row_id}: "
                f"{type(error).__name__}: {error}; fix its key function or the row"
            ) from error


_ABSENT: Any = object()


def _original(key: Hashable) -> Any:
    """Undo :func:`slice_key`."""
    return key[0] if type(key) is tuple else key


def _checked_key(value: Any) -> Any:
    if type(value) not in _SCALARS or (type(value) is float and not math.isfinite(value)):
        raise TypeError(
            f"a key function returned {value!r}; return a JSON scalar (str, int, float, bool, "
            "None) or a list of them"
        )
    return value
