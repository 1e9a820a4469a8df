"""The lines of a ``jsonl://`` store, format 2: how each is written and checked when read.

Every log opens with a header, ``["hutch-jsonl", 2, folder id, file name, generation]``.
After it, a collection's log holds ``[seq, row_id, row]`` (``row`` ``null``: deleted),
the values log ``[seq, key, value]`` or ``[seq, key]`` (deleted), and the commit log
``[seq, {log name: [generation, lines]}, durable]``. Which lines count is the commit
log's to say (see :mod:`.logs`); this module says what a line is, and checks each one
read back as a write is checked, since anyone who can write the folder may have edited it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from hutch.cells import (
    check_exact_numbers,
    check_row,
    check_value,
    has_containers,
    may_hold_long_numbers,
)
from hutch.ids import check_row_id, check_value_id

FORMAT = 2
MAGIC = "hutch-jsonl"
SUFFIX = ".jsonl"
COMMITS = "_commits.jsonl"
VALUES = "_values.jsonl"
_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch
_LINE = orjson.OPT_APPEND_NEWLINE
#: How many bytes of a log hold its header, at most: read (and checked) before the rest.
HEAD = 4096

Entry = list[Any]
#: Raises ``ValueError`` (or a subclass: ``InvalidId``, ``InvalidValue``) unless an entry is a
#: line of its log; may replace parts of it with their checked copies.
Check = Callable[[Any], None]


def encode(entry: Entry) -> bytes:
    """One line: compact JSON and a newline (orjson never writes a raw newline inside)."""
    return orjson.dumps(entry, option=_LINE)


def is_log(name: str) -> bool:
    """Whether ``name`` is the log of a collection or of the values (not the commit log)."""
    return name == VALUES or (name.endswith(SUFFIX) and _TABLE(name[: -len(SUFFIX)]) is not None)


def log_table(name: str) -> str | None:
    """The collection whose log ``name`` is, or ``None`` for the values log."""
    return None if name == VALUES else name[: -len(SUFFIX)]


# -- headers -----------------------------------------------------------------------------------


@attrs.frozen
class Header:
    folder: str
    name: str
    generation: int


def header(folder: str, name: str, generation: int) -> bytes:
    return encode([MAGIC, FORMAT, folder, name, generation])


def read_header(data: bytes) -> tuple[Header, int] | None:
    """The header at the start of ``data`` and the offset past it, or ``None`` if none is."""
    newline = data.find(b"\n")
    if newline < 0:
        return None
    try:
        found = orjson.loads(data[:newline])
    except orjson.JSONDecodeError:
        return None
    if (
        type(found) is not list
        or len(found) != 5
        or found[:2] != [MAGIC, FORMAT]
        or type(found[2]) is not str
        or type(found[3]) is not str
        or not _count(found[4], least=1)
    ):
        return None
    return Header(found[2], found[3], found[4]), newline + 1


def torn_header(data: bytes, folder: str, name: str) -> bool:
    """Whether ``data`` (a log's first :data:`HEAD` bytes) is what a crash can leave of a log
    created with its header: nothing, zeros, or a part of the header, and never longer than
    the header (which is written in one piece and synced before any line)."""
    whole = header(folder, name, 1)
    return len(data) <= len(whole) and (not data.strip(b"\0") or whole.startswith(data))


# -- data lines --------------------------------------------------------------------------------


def row_check(table: str, *, plain: bool) -> Check:
    """The check of a collection's lines. ``plain``: the bytes hold nothing that orjson
    accepts and a row may not (see :func:`~hutch.cells.plain_json`), so a row that is a dict
    of plain cells is good as read (a list or dict cell is checked: it might nest too deep)."""

    def check(entry: Any) -> None:
        if type(entry) is not list or len(entry) != 3 or not _count(entry[0], least=1):
            raise ValueError("it is not [seq, row_id, row]")
        row_id = check_row_id(table, entry[1])
        row = entry[2]
        if row is not None and not (plain and type(row) is dict and not has_containers(row)):
            entry[2] = check_row(table, row_id, row)[0]

    return check


def value_check(entry: Any) -> None:
    """The check of the values log's lines."""
    if type(entry) is not list or len(entry) not in (2, 3) or not _count(entry[0], least=1):
        raise ValueError("it is not [seq, key, value] or [seq, key]")
    key = check_value_id(entry[1])
    if len(entry) == 3:
        entry[2] = check_value(entry[2], f"value {key!r}")


def check_for(name: str, *, plain: bool) -> Check:
    """The check of the lines of the log ``name`` (``plain``: see :func:`row_check`)."""
    table = log_table(name)
    return value_check if table is None else row_check(table, plain=plain)


def deletes(entry: Entry, name: str) -> bool:
    """Whether a line of the log ``name`` deletes its row (``[seq, row_id, null]``) or its key
    (``[seq, key]``: in the values log, ``null`` is a value like any other)."""
    return len(entry) == 2 if name == VALUES else entry[2] is None


def live(entries: list[Entry], name: str) -> list[Entry]:
    """The last line of each row (or key) of the log ``name`` still there, in commit order."""
    latest: dict[str, Entry] = {}
    for entry in entries:
        latest.pop(entry[1], None)  # keep the lines in commit order
        latest[entry[1]] = entry
    return [entry for entry in latest.values() if not deletes(entry, name)]


@attrs.frozen
class Bad:
    """The first line asked for that is missing or does not check."""

    index: int  # among the lines asked for, from 0
    offset: int  # where it starts in the bytes read
    reason: str


@attrs.frozen
class Lines:
    """The lines read from a log: the good ones (all asked for, unless ``bad`` says)."""

    entries: list[Entry]
    sizes: list[int]  # the bytes of each, its newline counted (what a compaction writes)
    end: int  # the offset just past the last good one
    open_line: bool  # the last good one has no newline (an editor stripped it)
    bad: Bad | None


def read_lines(data: bytes, count: int, check: Check) -> Lines:
    """The first ``count`` lines of ``data``, each checked; what lies beyond is not read.

    One orjson call parses all of them (the usual case); it must find exactly one
    entry per line, or a value broken over two lines would read as one. Any doubt,
    and the lines are read one by one to find the first that is bad.
    """
    end, open_line, present = _span(data, count)
    body = data[:end] if open_line else data[: max(end - 1, 0)]
    if present and not may_hold_long_numbers(body):
        try:
            entries = orjson.loads(b"[" + body.replace(b"\n", b",") + b"]")
            if len(entries) == present:
                for entry in entries:
                    check(entry)
                sizes = [len(line) + 1 for line in body.split(b"\n")]
                bad = None if present == count else _missing(present, end)
                return Lines(entries, sizes, end, open_line, bad)
        except ValueError:
            pass
    elif not present:
        return Lines([], [], 0, False, _missing(0, 0) if count else None)
    return _one_by_one(data, count, check)


def _span(data: bytes, count: int) -> tuple[int, bool, int]:
    """Where the first ``count`` lines of ``data`` end, whether the last lacks its newline,
    and how many there are (fewer than ``count`` if the data ends first)."""
    newlines = data.count(b"\n")
    if newlines >= count:
        rest = len(data.split(b"\n", count)[-1]) if newlines > count or data[-1:] != b"\n" else 0
        return len(data) - rest, False, count
    tail = data[-1:] not in (b"\n", b"")
    return len(data), tail, newlines + tail


def _one_by_one(data: bytes, count: int, check: Check) -> Lines:
    entries: list[Entry] = []
    sizes: list[int] = []
    position = 0
    open_line = False
    for index in range(count):
        if position >= len(data):
            return Lines(entries, sizes, position, open_line, _missing(index, position))
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline + 1
        line = data[position : end if newline < 0 else newline]
        try:
            check_exact_numbers(line)
            entry = orjson.loads(line)
            check(entry)
        except ValueError as error:
            reason = f"is not a line of this log ({error})"
            return Lines(entries, sizes, position, open_line, Bad(index, position, reason))
        entries.append(entry)
        sizes.append(len(line) + 1)
        position, open_line = end, newline < 0
    return Lines(entries, sizes, position, open_line, None)


def _missing(index: int, offset: int) -> Bad:
    return Bad(index, offset, "is missing: the file ends before it")


# -- commit lines ------------------------------------------------------------------------------


@attrs.frozen
class Commit:
    """One line of the commit log."""

    seq: int
    logs: dict[str, tuple[int, int]]  # log name -> (generation, lines) once the commit is in
    durable: int  # every commit up to this one had reached the disk (see the format doc)
    offset: int  # where the line starts in the bytes read
    end: int  # the offset just past it
    open_line: bool  # it has no newline


@attrs.frozen
class Commits:
    """The lines read from the commit log: the good ones, in order, then the first bad one."""

    good: list[Commit]
    bad: Bad | None
    claims: list[tuple[int, int]]  # (line index, durable) of each line that checks after it

    def proof(self, index: int, seq: int) -> int | None:
        """The index of a line from ``index`` on saying that commit ``seq`` reached the disk."""
        for commit_index, commit in enumerate(self.good[index:], index):
            if commit.durable >= seq:
                return commit_index
        return next((line for line, durable in self.claims if durable >= seq), None)


def commit_line(seq: int, logs: dict[str, tuple[int, int]], durable: int) -> bytes:
    return encode([seq, {name: list(at) for name, at in sorted(logs.items())}, durable])


def read_commits(data: bytes, expected: int | None) -> Commits:
    """Every line of ``data``, the first of which must be commit ``expected`` (``None``: any),
    each the one after the one before."""
    good: list[Commit] = []
    bad: Bad | None = None
    claims: list[tuple[int, int]] = []
    position = index = 0
    while position < len(data):
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline + 1
        line = data[position : end if newline < 0 else newline]
        try:
            commit = _commit(line, position, end, open_line=newline < 0)
        except ValueError as error:
            bad = bad or Bad(index, position, f"is not a commit line ({error})")
        else:
            if bad is not None:
                claims.append((index, commit.durable))
            elif expected is not None and commit.seq != expected:
                bad = Bad(index, position, f"is commit {commit.seq} where {expected} should be")
            else:
                good.append(commit)
                expected = commit.seq + 1
        position, index = end, index + 1
    return Commits(good, bad, claims)


def _commit(line: bytes, offset: int, end: int, *, open_line: bool) -> Commit:
    entry = orjson.loads(line)
    if type(entry) is not list or len(entry) != 3 or type(entry[1]) is not dict:
        raise ValueError("it is not [seq, {log: [generation, lines]}, durable]")
    seq, logs, durable = entry
    if not _count(seq, least=1) or not _count(durable, least=0) or durable > seq:
        raise ValueError("its seq or durable is not a whole number, or durable is above seq")
    checked: dict[str, tuple[int, int]] = {}
    for name, at in logs.items():
        if not is_log(name):
            raise ValueError(f"{name!r} is not the name of a log")
        if type(at) is not list or len(at) != 2 or not _count(at[0], least=1):
            raise ValueError(f"{name!r}: {at!r} is not [generation, lines]")
        if not _count(at[1], least=0):
            raise ValueError(f"{name!r}: {at!r} is not [generation, lines]")
        checked[name] = (at[0], at[1])
    return Commit(seq, checked, durable, offset, end, open_line)


#: More than any log counts (sequence numbers, generations, lines): a number past it was not
#: written by hutch, and the next one after it would not fit in 64 bits.
_MOST = 2**62


def _count(value: Any, *, least: int) -> bool:
    return type(value) is int and least <= value < _MOST
