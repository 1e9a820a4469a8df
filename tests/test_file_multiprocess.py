"""Several processes (or several Database objects, each with its own flock) on one folder.

A write transaction starts from everything the others committed, so
read-modify-write never loses an update; ``refresh()`` brings the store, its
listeners and its indexes up to date; and a database that fell more than a log
generation behind (the others checkpointed twice) converges by reloading.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, Child

import hutch
from hutch.backends.file import fsio
from hutch.backends.file.persister import FilePersister

#: Some tests play several processes with several Database objects in this one.
pytestmark = pytest.mark.usefixtures("several_opens")

PROCESSES = 4
INCREMENTS = 50

#: A worker: open, say "ready", wait for "go", increment, and answer the test's commands.
WORKER = """\
import json, os, sys
import hutch

folder, me, increments, reopen_every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def say(text):
    os.write(1, (text + "\\n").encode())


def expect(command):
    line = sys.stdin.readline().strip()
    if line != command:
        sys.exit(f"worker {me} expected {command!r} but read {line!r}")


db = hutch.open(folder, checkpoint_interval=3600)
say("ready")
expect("go")
for i in range(increments):
    if reopen_every and i and i % reopen_every == 0:
        db.close()  # a checkpoint: the others must follow the log into its next generation
        db = hutch.open(folder, checkpoint_interval=3600)
    with db.store.transaction():
        seen = db.store.get_cell("counters", "total", "n", 0)
        db.store.set_cell("counters", "total", "n", seen + 1)
        db.store.set_row("increments", f"w{me}-{i}", {"saw": seen})
say("done")
expect("check")
db.refresh()
total = db.store.get_cell("counters", "total", "n")
say(json.dumps({"total": total, "increments": len(db.store.get_row_ids("increments"))}))
expect("close")
db.close()
say("closed")
"""


def start_worker(script: Path, root: Path, me: int, reopen: int, err: Path) -> Child:
    """One worker process, talked to through its stdin and stdout."""
    command = [sys.executable, str(script), str(root), str(me), str(INCREMENTS), str(reopen)]
    return Child(f"worker {me}", command, err)


def test_increments_from_several_processes_add_up(tmp_path: Path) -> None:
    root = tmp_path / "data"
    hutch.open(root).close()  # the folder exists before the workers race to open it
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    workers: list[Child] = []
    try:
        for me in range(PROCESSES):
            # Two workers reopen (so checkpoint) now and then; the others fall behind the log.
            reopen_every = (10, 15, 0, 0)[me % 4]
            workers.append(
                start_worker(script, root, me, reopen_every, tmp_path / f"worker{me}.err")
            )
        for worker in workers:
            worker.expect("ready")
        for worker in workers:
            worker.send("go")
        for worker in workers:
            worker.expect("done")
        for worker in workers:
            worker.send("check")
        expected = {"total": PROCESSES * INCREMENTS, "increments": PROCESSES * INCREMENTS}
        for worker in workers:
            assert json.loads(worker.read()) == expected, f"{worker.name} after refresh"
        for worker in workers:
            worker.send("close")
            worker.expect("closed")
        for worker in workers:
            assert worker.process.wait(WAIT) == 0
    finally:
        for worker in workers:
            worker.end()
    with hutch.open(root) as db:
        assert db.store.get_cell("counters", "total", "n") == PROCESSES * INCREMENTS
        seen = sorted(row["saw"] for row in db.store.get_table("increments").values())
        # Each increment read a different total: no two transactions overlapped.
        assert seen == list(range(PROCESSES * INCREMENTS))


def open_quietly(root: Path) -> hutch.Database:
    """No background checkpoint: checkpoints happen where a test asks for them (close, open);
    no follower: others' commits come in where a test asks for them (transactions, refresh)."""
    return hutch.open(root, checkpoint_interval=3600, follow=False)


@contextmanager
def databases(root: Path, count: int) -> Iterator[list[hutch.Database]]:
    """Several databases on one folder, each with its own flock, as separate processes have."""
    with ExitStack() as stack:
        yield [stack.enter_context(open_quietly(root)) for _ in range(count)]


def contents(db: hutch.Database) -> bytes:
    """Everything a store holds, as canonical JSON (1, 1.0 and True told apart)."""
    store = db.store
    return orjson.dumps(
        {
            "tables": {table: store.get_table(table) for table in store.get_table_ids()},
            "values": store.get_values(),
        },
        option=orjson.OPT_SORT_KEYS,
    )


def test_the_next_transaction_starts_from_what_another_process_committed(
    tmp_path: Path,
) -> None:
    with databases(tmp_path, 2) as (a, b):
        heard: list[hutch.Changes] = []
        b.store.add_listener(heard.append, table="users")
        b.indexes.define("users_by_team", "users", "team")
        a.store.set_row("users", "u1", {"name": "Ada", "team": "red"})
        a.store.set_value("count", 1)
        with b.store.transaction():
            assert b.store.get_row("users", "u1") == {"name": "Ada", "team": "red"}
            assert b.indexes.slice_row_ids("users_by_team", "red") == ["u1"]
            b.store.set_value("count", b.store.get_value("count") + 1)
            b.store.set_row("users", "u2", {"name": "Bob", "team": "red"})
        assert any(
            changes.tables.get("users", {}).get("u1") == {"name": "Ada", "team": "red"}
            for changes in heard
        ), "b's listener did not hear a's commit"
        with a.store.transaction():
            assert a.store.get_value("count") == 2
            assert a.store.get_row("users", "u2") == {"name": "Bob", "team": "red"}
            a.store.del_row("users", "u1")
        # A single write is a transaction too: it starts from the other's commits.
        b.store.set_cell("users", "u2", "team", "blue")
        assert not b.store.has_row("users", "u1")
        assert b.indexes.slice_row_ids("users_by_team", "red") == []
        assert b.indexes.slice_row_ids("users_by_team", "blue") == ["u2"]
        a.refresh()
        assert contents(a) == contents(b)


def test_refresh_brings_in_the_others_commits_with_listeners_and_indexes(
    tmp_path: Path,
) -> None:
    with databases(tmp_path, 2) as (a, b):
        b.indexes.define("by_kind", "items", "kind")
        heard: list[hutch.Changes] = []
        b.store.add_listener(heard.append, table="items")
        with a.store.transaction():
            a.store.set_row("items", "i1", {"kind": "x"})
            a.store.set_row("items", "i2", {"kind": "y"})
            a.store.set_row("items", "i3", {"kind": "x", "n": 1.0})
            a.store.set_value("state", {"step": 1})
        b.refresh()
        assert b.indexes.slice_row_ids("by_kind", "x") == ["i1", "i3"]
        assert b.indexes.slice_row_ids("by_kind", "y") == ["i2"]
        assert heard, "b's listener heard nothing"
        assert heard[-1].tables["items"]["i3"] == {"kind": "x", "n": 1.0}
        with a.store.transaction():
            a.store.del_row("items", "i1")
            a.store.set_cell("items", "i3", "kind", "y")
            a.store.del_value("state")
        heard.clear()
        b.refresh()
        assert b.indexes.slice_ids("by_kind") == ["y"]
        assert b.indexes.slice_row_ids("by_kind", "y") == ["i2", "i3"]
        assert b.store.get_values() == {}
        assert [changes.tables["items"].get("i1", "absent") for changes in heard] == [None]
        assert contents(a) == contents(b)
        b.refresh()  # nothing new: nothing heard
        assert len(heard) == 1


def wal_files(root: Path) -> set[str]:
    return {path.name for path in (root / "_wal").glob("*.log")}


@pytest.mark.parametrize("checkpoints", [1, 2, 3])
def test_a_database_generations_behind_converges_on_refresh(
    tmp_path: Path, checkpoints: int
) -> None:
    """The other side checkpoints (close, reopen) while this one looks away.

    One checkpoint leaves the generation this side was reading; two or more
    delete it, and the persister must fall back to reading everything again.
    """
    with databases(tmp_path, 1) as (b,):
        a = open_quietly(tmp_path)
        try:
            with a.store.transaction():
                for n in range(10):
                    a.store.set_row("rows", f"r{n}", {"n": n, "kind": "even" if n % 2 else "odd"})
                a.store.set_value("keep", 1)
                a.store.set_value("drop", [1, 2])
            b.refresh()
            b.indexes.define("by_kind", "rows", "kind")
            heard: list[hutch.Changes] = []
            b.store.add_listener(heard.append)
            b.store.set_row("rows", "from_b", {"n": -1})  # b's own commit, not yet checkpointed
            reading = wal_files(tmp_path)
            for round_ in range(checkpoints):
                with a.store.transaction():
                    a.store.del_row("rows", f"r{round_}")
                    a.store.set_row("rows", f"new{round_}", {"n": 100 + round_, "kind": "new"})
                    a.store.set_cell("rows", "r9", "kind", f"round{round_}")
                    a.store.set_value("keep", round_)
                    a.store.del_value("drop")
                a.close()  # a checkpoint: the log moves to its next generation
                a = open_quietly(tmp_path)
            if checkpoints >= 2:
                assert not reading & wal_files(tmp_path), "b's log generation should be gone"
            b.refresh()
            assert contents(b) == contents(a)
            for round_ in range(checkpoints):
                assert not b.store.has_row("rows", f"r{round_}")
                assert b.store.get_row("rows", f"new{round_}") == {
                    "n": 100 + round_,
                    "kind": "new",
                }
            assert b.store.get_row("rows", "from_b") == {"n": -1}
            assert b.store.get_values() == {"keep": checkpoints - 1}
            assert b.indexes.slice_row_ids("by_kind", "new") == [
                f"new{r}" for r in range(checkpoints)
            ]
            assert b.indexes.slice_row_ids("by_kind", f"round{checkpoints - 1}") == ["r9"]
            assert "r0" not in b.indexes.slice_row_ids("by_kind", "odd")
            deleted = {
                row_id
                for changes in heard
                for row_id, row in changes.tables.get("rows", {}).items()
                if row is None
            }
            assert {f"r{r}" for r in range(checkpoints)} <= deleted
            assert any("drop" in changes.deleted_values for changes in heard)
            # b writes at the right place in the log it now reads: a sees it, and so does a reopen.
            b.store.set_row("rows", "after", {"n": 1000})
            a.refresh()
            assert a.store.get_row("rows", "after") == {"n": 1000}
            assert contents(a) == contents(b)
            expected = contents(b)
        finally:
            a.close()
    with hutch.open(tmp_path) as fresh:
        assert contents(fresh) == expected


def test_a_background_checkpointer_does_not_lose_the_others_commits(tmp_path: Path) -> None:
    """The other side checkpoints on its own timer while this side keeps committing."""
    with (
        open_quietly(tmp_path) as quiet,
        hutch.open(tmp_path, checkpoint_interval=0.001) as checkpointing,
    ):
        for n in range(200):
            writer = quiet if n % 2 else checkpointing
            with writer.store.transaction():
                total = writer.store.get_value("total", 0)
                writer.store.set_value("total", total + 1)
                writer.store.set_row("rows", f"r{n}", {"by": "quiet" if n % 2 else "busy"})
                if n >= 10:
                    writer.store.del_row("rows", f"r{n - 10}")
        with checkpointing.store.transaction():
            assert checkpointing.store.get_value("total") == 200
        with quiet.store.transaction():
            assert quiet.store.get_value("total") == 200
        assert contents(quiet) == contents(checkpointing)
        expected = contents(quiet)
    with hutch.open(tmp_path) as fresh:
        assert contents(fresh) == expected
        assert sorted(fresh.store.get_row_ids("rows")) == [f"r{n}" for n in range(190, 200)]


def test_what_one_process_checkpointed_no_other_writes_again(tmp_path: Path) -> None:
    """A checkpoint's mark tells every process which record files are written: the next
    checkpoint elsewhere writes only what was logged after it."""
    root = tmp_path / "data"
    with open_quietly(root) as first, open_quietly(root) as second:
        for n in range(20):
            first.store.set_row("t", f"r{n}", {"n": n})
        second.refresh()  # all twenty are dirty in the second one's view too
        backend = first.backend
        assert isinstance(backend, FilePersister)
        backend.checkpoint()  # writes the twenty, then marks it in the log
        first.store.set_row("t", "later", {"n": 99})
        written: list[str] = []

        def trace(operation: str, *arguments: Any) -> None:
            if operation == "rename" and str(arguments[3]).endswith(".json"):
                written.append(str(arguments[3]))

        other = second.backend
        assert isinstance(other, FilePersister)
        fsio.tracer = trace
        try:
            other.checkpoint()
        finally:
            fsio.tracer = None
        assert written == ["later.json"]
    with hutch.open(root) as db:
        assert db.store.get_row_count("t") == 21
