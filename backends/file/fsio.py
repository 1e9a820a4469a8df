"""File-system primitives for the file backend: atomic writes, safe folders, clear errors.

Everything is done relative to folder descriptors opened with ``O_NOFOLLOW``,
so a name never resolves through a symbolic link: nothing is read or written
outside the root, whatever a person (or an attacker) puts in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import stat
from pathlib import Path

from hutch import DiskFull, ReadOnlyStorage, StorageError, StoragePermissionError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_SUFFIX = ".tmp"


def storage_error(error: OSError, doing: str, where: Path | str) -> StorageError:
    """Turn an ``OSError`` into the :class:`~hutch.StorageError` that says what to do."""
    reason = error.strerror or str(error)
    if error.filename and str(error.filename) not in str(where):
        where = f"{where} ({error.filename})"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"could not {doing} {where}: the disk is full ({reason}); free space")
    if error.errno in (errno.EACCES, errno.EPERM):
        return StoragePermissionError(
            f"could not {doing} {where}: permission denied ({reason}); let this user "
            "read and write the folder"
        )
    if error.errno == errno.EROFS:
        return ReadOnlyStorage(
            f"could not {doing} {where}: the file system is read-only; remount it read-write"
        )
    if error.errno == errno.ELOOP:
        return StorageError(
            f"could not {doing} {where}: it is a symbolic link, and hutch never follows links "
            "inside the data folder; replace it with a real folder or file"
        )
    return StorageError(f"could not {doing} {where}: {reason}")


def open_dir(parent_fd: int | None, name: str | Path, *, create: bool) -> int:
    """Open (and if asked, create) a folder without following a symbolic link to it."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "a symbolic link", str(name)) from None
        raise


def read_file(dir_fd: int, name: str) -> bytes:
    """The whole content of a regular file in a folder (never through a link, never a FIFO)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(name, flags, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "a folder", name)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        data = os.read(fd, info.st_size + 1)
        if len(data) != info.st_size:  # it grew, or the read was short: read on to the end
            chunks = [data]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append_after(fd: int, data: bytes, end: int, *, sync: bool) -> None:
    """Append ``data`` at ``end`` (the end of the last intact line) of an ``O_APPEND`` file.

    Anything past ``end`` is the torn tail of an append that crashed and is cut
    off first; on any error the file is cut back to ``end`` again, so no partial
    line stays. ``sync``: ``fdatasync`` before returning.
    """
    if os.fstat(fd).st_size != end:
        os.ftruncate(fd, end)
    try:
        write_all(fd, data)
        if sync:
            os.fdatasync(fd)
    except BaseException:
        os.ftruncate(fd, end)
        raise


def write_atomic(dir_fd: int, name: str, data: bytes, *, sync: bool) -> None:
    """Replace ``name`` with ``data`` all at once: temp file, fsync, rename, folder fsync.

    A reader (or a crash) sees the old content or the new, never a mix; on an
    error the temp file is removed and the old content stays.
    """
    temp = f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    fd = os.open(temp, _NEW_FILE, 0o644, dir_fd=dir_fd)
    try:
        try:
            write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        remove(dir_fd, temp)
        raise
    if sync:
        os.fsync(dir_fd)


def write_unsynced(dir_fd: int, name: str, data: bytes) -> None:
    """Replace ``name`` atomically but leave flushing to a later :func:`sync_filesystem`."""
    write_atomic(dir_fd, name, data, sync=False)


def remove(dir_fd: int, name: str) -> None:
    """Remove a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def is_temp(name: str) -> bool:
    """Temp files are dot-led (so never a record) and end in ``.tmp``."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _load_syncfs() -> object:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None)


_syncfs = _load_syncfs()


def sync_filesystem(fd: int) -> None:
    """Flush every file of the file system holding ``fd`` to disk (one call, not one per file)."""
    if _syncfs is not None:
        if _syncfs(fd) == 0:  # type: ignore[operator]
            return
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    os.sync()
