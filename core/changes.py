"""``Changes``: the net effect of one transaction, the one value every consumer reads.

Indexes, relationships, listeners, the persister and (later) mirrors all
consume the same ``Changes``. Inside it a row of ``None`` means the row was
deleted; keyed values use ``deleted_values`` instead, because ``None`` is a
value like any other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hutch.cells import Row, copy_row, copy_value


class Changes:
    """What one transaction changed: ``{table: {row_id: row | None}}`` plus keyed values.

    The rows are shared with the store and must be treated as read-only;
    listeners receive a private copy (:meth:`copy`).
    """

    __slots__ = ("deleted_values", "tables", "values")

    def __init__(
        self,
        tables: Mapping[str, Mapping[str, Row | None]] | None = None,
        values: Mapping[str, Any] | None = None,
        deleted_values: frozenset[str] = frozenset(),
    ) -> None:
        self.tables: Mapping[str, Mapping[str, Row | None]] = tables or {}
        self.values: Mapping[str, Any] = values or {}
        self.deleted_values = deleted_values

    def __bool__(self) -> bool:
        return bool(self.tables or self.values or self.deleted_values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Changes):
            return NotImplemented
        return (self.tables, self.values, self.deleted_values) == (
            other.tables,
            other.values,
            other.deleted_values,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Changes(tables={dict(self.tables)!r}, values={dict(self.values)!r}, "
            f"deleted_values={set(self.deleted_values)!r})"
        )

    def rows(self) -> Iterator[tuple[str, str, Row | None]]:
        """Yield ``(table_id, row_id, row or None)`` for every changed row."""
        for table_id, rows in self.tables.items():
            for row_id, row in rows.items():
                yield table_id, row_id, row

    def touches(self, table_id: str | None = None, row_id: str | None = None) -> bool:
        """Tell whether these changes touch ``table_id`` (and ``row_id``), or anything at all."""
        if table_id is None:
            return bool(self)
        rows = self.tables.get(table_id)
        if rows is None:
            return False
        return row_id is None or row_id in rows

    @classmethod
    def combined(cls, many: list[Changes]) -> Changes:
        """One ``Changes`` with the effect of several, applied in order."""
        if len(many) == 1:
            return many[0]
        tables: dict[str, dict[str, Row | None]] = {}
        values: dict[str, Any] = {}
        deleted: set[str] = set()
        for changes in many:
            for table_id, rows in changes.tables.items():
                tables.setdefault(table_id, {}).update(rows)
            for key, value in changes.values.items():
                values[key] = value
                deleted.discard(key)
            for key in changes.deleted_values:
                values.pop(key, None)
                deleted.add(key)
        return cls(tables, values, frozenset(deleted))

    def copy(self) -> Changes:
        """Return a deep copy that shares no dict or list with the store."""
        return Changes(
            {
                table_id: {r: None if row is None else copy_row(row) for r, row in rows.items()}
                for table_id, rows in self.tables.items()
            },
            {key: copy_value(value) for key, value in self.values.items()},
            self.deleted_values,
        )
