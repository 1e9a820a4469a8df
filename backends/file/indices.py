"""JSONL indices: ``<collection>/indices/<field>.jsonl``, one ``[value, row_id]`` line per row.

Lines are sorted by value (None < booleans < numbers < strings < lists and
objects) and then row id, so a person or a tool can binary-search or grep the
file; a row without the field has no line.
"""

from __future__ import annotations

from typing import Any

import orjson

from hutch.slices import order_key

FOLDER = "indices"
SUFFIX = ".jsonl"


def file_name(field: str) -> str:
    return f"{field}{SUFFIX}"


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
    """The index file for ``{row_id: value}``."""
    ordered = sorted(values.items(), key=lambda item: (order_key(item[1]), item[0]))
    return b"".join(
        orjson.dumps([value, row_id], option=orjson.OPT_APPEND_NEWLINE) for row_id, value in ordered
    )
