"""The change feed's wake-up: a session of its own that ``LISTEN``s on the store's channel.

Every commit that writes the store's rows notifies ``hutch_<schema oid>`` with
the number of its last line in the change log (the triggers of :mod:`.schema`).
A thread of each node waits on a session that listens there and keeps the last
number it heard, so that the follower's look every 10 ms (``behind()``) costs
no query while nothing is new. A notification only wakes a node, which then
reads the log itself: one that is missed (a commit that went by while the
session was lost, a pooler that drops them) costs latency, never a change,
because the persister also asks the log itself once every :data:`FALLBACK`
seconds, and at every look while the session is not listening. A lost session
is made again, at once, then waiting longer after each failure (up to
:data:`LONGEST_PAUSE`).

``LISTEN`` needs a session that stays the node's: through pgbouncer's
transaction pooling nothing is heard, and the fallback alone keeps nodes
current, within :data:`FALLBACK` (docs/postgres-format.md, "How a node keeps
current").
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.pq import ConnStatus

from hutch import HutchError

from .schema import ident

log = logging.getLogger("hutch.backends.postgres")

Connection = psycopg.Connection[tuple[Any, ...]]

#: Seconds between two looks at the log while the session listens: a notification that was
#: missed reaches the node within about this long.
FALLBACK = 1.0
#: The wait before the session is made again after a failure, doubled after each further one
#: up to :data:`LONGEST_PAUSE`.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 5.0
#: How long :meth:`Feed.close` waits for the thread (which may be connecting, for as long as
#: ``connect_timeout``: it then closes what it made by itself).
CLOSE_WAIT = 5.0


class Feed:
    """What a node heard on the store's channel. The listening thread starts at the first
    :meth:`news`, so a persister that is never asked (a mirror's) makes no session."""

    def __init__(self, connect: Callable[[], Connection], channel: str, where: str) -> None:
        self._connect = connect
        self._channel = channel
        self._where = where
        self._lock = threading.Lock()
        self._known = 0  # the log's last number, as last heard or asked
        self._below = False  # the log, asked, ended before this node's position then
        self._notes = 0  # how many notifications were heard
        self._unsure = True  # the log must be asked: the session is new, or a notification odd
        self._asked = -math.inf  # when the log was last asked (time.monotonic)
        self._listening = False
        self._sessions = 0  # how many sessions listened so far
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._waker: socket.socket | None = None  # a byte sent here wakes the thread

    def news(self, position: int) -> bool | None:
        """Whether the log goes further than ``position``, as far as the feed can tell without
        a query; ``None`` when it cannot (its session does not listen, or the log was last
        asked :data:`FALLBACK` seconds ago or more): then ask the log (:meth:`asking`).

        A number beyond ``position`` is news. One below it is not, when a notification
        carried it or the log was asked before this node's own commit moved the position
        on (the commit's notification is on its way); it is when the log, asked, ended
        before the position of that moment: it was restarted."""
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._waker, woken = socket.socketpair()
                self._thread = threading.Thread(
                    target=self._run, args=(woken,), name="hutch-listener", daemon=True
                )
                self._thread.start()
            if not self._listening or self._unsure or time.monotonic() - self._asked >= FALLBACK:
                return None
            return self._known > position or (self._below and self._known < position)

    def asking(self, position: int) -> tuple[int, int]:
        """The persister, at ``position``, asks the log now; give :meth:`answered` what this
        returns."""
        with self._lock:
            self._unsure = False
            return self._notes, position

    def answered(self, asked: tuple[int, int], last: int) -> None:
        """The log's last number is ``last``, as the look that began with ``asked`` found."""
        notes, position = asked
        with self._lock:
            self._asked = time.monotonic()
            if self._notes == notes:
                self._known, self._below = last, last < position
            else:  # a notification came meanwhile: the newer of the two
                self._known = max(self._known, last)

    def close(self) -> None:
        """Stop listening: wake the thread, which closes its session, and wait for it (at most
        :data:`CLOSE_WAIT` seconds)."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            thread, waker = self._thread, self._waker
        if thread is None or waker is None:
            return
        with contextlib.suppress(OSError):
            waker.send(b"\0")
        thread.join(CLOSE_WAIT)
        waker.close()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self, woken: socket.socket) -> None:
        pause = FIRST_PAUSE
        warned = False
        try:
            while not self._stopping.is_set():
                sessions = self._sessions
                try:
                    self._listen(woken)
                except (psycopg.Error, HutchError, OSError) as error:
                    if self._stopping.is_set():
                        break
                    if self._sessions != sessions:  # it had listened: make it again at once
                        pause, warned = 0.0, False
                    log.log(
                        logging.DEBUG if warned else logging.WARNING,
                        "the session listening for commits to %s failed (%s): asking the change "
                        "log at every look until it listens again",
                        self._where,
                        error,
                    )
                    warned = True
                self._stopping.wait(pause)
                pause = min(max(pause * 2, FIRST_PAUSE), LONGEST_PAUSE)
        finally:
            woken.close()

    def _listen(self, woken: socket.socket) -> None:
        """Make a session, listen, and note what it hears until :meth:`close` (returns) or the
        session fails (raises)."""
        conn = self._connect()
        try:
            if self._stopping.is_set():
                return
            conn.execute(f"LISTEN {ident(self._channel)}")
            with self._lock:
                self._listening = True
                self._unsure = True  # what was committed before LISTEN went unheard
                self._sessions += 1
            pgconn = conn.pgconn
            with selectors.DefaultSelector() as selector:
                selector.register(pgconn.socket, selectors.EVENT_READ)
                selector.register(woken, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    selector.select()
                    pgconn.consume_input()  # raises once the server ended the session
                    while (note := pgconn.notifies()) is not None:
                        self._hear(note.extra)
                    if pgconn.status != ConnStatus.OK:
                        raise psycopg.OperationalError("the server ended the session")
        finally:
            with self._lock:
                self._listening = False
            conn.close()

    def _hear(self, payload: bytes) -> None:
        with self._lock:
            self._notes += 1
            try:
                self._known, self._below = int(payload), False
            except ValueError:  # a notification on the channel that is none of hutch's
                self._unsure = True
