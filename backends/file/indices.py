"""JSONL indices: ``<collection>/indices/<field>.jsonl``, one ``[value, row_id]`` line per row.

A file written whole lists each row that has the field once, sorted by value
(None < booleans < numbers < strings < lists and objects) and then row id, so a
person or a tool can binary-search or grep it; a row without the field has no
line. The ``file://`` backend then appends one line per change instead of
writing the file again (which would cost a commit as much as the whole index):
``{"id": row_id, "value": value}`` (the row's field is now ``value``) or
``{"id": row_id}`` (no row of that id has it any more), read in turn after the
sorted lines. It writes the file whole again once what it holds passes twice
what it lists (:func:`crowded`), so the appended lines cost a change a line,
and a whole write is paid for by as many appended bytes as it writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson

from hutch.cells import same_json
from hutch.slices import order_key

from . import fsio

FOLDER = "indices"
SUFFIX = ".jsonl"
#: An index file is written whole again only past this many bytes, however few rows it lists.
FLOOR = 4096
#: An index file is read up to this many bytes more than its rows can make it (see largest).
_SLACK = 1 << 20


def file_name(field: str) -> str:
    return f"{field}{SUFFIX}"


def size(values: dict[str, Any]) -> int:
    """How many bytes the index file for ``{row_id: value}`` takes written whole (as
    :func:`encode` writes it), told from one serialisation of the mapping, in which each row
    takes two bytes less than its line (``"r":v,`` against ``[v,"r"]\n``), and the braces
    one more than the comma the last row lacks."""
    return len(orjson.dumps(values)) + 2 * len(values) - 1 if values else 0


def largest(values: dict[str, Any]) -> int:
    """The most bytes an index file listing ``{row_id: value}`` is read with (a bigger one is
    not read whole, but written again): what hutch may leave there, from the rows' own size,
    however big their values. A writer leaves at most twice what the rows' lines take plus
    :data:`FLOOR` (see :func:`crowded`); twice that again, and a MiB, for rows whose lines
    are still to come (a checkpoint appends a logged collection's later, and they may have
    been bigger)."""
    return 4 * size(values) + 2 * FLOOR + _SLACK


def current(dir_fd: int, field: str, values: dict[str, Any]) -> bytes | None:
    """An index file as it is, or ``None`` when it is to be written again: missing, no file
    (a folder, a link...), or bigger than hutch makes an index listing ``values`` (never read
    whole)."""
    try:
        return fsio.read_file(dir_fd, file_name(field), limit=largest(values))
    except (FileNotFoundError, fsio.NotRegular, fsio.TooBig):  # a link is replaced, not followed
        return None


def listed(data: bytes) -> dict[str, Any] | None:
    """``{row_id: value}`` as an index file lists it (its sorted lines, then each appended
    line in turn), or ``None`` if it is not as hutch writes one: a line that is neither
    kind, a row twice among the sorted lines, a sorted line after an appended one, a torn
    last line. Read in one parse, not per line."""
    if not data:
        return {}
    if not data.endswith(b"\n"):
        return None
    try:
        lines = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    found: dict[str, Any] = {}
    sorted_part = True
    for line in lines:
        if sorted_part and type(line) is list:
            if len(line) != 2 or type(line[1]) is not str or line[1] in found:
                return None
            found[line[1]] = line[0]
            continue
        sorted_part = False
        if type(line) is not dict or type(row_id := line.get("id")) is not str:
            return None
        if line.keys() == {"id", "value"}:
            found[row_id] = line["value"]
        elif len(line) == 1:
            found.pop(row_id, None)
        else:
            return None
    return found


def matches(data: bytes, values: dict[str, Any]) -> bool:
    """Whether an index file lists exactly ``{row_id: value}``: each value as JSON has it, so
    a line listing ``1`` does not match a row whose field is ``true`` or ``1.0``."""
    found = listed(data)
    return found is not None and same_json(found, values)


def encode(values: Mapping[str, Any]) -> bytes:
    """The index file for ``{row_id: value}``, written whole.

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


def appended(row_ids: Collection[str], values: Mapping[str, Any]) -> bytes:
    """The lines appended for the rows ``row_ids`` that changed: ``values`` holds the field
    of those that have it (``{row_id: value}``); the others have it no more."""
    return b"".join(
        orjson.dumps(
            {"id": row_id, "value": values[row_id]} if row_id in values else {"id": row_id},
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for row_id in row_ids
    )


def crowded(size: int, live: int) -> bool:
    """Whether an index file of ``size`` bytes is to be written whole again: past twice what
    its rows' lines take (``live`` bytes, as :func:`size` tells), plus :data:`FLOOR`. So the
    appended lines never cost more than the rows they list, and a whole write is paid for by
    as many appended bytes as it writes."""
    return size > 2 * live + FLOOR


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
