"""Benchmark of several workers on one ``file://`` folder against SQLite with as many
connections, in one run: what a web application with several worker processes sees.

- Throughput: durable single-row commits (``durability="commit"``; SQLite in WAL
  mode with ``synchronous=FULL``, a connection per worker), from 1, 2, 4 and 8
  processes writing at once, and from 8 threads of one process (hutch: one
  database; SQLite: a connection per thread). Commits per second over the
  whole run, and each commit's latency (p50, p99).
- Staleness: one process commits a row about every millisecond (each due a
  millisecond after the one before), stamped with the time; another, which
  never writes nor refreshes, hears each through a listener (its follower takes
  other processes' commits in): p50, p99 and the longest time from commit to
  being seen.
- A checkpoint: one process commits single rows while another changes
  ``--checkpointed`` records and checkpoints them: the writer's longest wait.
- Readers: a thread of one process reads (taking the store's lock) while that
  process and three others write: the longest read.

Everything lives in a temp folder under ``--dir`` (default: the current folder,
not ``/tmp``, which may be a tmpfs where fsync costs nothing).

    python bench/workers.py [--seconds 3] [--dir .] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

from machine import cpu_model, file_system, fmt_time

import hutch
import hutch.backends.file

os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
PLUGINS = [hutch.backends.file]
TABLE = "hits"
#: The targets of the worker issue: hutch's commits/s over SQLite's, at least.
TARGETS = {"1 process": 1.2, "4 processes": 1.0, "8 threads": 1.0}
SPAWN = multiprocessing.get_context("spawn")
#: The databases this process opened, closed before the temp folder goes.
OPENED: list[hutch.Database] = []
#: Makes a worker's commit function from where the store is and the worker's name.
Writer = Callable[[Any, str], Callable[[int], None]]
#: Opens a database from where the store is.
Opener = Callable[[Any], hutch.Database]


@dataclass
class Run:
    """What one contender did: commits, and each commit's latency, in seconds."""

    commits: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.commits / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# -- the contenders ------------------------------------------------------------------------------


def open_hutch(folder: Path, **options: Any) -> hutch.Database:
    db = hutch.open(folder, durability="commit", plugins=PLUGINS, **options)
    OPENED.append(db)
    return db


def open_sqlite(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=600, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, n INTEGER, t REAL)")
    return con


def commit_loop(commit: Callable[[int], None], until: float) -> list[float]:
    """Commit until ``until`` (a ``time.monotonic()`` reading); each commit's latency."""
    latencies: list[float] = []
    n = 0
    while True:
        began = time.monotonic()
        if began >= until:
            return latencies
        commit(n)
        latencies.append(time.monotonic() - began)
        n += 1


def hutch_writer(folder: Path, name: str) -> Callable[[int], None]:
    db = open_hutch(folder)
    store = db.store

    def commit(n: int) -> None:
        store.set_row(TABLE, f"{name}-{n}", {"n": n, "t": time.time()})

    return commit


def sqlite_writer(path: Path, name: str) -> Callable[[int], None]:
    con = open_sqlite(path)

    def commit(n: int) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?)", (f"{name}-{n}", n, time.time()))
        con.execute("COMMIT")

    return commit


def writer_process(
    writer: Writer, where: Any, name: str, start: Barrier, seconds: float, out: Any
) -> None:
    commit = writer(where, name)
    start.wait()
    out.put(commit_loop(commit, time.monotonic() + seconds))


def in_processes(writer: Writer, where: Any, count: int, seconds: float) -> Run:
    """``count`` processes committing at once for ``seconds``, each through ``writer`` (a
    function of a module, so that a spawned process finds it)."""
    start = SPAWN.Barrier(count + 1)
    out = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=writer_process, args=(writer, where, f"p{i}", start, seconds, out))
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.monotonic()
    latencies = [latency for _ in workers for latency in out.get()]
    took = time.monotonic() - began
    for worker in workers:
        worker.join()
    return Run(len(latencies), took, latencies)


def threads(writer: Writer, where: Path, count: int, seconds: float) -> Run:
    """``count`` threads of this process committing at once: hutch shares one database,
    SQLite has a connection per thread."""
    commits: list[Callable[[int], None]]
    if writer is hutch_writer:
        shared = hutch_writer(where, "t")
        commits = [partial(lambda i, n: shared(n * 100 + i), i) for i in range(count)]
    else:
        commits = [writer(where, f"t{i}") for i in range(count)]
    until = time.monotonic() + seconds
    found: list[list[float]] = [[] for _ in range(count)]
    began = time.monotonic()
    running = [
        threading.Thread(target=lambda i=i: found[i].extend(commit_loop(commits[i], until)))
        for i in range(count)
    ]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    latencies = [latency for each in found for latency in each]
    return Run(len(latencies), time.monotonic() - began, latencies)


# -- staleness, checkpoints, readers ------------------------------------------------------------


def stamping_writer(opener: Opener, where: Any, ready: Event, seconds: float) -> None:
    """Commit a row stamped with the time about every millisecond: each is due a millisecond
    after the one before, and made at once when the writer is late."""
    db = opener(where)
    ready.wait()
    began = time.monotonic()
    n = 0
    while time.monotonic() < began + seconds:
        db.store.set_row(TABLE, f"s{n}", {"n": n, "t": time.time()})
        n += 1
        time.sleep(max(0.0, began + n * 0.001 - time.monotonic()))
    db.close()


def staleness(opener: Opener, where: Any, seconds: float) -> list[float]:
    """How long a commit of another process takes to reach this one's listeners (both open
    the store with ``opener``, a function of a module)."""
    db = opener(where)
    seen: list[float] = []

    def heard(changes: hutch.Changes) -> None:
        now = time.time()
        for _, _, row in changes.rows():
            if row is not None:
                seen.append(now - row["t"])

    db.store.add_listener(heard, TABLE)
    ready = SPAWN.Event()
    writer = SPAWN.Process(target=stamping_writer, args=(opener, where, ready, seconds))
    writer.start()
    ready.set()
    writer.join()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not seen:
        time.sleep(0.01)
    time.sleep(0.2)  # the last commits' turn to arrive (a benchmark: timing is its job)
    db.close()
    return sorted(seen)


def checkpointing_process(
    folder: Path, records: int, committed: Event, go: Event, done: Event
) -> None:
    db = open_hutch(folder, checkpoint_interval=3600)
    with db.store.transaction():
        for i in range(records):
            db.store.set_row("big", f"r{i}", {"i": i, "text": "x" * 100})
    committed.set()
    go.wait()
    backend = db.backend
    assert isinstance(backend, hutch.backends.file.FilePersister)
    backend.checkpoint()
    done.set()
    db.close()


def behind_checkpoint(folder: Path, records: int) -> tuple[float, float, float]:
    """A writer's median commit alone; then, while another process checkpoints, its longest
    wait for the write lock and its longest commit (the disk is shared with the checkpoint)."""
    db = open_hutch(folder)
    store = db.store
    waits: list[float] = []
    commits: list[float] = []

    def commit(n: int) -> None:
        began = time.monotonic()
        with store.transaction():
            waits.append(time.monotonic() - began)
            store.set_row(TABLE, f"c{n}", {"n": n})
        commits.append(time.monotonic() - began)

    for n in range(500):
        commit(n)
    quiet = statistics.median(commits)
    committed, go, done = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    other = SPAWN.Process(target=checkpointing_process, args=(folder, records, committed, go, done))
    other.start()
    committed.wait()
    db.refresh()  # the big transaction is taken in here before the checkpoint starts
    waits.clear()
    commits.clear()
    go.set()
    n = 10**6
    while not done.is_set() and other.is_alive():
        commit(n)
        n += 1
    other.join()
    return quiet, max(waits, default=0.0), max(commits, default=0.0)


def reads_while_writing(folder: Path, seconds: float) -> list[float]:
    """Reads taking the store's lock while this process and three others write."""
    start = SPAWN.Barrier(4)
    out = SPAWN.Queue()
    others = [
        SPAWN.Process(
            target=writer_process, args=(hutch_writer, folder, f"o{i}", start, seconds, out)
        )
        for i in range(3)
    ]
    for other in others:
        other.start()
    db = open_hutch(folder)
    store = db.store
    until = time.monotonic() + seconds
    start.wait()
    writing = threading.Thread(
        target=commit_loop, args=(lambda n: store.set_row(TABLE, f"w{n}", {"n": n}), until)
    )
    writing.start()
    reads = []
    while time.monotonic() < until:
        began = time.monotonic()
        store.get_row_count(TABLE)
        reads.append(time.monotonic() - began)
    writing.join()
    for _ in others:
        out.get()
    for other in others:
        other.join()
    db.close()
    return sorted(reads)


# -- the report ----------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each run writes")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp folder goes")
    parser.add_argument("--checkpointed", type=int, default=10_000, help="records checkpointed")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--only", default="", help="only these rows, comma-separated (e.g. 4)")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else args.seconds
    root = Path(tempfile.mkdtemp(prefix="hutch-workers-", dir=args.dir))
    try:
        print(f"hutch file:// vs sqlite3 {sqlite3.sqlite_version} (WAL, synchronous=FULL)")
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}"
        )
        print(f"temp folder: {root} on {file_system(root)}; {seconds:g} s per run")
        print()
        header = (
            f"{'writers':14} {'hutch/s':>9} {'sqlite/s':>9} {'ratio':>7} {'target':>7} met"
            f"  {'hutch p50':>10} {'p99':>10}  {'sqlite p50':>10} {'p99':>10}"
        )
        print(header)
        print("-" * len(header))
        plans: list[tuple[str, Callable[[Writer, Path], Run]]] = [
            (f"{n} process{'es' if n > 1 else ''}", partial(in_processes, count=n, seconds=seconds))
            for n in (1, 2, 4, 8)
        ]
        plans.append(("8 threads", partial(threads, count=8, seconds=seconds)))
        only = {part.strip() for part in args.only.split(",") if part.strip()}
        for number, (label, run) in enumerate(plans):
            if only and label.split()[0] not in only and label not in only:
                continue
            say(label)
            folder = root / f"hutch-{number}"
            mine = run(hutch_writer, folder)
            theirs = run(sqlite_writer, root / f"sqlite-{number}.db")
            ratio = mine.rate / theirs.rate
            target = TARGETS.get(label)
            met = "-" if target is None else "yes" if ratio >= target else "NO"
            print(
                f"{label:14} {mine.rate:9,.0f} {theirs.rate:9,.0f} {ratio:6.2f}x "
                f"{'-' if target is None else f'{target:.1f}x':>7} {met:3}"
                f"  {fmt_time(mine.percentile(0.5)):>10} {fmt_time(mine.percentile(0.99)):>10}"
                f"  {fmt_time(theirs.percentile(0.5)):>10} {fmt_time(theirs.percentile(0.99)):>10}",
                flush=True,
            )
        if only:
            return
        print()
        say("staleness")
        seen = staleness(open_hutch, root / "staleness", seconds)
        if seen:
            p50, p99 = seen[len(seen) // 2], seen[min(len(seen) - 1, int(len(seen) * 0.99))]
            print(
                f"staleness of another process's commit ({len(seen)} commits): p50 "
                f"{fmt_time(p50)}, p99 {fmt_time(p99)}, longest {fmt_time(seen[-1])} "
                "(bound: 50 ms)"
            )
        else:
            print("staleness: NO commit of the other process was heard")
        say("a checkpoint in another process")
        quiet, wait, longest = behind_checkpoint(root / "checkpoint", args.checkpointed)
        print(
            f"a writer while another process checkpoints {args.checkpointed:,} records: median "
            f"commit alone {fmt_time(quiet)}; during it, longest wait for the write lock "
            f"{fmt_time(wait)}, longest commit {fmt_time(longest)}"
        )
        say("readers")
        reads = reads_while_writing(root / "readers", seconds)
        print(
            f"reads taking the store's lock while 4 processes write ({len(reads):,} reads): "
            f"p99 {fmt_time(reads[int(len(reads) * 0.99)])}, longest {fmt_time(reads[-1])}"
        )
    finally:
        for db in OPENED:
            db.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
