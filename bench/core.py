"""Benchmark of the core store on ``memory://`` against SQLite (``:memory:``) in the same process.

Both hold the same rows, with a primary key on the id and an index on ``age``
(``db.indexes`` on the hutch side). Each workload runs in batches; the table
shows the median time of one operation and how many times faster hutch is.

    python bench/core.py [--rows 10000] [--rounds 3] [--batches 10] [--batch 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import hutch
import hutch.backends.memory

# Only the plugins named here: an installed plugin's models would add indexes to "users".
os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"

Op = Callable[[int], Any]


def make_rows(count: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"u{i:07d}",
            {
                "email": f"user{i}@example.org",
                "name": f"User {i}",
                "age": i % 90,
                "active": i % 3 != 0,
                "score": i * 0.25,
            },
        )
        for i in range(count)
    ]


def open_sqlite(rows: list[tuple[str, dict[str, Any]]]) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute(
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, name TEXT, age INTEGER, "
        "active INTEGER, score REAL)"
    )
    con.execute("CREATE INDEX users_age ON users (age)")
    con.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
        [(i, r["email"], r["name"], r["age"], r["active"], r["score"]) for i, r in rows],
    )
    con.commit()
    con.row_factory = sqlite3.Row
    return con


def open_hutch(rows: list[tuple[str, dict[str, Any]]]) -> hutch.Database:
    db = hutch.open("memory://", plugins=[hutch.backends.memory])
    with db.store.transaction():
        for row_id, row in rows:
            db.store.set_row("users", row_id, row)
    db.indexes.define("users_by_age", "users", "age")
    return db


def median_op_times(ops: list[Op], rounds: int, batches: int, batch: int) -> list[float]:
    """Median seconds per call of each ``op(i)``, over batches of ``batch`` calls.

    Each round runs ``batches`` batches of each op in turn, so that a noisy
    neighbour slows them alike while each op still runs with its own data warm
    in the CPU caches (taking turns call by call would measure cache misses).
    The harness's own cost (the loop, and the call of an op that only picks its
    argument) is measured the same way and taken off, so that ratios compare
    the operations, not the loop around them.
    """
    times: list[list[float]] = [[] for _ in range(len(ops) + 1)]
    counter = 0
    for _ in range(rounds):
        for op, taken in zip([*ops, _harness], times, strict=True):
            for _ in range(batches):
                start = time.perf_counter()
                for i in range(counter, counter + batch):
                    op(i)
                taken.append((time.perf_counter() - start) / batch)
                counter += batch
    *medians, harness = (statistics.median(taken) for taken in times)
    return [max(m - harness, 1e-9) for m in medians]


_PICKS = list(range(4096))


def _harness(i: int) -> Any:
    return _PICKS[i & 4095]


def workloads(
    db: hutch.Database, con: sqlite3.Connection, ids: list[str]
) -> list[tuple[str, Op, Op, float | None]]:
    """(name, hutch op, sqlite op, target speed-up or None) for each workload."""
    store = db.store
    indexes = db.indexes
    rng = random.Random(42)
    picks = [rng.choice(ids) for _ in range(4096)]
    new_row = {"email": "new@example.org", "name": "New", "age": 7, "active": True, "score": 0.5}
    new_tuple = ("new@example.org", "New", 7, True, 0.5)

    def hutch_get(i: int) -> Any:
        return store.get_row("users", picks[i & 4095])

    def sqlite_get(i: int) -> Any:
        found = con.execute("SELECT * FROM users WHERE id = ?", (picks[i & 4095],)).fetchone()
        return dict(found)

    def hutch_slice(i: int) -> Any:
        return indexes.slice_row_ids("users_by_age", i % 90)

    def sqlite_slice(i: int) -> Any:
        return [
            r[0] for r in con.execute("SELECT id FROM users WHERE age = ? ORDER BY id", (i % 90,))
        ]

    def hutch_insert(i: int) -> None:
        store.set_row("users", f"n{i:09d}", new_row)

    def sqlite_insert(i: int) -> None:
        con.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", (f"n{i:09d}", *new_tuple))
        con.commit()

    def hutch_update(i: int) -> None:
        store.set_cell("users", picks[i & 4095], "score", float(i))

    def sqlite_update(i: int) -> None:
        con.execute("UPDATE users SET score = ? WHERE id = ?", (float(i), picks[i & 4095]))
        con.commit()

    return [
        ("get_row vs primary-key select -> dict", hutch_get, sqlite_get, 10.0),
        ("slice_row_ids vs indexed select", hutch_slice, sqlite_slice, 5.0),
        ("set_row (new row) vs insert + commit", hutch_insert, sqlite_insert, 1.0),
        ("set_cell (update) vs update + commit", hutch_update, sqlite_update, None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()

    rows = make_rows(args.rows)
    db = open_hutch(rows)
    con = open_sqlite(rows)
    ids = [row_id for row_id, _ in rows]
    print(
        f"hutch core vs sqlite3 {sqlite3.sqlite_version} (:memory:), {args.rows} rows, "
        f"median of {args.rounds} rounds x {args.batches} batches x {args.batch} ops; "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    header = f"{'workload':40} {'hutch µs':>9} {'sqlite µs':>10} {'speed-up':>9} {'target':>7}  met"
    print(header)
    print("-" * len(header))
    for name, hutch_op, sqlite_op, target in workloads(db, con, ids):
        ours, theirs = median_op_times([hutch_op, sqlite_op], args.rounds, args.batches, args.batch)
        ratio = theirs / ours
        if target is None:
            goal, met = "-", "-"
        else:
            goal, met = f"{target:.1f}x", "yes" if ratio >= target else "NO"
        print(f"{name:40} {ours * 1e6:9.3f} {theirs * 1e6:10.3f} {ratio:8.1f}x {goal:>7}  {met}")
    db.close()
    con.close()


if __name__ == "__main__":
    main()
