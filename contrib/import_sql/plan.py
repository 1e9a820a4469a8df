"""What each source table becomes: its collection, its fields, how its rows get their ids,
and (with ``--prisma``) the model that checks them.

Row ids. A table's key is its primary key, else its first unique constraint
whose columns are all ``NOT NULL``, else the whole row. A key of one column
whose text is a valid row id (an integer, a uuid, a cuid...) is the row id
itself, and no field repeats it when the column is called ``id``. Any other key
(composite, or text that breaks hutch's id rules) gives a derived id: ``k`` and
40 hex digits of the SHA-256 of the key's JSON, the same for the same key on
every run. A column called ``id`` keeps its value in the field ``source_id``
wherever the row id is not its text (a derived id, another key, a table of no
other column): no value is lost to an id. Rows of a table without any key are
told apart by their content (identical rows: ``-2``, ``-3``...; see
:mod:`.load`).

Links. A foreign key of one column that points at the other table's row id
holds that row's id as text in the child's field (an integer 42 is ``"42"``),
so that relationships and the models' relations resolve it as hutch does. The
row is found by PostgreSQL's own equality (a lookup of its key), so that values
it takes for equal (``1`` and ``1.00``, ``citext``'s ``'Ab'`` and ``'ab'``,
``'1 day'`` and ``'24 hours'``) name the same row. A key that is also such a
link (one row to one row) is the id of the row it names.

Prisma (``--prisma``). Implicit many-to-many tables (``_ProjectToTeam``, with
columns ``A`` and ``B``) become collections of links: ``project_teams`` with
the fields ``project_id`` and ``team_id``. Tables that become a collection of
the platform or auth plugins are checked against its model. Auth.js's session
tokens are stored hashed, as :class:`~hutch.plugins.auth.AuthAdapter` keeps
them (so existing sessions stay valid); its verification tokens are left out,
because Auth.js stores them hashed with a secret of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import orjson

from hutch import ConfigError, Model
from hutch.cells import Row
from hutch.ids import is_row_id
from hutch.models import spec_of

from .catalog import Column, ForeignKey, Schema, Table
from .naming import PRISMA_TABLES, collection_name, field_name, plural, snake
from .values import NotJSON, converter, select_expression

#: What a source ``id`` column is called where it is not the row id ("id" is the row id's).
SOURCE_ID = "source_id"
#: Auth.js's tables whose rows hutch leaves out, and why (``--prisma``).
DROPPED = {
    "verification_tokens": "Auth.js stores verification tokens hashed with a secret of its "
    "own, so none could be checked here: people ask for a new sign-in link"
}
#: The fields stored as ``hash_token(text)``, by collection (``--prisma``).
HASHED = {"sessions": frozenset({"session_token"})}

_IMPLICIT_JOIN = re.compile(r"_([A-Z][A-Za-z0-9]*)To([A-Z][A-Za-z0-9]*)")
#: What a derived id looks like: a key whose text looks so is derived too, so that no two
#: keys meet in one id.
_DERIVED = re.compile(r"k[0-9a-f]{40}").fullmatch


@attrs.frozen
class Field:
    """A column as a field: its name in the row, the SQL that selects it, how its value
    becomes JSON, and whether the row keeps it (an ``id`` column whose text is the row id
    is not repeated as a field)."""

    column: Column
    name: str
    select: str
    convert: Callable[[Any], Any]
    kept: bool = True
    parent: str | None = None  # the source table whose row id a link field holds


@attrs.frozen
class Plan:
    """How one source table is imported."""

    table: Table
    collection: str
    fields: tuple[Field, ...]  # one per column, in the table's order
    id_column: str | None  # the key's one column, whose text is the row id (else: derived)
    key: tuple[str, ...]  # the fields a derived row id comes from, in key order; () for the
    # whole row, or where id_column gives the id
    model: type[Model] | None = None
    dropped: str | None = None  # why the table's rows are left out, if they are
    hashed: frozenset[str] = frozenset()  # fields stored as hash_token(text)
    secret: frozenset[str] = frozenset()  # fields no reject file shows (hashed, the model's)

    def field_of(self, column: str) -> Field:
        """The field of the source column ``column``."""
        for field in self.fields:
            if field.column.name == column:
                return field
        raise KeyError(column)

    def row(self, values: Sequence[Any]) -> tuple[str, Row]:
        """The row id and row of a source row (``values``: one per field, as selected);
        raises :class:`~.values.NotJSON` for a value hutch cannot keep."""
        row: Row = {}
        row_id = None
        for field, value in zip(self.fields, values, strict=True):
            try:
                converted = field.convert(value)
            except NotJSON as error:
                raise NotJSON(f"column {field.column.name!r}: {error}") from None
            if field.column.name == self.id_column:
                # (a key that is a link holds the id of the row it names: its own id too)
                row_id = converted if field.parent else id_for(canonical(field.column, converted))
                if not field.kept and row_id != key_text(converted):  # (not its text)
                    row[SOURCE_ID] = converted
            if field.kept:
                row[field.name] = converted
        if row_id is not None:
            return row_id, row
        return derived_id([row[name] for name in self.key] if self.key else row), row


def key_text(value: Any) -> str:
    """A key's value as text: a string as it is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise _unwritable() from None


def _unwritable() -> NotJSON:
    return NotJSON(
        "the key cannot be written as JSON (an integer beyond 64 bits, or nested too deep)"
    )


def canonical(column: Column, value: Any) -> Any:
    """A key's value (converted) as PostgreSQL compares keys: a ``numeric`` without the
    zeros its scale adds (``1.50`` is ``1.5``), a float's ``-0`` as ``0``."""
    if column.kind == "numeric" and isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return value if not number.is_finite() else format(number.normalize(), "f")
    if column.kind == "float" and value == 0:
        return 0.0
    return value


def id_for(value: Any) -> str:
    """The row id of a row whose key is ``value`` (converted): its text where that is a valid
    row id (and not one a derived id could be), else derived from it."""
    text = key_text(value)
    return text if is_row_id(text) and not _DERIVED(text) else derived_id([value])


def derived_id(key: Any) -> str:
    """A row id for a key that is not one: ``k`` and 40 hex digits of its JSON's SHA-256."""
    try:
        text = orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raise _unwritable() from None
    return "k" + hashlib.sha256(text).hexdigest()[:40]


def plans(
    schema: Schema,
    names: Iterable[str],
    *,
    prisma: bool,
    models: Sequence[type[Model]] = (),
) -> list[Plan]:
    """The plan of each table ``names`` names, in foreign-key order (a table after those it
    points at). Two tables that would become one collection are refused."""
    by_collection = {spec_of(model).collection: model for model in models}
    made: dict[str, Plan] = {}
    taken: dict[str, str] = {}
    for name in schema.load_order(names):
        table = schema.tables[name]
        plan = _plan(table, schema, prisma=prisma, models=by_collection)
        if plan.collection in taken:
            raise ConfigError(
                f"tables {taken[plan.collection]!r} and {name!r} would both become the "
                f"collection {plan.collection!r}; leave one out with --skip"
            )
        taken[plan.collection] = name
        made[name] = plan
    return list(made.values())


def skipped_by_convention(schema: Schema, *, prisma: bool) -> dict[str, str]:
    """Tables left out whatever --tables says, and why (Prisma's own)."""
    if not prisma:
        return {}
    return {
        name: "Prisma's record of its migrations, not the application's data"
        for name in schema.tables
        if name in PRISMA_TABLES
    }


def _plan(table: Table, schema: Schema, *, prisma: bool, models: dict[str, type[Model]]) -> Plan:
    join = _implicit_join(table) if prisma else None
    if join is not None:
        collection, names = join
    else:
        collection = collection_name(table.name, prisma=prisma)
        names = {column.name: field_name(column.name, prisma=prisma) for column in table.columns}
    key = _key(table)
    hashed = HASHED.get(collection, frozenset()) if prisma else frozenset()
    id_column = _id_column(table, prisma=prisma)
    links = _links(table, schema, prisma=prisma)
    fields = []
    for column in table.columns:
        name = names[column.name]
        # The row id says what an id column held, if its text is the row id; a table of no
        # other column keeps it as a field (a row of no cells would be no row).
        kept = not (column.name == id_column and name == "id" and len(table.columns) > 1)
        if name == "id" and kept:
            name = SOURCE_ID
        select, convert, parent = select_expression(column), converter(column), None
        if column.name in links:
            foreign = links[column.name]
            named = schema.tables[foreign.table]
            target = named.column(foreign.references[0])
            select = select_expression(target, _key_named(schema.name, named, target, column))
            convert, parent = _linking(target), foreign.table
        if name in hashed:
            convert = _hashing(convert)
        fields.append(Field(column, name, select, convert, kept, parent))
    final = {field.column.name: field.name for field in fields}
    taken = [field.name for field in fields if field.kept]
    if not all(field.kept for field in fields):
        taken.append(SOURCE_ID)  # (where the id's text is not the row id)
    doubled = sorted({name for name in taken if taken.count(name) > 1})
    if doubled:
        raise ConfigError(
            f"table {table.name!r}: several columns would become the field(s) "
            f"{', '.join(map(repr, doubled))}; leave the table out with --skip"
        )
    model = models.get(collection)
    return Plan(
        table=table,
        collection=collection,
        fields=tuple(fields),
        id_column=id_column,
        key=() if id_column is not None else tuple(final[column] for column in key),
        model=model,
        dropped=_dropped(table, collection, prisma=prisma),
        hashed=hashed,
        secret=hashed | (spec_of(model).secret if model is not None else frozenset()),
    )


def _dropped(table: Table, collection: str, *, prisma: bool) -> str | None:
    """Why a table's rows are left out (and only counted), if they are."""
    if not table.columns:
        return "a table of no columns holds nothing a row could keep"
    return DROPPED.get(collection) if prisma else None


def _key(table: Table) -> tuple[str, ...]:
    """The primary key, else the first unique constraint of NOT NULL columns, else ()."""
    if table.primary_key:
        return table.primary_key
    for unique in table.uniques:
        if all(table.column(name).not_null for name in unique):
            return unique
    return ()


def _id_column(table: Table, *, prisma: bool) -> str | None:
    """The column whose text is the row id: the key's one column, unless it is an array or
    a field stored hashed (whose clear text must not name a row)."""
    key = _key(table)
    if len(key) != 1 or table.column(key[0]).array:
        return None
    collection = collection_name(table.name, prisma=prisma)
    hashed = HASHED.get(collection, frozenset()) if prisma else frozenset()
    return None if field_name(key[0], prisma=prisma) in hashed else key[0]


def _links(table: Table, schema: Schema, *, prisma: bool) -> dict[str, ForeignKey]:
    """The columns that hold a row id of another table (or of their own): a foreign key of
    one column to that table's id column, whether or not that table is imported."""
    links: dict[str, ForeignKey] = {}
    for foreign in table.foreign_keys:
        parent = schema.tables.get(foreign.table)
        target = None if parent is None else _id_column(parent, prisma=prisma)
        if target is not None and foreign.columns and foreign.references == (target,):
            links[foreign.columns[0]] = foreign
    return links


def _linking(target: Column) -> Callable[[Any], Any]:
    """The converter of a link to the row whose key column is ``target``: that row's id."""
    convert = converter(target)

    def link(value: Any) -> Any:
        converted = convert(value)
        return None if converted is None else id_for(canonical(target, converted))

    return link


def _hashing(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from hutch.plugins.auth import hash_token

    def hashed(value: Any) -> Any:
        converted = convert(value)
        if converted is None:
            return None
        if not isinstance(converted, str):
            raise NotJSON("a token must be text")
        return hash_token(converted)

    return hashed


def _implicit_join(table: Table) -> tuple[str, dict[str, str]] | None:
    """A Prisma implicit many-to-many table as a collection of links and its two fields."""
    if {column.name for column in table.columns} != {"A", "B"}:
        return None
    targets: dict[str, ForeignKey] = {}
    for foreign in table.foreign_keys:
        if len(foreign.columns) == 1:
            targets[foreign.columns[0]] = foreign
    if set(targets) != {"A", "B"}:
        return None
    first, second = snake(targets["A"].table), snake(targets["B"].table)
    found = _IMPLICIT_JOIN.fullmatch(table.name)
    words = second.split("_")
    collection = f"{first}_{'_'.join([*words[:-1], plural(words[-1])])}"
    if found is None:  # a named relation (@relation("Follows")): its own name
        collection = snake(table.name)
    if first == second:
        names = {"A": f"{first}_a_id", "B": f"{second}_b_id"}
    else:
        names = {"A": f"{first}_id", "B": f"{second}_id"}
    return collection_name(collection, prisma=True), names


#: What the loader and the check call the table a row is read from, in their SQL.
ROW = "hutch_row"


def _key_named(schema: str, parent: Table, key: Column, column: Column) -> str:
    """The SQL that reads a link: the key of the row the column names, as that row holds it,
    found by PostgreSQL's own equality (citext, numeric scales, intervals, collations...);
    NULL where it names none."""
    relation = f"{_quoted(schema)}.{_quoted(parent.name)}"
    if not parent.partitioned:
        relation = "ONLY " + relation
    return (
        f"(SELECT named.{_quoted(key.name)} FROM {relation} AS named "
        f"WHERE named.{_quoted(key.name)} = {ROW}.{_quoted(column.name)} LIMIT 1)"
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
