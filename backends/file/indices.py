"""JSONL indices: ``<collection>/indices/<field>.jsonl``, one ``[value, row_id]`` line per row.

Lines are sorted by value (None < booleans < numbers < strings < lists and
objects) and then row id, so a person or a tool can binary-search or grep the
file; a row without the field has no line.
"""

from __future__ import annotations

from typing import Any

import orjson

from hutch.slices import order_key

from . import fsio

FOLDER = "indices"
SUFFIX = ".jsonl"
#: An index file bigger than this many bytes a row (and a MiB) is not read, but written again.
_MOST_A_ROW = 4096


def file_name(field: str) -> str:
    return f"{field}{SUFFIX}"


def largest(rows: int) -> int:
    """The most bytes an index file of ``rows`` rows is read with (a bigger one is not)."""
    return (1 << 20) + rows * _MOST_A_ROW


def current(dir_fd: int, field: str, rows: int) -> bytes | None:
    """An index file as it is, or ``None`` when it is to be written again: missing, no file
    (a folder, a link...), or bigger than an index of ``rows`` rows is (never read whole)."""
    try:
        return fsio.read_file(dir_fd, file_name(field), limit=largest(rows))
    except (FileNotFoundError, fsio.NotRegular, fsio.TooBig):  # a link is replaced, not followed
        return None


def matches(data: bytes, values: dict[str, Any]) -> bool:
    """Whether an index file lists exactly ``{row_id: value}`` (read in one parse, not per line)."""
    if not data:
        return not values
    try:
        pairs = orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
        return {row_id: value for value, row_id in pairs} == values and len(pairs) == len(values)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return False


def encode(values: dict[str, Any]) -> bytes:
    """The index file for ``{row_id: value}``.

    Sorted kind by kind, each kind by plain comparison of its values (row ids
    sorted first, so that a stable sort leaves ties in row-id order): no key
    tuple per row, so a big index sets off no garbage collection while it is
    written beside threads that commit.
    """
    by_kind: dict[int, list[str]] = {}
    for row_id in sorted(values):
        by_kind.setdefault(_kind(values[row_id]), []).append(row_id)
    ordered: list[str] = []
    for kind in sorted(by_kind):
        row_ids = by_kind[kind]
        if kind == _OTHER:
            row_ids.sort(key=lambda row_id: order_key(values[row_id]))
        elif kind != _NULL:
            row_ids.sort(key=values.__getitem__)
        ordered += row_ids
    return b"".join(
        orjson.dumps([values[row_id], row_id], option=orjson.OPT_APPEND_NEWLINE)
        for row_id in ordered
    )


_NULL, _OTHER = 0, 4


def _kind(value: Any) -> int:
    """The rank of a value's kind in an index: as :func:`hutch.slices.order_key` ranks them."""
    kind = type(value)
    if value is None:
        return _NULL
    if kind is bool:
        return 1
    if kind is int or kind is float:
        return 2
    if kind is str:
        return 3
    return _OTHER  # lists and objects
