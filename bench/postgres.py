"""Benchmark of ``postgresql://`` against plain psycopg on the same throw-away server, in one
run: what a node pays for hutch's write lock, change log and checks, and what several nodes
get out of one PostgreSQL.

The server is a cluster of its own (tests/pgcluster.py), made in a temp folder
under ``--dir`` (default: the current folder, not ``/tmp``, which may be a tmpfs
where fsync costs nothing), running with ``fsync=on`` and ``synchronous_commit=on``,
and stopped at the end however the run ends. hutch opens ``postgresql://`` with
``durability="commit"``, each store a schema of its own. The peer is psycopg 3
on the same server, with a table like a collection's (``id text PRIMARY KEY,
row json``), each row's JSON made by orjson:

- durable commit: ``set_row`` of one new row against ``INSERT`` + ``commit()``,
  call by call in turn, both at 10,000 rows;
- bulk: 10,000 new rows in one transaction, against ``executemany`` + ``commit()``
  (psycopg sends them in one pipeline) and against ``COPY ... FROM STDIN``;
- reads: ``get_row`` against ``SELECT row::text ... WHERE id = %s`` and an orjson parse;
- cold open: ``hutch.open`` of a store of 100,000 rows against ``COPY (SELECT id, row
  ...) TO STDOUT`` of the same table to the client and an orjson parse of each row;
- nodes: 1, 2 and 4 processes, each a node of its own (``hutch.open``) or a psycopg
  connection, committing single rows at once for ``--seconds``: commits per second
  (hutch's queue for the store's write lock, the peer's do not);
- a remote change: node A commits a row stamped with ``time.time()`` about every
  millisecond; node B's listener notes when it hears each: p50, p99, longest.

    python bench/postgres.py [--records 100000] [--seconds 3] [--dir .] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from machine import cpu_model, file_system, fmt_time
from workers import Run, in_processes, staleness

import hutch
import hutch.backends.postgres
from backends import (
    ROWS,
    Result,
    cold_opens,
    make_row,
    make_rows,
    median_batched,
    median_single,
    print_table,
    profile,
    say,
    timed,
)
from hutch.backends.postgres.testing import fresh_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import Unavailable, running  # noqa: E402

os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
PLUGINS = [hutch.backends.postgres]
TABLE = "users"
NODES = (1, 2, 4)
#: The targets of the PostgreSQL issue: hutch's time over plain psycopg's, at most.
COMMIT_TARGET = 1.5
OPEN_TARGET = 1.5
#: A remote change reaches another node's listeners within this, at the 99th percentile.
REMOTE_TARGET = 0.100


@dataclass(frozen=True)
class Plan:
    """How much of each workload to run."""

    records: int  # rows of the cold-open store
    commits: int  # single commits timed, per contender
    bulk_repeats: int
    opens: int  # timed cold opens, per contender
    batches: int  # batches of reads
    batch: int  # reads per batch
    seconds: float  # each run of several nodes, and the remote-change run


FULL = Plan(
    records=100_000, commits=200, bulk_repeats=5, opens=5, batches=15, batch=2_000, seconds=3.0
)
QUICK = Plan(records=10_000, commits=50, bulk_repeats=2, opens=2, batches=5, batch=500, seconds=0.5)


# -- the contenders ------------------------------------------------------------------------------


def open_node(url: str) -> hutch.Database:
    """A node: the store at ``url``, committing durably."""
    return hutch.open(url, durability="commit", plugins=PLUGINS)


def plain_table(url: str, name: str) -> None:
    """Make the peer's table ``name``: a collection's columns, without hutch's triggers."""
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {name} (id text PRIMARY KEY, row json NOT NULL)")


def node_writer(url: str, name: str) -> Callable[[int], None]:
    """A node's commit of one new row (for :func:`workers.in_processes`)."""
    store = open_node(url).store

    def commit(n: int) -> None:
        store.set_row(TABLE, f"{name}-{n}", {"n": n, "t": time.time()})

    return commit


def psycopg_writer(where: tuple[str, str], name: str) -> Callable[[int], None]:
    """The peer's commit of one new row into the table ``where`` names: ``(url, table)``."""
    url, table = where
    conn = psycopg.connect(url)
    insert = f"INSERT INTO {table} (id, row) VALUES (%s, %s)"

    def commit(n: int) -> None:
        conn.execute(insert, (f"{name}-{n}", orjson.dumps({"n": n, "t": time.time()}).decode()))
        conn.commit()

    return commit


class Server:
    """The throw-away server's database for the run: hutch's stores, each a schema of its own,
    and the peer's tables, in its ``public`` schema."""

    def __init__(self, url: str) -> None:
        self.url = url

    def store(self, name: str) -> str:
        """The URL of a new, empty store."""
        return fresh_url(self.url, name)

    def table(self, name: str) -> str:
        plain_table(self.url, name)
        return name


# -- the workloads -------------------------------------------------------------------------------


def bulk(server: Server, plan: Plan) -> tuple[list[Result], str, str]:
    """``ROWS`` new rows in one transaction, into a new store and new tables, ``bulk_repeats``
    times; the first repeat's store and table, for the next workloads."""
    say(f"{plan.bulk_repeats} x {ROWS:,} rows in one transaction")
    rows = make_rows(ROWS)
    ours, many, copied = [], [], []
    kept: tuple[str, str] = ("", "")
    for repeat in range(plan.bulk_repeats):
        url = server.store(f"bulk_{repeat}")
        db = open_node(url)
        try:

            def transaction(db: hutch.Database = db) -> None:
                with db.store.transaction():
                    for row_id, row in rows:
                        db.store.set_row(TABLE, row_id, row)

            ours.append(timed(transaction)[0])
        finally:
            db.close()
        table = server.table(f"bulk_{repeat}")
        copy_table = server.table(f"copy_{repeat}")
        with psycopg.connect(server.url) as conn:

            def insert_all(conn: psycopg.Connection[Any] = conn, table: str = table) -> None:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {table} (id, row) VALUES (%s, %s)",
                        [(row_id, orjson.dumps(row).decode()) for row_id, row in rows],
                    )
                conn.commit()

            def copy_all(conn: psycopg.Connection[Any] = conn, table: str = copy_table) -> None:
                with conn.cursor().copy(f"COPY {table} (id, row) FROM STDIN") as copy:
                    for row_id, row in rows:
                        copy.write_row((row_id, orjson.dumps(row).decode()))
                conn.commit()

            many.append(timed(insert_all)[0])
            copied.append(timed(copy_all)[0])
        if not repeat:
            kept = (url, table)
    name = f"{ROWS:,} rows in one transaction"
    ours_median = statistics.median(ours)
    results = [
        Result(name, ours_median, peer, median, ours_median / median, None)
        for peer, median in (
            ("executemany", statistics.median(many)),
            ("COPY FROM", statistics.median(copied)),
        )
    ]
    return [results[0], dataclasses.replace(results[1], workload="")], *kept


def reads_and_commits(server: Server, url: str, table: str, plan: Plan) -> list[Result]:
    """Reads and durable single commits, on the store and the table of ``ROWS`` rows."""
    say("reads and single commits")
    rows = make_rows(ROWS)
    db = open_node(url)
    try:
        if db.store.get_row_count(TABLE) != ROWS:
            raise RuntimeError(f"the store holds {db.store.get_row_count(TABLE)} rows")
        with psycopg.connect(server.url) as conn:
            ids = [rows[(i * 7919) % ROWS][0] for i in range(4096)]  # all over the table
            select = f"SELECT row::text FROM {table} WHERE id = %s"

            def hutch_get(i: int) -> Any:
                return db.store.get_row(TABLE, ids[i & 4095])

            def psycopg_get(i: int) -> Any:
                found = conn.execute(select, (ids[i & 4095],)).fetchone()
                return None if found is None else orjson.loads(found[0])

            ours = median_batched(hutch_get, plan.batches, plan.batch)
            theirs = median_batched(psycopg_get, plan.batches, plan.batch // 10)
            conn.rollback()
            new = make_row(ROWS)
            insert = f"INSERT INTO {table} (id, row) VALUES (%s, %s)"

            def hutch_insert(i: int) -> None:
                db.store.set_row(TABLE, f"n{i:07d}", new)

            def psycopg_insert(i: int) -> None:
                conn.execute(insert, (f"n{i:07d}", orjson.dumps(new).decode()))
                conn.commit()

            mine, plain = median_single([hutch_insert, psycopg_insert], plan.commits)
    finally:
        db.close()
    return [
        Result("get by id (get_row)", ours, "SELECT", theirs, ours / theirs, None),
        Result(
            f"durable single-row commit (at {ROWS:,})",
            mine,
            "INSERT",
            plain,
            mine / plain,
            COMMIT_TARGET,
        ),
    ]


def cold_open(server: Server, plan: Plan) -> tuple[Result, str]:
    """Open a store of ``records`` rows, against a COPY of its table and a parse of each row;
    the store's URL."""
    url = server.store("cold")
    say(f"writing {plan.records:,} rows for the cold opens")
    db = hutch.open(url, durability="none", plugins=PLUGINS)
    try:
        with db.store.transaction():
            for row_id, row in make_rows(plan.records):
                db.store.set_row(TABLE, row_id, row)
    finally:
        db.close()

    def copied(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        with conn.cursor().copy(f"COPY (SELECT id, row FROM {TABLE}) TO STDOUT") as copy:
            for row_id, text in copy.rows():
                rows[row_id] = orjson.loads(text)
        return rows

    with psycopg.connect(url, autocommit=True) as conn:  # (the store's schema on its path)
        ours_median, theirs_median = cold_opens(
            plan.opens, plan.records, lambda: open_node(url), lambda: copied(conn)
        )
    result = Result(
        f"cold open, {plan.records:,} rows",
        ours_median,
        "COPY+orjson",
        theirs_median,
        ours_median / theirs_median,
        OPEN_TARGET,
    )
    return result, url


def nodes(server: Server, plan: Plan) -> list[tuple[int, Run, Run]]:
    """Single-row commits from 1, 2 and 4 processes at once: hutch's nodes on one store, and
    the peer's connections into one table."""
    runs = []
    for count in NODES:
        say(f"{count} node(s) committing for {plan.seconds:g} s")
        mine = in_processes(node_writer, server.store(f"nodes_{count}"), count, plan.seconds)
        where = (server.url, server.table(f"nodes_{count}"))
        theirs = in_processes(psycopg_writer, where, count, plan.seconds)
        runs.append((count, mine, theirs))
    return runs


# -- the report ----------------------------------------------------------------------------------


def describe(root: Path, url: str, plan: Plan) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        settings = {
            name: str((conn.execute(f"SHOW {name}").fetchone() or ("?",))[0])
            for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
        }
    version = settings.pop("server_version")
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    fs = file_system(root)
    lines = [
        f"hutch postgresql:// vs psycopg {psycopg.__version__} on PostgreSQL {version} "
        f"({', '.join(f'{name}={value}' for name, value in settings.items())})",
        f"machine: {cpu_model()}, {cores} cores ({usable} usable); {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; orjson {orjson.__version__}",
        f"temp folder (the cluster's data): {root} on {fs}",
    ]
    if any(word in fs.split(" ")[0] for word in ("tmpfs", "ramfs")):
        lines.append("WARNING: a memory file system: fsync is free here, commits are not durable")
    with open("/proc/loadavg") as load:
        lines.append(f"load average at the start: {' '.join(load.read().split()[:3])}")
    lines.append(
        f"medians: {plan.commits} single commits each (alternating hutch/psycopg), "
        f"{plan.batches} batches of reads, {plan.bulk_repeats} bulk repeats, {plan.opens} "
        f"cold opens each; {plan.seconds:g} s per run of nodes"
    )
    return lines


def print_nodes(runs: list[tuple[int, Run, Run]]) -> None:
    header = (
        f"{'nodes committing':18} {'hutch/s':>9} {'psycopg/s':>10} {'ratio':>7}"
        f"  {'hutch p50':>10} {'p99':>10}  {'psycopg p50':>11} {'p99':>10}"
    )
    print(header)
    print("-" * len(header))
    for count, mine, theirs in runs:
        label = f"{count} process{'es' if count > 1 else ''}"
        print(
            f"{label:18} {mine.rate:9,.0f} {theirs.rate:10,.0f} {mine.rate / theirs.rate:6.2f}x"
            f"  {fmt_time(mine.percentile(0.5)):>10} {fmt_time(mine.percentile(0.99)):>10}"
            f"  {fmt_time(theirs.percentile(0.5)):>11} {fmt_time(theirs.percentile(0.99)):>10}"
        )


def print_remote(seen: list[float], seconds: float) -> None:
    if not seen:
        print("a remote change: node B heard NO commit of node A")
        return
    p99 = seen[min(len(seen) - 1, int(len(seen) * 0.99))]
    met = "yes" if p99 < REMOTE_TARGET else "NO"
    print(
        f"a remote change, node A -> node B's listener ({len(seen)} commits, "
        f"{len(seen) / seconds:,.0f}/s): p50 {fmt_time(seen[len(seen) // 2])}, "
        f"p99 {fmt_time(p99)}, longest {fmt_time(seen[-1])}; "
        f"target p99 < {fmt_time(REMOTE_TARGET).strip()}: {met}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=None, help="cold-open store size")
    parser.add_argument("--seconds", type=float, default=None, help="each run of nodes")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp folder goes")
    parser.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    parser.add_argument("--profile", action="store_true", help="cProfile a cold open, commits")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.records is not None:
        plan = dataclasses.replace(plan, records=args.records)
    if args.seconds is not None:
        plan = dataclasses.replace(plan, seconds=args.seconds)

    root = Path(tempfile.mkdtemp(prefix="hutch-bench-pg-", dir=args.dir))
    root.chmod(0o755)  # the server's user (postgres, when this runs as root) reaches its folder
    started = time.perf_counter()
    profiles = ""
    try:
        with running(root) as cluster:
            server = Server(cluster.database("bench"))
            for line in describe(root, server.url, plan):
                print(line)
            say("-- postgresql://")
            results, url, table = bulk(server, plan)
            results = reads_and_commits(server, url, table, plan) + results
            opened, cold_url = cold_open(server, plan)
            results.append(opened)
            runs = nodes(server, plan)
            say("a remote change")
            seen = staleness(open_node, server.store("remote"), plan.seconds)
            if args.profile:
                profiles += profile(lambda: open_node(cold_url), hutch.Database.close)
                db = open_node(url)

                def commits() -> None:
                    for i in range(500):
                        db.store.set_row(TABLE, f"p{i}", make_row(i))

                profiles += profile(commits)
                db.close()
    except Unavailable as error:
        print(f"postgresql:// not benchmarked: no PostgreSQL cluster could be started: {error}")
        return
    finally:
        say(f"removing {root}")
        shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(results)
    print()
    print_nodes(runs)
    print()
    print_remote(seen, plan.seconds)
    print()
    print(
        f"notes: reads and commits run at {ROWS:,} rows. A hutch commit takes the store's\n"
        "  write lock (one round trip, reading how far the change log goes), writes its rows\n"
        "  and commits (one round trip); the tables' triggers log each row and NOTIFY. The\n"
        "  peer's INSERT + commit() is BEGIN, INSERT and COMMIT. Several nodes' commits queue\n"
        "  for the one write lock, so hutch's commits/s across nodes is the store's ceiling.\n"
        "  Reads: a batch of SELECTs is a tenth of hutch's batch. Cold opens: one untimed\n"
        "  warm-up each, the server's cache warm; hutch's connects (SCRAM) and checks the\n"
        "  schema, the COPY runs on a connection made before.\n"
        f"  total {time.perf_counter() - started:.1f} s (cluster stopped, temp folder removed)"
    )
    if profiles:
        print()
        print(profiles)


if __name__ == "__main__":
    main()
