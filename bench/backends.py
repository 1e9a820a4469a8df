"""Benchmark of the durable backends (``file://``, ``jsonl://``, ``sqlite://`` where installed)
against SQLite and TinyDB on disk, in one run; ``--backends`` chooses which.

Everything lives in one temp folder made under ``--dir`` (default: the current
folder, not ``/tmp``, which may be a tmpfs where fsync costs nothing), so every
contender writes to the same file system; the folder is removed at the end.

- hutch: ``hutch.open(url, collections={"users": {"indexed": ["email"]}})``
  with ``durability="commit"`` (file: each commit appends to the write-ahead log
  and ``fdatasync``\\s it), and ``db.indexes.define("users_by_email", ...)`` so that
  finding by email is a lookup, as it is in SQLite.
- SQLite (``sqlite3``): a file database, ``journal_mode=WAL``,
  ``synchronous=FULL``, one transaction per commit, ``id`` the primary key and
  an index on ``email``.
- TinyDB: the default ``JSONStorage`` (it rewrites the whole file on each write
  and does not fsync), where a workload applies to it.

Each number is a median: of single calls for commits and TinyDB, of batches of
calls (the loop included, on both sides alike, nothing subtracted) for the
in-memory reads, and of a few repeats for the bulk and cold-open workloads.
Ratios are hutch's time over the peer's: below 1 hutch is faster.

    python bench/backends.py [--backends file,jsonl,sqlite] [--records 100000] [--dir .]
        [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import importlib
import io
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from machine import cpu_model, file_system, fmt_time
from tinydb import Query, TinyDB
from tinydb.table import Table

import hutch
import hutch.backends.file

Op = Callable[[int], Any]
Rows = list[tuple[str, dict[str, Any]]]

TABLE = "users"
INDEX = "users_by_email"
COLLECTIONS: dict[str, Any] = {TABLE: {"indexed": ["email"]}}
# Only the backends named here: an installed plugin's models would add indexes to "users".
os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
BACKENDS: dict[str, ModuleType] = {"file": hutch.backends.file}
for _name in ("jsonl", "sqlite"):  # benchmarked where they are installed
    with contextlib.suppress(ImportError):
        BACKENDS[_name] = importlib.import_module(f"hutch.backends.{_name}")
PLUGINS = list(BACKENDS.values())
#: How many rows the bulk transaction writes; the reads, commits and TinyDB start from as many.
ROWS = 10_000
COLUMNS = "id, email, name, age, active, score"
INSERT = f"INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class Plan:
    """How much of each workload to run."""

    records: int  # records in the cold-open folder
    commits: int  # single commits timed, per contender
    tinydb_calls: int  # single TinyDB calls timed, per workload
    bulk_repeats: int
    opens: int  # timed cold opens, per contender
    batches: int  # batches of in-memory reads
    batch: int  # reads per batch
    checkpointed: int  # changed records one timed checkpoint writes


@dataclass(frozen=True)
class Result:
    """One line of the table: hutch against one peer."""

    workload: str
    hutch: float | None
    peer: str
    peer_time: float | None
    ratio: float | None  # hutch time / peer time
    target: float | None  # the largest ratio that meets the target


FULL = Plan(
    records=100_000,
    commits=200,
    tinydb_calls=20,
    bulk_repeats=5,
    opens=5,
    batches=15,
    batch=2_000,
    checkpointed=10_000,
)
QUICK = Plan(
    records=5_000,
    commits=50,
    tinydb_calls=8,
    bulk_repeats=3,
    opens=3,
    batches=7,
    batch=1_000,
    checkpointed=2_000,
)


# -- the data ------------------------------------------------------------------------------------


def make_row(i: int) -> dict[str, Any]:
    return {
        "email": f"user{i}@example.org",
        "name": f"User {i}",
        "age": i % 90,
        "active": i % 3 != 0,
        "score": i * 0.25,
    }


def make_rows(count: int) -> Rows:
    return [(f"u{i:07d}", make_row(i)) for i in range(count)]


def as_tuple(row_id: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return (row_id, row["email"], row["name"], row["age"], row["active"], row["score"])


# -- the contenders ------------------------------------------------------------------------------


def url_of(backend: str, folder: Path) -> str:
    """The URL of a store of ``backend`` at ``folder`` (an absolute path).

    A ``sqlite://`` store is a file inside the folder, apart from the SQLite peer's files.
    """
    if backend == "sqlite":
        folder.mkdir(exist_ok=True)
        return f"sqlite:///{folder}/hutch.db"
    return f"{backend}://{folder}"


def open_hutch(backend: str, folder: Path) -> hutch.Database:
    """A store with an on-disk index on email, and the in-memory index to query it."""
    url = url_of(backend, folder)
    db = hutch.open(url, collections=COLLECTIONS, durability="commit", plugins=PLUGINS)
    db.indexes.define(INDEX, TABLE, "email")
    return db


def fill_hutch(backend: str, folder: Path, rows: Rows) -> None:
    """Write ``rows`` into a new store (not timed: no fsync, then one ``sync`` for all)."""
    url = url_of(backend, folder)
    db = hutch.open(url, collections=COLLECTIONS, durability="none", plugins=PLUGINS)
    try:
        with db.store.transaction():
            for row_id, row in rows:
                db.store.set_row(TABLE, row_id, row)
    finally:
        db.close()  # the checkpoint writes every record file and the index
    os.sync()


def open_sqlite(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT, name TEXT, "
        "age INTEGER, active INTEGER, score REAL)"
    )
    con.execute("CREATE INDEX IF NOT EXISTS users_email ON users (email)")
    con.commit()
    con.row_factory = sqlite3.Row
    return con


def read_records_bare(folder: Path) -> dict[str, Any]:
    """The floor for a cold open: read and parse every record file, nothing else."""
    rows: dict[str, Any] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".json"):
                with open(entry.path, "rb") as file:
                    rows[name[:-5]] = orjson.loads(file.read())
    return rows


# -- timing --------------------------------------------------------------------------------------


def median_single(ops: list[Op], count: int, warm_up: int = 5) -> list[float]:
    """Median seconds of one call of each op, the ops taking turns call by call."""
    times: list[list[float]] = [[] for _ in ops]
    for i in range(-warm_up, count):
        for op, taken in zip(ops, times, strict=True):
            start = time.perf_counter()
            op(i + warm_up)
            elapsed = time.perf_counter() - start
            if i >= 0:
                taken.append(elapsed)
    return [statistics.median(taken) for taken in times]


def median_batched(op: Op, batches: int, batch: int) -> float:
    """Median seconds per call of ``op(i)`` over ``batches`` batches of ``batch`` calls.

    One untimed pass over every argument first, so that first-touch work (a
    slice sorted on its first read, SQLite's page cache) is not what is timed.
    """
    for i in range(4096):
        op(i)
    counter = 0
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(batch):
            op(counter)
            counter += 1
        times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def say(message: str) -> None:
    """Progress, on stderr, so that stdout holds only the report."""
    print(f"... {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# -- the workloads -------------------------------------------------------------------------------


def reads_and_commits(backend: str, root: Path, plan: Plan) -> list[Result]:
    """Reads, durable single commits and TinyDB inserts, on stores of ``ROWS`` rows.

    The hutch folder and the SQLite file are the ones the first bulk repeat left.
    """
    say("reads, single commits and TinyDB")
    rows = make_rows(ROWS)
    tiny = TinyDB(root / "tiny.json")  # the default JSONStorage
    con = open_sqlite(root / "base.db")
    db = open_hutch(backend, root / "base")
    try:
        if db.store.get_row_count(TABLE) != ROWS:
            raise RuntimeError(f"the base store holds {db.store.get_row_count(TABLE)} rows")
        table = tiny.table(TABLE)
        table.insert_multiple({"id": r, **row} for r, row in rows)
        results = _reads(db, con, table, rows, plan)
        results += _commits(db, con, table, plan)
    finally:
        db.close()
        con.close()
        tiny.close()
    return results


def _reads(
    db: hutch.Database, con: sqlite3.Connection, table: Table, rows: Rows, plan: Plan
) -> list[Result]:
    store, indexes = db.store, db.indexes
    rng = random.Random(42)
    picks = [rng.randrange(len(rows)) for _ in range(4096)]
    ids = [rows[p][0] for p in picks]
    emails = [rows[p][1]["email"] for p in picks]
    email = Query().email

    def hutch_get(i: int) -> Any:
        return store.get_row(TABLE, ids[i & 4095])

    def sqlite_get(i: int) -> Any:
        return dict(con.execute("SELECT * FROM users WHERE id = ?", (ids[i & 4095],)).fetchone())

    def tinydb_get(i: int) -> Any:
        return table.get(doc_id=picks[i & 4095] + 1)  # TinyDB's own ids; inserted in order

    def hutch_find(i: int) -> Any:
        return indexes.slice_row_ids(INDEX, emails[i & 4095])

    def sqlite_find(i: int) -> Any:
        return [
            r[0] for r in con.execute("SELECT id FROM users WHERE email = ?", (emails[i & 4095],))
        ]

    def tinydb_find(i: int) -> Any:
        return [d["id"] for d in table.search(email == emails[i & 4095])]

    results = []
    for name, ours_op, sqlite_op, tinydb_op in (
        ("get by id (get_row)", hutch_get, sqlite_get, tinydb_get),
        ("find by indexed email (slice_row_ids)", hutch_find, sqlite_find, tinydb_find),
    ):
        ours = median_batched(ours_op, plan.batches, plan.batch)
        theirs = median_batched(sqlite_op, plan.batches, plan.batch)
        tinys = median_single([tinydb_op], plan.tinydb_calls, warm_up=1)[0]
        results.append(Result(name, ours, "SQLite", theirs, ours / theirs, 0.2))
        results.append(Result("", ours, "TinyDB", tinys, ours / tinys, None))
    return results


def _commits(db: hutch.Database, con: sqlite3.Connection, table: Table, plan: Plan) -> list[Result]:
    store = db.store
    new = make_row(ROWS)

    def hutch_insert(i: int) -> None:
        store.set_row(TABLE, f"n{i:07d}", new)

    def sqlite_insert(i: int) -> None:
        con.execute(INSERT, as_tuple(f"n{i:07d}", new))
        con.commit()

    def tinydb_insert(i: int) -> None:
        table.insert({"id": f"n{i:07d}", **new})

    ours, theirs = median_single([hutch_insert, sqlite_insert], plan.commits)
    tinys = median_single([tinydb_insert], plan.tinydb_calls, warm_up=1)[0]
    name = f"durable single-row commit (at {ROWS:,})"
    return [
        Result(name, ours, "SQLite", theirs, ours / theirs, 1.0),
        Result(
            f"  TinyDB: insert into {ROWS:,} (no fsync)",
            ours,
            "TinyDB",
            tinys,
            ours / tinys,
            None,
        ),
    ]


def bulk(backend: str, root: Path, plan: Plan) -> list[Result]:
    """``ROWS`` new rows in one transaction, into a new store, ``bulk_repeats`` times.

    The first repeat's stores stay, as ``base`` and ``base.db``, for the next workloads.
    """
    say(f"{plan.bulk_repeats} x {ROWS:,} rows in one transaction")
    rows = make_rows(ROWS)
    tuples = [as_tuple(r, row) for r, row in rows]
    ours, closes, theirs = [], [], []
    for repeat in range(plan.bulk_repeats):
        name = "base" if repeat == 0 else f"bulk-{repeat}"
        folder = root / name
        db = open_hutch(backend, folder)
        try:

            def transaction(db: hutch.Database = db) -> None:
                with db.store.transaction():
                    for row_id, row in rows:
                        db.store.set_row(TABLE, row_id, row)

            ours.append(timed(transaction)[0])
            closes.append(timed(db.close)[0])
        finally:
            db.close()

        con = open_sqlite(root / f"{name}.db")
        try:

            def insert_all(con: sqlite3.Connection = con) -> None:
                con.executemany(INSERT, tuples)
                con.commit()

            theirs.append(timed(insert_all)[0])
        finally:
            con.close()
        if repeat:
            shutil.rmtree(folder)
            for leftover in root.glob(f"{name}.db*"):
                leftover.unlink()
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    return [
        Result(
            f"{ROWS:,} rows in one transaction",
            ours_median,
            "SQLite",
            theirs_median,
            ours_median / theirs_median,
            2.0,
        ),
        Result(
            "  then close (checkpoint: record files)",
            statistics.median(closes),
            "-",
            None,
            None,
            None,
        ),
    ]


def cold_open(backend: str, root: Path, plan: Plan) -> Result:
    """Open a store of ``records`` records with the index defined, against a bare read loop.

    The loop reads the record files of a ``file://`` folder of the same records, so every
    backend's open is measured against the same yardstick.
    """
    folder = root / "cold"
    say(f"writing {plan.records:,} records for the cold opens")
    rows = make_rows(plan.records)
    fill_hutch(backend, folder, rows)
    yardstick = root.parent / "yardstick"
    if not yardstick.exists():
        fill_hutch("file", yardstick, rows)
    records = yardstick / TABLE

    def open_ready() -> hutch.Database:
        return open_hutch(backend, folder)

    ours_median, theirs_median = cold_opens(
        plan.opens, plan.records, open_ready, lambda: read_records_bare(records)
    )
    return Result(
        f"cold open, {plan.records:,} records + index",
        ours_median,
        "orjson loop",
        theirs_median,
        ours_median / theirs_median,
        1.5,
    )


def cold_opens(
    opens: int,
    records: int,
    open_db: Callable[[], hutch.Database],
    read_peer: Callable[[], Sized],
) -> tuple[float, float]:
    """The medians of ``opens`` cold opens of hutch and of the peer's read of the same
    ``records`` rows, alternating, after one untimed warm-up of each."""
    say(f"{opens} + 1 cold opens of each")
    ours, theirs = [], []
    for attempt in range(opens + 1):
        took, db = timed(open_db)
        count = db.store.get_row_count(TABLE)
        db.close()
        del db
        peer_took, loaded = timed(read_peer)
        if count != records or len(loaded) != records:
            raise RuntimeError(f"read {count} and {len(loaded)} rows, not {records}")
        del loaded
        if attempt:
            ours.append(took)
            theirs.append(peer_took)
    return statistics.median(ours), statistics.median(theirs)


def profile_cold_open(backend: str, root: Path) -> str:
    """cProfile of one hutch cold open of the cold-open folder: the top functions."""
    return profile(lambda: open_hutch(backend, root / "cold"), hutch.Database.close)


def profile(run: Callable[[], Any], then: Callable[[Any], Any] = lambda _: None) -> str:
    """cProfile of ``run()``, ``then`` applied to what it returns unprofiled: the top
    functions, by their own time and by the time of what they call."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    result = run()
    profiler.disable()
    then(result)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(25)
    return out.getvalue()


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRun:
    """What a writer saw while a checkpoint ran, and what the checkpoint took."""

    records: int
    quiet: float  # the median single-row commit with no checkpoint running
    waits: list[float]  # each commit's wait for the write lock while the checkpoint ran
    commits: list[float]  # each single-row commit, start to end, while it ran
    took: float  # the checkpoint, start to end
    peak_log: int  # bytes in _wal at the most, over the run

    def lines(self) -> list[str]:
        waits, commits = sorted(self.waits), sorted(self.commits)
        met = "yes" if waits[-1] < WAIT_TARGET else "NO"
        p99 = commits[int(len(commits) * 0.99)]
        return [
            f"file://: a checkpoint of {self.records:,} changed records while a writer commits "
            f"single rows ({len(commits)} commits meanwhile)",
            f"  commit, median with no checkpoint        {fmt_time(self.quiet):>10}",
            f"  commit during it: median / p99 / max     {fmt_time(commits[len(commits) // 2]):>10}"
            f" / {fmt_time(p99)} / {fmt_time(commits[-1])}",
            f"  the longest wait for the write lock      {fmt_time(waits[-1]):>10}"
            f"   target < {fmt_time(WAIT_TARGET)}: {met}",
            f"  the checkpoint, start to end             {fmt_time(self.took):>10}",
            f"  the log's peak size                      {self.peak_log / 1e6:>8.1f} MB",
        ]


#: The longest a writer may wait behind a checkpoint (the power-cut issue's target).
WAIT_TARGET = 0.010


def checkpoint_under_load(root: Path, plan: Plan) -> CheckpointRun:
    """A checkpoint of ``plan.checkpointed`` changed records while this thread commits.

    What a writer waits behind a checkpoint is its wait for the write lock
    (entering the transaction); a commit's own sync also slows while the
    checkpoint's syncs share the disk, and that is shown beside it.
    """
    folder = root / "checkpoint"
    folder.mkdir()
    db = hutch.open(
        folder, collections=COLLECTIONS, checkpoint_interval=3600, plugins=[hutch.backends.file]
    )
    log_folder = folder / "_wal"

    def log_size() -> int:
        return sum(p.stat().st_size for p in log_folder.glob("*.log"))

    def commit(n: int, waits: list[float], commits: list[float]) -> None:
        began = time.perf_counter()
        with db.store.transaction():
            waits.append(time.perf_counter() - began)
            db.store.set_cell(TABLE, f"w{n % 50}", "n", n)
        commits.append(time.perf_counter() - began)

    try:
        rows = make_rows(plan.checkpointed)
        for start in range(0, len(rows), 500):
            with db.store.transaction():
                for row_id, row in rows[start : start + 500]:
                    db.store.set_row(TABLE, row_id, row)
        quiet: list[float] = []
        for n in range(200):
            commit(n, [], quiet)
        peak = log_size()
        backend = db.backend
        assert isinstance(backend, hutch.backends.file.FilePersister)
        done: list[float] = []
        failed: list[BaseException] = []

        def checkpoint() -> None:
            try:
                backend.checkpoint()
            except BaseException as error:  # shown by the main thread, once the worker ends
                failed.append(error)
            finally:
                done.append(time.perf_counter())

        started = time.perf_counter()
        worker = threading.Thread(target=checkpoint)
        worker.start()
        waits: list[float] = []
        commits: list[float] = []
        while not done:
            commit(-len(commits), waits, commits)
            peak = max(peak, log_size())
        worker.join()
        if failed:
            raise failed[0]
    finally:
        db.close()
    return CheckpointRun(
        plan.checkpointed,
        statistics.median(quiet),
        waits,
        commits,
        done[0] - started,
        peak,
    )


def describe(root: Path, plan: Plan) -> list[str]:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    fs = file_system(root)
    lines = [
        f"hutch's durable backends vs sqlite3 {sqlite3.sqlite_version} and TinyDB "
        f"{version('tinydb')}",
        f"machine: {cpu_model()}, {cores} cores ({usable} usable); {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; orjson {orjson.__version__}",
        f"temp folder: {root} on {fs}",
    ]
    if any(word in fs.split(" ")[0] for word in ("tmpfs", "ramfs")):
        lines.append("WARNING: a memory file system: fsync is free here, commits are not durable")
    lines.append(
        f"medians: {plan.commits} single commits each (alternating hutch/SQLite), "
        f"{plan.tinydb_calls} TinyDB calls, {plan.batches} batches x {plan.batch} reads, "
        f"{plan.bulk_repeats} bulk repeats, {plan.opens} cold opens each"
    )
    return lines


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio < 1:
        faster = 1 / ratio
        return f"{ratio:.3g}x ({faster:,.{0 if faster >= 100 else 1}f}x faster)"
    return f"{ratio:.2f}x"


def fmt_target(target: float | None) -> str:
    if target is None:
        return "-"
    if target < 1:
        return f"<= {target:.2f}x ({1 / target:.0f}x faster)"
    return f"<= {target:.2f}x"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'workload':42} {'hutch':>10}  {'peer':12} {'peer time':>10}  "
        f"{'hutch/peer':28} {'target':22} met"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        met = "-" if r.target is None or r.ratio is None else "yes" if r.ratio <= r.target else "NO"
        print(
            f"{r.workload:42} {fmt_time(r.hutch):>10}  {r.peer:12} {fmt_time(r.peer_time):>10}  "
            f"{fmt_ratio(r.ratio):28} {fmt_target(r.target):22} {met}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=None, help="cold-open folder size")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp folder goes")
    parser.add_argument("--quick", action="store_true", help="a small run (under 30 s)")
    parser.add_argument("--profile", action="store_true", help="cProfile one hutch cold open")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="which backends, comma-separated"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.records is not None:
        plan = dataclasses.replace(plan, records=args.records)

    root = Path(tempfile.mkdtemp(prefix="hutch-bench-", dir=args.dir))
    try:
        for line in describe(root, plan):
            print(line)
        started = time.perf_counter()
        results = []
        cold_opens: dict[str, float | None] = {}
        checkpointed: CheckpointRun | None = None
        profile = ""
        for backend in args.backends.split(","):
            if backend not in BACKENDS:
                parser.error(f"no backend {backend!r} here; installed: {', '.join(BACKENDS)}")
            say(f"-- {backend}://")
            folder = root / backend
            folder.mkdir()
            ran = bulk(backend, folder, plan)
            ran = reads_and_commits(backend, folder, plan) + ran
            opened = cold_open(backend, folder, plan)
            cold_opens[backend] = opened.hutch
            ran.append(opened)
            results += [
                dataclasses.replace(r, workload=f"{backend}: {r.workload}" if r.workload else "")
                for r in ran
            ]
            if args.profile:
                profile += profile_cold_open(backend, folder)
            if backend == "file":
                say("-- file://: a checkpoint under load")
                checkpointed = checkpoint_under_load(root, plan)
    finally:
        say(f"removing {root}")
        shutil.rmtree(root)
    file_open, jsonl_open = cold_opens.get("file"), cold_opens.get("jsonl")
    if file_open and jsonl_open:
        # The jsonl issue's target: a cold open well under the file backend's.
        results.append(
            Result(
                "jsonl: cold open vs file://'s",
                jsonl_open,
                "file://",
                file_open,
                jsonl_open / file_open,
                None,
            )
        )
    print()
    print_table(results)
    if checkpointed is not None:
        print()
        for line in checkpointed.lines():
            print(line)
    print()
    print(
        f"notes: reads, commits and TinyDB run on stores of {ROWS:,} rows; hutch keeps its\n"
        "  in-memory email index current on every write, as SQLite does its index.\n"
        "  SQLite bulk = executemany + one commit. A file:// or jsonl:// commit is durable once\n"
        "  its log line is fdatasync'ed (file://: the record files follow at the next\n"
        "  checkpoint, the close row); a sqlite:// commit is a SQLite transaction, as the peer's.\n"
        "  Targets are the file backend's (issue 3), shown for every backend alike.\n"
        "  Cold opens: warm page cache for both (nothing is dropped from it), one untimed\n"
        "  warm-up each; the orjson loop = os.scandir + open/read + orjson.loads per record.\n"
        f"  total {time.perf_counter() - started:.1f} s (temp folder removed)"
    )
    if profile:
        print()
        print(profile)


if __name__ == "__main__":
    main()
