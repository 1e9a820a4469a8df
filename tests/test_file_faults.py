"""The file backend under real faults: a full disk, denied permissions, a read-only file system,
hostile paths and damaged files.

Nothing here mocks the file system: the disk-full and read-only cases mount real tmpfs file
systems (so they need root, and skip without it), and the permission cases run in a child
process that drops from root to ``nobody``, since root bypasses permissions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import logfiles
import pytest

import hutch
from hutch.backends.file.persister import FilePersister

NOBODY = 65534
KIB = 1024
BIG = 64 * KIB
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="mounting file systems and dropping to another user need root"
)

Rows = dict[str, dict[str, Any]]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (links not followed): file content, or None for folders."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = os.readlink(path).encode()
        elif path.is_dir():
            found[name] = None
        else:
            found[name] = path.read_bytes()
    return found


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


class Harness:
    """Mounts and databases of one test, undone in teardown even when the test fails."""

    def __init__(self) -> None:
        self.mounts: list[Path] = []
        self.databases: list[hutch.Database] = []

    def tmpfs(self, where: Path, size: str) -> Path:
        if not IS_ROOT:
            pytest.skip("mounting a tmpfs needs root")
        where.mkdir(parents=True, exist_ok=True)
        done = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs at {where}: {done.stderr.strip()}")
        self.mounts.append(where)
        return where

    def remount(self, where: Path, mode: str) -> None:
        done = _run("mount", "-o", f"remount,{mode}", str(where))
        assert done.returncode == 0, f"remount,{mode} {where}: {done.stderr}"

    def open(self, root: Path, **settings: Any) -> hutch.Database:
        db = hutch.open(root, **settings)
        self.databases.append(db)
        return db

    def close(self) -> None:
        try:
            for db in self.databases:
                with contextlib.suppress(hutch.HutchError):
                    db.close()
        finally:
            for where in reversed(self.mounts):
                if _run("umount", str(where)).returncode != 0:
                    _run("umount", "-l", str(where))


@pytest.fixture
def harness() -> Iterator[Harness]:
    undo = Harness()
    try:
        yield undo
    finally:
        undo.close()


class Watch(logging.Handler):
    """Sets ``seen`` when the file backend logs a message containing ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.needle in message:
            self.messages.append(message)
            self.seen.set()


@pytest.fixture
def watch() -> Iterator[Callable[[str], Watch]]:
    logger = logging.getLogger("hutch.backends.file")
    added: list[Watch] = []

    def make(needle: str) -> Watch:
        handler = Watch(needle)
        logger.addHandler(handler)
        added.append(handler)
        return handler

    try:
        yield make
    finally:
        for handler in added:
            logger.removeHandler(handler)


def _fill(db: hutch.Database, acked: Rows, limit: int = 400) -> tuple[str, hutch.DiskFull]:
    """Commit rows (every other one big) until the disk is full; return the refused row id."""
    for i in range(len(acked), limit):
        row_id = f"r{i:03d}"
        row = {"size": "big" if i % 2 else "small", "blob": "x" * (BIG if i % 2 else 16)}
        try:
            db.store.set_row("items", row_id, row)
        except hutch.DiskFull as error:
            return row_id, error
        acked[row_id] = row
    pytest.fail(f"{limit} commits never filled the disk")


def _reopened(root: Path) -> tuple[Rows, dict[str, Any]]:
    with hutch.open(root) as db:
        return db.store.get_table("items"), db.store.get_values()


# -- a full disk -------------------------------------------------------------------------------


def test_disk_full_commit_rolls_back_and_the_store_recovers(
    harness: Harness, tmp_path: Path
) -> None:
    disk = harness.tmpfs(tmp_path / "small", "1m")
    filler = disk / "filler"
    filler.write_bytes(b"\1" * (704 * KIB))
    root = disk / "db"
    db = harness.open(root, checkpoint_interval=3600)
    db.indexes.define("by_size", "items", "size")
    heard: list[hutch.Changes] = []
    db.store.add_listener(heard.append)
    acked: Rows = {}

    refused, error = _fill(db, acked)

    assert isinstance(error, hutch.StorageError)
    assert "full" in str(error)
    assert str(root) in str(error)
    assert not db.store.has_row("items", refused)
    assert db.store.get_table("items") == acked
    bigs = sorted(r for r, row in acked.items() if row["size"] == "big")
    smalls = sorted(r for r, row in acked.items() if row["size"] == "small")
    assert sorted(db.indexes.slice_row_ids("by_size", "big")) == bigs
    assert sorted(db.indexes.slice_row_ids("by_size", "small")) == smalls
    assert len(heard) == len(acked)
    assert _temp_files(disk) == []
    logged = [c for g in logfiles.generations(root) for c in logfiles.changes(g)]
    assert len(logged) == len(acked)
    assert logfiles.everything(root).endswith(b"\n")

    first = smalls[0]

    def overflowing_transaction() -> None:
        with db.store.transaction():
            db.store.set_cell("items", first, "size", "changed")
            db.store.set_value("note", "never")
            db.store.set_row("items", "extra", {"size": "big", "blob": "y" * BIG})

    with pytest.raises(hutch.DiskFull):
        overflowing_transaction()
    assert db.store.get_row("items", first) == acked[first]
    assert not db.store.has_row("items", "extra")
    assert db.store.get_values() == {}
    assert db.indexes.slice_row_ids("by_size", "changed") == []
    assert sorted(db.indexes.slice_row_ids("by_size", "small")) == smalls
    assert len(heard) == len(acked)

    try:
        db.store.del_row("items", bigs[0])
    except hutch.DiskFull:
        assert db.store.get_row("items", bigs[0]) == acked[bigs[0]]
    else:
        del acked[bigs[0]]
    filler.unlink()
    db.store.set_row("items", "after", {"size": "big", "blob": "z" * BIG})
    acked["after"] = {"size": "big", "blob": "z" * BIG}
    db.store.set_value("note", "kept")
    assert db.store.get_table("items") == acked
    assert "after" in db.indexes.slice_row_ids("by_size", "big")
    assert _temp_files(disk) == []

    db.close()
    assert _temp_files(disk) == []
    assert _reopened(root) == (acked, {"note": "kept"})


def test_disk_full_at_close_keeps_acknowledged_commits(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing on a full disk cannot write the record files; every commit is in the log, so
    close() warns (and does not raise), and the next open reads them from there."""
    disk = harness.tmpfs(tmp_path / "small", "1m")
    filler = disk / "filler"
    filler.write_bytes(b"\1" * (704 * KIB))
    root = disk / "db"
    db = harness.open(root, checkpoint_interval=3600)
    acked: Rows = {}
    _fill(db, acked)

    db.close()
    warned = [r.getMessage() for r in caplog.records if "without writing its record" in r.message]
    assert len(warned) == 1
    assert str(root) in warned[0]
    assert "full" in warned[0]
    assert db.closed
    assert _temp_files(disk) == []
    log = logfiles.everything(root)
    for row_id in acked:
        assert f'"{row_id}":'.encode() in log

    reader = hutch.open(root)  # still full: it opens from its log, and checkpoints later
    assert {row_id: reader.store.get_row("items", row_id) for row_id in acked} == acked
    reader.close()  # (warns again)
    assert _temp_files(disk) == []
    for row_id in acked:
        assert f'"{row_id}":'.encode() in logfiles.everything(root)

    filler.unlink()
    assert _reopened(root) == (acked, {})
    assert _temp_files(disk) == []


def test_disk_full_in_background_checkpoint_keeps_acknowledged_commits(
    harness: Harness, tmp_path: Path, watch: Callable[[str], Watch]
) -> None:
    disk = harness.tmpfs(tmp_path / "small", "1m")
    filler = disk / "filler"
    filler.write_bytes(b"\1" * (640 * KIB))
    root = disk / "db"
    failed = watch("a background checkpoint of")
    db = harness.open(root, checkpoint_interval=0.05)
    acked: Rows = {f"b{i}": {"blob": str(i) * BIG} for i in range(4)}
    with db.store.transaction():
        for row_id, row in acked.items():
            db.store.set_row("items", row_id, row)

    assert failed.seen.wait(60), "the background checkpoint never ran"
    assert "full" in failed.messages[0]
    assert db.store.get_table("items") == acked
    db.store.set_row("items", "later", {"blob": "small"})  # upkeep fails no commit
    acked["later"] = {"blob": "small"}
    db.close()  # warns: the log holds every commit
    log = logfiles.everything(root)
    for row_id in acked:
        assert f'"{row_id}":'.encode() in log

    filler.unlink()
    assert _temp_files(disk) == []
    assert _reopened(root) == (acked, {})


# -- a read-only file system -------------------------------------------------------------------


def test_open_on_a_read_only_file_system_raises_read_only_storage(
    harness: Harness, tmp_path: Path
) -> None:
    disk = harness.tmpfs(tmp_path / "ro", "1m")
    root = disk / "db"
    with hutch.open(root) as db:
        db.store.set_row("items", "a", {"k": 1})
    before = _listing(disk)
    harness.remount(disk, "ro")

    with pytest.raises(hutch.ReadOnlyStorage, match="read-only") as opening:
        hutch.open(root)
    assert str(root) in str(opening.value)
    with pytest.raises(hutch.ReadOnlyStorage, match="read-only") as creating:
        hutch.open(disk / "new")
    assert str(disk / "new") in str(creating.value)
    assert _listing(disk) == before

    harness.remount(disk, "rw")
    assert _reopened(root) == ({"a": {"k": 1}}, {})


def test_collection_folders_remounted_read_only_while_open(
    harness: Harness, tmp_path: Path
) -> None:
    disk = harness.tmpfs(tmp_path / "main", "2m")
    root = disk / "db"
    nested = harness.tmpfs(root / "ro", "1m")
    collections = {
        "items": {"indexed": ["k"], "path": "ro/items"},
        "direct": {"wal": False, "path": "ro/direct"},
    }
    with hutch.open(root, collections=collections) as db:
        db.store.set_row("items", "a", {"k": 1})
        db.store.set_row("direct", "d1", {"k": 1})
    db = harness.open(root, collections=collections, checkpoint_interval=3600)
    harness.remount(nested, "ro")

    db.store.set_row("items", "b", {"k": 2})
    db.store.set_row("direct", "d2", {"k": 2})
    with pytest.raises(hutch.ReadOnlyStorage, match="read-only"):
        db.reindex()
    assert db.store.get_table("items") == {"a": {"k": 1}, "b": {"k": 2}}
    harness.remount(nested, "rw")
    db.store.set_row("items", "c", {"k": 3})
    db.reindex()
    assert (nested / "items" / "indices" / "k.jsonl").read_text().count("\n") == 3

    harness.remount(nested, "ro")
    db.close()  # (warns: the closing checkpoint is upkeep, and the log holds every commit)
    assert db.closed
    assert _temp_files(disk) == []
    harness.remount(nested, "rw")

    with hutch.open(root, collections=collections) as again:
        assert again.store.get_table("items") == {"a": {"k": 1}, "b": {"k": 2}, "c": {"k": 3}}
        assert again.store.get_table("direct") == {"d1": {"k": 1}, "d2": {"k": 2}}
    assert json.loads((nested / "direct" / "d2.json").read_text()) == {"id": "d2", "k": 2}


# -- denied permissions (a child process that drops from root to nobody) -----------------------

CHILD = r"""
import json, os, sys, tempfile
import hutch

warm = tempfile.mkdtemp()
with hutch.open(warm + "/w") as db:
    db.store.set_row("t", "r", {"a": 1})
    db.reindex()
try:
    db.store.set_row("t", "../r", {})
except hutch.HutchError:
    pass
os.setgroups([])
os.setgid(NOBODY)
os.setuid(NOBODY)
assert os.geteuid() == NOBODY and os.getegid() == NOBODY

def attempt(action):
    try:
        action()
    except Exception as error:
        return [type(error).__name__, str(error)]
    return "ok"

def rows(path, **settings):
    with hutch.open(path, **settings) as db:
        return db.store.get_table("items")

out = {}
SCENARIO
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder under /tmp that ``nobody`` can reach (pytest's tmp_path is private to root)."""
    if not IS_ROOT:
        pytest.skip("checking permissions needs root, to drop to the user nobody")
    base = Path(tempfile.mkdtemp(prefix="hutch-faults-", dir="/tmp"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base)


def _as_nobody(scenario: str, base: Path) -> dict[str, Any]:
    script = CHILD.replace("SCENARIO", scenario)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=base,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@needs_root
def test_opening_a_folder_the_user_may_not_write_raises_permission_error(
    shared_dir: Path,
) -> None:
    locked = shared_dir / "locked"
    with hutch.open(locked) as db:
        db.store.set_row("items", "a", {"k": 1})
    before = _listing(locked)
    mine = shared_dir / "mine"
    with hutch.open(mine) as db:
        db.store.set_row("items", "a", {"k": 1})
        db.store.set_row("items", "secret", {"k": 2})
    for path in [mine, *mine.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    secret = mine / "items" / "secret.json"
    os.chown(secret, 0, 0)
    secret.chmod(0o600)

    out = _as_nobody(
        f"out['locked'] = attempt(lambda: hutch.open({str(locked)!r}))\n"
        f"out['new'] = attempt(lambda: hutch.open({str(locked / 'new')!r}))\n"
        f"out['record'] = attempt(lambda: hutch.open({str(mine)!r}))\n",
        shared_dir,
    )

    kind, message = out["locked"]
    assert kind == "StoragePermissionError"
    assert str(locked) in message
    assert "permission denied" in message
    kind, message = out["new"]
    assert kind == "StoragePermissionError"
    assert str(locked / "new") in message
    kind, message = out["record"]
    assert kind == "StoragePermissionError"
    assert str(secret) in message
    assert _listing(locked) == before
    assert issubclass(hutch.StoragePermissionError, hutch.StorageError)


@needs_root
def test_collection_folder_made_read_only_after_open(shared_dir: Path) -> None:
    base = shared_dir / "owned"
    base.mkdir()
    os.chown(base, NOBODY, NOBODY)
    store = base / "store"
    scenario = f"""
store = {str(store)!r}
settings = {{"collections": {{"items": {{"indexed": ["k"]}}}}, "checkpoint_interval": 3600}}
with hutch.open(store, **settings) as db:
    db.store.set_row("items", "a", {{"k": 1}})
db = hutch.open(store, **settings)
for folder in (store + "/items/indices", store + "/items"):
    os.chmod(folder, 0o555)
out["commit"] = attempt(lambda: db.store.set_row("items", "b", {{"k": 2}}))
out["memory"] = db.store.get_table("items")
out["reindex"] = attempt(db.reindex)
out["close"] = attempt(db.close)
for folder in (store + "/items", store + "/items/indices"):
    os.chmod(folder, 0o755)
out["reopened"] = rows(store, **settings)
with hutch.open(store, **settings) as db:
    db.store.set_row("items", "c", {{"k": 3}})
out["usable"] = rows(store, **settings)
"""
    out = _as_nobody(scenario, shared_dir)

    assert out["commit"] == "ok"
    assert out["memory"] == {"a": {"k": 1}, "b": {"k": 2}}
    kind, message = out["reindex"]
    assert kind == "StoragePermissionError", message
    assert str(store) in message
    assert "permission denied" in message
    assert out["close"] == "ok"  # (warns: the log holds every commit, the next open writes)
    assert out["reopened"] == {"a": {"k": 1}, "b": {"k": 2}}
    assert out["usable"] == {"a": {"k": 1}, "b": {"k": 2}, "c": {"k": 3}}


# -- hostile paths -----------------------------------------------------------------------------

HOSTILE_IDS = ["../x", "/etc/passwd", "a/b", ".hidden", "", "..", "a\\b", "x\x00y"]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_ids_raise_invalid_id_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "db"
    with hutch.open(root, checkpoint_interval=3600) as db:
        db.store.set_row("items", "ok", {"k": 1})
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)
        parent_before = sorted(os.listdir(tmp_path))
        root_before = _listing(root)

        with pytest.raises(hutch.InvalidId):
            db.store.set_row("items", bad, {"k": 2})
        with pytest.raises(hutch.InvalidId):
            db.store.set_partial_row("items", bad, {"k": 2})
        with pytest.raises(hutch.InvalidId):
            db.store.set_cell("items", bad, "k", 2)
        with pytest.raises(hutch.InvalidId):
            db.store.set_row(bad, "r", {"k": 2})
        with pytest.raises(hutch.InvalidId):
            db.store.del_row("items", bad)

        assert sorted(os.listdir(tmp_path)) == parent_before
        assert _listing(root) == root_before
        assert heard == []
        assert db.store.get_table_ids() == ["items"]
        assert db.store.get_row_ids("items") == ["ok"]
    assert sorted(os.listdir(tmp_path)) == ["db"]


@pytest.mark.parametrize(
    "path", ["../outside", "/tmp/outside", "a/../../outside", "./x", "_wal", "a//b", ".."]
)
def test_collection_path_outside_the_root_is_a_config_error(tmp_path: Path, path: str) -> None:
    with pytest.raises(hutch.ConfigError, match="path"):
        hutch.open(tmp_path / "db", collections={"x": {"path": path}})
    assert sorted(os.listdir(tmp_path)) == []


HOSTILE_SETTINGS: list[dict[str, Any]] = [
    {"../x": {}},
    {"_wal": {}},
    {"a/b": {}},
    {"x": {"indexed": ["../k"]}},
    {"x": {"indexed": ["/etc/passwd"]}},
    {"x": {"indexed": [".k"]}},
]


@pytest.mark.parametrize("collections", HOSTILE_SETTINGS)
def test_hostile_collection_names_and_fields_are_config_errors(
    tmp_path: Path, collections: dict[str, Any]
) -> None:
    with pytest.raises(hutch.ConfigError):
        hutch.open(tmp_path / "db", collections=collections)
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize(
    "collections",
    [
        {"x": {"path": "../outside", "indexed": [], "wal": None}},
        {"x": {"path": "/tmp/outside", "indexed": [], "wal": None}},
        {"../x": {"path": None, "indexed": [], "wal": None}},
        {"x": {"path": None, "indexed": ["../k"], "wal": None}},
    ],
)
def test_hostile_settings_in_a_hand_edited_manifest_are_refused(
    tmp_path: Path, collections: dict[str, Any]
) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}})
    (root / "hutch.json").write_text(json.dumps({"format": 1, "collections": collections}))
    before = _listing(tmp_path)

    with pytest.raises((hutch.ConfigError, hutch.CorruptData)):
        hutch.open(root)
    assert _listing(tmp_path) == before


def _symlinked_collection(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes | None]]:
    root = tmp_path / "db"
    with hutch.open(root) as db:
        db.store.set_row("other", "o1", {"k": 1})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "planted.json").write_text('{"id": "planted", "k": 666}\n')
    (root / "items").symlink_to(outside, target_is_directory=True)
    return root, outside, _listing(outside)


def test_symlinked_collection_folder_named_in_settings_is_refused_at_open(
    tmp_path: Path,
) -> None:
    root, outside, before = _symlinked_collection(tmp_path)
    with pytest.raises(hutch.StorageError) as opening:
        hutch.open(root, collections={"items": {"indexed": ["k"]}})
    assert str(root / "items") in str(opening.value)
    assert _listing(outside) == before


def test_symlinked_collection_folder_is_never_read_or_written_through(
    harness: Harness, tmp_path: Path
) -> None:
    root, outside, before = _symlinked_collection(tmp_path)
    with pytest.raises(hutch.StorageError, match="symbolic link") as opening:
        harness.open(root, checkpoint_interval=3600)
    assert str(root / "items") in str(opening.value)
    assert _listing(outside) == before

    (root / "items").unlink()
    with hutch.open(root) as db:
        assert db.store.get_table("other") == {"o1": {"k": 1}}
        db.store.set_row("items", "a", {"k": 1})
    with hutch.open(root) as db:
        assert db.store.get_table("items") == {"a": {"k": 1}}
    assert _listing(outside) == before


@pytest.mark.parametrize("link", ["items/a.json", "_values.json", "hutch.json"])
def test_symlinked_file_is_not_read_through(tmp_path: Path, link: str) -> None:
    root = tmp_path / "db"
    collections = {"items": {"indexed": ["k"]}}
    with hutch.open(root, collections=collections) as db:
        db.store.set_row("items", "a", {"k": 1})
        db.store.set_value("v", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    shutil.move(root / link, target)
    (root / link).symlink_to(target)
    before = _listing(outside)

    with pytest.raises(hutch.StorageError, match="symbolic link") as opening:
        hutch.open(root, collections=collections)
    assert str(root / link) in str(opening.value)
    assert _listing(outside) == before


_INDEXED = {"items": {"indexed": ["k"]}}


def _indexed_store_beside_outside(tmp_path: Path) -> tuple[Path, Path]:
    """A closed store with an indexed collection, and an empty folder beside it."""
    root = tmp_path / "db"
    with hutch.open(root, collections=_INDEXED) as db:
        db.store.set_row("items", "a", {"k": 1})
    outside = tmp_path / "outside"
    outside.mkdir()
    return root, outside


@pytest.mark.parametrize("link", ["_wal", "hutch.lock"])
def test_other_symlinks_inside_the_root_are_not_used(tmp_path: Path, link: str) -> None:
    root, outside = _indexed_store_beside_outside(tmp_path)
    target = outside / "target"
    shutil.move(root / link, target)
    (root / link).symlink_to(target, target_is_directory=target.is_dir())
    before = _listing(outside)

    with pytest.raises(hutch.StorageError) as opening:
        hutch.open(root, collections=_INDEXED)
    assert str(root) in str(opening.value)
    assert _listing(outside) == before


def test_a_symlinked_index_file_is_replaced_never_followed(tmp_path: Path) -> None:
    """Index files are derived: a link in an index file's place is replaced by the index,
    and what it pointed at stays as it was."""
    root, outside = _indexed_store_beside_outside(tmp_path)
    index = root / "items" / "indices" / "k.jsonl"
    shutil.move(index, outside / "target")
    index.symlink_to(outside / "target")
    before = _listing(outside)

    with hutch.open(root, collections=_INDEXED) as db:
        assert db.store.get_row("items", "a") == {"k": 1}
    assert not index.is_symlink()
    assert index.read_bytes() == b'[1,"a"]\n'
    assert _listing(outside) == before


# -- damaged files -----------------------------------------------------------------------------


def _store_with(root: Path, rows: Rows) -> None:
    with hutch.open(root) as db, db.store.transaction():
        for row_id, row in rows.items():
            db.store.set_row("items", row_id, row)


def test_malformed_record_raises_corrupt_data_naming_file_line_and_column(
    tmp_path: Path,
) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}, "b": {"k": 2}})
    bad = root / "items" / "b.json"
    bad.write_text('{\n  "id": "b",\n  "k": 2,,\n}\n')

    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(root)
    message = str(opening.value)
    assert str(bad) in message
    assert "line 3" in message
    assert "column" in message
    assert isinstance(opening.value, hutch.StorageError)
    assert bad.read_text() == '{\n  "id": "b",\n  "k": 2,,\n}\n'


@pytest.mark.parametrize("depth", [101, 1000, 100_000])
@pytest.mark.parametrize("where", ["record", "values"])
def test_a_value_nested_too_deep_is_corrupt_data_naming_the_file(
    tmp_path: Path, where: str, depth: int
) -> None:
    """Not a RecursionError (nor a StorageError that names no file); a 19-digit number inside
    sends the text through the standard library's parser too."""
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}})
    deep = b"[" * depth + b"1234567890123456789" + b"]" * depth
    bad = root / "items" / "a.json" if where == "record" else root / "_values.json"
    bad.write_bytes(b'{"id": "a", "k": %s}' % deep if where == "record" else b'{"k": %s}' % deep)
    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(root)
    assert str(bad) in str(opening.value)


def test_record_whose_id_disagrees_with_its_file_name_is_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}, "b": {"k": 2}})
    bad = root / "items" / "b.json"
    bad.write_text('{\n  "id": "a",\n  "k": 2\n}\n')

    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(root)
    assert str(bad) in str(opening.value)
    assert "'a'" in str(opening.value)
    assert "'b'" in str(opening.value)


def test_quarantine_moves_damaged_files_aside_and_opens_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}, "b": {"k": 2}, "c": {"k": 3}, "d": {"k": 4}})
    damaged = {
        "b.json": '{"id": "b", "k": ',
        "c.json": '{"id": "zzz", "k": 3}\n',
        "d.json": "[1, 2]\n",
    }
    for name, text in damaged.items():
        (root / "items" / name).write_text(text)

    with hutch.open(root, on_corrupt="quarantine") as db:
        assert db.store.get_table("items") == {"a": {"k": 1}}
        backend = db.backend
        assert isinstance(backend, FilePersister)
        moved = root / "_quarantine" / "items"
        assert sorted(backend.quarantined) == [moved / name for name in sorted(damaged)]
        db.store.set_row("items", "e", {"k": 5})
    for name, text in damaged.items():
        assert (moved / name).read_text() == text
        assert not (root / "items" / name).exists()

    with hutch.open(root) as db:
        assert db.store.get_table("items") == {"a": {"k": 1}, "e": {"k": 5}}
        assert db.store.get_table_ids() == ["items"]


def test_malformed_values_file_is_corrupt_or_quarantined(tmp_path: Path) -> None:
    root = tmp_path / "db"
    with hutch.open(root) as db:
        db.store.set_value("v", 1)
        db.store.set_row("items", "a", {"k": 1})
    values = root / "_values.json"
    values.write_text('{"v": \n')

    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(root)
    assert str(values) in str(opening.value)
    with hutch.open(root, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {}
        assert db.store.get_table("items") == {"a": {"k": 1}}
        backend = db.backend
        assert isinstance(backend, FilePersister)
        assert len(backend.quarantined) == 1
        assert backend.quarantined[0].parent.parent == root / "_quarantine"
        assert backend.quarantined[0].read_text() == '{"v": \n'


def test_leftover_temp_files_are_removed_at_open_and_ignored(tmp_path: Path) -> None:
    root = tmp_path / "db"
    with hutch.open(root, collections={"items": {"indexed": ["k"]}}) as db:
        db.store.set_row("items", "a", {"k": 1})
        db.store.set_value("v", 1)
    leftovers = {
        "items/.a.json.abcd1234.tmp": '{"id": "a", "k": 999}\n',
        "items/.new.json.0123abcd.tmp": '{"id": "new", "k": 5}\n',
        "items/.broken.json.deadbeef.tmp": '{"id": "bro',
        ".hutch.json.abcd1234.tmp": '{"format": 99}',
        "._values.json.abcd1234.tmp": '{"v": 999}',
        "items/indices/.k.jsonl.abcd1234.tmp": '[999, "a"]\n',
    }
    for name, text in leftovers.items():
        (root / name).write_text(text)

    with hutch.open(root, collections={"items": {"indexed": ["k"]}}) as db:
        assert db.store.get_table("items") == {"a": {"k": 1}}
        assert db.store.get_values() == {"v": 1}
        assert [p.name for p in (root / "items").iterdir() if p.name.endswith(".tmp")] == []
    assert (root / "items" / "a.json").read_text() == '{\n  "id": "a",\n  "k": 1\n}\n'
    assert (root / "items" / "indices" / "k.jsonl").read_text() == '[1,"a"]\n'


def test_manifest_with_a_newer_format_raises_unsupported_format(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}})
    manifest = root / "hutch.json"
    document = json.loads(manifest.read_text())
    document["format"] += 1
    manifest.write_text(json.dumps(document))
    before = _listing(root)

    with pytest.raises(hutch.UnsupportedFormat, match="upgrade") as opening:
        hutch.open(root)
    assert str(manifest) in str(opening.value)
    assert isinstance(opening.value, hutch.StorageError)
    assert _listing(root) == before


def test_malformed_manifest_is_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _store_with(root, {"a": {"k": 1}})
    manifest = root / "hutch.json"
    manifest.write_text('{"format": 1,\n  "collections": }\n')

    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(root)
    assert str(manifest) in str(opening.value)
    assert "line 2" in str(opening.value)
