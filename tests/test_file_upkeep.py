"""Upkeep of a file:// folder — checkpoints, index files rewritten or removed, ``"wal": false``
records written after their commit — when the disk refuses it: an I/O error, a read-only file
system, a permission, a folder where a file belongs.

Upkeep writes files from the log, which holds every commit already: what fails is logged and
tried again later, and no open, close or commit fails for it. Faults the kernel cannot be
made to give on demand (EIO) are injected as test_jsonl_failures.py does: an ``fsio`` call
raises for the names refused; the real ones (a read-only remount, a permission, a full disk)
are in test_file_faults.py.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from children import WAIT

import hutch
from hutch.backends.file import FilePersister, fsio, records

FILE_LOGGER = "hutch.backends.file"


def refuse(
    monkeypatch: pytest.MonkeyPatch, name: str, code: int, refused: Callable[[str], bool]
) -> None:
    """``fsio.<name>(dir_fd, file_name, ...)`` raises ``OSError(code)`` for the file names
    ``refused`` picks."""
    real = getattr(fsio, name)

    def failing(dir_fd: int, file_name: str, *arguments: Any, **options: Any) -> Any:
        if refused(file_name):
            raise OSError(code, os.strerror(code), file_name)
        return real(dir_fd, file_name, *arguments, **options)

    monkeypatch.setattr(fsio, name, failing)


def a_record(name: str) -> bool:
    """Record and value files (not the manifest)."""
    return name.endswith(".json") and name != "hutch.json"


class Warned(logging.Handler):
    """Sets ``seen`` when the file backend warns of something mentioning ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.needle in message:
            self.seen.set()


@pytest.fixture
def warned() -> Iterator[Callable[[str], Warned]]:
    handlers: list[Warned] = []
    logger = logging.getLogger(FILE_LOGGER)

    def watch(needle: str) -> Warned:
        handler = Warned(needle)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield watch
    for handler in handlers:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "code", [errno.EIO, errno.EROFS, errno.EACCES], ids=["EIO", "EROFS", "EACCES"]
)
def test_a_checkpoint_that_fails_fails_neither_the_open_nor_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warned: Callable[[str], Warned], code: int
) -> None:
    """Was: open and close tolerated a full disk and a lock timeout only; any other storage
    error of their checkpoint (EIO, a read-only file system, a permission) failed them,
    though the log held every commit."""
    closing, opening = warned("the closing checkpoint"), warned("the opening checkpoint")
    refuse(monkeypatch, "write_atomic", code, a_record)
    with hutch.open(tmp_path, checkpoint_interval=3600) as db:
        db.store.set_row("posts", "p1", {"a": 1})
        db.store.set_value("k", 1)
    assert closing.seen.is_set()
    assert not (tmp_path / "posts" / "p1.json").exists()
    with hutch.open(tmp_path, checkpoint_interval=3600) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
        db.store.set_row("posts", "p2", {"a": 2})
    assert opening.seen.is_set()
    monkeypatch.undo()
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}, "p2": {"a": 2}}
        assert db.store.get_values() == {"k": 1}
    assert sorted(path.name for path in (tmp_path / "posts").iterdir()) == ["p1.json", "p2.json"]


def test_index_files_that_cannot_be_rewritten_or_removed_fail_no_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: an index file that could not be removed (a field no longer indexed) failed the
    open, and so did one that could not be rewritten (stale), but for a full disk; one
    collection's failure also held back the others'."""
    indexed = {"posts": {"indexed": ["a", "b"]}, "tags": {"indexed": ["t"]}}
    with hutch.open(tmp_path, collections=indexed) as db:
        db.store.set_row("posts", "p1", {"a": 1, "b": 2})
        db.store.set_row("tags", "t1", {"t": "x"})
    (tmp_path / "posts" / "indices" / "a.jsonl").write_text('[9, "p1"]\n')
    (tmp_path / "tags" / "indices" / "t.jsonl").write_text('["y", "t1"]\n')
    refuse(monkeypatch, "remove", errno.EACCES, lambda name: name.endswith(".jsonl"))
    refuse(monkeypatch, "write_atomic", errno.EIO, lambda name: name == "a.jsonl")
    settings = {"posts": {"indexed": ["a"]}, "tags": {"indexed": ["t"]}}
    with hutch.open(tmp_path, collections=settings, checkpoint_interval=3600) as db:
        assert db.store.get_row("posts", "p1") == {"a": 1, "b": 2}
        problems = db.backend.verify()
    assert any("b.jsonl" in problem for problem in problems), problems
    assert any("a.jsonl" in problem for problem in problems), problems
    assert (tmp_path / "tags" / "indices" / "t.jsonl").read_text() == '["x","t1"]\n'
    monkeypatch.undo()
    with hutch.open(tmp_path, collections=settings) as db:
        assert db.backend.verify() == []
    assert not (tmp_path / "posts" / "indices" / "b.jsonl").exists()


def test_a_failed_background_checkpoint_fails_no_later_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warned: Callable[[str], Warned]
) -> None:
    """Was: the background checkpoint's error was raised by the application's next call, so
    a commit that the log would have taken failed for upkeep."""
    failed = warned(str(tmp_path))
    refuse(monkeypatch, "write_atomic", errno.EIO, a_record)
    with hutch.open(tmp_path, checkpoint_interval=0.01) as db:
        db.store.set_row("posts", "p1", {"a": 1})
        assert failed.seen.wait(WAIT), "the background checkpoint never ran"
        db.store.set_row("posts", "p2", {"a": 2})
        db.refresh()
        monkeypatch.undo()
        backend = db.backend
        assert isinstance(backend, FilePersister)
        backend.checkpoint()
        assert (tmp_path / "posts" / "p2.json").exists()
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}, "p2": {"a": 2}}


def test_a_wal_false_record_that_cannot_be_written_fails_neither_its_commit_nor_an_open(
    tmp_path: Path,
) -> None:
    """Was: a ``"wal": false`` record whose file could not be written after its commit was
    logged (a folder in its way, and no quarantine to move it to) failed the commit — though
    the log held it, so the next open showed the row — and failed every open after."""
    settings = {"direct": {"wal": False}}
    with hutch.open(tmp_path, collections=settings, checkpoint_interval=3600) as db:
        db.store.set_row("direct", "d0", {"a": 0})
        (tmp_path / "direct" / "d1.json").mkdir()  # in the way
        (tmp_path / "_quarantine").write_text("no folder")  # so it cannot be moved aside
        db.store.set_row("direct", "d1", {"a": 1})
        assert db.store.get_row("direct", "d1") == {"a": 1}
    with hutch.open(tmp_path, collections=settings, checkpoint_interval=3600) as db:
        assert db.store.get_table("direct") == {"d0": {"a": 0}, "d1": {"a": 1}}
    (tmp_path / "_quarantine").unlink()
    with hutch.open(tmp_path, collections=settings) as db:
        assert db.store.get_table("direct") == {"d0": {"a": 0}, "d1": {"a": 1}}
    assert (tmp_path / "direct" / "d1.json").is_file()


def test_a_close_whose_last_sync_fails_says_so_and_frees_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: under ``durability="batch"``, a close whose sync of the log failed raised the bare
    OSError and left the folder's descriptors open. Those commits were acknowledged, so
    the failure is raised — as a StorageError naming the folder — after everything is
    released."""
    opened = len(os.listdir("/proc/self/fd"))
    db = hutch.open(tmp_path, durability="batch", batch_interval=math.inf, follow=False)
    db.store.set_row("posts", "p1", {"a": 1})
    monkeypatch.setattr(fsio, "fdatasync", failing_sync)
    with pytest.raises(hutch.StorageError, match=str(tmp_path)):
        db.close()
    monkeypatch.undo()
    assert len(os.listdir("/proc/self/fd")) == opened
    with hutch.open(tmp_path) as again:
        assert again.store.get_table("posts") == {"p1": {"a": 1}}


def failing_sync(fd: int) -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_a_row_too_big_to_be_read_back_is_refused_before_it_is_written(tmp_path: Path) -> None:
    """Was: a 65 MiB row was committed, and every later open refused its record file."""
    big = "x" * (records.MAX_RECORD_BYTES + 1)
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "small", {"n": 1})
        with pytest.raises(hutch.InvalidValue, match="more than 64 MiB"):
            db.store.set_row("t", "big", {"blob": big})
        assert db.store.get_row("t", "big") is None
        db.store.set_row("t", "after", {"n": 2})
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("t") == {"small": {"n": 1}, "after": {"n": 2}}


def fdatasync_failing_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the next ``fdatasync`` fail with EIO and the later ones sync; the descriptors
    it is called with, as it is."""
    real = fsio.fdatasync
    calls: list[int] = []

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(fsio, "fdatasync", failing_once)
    return calls


def test_a_failed_sync_of_batch_commits_at_close_is_raised_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: the closing checkpoint's sync failed (logged as upkeep), the close synced again,
    and a second fdatasync reports success for pages the kernel already dropped."""
    db = hutch.open(tmp_path, durability="batch", batch_interval=3600)
    db.store.set_row("t", "r", {"n": 1})  # acknowledged, not synced
    calls = fdatasync_failing_once(monkeypatch)
    with pytest.raises(hutch.StorageError, match="open it again"):
        db.close()
    assert db.closed
    assert len(calls) == 1  # never asked again, where the answer could not be trusted


def test_a_failed_sync_of_a_commit_fails_it_and_every_later_one_of_that_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: under durability="commit" the next commit synced again and was acknowledged,
    though marks written before the failed sync may never reach the disk."""
    db = hutch.open(tmp_path)
    db.store.set_row("t", "kept", {"n": 1})
    real = fsio.fdatasync
    fdatasync_failing_once(monkeypatch)
    with pytest.raises(hutch.StorageError, match="Input/output error"):
        db.store.set_row("t", "failed", {"n": 2})
    with pytest.raises(hutch.StorageError, match="open it again"):
        db.store.set_row("t", "refused", {"n": 3})
    monkeypatch.setattr(fsio, "fdatasync", real)
    with contextlib.suppress(hutch.StorageError):
        db.close()
    with hutch.open(tmp_path) as again:
        assert again.store.get_table("t") == {"kept": {"n": 1}}
