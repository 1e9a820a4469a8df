"""Several worker processes on one store: exact counts, fresh reads without asking, every
lock wait bounded (and the holder named), readers that never wait behind another process,
and one store open once per process.

Every other process here is a real one; no test sleeps to synchronise: each waits
for a line from a child, or for a condition with a generous deadline.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from children import WAIT, Child, count_in_processes

import hutch
from hutch.follower import INTERVAL

BACKENDS = ["file", "jsonl", "sqlite"]

#: A child that opens the store, then obeys one command per line: "write ID N" commits a
#: row and says "wrote"; "hold" opens a transaction and says "holding" (and holds it until
#: killed); "close" closes and ends.
HOLDER = """\
import json, os, sys
import hutch

db = hutch.open(sys.argv[1], **json.loads(sys.argv[2]))


def say(text):
    os.write(1, (text + "\\n").encode())


say("ready")
for line in sys.stdin:
    command, *args = line.split()
    if command == "write":
        db.store.set_row("t", args[0], {"n": int(args[1])})
        say("wrote")
    elif command == "hold":
        db.store.transaction().__enter__()
        db.store.set_row("t", "held", {"n": 0})
        say("holding")
    elif command == "close":
        db.close()
        say("closed")
        break
"""


def url_of(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return f"{backend}://{tmp_path / 'data'}"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """Start children running :data:`HOLDER` on a URL; each is ended after the test."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER, encoding="utf-8")
    started: list[Child] = []

    def start(url: str, **options: Any) -> Child:
        import json

        name = f"child{len(started)}"
        command = [sys.executable, str(script), url, json.dumps(options)]
        child = Child(name, command, tmp_path / f"{name}.err")
        started.append(child)
        child.expect("ready")
        return child

    yield start
    for child in started:
        child.end()


def holding(child: Child) -> Child:
    """``child``, once it holds the store's write lock in a transaction it never ends."""
    child.send("hold")
    child.expect("holding")
    return child


def wait_for(condition: Callable[[], bool], what: str) -> float:
    """Seconds until ``condition()`` held, looking every millisecond; fails after WAIT."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > WAIT:
            pytest.fail(f"{what}: not within {WAIT} s")
        time.sleep(0.001)  # polling a condition, not waiting for one to become true
    return time.monotonic() - began


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_counter_incremented_by_four_processes_stays_exact(backend: str, tmp_path: Path) -> None:
    count_in_processes(tmp_path, url_of(backend, tmp_path), 4, 40)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_another_process_commits_is_read_without_a_refresh(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db:
        writer = spawn(url)
        writer.send("write r1 1")
        writer.expect("wrote")
        took = wait_for(lambda: db.store.get_row("t", "r1") is not None, "the other's row")
        # The documented bound is 50 ms; a loaded test machine gets a generous margin.
        assert took < 5.0
        assert db.store.get_row("t", "r1") == {"n": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_listeners_hear_other_processes_commits_on_the_follower_thread(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db:
        heard: list[tuple[str, Mapping[str, Mapping[str, Any]]]] = []
        db.store.add_listener(
            lambda changes: heard.append((threading.current_thread().name, changes.tables)), "t"
        )
        writer = spawn(url)
        for n in range(3):
            writer.send(f"write r{n} {n}")
            writer.expect("wrote")
        wait_for(lambda: db.store.get_row_count("t") == 3, "the other's three rows")
        wait_for(lambda: sum(len(tables["t"]) for _, tables in heard) >= 3, "three rows heard")
    assert {thread for thread, _ in heard} == {"hutch-follower"}
    assert sorted(row_id for _, tables in heard for row_id in tables["t"]) == ["r0", "r1", "r2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_the_follower_only_a_refresh_takes_others_commits_in(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url, follow=False) as db:
        writer = spawn(url)
        writer.send("write r1 1")
        writer.expect("wrote")
        assert db.backend.behind()
        time.sleep(INTERVAL * 10)  # ten follower rounds: none runs, so nothing comes in
        assert db.store.get_row("t", "r1") is None
        db.refresh()
        assert db.store.get_row("t", "r1") == {"n": 1}
        if backend != "sqlite":  # (SQLite's data_version also counts this process's commits)
            assert not db.backend.behind()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_holder_releases_the_lock_and_the_others_go_on(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    hutch.open(url).close()
    holder = holding(spawn(url))
    os.kill(holder.process.pid, signal.SIGKILL)
    holder.process.wait(WAIT)
    with hutch.open(url, lock_timeout=WAIT) as db:
        db.store.set_row("t", "after", {"n": 1})
        assert db.store.get_row("t", "held") is None  # the killed one's never committed
    with hutch.open(url) as db:
        assert db.store.get_row("t", "after") == {"n": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stuck_holder_makes_others_raise_lock_timeout_naming_it(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url, lock_timeout=0.5) as db:
        holder = holding(spawn(url))
        with pytest.raises(hutch.LockTimeout) as raised:
            db.store.set_row("t", "mine", {"n": 1})
        assert isinstance(raised.value, hutch.StorageError)
        message = str(raised.value)
        assert f"process {holder.process.pid}" in message
        assert "lock_timeout" in message
        assert str(tmp_path) in message
        assert db.store.get_row("t", "mine") is None  # nothing was written
        holder.end()  # killed: the lock is free again
        db.store.set_row("t", "mine", {"n": 1})
        assert db.store.get_row("t", "mine") == {"n": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_opening_waits_at_most_lock_timeout_behind_a_stuck_holder(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    hutch.open(url).close()
    holder = holding(spawn(url))
    with pytest.raises(hutch.LockTimeout, match=f"process {holder.process.pid}"):
        hutch.open(url, lock_timeout=0.5).store.set_row("t", "x", {"n": 1})


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_never_wait_behind_another_process(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    """A thread waiting for another process's lock holds nothing the readers need."""
    url = url_of(backend, tmp_path)
    with hutch.open(url, lock_timeout=WAIT) as db:
        db.store.set_row("t", "r", {"n": 1})
        holder = holding(spawn(url))
        wrote = threading.Event()

        def write() -> None:
            db.store.set_row("t", "w", {"n": 2})  # waits for the holder
            wrote.set()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            read: list[Any] = []
            reader = threading.Thread(
                target=lambda: read.extend([db.store.get_table("t"), db.store.get_row_count("t")])
            )
            reader.start()
            reader.join(WAIT)
            assert read == [{"r": {"n": 1}}, 1]  # the reads ended, with the writer still waiting
            assert not wrote.is_set()
        finally:
            holder.end()
            writer.join(WAIT)
        assert wrote.is_set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_opens_once_per_process(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url):
        with pytest.raises(hutch.ConfigError, match="open already in this process"):
            hutch.open(url)
        if backend != "sqlite":  # the same folder by another path
            os.symlink(tmp_path / "data", tmp_path / "alias")
            with pytest.raises(hutch.ConfigError, match="open already in this process"):
                hutch.open(f"{backend}://{tmp_path / 'alias'}")
    with hutch.open(url) as again:  # closed: it may open again
        again.store.set_row("t", "r", {"n": 1})


@pytest.mark.parametrize("value", [0, -1, "5", True, None])
def test_lock_timeout_must_be_a_positive_number(value: object, tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match="lock_timeout"):
        hutch.open(tmp_path, lock_timeout=value)  # type: ignore[arg-type]


def test_sqlite_busy_timeout_is_now_lock_timeout(tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match="lock_timeout"):
        hutch.open(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout=5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_listener_may_write(backend: str, tmp_path: Path) -> None:
    """A listener runs holding the store's lock; its write takes the backend's lock after it."""
    with hutch.open(url_of(backend, tmp_path)) as db:
        db.store.add_listener(lambda changes: db.store.set_value("audited", True), "t")
        db.store.set_row("t", "r", {"n": 1})
        assert db.store.get_value("audited") is True


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_holding_the_store_lock_may_write_while_others_do(
    backend: str, tmp_path: Path
) -> None:
    with hutch.open(url_of(backend, tmp_path), lock_timeout=WAIT) as db:
        errors: list[BaseException] = []

        def writes(name: str, under_lock: bool) -> None:
            try:
                for n in range(30):
                    if under_lock:
                        with db.store.lock:  # a consistent read, then a write
                            seen = db.store.get_row_count("t")
                            db.store.set_row("t", f"{name}{n}", {"seen": seen})
                    else:
                        db.store.set_row("t", f"{name}{n}", {"n": n})
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=writes, args=(f"w{i}", i % 2 == 0)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in threads), "a deadlock"
        assert errors == []
        assert db.store.get_row_count("t") == 120


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_listener_on_the_follower_holds_up_no_other_process(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db:
        heard, go_on = threading.Event(), threading.Event()

        def slow(changes: hutch.Changes) -> None:
            heard.set()
            go_on.wait(WAIT)

        db.store.add_listener(slow, "t")
        writer = spawn(url, lock_timeout=5)
        try:
            writer.send("write r1 1")
            writer.expect("wrote")
            assert heard.wait(WAIT)  # the follower is inside the listener now
            writer.send("write r2 2")  # and the other process's commit does not wait for it
            writer.expect("wrote")
        finally:
            go_on.set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_closed_database_refuses_writes_with_closed_error(backend: str, tmp_path: Path) -> None:
    db = hutch.open(url_of(backend, tmp_path))
    db.close()
    with pytest.raises(hutch.ClosedError):
        db.store.set_row("t", "r", {"n": 1})
    with pytest.raises(hutch.ClosedError):
        db.refresh()


@pytest.mark.parametrize("backend", BACKENDS)
def test_refresh_sees_every_commit_acknowledged_before_it_while_the_follower_runs(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    """The follower may be in the middle of taking a commit in when refresh() asks whether
    anything is new: refresh must still return with it taken in."""
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db:
        writer = spawn(url)
        for n in range(150):
            writer.send(f"write r{n} {n}")
            writer.expect("wrote")
            db.refresh()
            assert db.store.get_row("t", f"r{n}") == {"n": n}, f"commit {n} not taken in"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_listener_hearing_another_process_as_a_transaction_begins_may_write(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    """Others' commits taken in as a transaction begins are heard once the backend's lock is
    let go: a listener then writes like any thread (it once waited for its own lock)."""
    url = url_of(backend, tmp_path)
    with hutch.open(url, follow=False, lock_timeout=WAIT) as db:
        heard: list[str] = []

        def audit(changes: hutch.Changes) -> None:
            for row_id in changes.tables.get("t", {}):
                heard.append(row_id)
                db.store.set_row("audit", row_id, {"seen": True})

        db.store.add_listener(audit, "t")
        writer = spawn(url)
        writer.send("write theirs 1")
        writer.expect("wrote")
        db.store.set_row("t", "mine", {"n": 2})  # takes "theirs" in as it begins
        assert heard == ["theirs", "mine"]  # theirs first: it was committed first
        assert sorted(db.store.get_row_ids("audit")) == ["mine", "theirs"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_listener_may_close_the_database(
    backend: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    url = url_of(backend, tmp_path)
    db = hutch.open(url, lock_timeout=WAIT)
    closed = threading.Event()

    def close_on_stop(changes: hutch.Changes) -> None:
        if "stop" in changes.tables.get("t", {}):
            db.close()
            closed.set()

    db.store.add_listener(close_on_stop, "t")
    writer = spawn(url)
    writer.send("write other 1")  # the follower may be waiting for the store's lock meanwhile
    writer.expect("wrote")
    db.store.set_row("t", "stop", {"n": 1})
    assert closed.wait(WAIT)
    assert db.closed
    with hutch.open(url) as again:
        assert again.store.get_row("t", "stop") == {"n": 1}
