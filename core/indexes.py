"""Indexes: named slices of a table's row ids, by a cell or by a function of the row.

``db.indexes.define("users_by_email", "users", "email")`` groups the rows of
``users`` by their ``email``; ``slice_row_ids("users_by_email", "a@x.io")``
is then a lookup, not a scan. Definitions live in memory, for as long as the
database is open; define them after each open (the model layer does it for you).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hutch.cells import Row
from hutch.definitions import Definitions
from hutch.errors import DefinitionError
from hutch.ids import check_table_id
from hutch.slices import (
    SliceIndex,
    SortOf,
    keys_from_cell,
    keys_from_function,
    sort_from_cell,
    sort_from_function,
)

#: What an index groups or sorts by: a cell id, or a function of the row.
On = str | Callable[[Row], Any]


class Indexes(Definitions):
    """The indexes of one database (``db.indexes``)."""

    kind = "index"
    define_call = "indexes.define"

    def define(
        self,
        index_id: str,
        table: str,
        on: On,
        *,
        sort_key: On | None = None,
        reverse: bool = False,
    ) -> None:
        """Define (or replace) an index of ``table`` by a cell or a function of the row.

        ``on`` names a cell, or is ``fn(row)`` returning one key or a list of keys
        (a row under several keys appears in each slice; an empty list puts it in
        none). A row without the cell is in no slice; a cell holding a list puts
        the row under each of its items. Within a slice, rows are ordered by
        ``sort_key`` (a cell or a function of the row) and then by row id, or by
        row id alone; ``reverse=True`` turns that order around.
        """
        self._check_name(index_id)
        check_table_id(table)
        if isinstance(on, str) and on:
            keys_of = keys_from_cell(on)
        elif callable(on):
            keys_of = keys_from_function(on)
        else:
            raise DefinitionError(
                f"index {index_id!r}: on must be a cell id or a function of the row, not {on!r}"
            )
        index = SliceIndex(
            f"index {index_id}",
            table,
            keys_of,
            _sort_of(index_id, sort_key),
            reverse=bool(reverse),
        )
        self._install(index_id, index)

    def index_ids(self) -> list[str]:
        """The ids of the defined indexes, sorted."""
        return self.ids()

    def table_id(self, index_id: str) -> str:
        """The table an index covers."""
        return self._get(index_id).table_id

    def slice_ids(self, index_id: str) -> list[Any]:
        """The keys that have rows, ordered None < booleans < numbers < strings."""
        with self._store.lock:
            return self._get(index_id).keys()

    def indexed_row_count(self, index_id: str) -> int:
        """How many rows are in a slice or more: fewer than the table's when some have no key."""
        with self._store.lock:
            return self._get(index_id).placed()

    def slice_row_ids(self, index_id: str, slice_id: Any) -> list[str]:
        """The ids of the rows under ``slice_id``, in the index's order (empty if none)."""
        index = self.defined(index_id)
        if index is not None:
            ids: list[str] | None = self._store.read_unlocked(index.peek_row_ids, slice_id)
            if ids is not None:
                return ids
        with self._store.lock:
            return self._get(index_id).row_ids(slice_id)


def _sort_of(index_id: str, sort_key: object) -> SortOf | None:
    if sort_key is None:
        return None
    if isinstance(sort_key, str) and sort_key:
        return sort_from_cell(sort_key)
    if callable(sort_key):
        return sort_from_function(sort_key)
    raise DefinitionError(
        f"index {index_id!r}: sort_key must be a cell id or a function of the row, not {sort_key!r}"
    )
