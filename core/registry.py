"""The models a database knows (``db.models``): their indexes, relationships and delete policies.

Models arrive through the ``hutch_register_models`` hook when the database
opens, or on first use through ``db.repo(Model)``. Registering one defines the
indexes its queries and integrity checks use (``<collection>.<field>``, and
``<collection>.<field>.casefold`` for a case-insensitive unique field,
``<collection>.<field>.key`` for one compared through a key function) and a
relationship per foreign key (``<collection>.<field>``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from hutch.cells import Row
from hutch.errors import DefinitionError, IntegrityError, ValidationError
from hutch.models import Model, ModelSpec, Relation, spec_of
from hutch.plugin_manager import AUTOLOAD_OFF
from hutch.repository import Repository
from hutch.serialise import stored

if TYPE_CHECKING:
    from hutch.database import Database

M = TypeVar("M", bound=Model)


class ModelRegistry:
    """The models of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._specs: dict[str, ModelSpec] = {}
        self._repos: dict[type[Model], Repository[Any]] = {}

    def register(self, model: type[Model]) -> None:
        """Know ``model``: define its indexes and relationships (once)."""
        spec = spec_of(model)
        known = self._specs.get(spec.collection)
        if known is not None:
            if known.model is not model:
                raise DefinitionError(
                    f"{_name(model)} and {_name(known.model)} both claim the collection "
                    f"{spec.collection!r}; give one another __collection__ (to leave out the "
                    f"models of an installed plugin, set {AUTOLOAD_OFF}=1 and pass the plugins "
                    "you want to hutch.open(..., plugins=[...]))"
                )
            return
        indexes, relationships = self._db.indexes, self._db.relationships
        for field in spec.indexed:
            indexes.define(spec.index_id(field), spec.collection, field)
        for unique in spec.unique:
            if unique.key is not None:
                indexes.define(
                    spec.unique_index_id(unique), spec.collection, _keyed(unique.field, unique.key)
                )
            elif unique.case_insensitive:
                indexes.define(
                    spec.unique_index_id(unique), spec.collection, _casefolded(unique.field)
                )
        for relation in spec.relations:
            relationships.define(
                spec.relationship_id(relation),
                local=spec.collection,
                remote=relation.target,
                on=relation.field,
            )
        self._specs[spec.collection] = spec

    def repo(self, model: type[M]) -> Repository[M]:
        """The repository of ``model`` (its ``__repository__`` class, if it names one)."""
        repo = self._repos.get(model) if isinstance(model, type) else None
        if repo is None:  # register() refuses what is not a model
            self.register(model)
            kind = model.__repository__ or Repository
            repo = self._repos[model] = kind(self._db, model)
        return repo

    def models(self) -> list[type[Model]]:
        """The registered models, by collection."""
        return [self._specs[c].model for c in sorted(self._specs)]

    def delete(self, collection: str, row_id: str) -> None:
        """Delete a row, applying every delete policy that points at it (inside a transaction).

        First the rows that cascade are gathered; then a ``restrict`` relation
        refuses the delete if a row outside that set points into it (so the
        answer never depends on the order models were registered); then
        ``set_null`` fields are cleared and the gathered rows deleted.
        """
        doomed = self._cascade(collection, row_id)
        cleared: dict[tuple[str, str], Row] = {}
        for target, target_id in doomed:
            for spec, relation in self._pointing_at(target):
                pointing = self._db.relationships.local_row_ids(
                    spec.relationship_id(relation), target_id
                )
                for local in pointing:
                    if (spec.collection, local) in doomed:
                        continue
                    if relation.on_delete == "restrict":
                        raise IntegrityError(
                            f"cannot delete {collection} {row_id!r}: {spec.collection} "
                            f"{local!r} points at {target} {target_id!r} through "
                            f"{relation.field} (on_delete='restrict'); delete or move it first"
                        )
                    if relation.on_delete == "set_null":
                        cleared.setdefault((spec.collection, local), {})[relation.field] = None
        store = self._db.store
        now = _now()
        for (local_collection, local), fields in cleared.items():
            store.set_partial_row(local_collection, local, {**fields, "updated_at": now})
        for target, target_id in doomed:
            store.del_row(target, target_id)

    def _cascade(self, collection: str, row_id: str) -> dict[tuple[str, str], None]:
        """The row and every row that ``cascade`` relations delete with it, in order."""
        doomed = {(collection, row_id): None}
        queue = [(collection, row_id)]
        while queue:
            target, target_id = queue.pop()
            for spec, relation in self._pointing_at(target):
                if relation.on_delete != "cascade":
                    continue
                for local in self._db.relationships.local_row_ids(
                    spec.relationship_id(relation), target_id
                ):
                    if (spec.collection, local) not in doomed:
                        doomed[spec.collection, local] = None
                        queue.append((spec.collection, local))
        return doomed

    def _pointing_at(self, collection: str) -> list[tuple[ModelSpec, Relation]]:
        return [
            (spec, relation)
            for spec in self._specs.values()
            for relation in spec.relations
            if relation.target == collection
        ]


def _name(model: type[Model]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


def _casefolded(field: str) -> Any:
    def key(row: Row) -> Any:
        value = row.get(field)
        return value.casefold() if isinstance(value, str) else []

    return key


def _keyed(field: str, key: Callable[[Any], Any]) -> Callable[[Row], Any]:
    """Index a row by ``key`` of its field; a value the key refuses puts the row in no slice."""

    def keys(row: Row) -> Any:
        value = row.get(field)
        if value is None:
            return []
        try:
            return key(value)
        except ValidationError:  # stored before the key's rule refused it: found by no key
            return []

    return keys


def _now() -> Any:
    return stored(datetime, datetime.now(UTC))
