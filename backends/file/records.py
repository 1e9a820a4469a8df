"""Record files and the manifest: how a row and the folder's settings look on disk.

A record is ``<collection>/<row_id>.json``: the row as a pretty JSON object with
sorted keys, the row id inside as ``"id"``, and a trailing newline, so a person
can read, grep and diff it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from hutch import CorruptData, InvalidId, InvalidValue
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


def encode_record(row_id: str, row: Row) -> bytes:
    return orjson.dumps({**row, "id": row_id}, option=_PRETTY)


def decode_record(table_id: str, file_name: str, data: bytes, folder: Path) -> tuple[str, Row]:
    """The row id and row a record file holds, or :class:`~hutch.CorruptData` naming the file."""
    row_id = file_name.removesuffix(RECORD_SUFFIX)
    try:
        check_row_id(table_id, row_id)
        document = orjson.loads(data)
        check_exact_numbers(data)
    except InvalidId as error:
        raise CorruptData(
            f"{folder / file_name}: the file name is not a valid row id ({error})"
        ) from None
    except orjson.JSONDecodeError as error:
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
    them, and the entries that fail (key -> why): one bad entry leaves the others usable. A
    ``ValueError`` says why no entry can be read (not JSON, not one object...)."""
    document = orjson.loads(data)
    try:
        check_exact_numbers(data)
    except ValueError:  # read exactly, so that the entries holding such a number fail alone
        try:
            document = json.loads(data.decode("utf-8"))
        except RecursionError:
            raise ValueError("it nests lists and objects too deep") from None
    if not isinstance(document, dict):
        raise ValueError("keyed values must be one JSON object")
    good: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for key, value in document.items():
        try:
            good[check_value_id(key)] = check_value(value, f"value {key!r}")
        except (InvalidId, InvalidValue) as error:
            bad[key] = str(error)
    return good, bad


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
