"""Looking after a ``postgresql://`` store: what ``hutch stats``, ``verify``, ``reindex`` and
``compact`` read and run, the comments that describe relationships, and the key that tells
whether a store is open already in this process (docs/postgres-format.md, "Looking after a
store").

Each function takes the connection and the store's :class:`~.schema.Layout` and runs in
whatever transaction the persister opened for it: the persister chooses the lock, these
choose the SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from psycopg import errors as pg_errors

from hutch import CollectionSettings, CorruptData, StoragePermissionError

from .schema import (
    CHANGES_TABLE,
    COLLECTIONS_TABLE,
    MAX_NAME,
    META_TABLE,
    SEQUENCE,
    VALUE_COLUMNS,
    VALUES,
    VALUES_TABLE,
    Layout,
    check_collections,
    check_columns,
    ident,
    literal,
)

if TYPE_CHECKING:
    from .persister import Connection

#: How many rows of one kind of problem ``verify`` names in one table (then "and more").
LISTED = 10
#: hutch's row ids, as :func:`hutch.ids.is_row_id` checks them, in PostgreSQL's terms; and
#: what a row that breaks the rule holds.
ROW_ID_GOOD = "id COLLATE \"C\" ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'"
ROW_ID_BAD = (
    "an id that breaks hutch's rules (a letter or digit, then up to 127 letters, digits, "
    "'.', '_' or '-')"
)
#: A row's JSON is an object of cells.
OBJECT_GOOD = "json_typeof(row) = 'object'"
OBJECT_BAD = "a row that is no JSON object"
#: hutch's own tables, beside those of the collections.
OWN_TABLES = (META_TABLE, COLLECTIONS_TABLE, VALUES_TABLE, CHANGES_TABLE)
#: What each of hutch's triggers (:meth:`.schema.Layout.triggers`) is, as ``pg_trigger`` has
#: it: its type bits (1 each row, 2 before; events 4 insert, 8 delete, 16 update, 32
#: truncate), the function it calls, and whether it gets the collection and the transition
#: tables (``OLD TABLE``, ``NEW TABLE``).
TRIGGERS: dict[str, tuple[int, str, bool, str | None, str | None]] = {
    "_hutch_lock": (2 | 4 | 8 | 16 | 32, "_hutch_lock", False, None, None),
    "_hutch_number": (1 | 2 | 4 | 16, "_hutch_number", False, None, None),
    "_hutch_log_insert": (4, "_hutch_log", True, None, "hutch_new"),
    "_hutch_log_update": (16, "_hutch_log", True, "hutch_old", "hutch_new"),
    "_hutch_log_delete": (8, "_hutch_log", True, "hutch_old", None),
    "_hutch_log_truncate": (32, "_hutch_log", True, None, None),
}
#: The start of a line of a table's comment that describes a relationship.
RELATIONSHIP_LINE = "hutch relationship "


def store_key(conn: Connection, layout: Layout) -> tuple[Hashable, ...]:
    """What names the store wherever it is reached from (another host name, a socket): the
    cluster's system identifier, the database and the schema. A role that may not read the
    cluster's identifier (some hosted services) gets the server's host and port instead."""
    database = "(SELECT oid FROM pg_database WHERE datname = current_database())"
    try:
        cluster, oid = conn.execute(
            f"SELECT (SELECT system_identifier FROM pg_control_system()), {database}"
        ).fetchone() or (None, None)
    except pg_errors.InsufficientPrivilege:
        cluster = f"{conn.info.host}:{conn.info.port}"
        oid = (conn.execute(f"SELECT {database}").fetchone() or (None,))[0]
    return ("postgresql", cluster, oid, layout.oid)


# -- hutch stats -----------------------------------------------------------------------------


def stats(conn: Connection, layout: Layout, tables: Mapping[str, str]) -> dict[str, Any]:
    """The sizes of the store's tables (each with its indexes and TOAST, as
    ``pg_total_relation_size`` counts them), each collection's rows, the change log's
    length and oldest line, and how many sessions wait for the write lock now."""
    sizes = {
        name: (total, indexes, count)
        for name, total, indexes, count in conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid), "
            "(SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) FROM pg_class c "
            f"WHERE c.relnamespace = {layout.oid} AND c.relkind IN ('r', 'p')"
        )
    }
    collections: dict[str, dict[str, int]] = {}
    for collection, name in sorted(tables.items()):
        total, indexes, count = sizes.get(name, (0, 0, 0))
        (rows,) = conn.execute(f"SELECT count(*) FROM {layout.qualified(name)}").fetchone() or (0,)
        collections[collection] = {
            "rows": rows,
            "bytes": total,
            "index_bytes": indexes,
            "indexes": count,
        }
    lines, first, last, oldest = conn.execute(
        f"SELECT count(*), min(seq), max(seq), min(at) FROM {layout.changes}"
    ).fetchone() or (0, None, None, None)
    (waiting,) = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = %s AND objid = %s AND objsubid = 1",
        (layout.lock_key >> 32, layout.oid),
    ).fetchone() or (0,)
    owned = [*tables.values(), *OWN_TABLES]
    return {
        "schema": layout.schema,
        "bytes": sum(sizes.get(name, (0, 0, 0))[0] for name in owned),
        "log_bytes": sizes.get(CHANGES_TABLE, (0, 0, 0))[0],
        "log_lines": lines,
        "log_first": first,
        "log_last": last,
        "log_oldest_at": None if oldest is None else oldest.isoformat(),
        "values_bytes": sizes.get(VALUES_TABLE, (0, 0, 0))[0],
        "lock_waiters": waiting,
        "collections": collections,
    }


# -- hutch verify ----------------------------------------------------------------------------


def problems(
    conn: Connection,
    layout: Layout,
    where: str,
    shown: str,
    settings: Mapping[str, CollectionSettings],
) -> list[str]:
    """What is wrong in the schema, one line each, saying what to do (``shown``: the URL for
    the commands it suggests): tables and columns changed, rows hutch cannot read, ids held
    twice, rows written without a line in the change log, the sequence behind the numbers
    in use, hutch's triggers and functions missing, disabled or changed, and the indexes of
    ``indexed`` fields missing or unusable. Reads only."""
    columns: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(layout.columns_query()):
        columns.setdefault(table, {})[column] = kind
    found: list[str] = []
    tables: dict[str, str] = {}
    for line in conn.execute(f"SELECT collection, table_name FROM {layout.collections}"):
        try:
            tables.update(check_collections([line], columns, where))
        except CorruptData as error:
            found.append(str(error))
    #: Each table of rows whose columns are as hutch keeps them: its collection, and what
    #: each of its rows must be (a condition in SQL, and what a row that fails it holds).
    checked: dict[str, tuple[str, list[tuple[str, str]]]] = {
        name: (collection, [(ROW_ID_GOOD, ROW_ID_BAD), (OBJECT_GOOD, OBJECT_BAD)])
        for collection, name in tables.items()
    }
    try:
        check_columns(columns.get(VALUES_TABLE, {}), VALUE_COLUMNS, f"{where}, keyed values")
    except CorruptData as error:
        found.append(str(error))
    else:
        checked[VALUES_TABLE] = (VALUES, [("id <> ''", "an empty id")])
    for table, (_, rules) in sorted(checked.items()):
        found += _rows(conn, layout, f"{where}, table {table!r}", table, rules)
    found += _numbering(conn, layout, where, sorted(checked))
    found += _triggers(conn, layout, where, {name: of for name, (of, _) in checked.items()})
    found += _indexes(conn, layout, where, shown, tables, settings)
    return found


def _rows(
    conn: Connection, layout: Layout, at: str, table: str, rules: list[tuple[str, str]]
) -> Iterator[str]:
    """A line for the first rows of ``table`` that break each rule (a condition each row must
    meet, and what one that does not holds); if its primary key was dropped, one for that and
    one for the ids that several rows hold."""
    quoted = layout.qualified(table)
    for good, bad in rules:
        if ids := _ids(conn, f"SELECT id FROM {quoted} WHERE ({good}) IS NOT TRUE"):
            yield (
                f"{at}: {_listed(ids)} hold {bad}, which hutch cannot read (and refuses to open "
                f"with): fix or delete them (DELETE FROM {quoted} WHERE id = ...)"
            )
    (keys,) = conn.execute(
        "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass AND i.indisunique "
        "AND i.indisvalid AND i.indnkeyatts = 1 AND a.attname = 'id' AND i.indpred IS NULL",
        (quoted,),
    ).fetchone() or (0,)
    if keys:
        return
    yield (
        f"{at} has no primary key on id (dropped by hand?), so hutch's writes to it fail: give "
        f"it back (ALTER TABLE {quoted} ADD PRIMARY KEY (id))"
    )
    if held := _ids(conn, f"SELECT id FROM {quoted} GROUP BY id HAVING count(*) > 1"):
        yield (
            f"{at}: {_listed(held)} are each held by several rows, and hutch reads one of them: "
            "delete the others before the key is given back"
        )


def _numbering(conn: Connection, layout: Layout, where: str, tables: list[str]) -> list[str]:
    """The change log's numbers against the rows' and the sequence's: a row whose number has
    no line (written with hutch's triggers off), a sequence that would hand out a number
    already used."""
    found = []
    first, last = conn.execute(f"SELECT min(seq), max(seq) FROM {layout.changes}").fetchone() or (
        None,
        None,
    )
    highest = last or 0
    for table in tables:
        quoted = layout.qualified(table)
        (top,) = conn.execute(f"SELECT max(seq) FROM {quoted}").fetchone() or (None,)
        highest = max(highest, top or 0)
        ids = _ids(
            conn,
            f"SELECT DISTINCT id FROM {quoted} t WHERE t.seq >= %s AND NOT EXISTS "
            f"(SELECT FROM {layout.changes} c WHERE c.seq = t.seq)",
            (first,),
        )
        if ids:
            found.append(
                f"{where}, table {table!r}: {_listed(ids)} were written with no line in the "
                f"change log {CHANGES_TABLE} (with hutch's triggers disabled, or "
                "session_replication_role = replica?), so open nodes never took them in: log "
                f"them now (UPDATE {quoted} SET id = id WHERE id = ...), or restart the nodes"
            )
    stands, called = conn.execute(
        f"SELECT last_value, is_called FROM {layout.sequence}"
    ).fetchone() or (0, False)
    if (stands if called else stands - 1) < highest:
        found.append(
            f"{where}: the sequence {SEQUENCE} stands at {stands}, below the number {highest} "
            "in use (set back by hand?): the next write would take a number used already, and "
            f"fail. Set it past it: SELECT setval({literal(layout.sequence)}, {highest})"
        )
    return found


def _triggers(conn: Connection, layout: Layout, where: str, tables: Mapping[str, str]) -> list[str]:
    """hutch's triggers on each table of rows (``table -> collection``) and the functions they
    call, as a writing open makes them: what is missing, disabled or changed."""
    found = []
    bodies: dict[str, str] = dict(conn.execute(layout.functions_query()).fetchall())
    for name, body in layout.functions().items():
        if bodies.get(name) != body:
            what = "is missing" if name not in bodies else "was changed"
            found.append(
                f"{where}: hutch's function {name}() {what}, so writes may be neither locked "
                "nor logged: open the store once for writing (without read_only), which puts "
                "it back"
            )
    have: dict[tuple[str, str], tuple[Any, ...]] = {}
    for table, trigger, *described in conn.execute(
        "SELECT c.relname, t.tgname, t.tgenabled, t.tgtype, p.proname, "
        "p.pronamespace = c.relnamespace, encode(t.tgargs, 'escape'), t.tgoldtable, "
        "t.tgnewtable, t.tgqual IS NULL AND t.tgattr = '' FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
        f"WHERE c.relnamespace = {layout.oid} AND NOT t.tgisinternal "
        "AND t.tgname LIKE '\\_hutch\\_%'"
    ):
        have[(table, trigger)] = tuple(described)
    for table, collection in sorted(tables.items()):
        at = f"{where}, table {table!r}: hutch's trigger"
        quoted = layout.qualified(table)
        for trigger in layout.triggers(table, collection):
            kind, function, named, old, new = TRIGGERS[trigger]
            facts = have.get((table, trigger))
            args = f"{collection}\\000" if named else ""
            if facts is None:
                found.append(
                    f"{at} {trigger} is missing, so writes to it are not locked or logged: open "
                    "the store once for writing (without read_only), which makes it again"
                )
            elif facts[1:] != (kind, function, True, args, old, new, True):
                found.append(
                    f"{at} {trigger} was changed, so writes to it may be neither locked nor "
                    f"logged: drop it (DROP TRIGGER {trigger} ON {quoted}) and open the store "
                    "once for writing, which makes it again"
                )
            elif facts[0] not in ("O", "A"):
                found.append(
                    f"{at} {trigger} is disabled, so writes to it are not locked or logged: "
                    f"enable it (ALTER TABLE {quoted} ENABLE TRIGGER {trigger}), or open the "
                    "store once for writing"
                )
    return found


def _indexes(
    conn: Connection,
    layout: Layout,
    where: str,
    shown: str,
    tables: Mapping[str, str],
    settings: Mapping[str, CollectionSettings],
) -> list[str]:
    """The index of each ``indexed`` field that is missing, and every index of hutch's tables
    that PostgreSQL cannot use (a build that failed)."""
    found = []
    names = {name for (name,) in conn.execute(layout.names_query())}
    for collection, name in sorted(tables.items()):
        for field in settings.get(collection, CollectionSettings()).indexed:
            if index_name(name, field) not in names:
                found.append(
                    f"{where}, table {name!r}: the indexed field {field!r} has no index; open "
                    "the store for writing with these settings (hutch.open(url, "
                    "collections=...)), which makes it"
                )
    for table, index in conn.execute(
        "SELECT c.relname, x.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        f"JOIN pg_class x ON x.oid = i.indexrelid WHERE c.relnamespace = {layout.oid} "
        "AND NOT i.indisvalid ORDER BY 1, 2"
    ):
        if table in tables.values() or table in OWN_TABLES:
            found.append(
                f"{where}, table {table!r}: the index {index!r} is not valid (its build "
                f"failed): run `hutch reindex {shown}`"
            )
    return found


# -- indexes, hutch reindex, hutch compact ---------------------------------------------------


def index_name(table: str, field: str) -> str:
    """The name of the index of ``field`` on ``table``: ``_hutch_ix_<table>_<field>_<hash>``,
    cut to PostgreSQL's 63 bytes (the hash keeps names that are cut alike apart)."""
    digest = hashlib.sha1(orjson.dumps([table, field])).hexdigest()[:8]
    readable = f"_hutch_ix_{table}_{field}".encode()[: MAX_NAME - len(digest) - 1]
    return f"{readable.decode(errors='ignore')}_{digest}"


def missing_indexes(
    layout: Layout,
    tables: Mapping[str, str],
    settings: Mapping[str, CollectionSettings],
    existing: Collection[str],
) -> list[str]:
    """The statements that make the index of each ``indexed`` field of ``tables`` (collection
    -> table) that ``existing`` (the schema's relations) lacks: an expression index on
    ``row->>'field'``, for people's SQL (hutch itself reads memory)."""
    return [
        f"CREATE INDEX IF NOT EXISTS {ident(name)} ON {layout.qualified(table)} "
        f"((row->>{literal(field)}))"
        for collection, table in sorted(tables.items())
        for field in settings.get(collection, CollectionSettings()).indexed
        if (name := index_name(table, field)) not in existing
    ]


def rebuild(conn: Connection, layout: Layout, tables: Collection[str]) -> None:
    """``REINDEX`` every table of the store (``tables``: the collections'), one at a time:
    each one's writers wait while its indexes are rebuilt."""
    for table in [*OWN_TABLES, *sorted(tables)]:
        conn.execute(f"REINDEX TABLE {layout.qualified(table)}")


def vacuum(conn: Connection, layout: Layout, tables: Collection[str], where: str) -> None:
    """Rewrite every table of the store (``VACUUM (FULL)``), so that deleted and overwritten
    rows leave its files; refused before anything runs unless this role owns them all
    (PostgreSQL would skip the others with a mere warning)."""
    every = [*OWN_TABLES, *sorted(tables)]
    foreign = [
        name
        for (name,) in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s AND relname = ANY(%s) "
            "AND NOT pg_has_role(relowner, 'USAGE') ORDER BY 1",
            (layout.oid, every),
        )
    ]
    if foreign:
        raise StoragePermissionError(
            f"cannot compact {where}: the role of the URL does not own the table(s) "
            f"{', '.join(foreign)}, and only their owner may rewrite them; run `hutch compact` "
            "as their owner"
        )
    conn.execute(f"VACUUM (FULL, ANALYZE) {', '.join(layout.qualified(t) for t in every)}")


# -- relationships ---------------------------------------------------------------------------


def relationship_line(relationship_id: str, on: str, remote_table: str) -> str:
    """How a table's comment describes a relationship from it: the cell, and the table and
    column it names a row of (described, never enforced)."""
    return (
        f"{RELATIONSHIP_LINE}{orjson.dumps(relationship_id).decode()}: row->>{literal(on)} = "
        f"{ident(remote_table)}.id (described, never enforced)"
    )


def commented(comment: str | None, relationship_id: str, line: str | None) -> str | None:
    """``comment`` with the line of ``relationship_id`` replaced by ``line`` (``None``:
    removed); the other lines, a person's own among them, kept. ``None`` for no comment."""
    own = f"{RELATIONSHIP_LINE}{orjson.dumps(relationship_id).decode()}: "
    lines = [kept for kept in (comment or "").splitlines() if not kept.startswith(own)]
    if line is not None:
        lines.append(line)
    return "\n".join(lines) or None


def comments(conn: Connection, layout: Layout) -> dict[str, str]:
    """The comment of each table of the schema that has one, by table."""
    return dict(
        conn.execute(
            "SELECT c.relname, d.description FROM pg_description d JOIN pg_class c "
            "ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 "
            f"WHERE c.relnamespace = {layout.oid} AND c.relkind IN ('r', 'p')"
        ).fetchall()
    )


def comment_statement(layout: Layout, table: str, comment: str | None) -> str:
    text = "NULL" if comment is None else literal(comment)
    return f"COMMENT ON TABLE {layout.qualified(table)} IS {text}"


# -- small helpers ---------------------------------------------------------------------------


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(row_id) for row_id in ids[:LISTED])
    return f"the row(s) {shown}{' and more' if len(ids) > LISTED else ''}"


def _ids(conn: Connection, query: str, params: tuple[Any, ...] = ()) -> list[str]:
    """The first ids ``query`` selects, by id: one more than are listed, to say "and more"."""
    return [row_id for (row_id,) in conn.execute(f"{query} ORDER BY id LIMIT {LISTED + 1}", params)]
