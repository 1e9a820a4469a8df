"""Every file-system call of the folder backends (``file://``, ``jsonl://``), and nothing else.

Two reasons to keep them in one module:

- **Containment.** Everything is done relative to folder descriptors opened
  with ``O_NOFOLLOW``, so a name never resolves through a symbolic link:
  nothing is read or written outside the root, whatever a person (or an
  attacker) puts in it. Files are opened with ``O_NONBLOCK`` and their type
  checked before a byte is read (a FIFO never hangs an open; errors name
  what was found), a file changed or locked in place must have one name (a
  hard link would carry the change outside), new files are created with
  ``O_EXCL``, and a file can be refused for its size before it is read.
- **Durability can be tested.** Each call that changes the disk (create,
  write, truncate, rename, unlink, mkdir, and the fsyncs that make them last)
  is reported to :data:`tracer` when one is set. The test suite's crash-state
  simulator records a workload that way and builds every state a power cut
  could leave (tests/crashsim.py). A test fails when a backend calls the
  operating system's file functions anywhere but here.

Writes take explicit offsets (``pwrite``), never ``O_APPEND``: appends happen
under the folder's write lock at an offset the writer knows, so a torn tail
is cut and overwritten in one place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hutch import ConfigError, DiskFull, ReadOnlyStorage, StorageError, StoragePermissionError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_SUFFIX = ".tmp"
#: Names relative to this "folder" are relative to the working folder.
AT_CWD = getattr(os, "AT_FDCWD", -100)
#: How every SQLite database file starts.
SQLITE_MAGIC = b"SQLite format 3\x00"

#: Told of every call that changes the disk, as ``tracer(operation, *arguments)``, after it
#: succeeded: ``("mkdir", parent_fd, name, fd)``, ``("create", dir_fd, name, fd)``,
#: ``("write", fd, offset, data)``, ``("truncate", fd, size)``, ``("sync", fd)``,
#: ``("rename", from_dir_fd, name, to_dir_fd, new_name)``, ``("unlink", dir_fd, name)``,
#: ``("rmdir", dir_fd, name)``. ``None`` (always, outside the tests): nothing is told.
tracer: Callable[..., None] | None = None

#: macOS's ``fsync`` does not reach the disk; ``F_FULLFSYNC`` does.
_FULLFSYNC: int | None = getattr(fcntl, "F_FULLFSYNC", None) if sys.platform == "darwin" else None


def _told(operation: str, *arguments: Any) -> None:
    if tracer is not None:
        tracer(operation, *arguments)


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


# -- folders ---------------------------------------------------------------------------------


def open_root(root: Path, *, read_only: bool = False) -> int:
    """The root folder, created if its parent exists; the root itself may be a link.
    ``read_only``: for a process that writes nothing: never created, nor checked writable."""
    if read_only and not root.is_dir():
        raise ConfigError(
            f"cannot open {root} read-only: it is not a folder"
            + ("" if root.exists() else " (it does not exist; nothing is created read-only)")
        )
    if not root.exists():
        if not root.parent.is_dir():
            raise ConfigError(
                f"cannot open {root}: its parent folder {root.parent} does not exist; create it"
            )
        try:
            parent = os.open(root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise storage_error(error, "open", root.parent) from error
        try:
            close(open_dir(parent, root.name, create=True))
            fsync(parent)  # the new root's name lasts too
        except OSError as error:
            raise storage_error(error, "create the data folder", root) from error
        finally:
            close(parent)
    if not root.is_dir():
        hint = ""
        if _head_of(root, len(SQLITE_MAGIC)) == SQLITE_MAGIC:
            hint = f" but a SQLite database: open it with 'sqlite:///{root.absolute()}'"
        raise ConfigError(f"cannot open {root}: it is not a folder{hint}")
    if not read_only and not os.access(root, os.W_OK | os.X_OK):
        mounted_read_only = os.statvfs(root).f_flag & os.ST_RDONLY
        code = errno.EROFS if mounted_read_only else errno.EACCES
        raise storage_error(OSError(code, os.strerror(code)), "write to", root)
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise storage_error(error, "open", root) from error


def _head_of(path: Path, length: int) -> bytes:
    """The first bytes of a regular file (never a FIFO's: opening one would wait); ``b""``
    if it cannot be read."""
    try:
        return read_head(AT_CWD, str(path), length)
    except OSError:
        return b""


def open_dir(parent_fd: int, name: str, *, create: bool) -> int:
    """Open (and if asked, create) a folder without following a symbolic link to it.

    A folder this call creates is reported to the tracer; its name lasts a power
    cut only once the parent is synced (:func:`fsync`).
    """
    made = False
    if create:
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            made = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except NotADirectoryError:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise _a_link(str(name)) from None
        raise NotRegular(
            errno.ENOTDIR, f"it is {kind_of(mode)} where hutch keeps a folder", str(name)
        ) from None
    if made:
        _told("mkdir", parent_fd, name, fd)
    return fd


def open_folder(dir_fd: int, path: str, *, create: bool, sync: bool) -> int:
    """Open the folder ``path`` (``a`` or ``a/b``) under ``dir_fd`` part by part, never
    through a symbolic link; with ``create``, missing parts are made, and with ``sync`` each
    part's name is synced in its parent before anything in it counts."""
    fd = dir_fd
    for part in path.split("/"):
        try:
            inner = open_dir(fd, part, create=create)
            try:
                if create and sync:
                    fsync(fd)
            except BaseException:
                close(inner)
                raise
        finally:
            if fd != dir_fd:
                close(fd)
        fd = inner
    return fd


def entries(dir_fd: int) -> list[tuple[str, str]]:
    """Each entry of a folder: its name and ``"file"``, ``"dir"``, ``"link"`` or ``"other"``.

    Each listing reads the folder through a descriptor of its own: listings
    through one shared descriptor share its position, so two threads listing at
    once (or one listing left half-read) would miss entries.
    """
    found = []
    own = os.open(".", _DIR_FLAGS, dir_fd=dir_fd)
    try:
        with os.scandir(own) as listing:
            for entry in listing:
                if entry.is_symlink():
                    kind = "link"
                elif entry.is_dir(follow_symlinks=False):
                    kind = "dir"
                elif entry.is_file(follow_symlinks=False):
                    kind = "file"
                else:
                    kind = "other"
                found.append((entry.name, kind))
    finally:
        os.close(own)
    return found


def info(dir_fd: int, name: str) -> os.stat_result | None:
    """What ``name`` is (a link is a link), or ``None`` if it is not there."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def exists(dir_fd: int, name: str) -> bool:
    return info(dir_fd, name) is not None


# -- files -----------------------------------------------------------------------------------


def kind_of(mode: int) -> str:
    """What a file is, as a message says it: "a FIFO", not just "not a regular file"."""
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def kind_at(dir_fd: int, name: str) -> str:
    """What ``name`` in a folder is, as :func:`kind_of` says it ("gone" if nothing is)."""
    found = info(dir_fd, name)
    return "gone" if found is None else kind_of(found.st_mode)


class NotRegular(OSError):
    """A name hutch reads or writes is a folder, a FIFO, a device...: never opened further."""


class Linked(OSError):
    """A file hutch changes or locks in place has other names (hard links) it would reach."""


class TooBig(OSError):
    """A file is larger than hutch reads whole for its kind."""


def linked(name: str, found: os.stat_result | None) -> Linked:
    """The error for a file hutch changes or locks in place that has other names."""
    names = found.st_nlink if found is not None else "several"
    return Linked(
        errno.EMLINK,
        f"it has {names} names (hard links), and hutch changes or locks this file in place, "
        "which would reach it under its other names too (perhaps outside the folder); give "
        "it a copy of its own (cp NAME NAME.copy && mv NAME.copy NAME), or remove the other "
        "names",
        name,
    )


def _a_link(name: str) -> NotRegular:
    return NotRegular(errno.ELOOP, "it is a symbolic link, which hutch never follows", name)


def _open(name: str, flags: int, dir_fd: int) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a link is :class:`NotRegular`, like a FIFO."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _a_link(name) from None
        raise


def _regular(fd: int, name: str, may_share: Callable[[], bool] | None) -> os.stat_result:
    """What ``fd`` is, refused (and closed) unless a regular file; one with other names is
    refused too unless ``may_share`` says otherwise (``None``: links are no concern)."""
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            kind = kind_of(found.st_mode)
            code = errno.EISDIR if stat.S_ISDIR(found.st_mode) else errno.EINVAL
            raise NotRegular(code, f"it is {kind}, not a file hutch wrote", name)
        if may_share is not None and found.st_nlink > 1 and not may_share():
            raise linked(name, found)
    except BaseException:
        os.close(fd)
        raise
    return found


def _never() -> bool:
    return False


def open_file(dir_fd: int, name: str, *, may_share: Callable[[], bool] = _never) -> int:
    """An existing regular file opened for changing in place (a log), never through a link,
    never a FIFO, and never a file with other names (hard links) that would change too,
    unless ``may_share()`` says the folder was copied with its links (see links.py)."""
    fd = _open(name, _FILE_FLAGS | os.O_NONBLOCK, dir_fd)
    _regular(fd, name, may_share)
    return fd


def open_lock(dir_fd: int, name: str, *, may_share: Callable[[], bool] = _never) -> int:
    """A lock file (created if missing: its name lasts once the folder is synced), opened
    read-only: hutch only ever ``flock``s it. Refused like :func:`open_file`'s files."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = _open(name, flags | os.O_CREAT | os.O_EXCL, dir_fd)
    except FileExistsError:
        fd = _open(name, flags, dir_fd)
    else:
        _told("create", dir_fd, name, fd)
    _regular(fd, name, may_share)
    return fd


def open_lock_if_present(dir_fd: int, name: str) -> int | None:
    """A lock file opened read-only if it is there (``None`` if not), never created: for a
    process that writes nothing. Refused like :func:`open_file`'s files."""
    try:
        fd = _open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd)
    except FileNotFoundError:
        return None
    _regular(fd, name, _never)
    return fd


def create_new(dir_fd: int, name: str) -> int:
    """A file that must not exist yet (``O_EXCL``), opened for writing; reported to the
    tracer. Its name lasts a power cut only once the folder is synced."""
    fd = os.open(name, _FILE_FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
    _told("create", dir_fd, name, fd)
    return fd


def create_with(dir_fd: int, name: str, data: bytes, *, sync: bool) -> int:
    """A new file ``name`` (it must not exist yet) opened for writing, holding ``data``
    (synced, given ``sync``): a crash leaves it whole, torn or absent, and its name lasts
    only once the folder is synced. The caller closes it."""
    fd = create_new(dir_fd, name)
    try:
        write_at(fd, data, 0)
        if sync:
            fsync(fd)
    except BaseException:
        close(fd)
        raise
    return fd


def close(fd: int) -> None:
    os.close(fd)


class Descriptors:
    """The descriptors a backend holds while a folder is open, closed together (the last
    taken first)."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def own(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in reversed(self._fds):
            with contextlib.suppress(OSError):
                close(fd)
        self._fds.clear()


def duplicate(fd: int) -> int:
    """Another descriptor of the file ``fd`` has open (reads through either take offsets)."""
    return os.dup(fd)


def size(fd: int) -> int:
    return os.fstat(fd).st_size


def inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def stat_of(fd: int) -> os.stat_result:
    return os.fstat(fd)


def read_at(fd: int, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes from ``offset`` (fewer at the end of the file)."""
    chunks = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def read_file(dir_fd: int, name: str, *, limit: int | None = None) -> bytes:
    """The whole content of a regular file in a folder (never through a link, never a FIFO);
    :class:`TooBig` if it holds more than ``limit`` bytes."""
    fd = _open_reading(dir_fd, name)
    try:
        found = os.fstat(fd)
        if limit is not None and found.st_size > limit:
            raise TooBig(
                errno.EFBIG,
                f"it holds {found.st_size:,} bytes, more than the {limit:,} hutch reads from "
                "such a file",
                name,
            )
        data = os.read(fd, found.st_size + 1)
        if len(data) != found.st_size:  # it grew, or the read was short: read on to the end
            chunks = [data]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def read_head(dir_fd: int, name: str, length: int) -> bytes:
    """The first ``length`` bytes of a regular file (fewer if it is shorter), opened as
    :func:`read_file` opens it: a header is checked before a big file is read whole."""
    fd = _open_reading(dir_fd, name)
    try:
        return read_at(fd, 0, length)
    finally:
        os.close(fd)


def read_part(dir_fd: int, name: str, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes of a regular file from ``offset`` (fewer at its end), opened as
    :func:`read_file` opens it."""
    fd = _open_reading(dir_fd, name)
    try:
        return read_at(fd, offset, length)
    finally:
        os.close(fd)


def sync_file(dir_fd: int, name: str) -> None:
    """Make a file's data last a power cut, through a descriptor that cannot write it."""
    fd = _open_reading(dir_fd, name)
    try:
        fdatasync(fd)
    finally:
        os.close(fd)


def _open_reading(dir_fd: int, name: str) -> int:
    fd = _open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd)
    _regular(fd, name, None)
    return fd


def replace_with_copy(dir_fd: int, name: str, *, sync: bool) -> None:
    """Replace a file by a copy of itself, read and written a piece at a time (so a big log
    costs no memory): its other names keep the old file. Done as :func:`write_atomic`."""
    source = _open_reading(dir_fd, name)

    def copy(fd: int) -> None:
        offset = 0
        while chunk := read_at(source, offset, 1 << 20):
            write_at(fd, chunk, offset)
            offset += len(chunk)

    try:
        _replace(dir_fd, name, copy, sync=sync, sync_folder=True)
    finally:
        os.close(source)


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``."""
    view = memoryview(data)
    position = offset
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
    _told("write", fd, offset, data)


def truncate(fd: int, length: int) -> None:
    os.ftruncate(fd, length)
    _told("truncate", fd, length)


def fsync(fd: int) -> None:
    """Make a file's data and size, or a folder's entries, last a power cut."""
    if _FULLFSYNC is not None:
        fcntl.fcntl(fd, _FULLFSYNC)
    else:
        os.fsync(fd)
    _told("sync", fd)


def fdatasync(fd: int) -> None:
    """Make a file's data (and size) last a power cut; cheaper than :func:`fsync` for logs."""
    if _FULLFSYNC is not None:
        fcntl.fcntl(fd, _FULLFSYNC)
    else:
        os.fdatasync(fd)
    _told("sync", fd)


def rename(from_dir: int, name: str, to_dir: int, new_name: str) -> None:
    """Move an entry, replacing what ``new_name`` named; lasts once both folders are synced."""
    os.rename(name, new_name, src_dir_fd=from_dir, dst_dir_fd=to_dir)
    _told("rename", from_dir, name, to_dir, new_name)


def remove(dir_fd: int, name: str) -> None:
    """Remove a file if it is there (:class:`NotRegular` if a folder is)."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise _in_the_way(name) from None
    except PermissionError:  # what unlink of a folder raises where it is not EISDIR
        found = info(dir_fd, name)
        if found is not None and stat.S_ISDIR(found.st_mode):
            raise _in_the_way(name) from None
        raise
    _told("unlink", dir_fd, name)


def remove_folder(dir_fd: int, name: str) -> None:
    """Remove an empty folder; lasts once its parent is synced."""
    os.rmdir(name, dir_fd=dir_fd)
    _told("rmdir", dir_fd, name)


def _in_the_way(name: str) -> NotRegular:
    return NotRegular(errno.EISDIR, "it is a folder where hutch keeps a file", name)


def append_after(fd: int, data: bytes, end: int, *, sync: bool) -> None:
    """Write ``data`` at ``end`` (the end of the last intact line) of a log file.

    Anything past ``end`` is the torn tail of an append that crashed and is cut
    off first; on any error the file is cut back to ``end`` again, so no partial
    line stays. ``sync``: make it last a power cut before returning.
    """
    if size(fd) != end:
        truncate(fd, end)
    try:
        write_at(fd, data, end)
        if sync:
            fdatasync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            truncate(fd, end)
        raise


def write_atomic(
    dir_fd: int, name: str, data: bytes, *, sync: bool, sync_folder: bool = True
) -> None:
    """Replace ``name`` with ``data`` all at once: temp file, fsync, rename, folder fsync.

    A reader (or a crash) sees the old content or the new, never a mix; on an
    error the temp file is removed and the old content stays. Without ``sync``
    nothing is flushed (``durability="none"``); without ``sync_folder`` the
    caller syncs the folder itself, once for many files.
    """
    _replace(
        dir_fd, name, partial(write_at, data=data, offset=0), sync=sync, sync_folder=sync_folder
    )


def _replace(
    dir_fd: int, name: str, fill: Callable[[int], None], *, sync: bool, sync_folder: bool
) -> None:
    """:func:`write_atomic`, the new content written by ``fill(fd)`` into the temp file."""
    temp = f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    fd = create_new(dir_fd, temp)
    try:
        try:
            fill(fd)
            if sync:
                fsync(fd)
        finally:
            os.close(fd)
        try:
            rename(dir_fd, temp, dir_fd, name)
        except OSError as error:
            if error.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):  # a folder there
                raise _in_the_way(name) from error
            raise
    except BaseException:
        remove(dir_fd, temp)
        raise
    if sync and sync_folder:
        fsync(dir_fd)


def is_temp(name: str) -> bool:
    """Temp files are dot-led (so never a record) and end in ``.tmp``."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temp_files(dir_fd: int) -> None:
    """Remove the temp files a crash left behind in a folder; they never held committed data."""
    for name, kind in list(entries(dir_fd)):
        if kind == "file" and is_temp(name):
            remove(dir_fd, name)


#: The temp file :func:`write_atomic` and :func:`replace_with_copy` write: ``.<name>.<8 hex>.tmp``.
_TEMP_OF = re.compile(r"\.(.+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX)).fullmatch


def temp_target(name: str) -> str | None:
    """The file whose atomic replacement left the temp file ``name`` (``None``: ``name`` is
    no such temp file), so that only the temp files of a folder's own files are removed."""
    found = _TEMP_OF(name)
    return None if found is None else found[1]


def remove_temp_files_of(
    dir_fd: int, listing: list[tuple[str, str]], ours: Callable[[str], bool]
) -> None:
    """Remove the temp files that replacing the files ``ours`` names left in a folder
    (``listing``: its entries, as :func:`entries` found them); any other file stays."""
    for name, kind in listing:
        target = temp_target(name) if kind == "file" else None
        if target is not None and ours(target):
            remove(dir_fd, name)


# -- locks -----------------------------------------------------------------------------------


def lock(fd: int, *, wait: bool = True, shared: bool = False) -> bool:
    """Take the exclusive (or ``shared``) ``flock`` of ``fd``; without ``wait``, only if it
    is free (``False`` if it is not)."""
    kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, kind if wait else kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_shared(fd: int) -> None:
    """Take a shared ``flock`` of ``fd``, held until the file is closed."""
    fcntl.flock(fd, fcntl.LOCK_SH)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def sole_holder(fd: int) -> bool:
    """Whether the shared ``flock`` this process holds on ``fd`` is the only one: turned
    into an exclusive one if it is, then back. Call it only while holding a lock that
    every other caller holds too (the write lock), since a failed turn drops the lock
    for a moment before it is taken again."""
    alone = lock(fd, wait=False)
    lock_shared(fd)
    return alone


# -- who else has a file open (Linux: /proc) -------------------------------------------------


def lock_holders(found: os.stat_result, kind: str, byte: int = 0) -> set[int]:
    """The processes holding a lock on the file ``found`` describes, as ``/proc/locks`` shows
    them: ``kind`` ``"FLOCK"`` (a whole file, shared or not) or ``"POSIX"`` (a write lock on a
    range covering ``byte``); waiters left out. None found where there is no ``/proc/locks``."""
    try:
        with open("/proc/locks") as table:
            lines = table.read().splitlines()
    except OSError:
        return set()
    file = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    pids = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] != kind or (kind == "POSIX" and fields[3] != "WRITE"):
            continue  # (a waiter's line reads "->" where the kind is)
        start, end = fields[6], fields[7]
        try:
            covers = int(start) <= byte and (end == "EOF" or byte <= int(end))
        except ValueError:
            continue
        if fields[5] == file and covers and fields[4].isdigit():
            pids.add(int(fields[4]))
    return pids


def openers(dir_fd: int, name: str) -> set[int]:
    """The other processes that have the file ``name`` open, as far as ``/proc`` shows them.

    Processes of other users are invisible unless this one is root; where there
    is no ``/proc`` (not Linux), none are found.
    """
    found = info(dir_fd, name)
    if found is None or not os.path.isdir("/proc"):
        return set()
    target = (found.st_dev, found.st_ino)
    me = os.getpid()
    pids = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # gone, or not ours to see
        for descriptor in descriptors:
            try:
                opened = os.stat(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            if (opened.st_dev, opened.st_ino) == target:
                pids.add(int(pid))
                break
    return pids


def flock_holders(dir_fd: int, name: str) -> set[int]:
    """The processes holding (or waiting for) an ``flock`` on ``name``, from ``/proc/locks``."""
    found = info(dir_fd, name)
    try:
        with open("/proc/locks", encoding="ascii") as table:
            lines = table.read().splitlines()
    except OSError:
        return set()
    if found is None:
        return set()
    device = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    pids = set()
    for line in lines:
        fields = [field for field in line.split() if field != "->"]
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            pids.add(int(fields[4]))
    return pids


def file_system_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``nfs4``, ``fuse.sshfs``...),
    from ``/proc/self/mountinfo``; ``None`` where that cannot be told (not Linux)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as table:
            mounts = table.read().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, found = "", None
    for line in mounts:
        fields = line.split(" ")
        try:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040
            kind = fields[fields.index("-") + 1]
        except (IndexError, ValueError, UnicodeDecodeError):
            continue
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, found = point, kind
    return found
