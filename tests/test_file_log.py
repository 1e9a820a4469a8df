"""The file log and format: damage is never silent, strays hide nothing, old folders upgrade.

Each test here is a finding of a review, kept as its regression test: a damaged
line in the middle of the log is damage (never a tail to cut), a stray file in
the log folder hides no commit, a torn tail is cut with a warning that says
where, a folder of format 1 is upgraded (and not while an older process holds
it), and no backend reaches the disk except through ``fsio``.
"""

from __future__ import annotations

import ast
import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import logfiles
import pytest
from children import WAIT

import hutch
from hutch.backends.file import FilePersister
from hutch.backends.file.folder import is_not_local
from hutch.backends.file.fsio import file_system_type

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "data"

#: A writer that commits ``n`` transactions and dies without closing: the log keeps them all.
CRASHING_WRITER = """\
import os, sys
import hutch
folder, n = sys.argv[1], int(sys.argv[2])
db = hutch.open(folder, checkpoint_interval=3600)
for i in range(n):
    with db.store.transaction():
        db.store.set_row("rows", f"r{i}", {"i": i})
        db.store.set_value("counter", i + 1)
os._exit(0)
"""


def crashed_writer(folder: Path, transactions: int) -> None:
    subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(folder), str(transactions)],
        check=True,
        timeout=WAIT,
    )


def newest(folder: Path) -> Path:
    return logfiles.generations(folder)[-1]


def line_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets = [0]
    for position, byte in enumerate(data):
        if byte == ord("\n") and position + 1 < len(data):
            offsets.append(position + 1)
    return offsets


# -- damage and torn tails -----------------------------------------------------------------------


def test_a_damaged_line_in_the_middle_of_the_log_is_corrupt_data_and_nothing_is_cut(
    tmp_path: Path,
) -> None:
    """A flipped byte in transaction 50 of 100 once silently dropped the 50 after it."""
    folder = tmp_path / "data"
    crashed_writer(folder, 100)
    log = newest(folder)
    transactions = [n for n, line in enumerate(logfiles.lines(log), 1) if line.get("t")]
    line = transactions[49]
    offset = line_offsets(log)[line - 1] + 20
    data = bytearray(log.read_bytes())
    data[offset] ^= 0x01
    log.write_bytes(bytes(data))

    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(folder)
    message = str(opening.value)
    assert str(log) in message
    assert f"line {line} " in message
    assert "acknowledged" in message
    assert log.read_bytes() == bytes(data)  # nothing cut, nothing rewritten


def test_quarantine_moves_a_damaged_log_aside_and_opens_with_what_came_before(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    crashed_writer(folder, 20)
    log = newest(folder)
    transactions = [n for n, line in enumerate(logfiles.lines(log), 1) if line.get("t")]
    offset = line_offsets(log)[transactions[9] - 1] + 20
    data = bytearray(log.read_bytes())
    data[offset] ^= 0x01
    log.write_bytes(bytes(data))

    with hutch.open(folder, on_corrupt="quarantine") as db:
        assert db.store.get_value("counter") == 9  # the ten before the damage, less one
        moved = db.backend.quarantined  # type: ignore[attr-defined]
        assert [p.name for p in moved] == [log.name]
        assert moved[0].read_bytes() == bytes(data)  # kept whole, for a person to repair
        db.store.set_value("counter", 100)
    with hutch.open(folder) as db:
        assert db.store.get_value("counter") == 100


def test_a_torn_tail_is_cut_with_a_warning_that_says_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "data"
    crashed_writer(folder, 10)
    log = newest(folder)
    whole = log.read_bytes()
    with log.open("ab") as tail:
        tail.write(b'1234abcd {"s": 11, "p": 10, "c": 1, "t": {"rows": {"r10"')  # no newline
    with hutch.open(folder) as db:
        assert db.store.get_value("counter") == 10
        assert db.store.get_row_count("rows") == 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(log) in w and f"at byte {len(whole)}" in w for w in warnings), warnings


def test_a_bad_last_line_after_durable_ones_is_cut_but_a_bad_line_before_durable_ones_is_not(
    tmp_path: Path,
) -> None:
    """Zeros where the last transaction was: never acknowledged, so cut. The same zeros one
    line earlier, before a line that says it followed a durable one: damage."""
    folder = tmp_path / "data"
    crashed_writer(folder, 5)
    log = newest(folder)
    offsets = line_offsets(log)
    data = log.read_bytes()

    last = data[: offsets[-1]] + b"\0" * (len(data) - offsets[-1])
    log.write_bytes(last)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with hutch.open(folder) as db:
        assert db.store.get_value("counter") == 4

    log = newest(copy)
    middle = data[: offsets[-2]] + b"\0" * (offsets[-1] - 1 - offsets[-2]) + data[offsets[-1] - 1 :]
    log.write_bytes(middle)
    with pytest.raises(hutch.CorruptData, match="damaged"):
        hutch.open(copy)


# -- strays in the log folder ----------------------------------------------------------------------


@pytest.mark.parametrize("stray", [b"", b"not a log\n", b'00000000 {"hutch": "wal"}\n'])
def test_a_stray_file_in_the_log_folder_hides_no_commit_and_is_left_alone(
    tmp_path: Path, stray: bytes
) -> None:
    """An empty ``_wal/99999999.log`` once hid every commit, and the next write deleted them."""
    folder = tmp_path / "data"
    crashed_writer(folder, 5)
    (folder / "_wal" / "99999999.log").write_bytes(stray)
    with hutch.open(folder) as db:
        assert db.store.get_value("counter") == 5
        db.store.set_value("counter", 6)
    with hutch.open(folder) as db:
        assert db.store.get_value("counter") == 6
        assert db.store.get_row_count("rows") == 5
    assert (folder / "_wal" / "99999999.log").read_bytes() == stray


@pytest.mark.usefixtures("several_opens")
def test_a_generation_a_stopped_checkpoint_started_takes_no_line_until_the_log_moves_there(
    tmp_path: Path,
) -> None:
    """A checkpoint killed after starting a generation, before the line that moves the log
    there: a process opening then must write where the running ones do, not fork the log."""
    folder = tmp_path / "data"
    with hutch.open(folder, checkpoint_interval=3600) as running:
        running.store.set_value("running", 1)
        backend = running.backend
        assert isinstance(backend, FilePersister)
        backend._the_log.rotate()  # what the killed checkpoint did
        assert len(logfiles.generations(folder)) == 2
        with hutch.open(folder, checkpoint_interval=3600) as opened:
            opened.store.set_value("opened", 1)
            running.store.set_value("running", 2)
            opened.refresh()
            running.refresh()
            assert opened.store.get_value("running") == 2
            assert running.store.get_value("opened") == 1
            opened.compact()  # checkpoints go on moving every process along
            opened.store.set_value("opened", 2)
            running.store.set_value("running", 3)
            running.refresh()
            assert running.store.get_value("opened") == 2
    with hutch.open(folder) as db:
        assert (db.store.get_value("running"), db.store.get_value("opened")) == (3, 2)


def test_a_log_copied_from_another_folder_is_ignored(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    crashed_writer(first, 3)
    crashed_writer(second, 7)
    shutil.copy(newest(first), second / "_wal" / "00000500.log")
    with hutch.open(second) as db:
        assert db.store.get_value("counter") == 7


def test_a_manifest_without_its_id_is_corrupt_and_a_missing_one_is_not_made_up(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    crashed_writer(folder, 4)
    manifest = json.loads((folder / "hutch.json").read_text())
    (folder / "hutch.json").unlink()
    with pytest.raises(hutch.CorruptData, match="is missing") as opening:
        hutch.open(folder)  # a new manifest would lose the settings the old one kept
    assert not (folder / "hutch.json").exists()
    written = re.search(r"write (\{.*\}) into it", str(opening.value))
    assert written is not None
    (folder / "hutch.json").write_text(written[1])  # as the message says
    with hutch.open(folder) as db:  # the log says which folder it belongs to: nothing is lost
        assert db.store.get_value("counter") == 4
    assert json.loads((folder / "hutch.json").read_text())["id"] == manifest["id"]

    (folder / "hutch.json").write_text(json.dumps({"format": 2, "collections": {}}))
    with pytest.raises(hutch.CorruptData, match="'id'"):
        hutch.open(folder)


# -- format 1 ------------------------------------------------------------------------------------


def format_1_folder(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    folder = tmp_path / "data"
    shutil.copytree(FIXTURES / "file_format_1", folder)
    expected = json.loads((FIXTURES / "file_format_1.expected.json").read_text())
    return folder, expected


def test_a_folder_of_format_1_opens_with_its_data_and_is_upgraded(tmp_path: Path) -> None:
    folder, expected = format_1_folder(tmp_path)
    with hutch.open(folder) as db:
        store = db.store
        assert {t: store.get_table(t) for t in store.get_table_ids()} == expected["tables"]
        assert store.get_values() == expected["values"]
        db.store.set_value("after", True)
    manifest = json.loads((folder / "hutch.json").read_text())
    assert manifest["format"] == 2
    assert len(manifest["id"]) == 32
    assert manifest["collections"]["people"]["path"] == "crew/people"
    assert not (folder / "crew" / "people" / "p2.json").exists()  # deleted in the old log
    assert json.loads((folder / "crew" / "people" / "p1.json").read_text())["email"] == (
        "changed@example.org"
    )
    for generation in logfiles.generations(folder):
        assert logfiles.lines(generation)[0]["hutch"] == "wal"  # no format-1 log is left
    with hutch.open(folder) as db:
        assert db.store.get_value("after") is True


HOLDER = """\
import fcntl, os, sys
folder, mark = sys.argv[1], sys.argv[2] == "new"
if mark:  # what a process of format 2 holds while it has the folder open
    marker = os.open(os.path.join(folder, "hutch.open"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(marker, fcntl.LOCK_SH)
lock = os.open(os.path.join(folder, "hutch.lock"), os.O_RDWR)  # what every version keeps open
print("holding", flush=True)
sys.stdin.read()
"""


def holding(folder: Path, version: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), version],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "holding\n"
    return process


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(WAIT)
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds other processes in /proc")
def test_a_folder_of_format_1_without_its_manifest_is_refused_and_its_log_kept(
    tmp_path: Path,
) -> None:
    """Its log has no header, so it reads as a stray: its transactions were once dropped."""
    folder, _ = format_1_folder(tmp_path)
    (folder / "hutch.json").unlink()
    logs = {path: path.read_bytes() for path in (folder / "_wal").iterdir()}
    with pytest.raises(hutch.CorruptData, match=r"hutch\.json is missing, .* without a header"):
        hutch.open(folder)
    assert {path: path.read_bytes() for path in (folder / "_wal").iterdir()} == logs


def test_an_upgrade_waits_for_a_read_only_load_though_a_writing_open_does_not(
    tmp_path: Path,
) -> None:
    """A writing open takes the checkpoint lock shared, so read-only loads (which hold it
    shared) do not stop it; the upgrade from format 1 rewrites record files and deletes
    log generations, so it takes it exclusively, and waits."""
    folder, expected = format_1_folder(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    reading = os.open(folder / "hutch.checkpoint", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(reading, fcntl.LOCK_SH)  # what a read-only load holds while it reads
        with pytest.raises(hutch.LockTimeout, match="checkpoint lock"):
            hutch.open(folder, lock_timeout=0.2)
        locks = ("hutch.open", "hutch.checkpoint")
        after = {
            p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name not in locks
        }
        assert after == before  # nothing upgraded
    finally:
        os.close(reading)
    with hutch.open(folder) as db:
        assert db.store.get_values() == expected["values"]
    assert json.loads((folder / "hutch.json").read_text())["format"] == 2
    reading = os.open(folder / "hutch.checkpoint", os.O_RDONLY)
    try:
        fcntl.flock(reading, fcntl.LOCK_SH)
        with hutch.open(folder, lock_timeout=0.2) as db:  # format 2: it goes on
            db.store.set_value("after", True)
    finally:
        os.close(reading)


def test_an_upgrade_waits_until_no_older_process_holds_the_folder(tmp_path: Path) -> None:
    folder, expected = format_1_folder(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    older = holding(folder, "old")
    try:
        with pytest.raises(hutch.StorageError, match=f"process\\(es\\) {older.pid} of an older"):
            hutch.open(folder)
    finally:
        release(older)
    locks = ("hutch.open", "hutch.checkpoint")  # empty lock files, made before the refusal
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name not in locks}
    assert after == before

    newer = holding(folder, "new")  # another process of this version, opening it too
    try:
        with hutch.open(folder) as db:
            assert db.store.get_values() == expected["values"]
    finally:
        release(newer)


# -- where the promise holds -----------------------------------------------------------------------


def test_the_file_system_is_told_and_network_and_fuse_ones_are_not_local(tmp_path: Path) -> None:
    kind = file_system_type(tmp_path)
    assert kind is not None
    assert not is_not_local(kind)
    if Path("/dev/shm").is_dir():
        assert file_system_type(Path("/dev/shm")) == "tmpfs"
    for remote in ("nfs", "nfs4", "cifs", "smb3", "fuse", "fuse.sshfs", "fuse.rclone", "9p"):
        assert is_not_local(remote)
    for local in ("ext4", "xfs", "btrfs", "tmpfs", "zfs"):
        assert not is_not_local(local)


# -- one door to the disk ------------------------------------------------------------------------

#: What reaches the disk; a folder backend calls these through fsio only.
_DISK = {
    "os": {
        "open",
        "write",
        "pwrite",
        "read",
        "pread",
        "fsync",
        "fdatasync",
        "rename",
        "replace",
        "unlink",
        "remove",
        "mkdir",
        "makedirs",
        "rmdir",
        "ftruncate",
        "truncate",
        "scandir",
        "listdir",
        "stat",
        "lstat",
        "fstat",
        "close",
        "link",
        "symlink",
        "sync",
    },
    "fcntl": {"flock", "fcntl", "lockf"},
    "shutil": {"copy", "copyfile", "move", "rmtree", "copytree"},
}


def _disk_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in _DISK.get(node.value.id, ())
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.Name) and node.id in ("open", "syncfs"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.id}")
    return found


def test_the_folder_backends_reach_the_disk_only_through_fsio() -> None:
    sources = sorted((ROOT / "backends" / "file").glob("*.py"))
    sources += sorted((ROOT / "backends" / "jsonl").glob("*.py"))
    fsio = ROOT / "backends" / "file" / "fsio.py"
    offenders = [call for path in sources if path != fsio for call in _disk_calls(path)]
    assert offenders == [], "call these through backends/file/fsio.py:\n" + "\n".join(offenders)
    assert "syncfs" not in fsio.read_text(), "durability must not rest on syncfs"
