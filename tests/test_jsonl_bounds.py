"""What a ``jsonl://`` commit, refresh and open cost is bounded by the commit's size, never by
the size of the data or by what else lies in the folder (docs/jsonl-format.md).

No test here times anything: each counts the work done (bytes on disk, bytes written or
read, folder listings, calls through ``fsio``) and compares it with the bound.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import hutch
from hutch.backends.file import fsio

#: The default ``compact_bytes``: a log smaller than this is never compacted for its bytes.
FLOOR = 1 << 20
#: A big cell: a log of rows like this passes the floor in a few commits.
BIG = "x" * (64 << 10)


def url(root: Path) -> str:
    return f"jsonl://{root.resolve()}"


def live_bytes(path: Path) -> int:
    """The bytes of the latest line of each row (or key) still there: what a compaction keeps."""
    latest: dict[str, bytes] = {}
    for line in path.read_bytes().splitlines(keepends=True)[1:]:
        entry = orjson.loads(line)
        deleted = len(entry) == 2 or (path.name != "_values.jsonl" and entry[2] is None)
        latest.pop(entry[1], None)
        if not deleted:
            latest[entry[1]] = line
    return sum(map(len, latest.values()))


def body_bytes(path: Path) -> int:
    """A log's bytes after its header."""
    data = path.read_bytes()
    return len(data) - data.index(b"\n") - 1


def assert_bounded(path: Path, last_line: int) -> None:
    """A log holds at most twice its live bytes, or the floor, and the commit just made."""
    assert body_bytes(path) <= max(FLOOR, 2 * live_bytes(path)) + last_line, path.name


#: What a call is counted as, given its arguments by name and what it returned.
Measure = Callable[[dict[str, Any], Any], int]


def written(arguments: dict[str, Any], _: Any) -> int:
    return len(arguments["data"])


def got(_: dict[str, Any], result: Any) -> int:
    return len(result)


@contextlib.contextmanager
def counting(
    monkeypatch: pytest.MonkeyPatch, names: list[str], measure: Measure | None = None
) -> Iterator[dict[str, int]]:
    """Count the calls of some ``fsio`` functions (or add up what ``measure`` makes of each)
    while the block runs; ``fsio``'s own calls to them are counted too."""
    counts = dict.fromkeys(names, 0)

    def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def counted(*arguments: Any, **keywords: Any) -> Any:
            result = function(*arguments, **keywords)
            if measure is None:
                counts[name] += 1
            else:
                counts[name] += measure(signature.bind(*arguments, **keywords).arguments, result)
            return result

        return counted

    with monkeypatch.context() as patch:
        for name in names:
            patch.setattr(fsio, name, wrap(name, getattr(fsio, name)))
        yield counts


# -- compaction is bounded by bytes --------------------------------------------------------------


def test_a_big_row_updated_many_times_keeps_its_log_within_twice_its_live_bytes(
    tmp_path: Path,
) -> None:
    """One 64 KiB row updated 200 times once left 12.8 MB: compaction counted lines only."""
    with hutch.open(url(tmp_path), durability="none") as db:
        for n in range(200):
            db.store.set_row("t", "big", {"blob": BIG, "n": n})
            assert_bounded(tmp_path / "t.jsonl", len(BIG) + 100)
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_row("t", "big") == {"blob": BIG, "n": 199}


def test_a_churned_big_row_among_many_small_live_ones_is_compacted(tmp_path: Path) -> None:
    """Most lines are live but most bytes are dead: the rule weighs each row's own bytes."""
    with hutch.open(url(tmp_path), durability="none") as db:
        with db.store.transaction():
            for n in range(3000):
                db.store.set_row("t", f"small{n}", {"n": n})
        for n in range(100):
            db.store.set_row("t", "big", {"blob": BIG, "n": n})
            assert_bounded(tmp_path / "t.jsonl", len(BIG) + 100)
        expected = db.store.get_table("t")
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_table("t") == expected


def test_a_deleted_big_row_leaves_the_log_once_its_bytes_outweigh_the_live_ones(
    tmp_path: Path,
) -> None:
    """A deletion is a short line, but it makes the row's bytes dead: they count at once."""
    with hutch.open(url(tmp_path), durability="none", compact_bytes=4096) as db:
        with db.store.transaction():
            for n in range(300):
                db.store.set_row("t", f"small{n}", {"n": n})
        db.store.set_row("t", "big", {"blob": BIG})
        assert BIG.encode() in (tmp_path / "t.jsonl").read_bytes()
        db.store.del_row("t", "big")
        assert BIG.encode() not in (tmp_path / "t.jsonl").read_bytes()
        assert body_bytes(tmp_path / "t.jsonl") <= 2 * live_bytes(tmp_path / "t.jsonl")
        assert db.backend.stats()["collections"]["t"]["dead_bytes"] == 0


def test_a_big_value_set_many_times_keeps_the_values_log_bounded(tmp_path: Path) -> None:
    with hutch.open(url(tmp_path), durability="none") as db:
        for n in range(100):
            db.store.set_value("blob", [n, BIG])
            db.store.set_value("small", n)
            assert_bounded(tmp_path / "_values.jsonl", len(BIG) + 100)
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_values() == {"blob": [99, BIG], "small": 99}


def test_commits_naming_many_logs_keep_the_commit_log_bounded(tmp_path: Path) -> None:
    """Each commit line names 120 logs (3 KB): 600 of them once made 2 MB of commit log."""
    commits = tmp_path / "_commits.jsonl"
    with hutch.open(url(tmp_path), durability="none") as db:
        for n in range(600):
            with db.store.transaction():
                for table in range(120):
                    db.store.set_row(f"table_number_{table}", "r", {"n": n})
            first = commits.read_bytes().splitlines(keepends=True)[1]
            assert body_bytes(commits) <= max(FLOOR, 2 * len(first)) + len(first)
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_row("table_number_119", "r") == {"n": 599}


@pytest.mark.parametrize("rows", [200, 2000])
def test_the_bytes_compactions_write_are_amortised_over_the_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """A compaction rewrites the live data only once as many dead bytes were appended: the
    bytes written per commit do not grow with the live data (here, 10 times more rows)."""
    options: dict[str, Any] = {"durability": "none", "compact_lines": 10**9, "compact_bytes": 4096}
    shuffle = random.Random(rows)
    with hutch.open(url(tmp_path), **options) as db:
        with db.store.transaction():
            for n in range(rows):
                db.store.set_row("t", f"r{n}", {"n": n, "pad": "p" * 80})
        appended = 0
        with counting(monkeypatch, ["write_at"], written) as wrote:
            for n in range(1000):
                row = {"n": -n, "pad": "q" * 80}
                db.store.set_row("t", f"r{shuffle.randrange(rows)}", row)
                appended += len(orjson.dumps([n, "r0000", row])) + 1
        assert wrote["write_at"] <= 4 * appended
        assert body_bytes(tmp_path / "t.jsonl") <= max(4096, 2 * live_bytes(tmp_path / "t.jsonl"))


# -- no folder listing per commit or refresh -------------------------------------------------------

JUNK = ["foo.txt", "x.jsonl.bak", "README", "t.jsonl~", ".#t.jsonl", "a b.jsonl", ".notes.tmp"]


def add_junk(root: Path, count: int) -> None:
    """Files hutch did not write, of every kind of name, and a folder."""
    root.mkdir(exist_ok=True)
    for name in JUNK:
        (root / name).write_bytes(b"not hutch's\n")
    for n in range(count):
        (root / f"junk{n}.txt").write_bytes(b"")
    (root / "stuff").mkdir()


@pytest.mark.usefixtures("several_opens")
def test_no_folder_is_listed_per_commit_or_refresh_whatever_lies_in_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits that create logs, compact them and shorten the commit log, and refreshes
    that follow them (new generations included), list no folder: names are computed."""
    add_junk(tmp_path, 500)
    options: dict[str, Any] = {"compact_lines": 8, "collections": {"t": {"indexed": ["n"]}}}
    with (
        hutch.open(url(tmp_path), **options) as db,
        hutch.open(url(tmp_path), **options, follow=False) as other,
    ):
        with counting(monkeypatch, ["entries"]) as listed:
            for n in range(60):
                db.store.set_row("t", f"r{n % 3}", {"n": n})
                db.store.set_row(f"new{n % 20}", "r", {"n": n})
                db.store.set_value("v", n)
                if n % 7 == 0:
                    other.refresh()
                    other.store.set_row("t", "other", {"n": n})
            other.refresh()
            db.refresh()
        assert listed == {"entries": 0}
        assert other.store.get_table("t") == db.store.get_table("t")
        assert orjson.loads((tmp_path / "t.jsonl").read_bytes().splitlines()[0])[-1] > 1
    for name in JUNK:
        assert (tmp_path / name).read_bytes() == b"not hutch's\n"


#: The ``fsio`` functions that reach the disk.
DISK_CALLS = [
    "info",
    "read_file",
    "read_head",
    "read_at",
    "open_file",
    "open_lock",
    "open_lock_if_present",
    "open_dir",
    "create_new",
    "write_at",
    "truncate",
    "fsync",
    "fdatasync",
    "rename",
    "remove",
    "size",
    "inode",
    "stat_of",
]


@pytest.mark.parametrize("read_only", [False, True])
def test_junk_in_the_root_is_left_alone_and_costs_nothing_but_the_listing_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """Open reads, writes, removes and stats the same with 10 junk files as with 1000: a
    name hutch did not write is looked at in the listing only, and left as it is. Only the
    temp files hutch's own atomic writes leave are removed."""
    calls = []
    for count in (10, 1000):
        root = tmp_path / str(count)
        add_junk(root, count)
        with hutch.open(url(root), collections={"t": {"indexed": ["n"]}}) as db:
            db.store.set_row("t", "r", {"n": 1})
        (root / ".t.jsonl.0123abcd.tmp").write_bytes(b"a compaction a crash cut short")
        with (
            counting(monkeypatch, DISK_CALLS) as found,
            counting(monkeypatch, ["entries"]) as listed,
            hutch.open(url(root), read_only=read_only) as db,
        ):
            assert db.store.get_row("t", "r") == {"n": 1}
        calls.append(found)
        assert listed["entries"] <= 3, "the root is listed a bounded number of times"
        for name in JUNK:
            assert (root / name).read_bytes() == b"not hutch's\n"
        assert (root / ".t.jsonl.0123abcd.tmp").exists() == read_only
    assert calls[0] == calls[1]


def test_an_upgrade_from_format_1_leaves_junk_alone(tmp_path: Path) -> None:
    """The upgrade removes its own temp files a crash left, and no other dot-led ``.tmp``."""
    root = tmp_path / "data"
    shutil.copytree(Path(__file__).parent / "data" / "jsonl_format_1", root)
    add_junk(root, 10)
    (root / ".people.jsonl.upgrade.tmp").write_bytes(b"an upgrade a crash cut short")
    with hutch.open(url(root)) as db:
        assert db.store.get_row_ids("people")
    assert orjson.loads((root / "hutch.json").read_bytes())["format"] == 2
    assert not (root / ".people.jsonl.upgrade.tmp").exists()
    for name in JUNK:
        assert (root / name).read_bytes() == b"not hutch's\n"


# -- per commit and per refresh: the commit's size, not the data's -------------------------------


@pytest.mark.usefixtures("several_opens")
def test_an_index_is_rewritten_with_its_own_collections_compaction_only(tmp_path: Path) -> None:
    """Compacting a small busy collection once rewrote every stale index, a big quiet
    collection's too: O(its rows) per compaction of another collection."""
    options: dict[str, Any] = {
        "compact_lines": 20,
        "collections": {"quiet": {"indexed": ["n"]}, "busy": {"indexed": ["n"]}},
    }
    quiet = tmp_path / "indices" / "quiet" / "n.jsonl"
    with hutch.open(url(tmp_path), **options) as db:
        with db.store.transaction():
            for n in range(500):
                db.store.set_row("quiet", f"r{n}", {"n": n})
        db.store.set_row("quiet", "r0", {"n": -1})  # its index is stale until close
        written = os.stat(quiet).st_ino
        for n in range(200):
            db.store.set_row("busy", f"r{n % 2}", {"n": n})
        assert orjson.loads((tmp_path / "busy.jsonl").read_bytes().splitlines()[0])[-1] > 5
        assert os.stat(quiet).st_ino == written
    assert orjson.loads(quiet.read_bytes().splitlines()[0]) == [-1, "r0"], "current at close"


@pytest.mark.usefixtures("several_opens")
@pytest.mark.parametrize("rows", [300, 3000])
def test_a_commit_and_a_refresh_read_and_write_what_the_commit_holds_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """Bytes written by a commit and read by another database's refresh: the same with 10
    times more rows (a compaction set aside: no log here has a dead line)."""
    with (
        hutch.open(url(tmp_path), collections={"t": {"indexed": ["n"]}}) as db,
        hutch.open(url(tmp_path), follow=False) as other,
    ):
        with db.store.transaction():
            for n in range(rows):
                db.store.set_row("t", f"r{n}", {"n": n})
                db.store.set_value(f"v{n}", n)
        other.refresh()
        with (
            counting(monkeypatch, ["write_at"], written) as wrote,
            counting(monkeypatch, ["read_at"], got) as read,
        ):
            db.store.set_row("t", "new", {"n": -1})
            db.store.set_value("new", -1)
            other.refresh()
        assert other.store.get_row("t", "new") == {"n": -1}
        assert wrote["write_at"] < 300
        assert read["read_at"] < 600


def test_a_compaction_that_fails_is_tried_again_once_the_log_doubled_not_at_every_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a disk too full for the new generation, each commit once tried (and failed) to
    write the whole live data again: O(the data) per commit, for as long as the disk was."""
    attempts = []
    write_atomic = fsio.write_atomic

    def full(dir_fd: int, name: str, data: bytes, **options: Any) -> None:
        if name == "t.jsonl":
            attempts.append(len(data))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        write_atomic(dir_fd, name, data, **options)

    with hutch.open(url(tmp_path), durability="none", compact_lines=10) as db:
        with monkeypatch.context() as patch:
            patch.setattr(fsio, "write_atomic", full)
            for n in range(300):
                db.store.set_row("t", f"r{n % 2}", {"n": n})
        assert 1 <= len(attempts) <= 8, "tried again as the log doubles: 11, 22, 44... lines"
        for n in range(300):  # the disk has room again: the log is compacted
            db.store.set_row("t", f"r{n % 2}", {"n": -n})
        assert len((tmp_path / "t.jsonl").read_bytes().splitlines()) <= 12
    with hutch.open(url(tmp_path)) as db:
        assert db.store.get_table("t") == {"r0": {"n": -298}, "r1": {"n": -299}}
