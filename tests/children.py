"""Talking to child processes in tests: read their lines, never wait forever."""

from __future__ import annotations

import os
import select
import subprocess
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


def run_in_step(commands: list[list[str]]) -> None:
    """Run child processes that print "ready", wait for a line on stdin, work, print "done".

    They all start work at once (one "go" each, no sleeps), must all finish with
    exit status 0, and are always ended and reaped, whatever happens.
    """
    children: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            children.append(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            )
        readers = [LineReader(child.stdout) for child in children if child.stdout is not None]
        for reader in readers:
            assert reader.readline() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        for reader in readers:
            assert reader.readline() == "done"
        for child in children:
            assert child.wait(WAIT) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait(WAIT)
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()
