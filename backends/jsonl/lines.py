"""The lines of a ``jsonl://`` store (docs/jsonl-format.md).

A collection's log holds ``[seq, row_id, row]`` (``row`` ``null``: deleted), the
values log ``[seq, key, value]`` or ``[seq, key]`` (deleted), and the commit log
``[seq, [names of the logs the commit wrote]]``. A line counts only when the
commit log holds a line with a ``seq`` at least as high as its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hutch import CorruptData

SUFFIX = ".jsonl"
COMMITS = "_commits.jsonl"
VALUES = "_values.jsonl"
_LINE = orjson.OPT_APPEND_NEWLINE

Entry = list[Any]


def encode(entry: Entry) -> bytes:
    return orjson.dumps(entry, option=_LINE)


def parse(data: bytes, where: Path) -> tuple[list[Entry], list[int]]:
    """The entries of the whole lines of ``data`` and the offset just past each.

    A last line without its newline is the torn tail of an interrupted append:
    it is left out. So is a last whole line that does not parse (what a power cut
    can leave); a damaged line with good lines after it is :class:`~hutch.CorruptData`.
    """
    cut = data.rfind(b"\n") + 1
    if not cut:
        return [], []
    body = data[:cut]
    try:  # one parse for the whole file: the fast way, and the usual case
        entries = orjson.loads(b"[" + body[:-1].replace(b"\n", b",") + b"]")
        if _shaped(entries):
            return entries, _ends(body)
    except orjson.JSONDecodeError:
        pass
    entries, ends = [], []
    position = 0
    number = 0
    for number, (line, end) in enumerate(_lines(body), 1):
        try:
            entry = orjson.loads(line)
            if not _shaped([entry]):
                raise ValueError("not [seq, id, ...]")
        except ValueError as error:
            if end == cut:
                break  # a damaged last line: never acknowledged
            raise CorruptData(
                f"{where}: line {number} (byte {position}) is not a hutch log line ({error}); "
                "fix or remove that line by hand"
            ) from None
        entries.append(entry)
        ends.append(end)
        position = end
    return entries, ends


def _lines(body: bytes) -> Iterator[tuple[bytes, int]]:
    position = 0
    while position < len(body):
        end = body.index(b"\n", position) + 1
        yield body[position : end - 1], end
        position = end


def _ends(body: bytes) -> list[int]:
    ends = []
    position = body.find(b"\n")
    while position >= 0:
        ends.append(position + 1)
        position = body.find(b"\n", position + 1)
    return ends


def _shaped(entries: Any) -> bool:
    return isinstance(entries, list) and all(
        type(e) is list and 2 <= len(e) <= 3 and type(e[0]) is int for e in entries
    )


def committed(entries: list[Entry], last_seq: int) -> int:
    """How many of ``entries`` belong to commits up to ``last_seq`` (the rest are a crash's)."""
    for number, entry in enumerate(entries):
        if entry[0] > last_seq:
            return number
    return len(entries)
