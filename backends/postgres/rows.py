"""Reading many rows of a collection's table at the speed of one parse, each checked as a write is.

The rows come back as ``(id, JSON text)`` pairs. Parsing and checking each apart
costs more than the parse itself; :func:`read_at_once` instead joins the texts
into one JSON array for one orjson call and checks the ids in one pass, as the
jsonl backend reads its logs. A row is checked cell by cell only where the text
may hold a list or dict, or what orjson accepts and a row may not (see
:func:`hutch.cells.plain_json`). Where anything is in doubt it gives up, and
:func:`read_each` reads the pairs one by one, naming the first that does not check.
"""

from __future__ import annotations

from operator import itemgetter

import orjson

from hutch import CorruptData, InvalidId, InvalidValue
from hutch.cells import Row, check_exact_numbers, check_row, has_containers, plain_json
from hutch.ids import are_row_ids, is_row_id

_ids = itemgetter(0)
_texts = itemgetter(1)


def read_at_once(pairs: list[tuple[str, str]], collection: str) -> dict[str, Row] | None:
    """The rows of ``pairs`` (``(id, JSON text)``), each checked as a write is, without those
    that hold no cell (a row without cells does not exist); ``None`` if one may not check."""
    try:
        ids = list(map(_ids, pairs))
        if not are_row_ids(ids):
            return None
        body = ",".join(map(_texts, pairs))
        data = body.encode()
        check_exact_numbers(data)
        rows = orjson.loads(f"[{body}]")  # each text is one JSON value: PostgreSQL's json says so
        if len(rows) != len(ids) or (rows and set(map(type, rows)) != {dict}):
            return None
        if not plain_json(data):
            rows = [
                check_row(collection, row_id, row)[0] for row_id, row in zip(ids, rows, strict=True)
            ]
        elif b"[" in data or data.count(b"{") != len(rows):  # a list or dict cell, somewhere
            rows = [
                check_row(collection, row_id, row)[0] if has_containers(row) else row
                for row_id, row in zip(ids, rows, strict=True)
            ]
    except (ValueError, TypeError, InvalidId, InvalidValue):
        return None
    if all(rows):
        return dict(zip(ids, rows, strict=True))
    return {row_id: row for row_id, row in zip(ids, rows, strict=True) if row}


def read_each(pairs: list[tuple[str, str]], collection: str, where: str) -> dict[str, Row]:
    """The rows of ``pairs`` read one by one, each checked as a write is: the first that does
    not check is :class:`~hutch.CorruptData` naming it (``where``: the store and table), until
    a person fixes it."""
    rows: dict[str, Row] = {}
    for row_id, text in pairs:
        named = f"{where}, row id {row_id!r}"
        if not is_row_id(row_id):
            raise CorruptData(f"{named}: not a valid row id; fix or delete it")
        try:
            loaded = orjson.loads(text)
            check_exact_numbers(text)
            if type(loaded) is not dict:
                raise TypeError("the row is not a JSON object")
            row, _ = check_row(collection, row_id, loaded)
        except (ValueError, TypeError, InvalidId, InvalidValue) as error:
            raise CorruptData(f"{named}: {error}; fix or delete it") from None
        if row:  # a row without cells does not exist
            rows[row_id] = row
    return rows
