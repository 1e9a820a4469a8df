"""Mirrors: other backends that receive every committed change of the primary.

``hutch.open(primary_url, mirrors=["sqlite:///mirror.db"])`` keeps a copy of
the data in another backend, for comparison and for tools (SQL, Datasette).
The primary is the truth: a mirror that fails never fails a commit. It records
the error, stops taking changes, and catches up on :meth:`Mirror.resync`
(``db.resync_mirrors()``, and on every open) by comparing its whole content
with the primary's and applying the difference. A mirror is also told of each
relationship defined, so that a SQLite mirror shows the links as foreign keys.
"""

from __future__ import annotations

import logging
from typing import Any

from hutch.cells import Row, same_json
from hutch.changes import Changes
from hutch.config import URL
from hutch.persister import Persister, Snapshot
from hutch.relationships import Relationship
from hutch.store import Store

log = logging.getLogger("hutch.mirrors")


class Mirror:
    """One mirror of a database: its URL, its persister, and whether it is in step."""

    def __init__(self, url: URL, persister: Persister) -> None:
        self.url = url
        self.persister = persister
        #: The last failure, until a resync succeeds (``None`` while the mirror is in step).
        self.error: Exception | None = None
        self.in_step = False
        self._relationships: dict[str, Relationship] = {}

    def describe(self, relationship_id: str, relationship: Relationship) -> None:
        """Pass on a relationship the primary defined; a failure is recorded, never raised."""
        self._relationships[relationship_id] = relationship
        if not self.in_step:
            return  # resync describes it
        try:
            self.persister.describe_relationship(relationship_id, relationship)
        except Exception as error:
            self._fell_behind(error)

    def take(self, changes: Changes) -> None:
        """Apply a commit of the primary; a failure is recorded, never raised."""
        if not self.in_step:
            return
        try:
            self._apply(changes)
        except Exception as error:
            self._fell_behind(error)

    def resync(self, store: Store) -> bool:
        """Make the mirror hold exactly what the primary holds; return whether it worked."""
        with store.lock:
            try:
                snapshot = self.persister.load()
                for relationship_id, relationship in self._relationships.items():
                    self.persister.describe_relationship(relationship_id, relationship)
                difference = _difference(store, snapshot)
                if difference:
                    self._apply(difference)
            except Exception as error:
                self._fell_behind(error)
                return False
            self.error, self.in_step = None, True
            return True

    def close(self) -> None:
        self.persister.close()

    def _apply(self, changes: Changes) -> None:
        self.persister.begin()
        try:
            self.persister.apply(changes)
        finally:
            self.persister.end()

    def _fell_behind(self, error: Exception) -> None:
        self.error, self.in_step = error, False
        log.warning(
            "the mirror %s fell behind (%s: %s); db.resync_mirrors() brings it back",
            self.url.redacted(),
            type(error).__name__,
            error,
        )

    def __repr__(self) -> str:
        state = "in step" if self.in_step else f"behind ({self.error!r})"
        return f"<hutch.Mirror {self.url.redacted()!r} {state}>"


def _difference(store: Store, mirror: Snapshot) -> Changes | None:
    """What the mirror must change to hold exactly the primary's rows and values."""
    tables: dict[str, dict[str, Row | None]] = {}
    for table_id in set(store.get_table_ids()) | set(mirror.tables):
        ours = store.get_table(table_id)
        theirs = mirror.tables.get(table_id, {})
        changed: dict[str, Row | None] = {r: None for r in theirs.keys() - ours.keys()}
        for row_id, row in ours.items():
            if row_id not in theirs or not same_json(row, theirs[row_id]):
                changed[row_id] = row
        if changed:
            tables[table_id] = changed
    ours_values: dict[str, Any] = store.get_values()
    values = {
        key: value
        for key, value in ours_values.items()
        if key not in mirror.values or not same_json(value, mirror.values[key])
    }
    deleted = frozenset(mirror.values.keys() - ours_values.keys())
    if not (tables or values or deleted):
        return None
    return Changes(tables, values, deleted)
