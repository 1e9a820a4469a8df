"""Relationships: a local row points at a remote row through a cell holding its id.

``db.relationships.define("team_organisation", local="teams",
remote="organisations", on="organisation_id")`` lets you go from a team to its
organisation (:meth:`Relationships.remote_row_id`) and back
(:meth:`Relationships.local_row_ids`), and along a chain of rows in one table
(:meth:`Relationships.linked_row_ids`). A cell points somewhere when it holds
a valid row id; the remote row need not exist: the relationship reports ids,
and the model layer enforces foreign keys.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from hutch.cells import Row
from hutch.definitions import Definitions
from hutch.errors import DefinitionError
from hutch.ids import check_table_id, is_row_id
from hutch.slices import Keys, SliceIndex
from hutch.store import Store


@attrs.frozen
class Relationship:
    """How a relationship was defined."""

    local: str
    remote: str
    on: str


class Relationships(Definitions):
    """The relationships of one database (``db.relationships``)."""

    kind = "relationship"
    define_call = "relationships.define"

    def __init__(
        self, store: Store, describe: Callable[[str, Relationship], None] | None = None
    ) -> None:
        super().__init__(store)
        self._definitions: dict[str, Relationship] = {}
        #: Called with each new definition before it takes effect (the backend records it).
        self._describe = describe

    def define(self, relationship_id: str, local: str, remote: str, on: str) -> None:
        """Define (or replace) a relationship: ``local`` rows point at ``remote`` rows by ``on``."""
        self._check_name(relationship_id)
        check_table_id(local)
        check_table_id(remote)
        if not isinstance(on, str) or not on:
            raise DefinitionError(
                f"relationship {relationship_id!r}: on must name the cell holding the remote "
                f"row id, not {on!r}"
            )

        def keys_of(row: Row) -> Keys:
            remote_id = row.get(on)
            return (remote_id,) if is_row_id(remote_id) else ()

        relationship = Relationship(local, remote, on)
        index = SliceIndex(f"relationship {relationship_id}", local, keys_of)
        if self._store.owns_transaction():
            self._check_definable(relationship_id)  # refused: no describing, then
        self._store.check_open()
        if self._describe is not None:  # before the store's lock: it may wait for the backend
            self._describe(relationship_id, relationship)
        with self._store.lock:
            self._check_definable(relationship_id)
            self._install(relationship_id, index)
            self._definitions[relationship_id] = relationship

    def delete(self, relationship_id: str) -> None:
        """Forget a relationship; deleting an unknown one does nothing."""
        with self._store.lock:
            super().delete(relationship_id)
            self._definitions.pop(relationship_id, None)

    def relationship_ids(self) -> list[str]:
        """The ids of the defined relationships, sorted."""
        return self.ids()

    def definition(self, relationship_id: str) -> Relationship:
        """How a relationship was defined (its local and remote tables and its cell)."""
        self._get(relationship_id)
        return self._definitions[relationship_id]

    def remote_row_id(self, relationship_id: str, local_row_id: str) -> str | None:
        """The id the local row points at, or ``None`` (no such row, or no row id in its cell)."""
        with self._store.lock:
            self._get(relationship_id)
            definition = self._definitions[relationship_id]
            remote_id = self._store.get_cell(definition.local, local_row_id, definition.on)
            return remote_id if is_row_id(remote_id) else None

    def local_row_ids(self, relationship_id: str, remote_row_id: str) -> list[str]:
        """The ids of the local rows that point at ``remote_row_id``, sorted."""
        with self._store.lock:
            return self._get(relationship_id).row_ids(remote_row_id)

    def linked_row_ids(self, relationship_id: str, first_row_id: str) -> list[str]:
        """Follow a relationship of a table to itself: ``[first, its remote, that one's, ...]``.

        Stops at a row that points nowhere, or before a row already in the list (a cycle).
        """
        with self._store.lock:
            self._get(relationship_id)
            definition = self._definitions[relationship_id]
            if definition.local != definition.remote:
                raise DefinitionError(
                    f"linked_row_ids needs a relationship of a table to itself; "
                    f"{relationship_id!r} goes from {definition.local!r} to {definition.remote!r}"
                )
            chain = [first_row_id]
            seen = {first_row_id}
            next_id = self.remote_row_id(relationship_id, first_row_id)
            while next_id is not None and next_id not in seen:
                chain.append(next_id)
                seen.add(next_id)
                next_id = self.remote_row_id(relationship_id, next_id)
            return chain
