"""One Database used from several threads at once: no lost updates, no uncommitted reads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hutch

WAIT = 30.0  # a bound on waiting for an event, so that a bug fails the test instead of hanging


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so that interleavings happen."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


class Boom(Exception):
    pass


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Start one thread per target, release them together, join them; fail if any raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait(WAIT)
                target()
            except BaseException as error:
                errors.append(error)
                barrier.abort()

        return run

    threads = [threading.Thread(target=wrap(target)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# -- no lost updates ---------------------------------------------------------------------------


def test_read_modify_write_of_a_value_in_transactions_loses_no_increment(
    store: hutch.Store,
) -> None:
    threads, increments = 6, 300

    def increment() -> None:
        for _ in range(increments):
            with store.transaction():
                store.set_value("counter", store.get_value("counter", 0) + 1)

    run_threads([increment] * threads)
    assert store.get_value("counter") == threads * increments


def test_read_modify_write_of_a_cell_in_transactions_loses_no_increment(
    store: hutch.Store,
) -> None:
    threads, increments = 6, 300

    def increment() -> None:
        for _ in range(increments):
            with store:
                row = store.get_row("counters", "c1") or {"n": 0}
                store.set_row("counters", "c1", {"n": row["n"] + 1})

    run_threads([increment] * threads)
    assert store.get_row("counters", "c1") == {"n": threads * increments}


def test_concurrent_writers_to_different_rows_lose_nothing(store: hutch.Store) -> None:
    threads, rows = 6, 200

    def writer(number: int) -> Callable[[], None]:
        def write() -> None:
            for j in range(rows):
                store.set_row("items", f"w{number}-{j}", {"writer": number, "j": j})

        return write

    run_threads([writer(i) for i in range(threads)])
    assert store.get_row_count("items") == threads * rows
    assert store.get_table("items") == {
        f"w{i}-{j}": {"writer": i, "j": j} for i in range(threads) for j in range(rows)
    }


def test_concurrent_set_cell_on_one_row_loses_no_cell(store: hutch.Store) -> None:
    threads, writes = 6, 200

    def writer(number: int) -> Callable[[], None]:
        def write() -> None:
            for j in range(writes):
                store.set_cell("shared", "r1", f"c{number}", j)
                store.set_partial_row("shared", "r1", {f"p{number}": j})

        return write

    run_threads([writer(i) for i in range(threads)])
    expected: dict[str, Any] = {}
    for i in range(threads):
        expected[f"c{i}"] = writes - 1
        expected[f"p{i}"] = writes - 1
    assert store.get_row("shared", "r1") == expected


def test_listeners_hear_every_commit_from_every_thread_once(store: hutch.Store) -> None:
    threads, writes = 4, 100
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)

    def writer(number: int) -> Callable[[], None]:
        def write() -> None:
            for j in range(writes):
                store.set_value(f"v{number}-{j}", j)

        return write

    run_threads([writer(i) for i in range(threads)])
    keys = sorted(key for changes in heard for key in changes.values)
    assert len(heard) == threads * writes
    assert keys == sorted(f"v{i}-{j}" for i in range(threads) for j in range(writes))


def test_a_listener_runs_on_the_committing_thread(store: hutch.Store) -> None:
    seen: dict[str, int] = {}

    def listener(changes: hutch.Changes) -> None:
        for key in changes.values:
            seen[key] = threading.get_ident()

    store.add_listener(listener)
    writers: dict[str, int] = {}

    def writer(name: str) -> Callable[[], None]:
        def write() -> None:
            writers[name] = threading.get_ident()
            store.set_value(name, 1)

        return write

    run_threads([writer("a"), writer("b"), writer("c")])
    assert seen == writers


# -- no uncommitted reads ----------------------------------------------------------------------


def read_while_writing(write: Callable[[Callable[[], None]], None], read: Callable[[], Any]) -> Any:
    """Run ``write(pause)`` in a thread; while it sits in ``pause()``, run ``read`` in another.

    ``write`` opens a transaction and calls ``pause()`` inside it. The reader starts only
    once the writer is paused, and the writer goes on only once the reader is about to read,
    so the read is issued while the transaction is open. Returns what ``read`` returned.
    """
    inside = threading.Event()
    reading = threading.Event()
    release = threading.Event()
    results: list[Any] = []
    errors: list[BaseException] = []

    def pause() -> None:
        inside.set()
        if not release.wait(WAIT):
            raise TimeoutError("the reader never started")

    def writer() -> None:
        try:
            write(pause)
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        try:
            reading.set()
            results.append(read())
        except BaseException as error:
            errors.append(error)

    writing = threading.Thread(target=writer)
    reading_thread = threading.Thread(target=reader)
    writing.start()
    try:
        assert inside.wait(WAIT)
        reading_thread.start()
        assert reading.wait(WAIT)
    finally:
        release.set()
        writing.join()
        if reading_thread.ident is not None:
            reading_thread.join()
    assert errors == []
    (result,) = results
    return result


def test_a_reader_never_sees_a_transaction_that_then_rolls_back(store: hutch.Store) -> None:
    store.set_row("pair", "a", {"v": 0})
    store.set_row("pair", "b", {"v": 0})
    store.set_value("v", 0)

    def write(pause: Callable[[], None]) -> None:
        try:
            with store.transaction():
                store.set_row("pair", "a", {"v": -1})
                store.set_row("pair", "b", {"v": -1})
                store.set_row("pair", "c", {"v": -1})
                store.set_value("v", -1)
                pause()
                raise Boom
        except Boom:
            pass

    def read() -> list[object]:
        return [
            store.get_row("pair", "a"),
            store.get_cell("pair", "b", "v"),
            store.has_row("pair", "c"),
            store.get_table("pair"),
            store.get_value("v"),
        ]

    seen = read_while_writing(write, read)
    assert seen == [{"v": 0}, 0, False, {"a": {"v": 0}, "b": {"v": 0}}, 0]


def test_a_reader_never_sees_the_middle_of_a_transaction(store: hutch.Store) -> None:
    store.set_row("pair", "a", {"v": 0})

    def write(pause: Callable[[], None]) -> None:
        with store.transaction():
            store.set_row("pair", "a", {"v": 1})
            pause()
            store.set_row("pair", "a", {"v": 2})

    seen = read_while_writing(write, lambda: store.get_row("pair", "a"))
    assert seen in ({"v": 0}, {"v": 2})  # never the in-flight {"v": 1}
    assert store.get_row("pair", "a") == {"v": 2}


def test_readers_never_observe_rolled_back_or_half_written_transactions(
    store: hutch.Store,
) -> None:
    """A writer alternates committed and failed transactions that each set two rows and a value.

    Committed states have a == b == value >= 0; a failed transaction writes negative numbers
    (and more rows, to keep it open longer) before it raises. Readers of every kind run
    until the writer is done and record anything else they see.
    """
    transactions = 300
    store.set_row("pair", "a", {"v": 0})
    store.set_row("pair", "b", {"v": 0})
    store.set_value("v", 0)
    done = threading.Event()
    problems: list[str] = []
    reads: dict[str, int] = {}

    def write_pair(v: int) -> None:
        store.set_row("pair", "a", {"v": v})
        for j in range(20):
            store.set_row("filler", f"f{j}", {"v": v})
        store.set_row("pair", "b", {"v": v})
        store.set_value("v", v)

    def writer() -> None:
        try:
            for i in range(1, transactions + 1):
                if i % 2:
                    try:
                        with store.transaction():
                            write_pair(-i)
                            raise Boom
                    except Boom:
                        pass
                else:
                    with store.transaction():
                        write_pair(i)
        finally:
            done.set()

    def reader(
        name: str, read: Callable[[], Any], bad: Callable[[Any], bool]
    ) -> Callable[[], None]:
        def run() -> None:
            count = 0
            while True:
                finished = done.is_set()
                seen = read()
                count += 1
                if bad(seen):
                    problems.append(f"{name} saw {seen!r}")
                if finished:
                    reads[name] = count
                    return

        return run

    def bad_pair(table: dict[str, Any]) -> bool:
        return bool(table["a"] != table["b"] or table["a"]["v"] < 0)

    run_threads(
        [
            writer,
            reader("get_row", lambda: store.get_row("pair", "a"), lambda row: row["v"] < 0),
            reader("get_cell", lambda: store.get_cell("pair", "b", "v"), lambda v: v < 0),
            reader("get_value", lambda: store.get_value("v"), lambda v: v < 0),
            reader("get_table", lambda: store.get_table("pair"), bad_pair),
        ]
    )
    assert problems == []
    assert sorted(reads) == ["get_cell", "get_row", "get_table", "get_value"]
    assert store.get_table("pair") == {"a": {"v": transactions}, "b": {"v": transactions}}
    assert store.get_value("v") == transactions


def test_slice_reads_never_see_a_transaction_half_done(db: hutch.Database) -> None:
    """Index reads skip the lock when they can; they must still see whole transactions only."""
    store = db.store
    rows = [f"r{i}" for i in range(10)]
    with store.transaction():
        for row_id in rows:
            store.set_row("t", row_id, {"k": "a"})
    db.indexes.define("by_k", "t", "k")
    done = threading.Event()
    seen: set[int] = set()

    def writer() -> None:
        try:
            for round_ in range(200):
                target = "b" if round_ % 2 == 0 else "a"
                try:
                    with store.transaction():
                        for row_id in rows:
                            store.set_cell("t", row_id, "k", target)
                        if round_ % 3 == 0:
                            raise Boom
                except Boom:
                    pass
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            seen.add(len(db.indexes.slice_row_ids("by_k", "a")))

    run_threads([writer, reader])
    assert seen <= {0, 10}
