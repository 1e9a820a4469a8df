"""Talking to child processes in tests: read their lines, never wait forever."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from typing import IO

WAIT = 60.0  # a bound on every wait, so that a bug fails the test instead of hanging it


class LineReader:
    """The lines a child process writes to a pipe, each awaited no longer than a deadline."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._fd = pipe.fileno()
        self._buffer = b""
        self._eof = False

    def readline(self, timeout: float = WAIT) -> str | None:
        """The next whole line, or ``None`` at the end (a torn last line is dropped)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line from the child within {timeout} s")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 1 << 16)
                self._buffer += chunk
                self._eof = not chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def rest(self) -> Iterator[str]:
        """Every remaining whole line, up to the end (call once the child has exited)."""
        while (line := self.readline()) is not None:
            yield line
