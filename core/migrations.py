"""Migrations: each runs once per store, and the store records the schema version it left.

A model declares versioned steps in ``__migrations__`` (:class:`hutch.Migration`);
its schema version is that of its last one (1 without any), or the
``__schema_version__`` it declares once older ones are removed from the list.
The store records each migrated collection's version in the keyed value
``hutch.schema.<collection>`` (a whole number, read before every write through
a repository: nothing to copy) and the migrations applied to it in
``hutch.migrations.<collection>``::

    [{"version": 2, "description": "...", "at": "<UTC ISO>"}, ...]

These two values belong to their collection: a copy or an export of some
collections carries them (:func:`schema_keys`).

A database's :class:`Migrator` holds the rules. The pending steps of a
collection run in one store transaction, which takes the write lock and first
takes in what other processes committed; the recorded version is read again
under that lock, so when several processes open a store at once, one runs each
step and the others find it done. A step that raises, or leaves a row of the
collection that the model cannot read (or, for a step over the whole store, a
row it wrote elsewhere that its model cannot read), rolls the whole transaction
back. A write is refused where the recorded version is not the model's, but for
the migration's own writes: those of the thread running it, inside its transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from hutch.cells import Row, same_json
from hutch.errors import CorruptData, MigrationError, SchemaMismatch, ValidationError
from hutch.models import FIRST_VERSION, Migration, ModelSpec, utc_now
from hutch.serialise import MIGRATIONS_DOC, from_row

if TYPE_CHECKING:
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


def schema_keys(collection: str) -> tuple[str, str]:
    """The keyed values that record ``collection``'s schema: part of the collection."""
    return VERSION + collection, APPLIED + collection


def is_schema_key(value_id: str) -> bool:
    """Whether a keyed value records a collection's schema (see :func:`schema_keys`)."""
    return value_id.startswith((VERSION, APPLIED))


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


class Migrator:
    """The schema versions of one database's collections (``db.models`` holds it).

    ``automatic``: pending migrations run as models register, and before a
    write that finds them pending; else only through :meth:`run` (``db.migrate()``).
    """

    def __init__(
        self,
        db: Database,
        registered: Callable[[], Iterable[ModelSpec]],
        *,
        automatic: bool = True,
    ) -> None:
        self._db = db
        self._registered = registered
        self.automatic = automatic
        self._running = threading.local()  # .collections: those this thread is migrating

    def registering(self, spec: ModelSpec, *, migrate: bool) -> list[Migrated]:
        """As ``spec``'s model registers: say so if the store is newer than it, and run its
        pending migrations if ``migrate`` (never on a read-only store); what ran.

        They run even where the collection has no rows: the recorded version is
        what keeps older code, still running during a deploy, from writing rows
        of the old shape into it.
        """
        store = self._db.store
        if store.read_only:
            return []
        recorded = recorded_version(store, spec.collection)
        if recorded > spec.version:
            log.warning("%s: %s", self._db.url, too_new(spec, recorded))
        elif recorded < spec.version and migrate:
            return self.run(spec)
        return []

    def check_writable(self, spec: ModelSpec, *, migrate: bool = True) -> None:
        """Refuse a write to a collection the store records at another schema version than the
        model's; pending migrations run first (inside the caller's transaction) if ``migrate``
        and the database migrates automatically."""
        if self._migrating(spec.collection) and self._db.store.owns_transaction():
            return  # the migration's own writes
        recorded = recorded_version(self._db.store, spec.collection)
        if recorded == spec.version:
            return
        if recorded > spec.version:
            raise too_new(spec, recorded)
        if not (migrate and self.automatic):
            raise behind(spec, recorded)
        self.run(spec)

    def catch_up(self, specs: Iterable[ModelSpec]) -> bool:
        """Run the pending migrations of these models' collections where the database migrates
        automatically; whether any ran (then rows may have changed)."""
        if not self.automatic:
            return False
        store = self._db.store
        return any(
            [
                bool(self.run(spec))
                for spec in specs
                if recorded_version(store, spec.collection) < spec.version
            ]
        )

    def pending(self, spec: ModelSpec) -> list[Migrated]:
        """The migrations of ``spec`` that the store has not run yet, in order (a MigrationError
        if they are not all there: older ones were removed)."""
        store = self._db.store
        version = recorded_version(store, spec.collection)
        _check_reachable(store, spec, version)
        return [_migrated(spec, m) for m in spec.migrations if m.version > version]

    def run(self, spec: ModelSpec) -> list[Migrated]:
        """Run the pending migrations of ``spec``'s collection, all in one transaction; what ran
        (nothing if this thread is running them already: a step of theirs got here)."""
        store = self._db.store
        if self._migrating(spec.collection):
            return []
        if recorded_version(store, spec.collection) >= spec.version:
            return []  # (read without the write lock; read again below, under it)
        with store.transaction():  # which first takes in what other processes committed
            version = recorded_version(store, spec.collection)
            if version >= spec.version:
                return []
            _check_reachable(store, spec, version)
            todo = [m for m in spec.migrations if m.version > version]
            if todo:
                applied = _applied(store, spec.collection)
                self._steps(spec, todo)
                at = utc_now().isoformat()
                applied += [
                    {"version": m.version, "description": m.description, "at": at} for m in todo
                ]
                store.set_value(APPLIED + spec.collection, applied)
            store.set_value(VERSION + spec.collection, spec.version)
        ran = [_migrated(spec, m) for m in todo]
        for each in ran:
            log.info("%s: migrated %s", self._db.url, each)
        return ran

    def _steps(self, spec: ModelSpec, todo: list[Migration]) -> None:
        """Run the steps inside the open transaction, this thread marked as migrating the
        collection meanwhile; then check that the model can read what they left."""
        store = self._db.store
        mine = self._mine()
        mine.add(spec.collection)
        watched = []
        if any(m.run is not None for m in todo):  # a step over the whole store: what it wrote
            watched = [_Touched(o) for o in self._registered() if o.collection != spec.collection]
        for touched in watched:
            store.add_consumer(touched)
        try:
            for migration in todo:
                _run(self._db, spec, migration)
            _check_fit(store, spec, todo[-1], watched)
        finally:
            mine.discard(spec.collection)
            for touched in watched:
                store.remove_consumer(touched)

    def _migrating(self, collection: str) -> bool:
        """Whether this thread is running the migrations of ``collection``."""
        return collection in self._mine()

    def _mine(self) -> set[str]:
        mine: set[str] | None = getattr(self._running, "collections", None)
        if mine is None:
            mine = self._running.collections = set()
        return mine


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
        f"version {spec.version} (pending migrations: {versions or 'none, but the version'}): "
        "run db.migrate() or `hutch migrate` first"
    )


def _check_reachable(store: Store, spec: ModelSpec, version: int) -> None:
    """Refuse rows older than the oldest migration the model keeps (a collection without rows
    takes the model's version whatever it was at)."""
    if version < spec.oldest and store.has_table(spec.collection):
        raise MigrationError(
            f"{spec.collection} is at schema version {version}, and "
            f"{spec.model.__qualname__} (version {spec.version}) keeps no migration from it: "
            f"its migrations start from version {spec.oldest}, the older ones removed from "
            "__migrations__. Migrate the store with a release that still has them, then "
            f"with this one ({MIGRATIONS_DOC})"
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
    except MigrationError:
        raise  # another collection's migration, which a step set off: it names itself
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


def _check_fit(store: Store, spec: ModelSpec, last: Migration, watched: list[_Touched]) -> None:
    """Refuse what the migrations leave that a model cannot read: any row of the collection
    (a step may have left one as it was, lacking a field the model now requires), and the
    rows a step over the whole store wrote elsewhere, where their model is up to date."""
    for row_id, row in store.rows_of(spec.collection).items():
        _fit(spec, row_id, row, spec, last)
    for touched in watched:
        other = touched.spec
        if recorded_version(store, other.collection) != other.version:
            continue  # its rows are not at its model's version yet: read as they are
        rows = store.rows_of(other.collection)
        for row_id in sorted(touched.row_ids):
            if row_id in rows:
                _fit(other, row_id, rows[row_id], spec, last)


def _fit(of: ModelSpec, row_id: str, row: Row, spec: ModelSpec, last: Migration) -> None:
    """Raise MigrationError if ``of``'s model cannot read a row the migrations left."""
    try:
        from_row(of.model, row_id, row)
    except ValidationError as error:
        listed = "; ".join(f"{field}: {why}" for field, why in error.errors.items())
        failure = MigrationError(
            f"the migrations of {spec.collection} up to version {last.version} "
            f"({last.description!r}) left the row {row_id!r} of {of.collection}, which "
            f"{of.model.__qualname__} cannot read ({listed}); they were rolled back, so the "
            "store is as it was: make the steps leave rows that fit the model"
        )
    else:
        return
    raise failure  # (outside the handler: the chain holds no error quoting the row)


class _Touched:
    """The ids of the rows written in one model's collection (a store change consumer)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.table_id = spec.collection
        self.row_ids: set[str] = set()

    def update_row(self, row_id: str, row: Row | None) -> None:  # noqa: ARG002
        self.row_ids.add(row_id)
