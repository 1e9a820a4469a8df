"""The files hutch's commands write beside a store: backups, exports, reject files.

They hold everything the store holds (password hashes, say), so they are made
here, in one way: folders and files readable by their owner only, a file
appearing whole or not at all and never over another one, every new name synced
into its folder so that it lasts a power cut. (A store's own folder is written
by its backend: ``hutch.backends.file.fsio``.)

The functions that touch the disk raise ``OSError``: each caller knows what it
was doing, and says so with :func:`storage_error`, the hutch error that names
the file meant and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hutch.errors import DiskFull, StorageError, StoragePermissionError

#: ``link()`` fails so where the file system has no hard links (FAT, some network shares).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_BUFFER = 1 << 20


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, owner-only (0o700), each synced into its
    parent, so that a file written in it can last a power cut."""
    missing = []
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make the names created, renamed or removed in ``folder`` survive a power cut."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_new(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` owner-only (0o600; never over a file or through a link:
    ``FileExistsError``), let ``fill`` write it, and fsync it. If anything fails (a
    ``KeyboardInterrupt`` too) the file is removed again. Its name lasts a power cut only
    once its folder is synced: for a file in a folder that is renamed into place whole."""
    handle = os.open(path, _NEW_FILE, 0o600)
    try:
        with open(handle, "wb", buffering=_BUFFER) as stream:
            fill(stream)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def write_atomic(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write the new file ``path`` so that it appears whole or not at all, and lasts a power
    cut once this returns: a temporary file in the same folder (:func:`write_new`), then
    its name, then the folder synced. An existing ``path`` is never replaced: it raises
    ``FileExistsError`` and is left as it was. Nothing temporary is left on any error."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    write_new(temp, fill)
    try:
        _publish(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    sync_folder(path.parent)


def _publish(temp: Path, final: Path) -> None:
    """Give the synced file its name; a hard link, unlike a rename, never replaces a file."""
    try:
        os.link(temp, final)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        # Racy, but only against another writer choosing the same new name at once.
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        os.rename(temp, final)
        return
    os.unlink(temp)


def storage_error(error: OSError, doing: str, path: Path) -> StorageError:
    """The hutch error for ``error``, met while ``doing`` (``"write the backup"``) ``path``:
    it names ``path`` (never a temporary file's name) and says what to do."""
    reason = error.strerror or (os.strerror(error.errno) if error.errno else type(error).__name__)
    what = f"could not {doing} {path}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{what}: the disk is full ({reason}); free space, then retry")
    if error.errno in (errno.EACCES, errno.EPERM):
        return StoragePermissionError(
            f"{what}: permission denied ({reason}); let this user read and write there, "
            "or choose another place"
        )
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return StorageError(f"{what}: {reason}; check the path")
    if error.errno == errno.EEXIST:
        return StorageError(f"{what}: {reason}; move what is there away, or choose another path")
    return StorageError(f"{what}: {reason}; check the disk and the path, then retry")
