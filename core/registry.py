"""The models a database knows (``db.models``): their indexes, relationships and delete policies.

Models arrive through the ``hutch_register_models`` hook when the database
opens, or on first use through ``db.repo(Model)``. Registering one runs its
pending migrations (:mod:`hutch.migrations`; not if the database was opened
with ``migrate=False``), then defines the indexes its queries and integrity
checks use (``<collection>.<field>``, and ``<collection>.<field>.casefold``
for a case-insensitive unique field, ``<collection>.<field>.key`` for one
compared through a key function) and a relationship per foreign key
(``<collection>.<field>``). Every write through a repository first asks the
registry whether its collection may be written at the model's schema version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from hutch.cells import Row
from hutch.errors import DefinitionError, IntegrityError, ValidationError
from hutch.migrations import Migrated, behind, pending, recorded_version, run_pending, too_new
from hutch.models import Model, ModelSpec, Relation, spec_of
from hutch.plugin_manager import AUTOLOAD_OFF
from hutch.repository import Repository
from hutch.serialise import stored

if TYPE_CHECKING:
    from hutch.database import Database

M = TypeVar("M", bound=Model)

log = logging.getLogger(__name__)


class ModelRegistry:
    """The models of one database."""

    def __init__(self, db: Database, *, migrate: bool = True) -> None:
        self._db = db
        self._migrate = migrate  # run pending migrations as models register, and before writes
        self._specs: dict[str, ModelSpec] = {}
        self._repos: dict[type[Model], Repository[Any]] = {}
        self._migrating: set[str] = set()  # collections whose migrations are running

    def register(self, model: type[Model]) -> None:
        """Know ``model``: run its pending migrations, then define its indexes and relationships
        (once; a migration that fails leaves it unknown).

        Per-row steps have nothing to do in a collection with no rows: then the
        version is recorded with the collection's first write, so that opening a
        new store writes nothing into it.
        """
        spec = spec_of(model)
        if self._known(spec):
            return
        store = self._db.store
        if not store.read_only:
            recorded = recorded_version(store, spec.collection)
            if recorded > spec.version:
                log.warning("%s: %s", self._db.url, too_new(spec, recorded))
            elif recorded < spec.version and self._migrate and self._due(spec, recorded):
                self._run(spec)
        self._define(spec)

    def migrate(
        self, models: Iterable[type[Model]] = (), *, dry_run: bool = False
    ) -> list[Migrated]:
        """Run the pending migrations of ``models`` (then register them), else of every model."""
        given = [spec_of(model) for model in dict.fromkeys(models)]
        new = [spec for spec in given if not self._known(spec)]
        targets = given or list(self._specs.values())
        if dry_run:
            done = [step for spec in targets for step in pending(self._db.store, spec)]
        else:
            done = [step for spec in targets for step in self._run(spec)]
        for spec in new:
            self._define(spec)
        return done

    def check_writable(self, spec: ModelSpec, *, migrate: bool = True) -> None:
        """Refuse a write to a collection the store records at another schema version than the
        model's; pending migrations run first (inside the caller's transaction) if ``migrate``
        and the database migrates."""
        if spec.collection in self._migrating:
            return  # a migration's own writes
        recorded = recorded_version(self._db.store, spec.collection)
        if recorded == spec.version:
            return
        if recorded > spec.version:
            raise too_new(spec, recorded)
        if not (migrate and self._migrate):
            raise behind(spec, recorded)
        self._run(spec)

    def _due(self, spec: ModelSpec, recorded: int) -> bool:
        """Whether pending migrations have work to do: rows, or a step over the whole store."""
        return self._db.store.has_table(spec.collection) or any(
            m.run is not None for m in spec.migrations if m.version > recorded
        )

    def _run(self, spec: ModelSpec) -> list[Migrated]:
        self._migrating.add(spec.collection)
        try:
            return run_pending(self._db, spec)
        finally:
            self._migrating.discard(spec.collection)

    def _known(self, spec: ModelSpec) -> bool:
        """Whether ``spec``'s model is registered; another model with its collection is refused."""
        known = self._specs.get(spec.collection)
        if known is None:
            return False
        if known.model is not spec.model:
            raise DefinitionError(
                f"{_name(spec.model)} and {_name(known.model)} both claim the collection "
                f"{spec.collection!r}; give one another __collection__, or leave out the "
                "plugin that registers one (a domain plugin such as 'platform': out of "
                f"hutch.open(..., plugins=[...]); one that autoloads: set {AUTOLOAD_OFF}=1 "
                "and name the plugins you want there)"
            )
        return True

    def _define(self, spec: ModelSpec) -> None:
        """Define a new model's indexes and relationships."""
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
        for touched in dict.fromkeys([c for c, _ in doomed] + [c for c, _ in cleared]):
            guarded = self._specs.get(touched)
            if guarded is not None:  # (not migrated here: no row may change under `doomed`)
                self.check_writable(guarded, migrate=False)
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
