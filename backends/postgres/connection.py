"""Connections that never wait for ever on a server that has gone quiet.

libpq bounds connecting (``connect_timeout``), and the kernel, given the TCP settings
hutch adds (keepalives, ``tcp_user_timeout``), notices a peer whose machine or network is
gone. Neither notices a peer whose kernel still answers while nothing answers the
command: a proxy or pooler between node and server that is stuck, a server process that
hangs. :class:`BoundedConnection` gives up on a command once the server has sent nothing
for its ``patience``: the bound is on silence, not on the command's length, so rows that
stream back keep a large read going. A connection that gives up is closed, and the
persister connects again at its next call.
"""

from __future__ import annotations

import select
import time
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.pq import TransactionStatus

T = TypeVar("T")

#: How often psycopg wakes while it waits for the server (its own default): silence is
#: measured then.
_INTERVAL = 0.1


class Silent(psycopg.OperationalError):
    """The server sent nothing for longer than the connection's patience while a command was
    in flight; the connection was closed."""


class BoundedConnection(psycopg.Connection[tuple[Any, ...]]):
    """A psycopg connection whose commands fail (:class:`Silent`) once the server has sent
    nothing for ``patience`` seconds (``None``: wait for ever, as psycopg does)."""

    patience: float | None = None

    def wait(self, gen: PQGen[T], interval: float = _INTERVAL, timeout: float | None = None) -> T:
        if self.patience is not None:
            gen = self._heard_within(gen, self.patience)
        try:
            if timeout is None:  # (psycopg 3.2 takes no timeout)
                return super().wait(gen, interval)
            return super().wait(gen, interval, timeout)
        except Silent:
            self.close()
            raise

    def _heard_within(self, gen: PQGen[T], patience: float) -> PQGen[T]:
        """``gen``, raising :class:`Silent` when a command has been in flight for ``patience``
        seconds since the socket was last ready (a wait between commands, such as one for
        notifications, is not bounded)."""
        heard = time.monotonic()
        try:
            waiting = next(gen)
            while True:
                ready = yield waiting
                if ready:
                    heard = time.monotonic()
                elif (
                    self.pgconn.transaction_status == TransactionStatus.ACTIVE
                    and time.monotonic() - heard > patience
                ):
                    raise Silent(
                        f"the server sent nothing for {patience:g} s while a command was in flight"
                    )
                waiting = gen.send(ready)
        except StopIteration as done:
            result: T = done.value
            return result


def ended(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server ended this idle connection (it restarted, or a person ended the
    session): what it sent meanwhile is read without waiting, so that a transaction is not
    begun on a connection that is gone."""
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    for _ in range(2):  # the server's last word, then the end of the stream
        if not poller.poll(0):
            break
        try:
            conn.pgconn.consume_input()
        except psycopg.OperationalError:
            break
    return conn.closed
