"""What ``jsonl://`` compaction must survive: bounded by bytes as well as lines, a failed
compaction tried again once the log doubled, an index rewritten with its own collection
only, open removing only hutch's own temp files.

A test whose docstring starts "Was:" names a bug it once caught. A full disk is simulated
as test_jsonl_bounds.py does it: ``fsio.write_atomic`` raises ``ENOSPC``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import count_in_processes
from crashcheck import (
    check_states,
    every_acknowledged,
    opener,
    record_plan,
    whole_transactions,
)
from test_file_crash import make_plan

import hutch
from hutch.backends.file import fsio

Tables = dict[str, dict[str, Any]]


def url(root: Path) -> str:
    return f"jsonl://{root.resolve()}"


def body_bytes(path: Path) -> int:
    """A log's bytes after its header."""
    data = path.read_bytes()
    return len(data) - data.index(b"\n") - 1


def log_lines(path: Path) -> list[bytes]:
    """A log's lines after its header."""
    return path.read_bytes().splitlines(keepends=True)[1:]


def dead(path: Path) -> tuple[int, int]:
    """The lines and bytes of a log that a compaction drops (superseded or deleting)."""
    lines = log_lines(path)
    latest: dict[str, bytes] = {}
    for line in lines:
        entry = orjson.loads(line)
        deletes = len(entry) == 2 or (path.name != "_values.jsonl" and entry[2] is None)
        latest.pop(entry[1], None)
        if not deletes:
            latest[entry[1]] = line
    return len(lines) - len(latest), sum(map(len, lines)) - sum(map(len, latest.values()))


def live_bytes(path: Path) -> int:
    return body_bytes(path) - dead(path)[1]


def full_disk_for(
    monkeypatch: pytest.MonkeyPatch, refuse: Callable[[str, bytes], bool]
) -> list[str]:
    """``fsio.write_atomic`` raises ``ENOSPC`` for the writes ``refuse(name, data)`` picks;
    returns the list of names it was asked to write (refused or not)."""
    asked: list[str] = []
    write_atomic = fsio.write_atomic

    def full(dir_fd: int, name: str, data: bytes, **options: Any) -> None:
        asked.append(name)
        if refuse(name, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        write_atomic(dir_fd, name, data, **options)

    monkeypatch.setattr(fsio, "write_atomic", full)
    return asked


def everything(db: hutch.Database) -> tuple[Tables, dict[str, Any]]:
    store = db.store
    return {t: store.get_table(t) for t in store.get_table_ids()}, store.get_values()


PAD = "p" * 1000
#: A floor small enough for a few rows of ``PAD`` to pass it; no floor in lines.
BY_BYTES: dict[str, Any] = {"durability": "none", "compact_bytes": 10_000, "compact_lines": 10**9}


def assert_bounded(path: Path, floor: int) -> None:
    """At most twice the live bytes, or the floor, and the line a commit just added."""
    assert body_bytes(path) <= max(floor, 2 * live_bytes(path)) + len(PAD) + 100, (
        f"{path.name}: {body_bytes(path)} bytes, {live_bytes(path)} of them live"
    )


# -- compact_bytes, compact_lines: validation -----------------------------------------------------


@pytest.mark.parametrize("option", ["compact_bytes", "compact_lines"])
@pytest.mark.parametrize("value", [float("inf"), 10**400], ids=["inf", "10**400"])
def test_a_floor_too_big_for_an_int_or_a_float_is_a_config_error(
    tmp_path: Path, option: str, value: Any
) -> None:
    """Was: ``compact_bytes=float("inf")`` (a natural way to say "never by bytes") raises
    ``OverflowError`` from ``int(inf)``, and ``compact_bytes=10**400`` an ``OverflowError``
    from ``float()``: not a ``hutch.ConfigError``, though a wrong argument to hutch.open is
    always a HutchError. (Taking inf as "never" would do as well; crashing does not.)"""
    with contextlib.suppress(hutch.HutchError):
        hutch.open(url(tmp_path), **{option: value}).close()


def test_fractional_and_small_floors_are_taken_as_given(tmp_path: Path) -> None:
    """Holds: a floor of 0.5 bytes compacts a log past 0 bytes, as a floor of 0.5 says; bad
    kinds of values are ConfigErrors naming the option."""
    with hutch.open(url(tmp_path), durability="none", compact_bytes=0.5) as db:
        for n in range(5):
            db.store.set_row("t", "r", {"n": n})
        assert len(log_lines(tmp_path / "t.jsonl")) <= 2
    for value in (0, -1, "1", True, None, float("nan")):
        with pytest.raises(hutch.ConfigError, match="compact_bytes"):
            hutch.open(url(tmp_path / "x"), compact_bytes=value)


# -- the retry rule -------------------------------------------------------------------------------


def test_db_compact_after_a_failed_compaction_puts_the_log_back_under_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: a compaction that failed on a full disk sets the log's retry point at twice
    its bytes then; db.compact() (which the docs offer once the disk has room) compacts the
    log but never clears that point, so the log then grows again, mostly dead, up to the
    stale point (here about 330 KB for 2 KB of live rows and a 10 KB floor) before any
    compaction: the retry rule outlives the failure it was for."""
    disk_full = [True]
    full_disk_for(monkeypatch, lambda name, _: disk_full[0] and name == "t.jsonl")
    with hutch.open(url(tmp_path), **BY_BYTES) as db:
        for n in range(200):
            db.store.set_row("t", f"r{n % 2}", {"n": n, "pad": PAD})
        disk_full[0] = False  # room again
        db.compact()
        assert dead(tmp_path / "t.jsonl") == (0, 0)
        for n in range(300):
            db.store.set_row("t", f"r{n % 2}", {"n": n, "pad": PAD})
            assert_bounded(tmp_path / "t.jsonl", BY_BYTES["compact_bytes"])


@pytest.mark.usefixtures("several_opens")
def test_a_compaction_by_another_process_puts_the_log_back_under_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: as above, when another process compacts the log once the disk has room (here
    at its open): the first process reads the new generation whole, yet keeps the retry
    point of its own failed try, and lets the log grow to it (about 310 KB for 2 KB live)."""
    disk_full = [True]
    full_disk_for(monkeypatch, lambda name, _: disk_full[0] and name == "t.jsonl")
    with hutch.open(url(tmp_path), **BY_BYTES) as db:
        for n in range(200):
            db.store.set_row("t", f"r{n % 2}", {"n": n, "pad": PAD})
        disk_full[0] = False
        hutch.open(url(tmp_path), **BY_BYTES).close()  # compacts t.jsonl at its open
        assert dead(tmp_path / "t.jsonl") == (0, 0)
        for n in range(300):
            db.store.set_row("t", f"r{n % 2}", {"n": n, "pad": PAD})
            assert_bounded(tmp_path / "t.jsonl", BY_BYTES["compact_bytes"])
        assert db.store.get_row("t", "r1") == {"n": 299, "pad": PAD}


def test_a_log_whose_compaction_was_never_tried_is_not_held_back_by_anothers_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: when two logs are due at one commit and the first one's compaction fails
    (its new generation does not fit on the disk), the second is never tried, yet it gets
    a retry point too: it then grows to twice its size before it is tried. The docs say
    "that log is tried again once it holds twice the bytes it held then": this one was
    never tried. Two collections written by the same transactions are due at the same
    commits over and over; with logs of alike sizes (see the next test) the small one is
    never compacted at all."""
    full_disk_for(monkeypatch, lambda name, data: len(data) > 4000)  # room for small files
    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        with db.store.transaction():
            for i in range(10):
                db.store.set_row("big", f"k{i}", {"pad": "x" * 500})
        for n in range(300):
            with db.store.transaction():
                db.store.set_row("big", f"k{n % 10}", {"n": n, "pad": "x" * 500})
                db.store.set_row("small", f"r{n % 2}", {"n": n})
            # 2 live rows, compact_lines=10: compacted at 11 lines, and small enough to fit
            assert len(log_lines(tmp_path / "small.jsonl")) <= 11, n


def test_a_log_that_fails_to_compact_does_not_stop_another_from_ever_compacting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: the same, with ``a.jsonl`` refused and ``b.jsonl`` allowed (a fault that
    concerns one file): as both logs double at the same commits, ``b`` is due exactly when
    ``a`` is tried again, ``a`` goes first and fails, and ``b`` is never compacted, 2 live
    rows in a log of 200 lines that grows by one a commit, without bound."""
    full_disk_for(monkeypatch, lambda name, _: name == "a.jsonl")
    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        for n in range(200):
            with db.store.transaction():
                db.store.set_row("a", f"r{n % 2}", {"n": n})
                db.store.set_row("b", f"r{n % 2}", {"n": n})
        assert len(log_lines(tmp_path / "b.jsonl")) <= 22


def test_a_failed_compaction_is_tried_again_and_done_once_the_disk_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holds: while the disk is full the tries double apart (not one per commit), nothing
    is lost, and once there is room the log gets back under its bound."""
    disk_full = [True]
    asked = full_disk_for(monkeypatch, lambda name, _: disk_full[0] and name == "t.jsonl")
    with hutch.open(url(tmp_path), **BY_BYTES) as db:
        for n in range(400):
            db.store.set_row("t", f"r{n % 3}", {"n": n, "pad": PAD})
        assert 1 <= asked.count("t.jsonl") <= 8
        disk_full[0] = False
        for n in range(800):
            db.store.set_row("t", f"r{n % 3}", {"n": -n, "pad": PAD})
        assert_bounded(tmp_path / "t.jsonl", BY_BYTES["compact_bytes"])
        expected = everything(db)
    with hutch.open(url(tmp_path)) as db:
        assert everything(db) == expected


# -- a compaction that fails at open or at close --------------------------------------------------


def test_a_compaction_that_fails_at_open_does_not_fail_the_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: a compaction failed on a full disk (logged: the commit went through), the
    process closed (its retry point spared the close), and the folder cannot be opened for
    writing any more while the disk is full: the open tries the compaction again and raises
    ``hutch.DiskFull``. The docs: compaction "never fails a commit: an error ... is logged,
    and that log is tried again ... (or at the next open ...)"; failing the open instead
    shuts the application out of its data (it cannot even delete rows to make room)."""
    full_disk_for(monkeypatch, lambda name, _: name == "t.jsonl")
    with hutch.open(url(tmp_path), compact_lines=10) as db:
        for n in range(12):
            db.store.set_row("t", f"r{n % 2}", {"n": n})
    with hutch.open(url(tmp_path), compact_lines=10) as db:
        assert db.store.get_table("t") == {"r0": {"n": 10}, "r1": {"n": 11}}
        db.store.del_row("t", "r0")
    with hutch.open(url(tmp_path), read_only=True) as db:
        assert db.store.get_table("t") == {"r1": {"n": 11}}


@pytest.mark.usefixtures("several_opens")
def test_a_compaction_that_fails_at_close_does_not_fail_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: at close, after taking in another process's commits, a log is due; its
    compaction fails on a full disk and ``close()`` raises ``hutch.DiskFull``, skipping
    what close is for: the index files stay stale and, under ``durability="batch"``, the
    commits are neither flushed nor vouched for (the docs: batch flushes "at close")."""
    disk_full = [False]
    full_disk_for(monkeypatch, lambda name, _: disk_full[0] and name == "t.jsonl")
    options: dict[str, Any] = {"compact_lines": 10, "collections": {"t": {"indexed": ["n"]}}}
    mine = hutch.open(url(tmp_path), durability="batch", batch_interval=3600, **options)
    other = hutch.open(url(tmp_path), compact_lines=10**6, follow=False)
    try:
        mine.store.set_row("t", "x", {"n": -5})
        for n in range(30):
            other.store.set_row("t", f"r{n % 2}", {"n": n})
        other.close()
        disk_full[0] = True
    finally:
        mine.close()
    last = orjson.loads((tmp_path / "_commits.jsonl").read_bytes().splitlines()[-1])
    assert last[2] == last[0], "the commit log says every commit reached the disk"
    index = [orjson.loads(line) for line in (tmp_path / "indices/t/n.jsonl").read_bytes().split()]
    assert index == [[-5, "x"], [28, "r0"], [29, "r1"]]


# -- what held ------------------------------------------------------------------------------------


def _churn(seed: int, root: Path) -> None:
    """Two opens of one folder (one following, one not) write, delete, drop tables, set and
    delete values, commit over several logs at once, compact, reopen, with floors so small
    that nearly every commit compacts; each must always hold what a plain model holds."""
    rng = random.Random(seed)
    options: dict[str, Any] = {
        "durability": "none",
        "compact_bytes": rng.choice([1, 200, 2000]),
        "compact_lines": rng.choice([1, 3, 10, 1000]),
        "collections": {"a": {"indexed": ["k"]}},
    }
    tables: Tables = {}
    values: dict[str, Any] = {}
    dbs = [hutch.open(url(root), **options), hutch.open(url(root), **options, follow=False)]
    try:
        for step in range(200):
            which = rng.randrange(2)
            db = dbs[which]
            roll = rng.random()
            table, row_id = rng.choice("abc"), f"r{rng.randrange(5)}"
            if roll < 0.4:
                row = {"k": rng.randrange(3), "pad": "x" * rng.choice([1, 10, 300])}
                db.store.set_row(table, row_id, row)
                tables.setdefault(table, {})[row_id] = row
            elif roll < 0.5:
                db.store.del_row(table, row_id)
                tables.get(table, {}).pop(row_id, None)
            elif roll < 0.55:
                db.store.del_table(table)
                tables.pop(table, None)
            elif roll < 0.7:
                key, value = f"v{rng.randrange(3)}", rng.choice([None, 1, "y" * 300])
                db.store.set_value(key, value)
                values[key] = value
            elif roll < 0.78:
                key = f"v{rng.randrange(3)}"
                db.store.del_value(key)
                values.pop(key, None)
            elif roll < 0.85:
                with db.store.transaction():
                    for each in "abc":
                        db.store.set_row(each, row_id, {"k": step})
                        tables.setdefault(each, {})[row_id] = {"k": step}
                    db.store.set_value("multi", step)
                    values["multi"] = step
            elif roll < 0.92:
                db.compact()
            else:
                db.close()
                db = dbs[which] = hutch.open(url(root), **options, follow=which == 0)
            tables = {t: rows for t, rows in tables.items() if rows}
            db.refresh()
            assert everything(db) == (tables, values), (seed, step)
        for db in dbs:
            db.refresh()
            assert everything(db) == (tables, values)
            assert db.backend.verify() == []
    finally:
        for db in dbs:
            db.close()
    with hutch.open(url(root), read_only=True) as db:
        assert everything(db) == (tables, values)
        assert db.backend.verify() == []


@pytest.mark.usefixtures("several_opens")
@pytest.mark.parametrize("seed", range(6))
def test_two_opens_churning_with_tiny_floors_lose_and_resurrect_nothing(
    tmp_path: Path, seed: int
) -> None:
    _churn(seed, tmp_path)


@pytest.mark.usefixtures("several_opens")
def test_stats_count_dead_lines_and_bytes_as_the_files_hold_them(tmp_path: Path) -> None:
    """Holds: dead_lines and dead_bytes match the log, in the writer, in another open that
    caught up, and in a read-only open; after db.compact() both are 0."""
    options: dict[str, Any] = {"compact_lines": 10**6}
    with (
        hutch.open(url(tmp_path), **options) as mine,
        hutch.open(url(tmp_path), **options, follow=False) as other,
    ):
        for n in range(30):
            mine.store.set_row("t", f"r{n % 4}", {"n": n, "p": "x" * n})
            if n % 5 == 0:
                other.store.del_row("t", f"r{n % 4}")
        mine.store.del_table("t")
        mine.store.set_row("t", "new", {"z": 1})
        for db in (mine, other):
            db.refresh()
            found = db.backend.stats()["collections"]["t"]
            assert (found["dead_lines"], found["dead_bytes"]) == dead(tmp_path / "t.jsonl")
    with hutch.open(url(tmp_path), read_only=True) as db:
        found = db.backend.stats()["collections"]["t"]
        assert (found["dead_lines"], found["dead_bytes"]) == dead(tmp_path / "t.jsonl")
    with hutch.open(url(tmp_path), **options) as db:
        db.compact()
        found = db.backend.stats()["collections"]["t"]
        assert (found["dead_lines"], found["dead_bytes"]) == (0, 0) == dead(tmp_path / "t.jsonl")


OURS = [
    ".t.jsonl.0123abcd.tmp",
    "._values.jsonl.89abcdef.tmp",
    "._commits.jsonl.00000000.tmp",
    ".hutch.json.deadbeef.tmp",
    ".hutch.lock.0123abcd.tmp",
    ".hutch.open.0123abcd.tmp",
    ".never.jsonl.0123abcd.tmp",  # a log a crash cut short before its first commit
]
THEIRS = [
    ".notes.txt.0123abcd.tmp",
    ".t.jsonl.tmp",
    ".t.jsonl.0123ABCD.tmp",
    ".t.jsonl.0123abc.tmp",
    ".t.jsonl.0123abcd.tmp.bak",
    ".t-1.jsonl.0123abcd.tmp",
    "t.jsonl.0123abcd.tmp",
    ".t.jsonl.upgrade.tmp",
]


def test_open_removes_its_own_temp_files_and_no_other(tmp_path: Path) -> None:
    """Holds: in the root and in an index folder, the temp files of hutch's own atomic
    writes go, anything else stays (a folder or a link named like a temp file too, and
    the open does not fail on them)."""
    with hutch.open(url(tmp_path), collections={"t": {"indexed": ["n"]}}) as db:
        db.store.set_row("t", "r", {"n": 1})
    for name in OURS + THEIRS:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".u.jsonl.0123abcd.tmp").mkdir()
    (tmp_path / ".v.jsonl.0123abcd.tmp").symlink_to(tmp_path / "t.jsonl")
    index = tmp_path / "indices" / "t"
    (index / ".n.jsonl.0123abcd.tmp").write_bytes(b"x")
    (index / ".m.jsonl.0123abcd.tmp").write_bytes(b"x")
    with hutch.open(url(tmp_path), read_only=True) as db:
        assert db.store.get_row("t", "r") == {"n": 1}
    assert all((tmp_path / name).exists() for name in OURS), "read-only removes nothing"
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_row("t", "r") == {"n": 1}
    assert [name for name in OURS if (tmp_path / name).exists()] == []
    assert [name for name in THEIRS if not (tmp_path / name).exists()] == []
    assert (tmp_path / ".u.jsonl.0123abcd.tmp").is_dir()
    assert (tmp_path / ".v.jsonl.0123abcd.tmp").is_symlink()
    assert not (index / ".n.jsonl.0123abcd.tmp").exists()
    assert (index / ".m.jsonl.0123abcd.tmp").exists()


@pytest.mark.parametrize("durability", ["commit", "batch"])
def test_every_crash_state_of_byte_driven_compactions_opens_with_what_was_acknowledged(
    folder: Path, scratch: Path, durability: str
) -> None:
    """Holds: power cuts anywhere in a workload whose logs (values and the commit log above
    all) are compacted and shortened by the byte rule only, with db.compact() halfway; under
    "batch", whole transactions up to some point."""
    rng = random.Random(5)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {
        "collections": {"items": {"indexed": ["kind"]}, "rows": {"indexed": ["kind"]}},
        "compact_lines": 10**6,
        "compact_bytes": 200,
        "durability": durability,
        "batch_interval": 3600,
    }
    recording = record_plan(
        folder, plan, lambda: hutch.open(url(folder), **options), compact_halfway=True
    )
    allowed = (every_acknowledged if durability == "commit" else whole_transactions)(
        recording, plan
    )
    checked = check_states(recording, scratch, allowed, opened=opener(url, **options), rng=rng)
    assert checked > 100


def test_processes_compacting_by_bytes_count_every_increment_once(tmp_path: Path) -> None:
    """Holds: real processes increment one counter while each compacts the logs by bytes
    (a floor of 64 bytes: nearly every commit replaces a log another process reads)."""
    count_in_processes(tmp_path, url(tmp_path / "data"), 3, 40, compact_bytes=64)
