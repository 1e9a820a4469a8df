"""Benchmark of ``hutch backup`` and ``hutch restore`` against SQLite's online backup API,
in one run, and of the longest stall a backup causes a writer.

- Backup: 100,000 records read at one commit point (a read-only open) and
  written as a compressed archive, from a ``file://`` folder and from a SQLite
  file; the peer is ``sqlite3.Connection.backup`` of a SQLite file holding the
  same rows (a page copy, uncompressed).
- Restore: the archive checked and written into an empty folder (durable: the
  record files written and synced) and into an empty SQLite file, then
  verified as ``hutch restore`` does; the peer is the backup API copying back.
- Stall: a process commits single rows as fast as it can on the folder while
  backups are taken: its longest commit while a backup ran, against its
  longest commit while none did.

Everything lives in a temp folder under ``--dir`` (default: the current folder,
not ``/tmp``, which may be a tmpfs where fsync costs nothing).

    python bench/backup.py [--rows 100000] [--dir .]
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import orjson
from machine import cpu_model, file_system, fmt_time

import hutch
from hutch import archives, snapshots
from hutch.verify import verify

os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the backends only: no models
SPAWN = multiprocessing.get_context("spawn")
TABLE = "people"


def row(i: int) -> dict[str, Any]:
    return {
        "email": f"person{i}@example.com",
        "name": f"Person {i}",
        "n": i,
        "score": i / 7,
        "created_at": "2026-12-01T12:00:00+00:00",
    }


def build(url: str, rows: int) -> None:
    with hutch.open(url, plugins=_backends()) as db, db.store.transaction():
        for i in range(rows):
            db.store.set_row(TABLE, f"p{i:06}", row(i))


def _backends() -> list[object]:
    import hutch.backends.file
    import hutch.backends.sqlite

    return [hutch.backends.file, hutch.backends.sqlite]


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def backup(url: str, folder: Path) -> Path:
    """What ``hutch backup`` does: a snapshot at one commit point, then the archive."""
    with snapshots.open_reading(url, plugins=_backends()) as db:
        snapshot = snapshots.snapshot_of(db)
    return archives.write_archive(snapshot, folder, source=url, now=datetime.now(UTC))


def restore(archive: Path, url: str) -> None:
    """What ``hutch restore`` does: check the archive, write it, verify the result."""
    _, snapshot = archives.read_archive(archive)
    with hutch.open(url, plugins=_backends(), follow=False) as db:
        snapshots.write(db, snapshot)
    with snapshots.open_reading(url, plugins=_backends()) as db:
        assert verify(db).passed


def sqlite_peer(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE people (id TEXT PRIMARY KEY, body TEXT)")
        connection.executemany(
            "INSERT INTO people VALUES (?, ?)",
            ((f"p{i:06}", orjson.dumps(row(i)).decode()) for i in range(rows)),
        )
    connection.close()


def sqlite_copy(source: Path, target: Path) -> None:
    """The backup API, as ``sqlite3 .backup`` uses it, then the copy synced."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    _sync(target)


def sqlite_dump(source: Path, target: Path) -> None:
    """A logical dump (``sqlite3 .dump``) compressed as hutch's archive is, then synced."""
    connection = sqlite3.connect(source)
    try:
        with gzip.open(target, "wt", compresslevel=6, encoding="utf-8") as out:
            for line in connection.iterdump():
                out.write(line + "\n")
    finally:
        connection.close()
    _sync(target)


def _sync(path: Path) -> None:
    """Make what was written to ``path`` durable, as hutch's archive is before it counts."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sqlite_load(dump: Path, target: Path) -> None:
    """The dump read back into a new SQLite file."""
    with gzip.open(dump, "rt", encoding="utf-8") as lines:
        script = lines.read()
    connection = sqlite3.connect(target)
    try:
        connection.executescript(script)
    finally:
        connection.close()


def writer(url: str, ready: Event, stop: Event, out: Any) -> None:
    """Commit single rows until ``stop``; send (end time, latency) of each commit."""
    os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    commits: list[tuple[float, float]] = []
    with hutch.open(url, plugins=_backends()) as db:
        ready.set()
        i = 0
        while not stop.is_set():
            start = time.monotonic()
            db.store.set_row("hits", f"h{i}", {"n": i})
            end = time.monotonic()
            commits.append((end, end - start))
            i += 1
    out.send(commits)


def stall(url: str, folder: Path, rounds: int) -> tuple[float, float, int]:
    """The writer's longest commit with no backup running, and while one ran."""
    ready, stop = SPAWN.Event(), SPAWN.Event()
    receive, send = SPAWN.Pipe(duplex=False)
    process = SPAWN.Process(target=writer, args=(url, ready, stop, send))
    process.start()
    try:
        ready.wait(60)
        quiet_from = time.monotonic()
        time.sleep(2.0)  # a benchmark's measuring window, not a synchronisation
        quiet_to = time.monotonic()
        windows = []
        for _ in range(rounds):
            start = time.monotonic()
            backup(url, folder)
            windows.append((start, time.monotonic()))
        stop.set()
        commits = receive.recv()
    finally:
        stop.set()
        process.join(60)
        if process.is_alive():
            process.kill()
    quiet = [lat for end, lat in commits if quiet_from <= end <= quiet_to]
    during = [
        lat for end, lat in commits if any(a <= end - lat and end <= b + lat for a, b in windows)
    ]
    return max(quiet), max(during), len(during)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("."))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hutch-bench-backup-", dir=args.dir))
    try:
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
        print(f"SQLite {sqlite3.sqlite_version}; file system: {file_system(work)}")
        print(f"{args.rows} records\n")
        folder, sqlite_url = str(work / "data"), f"sqlite:///{work}/app.db"
        for url in (folder, sqlite_url):
            build(url, args.rows)
        sqlite_peer(work / "peer.db", args.rows)
        peer_backup = timed(lambda: sqlite_copy(work / "peer.db", work / "peer-backup.db"))
        peer_restore = timed(lambda: sqlite_copy(work / "peer-backup.db", work / "peer-back.db"))
        dump_backup = timed(lambda: sqlite_dump(work / "peer.db", work / "peer.sql.gz"))
        dump_restore = timed(lambda: sqlite_load(work / "peer.sql.gz", work / "peer-load.db"))
        print(
            f"peers: sqlite3 backup API {fmt_time(peer_backup)} (restore "
            f"{fmt_time(peer_restore)}); iterdump + gzip {fmt_time(dump_backup)} (load "
            f"{fmt_time(dump_restore)})\n"
        )
        print(f"{'':34}{'hutch':>12}{'backup API':>12}{'ratio':>8}{'dump':>12}{'ratio':>8}")
        for name, url in (("folder", folder), ("sqlite", sqlite_url)):
            archive_folder = work / f"backups-{name}"
            seconds = timed(partial(backup, url, archive_folder))
            (archive,) = archives.list_archives(archive_folder)
            print(
                f"{'backup of a ' + name:34}{fmt_time(seconds):>12}{fmt_time(peer_backup):>12}"
                f"{seconds / peer_backup:>7.1f}x{fmt_time(dump_backup):>12}"
                f"{seconds / dump_backup:>7.1f}x   ({archive.size / 1e6:.1f} MB archive)"
            )
            for target in (str(work / f"restored-{name}"), f"sqlite:///{work}/restored-{name}.db"):
                seconds = timed(partial(restore, archive.path, target))
                kind = "folder" if target.startswith("/") else "sqlite"
                print(
                    f"{f'restore into {kind} (+verify)':34}{fmt_time(seconds):>12}"
                    f"{fmt_time(peer_restore):>12}{seconds / peer_restore:>7.1f}x"
                    f"{fmt_time(dump_restore):>12}{seconds / dump_restore:>7.1f}x"
                )
        quiet, during, count = stall(folder, work / "stall-backups", args.rounds)
        print(
            f"\nwrites during {args.rounds} backups of the folder ({count} commits): longest "
            f"{fmt_time(during)}; longest with no backup running: {fmt_time(quiet)}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
