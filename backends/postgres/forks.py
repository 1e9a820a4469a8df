"""A forked child leaves its parent's PostgreSQL sessions alone.

A child made by ``fork()`` (a web server's workers, ``multiprocessing``) holds
copies of its parent's connections, each on a socket it shares with the parent.
Closing one there (libpq's ``PQfinish``, when the child closes a database it
inherited) would send the server a Terminate message on that socket and end
the parent's session under it. So, right after a fork, the child points each
inherited connection's socket at ``/dev/null`` and only then closes it: what
libpq says on the way out goes nowhere, and the fd is gone from the child. The
parent keeps its sessions; the child opens sessions of its own when it opens a
database (an inherited ``Database`` refuses use there, saying so).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any, TypeVar

import psycopg

C = TypeVar("C", bound=psycopg.Connection[Any])

#: Every connection hutch opened in this process and has not seen garbage-collected.
_connections: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def track(conn: C) -> C:
    """Note ``conn``, so that a child forked from this process lets go of it quietly."""
    _connections.add(conn)
    return conn


def _forget_inherited() -> None:
    """(In a forked child.) Close each inherited connection without a word to the server."""
    inherited = list(_connections)
    _connections.clear()
    if not inherited:
        return
    nowhere = os.open(os.devnull, os.O_RDWR)
    try:
        for conn in inherited:
            # (A connection closed or broken has no socket left to redirect.)
            with contextlib.suppress(psycopg.Error, OSError):
                os.dup2(nowhere, conn.pgconn.socket)
                conn.close()
    finally:
        os.close(nowhere)


os.register_at_fork(after_in_child=_forget_inherited)
