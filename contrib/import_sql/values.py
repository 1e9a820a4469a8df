"""PostgreSQL values as JSON cells: the SQL that selects a column, and the function that
converts what psycopg returns for it.

A converter is chosen once per column and then runs for every row, so each is a small
function for one kind of value. Only scalars of the kinds psycopg always loads (bool,
integers, floats, bytea) are selected as they are; every other column is selected
as text, so that one odd value (an 'infinity' timestamp, a jsonb number beyond a float)
cannot fail a whole fetch: its converter raises :class:`NotJSON` and only its row is
rejected. Arrays are selected as ``text[]`` (psycopg knows no array of a domain), and
columns of types hutch has no rule for through ``to_jsonb``: a type's cast to JSON where
it has one (hstore, PostGIS), else each value (an array's elements too) printed by its
type's own output function, as psql shows it.

Numbers inside JSON are kept exactly or not at all: one with more digits than a float
holds (``0.1000000000000000000001``), or beyond a float's range, rejects its row.

The converters rely on the session settings in :data:`SESSION_SETTINGS` (the loader runs
them on the connection that reads): timestamps printed in ISO format and UTC, dates as
``YYYY-MM-DD``, intervals in ISO 8601, floats printed exactly, bytea in hex (which psycopg
loads). ``SET`` lasts for the session, unless the transaction it ran in rolls back.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from hutch import HutchError

from .catalog import KINDS, Column

#: The statements that set up the session the converters read from (one string, no
#: parameters, so psycopg sends it as one message).
SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'"
)

Converter = Callable[[Any], Any]


class NotJSON(HutchError, ValueError):
    """A value hutch cannot keep as JSON (NaN, an infinite date...): the row is rejected, with
    this reason (which does not name the column: the loader does)."""


def select_expression(column: Column, source: str | None = None) -> str:
    """The SQL that selects ``column`` for :func:`converter`: ``source`` (by default, its
    quoted name), cast to text unless psycopg loads its kind exactly and never fails on a
    value of it; arrays as ``text[]``; a column of kind "other" through ``to_jsonb``."""
    if column.kind not in _CONVERTERS:
        raise ValueError(f"column {column.name!r} has the kind {column.kind!r}, not one of {KINDS}")
    name = source or '"' + column.name.replace('"', '""') + '"'
    if column.kind == "other":
        return f"to_jsonb({name})::text"
    if column.array:
        return f"{name}::text[]"
    if column.kind in _AS_IS:
        return name
    return f"{name}::text"


def converter(column: Column) -> Converter:
    """The function that turns what psycopg returns for :func:`select_expression` of
    ``column`` into a JSON value (None stays None), raising :class:`NotJSON`."""
    if column.kind not in _CONVERTERS:
        raise ValueError(f"column {column.name!r} has the kind {column.kind!r}, not one of {KINDS}")
    if column.kind == "other":
        return _json
    if column.array:
        return _array(_FROM_TEXT.get(column.kind, _CONVERTERS[column.kind]))
    return _CONVERTERS[column.kind]


def _unchanged(value: Any) -> Any:
    return value


_isfinite = math.isfinite


def _float(value: float | None) -> float | None:
    if value is None or _isfinite(value):
        return value
    raise NotJSON(f"the float {value} is not a number JSON can hold")


_b2a_base64 = binascii.b2a_base64


def _bytea(value: bytes | None) -> str | None:
    if value is None:
        return None
    return _b2a_base64(value, newline=False).decode("ascii")


_datetime_from = datetime.fromisoformat
_date_from = date.fromisoformat


def _outside(what: str, value: str) -> NotJSON:
    return NotJSON(f"the {what} {value!r} is outside the dates hutch keeps (years 1 to 9999)")


def _timestamptz(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _datetime_from(value).astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        raise _outside("timestamp", value) from None


def _timestamp(value: str | None) -> str | None:
    # Without a time zone, read as UTC (what Prisma's timestamp(3) columns mean).
    if value is None:
        return None
    try:
        return _datetime_from(value).replace(tzinfo=UTC).isoformat()
    except ValueError:
        raise _outside("timestamp", value) from None


def _date(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        _date_from(value)  # 'infinity', '0044-03-15 BC' and '10000-01-01' fail here
    except ValueError:
        raise _outside("date", value) from None
    return value


def _time(value: str | None) -> str | None:
    # 'HH:MM:SS' or 'HH:MM:SS.f' (up to 6 digits, trailing zeros dropped): given 6 digits, as
    # Python's time.isoformat() writes them. '24:00:00' (allowed by PostgreSQL) stays.
    if value is None or len(value) == 8:
        return value
    return value.ljust(15, "0")


# orjson reads a number with a fraction or an exponent as the nearest float, and an integer
# beyond 64 bits as a float too. Text that may hold such a number (16 digits in a row, dots
# aside, or an exponent) is read by the standard library instead, which keeps integers
# exact and hands each fraction to _exact_float; other text, by orjson.
_risky = re.compile(r"[0-9][eE]|(?:[0-9]\.?){16}").search
_orjson_loads = orjson.loads
_json_loads = json.loads


def _exact_float(text: str) -> float:
    number = float(text)
    if not _isfinite(number) or Decimal(repr(number)) != Decimal(text):
        raise ValueError(
            f"the number {text} has more digits than a float keeps, or is beyond its range"
        )
    return number


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        if _risky(value) is None:
            return _orjson_loads(value)
        return _json_loads(value, parse_float=_exact_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise NotJSON(f"the JSON could not be read exactly: {error}") from None


def _array(element: Converter) -> Converter:
    def convert(value: list[Any] | None) -> list[Any] | None:
        if value is None:
            return None
        if type(value) is not list:  # (psycopg reads what select_expression selects as one)
            raise NotJSON(f"expected an array, not {type(value).__name__}")
        return [convert(item) if type(item) is list else element(item) for item in value]

    return convert


def _bool_text(value: str | None) -> bool | None:
    return None if value is None else value == "true"


def _int_text(value: str | None) -> int | None:
    return None if value is None else int(value)


def _float_text(value: str | None) -> float | None:
    return None if value is None else _float(float(value))


def _bytea_text(value: str | None) -> str | None:
    return None if value is None else _bytea(bytes.fromhex(value[2:]))  # '\\x0a1b...'


#: The kinds psycopg loads exactly, selected as they are (text is cast to text: character(n)
#: then drops its padding, as it does in an array).
_AS_IS = frozenset({"bool", "int", "float", "bytea"})

#: Each kind's converter. numeric, uuid, enum and other are selected as PostgreSQL's text,
#: which is the value to keep ('1.50' stays '1.50', an enum its label).
_CONVERTERS: dict[str, Converter] = {
    "bool": _unchanged,
    "int": _unchanged,
    "float": _float,
    "numeric": _unchanged,
    "text": _unchanged,
    "json": _json,
    "uuid": _unchanged,
    "bytea": _bytea,
    "timestamptz": _timestamptz,
    "timestamp": _timestamp,
    "date": _date,
    "time": _time,
    "enum": _unchanged,
    "other": _unchanged,
}
#: The converters of array elements, which arrive as text, where the kind's own does not
#: take text.
_FROM_TEXT: dict[str, Converter] = {
    "bool": _bool_text,
    "int": _int_text,
    "float": _float_text,
    "bytea": _bytea_text,
}
