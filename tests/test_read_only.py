"""``hutch.open(url, read_only=True)``: a durable store opened writing nothing at all — for a
backup, a read-only mount, a folder of another user — and a full disk that still opens and
closes. Real files, a real read-only mount and a real other user where the machine allows
them (the tests that need one skip, saying why, where it does not)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from children import WAIT, Child

import hutch

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
