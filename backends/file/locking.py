"""The locks of a data folder: bounded waits, and the holder named when one runs out.

A :class:`FolderLock` is an ``flock`` on a file of the folder, which every
process shares, with a mutex in front of it for this process's threads (an
``flock`` belongs to an open file, so two threads of one process would both
"hold" it). No wait is longer than the ``lock_timeout`` given to ``hutch.open``:
past it, :class:`~hutch.LockTimeout` names the folder and the process that holds
the lock, as the kernel's table of locks (``/proc/locks``) shows it: nothing is
written to take a lock, so a commit costs no extra write and a lock file stays
empty. (POSIX ``fcntl`` locks are no choice: a process drops them all when it
closes any descriptor of the file.)
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hutch import ClosedError, LockTimeout

from . import fsio

#: How long a waiter sleeps between tries at most: a lock is handed on within about this.
_LONGEST_NAP = 0.001


class FolderLock:
    """One lock file of a folder, taken by one thread of this process at a time."""

    def __init__(self, fd: int, path: Path, what: str, timeout: float) -> None:
        self._fd = fd
        self._path = path
        self._what = what  # "the write lock", say
        self._timeout = timeout
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._retired = False  # the database closed: its descriptor number may be another's

    def owned(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def acquire(self, *, wait: bool = True, shared: bool = False) -> bool:
        """Take the lock, waiting at most the timeout (then :class:`~hutch.LockTimeout`);
        without ``wait``, take it only if it is free (``False`` if it is not). ``shared``:
        other processes may hold it shared meanwhile (this process's other threads wait
        all the same)."""
        deadline = time.monotonic() + self._timeout
        if not self._mutex.acquire(
            timeout=min(self._timeout, threading.TIMEOUT_MAX) if wait else 0
        ):
            if not wait:
                return False
            holder = "another thread of this process"
            raise _timed_out(self._what, self._path, self._timeout, holder)
        try:
            if self._retired:
                raise ClosedError("the database is closed; open it again with hutch.open(...)")
            taken = _flock(self._fd, wait=wait, deadline=deadline, shared=shared)
        except BaseException:
            self._mutex.release()
            raise
        if not taken:
            self._mutex.release()
            if not wait:
                return False
            raise _timed_out(self._what, self._path, self._timeout, _holder(self._fd))
        self._owner = threading.get_ident()
        return True

    def release(self) -> None:
        self._owner = None
        try:
            fsio.unlock(self._fd)
        finally:
            self._mutex.release()

    def retire(self) -> None:
        """The database closes: no later call takes the lock (its descriptor is closed, and
        the number may soon be another file's)."""
        if self.owned():  # (the closing thread holds it: a listener inside a transaction)
            self._retired = True
            return
        with self._mutex:
            self._retired = True

    @contextmanager
    def this_process(self) -> Iterator[None]:
        """Keep this process's other threads out, without the ``flock``: for what must not
        wait for another process (putting back what a failed checkpoint took)."""
        with self._mutex:
            yield

    @contextmanager
    def held(self, *, shared: bool = False) -> Iterator[None]:
        self.acquire(shared=shared)
        try:
            yield
        finally:
            self.release()


def _holder(fd: int) -> str:
    """The process holding the lock of ``fd``, as far as the kernel's table of locks tells."""
    try:
        pids = fsio.lock_holders(fsio.stat_of(fd), "FLOCK")
    except OSError:
        pids = set()
    if os.getpid() in pids:
        return f"this process ({os.getpid()}), through another database of the folder,"
    if not pids:
        return "another process (this system does not say which)"
    return "process " + ", ".join(map(str, sorted(pids)))


def _timed_out(what: str, path: Path, timeout: float, holder: str) -> LockTimeout:
    return LockTimeout(
        f"could not take {what} of {path.parent} within {timeout:g} s (lock_timeout): "
        f"{holder} holds it ({path.name}). Find out why it holds it so long (a stuck "
        "transaction, a stopped process), or give hutch.open a larger lock_timeout"
    )


@contextmanager
def held_shared(fd: int | None, path: Path, what: str, timeout: float) -> Iterator[None]:
    """Hold a shared ``flock`` of a lock file (``None``: there is none, so nothing to hold),
    waiting at most ``timeout`` seconds for an exclusive holder: what a process that
    writes nothing takes to read a consistent folder."""
    if fd is None:
        yield
        return
    if not _flock(fd, wait=True, deadline=time.monotonic() + timeout, shared=True):
        raise _timed_out(what, path, timeout, _holder(fd))
    try:
        yield
    finally:
        fsio.unlock(fd)


def _flock(fd: int, *, wait: bool, deadline: float, shared: bool = False) -> bool:
    """Take the exclusive (or ``shared``) ``flock`` of ``fd`` by ``deadline``
    (``time.monotonic``); without ``wait``, only if it is free. A waiter tries again after
    naps that double up to :data:`_LONGEST_NAP` (as SQLite's busy handler does): a blocking
    ``flock`` cannot be given a timeout."""
    if fsio.lock(fd, wait=False, shared=shared):
        return True
    if not wait:
        return False
    if math.isinf(deadline):
        return fsio.lock(fd, shared=shared)
    nap = 0.00005
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(nap, left))
        if fsio.lock(fd, wait=False, shared=shared):
            return True
        nap = min(nap * 2, _LONGEST_NAP)
