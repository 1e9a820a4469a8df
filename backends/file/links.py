"""Hard links in a data folder: refused where hutch changes or locks a file in place, and
undone for a folder copied whole with its links (``cp -al``).

A file hutch appends to, cuts or ``flock``s (a log, the commit log, a lock file)
must have one name: a hard link would carry hutch's writes, or share its locks,
with a name elsewhere, perhaps outside the folder. Files hutch replaces by
rename (records, the manifest, values, indices) may keep other names: those
keep the old content. A folder whose manifest has other names too was copied
whole (``cp -al``, for a snapshot): its log and lock files are shared with the
copy's, which is no attack, so they are tolerated while the other copy is in
use, and replaced by copies of their own at the first open when neither is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from hutch import StorageError

from . import fsio
from .folder import MANIFEST

#: Every process that has the folder open holds a shared ``flock`` on this file.
OPEN_MARK = "hutch.open"

#: The files a backend changes or locks in place: folder descriptor, and which of its names.
InPlace = list[tuple[int, Callable[[str], bool]]]

#: How many times an open tries again when the open mark was replaced under it.
_TRIES = 100


def copied_whole(root_fd: int) -> bool:
    """Whether the folder's manifest has other names: the folder was copied with its links."""
    found = fsio.info(root_fd, MANIFEST)
    return found is not None and found.st_nlink > 1


def may_share(root_fd: int) -> Callable[[], bool]:
    """What :func:`fsio.open_file` asks before it opens a file with other names."""
    return partial(copied_whole, root_fd)


def _always() -> bool:
    return True


def hold_open_mark(
    root_fd: int, root: Path, in_place: InPlace, *, sync: bool, log: logging.Logger
) -> int:
    """Open :data:`OPEN_MARK` and take its shared ``flock``, for as long as the folder is open;
    first refuse the files of ``in_place`` (this one among them) that have other names,
    unless the folder was copied whole (see the module's docstring).

    A process that has the folder open (or is giving it copies of its own) also holds
    a shared ``flock`` on the root folder itself, which no copy shares (folders have
    no hard links): so a process joining a copy in use is told from one opening a copy
    whose original is in use, which is refused.
    """
    for _ in range(_TRIES):
        fd = fsio.open_lock(root_fd, OPEN_MARK, may_share=_always)
        try:
            linked = _linked(in_place)
            whole = copied_whole(root_fd)
            if linked and not whole:
                dir_fd, name = linked[0]
                raise fsio.linked(name, fsio.info(dir_fd, name))
            if whole and fsio.lock(fd, wait=False):  # no process has either copy open
                fsio.lock_shared(root_fd)  # (one opening meanwhile waits for this, not refused)
                _copy(root_fd, linked, sync=sync)
                log.warning(
                    "%s was copied with its hard links (cp -al?): it now has copies of its own "
                    "of the %d log and lock files it shared",
                    root,
                    len(linked),
                )
            elif linked and not _in_use(root_fd):  # the other copy is the one in use
                raise StorageError(
                    f"{root} was copied with its hard links (cp -al?) from a folder that a "
                    "process has open, and they share their log and lock files: close that "
                    "process, and this folder gets copies of its own at its next open"
                )
            else:
                fsio.lock_shared(fd)  # waits while another process copies
                now = fsio.info(root_fd, OPEN_MARK)
                if now is not None and now.st_ino == fsio.inode(fd):
                    fsio.lock_shared(root_fd)
                    return fd  # (else another process replaced it by a copy meanwhile)
        except BaseException:
            fsio.close(fd)
            raise
        fsio.close(fd)
    raise StorageError(f"could not open {root}: {OPEN_MARK} kept being replaced; try again")


def _in_use(root_fd: int) -> bool:
    """Whether a process has this very folder open (holds its root folder's shared lock)."""
    probe = fsio.open_dir(root_fd, ".", create=False)
    try:
        return not fsio.lock(probe, wait=False)
    finally:
        fsio.close(probe)  # (and with it the lock, if it was taken)


def _linked(in_place: InPlace) -> list[tuple[int, str]]:
    """The files changed or locked in place that have other names."""
    found = []
    for dir_fd, ours in in_place:
        for name, kind in fsio.entries(dir_fd):
            if kind == "file" and ours(name):
                entry = fsio.info(dir_fd, name)
                if entry is not None and entry.st_nlink > 1:
                    found.append((dir_fd, name))
    return found


def _copy(root_fd: int, linked: list[tuple[int, str]], *, sync: bool) -> None:
    """Replace each linked file by a copy of its own, holding the open mark alone. The open
    mark goes after the others (a process opening meanwhile waits on the old one, then
    finds it replaced), and the manifest last: until then, a crash leaves the folder
    known as a copy, whose next open finishes the work."""
    mark = (root_fd, OPEN_MARK)
    for dir_fd, name in [*(p for p in linked if p != mark), *(p for p in linked if p == mark)]:
        fsio.replace_with_copy(dir_fd, name, sync=sync)
    fsio.replace_with_copy(root_fd, MANIFEST, sync=sync)
