"""What a cell or a keyed value may hold: JSON that every backend stores exactly.

Checking happens once, on the way in, and produces a private copy, so a caller
that later mutates its own dict or list cannot change the store behind its
back. The rules are those of the strictest backend, so a value accepted by one
backend is accepted by all:

* no NaN or infinity (JSON has neither; orjson would write ``null``);
* integers fit in 64 signed bits (SQLite's INTEGER, orjson);
* strings hold no NUL character (PostgreSQL's text and jsonb refuse it) and no
  lone surrogate (not UTF-8);
* object keys are strings; tuples become lists; subclasses of str, int and
  float (a ``StrEnum`` member, say) are stored as the plain type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from hutch.errors import InvalidValue
from hutch.ids import check_cell_id

#: A row as the store holds it: cell id -> JSON value.
Row = dict[str, Any]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
CONTAINERS = (list, dict)
#: How deep lists and dicts may nest in a value: deeper is no data model, and every backend
#: (orjson, PostgreSQL, Python's own recursion) has a limit of its own not far beyond.
MAX_NESTING = 100
_CONTAINER_TYPES = frozenset(CONTAINERS)
_isfinite = math.isfinite  # bound once: check_row calls it for every float cell


def check_row(table_id: str, row_id: str, row: object) -> tuple[Row, bool]:
    """Return a checked private copy of ``row`` and whether it holds a list or dict cell."""
    if type(row) is not dict and not isinstance(row, Mapping):  # the ABC check is slow
        raise InvalidValue(
            f"row {table_id}/{row_id} must be a dict of cell id -> JSON value, "
            f"not {type(row).__name__}"
        )
    out: Row = dict(row)
    nested = False
    for cell_id, value in out.items():
        if cell_id not in _good_cell_ids:
            _learn_cell_id(table_id, row_id, cell_id)
        kind = type(value)
        if kind is str:
            if "\x00" not in value and (value.isascii() or _is_utf8(value)):
                continue
        elif kind is int:
            if _INT_MIN <= value <= _INT_MAX:
                continue
        elif kind is float:
            if _isfinite(value):
                continue
        elif kind is bool or value is None:
            continue
        # Anything else is rare: a container, a subclass, or an error. Fix it up (or raise).
        checked = check_value(value, f"cell {cell_id!r} of {table_id}/{row_id}")
        out[cell_id] = checked  # replacing a key's value while iterating is safe
        nested = nested or type(checked) in CONTAINERS
    return out, nested


# Cell ids already seen to be valid, so that most rows skip the id check (bounded in size).
_good_cell_ids: set[str] = set()


def _learn_cell_id(table_id: str, row_id: str, cell_id: object) -> None:
    check_cell_id(table_id, row_id, cell_id)
    if len(_good_cell_ids) < 100_000:
        _good_cell_ids.add(cell_id)  # type: ignore[arg-type]


def check_value(value: object, where: str, *, depth: int = 0) -> Any:
    """Return a checked private copy of the JSON value ``value``; ``where`` names it in errors
    (``depth``: how many lists and dicts hold it already)."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if isinstance(value, str):
        text = value[:]  # a str subclass becomes a plain str
        if "\x00" in text:
            raise InvalidValue(
                f"{where} contains a NUL character, which PostgreSQL cannot store; remove it"
            )
        if not (text.isascii() or _is_utf8(text)):
            raise InvalidValue(f"{where} contains a lone surrogate, so it is not valid UTF-8")
        return text
    if isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        return value
    if isinstance(value, int):
        number = int(value)
        if not _INT_MIN <= number <= _INT_MAX:
            raise InvalidValue(
                f"{where} is {number}, outside the 64-bit signed range that every backend "
                "stores exactly; store it as a string"
            )
        return number
    if isinstance(value, float):
        real = float(value)
        if not math.isfinite(real):
            raise InvalidValue(f"{where} is {real}, which JSON cannot hold; store None or a string")
        return real
    if isinstance(value, list | tuple | Mapping) and depth >= MAX_NESTING:
        shown = where if len(where) <= 120 else f"{where[:100]}..."
        raise InvalidValue(
            f"{shown} nests lists and dicts more than {MAX_NESTING} deep; flatten it"
        )
    if isinstance(value, list | tuple):
        return [check_value(item, f"{where}[{i}]", depth=depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"{where} has the key {key!r}; JSON object keys are strings")
            out[check_value(key, f"a key of {where}")] = check_value(
                item, f"{where}[{key!r}]", depth=depth + 1
            )
        return out
    raise InvalidValue(
        f"{where} is a {kind.__name__}, which is not a JSON value; store a str, int, float, "
        "bool, None, list or dict (convert dates and enums first)"
    )


def copy_value(value: Any) -> Any:
    """Return a copy of a checked JSON value that shares no list or dict with it."""
    kind = type(value)
    if kind is list:
        return [copy_value(item) for item in value]
    if kind is dict:
        return {key: copy_value(item) for key, item in value.items()}
    return value


def copy_row(row: Row) -> Row:
    """Return a deep copy of a checked row that holds list or dict cells."""
    return {cell_id: copy_value(value) for cell_id, value in row.items()}


def has_containers(row: Row) -> bool:
    """Tell whether a checked row holds a list or dict cell (and so needs a deep copy out)."""
    return not _CONTAINER_TYPES.isdisjoint(map(type, row.values()))  # no Python-level loop


def same_json(a: Any, b: Any) -> bool:
    """Compare two JSON values strictly: ``1``, ``1.0`` and ``True`` differ here, unlike ``==``."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if kind is list:
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if kind is float and a == 0.0:
        return bool(b == 0.0) and math.copysign(1.0, a) == math.copysign(1.0, b)  # 0.0 vs -0.0
    return bool(a == b)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def plain_json(data: bytes) -> bool:
    """Whether the JSON text ``data`` holds nothing that orjson accepts but a row may not: an
    ``"id"`` or empty key, an escape (``\\u0000`` is a NUL, ``\\u0069d`` is ``id``). Where it
    holds none, a row parsed from it that is a dict of plain cells (no list or dict) is good
    as read. Substring searches, not a regex: they scan at memory speed. Long numbers are
    checked apart (:func:`check_exact_numbers`)."""
    return b'"id"' not in data and b'""' not in data and b"\\u" not in data


# Every ASCII digit becomes "0" and every other byte "x": 19 digits in a row become 19 "0"s.
_DIGITS_AS_ZEROS = bytes(48 if 48 <= byte <= 57 else 120 for byte in range(256))
_LONG_NUMBER = b"0" * 19  # 10**18 and up: where 64 bits may end


def may_hold_long_numbers(data: bytes) -> bool:
    """Whether ``data`` has 19 digits in a row: a number there may not fit in 64 bits.

    A substring search of translated bytes, not a regex: it scans at memory speed.
    """
    return _LONG_NUMBER in data.translate(_DIGITS_AS_ZEROS)


def check_exact_numbers(data: bytes | str) -> None:
    """Raise ``ValueError`` if the JSON text ``data`` holds an integer outside 64 bits.

    orjson reads an integer beyond 64 unsigned bits as the nearest float, which
    would change a hand-edited number without a word; the standard library
    reads it exactly. Only text with 19 digits in a row is parsed again.
    """
    raw = data.encode() if isinstance(data, str) else data
    if not may_hold_long_numbers(raw):
        return
    try:
        pending = [json.loads(raw)]
    except RecursionError:
        raise ValueError(f"it nests lists and dicts more than {MAX_NESTING} deep") from None
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is int and not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"the integer {value} does not fit in 64 bits; store it as a string")
        if kind is list:
            pending.extend(value)
        elif kind is dict:
            pending.extend(value.values())
