"""How a row's cells become SQLite columns and come back exactly (docs/sqlite-format.md).

Every field column is declared without a type, so SQLite keeps each value as it
was bound: an ``int`` stays INTEGER, a ``float`` stays REAL (``1.0`` included)
and a ``str`` stays TEXT. What the storage class alone cannot tell is written
in the row's ``_hutch_meta`` column, a JSON object ``{cell: tag}``:

* ``"b"``: the INTEGER 0 or 1 in the column is a boolean;
* ``"n"``: the NULL in the column is a ``null`` cell (a NULL without a tag is an absent cell);
* ``"j"``: the TEXT in the column is a JSON-encoded list or object;
* ``[value]``: the cell has no column of its own (its name clashes, ignoring case, with
  another column's, or the table reached its column limit); the value is kept here.

A row whose cells need no tag has ``NULL`` in ``_hutch_meta``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any

import orjson

from hutch.cells import Row, check_exact_numbers

#: The column (in every collection's table) that holds the tags of a row's cells.
META = "_hutch_meta"
BOOL = "b"
NULL = "n"
JSON = "j"


def encode_row(
    row: Row, columns_of_table: Container[str], add_column: Callable[[str], bool]
) -> tuple[dict[str, Any], str | None]:
    """Return the row's ``{column: SQLite value}`` and its ``_hutch_meta`` text (or ``None``).

    ``columns_of_table`` are the table's columns; for any other cell,
    ``add_column(cell)`` says whether it now gets a column of its own.
    """
    columns: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for cell, value in row.items():
        if cell == META or (cell not in columns_of_table and not add_column(cell)):
            meta[cell] = [value]  # no column of its own
            continue
        kind = type(value)
        if kind is bool:
            columns[cell] = int(value)
            meta[cell] = BOOL
        elif value is None:
            columns[cell] = None
            meta[cell] = NULL
        elif kind is list or kind is dict:
            columns[cell] = orjson.dumps(value).decode()
            meta[cell] = JSON
        else:  # str, int, float: SQLite keeps them as they are
            columns[cell] = value
    if not meta:
        return columns, None
    return columns, orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode()


def decode_row(names: Sequence[str], record: Sequence[Any], meta_at: int, skip: int) -> Row:
    """Rebuild a row from a ``SELECT *`` record; ``skip`` is the index of the ``id`` column.

    Raises ``ValueError`` (``orjson.JSONDecodeError``) or ``TypeError`` on what hutch
    did not write; the caller turns them into :class:`~hutch.CorruptData`.
    """
    meta_text = record[meta_at]
    meta: dict[str, Any] = {}
    if meta_text is not None:
        loaded = orjson.loads(meta_text)
        check_exact_numbers(meta_text)
        if not isinstance(loaded, dict):
            raise TypeError(f"{META} is not a JSON object")
        meta = loaded
    row: Row = {}
    for at, value in enumerate(record):
        if at in (skip, meta_at):
            continue
        cell = names[at]
        tag = meta.get(cell) if meta else None
        if value is None:
            if tag == NULL:
                row[cell] = None
            continue  # an absent cell
        if type(value) is bytes:
            raise TypeError(f"column {cell!r} holds a BLOB; hutch stores JSON values")
        if tag == BOOL and type(value) is int and value in (0, 1):
            row[cell] = bool(value)
        elif tag == JSON and type(value) is str:
            row[cell] = orjson.loads(value)
            check_exact_numbers(value)
        else:  # untagged, or a tag that a person's UPDATE made stale: the value as stored
            row[cell] = value
    if meta:
        for cell, tag in meta.items():
            if type(tag) is list and len(tag) == 1:
                row[cell] = tag[0]
    return row
