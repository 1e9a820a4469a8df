"""The write-ahead log: each commit is one checksummed line appended to ``_wal/<generation>.log``.

A line is ``<crc32 as 8 hex digits> <JSON>\\n``; the JSON holds a transaction's
changes (``t``: tables, ``v``: values set, ``d``: values deleted). A line that
is torn (no newline) or whose checksum fails ends the readable log: it is what
a crash in the middle of an append leaves, and it was never acknowledged.

A checkpoint, once the record files hold everything in the log, starts the next
generation; the generation before the current one is kept, so a process that
has not read the end of it yet can still catch up.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from hutch import Changes

from .fsio import append_after

SUFFIX = ".log"


def encode(changes: Changes) -> bytes:
    """One log line for a transaction's changes."""
    payload = orjson.dumps(
        {"t": changes.tables, "v": changes.values, "d": sorted(changes.deleted_values)}
    )
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode(payload: dict[str, Any]) -> Changes:
    return Changes(payload["t"], payload["v"], frozenset(payload["d"]))


def read_lines(data: bytes, start: int = 0) -> Iterator[tuple[Changes, int]]:
    """Yield each whole, intact record from ``start`` with the offset just past it."""
    position = start
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            return
        line = data[position:end]
        if len(line) < 10 or line[8:9] != b" ":
            return
        payload = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(payload):
                return
            changes = decode(orjson.loads(payload))
        except (ValueError, KeyError, TypeError):
            return
        position = end + 1
        yield changes, position


def name(generation: int) -> str:
    return f"{generation:08d}{SUFFIX}"


def generations(wal_fd: int) -> list[int]:
    """The generations present in the log folder, oldest first."""
    found = []
    for entry in os.scandir(wal_fd):
        stem = entry.name.removesuffix(SUFFIX)
        if entry.name.endswith(SUFFIX) and stem.isdigit():
            found.append(int(stem))
    return sorted(found)


class Writer:
    """Appends to the current generation's file."""

    def __init__(self, wal_fd: int, generation: int) -> None:
        self.generation = generation
        self._fd = os.open(
            name(generation),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=wal_fd,
        )
        self.size = os.fstat(self._fd).st_size

    def append(self, line: bytes, valid_end: int, *, sync: bool) -> None:
        """Append one record after ``valid_end`` (the end of the last intact record).

        Anything past ``valid_end`` is the torn tail of an append that crashed
        and is cut off first; on any error the file is cut back again, so no
        partial line stays.
        """
        append_after(self._fd, line, valid_end, sync=sync)
        self.size = valid_end + len(line)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
