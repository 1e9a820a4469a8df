"""``Repository[Model]``: typed create, read, query, update and delete over a model's collection.

``db.repo(User)`` returns one. Every write runs in a store transaction that
first checks integrity (unique fields, foreign keys, delete policies), so the
rules hold identically on every backend and, on a shared folder or database,
across processes. Reads return frozen model instances, cached until their row
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from hutch.cells import Row
from hutch.errors import (
    DefinitionError,
    HutchError,
    IntegrityError,
    InvalidId,
    NotFound,
    ValidationError,
)
from hutch.models import Model, ModelSpec, Unique, spec_of
from hutch.queries import Lookup, plan
from hutch.serialise import build, from_row, stored, to_row

if TYPE_CHECKING:
    from hutch.database import Database
    from hutch.store import Store

M = TypeVar("M", bound=Model)

#: How many model instances a repository keeps; past that it starts again.
CACHE_SIZE = 100_000


class Repository(Generic[M]):
    """The rows of one model's collection, as model instances."""

    def __init__(self, db: Database, model: type[M]) -> None:
        self.db = db
        self.model = model
        self.spec: ModelSpec = spec_of(model)
        self.collection = self.spec.collection
        self._store = db.store
        self._cache: dict[str, M] = {}
        self._store.add_consumer(_Forget(self.collection, self._cache))

    # -- reads -------------------------------------------------------------------------------

    def get(self, id: str) -> M | None:
        """The instance with this id, or ``None``."""
        if not self._store.owns_transaction():
            cached = self._cached(id)
            if cached is not None:
                return cached
        with self._store.lock:
            return self._load(id)

    def exists(self, id: str) -> bool:
        """Whether a row has this id."""
        return self._store.has_row(self.collection, id)

    def all(self) -> list[M]:
        """Every instance, in id order (creation order, to the millisecond, for generated ids)."""
        return self.find()

    def find(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        **filters: Any,
    ) -> list[M]:
        """The instances matching every filter, ordered, then sliced by offset and limit.

        A filter is ``field=value`` or ``field__lookup=value`` with the lookups
        ``in``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``, ``contains``,
        ``startswith`` and ``isnull``. An equality (or ``__in``) on an indexed
        field starts from the index rather than a scan. ``order_by`` is a field
        or a list of fields, each ``-``-led for descending; without it, id order.
        """
        query = plan(self.spec, filters, order_by=order_by, limit=limit, offset=offset)
        with self._store.lock:
            found = [
                instance
                for row_id in self._candidates(query.lookups)
                if (instance := self._load(row_id)) is not None and query.matches(instance)
            ]
        return query.arrange(found)

    def find_one(self, **filters: Any) -> M | None:
        """The first instance (in id order) matching every filter, or ``None``."""
        found = self.find(limit=1, **filters)
        return found[0] if found else None

    def count(self, **filters: Any) -> int:
        """How many instances match every filter."""
        if not filters:
            return self._store.get_row_count(self.collection)
        return len(self.find(**filters))

    # -- writes ------------------------------------------------------------------------------

    def create(self, **fields: Any) -> M:
        """Check, store and return a new instance; ``id`` and timestamps are made if not given."""
        instance = build(self.model, fields)
        with self._store.transaction():
            if self._store.has_row(self.collection, instance.id):
                raise IntegrityError(
                    f"{self.collection} already has a row {instance.id!r}; give another id "
                    "or leave it out"
                )
            self._check(instance)
            self._save(instance)
        return instance

    def update(self, id: str, /, **changes: Any) -> M:
        """Change some fields of an instance and return it; ``updated_at`` moves unless given."""
        if "id" in changes and changes["id"] != id:
            raise ValidationError(
                f"invalid {self.model.__qualname__}: id: an id cannot change",
                {"id": "cannot change"},
            )
        with self._store.transaction():
            current = self._load(id)
            if current is None:
                raise NotFound(f"no {self.collection} row {id!r} to update")
            fields = {
                field.name: getattr(current, field.name) for field in attrs.fields(self.model)
            }
            fields.update(changes)
            if "updated_at" not in changes:
                fields["updated_at"] = datetime.now(UTC)
            instance = build(self.model, fields)
            self._check(instance, current)
            self._save(instance)
        return instance

    def delete(self, id: str) -> bool:
        """Delete an instance, following the delete policy of every relation to it.

        Returns whether it existed. ``restrict`` raises :class:`~hutch.IntegrityError`
        and deletes nothing; ``cascade`` deletes the rows that point at it (and
        theirs, in turn); ``set_null`` clears their field.
        """
        with self._store.transaction():
            if not self._store.has_row(self.collection, id):
                return False
            self.db.models.delete(self.collection, id)
        return True

    # -- internals ---------------------------------------------------------------------------

    def _load(self, row_id: str) -> M | None:
        """The instance for a row, from the cache or the store; call it holding the lock."""
        cached = self._cached(row_id)
        if cached is not None and not self._store.owns_transaction():
            return cached
        row = self._store.get_row(self.collection, row_id)
        if row is None:
            return None
        instance = from_row(self.model, row_id, row)
        if self.spec.shareable and not self._store.in_transaction:  # committed rows only
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[row_id] = instance
        return instance

    def _cached(self, row_id: object) -> M | None:
        """The cached instance; none for a wrong id, which the store then refuses."""
        return self._cache.get(row_id) if isinstance(row_id, str) else None

    def _save(self, instance: M) -> None:
        row_id, row = to_row(instance)
        self._store.set_row(self.collection, row_id, row)

    def _check(self, instance: M, previous: M | None = None) -> None:
        """Unique fields and foreign keys, against the store as the transaction sees it.

        On an update (``previous`` given) a unique field that keeps its value is
        not checked again, so a rule that changed since it was stored never
        stops a change to other fields.
        """
        indexes = self.db.indexes
        for unique in self.spec.unique:
            value = getattr(instance, unique.field)
            if value is None or (previous is not None and getattr(previous, unique.field) == value):
                continue
            index, key, how = self._unique_slot(unique, value)
            others = [r for r in indexes.slice_row_ids(index, key) if r != instance.id]
            if others:
                shown = "this value" if unique.field in self.spec.secret else repr(value)
                raise IntegrityError(
                    f"{self.collection}.{unique.field} must be unique{how}: {shown} is taken "
                    f"by {others[0]!r}"
                )
        for relation in self.spec.relations:
            target_id = getattr(instance, relation.field)
            if target_id is not None and not _has_row(self._store, relation.target, target_id):
                raise IntegrityError(
                    f"{self.collection}.{relation.field} = {target_id!r}, but {relation.target} "
                    f"has no such row; create it first"
                )

    def _unique_slot(self, unique: Unique, value: Any) -> tuple[str, Any, str]:
        """The index a unique value is checked in, its key there, and how values compare."""
        index, kind = self.spec.unique_index_id(unique), self.spec.fields[unique.field]
        if unique.key is not None:
            return (
                index,
                self._key_of(unique, stored(kind, value)),
                f" (compared by {_name(unique.key)})",
            )
        if unique.case_insensitive and isinstance(value, str):
            return index, value.casefold(), " (ignoring case)"
        return self.spec.index_id(unique.field), stored(kind, value), ""  # as stored

    def _key_of(self, unique: Unique, value: Any) -> Any:
        """``unique.key`` of a value as a row holds it (as the index sees it), or why not.

        A ``ValidationError`` from the key refuses the value; anything else it
        raises is a broken key, a ``DefinitionError``. Either is raised outside
        the handler, so the key's own error (which may quote the value) is not chained.
        """
        assert unique.key is not None
        name, field = _name(unique.key), unique.field
        secret = field in self.spec.secret  # the key's words may quote the value
        failure: HutchError
        try:
            return unique.key(value)
        except ValidationError as error:
            why = "; ".join(error.errors.values()) or str(error)
            if secret:
                why = f"refused by {name} (the value is secret, so not shown)"
            failure = ValidationError(
                f"invalid {self.model.__qualname__}: {field}: {why}", {field: why}
            )
        except Exception as error:
            why = type(error).__name__ if secret else f"{type(error).__name__}: {error}"
            failure = DefinitionError(
                f"the key {name} of {self.model.__qualname__}.{field} failed ({why}); fix it"
            )
        raise failure

    def _candidates(self, lookups: list[Lookup]) -> Iterable[str]:
        """The row ids worth testing: the smallest indexed slice an equality names, or all."""
        best: list[str] | None = None
        for lookup in lookups:
            ids: set[str] = set()
            for key in lookup.keys:
                ids.update(self.db.indexes.slice_row_ids(lookup.index_id, key))
            if best is None or len(ids) < len(best):
                best = sorted(ids)
        return self._store.get_row_ids(self.collection) if best is None else best


class _Forget:
    """Drops cached instances whose rows change (a store change consumer)."""

    def __init__(self, table_id: str, cache: dict[str, Any]) -> None:
        self.table_id = table_id
        self.cache = cache

    def update_row(self, row_id: str, row: Row | None) -> None:  # noqa: ARG002
        self.cache.pop(row_id, None)


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", "its key")


def _has_row(store: Store, table_id: str, row_id: Any) -> bool:
    """Whether the row exists; an id that could never name a row names none."""
    try:
        return store.has_row(table_id, row_id)
    except InvalidId:
        return False
