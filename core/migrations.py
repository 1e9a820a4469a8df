"""Migrations: each runs once per store, and the store records the schema version it left.

A model declares versioned steps in ``__migrations__`` (:class:`hutch.Migration`);
its schema version is that of its last one (1 without any). The store records
each migrated collection's version in the keyed value ``hutch.schema.<collection>``
(a whole number, read before every write through a repository: nothing to copy)
and the migrations applied to it in ``hutch.migrations.<collection>``::

    [{"version": 2, "description": "...", "at": "<UTC ISO>"}, ...]

The pending steps of a collection run in one store transaction, which takes the
write lock and first takes in what other processes committed; the recorded
version is read again under that lock, so when several processes open a store
at once, one runs each step and the others find it done. A step that raises, or
rows it leaves that the model cannot read, roll the whole transaction back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from hutch.cells import Row, same_json
from hutch.errors import CorruptData, MigrationError, SchemaMismatch, ValidationError
from hutch.models import FIRST_VERSION, Migration, ModelSpec, utc_now
from hutch.serialise import MIGRATIONS_DOC, from_row

if TYPE_CHECKING:
    from collections.abc import Callable

    from hutch.database import Database
    from hutch.store import Store

log = logging.getLogger(__name__)

#: The keyed values ``VERSION + collection`` and ``APPLIED + collection`` record a
#: collection's schema version and the migrations applied to it.
VERSION = "hutch.schema."
APPLIED = "hutch.migrations."

_UNSET: Any = object()


@attrs.frozen
class Migrated:
    """A migration that ran (or, in a dry run, would run) on a collection."""

    collection: str
    version: int
    description: str

    def __str__(self) -> str:
        return f"{self.collection} to version {self.version}: {self.description}"


def recorded_version(store: Store, collection: str) -> int:
    """The schema version the store records for ``collection`` (1: never migrated)."""
    value = store.get_value(VERSION + collection, _UNSET)
    if value is _UNSET:
        return FIRST_VERSION
    if type(value) is int and value >= FIRST_VERSION:
        return value
    raise _damaged(
        VERSION + collection,
        value,
        f"the schema version of {collection}: set it to the version its rows are at (a whole "
        "number; 1 before any migration)",
    )


def pending(store: Store, spec: ModelSpec) -> list[Migrated]:
    """The migrations of ``spec`` that the store has not run yet, in order."""
    version = recorded_version(store, spec.collection)
    return [_migrated(spec, m) for m in spec.migrations if m.version > version]


def run_pending(db: Database, spec: ModelSpec) -> list[Migrated]:
    """Run the pending migrations of ``spec``'s collection, all in one transaction; what ran."""
    store = db.store
    if recorded_version(store, spec.collection) >= spec.version:
        return []  # (read without the write lock; read again below, under it)
    with store.transaction():  # which first takes in what other processes committed
        version = recorded_version(store, spec.collection)
        todo = [m for m in spec.migrations if m.version > version]
        if not todo:
            return []
        applied = _applied(store, spec.collection)
        touched = _Touched(spec.collection)
        store.add_consumer(touched)
        try:
            for migration in todo:
                _run(db, spec, migration)
            _check_fit(store, spec, touched.row_ids, todo[-1])
        finally:
            store.remove_consumer(touched)
        at = utc_now().isoformat()
        applied += [{"version": m.version, "description": m.description, "at": at} for m in todo]
        store.set_value(APPLIED + spec.collection, applied)
        store.set_value(VERSION + spec.collection, todo[-1].version)
    ran = [_migrated(spec, m) for m in todo]
    for each in ran:
        log.info("%s: migrated %s", db.url, each)
    return ran


def too_new(spec: ModelSpec, recorded: int) -> SchemaMismatch:
    """The refusal of a write by code older than the collection's recorded schema."""
    return SchemaMismatch(
        f"{spec.collection} was migrated to schema version {recorded} by a newer version of the "
        f"application, and this code's {spec.model.__qualname__} knows version {spec.version}: "
        "it may read the collection but not write to it, lest it undo what the newer version "
        "changed; deploy the newer version here too"
    )


def behind(spec: ModelSpec, recorded: int) -> SchemaMismatch:
    """The refusal of a write to a collection whose migrations have not run."""
    versions = ", ".join(str(m.version) for m in spec.migrations if m.version > recorded)
    return SchemaMismatch(
        f"{spec.collection} is at schema version {recorded} and {spec.model.__qualname__} needs "
        f"version {spec.version} (pending migrations: {versions}): run db.migrate() or "
        "`hutch migrate` first"
    )


def _migrated(spec: ModelSpec, migration: Migration) -> Migrated:
    return Migrated(spec.collection, migration.version, migration.description)


def _applied(store: Store, collection: str) -> list[Any]:
    """The migrations the store records as applied to ``collection``."""
    value = store.get_value(APPLIED + collection, [])
    if type(value) is list:
        return value
    raise _damaged(
        APPLIED + collection,
        value,
        f"a list of the migrations applied to {collection}: set it to [] (it is their history; "
        f"the version is in {VERSION + collection!r})",
    )


def _damaged(value_id: str, value: object, what: str) -> CorruptData:
    return CorruptData(
        f"the keyed value {value_id!r} holds {repr(value)[:200]}, not {what} ({MIGRATIONS_DOC})"
    )


def _run(db: Database, spec: ModelSpec, migration: Migration) -> None:
    """Run one migration inside the caller's transaction, or raise MigrationError."""
    what = f"the migration of {spec.collection} to version {migration.version} "
    what += f"({migration.description!r})"
    row_id = None
    try:
        if migration.run is not None:
            migration.run(db)
        else:
            assert migration.step is not None
            for row_id in db.store.get_row_ids(spec.collection):
                _rewrite(db.store, spec.collection, row_id, migration.step)
    except Exception as error:
        where = "" if row_id is None else f" on row {row_id!r}"
        why = type(error).__name__ if spec.secret else f"{type(error).__name__}: {error}"
        raise MigrationError(
            f"{what} failed{where} ({why}); it was rolled back, so the store is as it was: fix "
            f"the step, then open the store again or run db.migrate() ({MIGRATIONS_DOC})"
        ) from error


def _rewrite(store: Store, collection: str, row_id: str, step: Callable[[Row], Row | None]) -> None:
    """Give a row to a per-row step and store what it returns, if that differs."""
    new = step(store.get_row(collection, row_id) or {})  # a copy: the step may change it
    if new is None:
        store.del_row(collection, row_id)
    elif type(new) is not dict:
        raise TypeError(
            f"the step returned a {type(new).__name__}; it returns the row's cells (a dict), or "
            "None to delete the row"
        )
    elif not same_json(new, store.rows_of(collection).get(row_id)):
        store.set_row(collection, row_id, new)


def _check_fit(store: Store, spec: ModelSpec, row_ids: set[str], last: Migration) -> None:
    """Refuse rows the migrations wrote that the model cannot read."""
    for row_id in sorted(row_ids):
        row = store.get_row(spec.collection, row_id)
        failure = None if row is None else _misfit(spec, row_id, row, last)
        if failure is not None:
            raise failure


def _misfit(spec: ModelSpec, row_id: str, row: Row, last: Migration) -> MigrationError | None:
    """Why the model cannot read a row a migration wrote, or ``None`` if it can."""
    try:
        from_row(spec.model, row_id, row)
    except ValidationError as error:
        listed = "; ".join(f"{field}: {why}" for field, why in error.errors.items())
        return MigrationError(
            f"the migrations of {spec.collection} up to version {last.version} "
            f"({last.description!r}) left the row {row_id!r}, which {spec.model.__qualname__} "
            f"cannot read ({listed}); they were rolled back, so the store is as it was: make "
            "the steps leave rows that fit the model"
        )
    return None


class _Touched:
    """The ids of the rows written in one table (a store change consumer)."""

    def __init__(self, table_id: str) -> None:
        self.table_id = table_id
        self.row_ids: set[str] = set()

    def update_row(self, row_id: str, row: Row | None) -> None:  # noqa: ARG002
        self.row_ids.add(row_id)
