"""How a row's cells become SQLite columns and come back exactly (docs/sqlite-format.md).

Every field column has BLOB affinity (declared ``BLOB``, or with no type), so
SQLite keeps each value as it was bound: an ``int`` stays INTEGER, a ``float``
stays REAL (``1.0`` included) and a ``str`` stays TEXT. What the storage class
alone cannot tell is written in the row's ``_hutch_meta`` column, a JSON object
``{cell: tag}``:

* ``"b"``: the INTEGER 0 or 1 in the column is a boolean;
* ``"n"``: the NULL in the column is a ``null`` cell (a NULL without a tag is an absent cell);
* ``"j"``: the TEXT in the column is a JSON-encoded list or object;
* ``[value]``: the cell has no column of its own (its name clashes, ignoring case, with
  another column's, or the table has as many field columns as it may); its value is here.

A row whose cells need no tag has ``NULL`` in ``_hutch_meta``. A tag that does not fit
what its column holds (a person's ``UPDATE`` set a boolean to ``'yes'``, a list to ``'5'``,
or filled the column a ``[value]`` had none of) is stale: the column is read as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlite_utils.db import quote_identifier

from hutch.cells import Row, check_exact_numbers

#: The column (in every collection's table) that holds the tags of a row's cells.
META = "_hutch_meta"
BOOL = "b"
NULL = "n"
JSON = "j"
#: Text that a tag ``"j"`` fits: JSON that opens a list or an object (hutch writes no
#: other under it). Other text (``5``, ``true``, ``hello``) is a stale tag's: read as stored.
_opens_container = re.compile(r"[ \t\n\r]*[\[{]").match
#: A cell name that a JSON path can quote: SQLite reads no escape there.
_PATH_QUOTABLE = re.compile(r'[^"\\\x00-\x1f]+').fullmatch


def encode_row(
    row_id: str, row: Row, fields: Mapping[str, int], add_column: Callable[[str], bool]
) -> list[Any]:
    """Return the record ``[id, _hutch_meta, field, ...]`` that stores the row.

    ``fields`` maps the table's field columns to their places in the record. For
    any other cell, ``add_column(cell)`` says whether it now gets a column of its
    own, which it adds to ``fields`` as the last one; the record grows with it
    (records made before it are one short: the caller pads them with ``None``).
    """
    record: list[Any] = [None] * (len(fields) + 2)
    record[0] = row_id
    meta: dict[str, Any] = {}
    for cell, value in row.items():
        at = fields.get(cell)
        if at is None:
            if not add_column(cell):
                meta[cell] = [value]  # no column of its own
                continue
            record.append(None)
            at = fields[cell]
        kind = type(value)
        if kind is bool:
            record[at] = int(value)
            meta[cell] = BOOL
        elif value is None:
            meta[cell] = NULL
        elif kind is list or kind is dict:
            record[at] = orjson.dumps(value).decode()
            meta[cell] = JSON
        else:  # str, int, float: SQLite keeps them as they are
            record[at] = value
    if meta:
        record[1] = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode()
    return record


def decode_row(fields: Mapping[str, int], record: Sequence[Any]) -> Row:
    """Rebuild a row from its record ``(id, _hutch_meta, field, ...)``, as ``fields`` places them.

    Raises ``ValueError`` (``orjson.JSONDecodeError``, :class:`OrphanTag`) or ``TypeError``
    on what hutch did not write; the caller turns them into :class:`~hutch.CorruptData`.
    """
    meta_text = record[1]
    meta: dict[str, Any] = {}
    if meta_text is not None:
        loaded = orjson.loads(meta_text)
        check_exact_numbers(meta_text)
        if not isinstance(loaded, dict):
            raise TypeError(f"{META} is not a JSON object")
        meta = loaded
    row: Row = {}
    for cell, at in fields.items():
        value = record[at]
        tag = meta.get(cell) if meta else None
        if value is None:
            if tag == NULL:
                row[cell] = None
            continue  # an absent cell
        if type(value) is bytes:
            raise TypeError(f"column {cell!r} holds a BLOB; hutch stores JSON values")
        if tag == BOOL and type(value) is int and value in (0, 1):
            row[cell] = bool(value)
        elif tag == JSON and type(value) is str and _opens_container(value):
            row[cell] = orjson.loads(value)
            check_exact_numbers(value)
        else:  # untagged, or a tag that a person's UPDATE made stale: the value as stored
            row[cell] = value
    for cell, tag in meta.items():
        if type(tag) is list and len(tag) == 1:
            row.setdefault(cell, tag[0])  # (stale if a person's UPDATE filled its column)
        elif cell not in fields:
            raise OrphanTag(cell, tag)
    return row


class OrphanTag(ValueError):
    """``_hutch_meta`` tags a cell that has no column (renamed or dropped by hand): its
    value would read as another type, so the row is refused until the tag goes."""

    def __init__(self, cell: str, tag: object) -> None:
        super().__init__(f"{META} tags the cell {cell!r}, which has no column")
        self.cell, self.tag = cell, tag

    def explain(self, table: str) -> str:
        """What is wrong, and the SQL that removes the tag from every row of ``table``."""
        cell, quoted = self.cell, quote_identifier(table)
        if _PATH_QUOTABLE(cell):
            path = literal(f'$."{cell}"')
            fix = f"UPDATE {quoted} SET {META} = json_remove({META}, {path})"
        else:  # a JSON path cannot name it: rebuild the object without it
            fix = (
                f"UPDATE {quoted} SET {META} = (SELECT json_group_object(key, value) FROM "
                f"json_each({META}) WHERE key IS NOT {literal(cell)}) WHERE {META} IS NOT NULL"
            )
        return (
            f"{META} tags the cell {cell!r} {self.tag!r}, but the table has no column "
            f"{cell!r} (renamed or dropped by hand?): give the column its name back, or "
            f"remove the tag from every row: `{fix}`"
        )


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
