"""The live schema of a PostgreSQL database, read from ``pg_catalog``.

``hutch import-sql`` needs tables, columns, keys and foreign keys as the server
enforces them now, not as some migration file says they were; ``pg_catalog`` is
the one place that holds all of it (``information_schema`` leaves out enums,
array dimensions and partitioning). A handful of queries read a whole schema,
whatever its number of tables; names only ever travel as query parameters.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from hutch import ConfigError

if TYPE_CHECKING:
    import psycopg  # the caller's connection: this module sends only SQL through it

#: What a column holds, as far as converting it to JSON goes (see :mod:`.values`).
KINDS = (
    "bool",
    "int",
    "float",
    "numeric",
    "text",
    "json",
    "uuid",
    "bytea",
    "timestamptz",
    "timestamp",
    "date",
    "time",
    "enum",
    "other",
)

#: The kind of each built-in type (by its name in ``pg_catalog``); other types are "other".
_BUILTIN_KINDS = {
    "bool": "bool",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "oid": "int",
    "float4": "float",
    "float8": "float",
    "numeric": "numeric",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
    "bytea": "bytea",
    "timestamptz": "timestamptz",
    "timestamp": "timestamp",
    "date": "date",
    "time": "time",
}

#: How ``pg_constraint.confdeltype`` spells each delete rule.
_DELETE_RULES = {
    "a": "no_action",
    "r": "restrict",
    "c": "cascade",
    "n": "set_null",
    "d": "set_default",
}

# The tables read: ordinary and partitioned ones, not the partitions (their rows are read
# through the parent). An unanalysed table has reltuples -1 (0 before PostgreSQL 14); a
# partitioned table's estimate is the sum of its leaves'.
_TABLES = """
SELECT c.oid, c.relname::text,
       CASE WHEN c.relkind = 'p' THEN
            (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0)
               FROM pg_partition_tree(c.oid) AS t JOIN pg_class AS l ON l.oid = t.relid
              WHERE t.isleaf)
       ELSE greatest(c.reltuples, 0) END::float8,
       c.relkind = 'p'
  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod),
       a.atttypid, a.attnotnull
  FROM pg_attribute AS a
 WHERE a.attrelid = ANY(%(tables)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

# Every type the columns use, and every type those are made of (a domain's base type, an
# array's element type), however deep.
_TYPES = """
WITH RECURSIVE used(oid) AS (
    SELECT DISTINCT a.atttypid FROM pg_attribute AS a
     WHERE a.attrelid = ANY(%(tables)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
    UNION
    SELECT part FROM used JOIN pg_type AS t ON t.oid = used.oid,
           unnest(ARRAY[t.typbasetype, t.typelem]) AS part
     WHERE part <> 0
)
SELECT t.oid, t.typname::text, n.nspname::text, t.typtype::text, t.typbasetype,
       t.typcategory = 'A' AND t.typelem <> 0
           AND (SELECT e.typarray FROM pg_type AS e WHERE e.oid = t.typelem) = t.oid,
       t.typelem
  FROM used JOIN pg_type AS t ON t.oid = used.oid JOIN pg_namespace AS n ON n.oid = t.typnamespace
"""

_LABELS = """
SELECT enumtypid, enumlabel::text FROM pg_enum
 WHERE enumtypid = ANY(%(types)s::oid[])
 ORDER BY enumtypid, enumsortorder
"""

# Primary keys and unique indexes (a unique constraint has one too) whose key is plain
# columns: no predicate, no expression, and valid (a failed CREATE INDEX CONCURRENTLY
# enforces nothing). INCLUDE columns are not part of the key.
_KEYS = """
SELECT i.indrelid, i.indisprimary,
       ARRAY(SELECT k.attnum::int2
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
              WHERE k.position <= i.indnkeyatts ORDER BY k.position)
  FROM pg_index AS i JOIN pg_class AS x ON x.oid = i.indexrelid
 WHERE i.indrelid = ANY(%(tables)s::oid[]) AND (i.indisprimary OR i.indisunique) AND i.indisvalid
       AND i.indpred IS NULL AND i.indexprs IS NULL
 ORDER BY i.indrelid, NOT i.indisprimary, x.relname
"""

# Foreign keys declared on the tables themselves (conparentid <> 0: the copies PostgreSQL
# makes for partitions).
_FOREIGN_KEYS = """
SELECT c.conrelid, c.conname::text, c.confrelid, c.confdeltype::text, c.conkey, c.confkey
  FROM pg_constraint AS c
 WHERE c.conrelid = ANY(%(tables)s::oid[]) AND c.contype = 'f' AND c.conparentid = 0
 ORDER BY c.conrelid, c.conname
"""


@attrs.frozen
class Column:
    """A column as the importer converts it."""

    name: str
    type: str  # format_type(): what psql shows, e.g. 'timestamp(3) without time zone', '"Role"'
    kind: str  # one of KINDS; an array's element kind; a domain's base type's kind
    array: bool  # an array, of any number of dimensions
    not_null: bool
    labels: tuple[str, ...] = ()  # an enum's labels, in their order
    padded: bool = False  # character(n) (or a domain over it): trailing spaces mean nothing


@attrs.frozen
class ForeignKey:
    """A foreign key of one table onto another of the same schema."""

    name: str
    columns: tuple[str, ...]  # in the referencing table, in key order
    table: str  # the table referenced
    references: tuple[str, ...]  # its columns, in key order
    on_delete: str  # "cascade" | "restrict" | "set_null" | "set_default" | "no_action"


@attrs.frozen
class Table:
    """A table: its columns, keys and foreign keys."""

    name: str
    columns: tuple[Column, ...]  # in attnum order
    primary_key: tuple[str, ...]  # () when it has none
    uniques: tuple[tuple[str, ...], ...]  # other unique keys of plain columns, deduplicated
    foreign_keys: tuple[ForeignKey, ...]
    estimated_rows: int  # the planner's estimate: 0 when never analysed
    partitioned: bool = False  # its rows are its partitions' (it holds none of its own)

    def column(self, name: str) -> Column:
        """The column ``name`` (KeyError, naming the table's columns, when there is none)."""
        for column in self.columns:
            if column.name == name:
                return column
        known = ", ".join(repr(column.name) for column in self.columns)
        raise KeyError(f"table {self.name!r} has no column {name!r} (it has {known})")


@attrs.frozen
class Schema:
    """The tables of one PostgreSQL schema."""

    name: str
    tables: dict[str, Table]  # by name: ordinary and partitioned tables, not the partitions

    def load_order(self, names: Iterable[str]) -> list[str]:
        """``names`` (each once) in foreign-key order, so that rows can be checked as they
        arrive: a table after every table it references among ``names``, self-references
        ignored. A cycle cannot be ordered; it is broken by name, so the order is the same on
        every run. Among tables free to go, the first by name goes first."""
        wanted = sorted(set(names))
        within = set(wanted)
        needs: dict[str, set[str]] = {name: set() for name in wanted}
        for name in wanted:
            table = self.tables.get(name)
            if table is not None:
                needs[name] = {
                    key.table
                    for key in table.foreign_keys
                    if key.table in within and key.table != name
                }
        order: list[str] = []
        for component in _components_in_order(wanted, needs):
            order += _order_cycle(component, needs) if len(component) > 1 else component
        return order


def read_schema(conn: psycopg.Connection[Any], schema: str = "public") -> Schema:
    """Read the tables of ``schema`` from ``pg_catalog`` (ConfigError when there is no such
    schema, naming those there are)."""
    params: dict[str, Any] = {"schema": schema}
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s", params)
        if cur.fetchone() is None:
            cur.execute(
                "SELECT nspname::text FROM pg_namespace WHERE nspname !~ '^pg_' "
                "AND nspname <> 'information_schema' ORDER BY nspname"
            )
            there = ", ".join(repr(row[0]) for row in cur.fetchall()) or "none"
            raise ConfigError(
                f"the database has no schema {schema!r} (its schemas: {there}); name one of those"
            )
        cur.execute(_TABLES, params)
        relations = {oid: (name, int(rows), parted) for oid, name, rows, parted in cur.fetchall()}
        params["tables"] = list(relations)
        cur.execute(_COLUMNS, params)
        column_rows = cur.fetchall()
        cur.execute(_TYPES, params)
        types = {row[0]: row[1:] for row in cur.fetchall()}
        enums = [oid for oid, row in types.items() if row[2] == "e"]
        labels: dict[int, list[str]] = {oid: [] for oid in enums}
        if enums:
            cur.execute(_LABELS, {"types": enums})
            for oid, label in cur.fetchall():
                labels[oid].append(label)
        cur.execute(_KEYS, params)
        key_rows = cur.fetchall()
        cur.execute(_FOREIGN_KEYS, params)
        foreign_rows = cur.fetchall()

    columns: dict[int, list[Column]] = {oid: [] for oid in relations}
    names: dict[int, dict[int, str]] = {oid: {} for oid in relations}
    for relid, attnum, name, shown, typid, not_null in column_rows:
        kind, array, enum, padded = _resolve(typid, types)
        enum_labels = tuple(labels[enum]) if enum is not None else ()
        columns[relid].append(Column(name, shown, kind, array, not_null, enum_labels, padded))
        names[relid][attnum] = name

    primary: dict[int, tuple[str, ...]] = {}
    uniques: dict[int, list[tuple[str, ...]]] = {oid: [] for oid in relations}
    for relid, is_primary, attnums in key_rows:
        key = tuple(names[relid][attnum] for attnum in attnums)
        if is_primary:
            primary[relid] = key
        elif key != primary.get(relid) and key not in uniques[relid]:
            uniques[relid].append(key)  # (the primary key's row comes first: see _KEYS)

    foreign: dict[int, list[ForeignKey]] = {oid: [] for oid in relations}
    for relid, name, target, rule, keys, references in foreign_rows:
        if target not in relations:
            continue  # a table of another schema, or a partition: not imported with these
        foreign[relid].append(
            ForeignKey(
                name=name,
                columns=tuple(names[relid][attnum] for attnum in keys),
                table=relations[target][0],
                references=tuple(names[target][attnum] for attnum in references),
                on_delete=_DELETE_RULES[rule],
            )
        )

    tables = {
        name: Table(
            name=name,
            columns=tuple(columns[oid]),
            primary_key=primary.get(oid, ()),
            uniques=tuple(uniques[oid]),
            foreign_keys=tuple(foreign[oid]),
            estimated_rows=rows,
            partitioned=parted,
        )
        for oid, (name, rows, parted) in relations.items()
    }
    return Schema(name=schema, tables=tables)


def _resolve(typid: int, types: dict[int, tuple[Any, ...]]) -> tuple[str, bool, int | None, bool]:
    """A column type's kind, whether it is an array, its enum type's oid if an enum, and
    whether it is character(n): domains give way to their base type, arrays to their
    element type."""
    array = False
    while True:
        name, namespace, typtype, base, is_array, element = types[typid]
        if typtype == "d":
            typid = base
        elif is_array:
            array, typid = True, element
        elif typtype == "e":
            return "enum", array, typid, False
        else:
            builtin = namespace == "pg_catalog"
            kind = _BUILTIN_KINDS.get(name, "other") if builtin else "other"
            return kind, array, None, builtin and name == "bpchar"


def _components_in_order(names: list[str], needs: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of the graph "table -> tables it needs", each sorted,
    in an order where a component comes after every component it needs, the first by name
    first among those free to go (Tarjan's algorithm, without recursion, then Kahn's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in names:
        if root in index:
            continue
        work = [(root, iter(sorted(needs[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(needs[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    of = {member: number for number, component in enumerate(components) for member in component}
    waiting = [
        {of[target] for member in component for target in needs[member]} - {number}
        for number, component in enumerate(components)
    ]
    needed_by: list[list[int]] = [[] for _ in components]
    for number, needed in enumerate(waiting):
        for other in needed:
            needed_by[other].append(number)
    ready = [
        (component[0], number) for number, component in enumerate(components) if not waiting[number]
    ]
    heapq.heapify(ready)
    ordered: list[list[str]] = []
    while ready:
        _, number = heapq.heappop(ready)
        ordered.append(components[number])
        for other in needed_by[number]:
            waiting[other].discard(number)
            if not waiting[other]:
                heapq.heappush(ready, (components[other][0], other))
    return ordered


def _order_cycle(component: list[str], needs: dict[str, set[str]]) -> list[str]:
    """The tables of one cycle (a sorted component): those whose needs are met, first by name
    first; when none is, the first remaining by name goes anyway, breaking the cycle."""
    members = set(component)
    done: set[str] = set()
    order: list[str] = []
    while len(order) < len(component):
        remaining = [name for name in component if name not in done]
        free = [name for name in remaining if (needs[name] & members) <= done]
        chosen = free[0] if free else remaining[0]
        order.append(chosen)
        done.add(chosen)
    return order
