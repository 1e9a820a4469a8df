"""Benchmark of ``hutch import-sql``: the time to import and check a database, against the
time to read the same rows to the client at all, in one run on one throw-away server.

Two sources (tests/prisma_source.py): the Prisma-shaped platform database (Prisma's and
Auth.js's tables, about 350 rows, with ``--prisma``: every row checked against its
model), and one table of 100,000 rows (``events``: a bigint key, a timestamptz, text,
numeric, jsonb and a text array). Each is imported, whole, by the command as a person
runs it (its closing check included: counts, foreign keys, 100 sampled rows a table,
the store's own verify), into a folder and into a SQLite file. The peer is the floor
of any import: each table's rows sent to the client as JSON (``COPY (SELECT
row_to_json(t) ...) TO STDOUT``) and parsed with orjson, with nothing converted,
checked or written.

Run: ``python bench/import_sql.py [--quick]`` (``--quick``: 10,000 rows).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from click.testing import CliRunner
from machine import cpu_model, file_system, fmt_time
from psycopg import sql

from hutch.cli import cli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import Unavailable, running  # noqa: E402
from prisma_source import create_big, create_prisma_platform  # noqa: E402

#: How many times each import runs (the median is shown).
REPEATS = 3


def import_once(source: str, target: str, *options: str) -> float:
    """One ``hutch import-sql`` into ``target`` (which must not exist yet): its seconds."""
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli, ["import-sql", *options, "--silent", source, target], catch_exceptions=False
    )
    took = time.perf_counter() - started
    if result.exit_code != 0 or "Data integrity: PASS" not in result.output:
        raise SystemExit(f"the import failed (exit {result.exit_code}):\n{result.output}")
    return took


def read_to_client(source: str, tables: list[str]) -> float:
    """Every row of ``tables`` as JSON to the client and parsed: its seconds."""
    started = time.perf_counter()
    with psycopg.connect(source) as conn, conn.cursor() as cursor:
        for table in tables:
            query = sql.SQL("COPY (SELECT row_to_json(t) FROM {} t) TO STDOUT").format(
                sql.Identifier(table)
            )
            with cursor.copy(query) as copy:
                for line in copy.rows():
                    orjson.loads(line[0])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, for a smoke run")
    args = parser.parse_args()
    rows = 10_000 if args.quick else 100_000
    folder = Path(tempfile.mkdtemp(prefix="hutch-bench-import-", dir=ROOT))
    folder.chmod(0o755)  # the server's user (postgres, when this runs as root) reaches it
    try:
        with running(folder) as cluster:
            prisma = cluster.database("prisma")
            big = cluster.database("big")
            with psycopg.connect(prisma) as conn:
                expected = create_prisma_platform(conn)
            with psycopg.connect(big) as conn:
                create_big(conn, rows)
            with psycopg.connect(prisma) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            print(
                f"hutch import-sql vs COPY + orjson, PostgreSQL {version[0] if version else '?'}; "
                f"{cpu_model()}, {platform.python_implementation()} {platform.python_version()}; "
                f"{file_system(folder)}; median of {REPEATS}"
            )
            prisma_tables = [t for t in expected.counts if t != "_prisma_migrations"]
            sources = [
                (
                    f"Prisma platform ({sum(expected.counts.values())} rows)",
                    prisma,
                    prisma_tables,
                    ["--prisma"],
                ),
                (f"events ({rows:,} rows)", big, ["events"], []),
            ]
            header = f"{'source':32} {'target':8} {'import+check':>13} {'COPY+parse':>11}"
            print(f"{header} {'ratio':>7}")
            for number, (label, source, tables, options) in enumerate(sources):
                floor = statistics.median(read_to_client(source, tables) for _ in range(REPEATS))
                for kind in ("file", "sqlite"):
                    times = []
                    for i in range(REPEATS):
                        where = folder / f"{kind}-{number}-{i}"
                        target = str(where) if kind == "file" else f"sqlite:///{where}.db"
                        times.append(import_once(source, target, *options))
                    took = statistics.median(times)
                    print(
                        f"{label:32} {kind:8} {fmt_time(took):>13} {fmt_time(floor):>11} "
                        f"{took / floor:6.1f}x"
                    )
    except Unavailable as error:
        raise SystemExit(f"no PostgreSQL to benchmark against: {error}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
