"""The files beside a store (hutch.files): folders and files owner-only, a file whole or
absent and never over another, nothing temporary left behind, and an OSError told as the
hutch error that names the file meant (never a temporary one) and says what to do."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

import hutch
from hutch import files


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at ``where`` with ``options`` (mounting one needs root)."""
    where.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system."""
    with tmpfs(tmp_path / "small", "size=1m") as where:
        yield where


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written in, even by root: a read-only file system."""
    with tmpfs(tmp_path / "read-only", "ro,size=1m") as where:
        yield where


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def data(payload: bytes) -> Any:
    return lambda stream: stream.write(payload)


# -- write_atomic --------------------------------------------------------------------------


def test_a_file_is_written_whole_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"

    files.write_atomic(path, data(b"hello\n"))

    assert path.read_bytes() == b"hello\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.stat().st_nlink == 1  # the temporary name is gone
    assert listing(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links"])
def test_an_existing_file_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:

        def no_links(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")  # as on FAT

        monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "taken"
    path.write_bytes(b"someone else's")

    with pytest.raises(FileExistsError) as caught:
        files.write_atomic(path, data(b"mine"))

    assert caught.value.filename == str(path)
    assert path.read_bytes() == b"someone else's"
    assert listing(tmp_path) == ["taken"]


def test_a_link_in_the_way_is_not_followed_nor_replaced(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")

    with pytest.raises(FileExistsError):
        files.write_atomic(tmp_path / "link", data(b"x"))

    assert not (tmp_path / "nowhere").exists()
    assert listing(tmp_path) == ["link"]


def test_without_hard_links_a_file_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    files.write_atomic(tmp_path / "out", data(b"x"))
    assert listing(tmp_path) == ["out"]


@pytest.mark.parametrize("failure", [ValueError("bad row"), KeyboardInterrupt()])
def test_a_failure_while_filling_leaves_nothing(tmp_path: Path, failure: BaseException) -> None:
    def fill(stream: BinaryIO) -> None:
        stream.write(b"half")
        raise failure

    with pytest.raises(type(failure)):
        files.write_atomic(tmp_path / "out", fill)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError(errno.EIO, "I/O error"), KeyboardInterrupt()])
def test_a_failure_while_publishing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(os, "link", failing)
    with pytest.raises(type(failure)):
        files.write_atomic(tmp_path / "out", data(b"x"))
    assert listing(tmp_path) == []


def test_a_full_disk_names_the_file_not_the_temporary_one(small_disk: Path) -> None:
    path = small_disk / "big.jsonl"

    with pytest.raises(OSError, match="No space left") as caught:
        files.write_atomic(path, data(os.urandom(2 << 20)))
    error = files.storage_error(caught.value, "write", path)

    assert isinstance(error, hutch.DiskFull)
    assert str(error).startswith(f"could not write {path}: the disk is full")
    assert ".tmp" not in str(error)
    assert listing(small_disk) == []


# -- write_new -----------------------------------------------------------------------------


def test_write_new_refuses_an_existing_file_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.write_bytes(b"theirs")

    with pytest.raises(FileExistsError):
        files.write_new(path, data(b"mine"))
    assert path.read_bytes() == b"theirs"


def test_write_new_removes_its_file_on_any_failure(tmp_path: Path) -> None:
    def interrupted(stream: BinaryIO) -> None:
        stream.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_new(tmp_path / "out", interrupted)
    assert listing(tmp_path) == []


# -- folders -------------------------------------------------------------------------------


def test_make_folder_makes_every_missing_parent_owner_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    folder = tmp_path / "a" / "b" / "c"

    files.make_folder(folder)
    files.make_folder(folder)  # it exists: nothing to do

    for made in (tmp_path / "a", tmp_path / "a" / "b", folder):
        assert made.is_dir()
        assert made.stat().st_mode & 0o777 == 0o700
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # what existed stays as it was


def test_make_folder_over_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        files.make_folder(tmp_path / "file" / "sub")
    assert (tmp_path / "file").read_text() == "x"


def test_nothing_can_be_written_on_a_read_only_file_system(read_only: Path) -> None:
    path = read_only / "out"
    with pytest.raises(OSError, match="Read-only file system") as caught:
        files.write_atomic(path, data(b"x"))
    error = files.storage_error(caught.value, "write", path)
    assert type(error) is hutch.StorageError
    assert str(error) == (
        f"could not write {path}: Read-only file system; check the disk and the path, then retry"
    )


# -- storage_error -------------------------------------------------------------------------

TEMP = "/data/.out.jsonl.0123456789abcdef.tmp"


@pytest.mark.parametrize(
    ("code", "kind", "advice"),
    [
        (errno.ENOSPC, hutch.DiskFull, "the disk is full (No space left on device); free space"),
        (errno.EDQUOT, hutch.DiskFull, "the disk is full (Disk quota exceeded); free space"),
        (errno.EACCES, hutch.StoragePermissionError, "permission denied (Permission denied)"),
        (errno.EPERM, hutch.StoragePermissionError, "let this user read and write there"),
        (errno.ENOENT, hutch.StorageError, "No such file or directory; check the path"),
        (errno.EEXIST, hutch.StorageError, "File exists; move what is there away"),
        (errno.EIO, hutch.StorageError, "Input/output error; check the disk"),
    ],
)
def test_each_error_is_the_hutch_error_that_says_what_to_do(
    code: int, kind: type[hutch.StorageError], advice: str
) -> None:
    path = Path("/data/out.jsonl")
    error = files.storage_error(OSError(code, os.strerror(code), TEMP), "write", path)

    assert type(error) is kind
    assert str(error).startswith(f"could not write {path}: ")
    assert advice in str(error)
    assert ".tmp" not in str(error)


def test_an_error_without_its_text_still_says_what_it_was() -> None:
    error = files.storage_error(OSError(errno.EIO, None), "read", Path("x"))
    assert str(error).startswith("could not read x: Input/output error")
