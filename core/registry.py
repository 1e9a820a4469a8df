"""The models a database knows (``db.models``): their indexes, relationships and delete policies.

Models arrive through the ``hutch_register_models`` hook when the database
opens, or on first use through ``db.repo(Model)``; each brings the models of
its ``__family__`` with it (a plugin's models), so that their delete policies
hold wherever one of them is used. Registering one defines the indexes its
queries and integrity checks use (``<collection>.<field>``, and
``<collection>.<field>.casefold`` for a case-insensitive unique field,
``<collection>.<field>.key`` for one compared through a key function) and a
relationship per foreign key (``<collection>.<field>``), then runs its pending
migrations (not if the database was opened with ``migrate=False``): with the
indexes in place, a migration's step over the whole store may write through
the model's own repository. Which schema version a collection may be written
at is the :class:`~hutch.migrations.Migrator`'s to say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from hutch.cells import Row
from hutch.errors import DefinitionError, IntegrityError, ValidationError
from hutch.migrations import Migrated, Migrator
from hutch.models import Model, ModelSpec, Relation, family_of, spec_of
from hutch.plugin_manager import AUTOLOAD_OFF
from hutch.repository import Repository
from hutch.serialise import stored

if TYPE_CHECKING:
    from hutch.database import Database

M = TypeVar("M", bound=Model)

#: A row a delete touches: (collection, row id).
Place = tuple[str, str]


class ModelRegistry:
    """The models of one database."""

    def __init__(self, db: Database, *, migrate: bool = True) -> None:
        self._db = db
        self._specs: dict[str, ModelSpec] = {}
        self._repos: dict[type[Model], Repository[Any]] = {}
        #: The schema versions of the collections: what runs migrations, and what may be written.
        self.migrator = Migrator(db, self._specs.values, automatic=migrate)

    def register(self, model: type[Model]) -> None:
        """Know ``model`` and its family: define its indexes and relationships, then run its
        pending migrations (once; a migration that fails leaves it unknown)."""
        self._register(spec_of(model), migrate=self.migrator.automatic)

    def _register(self, spec: ModelSpec, *, migrate: bool) -> list[Migrated]:
        """Register ``spec``'s model (and its family), running its migrations if ``migrate``;
        the migrations that ran."""
        if self._known(spec):
            return []
        family = family_of(spec.model)  # (checked before anything is defined)
        before = set(self._specs)
        self._define(spec)
        try:
            done = self.migrator.registering(spec, migrate=migrate)
        except BaseException:
            self._forget(set(self._specs) - before)  # and what its steps registered
            raise
        for member in family:
            done += self._register(spec_of(member), migrate=migrate)
        return done

    def migrate(
        self, models: Iterable[type[Model]] = (), *, dry_run: bool = False
    ) -> list[Migrated]:
        """Run the pending migrations of ``models`` (registering them), else of every registered
        model; with ``dry_run``, say what would run, writing and registering nothing."""
        given = [spec_of(model) for model in dict.fromkeys(models)]
        for spec in given:
            self._known(spec)  # (one that clashes with a registered model is refused, even here)
        targets = given or list(self._specs.values())
        if dry_run:
            return [step for spec in targets for step in self.migrator.pending(spec)]
        done: list[Migrated] = []
        for spec in targets:
            done += (
                self.migrator.run(spec) if self._known(spec) else self._register(spec, migrate=True)
            )
        return done

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
        for index_id, on in _indexes(spec):
            indexes.define(index_id, spec.collection, on)
        for relation in spec.relations:
            relationships.define(
                spec.relationship_id(relation),
                local=spec.collection,
                remote=relation.target,
                on=relation.field,
            )
        self._specs[spec.collection] = spec

    def _forget(self, collections: Iterable[str]) -> None:
        """Undo the registration of the models of these collections."""
        for collection in collections:
            spec = self._specs.pop(collection)
            self._repos.pop(spec.model, None)
            for index_id, _ in _indexes(spec):
                self._db.indexes.delete(index_id)
            for relation in spec.relations:
                self._db.relationships.delete(spec.relationship_id(relation))

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

        First the rows that cascade are gathered (once the pending migrations
        of the collections the delete may touch have run, where the database
        migrates automatically); then a ``restrict`` relation refuses the delete
        if a row outside that set points into it (so the answer never depends on
        the order models were registered); then ``set_null`` fields are cleared
        and the gathered rows deleted.
        """
        doomed = self._cascade(collection, row_id)
        while self.migrator.catch_up(self._touching(doomed)):
            doomed = self._cascade(collection, row_id)  # (the migrations may have changed rows)
        cleared = self._cleared(collection, row_id, doomed)
        for touched in dict.fromkeys([c for c, _ in doomed] + [c for c, _ in cleared]):
            guarded = self._specs.get(touched)
            if guarded is not None:  # (not migrated here: no row may change under `doomed`)
                self.migrator.check_writable(guarded, migrate=False)
        store = self._db.store
        now = _now()
        for (local_collection, local), fields in cleared.items():
            store.set_partial_row(local_collection, local, {**fields, "updated_at": now})
        for target, target_id in doomed:
            store.del_row(target, target_id)

    def _cleared(self, collection: str, row_id: str, doomed: dict[Place, None]) -> dict[Place, Row]:
        """The cells that ``set_null`` relations clear as ``doomed`` goes, by row; an
        IntegrityError if a ``restrict`` relation refuses the delete."""
        cleared: dict[Place, Row] = {}
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
        return cleared

    def _touching(self, doomed: dict[Place, None]) -> list[ModelSpec]:
        """The models whose rows a delete of ``doomed`` may write: theirs, and those pointing
        at them."""
        collections = {target for target, _ in doomed}
        found = {c: self._specs[c] for c in collections if c in self._specs}
        for target in collections:
            found.update((spec.collection, spec) for spec, _ in self._pointing_at(target))
        return list(found.values())

    def _cascade(self, collection: str, row_id: str) -> dict[Place, None]:
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


def _indexes(spec: ModelSpec) -> list[tuple[str, str | Callable[[Row], Any]]]:
    """The indexes a model's registration defines: id, and the cell or function it is on."""
    found: list[tuple[str, str | Callable[[Row], Any]]] = [
        (spec.index_id(field), field) for field in spec.indexed
    ]
    for unique in spec.unique:
        if unique.key is not None:
            found.append((spec.unique_index_id(unique), _keyed(unique.field, unique.key)))
        elif unique.case_insensitive:
            found.append((spec.unique_index_id(unique), _casefolded(unique.field)))
    return found


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
