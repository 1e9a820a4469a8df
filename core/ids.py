"""The id rules, checked before anything is written, identically on every backend.

Table ids become folder and SQL table names and row ids become file names, so
both are kept to a small, portable alphabet (see DESIGN.md, "Ids"). Cell ids
and value keys are free-form strings: they live inside JSON, never in a path.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable

from hutch.errors import InvalidId

_TABLE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch
_ROW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}").fullmatch
_ROW_ID_MAX = 128  # the regex's length limit

#: The cell that every backend uses for the row id (the ``"id"`` inside a record file,
#: the primary key column of a SQL table); it cannot also be an ordinary cell.
RESERVED_CELL = "id"


def check_table_id(table_id: object) -> str:
    """Return ``table_id`` if it is a valid table id, else raise :class:`InvalidId`."""
    if type(table_id) is str and _TABLE_ID(table_id):
        return table_id
    raise InvalidId(
        f"invalid table id {table_id!r}: a table id is a letter followed by up to 63 "
        "letters, digits or underscores ([A-Za-z][A-Za-z0-9_]{0,63})"
    )


def check_row_id(table_id: str, row_id: object) -> str:
    """Return ``row_id`` if it is a valid row id, else raise :class:`InvalidId`."""
    if type(row_id) is str:
        # Most ids are ASCII letters and digits alone: str methods check those faster.
        if row_id.isalnum() and row_id.isascii() and len(row_id) <= _ROW_ID_MAX:
            return row_id
        if _ROW_ID(row_id):
            return row_id
    raise InvalidId(
        f"invalid row id {row_id!r} in table {table_id!r}: a row id is a letter or digit "
        "followed by up to 127 letters, digits, '.', '_' or '-' ([A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    )


def is_row_id(text: object) -> bool:
    """Whether ``text`` could name a row (the check of :func:`check_row_id`, without raising)."""
    return type(text) is str and _ROW_ID(text) is not None


def are_row_ids(texts: Iterable[str]) -> bool:
    """Whether every one of ``texts`` (strings) could name a row: one pass in C, for a backend
    that reads ids by the thousand."""
    return all(map(_ROW_ID, texts))


def check_cell_id(table_id: str, row_id: str, cell_id: object) -> str:
    """Return ``cell_id`` if it may name a cell, else raise :class:`InvalidId`."""
    if (
        type(cell_id) is str
        and cell_id
        and cell_id != RESERVED_CELL
        and "\x00" not in cell_id
        and _is_utf8(cell_id)
    ):
        return cell_id
    if cell_id == RESERVED_CELL:
        raise InvalidId(
            f"cell 'id' in {table_id}/{row_id}: 'id' is the row id, not a cell; "
            "pass it as the row id and leave it out of the row"
        )
    raise InvalidId(
        f"invalid cell id {cell_id!r} in {table_id}/{row_id}: a cell id is a non-empty "
        "string of valid UTF-8 without NUL characters"
    )


def check_value_id(value_id: object) -> str:
    """Return ``value_id`` if it may name a keyed value, else raise :class:`InvalidId`."""
    if type(value_id) is str and value_id and "\x00" not in value_id and _is_utf8(value_id):
        return value_id
    raise InvalidId(
        f"invalid value id {value_id!r}: a value id is a non-empty string of valid UTF-8 "
        "without NUL characters"
    )


def _is_utf8(text: str) -> bool:
    """No lone surrogates: the string can be written as UTF-8 (and so as JSON)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    """A new row id: 26 characters, URL-safe, time-sortable and collision-resistant.

    A ULID in lower-case Crockford base32: 48 bits of milliseconds since 1970,
    then 80 random bits. Ids made later sort later (to the millisecond).
    """
    number = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))
