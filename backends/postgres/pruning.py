"""Pruning the change log: which lines go, when, and how a node learns it missed some.

The log is cut from its oldest end: a line goes once it, and every line before
it, is **both** older than ``log_keep_seconds`` (its ``at``: when the
transaction that wrote it began) **and** not among the newest ``log_keep_rows``
lines. The newest line always stays, since it says how far the log goes. A node
prunes inside one of its own write transactions, holding the store's write
lock: its first, then every :data:`EVERY`-th, so the work is spread over the
nodes that write, in proportion to their writes. The same transaction records
the highest number it deleted as ``pruned_through`` in ``_hutch``: a node whose
position is below it may have missed lines, so it reads everything again
(docs/postgres-format.md, "Pruning the change log").

The options are ``hutch.open``'s: ``hutch.open(url, log_keep_seconds=3600,
log_keep_rows=10_000)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus

from hutch import ConfigError, CorruptData
from hutch.config import redact_text

from .schema import META_TABLE, Layout, literal

if TYPE_CHECKING:
    from .persister import Connection

log = logging.getLogger("hutch.backends.postgres")

#: The options of ``hutch.open`` this module reads.
OPTIONS = ("log_keep_seconds", "log_keep_rows")
#: By default a line stays a day, and the newest 100,000 lines stay whatever their age.
KEEP_SECONDS = 24 * 3600.0
KEEP_ROWS = 100_000
#: The longest age that can be asked for (about 68 years: PostgreSQL takes any interval, but
#: a number of seconds beyond this is a mistake).
LONGEST_KEEP_SECONDS = 2**31
#: A node prunes at its first commit, then at every EVERY-th.
EVERY = 1000
#: The key of ``_hutch`` that holds the highest number pruning deleted.
PRUNED_THROUGH = "pruned_through"
#: The savepoint a pruning runs in: one that fails (a role that may not delete lines) is
#: undone alone, and the commit goes on.
SAVEPOINT = "hutch_prune"


class Pruning:
    """The policy one node prunes by, and when its next commit prunes."""

    def __init__(self, options: Mapping[str, Any], where: str) -> None:
        seconds = options.get("log_keep_seconds", KEEP_SECONDS)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= LONGEST_KEEP_SECONDS
        ):
            raise ConfigError(
                f"log_keep_seconds takes a number of seconds from 0 to {LONGEST_KEEP_SECONDS}, "
                f"not {seconds!r} (given to hutch.open for {where}): how long a line of the "
                "change log stays at least, 86400 (a day) by default"
            )
        rows = options.get("log_keep_rows", KEEP_ROWS)
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows < 2**63:
            raise ConfigError(
                f"log_keep_rows takes a whole number from 0 up, not {rows!r} (given to "
                f"hutch.open for {where}): how many of the change log's newest lines stay "
                f"whatever their age, {KEEP_ROWS} by default"
            )
        self.keep_seconds = float(seconds)
        self.keep_rows = rows
        self._commits = 0

    def due(self) -> bool:
        """Whether this commit of the node prunes (its first, then every :data:`EVERY`-th)."""
        due = self._commits % EVERY == 0
        self._commits += 1
        return due

    def run(self, conn: Connection, layout: Layout, head: int, where: str) -> None:
        """Cut the log from its oldest end, up to the first line that is young or among the
        newest, and below ``head`` (its last line when the write lock was taken: the newest
        line, and the transaction's own, stay); record the highest number deleted. Run in a
        transaction holding the write lock; a pruning that fails (a role that may not delete
        lines) is undone alone, in its savepoint, and logged: the commit goes on.

        Reading from the oldest end costs about as many lines as go, not the whole log."""
        changes = layout.changes
        young = (
            f"(SELECT seq FROM {changes} WHERE at >= now() - make_interval(secs => "
            f"{self.keep_seconds!r}) ORDER BY seq LIMIT 1)"
        )
        newest = (
            f"coalesce((SELECT seq FROM {changes} ORDER BY seq DESC OFFSET {self.keep_rows - 1} "
            "LIMIT 1), 0)"  # (fewer lines than that: none goes)
            if self.keep_rows
            else str(head)
        )
        try:
            conn.execute(
                f"SAVEPOINT {SAVEPOINT}; "
                f"WITH gone AS (DELETE FROM {changes} "
                f"WHERE seq < least({head}, coalesce({young}, {head}), {newest}) RETURNING seq) "
                f"INSERT INTO {layout.meta} AS m (key, value) "
                f"SELECT {literal(PRUNED_THROUGH)}, max(seq)::text FROM gone HAVING count(*) > 0 "
                "ON CONFLICT (key) DO UPDATE SET value = CASE "
                # a mark beyond the log's end is from before it was restarted: replaced
                f"WHEN m.value::bigint > {head} THEN excluded.value "
                "ELSE greatest(m.value::bigint, excluded.value::bigint)::text END; "
                f"RELEASE SAVEPOINT {SAVEPOINT}"
            )
        except psycopg.Error as error:
            if conn.pgconn.transaction_status != TransactionStatus.INERROR:
                raise  # the connection is lost: the transaction with it
            conn.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            log.warning(
                "pruning the change log of %s failed (%s: %s); the commit goes on, and a later "
                "one tries again",
                where,
                type(error).__name__,
                redact_text(str(error).strip()),
            )


def pruned_through(conn: Connection, layout: Layout, where: str) -> int:
    """The highest number pruning deleted from the change log (0: none yet)."""
    found = conn.execute(
        f"SELECT value FROM {layout.meta} WHERE key = {literal(PRUNED_THROUGH)}"
    ).fetchone()
    if found is None:
        return 0
    text = found[0]
    if not text.isdigit():
        raise CorruptData(
            f"{where}: table {META_TABLE} says {PRUNED_THROUGH} is {text!r}, not a number; "
            "put back a number no lower than the last line pruning deleted, e.g. the line "
            f"before the change log's first: UPDATE {META_TABLE} SET value = (SELECT "
            f"min(seq) - 1 FROM _hutch_changes)::text WHERE key = '{PRUNED_THROUGH}'"
        )
    return int(text)
