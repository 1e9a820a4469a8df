"""Hostile folder contents: whatever is in a data folder, hutch never reads or writes outside
its root, never hangs, never dies with a raw exception and never drops what was committed.

One section per way a folder can be hostile (see docs/security.md); each test puts the
hostile thing in place with plain file-system calls, then opens or uses the store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import logfiles
import orjson
import pytest
from children import Child

import hutch
from hutch.backends.file import fsio, wal
from hutch.backends.file.persister import FilePersister
from hutch.cells import MAX_NESTING

FOLDER_SCHEMES = ["file", "jsonl"]


def url(scheme: str, root: Path) -> str:
    return f"{scheme}://{root}"


def made(tmp_path: Path, scheme: str, **options: Any) -> Path:
    """A closed store holding one row and one value, inside ``tmp_path/data``."""
    root = tmp_path / "data"
    with hutch.open(url(scheme, root), **options) as db:
        db.store.set_row("posts", "p1", {"title": "one"})
        db.store.set_value("counter", 1)
    return root


def listing(folder: Path) -> dict[str, Any]:
    """Every entry under ``folder`` (links not followed): content, link target, or kind."""
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = ("link", os.readlink(path))
        elif path.is_dir():
            found[name] = "dir"
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "other"
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder beside the data folder that nothing may touch; checked after the test."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "precious").write_bytes(b"precious\n" * 4)
    before = listing(place)
    yield place
    assert listing(place) == before


def newest_generation(root: Path) -> Path:
    return sorted((root / "_wal").glob("*.log"))[-1]


def wal_line(fields: dict[str, Any]) -> bytes:
    payload = orjson.dumps(fields)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def append_transaction(root: Path, **changes: Any) -> None:
    """Append a transaction with a valid checksum to the log, as anyone can."""
    generation = newest_generation(root)
    last = json.loads(generation.read_bytes().splitlines()[-1][9:])
    seq = last.get("s", 0) + 1
    fields = {"s": seq, "p": seq - 1, "c": 1, "t": {}, "v": {}, "d": [], **changes}
    with generation.open("ab") as log:
        log.write(wal_line(fields))


# -- 1. every log line is checked as a write before anything is applied -----------------------


HOSTILE_TRANSACTIONS = {
    "a row id that is a path": {"t": {"posts": {"/../../outside/planted": {"x": 1}}}},
    "a row id with ..": {"t": {"posts": {"..": {"x": 1}}}},
    "a table id ..": {"t": {"..": {"planted": {"x": 1}}}},
    "a table id that is a path": {"t": {"../outside": {"planted": {"x": 1}}}},
    "a deleted row that is a path": {"t": {"posts": {"../../outside/precious": None}}},
    "an empty value key": {"v": {"": 1}},
    "a value key with NUL": {"v": {"a\u0000b": 1}},
    "the reserved id cell": {"t": {"posts": {"p2": {"id": "p9"}}}},
    "a NUL in a value": {"v": {"k": "a\u0000b"}},
    "a deleted value key that is empty": {"d": [""]},
}


@pytest.mark.parametrize("changes", HOSTILE_TRANSACTIONS.values(), ids=HOSTILE_TRANSACTIONS)
def test_a_checksummed_log_line_is_checked_as_a_write_and_never_applied(
    tmp_path: Path, outside: Path, changes: dict[str, Any]
) -> None:
    root = made(tmp_path, "file")
    append_transaction(root, **changes)
    before = listing(root)

    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote") as opening:
        hutch.open(root)
    assert "00000002.log: line" in str(opening.value)
    assert listing(root) == before  # nothing cut, nothing written

    with hutch.open(root, on_corrupt="quarantine") as db:  # opens with what came before
        assert db.store.get_row("posts", "p1") == {"title": "one"}
        assert db.store.get_table_ids() == ["posts"]
        assert db.store.get_row_ids("posts") == ["p1"]
    assert list((root / "_quarantine" / "_wal").iterdir())
    assert not list(tmp_path.rglob("planted*"))


def test_what_a_quarantine_keeps_is_in_the_new_log_before_any_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generation a damaged line is in goes to quarantine; the transactions before the
    line are written into the new generation at once, so a crash before the next
    checkpoint (here the disk is full for the one at open) cannot lose them."""
    root = tmp_path / "data"
    with hutch.open(root) as db:
        db.store.set_row("posts", "p1", {"title": "one"})
        db.store.set_row("posts", "p2", {"title": "two"})
    for record in (root / "posts").iterdir():  # as if no checkpoint had written them
        record.unlink()
    generation = newest_generation(root)
    transactions = [
        wal_line(
            {"s": 1, "p": 0, "c": 1, "t": {"posts": {"p1": {"title": "one"}}}, "v": {}, "d": []}
        ),
        wal_line(
            {"s": 2, "p": 1, "c": 1, "t": {"posts": {"p2": {"title": "two"}}}, "v": {}, "d": []}
        ),
        wal_line({"s": 3, "p": 2, "c": 1, "t": {"posts": {"../x": {"x": 1}}}, "v": {}, "d": []}),
    ]
    for stale in logfiles.generations(root)[:-1]:
        stale.unlink()
    header = logfiles.lines(generation)[0]
    header["previous"] = None
    generation.write_bytes(wal_line(header) + b"".join(transactions))

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise hutch.DiskFull("the disk is full")

    monkeypatch.setattr(FilePersister, "_checkpoint_held", disk_full)
    db = hutch.open(root, on_corrupt="quarantine")
    crashed = tmp_path / "crashed"
    shutil.copytree(root, crashed)  # what a crash now would leave (the page cache kept)
    db.close()  # (it warns: the record files wait for space, the log holds it all)
    monkeypatch.undo()
    with hutch.open(crashed) as db:
        assert db.store.get_table("posts") == {"p1": {"title": "one"}, "p2": {"title": "two"}}


@pytest.mark.usefixtures("several_opens")
def test_a_checkpoint_mark_no_checkpoint_writes_is_damage(tmp_path: Path) -> None:
    root = made(tmp_path, "file")
    with hutch.open(root) as db:
        db.store.set_row("posts", "p2", {"title": "two"})
        generation = int(newest_generation(root).stem)
        append_transaction(root, k=generation)  # "this very generation is in the files"
        with pytest.raises(hutch.CorruptData, match="checkpoint mark names generation"):
            hutch.open(root)
        db.store.set_row("posts", "p3", {"title": "three"})  # (not cut, not applied)


def test_a_checksummed_line_after_a_torn_one_is_never_cut(tmp_path: Path) -> None:
    root = made(tmp_path, "file")
    hostile = {"s": 99, "p": 0, "c": 1, "t": {"posts": {"../x": {"x": 1}}}, "v": {}, "d": []}
    with newest_generation(root).open("ab") as log:
        log.write(b"0badc0de {torn\n" + wal_line(hostile))
    before = newest_generation(root).read_bytes()
    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote"):
        hutch.open(root)
    assert newest_generation(root).read_bytes() == before


@pytest.mark.parametrize("number", [2**63 - 1, 2**64 - 1])
def test_a_transaction_number_no_log_reaches_is_damage(tmp_path: Path, number: int) -> None:
    """The next number would not fit in 64 bits: refused at open, not after a commit."""
    root = made(tmp_path, "file")
    append_transaction(root, s=number)
    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote"):
        hutch.open(root)


def test_a_format_1_manifest_over_a_format_2_log_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with hutch.open(root, checkpoint_interval=3600) as db:
        db.store.set_row("posts", "p1", {"title": "one"})
        crashed = tmp_path / "crashed"
        shutil.copytree(root, crashed)  # the commit in the log only
    manifest = json.loads((crashed / "hutch.json").read_text())
    (crashed / "hutch.json").write_text(json.dumps({**manifest, "format": 1}))  # an old copy
    before = listing(crashed)
    with pytest.raises(hutch.CorruptData, match="the manifest is older than the log"):
        hutch.open(crashed)
    assert listing(crashed) == before


def test_a_line_out_of_turn_is_damage_not_a_torn_tail(tmp_path: Path) -> None:
    root = made(tmp_path, "file")
    generation = newest_generation(root)
    lines = generation.read_bytes().splitlines(keepends=True)
    generation.write_bytes(b"".join([*lines, lines[-1]]))  # a transaction number again
    with pytest.raises(hutch.CorruptData, match=r"where \d+ comes next"):
        hutch.open(root)


def test_another_process_reading_a_hostile_line_raises_and_applies_nothing(
    tmp_path: Path, outside: Path
) -> None:
    root = made(tmp_path, "file")
    db = hutch.open(root)
    append_transaction(root, t={"posts": {"../../outside/planted": {"x": 1}}})
    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote"):
        db.refresh()
    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote"):
        db.store.set_row("posts", "p2", {"title": "two"})  # nothing goes on from there
    assert db.store.get_row_ids("posts") == ["p1"]
    with pytest.raises(hutch.CorruptData, match="no transaction hutch wrote"):
        db.close()  # its last checkpoint cannot read on either; the files are let go
    assert db.closed
    assert not list(tmp_path.rglob("planted*"))


@pytest.mark.parametrize("number", [2**63 - 1, 2**64 - 1])
def test_a_jsonl_commit_number_no_log_reaches_is_refused(tmp_path: Path, number: int) -> None:
    root = made(tmp_path, "jsonl")
    commits = root / "_commits.jsonl"
    header, *lines = commits.read_bytes().splitlines(keepends=True)
    counts: dict[str, Any] = {}
    for line in lines:
        counts.update(json.loads(line)[1])
    commits.write_bytes(header + orjson.dumps([number, counts, number]) + b"\n")
    with hutch.open(url("jsonl", root)) as db:  # the last line: as a torn one, it never counted
        db.store.set_row("posts", "p2", {"title": "two"})
    with hutch.open(url("jsonl", root)) as db:
        assert db.store.get_row("posts", "p2") == {"title": "two"}


@pytest.mark.parametrize(
    "line",
    [
        b'[2,"p1",{"title":"two","i\\u0064":"p9"}]',
        b'[2,"p1",{"title":"two","\\u0000":1}]',
        b'[2,"../../outside/planted",{"x":1}]',
        b'[2,"p1",{"":1}]',
    ],
)
def test_a_jsonl_line_that_smuggles_what_a_write_refuses_is_corrupt(
    tmp_path: Path, outside: Path, line: bytes
) -> None:
    root = made(tmp_path, "jsonl")
    log = root / "posts.jsonl"
    log.write_bytes(log.read_bytes() + line + b"\n")
    commits = root / "_commits.jsonl"
    commits.write_bytes(
        commits.read_bytes() + orjson.dumps([3, {"posts.jsonl": [1, 2]}, 3]) + b"\n"
    )
    with pytest.raises(hutch.CorruptData, match=r"posts\.jsonl: line 3"):
        hutch.open(url("jsonl", root))
    assert not list(tmp_path.rglob("planted*"))


def test_the_sqlite_change_log_names_nothing_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with hutch.open(f"sqlite:///{path}") as db:
        db.store.set_row("posts", "p1", {"title": "one"})
        with sqlite3.connect(path) as other:  # another program writes rows and log lines
            other.execute("INSERT INTO posts (id, title) VALUES ('../../x', '\"two\"')")
            other.execute(
                "INSERT INTO _hutch_changes (table_name, row_id) VALUES ('posts', '../../x')"
            )
        with pytest.raises(hutch.CorruptData, match="not a valid row id"):
            db.refresh()
        assert db.store.get_row_ids("posts") == ["p1"]


# -- 2. hard links: never a file hutch changes or locks in place -----------------------------


def link_out(path: Path, outside: Path) -> Path:
    """Make ``path`` a hard link to a copy of itself outside the folder, as an attacker
    would: what hutch then writes through ``path`` would land outside."""
    target = outside / f"linked-{path.name}"
    target.write_bytes(path.read_bytes())
    path.unlink()
    os.link(target, path)
    return target


@pytest.mark.parametrize(
    ("scheme", "name"),
    [
        ("file", "newest generation"),
        ("file", "hutch.lock"),
        ("file", "hutch.open"),
        ("file", "hutch.checkpoint"),
        ("jsonl", "posts.jsonl"),
        ("jsonl", "_commits.jsonl"),
        ("jsonl", "_values.jsonl"),
        ("jsonl", "hutch.lock"),
    ],
)
def test_a_hard_linked_log_or_lock_file_is_refused_and_left_alone(
    tmp_path: Path, scheme: str, name: str
) -> None:
    root = made(tmp_path, scheme)
    path = newest_generation(root) if name == "newest generation" else root / name
    place = tmp_path / "elsewhere"
    place.mkdir()
    target = link_out(path, place)
    before = target.read_bytes()

    with pytest.raises(hutch.StorageError, match="hard links") as opening:
        hutch.open(url(scheme, root)).close()
    assert path.name in str(opening.value)
    assert target.read_bytes() == before


@pytest.mark.usefixtures("several_opens")
def test_a_generation_linked_while_open_is_refused_when_followed(tmp_path: Path) -> None:
    """A process moving on to a generation another one started never appends to it if it
    has other names, nor to the generation that ended: its next commit waits until it can
    move on, so every process reads it. The descriptor it held stays its own."""
    root = made(tmp_path, "file")
    with hutch.open(root) as writer, hutch.open(root, follow=False) as reader:
        writer.store.set_row("posts", "p2", {"title": "two"})
        writer.compact()  # a new generation, which the reader has not followed yet
        place = tmp_path / "elsewhere"
        place.mkdir()
        os.link(newest_generation(root), place / "second-name")
        with pytest.raises(hutch.StorageError, match="hard links"):
            reader.refresh()
        with pytest.raises(hutch.StorageError, match="hard links"):
            reader.store.set_row("posts", "r1", {"title": "refused"})
        theirs = os.open(tmp_path / "application-file", os.O_CREAT | os.O_RDWR)
        try:
            (place / "second-name").unlink()
            reader.store.set_row("posts", "r2", {"title": "acknowledged"})
            assert reader.store.get_row("posts", "p2") == {"title": "two"}
            writer.refresh()
            assert writer.store.get_row("posts", "r2") == {"title": "acknowledged"}
            reader.close()  # closes only descriptors it owns
            os.fstat(theirs)  # still open: hutch did not close the application's file
            os.write(theirs, b"mine")
        finally:
            os.close(theirs)
    assert (tmp_path / "application-file").read_bytes() == b"mine"
    with hutch.open(root) as db:
        assert db.store.get_row_ids("posts") == ["p1", "p2", "r2"]


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_cp_al_copy_and_its_original_each_go_their_own_way(tmp_path: Path, scheme: str) -> None:
    """Records are replaced by rename, never changed in place, so they may stay linked; the
    log and lock files a copy shares with its original get copies of their own at the first
    open of either."""
    root = made(tmp_path, scheme)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-al", str(root), str(copy)], check=True)
    with hutch.open(url(scheme, copy)) as db:
        assert db.store.get_row("posts", "p1") == {"title": "one"}
        db.store.set_row("posts", "p2", {"title": "only in the copy"})
        db.compact()
    with hutch.open(url(scheme, root)) as db:
        assert db.store.get_row_ids("posts") == ["p1"]
        db.store.set_row("posts", "p1", {"title": "changed"})
        db.compact()
    with hutch.open(url(scheme, copy)) as db:
        assert db.store.get_table("posts") == {
            "p1": {"title": "one"},
            "p2": {"title": "only in the copy"},
        }
    with hutch.open(url(scheme, root)) as db:
        assert db.store.get_table("posts") == {"p1": {"title": "changed"}}


@pytest.mark.usefixtures("several_opens")
def test_a_failed_sync_while_moving_to_a_new_generation_loses_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync before the line that moves every process to the next generation fails (an
    I/O error): nothing moved, and this open takes no more commits (a sync tried again may
    report success for pages the kernel dropped), nor closes without saying so; the next
    open goes on where every process reads it."""
    root = tmp_path / "data"
    batch: dict[str, Any] = {
        "durability": "batch",
        "batch_interval": 3600,
        "checkpoint_interval": 3600,
    }
    writer = hutch.open(root, **batch)
    with hutch.open(root, follow=False) as reader:
        writer.store.set_row("posts", "p1", {"title": "one"})  # not synced yet
        real = fsio.fdatasync
        calls = iter(range(1_000_000))

        def failing_once(fd: int) -> None:
            if next(calls) == 0:
                raise OSError(5, "Input/output error")
            real(fd)

        monkeypatch.setattr(fsio, "fdatasync", failing_once)
        with pytest.raises(hutch.StorageError, match="Input/output error"):
            writer.compact()
        monkeypatch.setattr(fsio, "fdatasync", real)
        with pytest.raises(hutch.StorageError, match="open it again"):
            writer.store.set_row("posts", "p2", {"title": "refused"})
        with pytest.raises(hutch.StorageError, match="open it again"):
            writer.close()
        with hutch.open(root, **batch) as again:
            again.store.set_row("posts", "p2", {"title": "acknowledged"})
        reader.refresh()
        assert reader.store.get_row("posts", "p2") == {"title": "acknowledged"}
    with hutch.open(root) as db:
        assert db.store.get_row_ids("posts") == ["p1", "p2"]


_HOLDER = """
import sys
import hutch
db = hutch.open(sys.argv[1])
db.store.set_row("posts", "held", {"title": "by the holder"})
print("open", flush=True)
sys.stdin.readline()
db.store.set_row("posts", "late", {"title": "after the copy"})
db.close()
print("closed", flush=True)
"""


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_cp_al_copy_of_a_folder_in_use_is_refused_while_the_original_goes_on(
    tmp_path: Path, scheme: str
) -> None:
    """A copy made while another process has the original open shares its live log: it is
    refused until that process closes. The original's processes, and new ones joining
    them, go on."""
    root = made(tmp_path, scheme)
    copy = tmp_path / "copy"
    holder = Child("holder", [sys.executable, "-c", _HOLDER, url(scheme, root)], tmp_path / "err")
    try:
        holder.expect("open")
        subprocess.run(["cp", "-al", str(root), str(copy)], check=True)
        with pytest.raises(hutch.StorageError, match="from a folder that a process has open"):
            hutch.open(url(scheme, copy))
        with hutch.open(url(scheme, root)) as db:  # another worker of the original joins
            db.store.set_row("posts", "joined", {"title": "by a new worker"})
            db.compact()
        holder.send("go")
        holder.expect("closed")
    finally:
        holder.end()
    with hutch.open(url(scheme, root)) as db:
        assert db.store.get_row_ids("posts") == ["held", "joined", "late", "p1"]
    with hutch.open(url(scheme, copy)) as db:  # now on its own
        db.store.set_row("posts", "copied", {"title": "only in the copy"})
    with hutch.open(url(scheme, root)) as db:
        assert "copied" not in db.store.get_row_ids("posts")


def test_new_files_are_created_exclusively(tmp_path: Path) -> None:
    fd = fsio.open_root(tmp_path)
    try:
        (tmp_path / "taken").write_bytes(b"someone else's")
        with pytest.raises(FileExistsError):
            fsio.create_with(fd, "taken", b"mine", sync=False)
    finally:
        fsio.close(fd)
    assert (tmp_path / "taken").read_bytes() == b"someone else's"


# -- 3. names hutch did not write --------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["².log", "٩٩.log", "7.log", "007.log", "000000002.log", "1e3.log"]
)
def test_only_names_hutch_writes_are_generations(name: str) -> None:
    assert wal.number(name) is None
    assert wal.number(wal.name(7)) == 7


@pytest.mark.parametrize("stray", ["².log", "٩٩.log", "99.log", "000000099.log"])
def test_stray_log_names_neither_stop_nor_lose_commits(tmp_path: Path, stray: str) -> None:
    root = made(tmp_path, "file")
    (root / "_wal" / stray).write_bytes(newest_generation(root).read_bytes())
    with hutch.open(root, checkpoint_interval=0.01) as db:
        db.store.set_row("posts", "p2", {"title": "two"})
        db.compact()
        db.store.set_row("posts", "p3", {"title": "three"})
    with hutch.open(root) as db:
        assert db.store.get_row_ids("posts") == ["p1", "p2", "p3"]
    assert (root / "_wal" / stray).exists()  # not hutch's: left alone


@pytest.mark.parametrize("stray", ["posts².jsonl", "٩٩.jsonl", "_values².jsonl", "Posts.JSONL"])
def test_stray_jsonl_names_are_no_logs(tmp_path: Path, stray: str) -> None:
    root = made(tmp_path, "jsonl")
    (root / stray).write_bytes((root / "posts.jsonl").read_bytes())
    with hutch.open(url("jsonl", root)) as db:
        db.store.set_row("posts", "p2", {"title": "two"})
        db.compact()
    with hutch.open(url("jsonl", root)) as db:
        assert db.store.get_row_ids("posts") == ["p1", "p2"]
        assert db.store.get_table_ids() == ["posts"]
    assert (root / stray).exists()


def test_a_stray_at_the_last_generation_number_is_passed_over(tmp_path: Path) -> None:
    """A file at the number no generation can follow: generations are named by number
    without listing the folder, and none is ever started there."""
    root = made(tmp_path, "file")
    stray = root / "_wal" / wal.name(wal.LAST)
    stray.write_bytes(b"not hutch's")
    db = hutch.open(root)
    db.store.set_row("posts", "p2", {"title": "two"})  # in the log
    db.compact()
    db.close()
    assert stray.read_bytes() == b"not hutch's"
    with hutch.open(root) as db:
        assert db.store.get_row("posts", "p2") == {"title": "two"}


# -- 4. FIFOs and other files that are no files ------------------------------------------------


def fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("scheme", "name"),
    [
        ("file", "posts/p1.json"),
        ("file", "hutch.json"),
        ("file", "hutch.lock"),
        ("file", "_values.json"),
        ("file", "newest generation"),
        ("jsonl", "posts.jsonl"),
        ("jsonl", "_commits.jsonl"),
        ("jsonl", "hutch.json"),
        ("jsonl", "hutch.open"),
    ],
)
def test_a_fifo_never_hangs_and_is_named_for_what_it_is(
    tmp_path: Path, scheme: str, name: str
) -> None:
    root = made(tmp_path, scheme)
    fifo(newest_generation(root) if name == "newest generation" else root / name)
    with pytest.raises(hutch.HutchError, match="FIFO"):
        hutch.open(url(scheme, root))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make", [fifo, Path.mkdir, lambda path: path.symlink_to("/dev/null")])
def test_no_file_with_a_generations_name_is_passed_over_unsaid(
    tmp_path: Path, make: Callable[[Path], object]
) -> None:
    root = made(tmp_path, "file")
    make(root / "_wal" / wal.name(90))
    with pytest.raises(hutch.CorruptData, match="where hutch keeps a log generation"):
        hutch.open(root)
    with hutch.open(root, on_corrupt="quarantine") as db:
        db.store.set_row("posts", "p2", {"title": "two"})
    with hutch.open(root) as db:
        assert db.store.get_row_ids("posts") == ["p1", "p2"]
    assert os.path.lexists(root / "_quarantine" / "_wal" / wal.name(90))


@pytest.mark.timeout(60)
def test_a_collection_folder_that_is_a_fifo_is_named_so(tmp_path: Path) -> None:
    collections = {"posts": {"indexed": ["title"]}}
    root = made(tmp_path, "file", collections=collections)
    (root / "elsewhere").mkdir()
    (root / "posts").rename(root / "elsewhere" / "posts")
    fifo(root / "posts")
    with pytest.raises(hutch.StorageError, match=r"posts: it is a FIFO \(named pipe\)"):
        hutch.open(root, collections=collections)


@pytest.mark.timeout(60)
def test_a_sqlite_file_that_is_a_fifo_is_named_so(tmp_path: Path) -> None:
    fifo(tmp_path / "data.db")
    with pytest.raises(hutch.ConfigError, match=r"it is a FIFO \(named pipe\)"):
        hutch.open(f"sqlite:///{tmp_path / 'data.db'}")


def test_a_sqlite_path_that_loops_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "loop.db").symlink_to(tmp_path / "loop.db")
    with pytest.raises(hutch.StorageError, match=r"loop\.db"):
        hutch.open(f"sqlite:///{tmp_path / 'loop.db'}")


@pytest.mark.timeout(60)
def test_a_record_that_is_a_fifo_is_quarantined(tmp_path: Path) -> None:
    root = made(tmp_path, "file")
    fifo(root / "posts" / "p1.json")
    with hutch.open(root, on_corrupt="quarantine") as db:
        assert db.store.get_row("posts", "p1") is None
        backend = db.backend
        assert isinstance(backend, FilePersister)
        assert backend.quarantined == [root / "_quarantine" / "posts" / "p1.json"]


# -- 5. a failed reopen keeps no closed descriptor ---------------------------------------------


def test_a_failed_reopen_after_a_compaction_keeps_no_closed_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new log is opened before the old descriptor is let go: if that open fails (too
    many open files), the store still holds a descriptor of its own, not a number the
    application gets next."""
    root = made(tmp_path, "jsonl")
    with hutch.open(url("jsonl", root)) as db:
        db.store.set_row("posts", "p1", {"title": "two"})
        real = fsio.open_file

        def exhausted(dir_fd: int, name: str, **options: Any) -> int:
            raise OSError(24, "Too many open files", name)

        monkeypatch.setattr(fsio, "open_file", exhausted)
        with pytest.raises(hutch.StorageError, match="Too many open files"):
            db.compact()
        monkeypatch.setattr(fsio, "open_file", real)
        theirs = os.open(tmp_path / "application-file", os.O_CREAT | os.O_RDWR)
        try:
            db.close()
            os.fstat(theirs)
            os.write(theirs, b"mine")
        finally:
            os.close(theirs)
    assert (tmp_path / "application-file").read_bytes() == b"mine"
    with hutch.open(url("jsonl", root)) as db:
        assert db.store.get_row("posts", "p1") == {"title": "two"}


# -- 6. the background worker survives, and says what went wrong ------------------------------


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_background_failure_is_raised_in_the_foreground_and_the_work_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    root = made(tmp_path, scheme)
    with hutch.open(url(scheme, root), durability="batch", batch_interval=0.01) as db:
        persister: Any = db.store._persister
        work = "_maintain_once" if scheme == "file" else "_flush"
        real = getattr(persister, work)
        failed, again = threading.Event(), threading.Event()

        def broken() -> None:
            if not failed.is_set():
                failed.set()
                raise ValueError("an unexpected error")
            again.set()
            real()

        monkeypatch.setattr(persister, work, broken)
        assert again.wait(30)  # the worker lives on after the failure, which it kept
        with pytest.raises(hutch.StorageError, match="an unexpected error"):
            db.store.set_row("posts", "p2", {"title": "two"})
        db.store.set_row("posts", "p2", {"title": "two"})  # raised once
    with hutch.open(url(scheme, root)) as db:
        assert db.store.get_row("posts", "p2") == {"title": "two"}


# -- 7. a folder where a record belongs ------------------------------------------------------


def test_a_record_replaced_by_a_folder_is_moved_aside_and_checkpoints_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = made(tmp_path, "file")
    with hutch.open(root) as db:
        (root / "posts" / "p1.json").unlink()
        (root / "posts" / "p1.json").mkdir()
        (root / "posts" / "p1.json" / "inside").write_text("someone's")
        db.store.set_row("posts", "p1", {"title": "two"})
        db.compact()  # not stuck behind the folder
        assert not [g for g in (root / "_wal").glob("*.log") if g.stat().st_size > 4096]
    moved = root / "_quarantine" / "posts" / "p1.json"
    assert (moved / "inside").read_text() == "someone's"
    assert json.loads((root / "posts" / "p1.json").read_text())["title"] == "two"
    assert str(root / "posts" / "p1.json") in caplog.text
    assert ".tmp" not in caplog.text
    with hutch.open(root) as db:
        assert db.store.get_row("posts", "p1") == {"title": "two"}


@pytest.mark.parametrize("place", ["posts/p1.json", "_values.json"])
def test_a_folder_where_a_file_belongs_is_reported_at_open_and_quarantined(
    tmp_path: Path, place: str
) -> None:
    root = made(tmp_path, "file")
    (root / place).unlink()
    (root / place).mkdir()
    with pytest.raises(hutch.CorruptData, match="it is a folder") as opening:
        hutch.open(root)
    assert place in str(opening.value)
    with hutch.open(root, on_corrupt="quarantine") as db:
        backend = db.backend
        assert isinstance(backend, FilePersister)
        assert backend.quarantined
        db.store.set_row("posts", "p1", {"title": "again"})
        db.store.set_value("counter", 2)
    with hutch.open(root) as db:
        assert db.store.get_row("posts", "p1") == {"title": "again"}
        assert db.store.get_value("counter") == 2


def test_a_file_where_the_indices_folder_belongs_is_moved_aside(tmp_path: Path) -> None:
    collections = {"posts": {"indexed": ["title"]}}
    root = made(tmp_path, "file", collections=collections)
    index_folder = root / "posts" / "indices"
    for entry in index_folder.iterdir():
        entry.unlink()
    index_folder.rmdir()
    index_folder.write_text("not a folder")
    with hutch.open(root, collections=collections) as db:
        db.store.set_row("posts", "p2", {"title": "two"})
    assert (index_folder / "title.jsonl").read_text() == '["one","p1"]\n["two","p2"]\n'


@pytest.mark.parametrize("blocker", ["file", "link"])
def test_what_stands_where_the_indices_folder_belongs_is_moved_aside(
    tmp_path: Path, blocker: str
) -> None:
    collections = {"posts": {"indexed": ["title"]}}
    root = made(tmp_path, "file", collections=collections)
    shutil.rmtree(root / "posts" / "indices")
    if blocker == "file":
        (root / "posts" / "indices").write_text("not a folder")
    else:
        (tmp_path / "outside-indices").mkdir()
        (root / "posts" / "indices").symlink_to(tmp_path / "outside-indices")
    with hutch.open(root, collections=collections) as db:
        db.store.set_row("posts", "p2", {"title": "two"})
    index = root / "posts" / "indices" / "title.jsonl"
    assert index.read_text() == '["one","p1"]\n["two","p2"]\n'
    assert os.path.lexists(root / "_quarantine" / "posts" / "indices")
    assert not list((tmp_path / "outside-indices").iterdir()) if blocker == "link" else True


@pytest.mark.parametrize("path", ["posts/n1.json", "posts/x.json/inner"])
def test_no_collection_lives_where_a_record_of_another_would(tmp_path: Path, path: str) -> None:
    root = made(tmp_path, "file")
    before = listing(root)
    with pytest.raises(hutch.ConfigError, match="the name of one of another collection's"):
        hutch.open(root, collections={"notes": {"path": path}})
    assert listing(root) == before
    with pytest.raises(hutch.ConfigError, match="holds the records of collection 'posts'"):
        hutch.open(root, collections={"notes": {"path": "posts/archive"}})  # no nesting
    with hutch.open(root, collections={"notes": {"path": "archive/notes"}}) as db:
        db.store.set_row("notes", "a", {"title": "a note"})
    with hutch.open(root) as db:
        assert db.store.get_table("notes") == {"a": {"title": "a note"}}
        assert db.store.get_row_ids("posts") == ["p1"]


# -- 8. the wrong backend on a folder ----------------------------------------------------------


@pytest.mark.parametrize(
    ("made_with", "opened_with"),
    [
        ("jsonl", "file"),
        ("jsonl", "bare"),
        ("file", "jsonl"),
        ("file", "sqlite"),
        ("jsonl", "sqlite"),
        ("sqlite", "file"),
        ("sqlite", "jsonl"),
        ("sqlite", "bare"),
    ],
)
def test_another_backends_store_is_refused_naming_its_url_and_nothing_is_written(
    tmp_path: Path, made_with: str, opened_with: str
) -> None:
    if made_with == "sqlite":
        root = tmp_path / "data"
        with hutch.open(f"sqlite:///{root}") as db:
            db.store.set_row("posts", "p1", {"title": "one"})
        right = f"sqlite:///{root}"
    else:
        root = made(tmp_path, made_with)
        right = f"{made_with}://{root}"
    before = listing(tmp_path)
    wrong = {"bare": str(root), "sqlite": f"sqlite:///{root}"}.get(
        opened_with, f"{opened_with}://{root}"
    )
    with pytest.raises(hutch.ConfigError) as opening:
        hutch.open(wrong)
    assert right in str(opening.value)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
@pytest.mark.parametrize("number", ['"1"', "0", "-1", "true", "1.5", "null"])
def test_a_manifest_format_that_is_no_format_is_refused_clearly(
    tmp_path: Path, scheme: str, number: str
) -> None:
    root = made(tmp_path, scheme)
    manifest = (root / "hutch.json").read_text()
    (root / "hutch.json").write_text(re.sub(r'"format": \d+', f'"format": {number}', manifest))
    with pytest.raises(hutch.CorruptData, match="no format any hutch wrote"):
        hutch.open(url(scheme, root))


# -- 9. one nesting limit, everywhere ----------------------------------------------------------


def nested(depth: int) -> Any:
    """A list ``depth`` lists deep: ``nested(1) == []``."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("scheme", ["memory", "file", "jsonl", "sqlite"])
def test_every_backend_takes_values_to_the_limit_and_refuses_deeper(
    tmp_path: Path, scheme: str
) -> None:
    where = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'data.db'}"}
    with hutch.open(where.get(scheme, f"{scheme}://{tmp_path / 'data'}")) as db:
        db.store.set_row("t", "deepest", {"v": nested(MAX_NESTING)})
        for depth in (MAX_NESTING + 1, 254, 255, 600, 5000):
            with pytest.raises(hutch.InvalidValue, match=f"more than {MAX_NESTING} deep"):
                db.store.set_row("t", "deeper", {"v": nested(depth)})
            with pytest.raises(hutch.InvalidValue, match=f"more than {MAX_NESTING} deep"):
                db.store.set_value("deeper", {"k": nested(depth)})
        assert db.store.get_row("t", "deepest") == {"v": nested(MAX_NESTING)}
    assert MAX_NESTING <= 254


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 300, 5000])
def test_a_hand_edited_record_nested_too_deep_is_corrupt_and_quarantinable(
    tmp_path: Path, depth: int
) -> None:
    root = made(tmp_path, "file")
    text = "[" * (depth - 1) + "[]" + "]" * (depth - 1)
    (root / "posts" / "p1.json").write_text(f'{{"id": "p1", "v": {text}}}')
    with pytest.raises(hutch.CorruptData, match=r"p1\.json"):
        hutch.open(root)
    with hutch.open(root, on_corrupt="quarantine") as db:
        assert db.store.get_row("posts", "p1") is None


def test_a_sqlite_cell_nested_too_deep_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with hutch.open(f"sqlite:///{path}") as db:
        db.store.set_row("posts", "p1", {"v": [1]})
    with sqlite3.connect(path) as other:
        other.execute("UPDATE posts SET v = ?", ("[" * 300 + "]" * 300,))
    with pytest.raises(hutch.CorruptData, match="p1"):
        hutch.open(f"sqlite:///{path}")


# -- 10. oversized files -----------------------------------------------------------------------

_UNDER_A_LIMIT = """
import resource, sys
import hutch
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
kwargs = {"collections": {"posts": {"indexed": ["title"]}}}
try:
    with hutch.open(sys.argv[1], **kwargs) as db:
        print("opened", db.store.get_row_ids("posts"))
except hutch.HutchError as error:
    print("refused", type(error).__name__, error)
"""


def sparse(path: Path, size: int = 2 << 30) -> None:
    """A file of ``size`` bytes that takes no room: what a ``truncate`` makes."""
    with path.open("wb") as file:
        file.truncate(size)


@pytest.mark.parametrize(
    ("scheme", "place", "outcome"),
    [
        ("file", "posts/indices/title.jsonl", "opened ['p1']"),
        ("file", "posts/p1.json", "refused CorruptData"),
        ("file", "_values.json", "refused CorruptData"),
        ("file", "hutch.json", "refused"),
        ("file", "_wal/00000009.log", "opened ['p1']"),
        ("jsonl", "indices/posts/title.jsonl", "opened ['p1']"),
        ("jsonl", "posts.jsonl", "refused CorruptData"),
        ("jsonl", "_commits.jsonl", "refused CorruptData"),
        ("jsonl", "hutch.json", "refused"),
    ],
)
def test_a_huge_sparse_file_is_never_read_whole(
    tmp_path: Path, scheme: str, place: str, outcome: str
) -> None:
    collections = {"posts": {"indexed": ["title"]}}
    root = made(tmp_path, scheme, collections=collections)
    sparse(root / place)
    opened = subprocess.run(
        [sys.executable, "-c", _UNDER_A_LIMIT, url(scheme, root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert opened.stdout.startswith(outcome), opened.stdout
    if outcome.startswith("refused"):
        assert place.rsplit("/", 1)[-1] in opened.stdout


@pytest.mark.parametrize("name", ["_commits.jsonl", "posts.jsonl"])
def test_a_log_is_judged_by_its_head_but_never_taken_for_a_torn_creation_when_longer(
    tmp_path: Path, name: str
) -> None:
    """Zeros at the start of a log longer than its header are damage, not a creation a crash
    cut short: the file is kept, and the error names it."""
    root = made(tmp_path, "jsonl")
    damaged = b"\0" * 8192 + (root / name).read_bytes()
    (root / name).write_bytes(damaged)
    with pytest.raises(hutch.CorruptData, match=name):
        hutch.open(url("jsonl", root))
    assert (root / name).read_bytes() == damaged
