"""Models: frozen attrs classes that name their collection, indexes, unique fields and relations.

    @attrs.frozen
    class Team(hutch.Model):
        __collection__ = "teams"
        __indexed__ = ("name",)
        __relations__ = (hutch.Relation("organisation_id", "organisations", on_delete="cascade"),)

        name: str
        organisation_id: str

Every model has ``id``, ``created_at`` and ``updated_at`` from :class:`Model`.
A model that changes declares how its stored rows follow in ``__migrations__``
(see :mod:`hutch.migrations`); one of a set whose delete policies must hold
together (a plugin's models) names the set in ``__family__``, and registering
it registers them all.
Models are frozen, so a repository can hand out the same instance twice and
nobody can change it behind the store's back; change one with
``repo.update(id, ...)``. How a model becomes a row lives in
:mod:`hutch.serialise`, not here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from types import UnionType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union, get_args, get_origin

import attrs

from hutch.cells import Row
from hutch.errors import DefinitionError, InvalidId
from hutch.ids import check_table_id, new_id

if TYPE_CHECKING:
    from hutch.database import Database

OnDelete = Literal["cascade", "restrict", "set_null"]
ON_DELETE: tuple[str, ...] = get_args(OnDelete)

#: The fields every model has, which hutch maintains.
BASE_FIELDS = ("id", "created_at", "updated_at")
#: The schema version of a model as first written: its first migration is version 2.
FIRST_VERSION = 1


def utc_now() -> datetime:
    """Now, as a timezone-aware UTC datetime (to the microsecond)."""
    return datetime.now(UTC)


@attrs.frozen
class Relation:
    """A foreign key: ``field`` holds the id of a row of ``to`` (a collection or a model).

    ``on_delete`` says what deleting that row does to this one: ``"cascade"``
    deletes it too, ``"restrict"`` refuses the delete, ``"set_null"`` sets
    ``field`` to ``None``.
    """

    field: str
    to: str | type[Model]
    on_delete: OnDelete = "restrict"

    @property
    def target(self) -> str:
        """The collection the relation points into."""
        return self.to if isinstance(self.to, str) else spec_of(self.to).collection


@attrs.frozen
class Unique:
    """A field no two rows may share, compared as given or through a key.

    ``case_insensitive`` compares strings casefolded. ``key`` compares
    ``key(value)`` instead (an email's mailbox, say), given the value as a row
    holds it (a datetime as ISO text, an enum by its value). It may raise
    :class:`~hutch.ValidationError` to refuse a value; a row already stored
    whose value it refuses is in no slice of the key's index.
    """

    field: str
    case_insensitive: bool = False
    key: Callable[[Any], Any] | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Migration:
    """One step of a collection's schema: run once per store, when it is behind ``version``.

    ``step(row)`` rewrites each stored row: it is given the row's cells as
    stored (datetimes as ISO text, enums by value, no ``id``) and returns the
    cells to store, or ``None`` to delete the row. ``run(db)`` instead makes a
    change of the whole store through ``db.store`` (split a collection, fill
    one in). A migration has one or the other.
    """

    version: int
    description: str
    step: Callable[[Row], Row | None] | None = None
    run: Callable[[Database], None] | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        what = f"hutch.Migration({self.version!r}, {self.description!r})"
        if type(self.version) is not int or self.version <= FIRST_VERSION:
            raise DefinitionError(
                f"{what}: a version is a whole number above {FIRST_VERSION} (version "
                f"{FIRST_VERSION} is the model as first written, so the first migration is "
                f"{FIRST_VERSION + 1})"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise DefinitionError(f"{what}: say in the description what the migration does")
        if (self.step is None) == (self.run is None):
            raise DefinitionError(
                f"{what}: give it a step(row) that rewrites each row, or run=fn(db) that "
                "changes the store; one of them, not both"
            )
        if not callable(self.step if self.run is None else self.run):
            raise DefinitionError(f"{what}: its step or run must be a function")


@attrs.frozen(kw_only=True)
class Model:
    """The base of every model: an id and two timestamps that hutch maintains.

    ``id`` is generated (:func:`hutch.ids.new_id`) and the timestamps set when
    not given; values given explicitly (an import) are kept as given. A field
    declared ``attrs.field(repr=False)`` is a secret (a token, a password
    hash): ``repr`` leaves it out, and no error hutch raises quotes its value.
    """

    __collection__: ClassVar[str]
    __indexed__: ClassVar[tuple[str, ...]] = ()
    __unique__: ClassVar[tuple[str | Unique, ...]] = ()
    __relations__: ClassVar[tuple[Relation, ...]] = ()
    __migrations__: ClassVar[tuple[Migration, ...]] = ()  # versioned steps, oldest first
    #: The schema version, declared once older migrations are removed from ``__migrations__``
    #: (rows older than the oldest one left are then refused, not taken for migrated).
    __schema_version__: ClassVar[int | None] = None
    __repository__: ClassVar[Any] = None  # a Repository subclass with domain methods
    #: Models registered with this one, so that their delete policies hold wherever it is
    #: used: a tuple, or a function returning one (for models defined after it).
    __family__: ClassVar[Any] = ()

    id: str = attrs.field(factory=new_id)
    created_at: datetime = attrs.field(factory=utc_now)
    updated_at: datetime = attrs.field(
        default=attrs.Factory(lambda self: self.created_at, takes_self=True)
    )


@attrs.frozen
class ModelSpec:
    """A model's declarations, checked: what repositories and databases work from."""

    model: type[Model]
    collection: str
    fields: dict[str, Any]  # name -> type
    indexed: tuple[str, ...]  # every field with an index: declared, unique and foreign keys
    unique: tuple[Unique, ...]
    relations: tuple[Relation, ...]
    shareable: bool  # every field immutable, so one instance may be handed out many times
    secret: frozenset[str] = frozenset()  # fields left out of repr: no error quotes them
    migrations: tuple[Migration, ...] = ()  # by version, ascending
    declared: int | None = None  # __schema_version__

    @property
    def version(self) -> int:
        """The schema version of the model: that of its last migration, or the one it declares."""
        last = self.migrations[-1].version if self.migrations else FIRST_VERSION
        return last if self.declared is None else max(last, self.declared)

    @property
    def oldest(self) -> int:
        """The oldest version whose rows this model's migrations can bring up to its own: any,
        unless it declares its version (older migrations were removed from its list)."""
        if self.declared is None:
            return FIRST_VERSION
        return self.migrations[0].version - 1 if self.migrations else self.declared

    def index_id(self, field: str) -> str:
        return f"{self.collection}.{field}"

    def casefold_index_id(self, field: str) -> str:
        return f"{self.collection}.{field}.casefold"

    def key_index_id(self, field: str) -> str:
        return f"{self.collection}.{field}.key"

    def unique_index_id(self, unique: Unique) -> str:
        """The index a unique field is checked against: by its key, casefolded, or as stored."""
        if unique.key is not None:
            return self.key_index_id(unique.field)
        if unique.case_insensitive:
            return self.casefold_index_id(unique.field)
        return self.index_id(unique.field)

    def relationship_id(self, relation: Relation) -> str:
        return f"{self.collection}.{relation.field}"


_specs: dict[type[Model], ModelSpec] = {}


def spec_of(model: type[Model]) -> ModelSpec:
    """Check a model's declarations (once) and describe it; errors say what to fix."""
    if not isinstance(model, type):
        raise DefinitionError(
            f"{model!r} is not a model: a model is a class that subclasses hutch.Model, "
            "decorated with @attrs.frozen"
        )
    spec = _specs.get(model)
    if spec is None:
        spec = _specs[model] = _describe(model)
    return spec


def _describe(model: type[Model]) -> ModelSpec:
    name = model.__qualname__
    if not ("__attrs_attrs__" in vars(model) and issubclass(model, Model)):  # its own attrs
        raise DefinitionError(
            f"{name} is not a model: subclass hutch.Model and decorate it with @attrs.frozen"
        )
    collection = getattr(model, "__collection__", None)
    try:
        check_table_id(collection)
    except InvalidId as error:
        raise DefinitionError(f"{name}.__collection__: {error}") from None
    assert isinstance(collection, str)
    attrs.resolve_types(model)  # string annotations become types, in place
    fields = {field.name: field.type for field in attrs.fields(model)}

    def known(field: str, where: str) -> str:
        if field not in fields:
            raise DefinitionError(f"{name}.{where} names {field!r}, which is not a field")
        return field

    unique = tuple(
        Unique(known(u, "__unique__"))
        if isinstance(u, str)
        else attrs.evolve(u, field=known(u.field, "__unique__"))
        for u in model.__unique__
    )
    for u in unique:
        if u.key is not None and (u.case_insensitive or not callable(u.key)):
            raise DefinitionError(
                f"{name}.__unique__: {u.field!r} takes a key function or case_insensitive=True, "
                "not both (fold case inside the key)"
                if u.case_insensitive
                else f"{name}.__unique__: the key of {u.field!r} must be a function, not {u.key!r}"
            )
    for relation in model.__relations__:
        known(relation.field, "__relations__")
        if relation.on_delete not in ON_DELETE:
            raise DefinitionError(
                f"{name}: on_delete={relation.on_delete!r} for {relation.field!r} is not one of "
                f"{', '.join(ON_DELETE)}"
            )
        if relation.on_delete == "set_null" and type(None) not in get_args(fields[relation.field]):
            raise DefinitionError(
                f"{name}.{relation.field} uses on_delete='set_null', so it must accept None "
                "(declare it as `str | None = None`)"
            )
    indexed = dict.fromkeys(known(f, "__indexed__") for f in model.__indexed__)
    indexed.update(dict.fromkeys(u.field for u in unique))
    indexed.update(dict.fromkeys(r.field for r in model.__relations__))
    shareable = all(_immutable(kind) for kind in fields.values())
    secret = secret_fields(model)
    migrations = _migrations(name, model.__migrations__)
    return ModelSpec(
        model,
        collection,
        fields,
        tuple(indexed),
        unique,
        model.__relations__,
        shareable,
        secret,
        migrations,
        _declared(name, model.__schema_version__, migrations),
    )


def family_of(model: type[Model]) -> tuple[type[Model], ...]:
    """The models ``model`` brings with it as it registers (its ``__family__``), checked."""
    declared = model.__family__
    what = f"{model.__qualname__}.__family__"
    try:
        members = declared() if callable(declared) and not isinstance(declared, type) else declared
    except Exception as error:
        raise DefinitionError(f"{what}() failed: {type(error).__name__}: {error}") from error
    if not isinstance(members, tuple | list) or not all(
        isinstance(member, type) and issubclass(member, Model) for member in members
    ):
        raise DefinitionError(
            f"{what} must be a tuple of models, or a function returning one (the models "
            f"registered with it, so that their delete policies always hold), not {members!r}"
        )
    return tuple(members)


def _migrations(name: str, declared: object) -> tuple[Migration, ...]:
    """``__migrations__``, checked: migrations with strictly increasing versions."""
    if not isinstance(declared, tuple | list) or not all(
        isinstance(m, Migration) for m in declared
    ):
        raise DefinitionError(
            f"{name}.__migrations__ must be a tuple of hutch.Migration(version, description, "
            f"step), not {declared!r}"
        )
    for earlier, later in itertools.pairwise(declared):
        if later.version <= earlier.version:
            raise DefinitionError(
                f"{name}.__migrations__: version {later.version} follows version "
                f"{earlier.version}; list them oldest first, each version once"
            )
    return tuple(declared)


def _declared(name: str, declared: object, migrations: tuple[Migration, ...]) -> int | None:
    """``__schema_version__``, checked: a whole number, no older than the last migration."""
    if declared is None:
        return None
    last = migrations[-1].version if migrations else FIRST_VERSION
    if type(declared) is not int or declared < last:
        raise DefinitionError(
            f"{name}.__schema_version__ is {declared!r}: a whole number, at least the version of "
            f"the model's last migration ({last})"
        )
    return declared


def secret_fields(kind: type) -> frozenset[str]:
    """The fields of an attrs class declared ``repr=False``: secrets no message may quote."""
    return frozenset(field.name for field in attrs.fields(kind) if not field.repr)


_IMMUTABLE = (str, int, float, bool, bytes, datetime, type(None))


def _immutable(kind: Any) -> bool:
    """Whether a field of this type can never be changed in place."""
    if isinstance(kind, type):
        if issubclass(kind, (Enum, *_IMMUTABLE)):
            return True
        return (
            attrs.has(kind)
            and kind.__setattr__ is not object.__setattr__
            and all(_immutable(field.type) for field in attrs.fields(kind))
        )
    origin = get_origin(kind)
    if origin in (Union, UnionType, tuple, frozenset):
        return all(_immutable(arg) for arg in get_args(kind) if arg is not Ellipsis)
    return False
