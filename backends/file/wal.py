"""The write-ahead log: ``_wal/<generation>.log`` files of checksummed lines (format 2).

Every line is ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. The first line of
a generation is its header; each line after it is one transaction::

    {"hutch": "wal", "format": 2, "folder": "<folder id>", "generation": 7, "previous": 6}
    {"s": 412, "p": 411, "c": 1, "t": {...tables...}, "v": {...values...}, "d": [...deleted...]}

``s`` numbers transactions without a gap across generations; ``p`` is the
highest ``s`` the writer knew to be durable when it wrote the line; ``c`` says
the writer synced the line before releasing the write lock
(``durability="commit"``), so whoever reads it next knows it durable. A line
with ``"k": 6`` and no changes records that a checkpoint finished: generation
6 and the ones before it are in the record files, and are not replayed. A
line with ``"n": 8`` and no changes ends its generation: the log goes on in
generation 8, which a checkpoint started; every process that reads it moves
there, so a process learns of a new generation without listing the folder.
A generation names the one it follows (``previous``), so the live chain of
generations is found from the newest one back, and a generation left behind by
a checkpoint whose delete did not last is known to be stale.

This is what lets recovery tell a torn tail from damage. A line that does not
check (a torn write, zeros, a flipped byte) at transaction ``s`` ends the log
only if nothing after it proves that ``s`` had been made durable: a good line
further on whose ``p`` is at least ``s``, or any line in a later generation
(each generation is synced before the next one takes lines). Then the line
was never acknowledged under ``durability="commit"`` and the tail from it on
is cut, with a warning. Otherwise it is damage: :class:`~hutch.CorruptData`
naming the file and the line, and nothing is cut.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Any

import attrs
import orjson

from hutch import Changes, HutchError
from hutch.cells import Row, check_exact_numbers, check_row, check_value, may_hold_long_numbers
from hutch.ids import check_row_id, check_table_id, check_value_id

FORMAT = 2
SUFFIX = ".log"
MAGIC = "wal"


def name(generation: int) -> str:
    return f"{generation:08d}{SUFFIX}"


_NAME = re.compile(r"[0-9]{8,18}\.log").fullmatch
#: The highest generation number a name can carry.
LAST = 10**18 - 1


def number(file_name: str) -> int | None:
    """The generation a file name says, or ``None`` if it is not a name :func:`name` writes
    (``².log``, ``٩٩.log``, ``7.log`` and ``007.log`` are not)."""
    if _NAME(file_name) and name(generation := int(file_name[: -len(SUFFIX)])) == file_name:
        return generation
    return None


def _line(payload: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def header(folder: str, generation: int, previous: int | None) -> bytes:
    """The first line of a generation."""
    return _line(
        orjson.dumps(
            {
                "hutch": MAGIC,
                "format": FORMAT,
                "folder": folder,
                "generation": generation,
                "previous": previous,
            }
        )
    )


def encode(
    seq: int,
    durable: int,
    changes: Changes,
    *,
    synced: bool,
    checkpointed: int | None = None,
    following: int | None = None,
) -> bytes:
    """One log line for a transaction's changes (or a checkpoint's mark, or a generation's
    end)."""
    fields: dict[str, Any] = {
        "s": seq,
        "p": durable,
        "c": int(synced),
        "t": changes.tables,
        "v": changes.values,
        "d": sorted(changes.deleted_values),
    }
    if checkpointed is not None:
        fields["k"] = checkpointed
    if following is not None:
        fields["n"] = following
    return _line(orjson.dumps(fields))


@attrs.frozen
class Header:
    folder: str
    generation: int
    previous: int | None


@attrs.frozen
class Entry:
    """One transaction read back: its number, what was durable then, its changes, where it ends."""

    seq: int
    durable: int
    synced: bool  # synced by its writer before the write lock was released
    changes: Changes
    end: int  # the offset just past its line
    checkpointed: int | None = None  # a checkpoint's mark: generations up to this one are in files
    following: int | None = None  # a generation's end: the log goes on in this one
    generation: int = 0  # the generation it was read from (0: not said)


def read_header(data: bytes) -> tuple[Header | None, int]:
    """The header of a generation file and the offset past it; ``None`` if there is none."""
    end = data.find(b"\n")
    payload = _checked(data[:end]) if end >= 0 else None
    if payload is None:
        return None, 0
    try:
        fields = orjson.loads(payload)
        if fields.get("hutch") != MAGIC or fields.get("format") != FORMAT:
            return None, 0
        folder, generation, previous = fields["folder"], fields["generation"], fields["previous"]
    except (ValueError, KeyError, AttributeError, TypeError):
        return None, 0
    if (
        not isinstance(folder, str)
        or not _count(generation)
        or not (previous is None or _count(previous))
    ):
        return None, 0
    return Header(folder, generation, previous), end + 1


class Damaged(Exception):
    """A line whose checksum holds but which is no transaction hutch writes (an id that is
    no id, a number out of turn...): not a torn write, so never cut, and never applied."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def entries(
    data: bytes, start: int, expected: int | None, generation: int = 0
) -> Iterator[Entry | None]:
    """The transactions of ``data`` from ``start``, each checked as a write is; ``None`` at
    the first line whose checksum fails (torn, or damaged), :class:`Damaged` at the first
    that checks but holds no transaction in turn.

    ``expected`` is the number the first one must carry (``None``: any); each entry
    says it was read from ``generation``. After a
    ``None``, :func:`proves_durable` says whether the rest of the file shows it
    was damage rather than a torn tail.
    """
    position = start
    while position < len(data):
        end = data.find(b"\n", position)
        payload = _checked(data[position:end]) if end >= 0 else None
        if payload is None:
            yield None
            return
        try:
            entry = _decoded(payload, end + 1, generation)
        except _Invalid as error:
            raise Damaged(position, str(error)) from None
        if expected is not None and entry.seq != expected:
            raise Damaged(position, f"it is transaction {entry.seq}, where {expected} comes next")
        yield entry
        expected = entry.seq + 1
        position = entry.end


def proves_durable(data: bytes, bad: int, seq: int | None) -> int | None:
    """The line number (1-based) of a good line after offset ``bad`` showing that the line at
    ``bad`` (transaction ``seq``, if known) had been made durable, or ``None``."""
    number = data.count(b"\n", 0, bad) + 1
    position = data.find(b"\n", bad)
    while position >= 0:
        number += 1
        end = data.find(b"\n", position + 1)
        if end < 0:
            return None
        entry = _entry(data[position + 1 : end], end + 1)
        if entry is not None:
            needed = entry.seq - 1 if seq is None else seq
            if entry.seq > needed and entry.durable >= needed:
                return number
        position = end
    return None


def first_edit(data: bytes, bad: int) -> Damaged | None:
    """The first line after offset ``bad`` whose checksum holds but which is no transaction
    (someone wrote it: no crash leaves one), or ``None``."""
    position = data.find(b"\n", bad)
    while position >= 0:
        end = data.find(b"\n", position + 1)
        if end < 0:
            return None
        payload = _checked(data[position + 1 : end])
        if payload is not None:
            try:
                _decoded(payload, end + 1)
            except _Invalid as error:
                return Damaged(position + 1, str(error))
        position = end
    return None


def checkpoint_marks(data: bytes, start: int, generation: int) -> list[int]:
    """The generations that the checkpoint marks of generation ``generation`` (its ``data``
    from ``start``) say are in the record files; :class:`Damaged` at a mark naming this
    generation or a later one, which no checkpoint writes."""
    found = []
    position = data.find(b'"k":', start)
    while position >= 0:
        begin = data.rfind(b"\n", start, position) + 1 or start
        end = data.find(b"\n", position)
        if end < 0:
            break
        entry = _entry(data[begin:end], end + 1)
        if entry is not None and entry.checkpointed is not None:
            if entry.checkpointed >= generation:
                raise Damaged(begin, f"its checkpoint mark names generation {entry.checkpointed}")
            found.append(entry.checkpointed)
        position = data.find(b'"k":', end)
    return found


def following(line: bytes) -> int | None:
    """The generation a line (with its newline) says the log goes on in, if it ends one."""
    entry = _entry(line[:-1], len(line)) if line.endswith(b"\n") else None
    return None if entry is None else entry.following


def line_number(data: bytes, offset: int) -> int:
    """The 1-based number of the line starting at ``offset``."""
    return data.count(b"\n", 0, offset) + 1


def _entry(line: bytes, end: int) -> Entry | None:
    """The transaction a line holds, checked as a write is; ``None`` if it does not check."""
    payload = _checked(line)
    if payload is None:
        return None
    try:
        return _decoded(payload, end)
    except _Invalid:
        return None


class _Invalid(Exception):
    """Why a line whose checksum holds is no transaction."""


def _decoded(payload: bytes, end: int, generation: int = 0) -> Entry:
    """The transaction of a line whose checksum holds, checked as a write is."""
    try:
        if may_hold_long_numbers(payload):
            check_exact_numbers(payload)
        fields = orjson.loads(payload)
        if type(fields) is not dict:
            raise TypeError("not a JSON object")
        seq, durable, synced = fields["s"], fields["p"], fields["c"]
        changes = checked_changes(fields["t"], fields["v"], fields["d"])
        checkpointed, following = fields.get("k"), fields.get("n")
    except KeyError as error:
        raise _Invalid(f"it lacks {error}") from None
    except (ValueError, TypeError, AttributeError, HutchError) as error:
        raise _Invalid(str(error)) from None
    if not (_count(seq) and _count(durable) and synced in (0, 1)):
        raise _Invalid("its transaction number, durable mark or sync flag is not a count")
    if checkpointed is not None and not _count(checkpointed):
        raise _Invalid("its checkpoint mark is not a generation number")
    if following is not None and not _count(following):
        raise _Invalid("the generation it names is not a generation number")
    return Entry(seq, durable, bool(synced), changes, end, checkpointed, following, generation)


def checked_changes(tables: Any, values: Any, deleted: Any) -> Changes:
    """The changes of a line, every id, row and value checked as a write checks them.

    A line may have been written by anyone who can write the folder: its ids
    become file names, so nothing is used unchecked.
    """
    if not (isinstance(tables, dict) and isinstance(values, dict) and isinstance(deleted, list)):
        raise TypeError("not a transaction")
    checked: dict[str, dict[str, Row | None]] = {}
    for table_id, rows in tables.items():
        check_table_id(table_id)
        if not isinstance(rows, dict):
            raise TypeError("not a table")
        checked[table_id] = {
            check_row_id(table_id, row_id): None
            if row is None
            else check_row(table_id, row_id, row)[0]
            for row_id, row in rows.items()
        }
    values = {check_value_id(k): check_value(v, f"value {k!r}") for k, v in values.items()}
    return Changes(checked, values, frozenset(check_value_id(key) for key in deleted))


def _checked(line: bytes) -> bytes | None:
    """The JSON of a line whose checksum matches, or ``None``."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        return payload if int(line[:8], 16) == zlib.crc32(payload) else None
    except ValueError:
        return None


#: More than any log counts (transactions, generations): a number past it was not written by
#: hutch, and the next one after it would not fit in 64 bits.
_MOST = 2**62


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value < _MOST
