"""What a domain plugin costs a database that does not use it: a bulk insert into ``users``.

An application with its own ``users`` collection writes 10,000 rows in one
store transaction (``db.store.set_row`` per row, one commit): once on a
database opened without the platform plugin, as every database now opens, and
once with ``plugins=["platform"]``, whose ``User`` model keeps five indexes on
``users``. The same rows go into SQLite in the same run (``sqlite3``,
``executemany`` into a table, one commit, WAL and ``synchronous=FULL`` as the
``sqlite://`` backend uses for ``durability="commit"``), into a bare table and
into one with the indexes the platform defines.

    python bench/plugins.py [--rows 10000] [--repeat 5] [--backends memory,sqlite,file]

The times are the transaction's, from its first write to its durable commit;
opening and closing are left out (a ``file://`` close writes the record files).
"""

from __future__ import annotations

import argparse
import functools
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine import cpu_model, file_system, fmt_time

import hutch
from hutch.plugins.platform import User
from hutch.serialise import to_row

Rows = list[tuple[str, dict[str, Any]]]

COLUMNS = (
    "email",
    "name",
    "image",
    "password_hash",
    "email_verified",
    "role",
    "storage_tier",
    "created_at",
    "updated_at",
)
TABLE = f"CREATE TABLE users (id TEXT PRIMARY KEY, {', '.join(f'{c} TEXT' for c in COLUMNS)})"
#: The five indexes the platform's ``User`` keeps: the email as stored and by its key (unique),
#: role, storage tier, verification.
PLATFORM_INDEXES = (
    "CREATE INDEX users_email ON users (email)",
    "CREATE UNIQUE INDEX users_email_key ON users (lower(email))",
    "CREATE INDEX users_role ON users (role)",
    "CREATE INDEX users_storage_tier ON users (storage_tier)",
    "CREATE INDEX users_email_verified ON users (email_verified)",
)
INSERT = (
    f"INSERT INTO users (id, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (1 + len(COLUMNS)))})"
)


def make_rows(count: int) -> Rows:
    """``count`` rows as the platform's ``User`` stores them, every other one verified."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        to_row(
            User(
                id=f"u{i:07d}",
                email=f"person{i}@example.org",
                name=f"Person {i}",
                email_verified=start + timedelta(minutes=i) if i % 2 else None,
            )
        )
        for i in range(count)
    ]


def url_of(backend: str, folder: Path) -> str:
    return {"memory": "memory://", "file": str(folder / "data")}.get(
        backend, f"sqlite:///{folder}/hutch.db"
    )


def hutch_insert(backend: str, rows: Rows, plugins: list[str]) -> float:
    """Seconds for one transaction writing ``rows`` into ``users`` on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as folder:
        db = hutch.open(url_of(backend, Path(folder)), plugins=plugins)
        try:
            store = db.store
            start = time.perf_counter()
            with store.transaction():
                for row_id, row in rows:
                    store.set_row("users", row_id, row)
            return time.perf_counter() - start
        finally:
            db.close()


def sqlite_insert(rows: Rows, indexes: tuple[str, ...]) -> float:
    """Seconds for ``executemany`` of the same rows and a commit, into a fresh file."""
    values = [(row_id, *(row.get(c) for c in COLUMNS)) for row_id, row in rows]
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as folder:
        con = sqlite3.connect(Path(folder) / "peer.db")
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute(TABLE)
            for index in indexes:
                con.execute(index)
            con.commit()
            start = time.perf_counter()
            con.executemany(INSERT, values)
            con.commit()
            return time.perf_counter() - start
        finally:
            con.close()


def rounds(runs: dict[str, Callable[[], float]], repeat: int) -> Iterator[tuple[str, float]]:
    """Each run's median, the runs alternating round by round so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(run())
    for name, taken in times.items():
        yield name, statistics.median(taken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="memory,sqlite,file")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    runs: dict[str, Callable[[], float]] = {
        "sqlite3: bare table": lambda: sqlite_insert(rows, ()),
        "sqlite3: the platform's indexes": lambda: sqlite_insert(rows, PLATFORM_INDEXES),
    }
    for backend in args.backends.split(","):
        runs[f"{backend}: no plugin"] = functools.partial(hutch_insert, backend, rows, [])
        runs[f"{backend}: platform"] = functools.partial(hutch_insert, backend, rows, ["platform"])
    medians = dict(rounds(runs, args.repeat))

    print(
        f"{args.rows:,} rows into users in one transaction: hutch without and with the platform "
        f"plugin vs sqlite3 {sqlite3.sqlite_version} (WAL, synchronous=FULL)"
    )
    print(
        f"machine: {cpu_model()}; Python {platform.python_version()}; "
        f"temp folder on {file_system(Path(tempfile.gettempdir()))}; median of {args.repeat}"
    )
    header = (
        f"{'run':34} {'time':>10} {'per row':>10} {'vs sqlite3 alike':>17} {'vs no plugin':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, taken in medians.items():
        backend, _, label = name.partition(": ")
        if backend == "sqlite3":
            alike, unplugged = None, None
        elif label == "platform":
            alike = medians["sqlite3: the platform's indexes"]
            unplugged = medians[f"{backend}: no plugin"]
        else:
            alike, unplugged = medians["sqlite3: bare table"], None
        print(
            f"{name:34} {fmt_time(taken):>10} {fmt_time(taken / args.rows):>10} "
            f"{_ratio(taken, alike):>17} {_ratio(taken, unplugged):>13}"
        )
    print(
        "vs sqlite3 alike: without the plugin against the bare table, with it against the table "
        "with the platform's indexes"
    )


def _ratio(taken: float, other: float | None) -> str:
    return "-" if other is None else f"{taken / other:.2f}x"


if __name__ == "__main__":
    main()
