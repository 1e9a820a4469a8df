"""Talking to child processes in tests: read their lines, never wait forever."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import hutch

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


def end_process(process: subprocess.Popen[bytes]) -> None:
    """Kill a child process if it still runs, reap it, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(WAIT)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


class Child:
    """A child process talked to line by line through its pipes; its stderr goes to ``err``."""

    def __init__(
        self, name: str, command: list[str], err: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.err = err
        with err.open("wb") as error_file:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=error_file,
                bufsize=0,
                env=env,
            )
        assert self.process.stdout is not None
        self.lines = LineReader(self.process.stdout)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    def read(self) -> str:
        """The child's next line; it must not have ended (its stderr says why if it has)."""
        line = self.lines.readline()
        stderr = self.err.read_text(encoding="utf-8", errors="replace")
        assert line is not None, f"{self.name} ended early; stderr:\n{stderr}"
        return line

    def expect(self, what: str) -> None:
        line = self.read()
        stderr = self.err.read_text(encoding="utf-8", errors="replace")
        assert line == what, f"{self.name} said {line!r}; stderr:\n{stderr}"

    def end(self) -> None:
        end_process(self.process)


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
            end_process(child)


COUNTER = """\
import json, os, sys
import hutch

db = hutch.open(sys.argv[1], **json.loads(sys.argv[4]))
os.write(1, b"ready\\n")
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    with db.store.transaction():
        seen = db.store.get_cell("counters", "total", "n", 0)
        db.store.set_cell("counters", "total", "n", seen + 1)
        db.store.set_row("increments", f"w{sys.argv[3]}-{i}", {"saw": seen})
db.close()
os.write(1, b"done\\n")
"""


def count_in_processes(
    folder: Path, url: str, processes: int, increments: int, **options: Any
) -> None:
    """Several processes increment one counter at once; every increment must count once.

    Each increment also records the total it read: no two transactions may have
    read the same one. ``options`` go to ``hutch.open`` in every process.
    """
    hutch.open(url, **options).close()  # the store exists before the processes race to open it
    script = folder / "counter.py"
    script.write_text(COUNTER, encoding="utf-8")
    run_in_step(
        [
            [sys.executable, str(script), url, str(increments), str(me), json.dumps(options)]
            for me in range(processes)
        ]
    )
    with hutch.open(url, **options) as db:
        assert db.store.get_cell("counters", "total", "n") == processes * increments
        seen = sorted(row["saw"] for row in db.store.get_table("increments").values())
        assert seen == list(range(processes * increments))
