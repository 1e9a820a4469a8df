"""PostgreSQL values as JSON cells: the SQL that selects a column, and the function that
converts what psycopg returns for it.

A converter is chosen once per column and then runs for every row, so each is a small
function for one kind of value. Only kinds psycopg always loads (bool, integers, floats,
text, bytea) are selected as they are; every other column is selected as text, so that one
odd value (an 'infinity' timestamp, a jsonb number beyond a float) cannot fail a whole
fetch: its converter raises :class:`NotJSON` and only its row is rejected.

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


def select_expression(column: Column) -> str:
    """The SQL that selects ``column`` for :func:`converter`: its quoted name, cast to text
    unless psycopg loads its kind exactly and never fails on a value of it.

    A column of kind "other" is printed by its type's output function, as psql shows it:
    ``::text`` would call a cast function where there is one (inet's shows the netmask
    always, ``'::1/128'`` for ``'::1'``), while an array's cast to text prints it through
    its elements' output functions, and text[]'s input reads it back (NULL stays NULL)."""
    if column.kind not in _CONVERTERS:
        raise ValueError(f"column {column.name!r} has the kind {column.kind!r}, not one of {KINDS}")
    name = '"' + column.name.replace('"', '""') + '"'
    if column.kind in _AS_IS:
        return name
    if column.kind == "other":
        return f"{name}::text::text[]" if column.array else f"(ARRAY[{name}]::text::text[])[1]"
    return f"{name}::text[]" if column.array else f"{name}::text"


def converter(column: Column) -> Converter:
    """The function that turns what psycopg returns for :func:`select_expression` of
    ``column`` into a JSON value (None stays None), raising :class:`NotJSON`."""
    try:
        convert = _CONVERTERS[column.kind]
    except KeyError:
        raise ValueError(
            f"column {column.name!r} has the kind {column.kind!r}, not one of {KINDS}"
        ) from None
    if column.array and convert is not _same:
        return _array(convert)
    return convert  # psycopg's lists of bools, ints, text... are JSON already


def _same(value: Any) -> Any:
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


# orjson turns integers beyond 64 bits into floats; text with 20 digits in a row (rare) is
# parsed by the standard library, which keeps them exact.
_long_digits = re.compile("[0-9]{20}").search
_orjson_loads = orjson.loads
_json_loads = json.loads


def _finite(text: str) -> float:
    number = float(text)
    if not _isfinite(number):
        raise ValueError(f"the number {text} is beyond a float")
    return number


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        if _long_digits(value) is None:
            return _orjson_loads(value)
        return _json_loads(value, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise NotJSON(f"the JSON could not be read exactly: {error}") from None


def _array(element: Converter) -> Converter:
    def convert(value: list[Any] | None) -> list[Any] | None:
        if value is None:
            return None
        return [convert(item) if type(item) is list else element(item) for item in value]

    return convert


#: The kinds psycopg loads exactly, selected as they are.
_AS_IS = frozenset({"bool", "int", "float", "text", "bytea"})

#: Each kind's converter. numeric, uuid, enum and other are selected as PostgreSQL's text,
#: which is the value to keep ('1.50' stays '1.50', an enum its label).
_CONVERTERS: dict[str, Converter] = {
    "bool": _same,
    "int": _same,
    "float": _float,
    "numeric": _same,
    "text": _same,
    "json": _json,
    "uuid": _same,
    "bytea": _bytea,
    "timestamptz": _timestamptz,
    "timestamp": _timestamp,
    "date": _date,
    "time": _time,
    "enum": _same,
    "other": _same,
}
assert set(_CONVERTERS) == set(KINDS)
