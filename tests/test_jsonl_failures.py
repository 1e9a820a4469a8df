"""What a ``jsonl://`` folder does when its upkeep fails: a compaction, the shortening of the
commit log or an index rewrite that cannot be written (a full disk, too many open files).

Upkeep is never what a commit, an open or a close is for: what fails is logged and tried
again later, each file on its own, and the rest goes on. A full disk is simulated as in
test_jsonl_bounds.py: ``fsio.write_atomic`` raises ``ENOSPC`` for the names refused.
"""

from __future__ import annotations

import errno
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import hutch
from hutch.backends.file import fsio


def url(root: Path) -> str:
    return f"jsonl://{root.resolve()}"


def log_lines(path: Path) -> list[bytes]:
    """A log's lines after its header."""
    return path.read_bytes().splitlines()[1:]


def refuse(monkeypatch: pytest.MonkeyPatch, refused: Callable[[str], bool]) -> list[str]:
    """``fsio.write_atomic`` raises ``ENOSPC`` for the names ``refused`` picks; returns the
    names it was asked to write (refused or not)."""
    asked: list[str] = []
    write_atomic = fsio.write_atomic

    def full(dir_fd: int, name: str, data: bytes, **options: Any) -> None:
        asked.append(name)
        if refused(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        write_atomic(dir_fd, name, data, **options)

    monkeypatch.setattr(fsio, "write_atomic", full)
    return asked


def index(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# -- options too big for a float ------------------------------------------------------------------


@pytest.mark.parametrize("big", [math.inf, 10**400], ids=["inf", "10**400"])
def test_a_batch_interval_too_big_to_wait_for_flushes_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, big: Any
) -> None:
    """``batch_interval=10**400`` raised a bare OverflowError at open, and ``inf`` killed the
    flushing thread at once (an OverflowError from its wait): both mean "never in the
    background", so the commits are flushed at close."""
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    with hutch.open(url(tmp_path), durability="batch", batch_interval=big) as db:
        db.store.set_row("t", "r", {"n": 1})
    assert died == []
    last = orjson.loads((tmp_path / "_commits.jsonl").read_bytes().splitlines()[-1])
    assert last[2] == last[0], "flushed at close, and the commit log says so"


def test_floors_too_big_for_a_float_or_infinite_mean_never(tmp_path: Path) -> None:
    """No automatic compaction by either count (not even of the commit log); db.compact()
    still compacts."""
    options: dict[str, Any] = {"compact_lines": math.inf, "compact_bytes": 10**400}
    with hutch.open(url(tmp_path), durability="none", **options) as db:
        for n in range(50):
            db.store.set_row("t", "r", {"n": n})
    assert len(log_lines(tmp_path / "t.jsonl")) == 50
    assert len(log_lines(tmp_path / "_commits.jsonl")) >= 50
    with hutch.open(url(tmp_path), durability="none", **options) as db:
        db.compact()
        assert len(log_lines(tmp_path / "t.jsonl")) == 1
        assert db.store.get_row("t", "r") == {"n": 49}


# -- the commit log -------------------------------------------------------------------------------


def test_a_commit_log_that_cannot_be_shortened_is_tried_again_once_it_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shortening that failed on a full disk was tried again at every commit (a rewrite of
    a line naming every log, each time), and made close() raise: it waits, as a log's
    compaction does, and fails nothing."""
    full = [True]
    asked = refuse(monkeypatch, lambda name: full[0] and name == "_commits.jsonl")
    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        for n in range(300):
            db.store.set_row("t", f"r{n % 2}", {"n": n})
        assert 1 <= asked.count("_commits.jsonl") <= 8, "tried again as it doubles"
    assert asked.count("_commits.jsonl") <= 8, "close waits for the doubling too"
    full[0] = False
    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        for n in range(100):
            db.store.set_row("t", f"r{n % 2}", {"n": -n})
            assert len(log_lines(tmp_path / "_commits.jsonl")) <= 22
        assert db.store.get_table("t") == {"r0": {"n": -98}, "r1": {"n": -99}}


# -- one file's failure is that file's only -------------------------------------------------------


def test_db_compact_compacts_every_log_it_can_then_says_which_it_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """db.compact() stopped at the first log that failed: the logs after it kept their dead
    lines, the commit log was not shortened and no index was rewritten."""
    collections = {"a": {"indexed": ["n"]}, "b": {"indexed": ["n"]}}
    with hutch.open(url(tmp_path), compact_lines=10**6, collections=collections) as db:
        for n in range(20):
            with db.store.transaction():
                db.store.set_row("a", f"r{n % 2}", {"n": n})
                db.store.set_row("b", f"r{n % 2}", {"n": n})
        refuse(monkeypatch, lambda name: name == "a.jsonl")
        with pytest.raises(hutch.DiskFull, match=r"a\.jsonl"):
            db.compact()
        assert len(log_lines(tmp_path / "a.jsonl")) == 20
        assert len(log_lines(tmp_path / "b.jsonl")) == 2
        assert len(log_lines(tmp_path / "_commits.jsonl")) == 1
        assert index(tmp_path / "indices/b/n.jsonl") == [[18, "r0"], [19, "r1"]]
    with hutch.open(url(tmp_path), read_only=True) as db:
        assert (
            db.store.get_table("a") == db.store.get_table("b") == {"r0": {"n": 18}, "r1": {"n": 19}}
        )


@pytest.mark.usefixtures("several_opens")
def test_index_files_that_cannot_be_written_fail_neither_the_open_nor_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index rewrite that failed at open failed the open (derived data shut the
    application out of its data), at close it made close() raise before the batch commits
    were flushed and vouched for, and one collection's failure left the next one's index
    stale too."""
    collections = {"a": {"indexed": ["x"]}, "b": {"indexed": ["y"]}}
    with hutch.open(url(tmp_path), collections=collections) as db:
        db.store.set_row("a", "r", {"x": 1})
        db.store.set_row("b", "r", {"y": 1})
    (tmp_path / "indices/a/x.jsonl").unlink()
    (tmp_path / "indices/b/y.jsonl").unlink()
    refuse(monkeypatch, lambda name: name == "x.jsonl")
    options: dict[str, Any] = {"durability": "batch", "batch_interval": 3600}
    with hutch.open(url(tmp_path), collections=collections, **options) as db:
        assert index(tmp_path / "indices/b/y.jsonl") == [[1, "r"]]
        db.store.set_row("a", "r", {"x": 2})
        db.store.set_row("b", "r", {"y": 2})
    assert not (tmp_path / "indices/a/x.jsonl").exists()
    assert index(tmp_path / "indices/b/y.jsonl") == [[2, "r"]]
    last = orjson.loads((tmp_path / "_commits.jsonl").read_bytes().splitlines()[-1])
    assert last[2] == last[0], "flushed at close, and the commit log says so"
    monkeypatch.undo()
    with hutch.open(url(tmp_path), collections=collections) as db:
        assert db.backend.verify() == []
    assert index(tmp_path / "indices/a/x.jsonl") == [[2, "r"]]


# -- a new generation that cannot be opened again -------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("failing", ["open_file", "inode"])
@pytest.mark.parametrize("name", ["t.jsonl", "_commits.jsonl"])
def test_a_new_generation_that_cannot_be_opened_loses_no_commit_and_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, name: str
) -> None:
    """Once a compaction (or a shortening) renamed its new generation in, opening it could
    fail (too many open files): the process still held the old file, and ``inode`` failing
    after the open leaked the descriptor. The next commit must find the new file, and
    write to it, not to the old one."""
    write_atomic, call = fsio.write_atomic, getattr(fsio, failing)
    armed = [False]

    def renamed(dir_fd: int, written: str, data: bytes, **options: Any) -> None:
        write_atomic(dir_fd, written, data, **options)
        armed[0] = armed[0] or written == name

    def failing_once(*arguments: Any, **keywords: Any) -> Any:
        if armed[0]:
            armed[0] = False
            if failing == "open_file":
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), name)
            call(*arguments, **keywords)  # (opened: a descriptor to leak)
            raise OSError(errno.EIO, os.strerror(errno.EIO), name)
        return call(*arguments, **keywords)

    before = open_descriptors()
    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        monkeypatch.setattr(fsio, "write_atomic", renamed)
        monkeypatch.setattr(fsio, failing, failing_once)
        for n in range(40):
            db.store.set_row("t", f"r{n % 2}", {"n": n})
        monkeypatch.undo()
    assert open_descriptors() == before
    with hutch.open(url(tmp_path), read_only=True) as db:
        assert db.store.get_table("t") == {"r0": {"n": 38}, "r1": {"n": 39}}


@pytest.mark.usefixtures("several_opens")
def test_a_compaction_whose_commit_line_cannot_be_written_is_recorded_by_the_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new generation is in place but the commit line saying so did not fit: the next
    commit's read of the logs records it, and nothing is lost or read twice."""
    write_atomic, append_after = fsio.write_atomic, fsio.append_after
    armed, refused = [False], []

    def renamed(dir_fd: int, name: str, data: bytes, **options: Any) -> None:
        write_atomic(dir_fd, name, data, **options)
        armed[0] = armed[0] or name == "t.jsonl"

    def full_once(fd: int, data: bytes, end: int, **options: Any) -> None:
        if armed[0]:
            armed[0] = False
            refused.append(data)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "_commits.jsonl")
        append_after(fd, data, end, **options)

    options: dict[str, Any] = {"durability": "none", "compact_lines": 10}
    with hutch.open(url(tmp_path), **options) as db:
        monkeypatch.setattr(fsio, "write_atomic", renamed)
        monkeypatch.setattr(fsio, "append_after", full_once)
        for n in range(40):
            db.store.set_row("t", f"r{n % 2}", {"n": n})
            stats = db.backend.stats()["collections"]["t"]
            assert stats["log_lines"] - stats["dead_lines"] == min(n + 1, 2), n
        monkeypatch.undo()
        assert refused, "a compaction's commit line was refused"
        with hutch.open(url(tmp_path), **options, follow=False) as other:
            assert other.store.get_table("t") == {"r0": {"n": 38}, "r1": {"n": 39}}
    with hutch.open(url(tmp_path), read_only=True) as db:
        assert db.store.get_table("t") == {"r0": {"n": 38}, "r1": {"n": 39}}
