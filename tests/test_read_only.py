"""``hutch.open(url, read_only=True)``: a durable store opened writing nothing at all — for a
backup, a read-only mount, a folder of another user — and a full disk that still opens and
closes. Real files, a real read-only mount and a real other user where the machine allows
them (the tests that need one skip, saying why, where it does not)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from children import WAIT, Child

import hutch
from hutch.backends.file import fsio

BACKENDS = ["file", "jsonl", "sqlite"]


def url_of(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    return f"{backend}://{folder / 'data'}"


def store_path(backend: str, folder: Path) -> Path:
    return folder / ("store.db" if backend == "sqlite" else "data")


def fill(url: str) -> None:
    with hutch.open(url, collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "ada@example.org"})
        db.store.set_row("users", "u2", {"email": "bob@example.org"})
        db.store.set_value("version", 3)


def everything(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``folder``, with the bytes of each file."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_read_only_open_reads_everything_and_writes_nothing(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    before = everything(tmp_path)
    with hutch.open(url, read_only=True) as db:
        assert db.store.get_row("users", "u1") == {"email": "ada@example.org"}
        assert db.store.get_row_count("users") == 2
        assert db.store.get_value("version") == 3
        with pytest.raises(hutch.ReadOnlyStorage, match="read_only"):
            db.store.set_row("users", "u3", {"email": "eve@example.org"})
        with pytest.raises(hutch.ReadOnlyStorage), db.store.transaction():
            pass
        with pytest.raises(hutch.ReadOnlyStorage):
            db.store.del_value("version")
        with pytest.raises(hutch.ReadOnlyStorage):
            db.reindex()
        with pytest.raises(hutch.ReadOnlyStorage):
            db.compact()
        assert db.store.get_row_count("users") == 2
        db.refresh()
    assert everything(tmp_path) == before


def test_a_read_only_file_open_leaves_a_torn_log_tail_in_place(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url, checkpoint_interval=3600) as db:
        db.store.set_row("t", "kept", {"n": 1})
    # A writer killed in the middle of its next line, with its last checkpoint behind it.
    folder = store_path("file", tmp_path) / "_wal"
    newest = max(folder.glob("*.log"))
    with newest.open("ab") as torn:
        torn.write(b'2\t{"half a line')
    before = everything(tmp_path)
    with hutch.open(url, read_only=True) as reader:
        assert reader.store.get_row("t", "kept") == {"n": 1}
    assert everything(tmp_path) == before  # the tail is still there, nothing else changed
    with hutch.open(url) as writer:  # a writing open cuts it, and goes on
        writer.store.set_row("t", "next", {"n": 2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_is_created_by_a_read_only_open(backend: str, tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match=r"read-only|read_only"):
        hutch.open(url_of(backend, tmp_path), read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_backend_that_cannot_open_read_only_says_so() -> None:
    with pytest.raises(hutch.ConfigError, match="read-only"):
        hutch.open("memory://", read_only=True)


def test_read_only_and_quarantine_are_refused_together(tmp_path: Path) -> None:
    fill(url_of("file", tmp_path))
    with pytest.raises(hutch.ConfigError, match="quarantine"):
        hutch.open(url_of("file", tmp_path), read_only=True, on_corrupt="quarantine")


SCRIPT = """\
import os, sys
import hutch

db = hutch.open(sys.argv[1])
os.write(1, b"ready\\n")
for line in sys.stdin:
    db.store.set_row("t", line.strip(), {"n": 1})
    os.write(1, b"wrote\\n")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_writers_go_on_while_a_read_only_open_is_open(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    script = tmp_path.parent / f"{tmp_path.name}-writer.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with hutch.open(url, read_only=True) as reader:
        writer = Child("writer", [sys.executable, str(script), url], tmp_path.parent / "w.err")
        try:
            writer.expect("ready")
            for n in range(3):
                writer.send(f"r{n}")
                writer.expect("wrote")
        finally:
            writer.end()
        assert reader.store.get_row_count("users") == 2
    with hutch.open(url) as db:
        assert db.store.get_row_count("t") == 3


@contextlib.contextmanager
def read_only_mount(source: Path) -> Iterator[Path]:
    """``source`` mounted again, read-only (a bind mount), or a skip where mounting is not
    allowed; always unmounted after."""
    target = Path(tempfile.mkdtemp(prefix="hutch-ro-"))
    try:
        for command in (
            ["mount", "--bind", str(source), str(target)],
            ["mount", "-o", "remount,ro,bind", str(target)],
        ):
            done = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
            if done.returncode != 0:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(["umount", str(target)], capture_output=True, timeout=WAIT)
                pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
        try:
            yield target
        finally:
            subprocess.run(["umount", str(target)], capture_output=True, timeout=WAIT, check=True)
    finally:
        with contextlib.suppress(OSError):
            target.rmdir()


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_on_a_read_only_mount_opens_read_only(backend: str, tmp_path: Path) -> None:
    fill(url_of(backend, tmp_path))
    with read_only_mount(tmp_path) as mounted:
        before = everything(mounted)
        with pytest.raises(hutch.ReadOnlyStorage):
            hutch.open(url_of(backend, mounted)).store.set_row("t", "r", {"n": 1})
        with hutch.open(url_of(backend, mounted), read_only=True) as db:
            assert db.store.get_row("users", "u2") == {"email": "bob@example.org"}
        assert everything(mounted) == before


AS_NOBODY = """\
import json, sys
import hutch

with hutch.open(sys.argv[1], read_only=True) as db:
    print(json.dumps(db.store.get_table("users"), sort_keys=True))
    try:
        db.store.set_row("users", "u9", {"email": "x@example.org"})
    except hutch.ReadOnlyStorage:
        print("refused")
"""


def nobody() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    if os.geteuid() != 0:
        pytest.skip("only root can run a process as another user")
    return entry.pw_uid, entry.pw_gid


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_of_another_user_opens_read_only(backend: str) -> None:
    uid, gid = nobody()

    def become_nobody() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import hutch"],
            preexec_fn=become_nobody,
            capture_output=True,
            timeout=WAIT,
        ).returncode
    except PermissionError:
        probe = -1
    if probe != 0:
        pytest.skip("this checkout (or its Python) is not readable by 'nobody'")
    folder = Path(tempfile.mkdtemp(prefix="hutch-other-user-"))
    try:
        folder.chmod(0o755)
        url = url_of(backend, folder)
        fill(url)
        for path in [folder, *folder.rglob("*")]:  # root's, and read-only to everyone else
            path.chmod(0o755 if path.is_dir() else 0o444)
        before = everything(folder)
        done = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, url],
            preexec_fn=become_nobody,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 0, done.stderr
        table, refused = done.stdout.splitlines()
        assert '"u1": {"email": "ada@example.org"}' in table
        assert refused == "refused"
        assert everything(folder) == before
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def small_disk() -> Iterator[Path]:
    """A 2 MiB file system (tmpfs), or a skip where mounting is not allowed."""
    target = Path(tempfile.mkdtemp(prefix="hutch-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    if done.returncode != 0:
        target.rmdir()
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, timeout=WAIT, check=True)
        target.rmdir()


def fill_the_disk(folder: Path) -> None:
    with (folder / "ballast").open("wb") as ballast, contextlib.suppress(OSError):
        while True:
            ballast.write(b"\0" * 65536)
            ballast.flush()


def fill_the_log(db: hutch.Database) -> None:
    for n in range(10_000):  # until the log cannot take another line
        db.store.set_row("t", f"r{n}", {"text": "x" * 1000})


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_on_a_full_disk_a_folder_opens_and_closes_with_every_commit_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with small_disk() as disk:
        url = url_of("file", disk)
        with hutch.open(url, checkpoint_interval=3600) as db:
            db.store.set_row("t", "before", {"n": 1})
        with hutch.open(url, checkpoint_interval=3600) as db:
            db.store.set_row("t", "logged", {"text": "x" * 1000})  # in the log, no record yet
            fill_the_disk(disk)
            with pytest.raises(hutch.DiskFull):
                fill_the_log(db)
            kept = db.store.get_table("t")
        # close() could not write the record files: it warns, and the log keeps them all
        assert any("full" in record.getMessage().lower() for record in caplog.records)
        with hutch.open(url, read_only=True) as reader:
            assert reader.store.get_table("t") == kept
        with hutch.open(url, checkpoint_interval=3600) as db:  # a writing open, still full
            assert db.store.get_table("t") == kept
        (disk / "ballast").unlink()
        with hutch.open(url) as db:
            assert db.store.get_table("t") == kept


def test_read_only_and_mirrors_are_refused_together(tmp_path: Path) -> None:
    fill(url_of("file", tmp_path))
    with pytest.raises(hutch.ConfigError, match="mirror"):
        hutch.open(url_of("file", tmp_path), read_only=True, mirrors=[tmp_path / "copy"])
    assert not (tmp_path / "copy").exists()


# -- a read-only load is one commit point, holding writers up for a moment only -----------------

PAUSED_READER = """\
import json, os, sys
import hutch
from hutch.backends.file import fsio
from hutch.backends.file import log as file_log
from hutch.backends.file import persister as file_persister
from hutch.backends.jsonl import logs as jsonl_logs
from hutch.backends.sqlite import persister as sqlite_persister

url, where = sys.argv[1], sys.argv[2]


def pause(said):
    os.write(1, f"paused {said}".encode() + b"\\n")
    sys.stdin.readline()


def before(cls, name, said=lambda *args: "", after=False):
    original = getattr(cls, name)

    def paused(*args, **kwargs):
        if paused.done:
            return original(*args, **kwargs)
        paused.done = True
        pause(said(*args))
        try:
            return original(*args, **kwargs)
        finally:
            if after:
                pause("")

    paused.done = False
    setattr(cls, name, paused)


if where == "file: the log's end not noted yet":
    before(file_persister.FilePersister, "_log_end")
elif where == "file: the records not read yet":
    before(file_persister.FilePersister, "_read_records")
elif where == "file: the manifest read, not the ids in the log folder":
    ids = file_persister.log_folder_ids

    def log_folder_ids(wal_fd):
        if not log_folder_ids.done:
            log_folder_ids.done = True
            pause("")
        return ids(wal_fd)

    log_folder_ids.done = False
    file_persister.log_folder_ids = log_folder_ids
elif where == "file: the log's end noted, not read yet":
    before(file_log.Log, "recover")
elif where == "file: the log's end noted, not read yet, then read":
    before(file_log.Log, "recover", after=True)
elif where.startswith("file: a generation read in two parts: "):
    # A read that a writer's cut and appends fall in the middle of: the bytes before
    # ``split`` as they were, the rest as they are once the reader is told to go on.
    name, split = where.split(": ")[-1].split(" at byte ")
    split, read_head = int(split), fsio.read_head

    def two_parts(dir_fd, file_name, length):
        if file_name != name or length == file_log._HEAD or two_parts.done:
            return read_head(dir_fd, file_name, length)
        two_parts.done = True
        first = read_head(dir_fd, file_name, split)
        pause("")
        fd = os.open(file_name, os.O_RDONLY, dir_fd=dir_fd)
        try:
            return first + fsio.read_at(fd, split, length - split)
        finally:
            os.close(fd)

    two_parts.done = False
    fsio.read_head = two_parts
elif where == "jsonl: the logs before vault.jsonl read, not it":
    find = jsonl_logs.Logs._find

    def find_log(self, name, target, opened):
        if name == "vault.jsonl" and not find_log.done:
            find_log.done = True
            pause("")
        return find(self, name, target, opened)

    find_log.done = False
    jsonl_logs.Logs._find = find_log
elif where == "file: not loaded yet, then the log's end not noted yet":
    before(file_persister.FilePersister, "load")
    before(file_persister.FilePersister, "_log_end")
elif where == "file: a vault record listed, not read yet":
    read = file_persister._read_record

    def read_record(dir_fd, name, folder):
        if folder.name == "vault" and not read_record.done:
            read_record.done = True
            pause(name.removesuffix(".json"))
        return read(dir_fd, name, folder)

    read_record.done = False
    file_persister._read_record = read_record
elif where == "jsonl: the logs' ends noted, nothing read yet":
    before(jsonl_logs.Logs, "catch_up")
elif where == "sqlite: the rows read, not the values":
    before(sqlite_persister.SqlitePersister, "_read_values")

with hutch.open(url, read_only=True, follow=False) as db:
    store = db.store
    tables = {t: store.get_table(t) for t in store.get_table_ids()}
    print(json.dumps({"tables": tables, "values": store.get_values()}), flush=True)
"""

#: A writer waits this long for a lock before it fails (the reader must never hold it so long).
BLOCKED = 10.0

#: Money moves between a logged collection and a "wal": false one (whose record files are
#: written at each commit, under the write lock); the total never changes.
BANK = {"accounts": {"indexed": ["balance"]}, "vault": {"wal": False, "indexed": ["balance"]}}
ACCOUNTS = 5


def open_bank(url: str, **options: Any) -> hutch.Database:
    db = hutch.open(url, collections=BANK, **options)
    with db.store.transaction():
        for n in range(ACCOUNTS):
            db.store.set_row("accounts", f"a{n}", {"balance": 100})
            db.store.set_row("vault", f"v{n}", {"balance": 100})
        db.store.set_value("moves", 0)
    return db


def move(db: hutch.Database, k: int, *, gone: str | None = None) -> None:
    """One transaction: 7 from a logged row to a "wal": false one, a "wal": false row made
    (and, given ``gone``, one deleted, its balance kept by another), a value set."""
    store = db.store
    with store.transaction():
        source, target = f"a{k % ACCOUNTS}", f"v{(k + 1) % ACCOUNTS}"
        store.set_cell(
            "accounts", source, "balance", store.get_cell("accounts", source, "balance") - 7
        )
        store.set_cell(
            "vault", target, "balance", store.get_cell("vault", target, "balance", 0) + 7
        )
        store.set_row("vault", f"x{k}", {"balance": 0, "made": k})
        if gone is not None and store.has_row("vault", gone):
            kept = store.get_cell("vault", gone, "balance")
            store.del_row("vault", gone)
            store.set_cell(
                "accounts", "a0", "balance", store.get_cell("accounts", "a0", "balance") + kept
            )
        store.set_value("moves", k)


def contents(db: hutch.Database) -> dict[str, Any]:
    store = db.store
    tables = {t: store.get_table(t) for t in store.get_table_ids()}
    return {"tables": tables, "values": store.get_values()}


def total(snapshot: dict[str, Any]) -> int:
    tables = snapshot["tables"]
    return sum(row["balance"] for t in ("accounts", "vault") for row in tables[t].values())


def go_on(reader: Child) -> Any:
    """Let a paused reader finish its load; the snapshot it read."""
    reader.send("go")
    return json.loads(reader.read())


def paused_reader(tmp_path: Path, url: str, where: str) -> tuple[Child, str]:
    """A process opening ``url`` read-only that stops at ``where`` until told to go on; what
    it said when it stopped."""
    script = tmp_path.parent / f"{tmp_path.name}-reader.py"
    script.write_text(PAUSED_READER, encoding="utf-8")
    reader = Child("reader", [sys.executable, str(script), url, where], tmp_path.parent / "r.err")
    said = reader.read()
    assert said.startswith("paused"), said
    return reader, said.removeprefix("paused").strip()


@pytest.mark.parametrize("durability", ["commit", "batch"])
def test_a_read_only_file_load_takes_in_what_writers_commit_until_it_notes_the_log_end(
    durability: str, tmp_path: Path
) -> None:
    url = url_of("file", tmp_path)
    writer = open_bank(url, durability=durability, lock_timeout=BLOCKED)
    try:
        move(writer, 1)
        reader, _ = paused_reader(tmp_path, url, "file: the log's end not noted yet")
        try:
            # The reader has read every record (holding the checkpoint lock shared, not the
            # write lock): commits go on, "wal": false record files are rewritten and removed.
            for k in range(2, 8):
                move(writer, k, gone=f"x{k - 1}")
            expected = contents(writer)
            snapshot = go_on(reader)
        finally:
            reader.end()
    finally:
        writer.close()
    assert snapshot == expected  # the commit point noted: records stale, the log replayed
    assert total(snapshot) == 2 * ACCOUNTS * 100


def test_a_record_removed_after_the_listing_is_the_log_s_deletion(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    writer = open_bank(url, lock_timeout=BLOCKED)
    try:
        for k in range(1, 4):
            move(writer, k)
        reader, listed = paused_reader(tmp_path, url, "file: a vault record listed, not read yet")
        try:
            with writer.store.transaction():  # its file goes while the reader is at it
                kept = writer.store.get_cell("vault", listed, "balance")
                writer.store.del_row("vault", listed)
                balance = writer.store.get_cell("accounts", "a1", "balance")
                writer.store.set_cell("accounts", "a1", "balance", balance + kept)
            expected = contents(writer)
            snapshot = go_on(reader)
        finally:
            reader.end()
    finally:
        writer.close()
    assert listed not in snapshot["tables"]["vault"]
    assert snapshot == expected
    assert total(snapshot) == 2 * ACCOUNTS * 100


@pytest.mark.parametrize("durability", ["commit", "batch"])
def test_a_read_only_jsonl_load_reads_up_to_the_end_it_noted(
    durability: str, tmp_path: Path
) -> None:
    url = url_of("jsonl", tmp_path)
    writer = open_bank(url, durability=durability, lock_timeout=BLOCKED, compact_lines=5)
    try:
        move(writer, 1)
        noted = contents(writer)
        reader, _ = paused_reader(tmp_path, url, "jsonl: the logs' ends noted, nothing read yet")
        try:
            # The reader holds no lock now: commits go on, and compactions replace the logs
            # it opened (compact_lines=5), whose old files it reads as they were.
            for k in range(2, 12):
                move(writer, k, gone=f"x{k - 1}")
            snapshot = go_on(reader)
        finally:
            reader.end()
    finally:
        writer.close()
    assert snapshot == noted
    assert total(snapshot) == 2 * ACCOUNTS * 100


def test_a_read_only_sqlite_load_is_one_read_transaction_that_blocks_no_writer(
    tmp_path: Path,
) -> None:
    url = url_of("sqlite", tmp_path)
    writer = open_bank(url, lock_timeout=BLOCKED)
    try:
        move(writer, 1)
        noted = contents(writer)
        reader, _ = paused_reader(tmp_path, url, "sqlite: the rows read, not the values")
        try:
            for k in range(2, 6):
                move(writer, k, gone=f"x{k - 1}")
            snapshot = go_on(reader)
        finally:
            reader.end()
    finally:
        writer.close()
    assert snapshot == noted  # the values as of the rows' read transaction, not the writer's
    assert total(snapshot) == 2 * ACCOUNTS * 100


def test_a_close_held_off_by_a_long_read_only_load_warns_and_releases_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = url_of("file", tmp_path)
    writer = open_bank(url, lock_timeout=0.2)
    closed = False
    try:
        reader, _ = paused_reader(tmp_path, url, "file: the log's end not noted yet")
        try:
            move(writer, 1)  # the write lock is free: the reader holds the checkpoint lock
            expected = contents(writer)
            with caplog.at_level(logging.WARNING, logger="hutch.backends.file"):
                writer.close()  # its checkpoint waits 0.2 s for the reader, in vain
            closed = True
            assert any("closed without writing" in r.getMessage() for r in caplog.records)
            snapshot = go_on(reader)
        finally:
            reader.end()
    finally:
        if not closed:
            writer.close()
    assert snapshot == expected
    with hutch.open(url) as again:  # the folder was let go: it opens, holding every commit
        assert contents(again) == expected


def torn_commit_line(folder: Path) -> None:
    """A writer killed while it appended a commit line: a long one (its commit wrote many
    logs), cut short, at the end of ``_commits.jsonl``."""
    commits = folder / "_commits.jsonl"
    last = json.loads(commits.read_bytes().splitlines()[-1])
    seq = last[0] + 1
    logs = {f"c{n}.jsonl": [1, 1] for n in range(12)}
    line = json.dumps([seq, logs, seq], separators=(",", ":")).encode()
    with commits.open("ab") as file:
        file.write(line[: len(line) - 9])


def test_a_read_only_jsonl_load_is_not_fooled_by_a_writer_that_cuts_a_torn_commit_line(
    tmp_path: Path,
) -> None:
    url = url_of("jsonl", tmp_path)
    with open_bank(url) as db:
        move(db, 1)
        noted = contents(db)
    torn_commit_line(store_path("jsonl", tmp_path))
    reader, _ = paused_reader(tmp_path, url, "jsonl: the logs' ends noted, nothing read yet")
    try:
        # The next writing open cuts the torn line and appends its own commit lines where it
        # was: complete lines within the size the reader noted, counting data lines past the
        # sizes it noted of the logs.
        with hutch.open(url, collections=BANK, lock_timeout=BLOCKED) as writer:
            move(writer, 2)
            move(writer, 3)
            later = contents(writer)
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == noted  # the commit point under the lock: the torn line ignored
    assert later != noted
    with hutch.open(url, read_only=True) as again:
        assert contents(again) == later


def test_a_read_only_jsonl_load_reads_again_when_a_writer_cuts_back_a_commit_it_read(
    tmp_path: Path,
) -> None:
    url = url_of("jsonl", tmp_path)
    with open_bank(url, durability="batch") as db:
        move(db, 1)
        noted = contents(db)
    # A power cut under durability="batch": commit line 4 reached the disk, and not the line
    # of accounts.jsonl it counts, where garbage stands; no later line says it was synced.
    folder = store_path("jsonl", tmp_path)
    commits, accounts = folder / "_commits.jsonl", folder / "accounts.jsonl"
    last = json.loads(commits.read_bytes().splitlines()[-1])
    held = len(accounts.read_bytes().splitlines()) - 1  # (the header is no line)
    with accounts.open("ab") as file:
        file.write(b"\0" * 600)
    with commits.open("ab") as file:
        line = [last[0] + 1, {"accounts.jsonl": [1, held + 1]}, last[0]]
        file.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
    reader, _ = paused_reader(tmp_path, url, "jsonl: the logs' ends noted, nothing read yet")
    try:
        # The writing open cuts that commit back, then writes its own commit's lines where
        # the garbage was: within the size of accounts.jsonl the reader noted.
        with hutch.open(url, collections=BANK, lock_timeout=BLOCKED) as writer:
            assert contents(writer) == noted
            move(writer, 2)
            later = contents(writer)
        snapshot = go_on(reader)
    finally:
        reader.end()
    # The reader saw the commit it read cut back, and read again: the folder as it is now,
    # never one writer's line of accounts.jsonl without the rest of its commit.
    assert total(snapshot) == 2 * ACCOUNTS * 100
    assert snapshot == later


def test_a_writing_open_goes_on_while_a_read_only_file_load_holds_the_checkpoint_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = url_of("file", tmp_path)
    with open_bank(url) as db:
        move(db, 1)
    reader, _ = paused_reader(tmp_path, url, "file: the log's end not noted yet")
    try:
        # The reader holds the checkpoint lock shared, and has read every record: an
        # application restarting meanwhile opens, commits and closes within lock_timeout
        # (its checkpoints wait for a later turn: its close's warns after 1 s, and gives up).
        with (
            caplog.at_level(logging.WARNING, logger="hutch.backends.file"),
            hutch.open(url, collections=BANK, lock_timeout=1) as writer,
        ):
            for k in range(2, 6):
                move(writer, k, gone=f"x{k - 1}")
            expected = contents(writer)
        assert any("closed without writing" in r.getMessage() for r in caplog.records)
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == expected  # one commit point: the records read, the log replayed
    assert total(snapshot) == 2 * ACCOUNTS * 100
    with hutch.open(url) as again:
        assert contents(again) == expected


def test_a_read_only_file_load_holds_the_lock_files_a_writer_made_after_the_open_began(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = url_of("file", tmp_path)
    with open_bank(url) as db:
        move(db, 1)
    folder = store_path("file", tmp_path)
    for name in ("hutch.lock", "hutch.checkpoint", "hutch.open"):  # a copy no writer opened
        (folder / name).unlink()
    reader, _ = paused_reader(
        tmp_path, url, "file: not loaded yet, then the log's end not noted yet"
    )
    try:
        writer = hutch.open(url, collections=BANK, lock_timeout=0.5)  # makes the lock files
        try:
            move(writer, 2)
            reader.send("go")
            assert reader.read().strip() == "paused"  # it read the records, holding the locks
            move(writer, 3)
            with pytest.raises(hutch.LockTimeout, match="checkpoint lock"):
                writer.compact()  # would rewrite the records and drop the log under it
            expected = contents(writer)
        finally:
            with caplog.at_level(logging.WARNING, logger="hutch.backends.file"):
                writer.close()
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == expected
    assert total(snapshot) == 2 * ACCOUNTS * 100


@pytest.mark.parametrize(
    ("kind", "lock_files", "pause"),
    [
        (
            "file",
            ("hutch.lock", "hutch.checkpoint", "hutch.open"),
            "file: the log's end not noted yet",
        ),
        ("jsonl", ("hutch.lock", "hutch.open"), "jsonl: the logs' ends noted, nothing read yet"),
    ],
)
def test_a_read_only_load_reads_again_if_a_writer_made_the_lock_files_meanwhile(
    tmp_path: Path, kind: str, lock_files: tuple[str, ...], pause: str
) -> None:
    url = url_of(kind, tmp_path)
    with open_bank(url) as db:
        move(db, 1)
    folder = store_path(kind, tmp_path)
    for name in lock_files:  # a copy no writer opened
        (folder / name).unlink()
    reader, _ = paused_reader(tmp_path, url, pause)
    try:
        # The reader found no lock file to hold, and has read (file: the records): a writer
        # opens (making them), commits and compacts, rewriting files and dropping the log.
        with hutch.open(url, collections=BANK, lock_timeout=BLOCKED) as writer:
            for k in range(2, 5):
                move(writer, k, gone=f"x{k - 1}")
            writer.compact()
            expected = contents(writer)
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == expected  # read again, holding the lock files now there
    assert total(snapshot) == 2 * ACCOUNTS * 100


# -- a read-only load never judges what a writer may be changing (a review's findings) ------------


def first_writing_open_begun(folder: Path) -> None:
    """The folder as the first writing open of it leaves it before its load: the log folder
    and the lock files made, no manifest and no generation yet."""
    (folder / "_wal").mkdir(parents=True)
    for name in ("hutch.lock", "hutch.checkpoint", "hutch.open"):
        (folder / name).touch()


def test_a_read_only_file_load_makes_up_no_folder_id_when_the_first_writer_opens_meanwhile(
    tmp_path: Path,
) -> None:
    url = url_of("file", tmp_path)
    first_writing_open_begun(store_path("file", tmp_path))
    reader, _ = paused_reader(tmp_path, url, "file: the records not read yet")
    try:
        # The reader found no manifest and no generation. The writer's load writes the
        # manifest and generation 1 under the folder's id, then it commits: to a logged
        # collection (the log alone holds it) and to a "wal": false one (record files too).
        writer = open_bank(url, lock_timeout=BLOCKED)
        try:
            move(writer, 1)
            expected = contents(writer)
            snapshot = go_on(reader)
        finally:
            writer.close()
    finally:
        reader.end()
    # Not the "wal": false records without the log's half of their transactions (the log
    # skipped as another folder's, under an id the reader made up): it read again.
    assert snapshot == expected
    assert total(snapshot) == 2 * ACCOUNTS * 100
    with hutch.open(url, read_only=True) as again:
        assert again.backend.verify() == []


def test_a_read_only_file_load_reads_the_manifest_and_the_log_folder_as_of_one_moment(
    tmp_path: Path,
) -> None:
    url = url_of("file", tmp_path)
    first_writing_open_begun(store_path("file", tmp_path))
    reader, _ = paused_reader(
        tmp_path, url, "file: the manifest read, not the ids in the log folder"
    )
    try:
        # The reader found no manifest, and is about to look for ids in the log folder: it
        # holds the write lock shared, under which a writing open writes the manifest and
        # its first generation, so no generation appears between the two (which once made
        # it say the manifest was missing while the log held an id).
        with pytest.raises(hutch.LockTimeout, match="write lock"):
            hutch.open(url, collections=BANK, lock_timeout=0.2)
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == {"tables": {}, "values": {}}
    with open_bank(url) as writer:
        move(writer, 1)
        expected = contents(writer)
    with hutch.open(url, read_only=True) as again:
        assert contents(again) == expected


def torn_tail(newest: Path, size: int) -> int:
    """A writer killed in the middle of a long line at the end of ``newest``: ``size`` bytes
    that do not check, and no newline. Where the tail starts."""
    start = newest.stat().st_size
    with newest.open("ab") as torn:
        torn.write(b"1234abcd " + b"x" * (size - 9))
    return start


def test_a_read_only_file_load_judges_no_bytes_a_writer_cut_and_wrote_over_while_it_read(
    tmp_path: Path,
) -> None:
    url = url_of("file", tmp_path)
    with open_bank(url, checkpoint_interval=3600) as db:
        move(db, 1)
    newest = max((store_path("file", tmp_path) / "_wal").glob("*.log"))
    start = torn_tail(newest, 4000)
    where = f"file: a generation read in two parts: {newest.name} at byte {start + 5}"
    reader, _ = paused_reader(tmp_path, url, where)
    try:
        # The reader noted the log's end, the torn tail in it, and read up to 5 bytes into
        # the tail. A writing open cuts the tail and commits where it was: the rest of the
        # reader's read holds the middle of one new line and then whole ones, which prove
        # that the line before them was durable.
        with hutch.open(url, collections=BANK, lock_timeout=BLOCKED) as writer:
            for k in range(2, 5):
                move(writer, k)
            expected = contents(writer)
            reader.send("go")
            snapshot = json.loads(reader.read())  # no CorruptData: it read the log again
    finally:
        reader.end()
    assert snapshot == expected
    assert total(snapshot) == 2 * ACCOUNTS * 100


@pytest.mark.parametrize("tail", ["longer than the lines written over it", "exactly as long"])
def test_a_read_only_file_load_takes_in_no_line_whose_commit_failed(
    tail: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = url_of("file", tmp_path)
    with open_bank(url, checkpoint_interval=3600) as db:
        move(db, 1)
    folder = store_path("file", tmp_path)
    newest = max((folder / "_wal").glob("*.log"))
    # The two lines a writer appends next (moves 2 and 3), measured on a copy.
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with hutch.open(f"file://{copy}", collections=BANK, checkpoint_interval=3600) as db:
        appended = copy / "_wal" / newest.name
        size = appended.stat().st_size
        move(db, 2)
        move(db, 3)
        written = appended.stat().st_size - size
    torn_tail(newest, 4000 if tail.startswith("longer") else written)
    reader, _ = paused_reader(tmp_path, url, "file: the log's end noted, not read yet, then read")
    try:
        writer = hutch.open(url, collections=BANK, lock_timeout=BLOCKED)  # it cuts the tail
        try:
            move(writer, 2)
            committed = contents(writer)

            def failing(fd: int) -> None:
                # Move 3's line is written where the tail was: the reader reads the log up
                # to the end it noted now, then the sync fails and the line is cut back.
                reader.send("go")
                assert reader.read().strip() == "paused"
                raise OSError(errno.EIO, "the disk failed (a test's)")

            with monkeypatch.context() as patched:
                patched.setattr(fsio, "fdatasync", failing)
                with pytest.raises(hutch.StorageError, match="disk failed"):
                    move(writer, 3)
            assert contents(writer) == committed
            snapshot = go_on(reader)
        finally:
            with contextlib.suppress(hutch.StorageError):  # the failed sync, said again
                writer.close()
    finally:
        reader.end()
    assert snapshot == committed  # never move 3, which did not commit
    assert total(snapshot) == 2 * ACCOUNTS * 100


CRASHING_WRITER = """\
import os, sys
import hutch
db = hutch.open(sys.argv[1], checkpoint_interval=3600)
for i in range(20):
    with db.store.transaction():
        db.store.set_row("rows", f"r{i}", {"i": i})
        db.store.set_value("counter", i + 1)
os._exit(0)
"""


def test_a_read_only_file_load_reads_again_when_a_writer_quarantines_a_generation_it_noted(
    tmp_path: Path,
) -> None:
    url = url_of("file", tmp_path)
    folder = store_path("file", tmp_path)
    # A writer that died without closing: its 20 transactions are in the log alone...
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(folder)], check=True, timeout=WAIT)
    (log,) = (folder / "_wal").glob("*.log")
    data = bytearray(log.read_bytes())
    lines = bytes(data).splitlines(keepends=True)
    data[sum(len(line) for line in lines[:10]) + 20] ^= 0x01  # ...and transaction 10 damaged
    log.write_bytes(bytes(data))
    reader, _ = paused_reader(tmp_path, url, "file: the log's end noted, not read yet")
    try:
        # The reader noted the generation; a writing open moves it to the quarantine and
        # goes on with the transactions before the damage, in a new generation.
        with hutch.open(url, on_corrupt="quarantine", lock_timeout=BLOCKED) as writer:
            assert writer.store.get_value("counter") == 9
            expected = contents(writer)
            snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == expected  # not the folder without the log: it read again


def test_a_read_only_jsonl_load_sees_a_repaired_commit_log_even_where_the_same_line_stands(
    tmp_path: Path,
) -> None:
    url = url_of("jsonl", tmp_path)
    folder = store_path("jsonl", tmp_path)
    with open_bank(url, durability="batch") as db:
        move(db, 1)
        noted = contents(db)
    # Move 2 as a power cut under "batch" leaves it: its commit line (which says commit 1
    # durable, not itself) and its lines of _values.jsonl and accounts.jsonl reached the
    # disk, its lines of vault.jsonl did not (zeros stand there). Made by a real commit, on
    # a copy: a writer's move 3 after the repair writes the very same commit line.
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    names = ("_values.jsonl", "accounts.jsonl", "_commits.jsonl")
    before = {name: (copy / name).read_bytes() for name in names}
    with hutch.open(f"jsonl://{copy}", collections=BANK, durability="batch") as db:
        move(db, 2)
        after = {name: (copy / name).read_bytes() for name in names}  # (before the close's)
    for name in names:
        with (folder / name).open("ab") as file:
            file.write(after[name].removeprefix(before[name]))
    with (folder / "vault.jsonl").open("ab") as file:
        file.write(b"\0" * 2000)
    reader, _ = paused_reader(tmp_path, url, "jsonl: the logs before vault.jsonl read, not it")
    try:
        # The reader read move 2's lines of _values.jsonl and accounts.jsonl. A writing open
        # cuts move 2 back, and commits move 3 over the same logs, counting as many lines.
        with hutch.open(url, collections=BANK, durability="batch", lock_timeout=BLOCKED) as w:
            assert contents(w) == noted
            move(w, 3)
            later = contents(w)
        snapshot = go_on(reader)
    finally:
        reader.end()
    assert snapshot == later  # never move 2's accounts with move 3's vault: it read again
