"""Record files and the manifest: how a row and the folder's settings look on disk.

A record is ``<collection>/<row_id>.json``: the row as a pretty JSON object with
sorted keys, the row id inside as ``"id"``, and a trailing newline, so a person
can read, grep and diff it.

A file read back is taken as hutch wrote it when its bytes are exactly what hutch
writes for what they hold (read fast, with orjson); any other text (a hand edit)
is read again exactly, so that what JSON can say but a row or value cannot hold —
a key an object repeats, a number beyond a double or beyond 64 bits, a lone
surrogate — is named, never silently changed or dropped (see :func:`read_json`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from hutch import Changes, CorruptData, InvalidId, InvalidValue
from hutch.cells import Row, check_exact_numbers, check_row, check_value
from hutch.ids import check_row_id, check_value_id

#: 1: logs without headers or transaction numbers (upgraded at open, see upgrade.py); 2: now.
FORMAT_VERSION = 2
VALUES = "_values.json"
RECORD_SUFFIX = ".json"
#: A record file bigger than this is refused (``CorruptData``) rather than read whole.
MAX_RECORD_BYTES = 64 << 20
#: And so is a keyed values' file bigger than this.
MAX_VALUES_BYTES = 1 << 30
#: The manifest's record of the moves of collection folders under way: collection -> the folder
#: it leaves. Written (with the collection's new ``path``) before the rename and dropped after
#: it, so that the next writing open finishes a move a crash cut short.
MOVES = "moves"
_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


#: How many times bigger than its compact JSON an indented record can be (a line of indent
#: per element, at most 101 deep): a commit whose log line is shorter than
#: ``MAX_RECORD_BYTES / RECORD_GROWTH`` holds no row too big to be a record.
RECORD_GROWTH = 256


def encode_record(row_id: str, row: Row) -> bytes:
    return orjson.dumps({**row, "id": row_id}, option=_PRETTY)


def check_record_sizes(changes: Changes, line_size: int) -> None:
    """Refuse (``InvalidValue``, before anything is written) a row whose record file would
    be too big to be read back; only a big commit (its log line ``line_size`` bytes) is
    looked at row by row."""
    if line_size * RECORD_GROWTH <= MAX_RECORD_BYTES:
        return
    for table_id, row_id, row in changes.rows():
        if row is not None and len(encode_record(row_id, row)) > MAX_RECORD_BYTES:
            raise InvalidValue(
                f"row {row_id!r} of {table_id!r} would make a record file of more than "
                f"{MAX_RECORD_BYTES >> 20} MiB, which the file backend does not read back: "
                "keep large data in files of your own and store their names; nothing was written"
            )


def decode_record(table_id: str, file_name: str, data: bytes, folder: Path) -> tuple[str, Row]:
    """The row id and row a record file holds, or :class:`~hutch.CorruptData` naming the file."""
    row_id = file_name.removesuffix(RECORD_SUFFIX)
    try:
        check_row_id(table_id, row_id)
        document, as_written = read_json(data)
        check_exact_numbers(data)
        if not as_written and (why := unholdable(document)) is not None:
            raise ValueError(why)
    except InvalidId as error:
        raise CorruptData(
            f"{folder / file_name}: the file name is not a valid row id ({error})"
        ) from None
    except json.JSONDecodeError as error:
        raise CorruptData(
            f"{folder / file_name}: malformed JSON at line {error.lineno}, column {error.colno} "
            f"(character {error.pos}): {error.msg}; fix or remove the file"
        ) from None
    except ValueError as error:
        raise CorruptData(f"{folder / file_name}: {error}; fix or remove the file") from None
    if not isinstance(document, dict):
        raise CorruptData(
            f"{folder / file_name}: a record must be a JSON object, not {type(document).__name__}"
        )
    stored_id = document.pop("id", row_id)
    if stored_id != row_id:
        raise CorruptData(
            f'{folder / file_name}: its "id" is {stored_id!r} but its file name says '
            f"{row_id!r}; make them agree"
        )
    try:
        row, _ = check_row(table_id, row_id, document)
    except (InvalidId, InvalidValue) as error:
        raise CorruptData(f"{folder / file_name}: {error}") from None
    return row_id, row


def encode_values(values: dict[str, Any]) -> bytes:
    return orjson.dumps(values, option=_PRETTY)


def decode_values(data: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """The keyed values ``_values.json`` holds, each key and value checked as a write checks
    them, and the entries that fail (key -> why): one bad entry (a value no write takes, a
    key the file repeats) leaves the others usable. A ``ValueError`` says why no entry can
    be read (not JSON, not one object...)."""
    document, as_written = read_json(data)
    if not isinstance(document, dict):
        raise ValueError("keyed values must be one JSON object")
    bad = {
        key: f"the key {key!r} appears more than once (a JSON reader keeps only the last)"
        for key in (document.repeated if isinstance(document, _RepeatedKeys) else ())
    }
    good: dict[str, Any] = {}
    for key, value in document.items():
        if key in bad:
            continue
        try:
            if not as_written and (why := unholdable(value)) is not None:
                raise InvalidValue(f"value {key!r}: {why}")
            good[check_value_id(key)] = check_value(value, f"value {key!r}")
        except (InvalidId, InvalidValue) as error:
            bad[key] = str(error)
    return good, bad


def read_json(data: bytes) -> tuple[Any, bool]:
    """The JSON document ``data`` holds, and whether its bytes are exactly what hutch writes
    for it (:data:`_PRETTY`): then orjson read every number and key as written. Any other
    text is read again with the standard library, exactly: a number beyond a double is
    kept as a ``_BeyondDouble``, an object repeating a key as a ``_RepeatedKeys`` (for
    :func:`unholdable` to name), an integer beyond 64 bits and a lone surrogate as they are
    (for a write's checks to refuse). A ``ValueError`` if it is no JSON at all."""
    try:
        document = orjson.loads(data)
        if orjson.dumps(document, option=_PRETTY) == data:
            return document, True
    except orjson.JSONDecodeError:
        pass  # (maybe JSON that orjson refuses: a lone surrogate, a number beyond a double)
    except orjson.JSONEncodeError:
        pass  # (nested deeper than orjson writes: the checks refuse it below)
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_object,
            parse_float=_float,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise ValueError("it nests lists and objects too deep") from None
    return document, False


class _RepeatedKeys(dict[str, Any]):
    """A JSON object in which a key appears more than once (each holding its last value, as
    JSON readers keep it); :attr:`repeated` names those keys."""

    repeated: list[str]


class _BeyondDouble:
    """A JSON number too big for a double (``1e999``), as written."""

    def __init__(self, text: str) -> None:
        self.text = text


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    repeated = _RepeatedKeys(found)
    counts = Counter(key for key, _ in pairs)
    repeated.repeated = sorted(key for key, count in counts.items() if count > 1)
    return repeated


def _float(text: str) -> float | _BeyondDouble:
    number = float(text)
    return number if math.isfinite(number) else _BeyondDouble(text)


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is no JSON value (JSON has no NaN nor Infinity)")


def unholdable(document: Any) -> str | None:
    """Why a document :func:`read_json` read again cannot be held as it is written, if so
    (the first found): an object repeating a key, or a number beyond a double."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, _RepeatedKeys):
            keys = ", ".join(map(repr, value.repeated))
            return f"an object repeats the key {keys} (a JSON reader keeps only the last)"
        if isinstance(value, _BeyondDouble):
            return f"the number {value.text} is beyond what a double holds; store it as a string"
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return None


def encode_manifest(
    folder_id: str, collections: dict[str, dict[str, Any]], moves: dict[str, str] | None = None
) -> bytes:
    """The manifest: format version, the folder's id (which its log files carry), settings,
    and the moves of collection folders under way (see :func:`.folder.move_folder`)."""
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "id": folder_id,
        "collections": collections,
    }
    if moves:
        manifest[MOVES] = moves
    return orjson.dumps(manifest, option=_PRETTY)
