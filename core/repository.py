"""``Repository[Model]``: typed create, read, query, update and delete over a model's collection.

``db.repo(User)`` returns one. Every write runs in a store transaction that
first checks integrity (unique fields, foreign keys, delete policies), so the
rules hold identically on every backend and, on a shared folder or database,
across processes. Reads return frozen model instances, cached until their row
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from hutch import batches, counting
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
from hutch.queries import Lookup, Query, plan
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
        self._index_defaults = _index_defaults(self.spec)

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
        return query.arrange(self._matching(query))

    def find_one(self, **filters: Any) -> M | None:
        """The first instance (in id order) matching every filter, or ``None``."""
        found = self.find(limit=1, **filters)
        return found[0] if found else None

    def count(self, **filters: Any) -> int:
        """How many instances match every filter."""
        if not filters:
            return self._store.get_row_count(self.collection)
        return len(self._matching(plan(self.spec, filters)))

    def count_by(self, field: str, /, **filters: Any) -> dict[Any, int]:
        """How many instances hold each value of ``field``, among those matching every filter.

        ``{value: count}``, values as the model holds them (enum members,
        datetimes, ``None``), in the order rows store them (``None``, booleans,
        numbers, text). Without filters an indexed field is counted from its
        index, reading no row, where the index is exact (see :mod:`hutch.counting`);
        otherwise the matching instances are read, as ``find`` reads them.
        """
        kind = counting.countable(self.spec, field)
        query = plan(self.spec, filters)
        counts = None
        if not filters and field in self.spec.indexed:
            counts = counting.from_index(self.db, self.spec, field, kind)
        if counts is None:
            counts = counting.tally(self.spec, field, self._matching(query))
        return counting.ordered(counts, kind)

    # -- writes ------------------------------------------------------------------------------

    def create(self, **fields: Any) -> M:
        """Check, store and return a new instance; ``id`` and timestamps are made if not given."""
        instance = build(self.model, fields)
        with self._store.transaction():
            self.db.models.migrator.check_writable(self.spec)
            self._insert(instance)
        return instance

    def create_many(self, items: Iterable[Mapping[str, Any]]) -> list[M]:
        """Check, store and return new instances, one per dict of fields: all of them, or none.

        Every item is built first, and a :class:`~hutch.ValidationError` names
        each bad one (``errors`` keys are ``"<position>.<field>"``). Then, in
        one transaction (one commit), each is checked as ``create`` checks it:
        its unique fields against the store and the items before it, its
        foreign keys against rows stored or created earlier in the batch. A
        violation raises :class:`~hutch.IntegrityError` naming the item's
        position, and nothing is written. Each item goes through :meth:`check`,
        as ``create``'s does; a repository subclass that overrides ``create``
        instead has each item go through it, one at a time.
        """
        batch = batches.items_of(items)
        instances = batches.build_all(self.model, batch)
        own_create = type(self).create is not Repository.create
        failure: HutchError | None = None
        with self._store.transaction():
            self.db.models.migrator.check_writable(self.spec)
            for position, instance in enumerate(instances):
                try:
                    if own_create:
                        instances[position] = self.create(**batch[position])
                    else:
                        self._insert(instance)
                except (IntegrityError, ValidationError) as error:
                    earlier = {made.id: index for index, made in enumerate(instances[:position])}
                    failure = batches.at_position(position, error, earlier)
                    break
            if failure is not None:
                raise failure  # (outside the handler: the chain holds no error quoting a value)
        return instances

    def update(self, id: str, /, **changes: Any) -> M:
        """Change some fields of an instance and return it; ``updated_at`` moves unless given.

        Only the cells of the fields changed (and of fields the stored row
        lacks) are written: a cell the model does not have, which an older or
        newer version of the application wrote, stays as it is.
        """
        if "id" in changes and changes["id"] != id:
            raise ValidationError(
                f"invalid {self.model.__qualname__}: id: an id cannot change",
                {"id": "cannot change"},
            )
        with self._store.transaction():
            self.db.models.migrator.check_writable(self.spec)
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
            self.check(instance, current)
            self._save_changes(instance, {*changes, "updated_at"})
        return instance

    def delete(self, id: str) -> bool:
        """Delete an instance, following the delete policy of every relation to it.

        Returns whether it existed. ``restrict`` raises :class:`~hutch.IntegrityError`
        and deletes nothing; ``cascade`` deletes the rows that point at it (and
        theirs, in turn); ``set_null`` clears their field.
        """
        with self._store.transaction():
            self.db.models.migrator.check_writable(self.spec)
            if not self._store.has_row(self.collection, id):
                return False
            self.db.models.delete(self.collection, id)
        return True

    # -- internals ---------------------------------------------------------------------------

    def _matching(self, query: Query) -> list[M]:
        """The instances a checked query's filters match, in id order."""
        with self._store.lock:
            return [
                instance
                for row_id in self._candidates(query.lookups)
                if (instance := self._load(row_id)) is not None and query.matches(instance)
            ]

    def _insert(self, instance: M) -> None:
        """Check and store a new instance, inside the open transaction."""
        if self._store.has_row(self.collection, instance.id):
            raise IntegrityError(
                f"{self.collection} already has a row {instance.id!r}; give another id "
                "or leave it out",
                row_id=instance.id,
            )
        self.check(instance)
        self._save(instance)

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

    def _save_changes(self, instance: M, changed: set[str]) -> None:
        """Write an updated instance's cells that changed, or that its stored row lacks."""
        row_id, row = to_row(instance)
        held = self._store.rows_of(self.collection)[row_id]  # (in the transaction, locked)
        cells = {f: cell for f, cell in row.items() if f in changed or f not in held}
        self._store.set_partial_row(self.collection, row_id, cells)

    def check(self, instance: M, previous: M | None = None) -> None:
        """Check an instance about to be written: unique fields and foreign keys, against the
        store as the write's transaction sees it; raise to refuse the write.

        Every write calls it inside its transaction (``create``, each item of
        ``create_many``, and ``update``, which gives the instance as it was in
        ``previous``), before the row is stored. A repository subclass adds a
        rule of its own by overriding it (calling ``super().check`` first):
        raise :class:`~hutch.IntegrityError` (with ``row_id=`` the row it clashes
        with, if any) or :class:`~hutch.ValidationError`, and nothing is written.
        On an update a unique field that keeps its value is not checked again,
        so a rule that changed since it was stored never stops a change to
        other fields.
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
                    f"by {others[0]!r}",
                    row_id=others[0],
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
            if not self._answers(lookup):
                continue
            ids: set[str] = set()
            for key in lookup.keys:
                ids.update(self.db.indexes.slice_row_ids(lookup.index_id, key))
            if best is None or len(ids) < len(best):
                best = sorted(ids)
        return self._store.get_row_ids(self.collection) if best is None else best

    def _answers(self, lookup: Lookup) -> bool:
        """Whether an index lookup finds every row that may match, so that none need be scanned.

        An index has a slice per scalar (a list cell puts its row under each
        item), so none for a list or object wanted whole; and a row stored
        before its field existed holds the field's default, yet is in no slice
        (a default a function makes may be any value: then no row may be missing).
        """
        keys = lookup.keys
        if any(isinstance(key, list | dict) for key in keys):
            return False
        default = self._index_defaults.get(lookup.index_id, _NO_DEFAULT)
        if default is _NO_DEFAULT or (default is not _MADE and default not in keys):
            return True
        indexed = self.db.indexes.indexed_row_count(lookup.index_id)
        return indexed == self._store.get_row_count(self.collection)


class _Forget:
    """Drops cached instances whose rows change (a store change consumer)."""

    def __init__(self, table_id: str, cache: dict[str, Any]) -> None:
        self.table_id = table_id
        self.cache = cache

    def update_row(self, row_id: str, row: Row | None) -> None:  # noqa: ARG002
        self.cache.pop(row_id, None)


_NO_DEFAULT: Any = object()
_MADE: Any = object()  # a default a function makes: any value, as far as a lookup can tell


def _index_defaults(spec: ModelSpec) -> dict[str, Any]:
    """The default of each indexed field that has one, as stored (:data:`_MADE` where a
    function makes it), by its index's id."""
    defaults: dict[str, Any] = {}
    for field in attrs.fields(spec.model):
        default = field.default
        if field.name not in spec.indexed or default is attrs.NOTHING:
            continue
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            defaults[spec.index_id(field.name)] = _MADE
            continue
        try:
            defaults[spec.index_id(field.name)] = stored(spec.fields[field.name], default)
        except Exception:  # a default that does not fit its field: no instance can have it
            continue
    return defaults


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", "its key")


def _has_row(store: Store, table_id: str, row_id: Any) -> bool:
    """Whether the row exists; an id that could never name a row names none."""
    try:
        return store.has_row(table_id, row_id)
    except InvalidId:
        return False
