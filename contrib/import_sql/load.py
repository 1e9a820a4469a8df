"""Reading the source in one snapshot and writing what it holds into a hutch store.

The source is read in one ``REPEATABLE READ`` read-only transaction, so every
table (and the check after the import, :mod:`.check`) sees one moment of the
database, whatever other clients write meanwhile. Each table streams through a
server-side cursor, :data:`BATCH` rows at a time, in the order of its key (so a
clash between two rows always rejects the same one); a table's own rows only,
not those of tables that inherit from it, which are tables of their own. Row
level security is off for the session: rows a policy would hide are an error,
not a silent gap. A lock another session holds on a table fails the import
after :data:`LOCK_TIMEOUT`, saying so.

A row that cannot become JSON, that a write would refuse, that does not fit its
model, that repeats a unique key of its model (the email rule's included: two
spellings of one mailbox are reported, never merged), or that points by a
foreign key at a row that is not imported (rejected itself, or pointing at
one...) is rejected with the reason; secret fields are left out of the reject.
The rest is written in one transaction of the target: all of it, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import orjson
import psycopg
from psycopg import sql

from hutch import ConfigError, Database, HutchError, StorageError
from hutch.cells import Row, check_row
from hutch.config import URL, parse_url, redact_text
from hutch.exchange import Reject, check_models
from hutch.persister import Snapshot
from hutch.snapshots import NotEmpty, held

from .catalog import ForeignKey, Schema, Table, read_schema
from .plan import ROW, Plan, canonical, id_for
from .values import SESSION_SETTINGS, NotJSON

#: Rows fetched from the server at a time.
BATCH = 2_000
#: How long connecting may take, unless the URL says (seconds).
CONNECT_TIMEOUT = 10
#: How long a read waits for a lock another session holds on a table (seconds).
LOCK_TIMEOUT = 30
#: What a reject file shows of a secret field.
HIDDEN = "<secret>"


@attrs.define
class Imported:
    """One table's import: rows read, the rows kept (by id) until they are written, how many
    were written, and those rejected."""

    plan: Plan
    read: int = 0
    rows: dict[str, Row] = attrs.field(factory=dict)
    written: int = 0
    rejects: list[Reject] = attrs.field(factory=list)


@attrs.frozen
class Source:
    """The database read from: a connection inside its snapshot, and the schema's name."""

    conn: psycopg.Connection[Any]
    url: URL
    schema: str

    @contextmanager
    def reading(self, doing: str) -> Iterator[None]:
        """psycopg's errors as hutch's, saying what was being done."""
        try:
            yield
        except psycopg.Error as error:
            if isinstance(error, psycopg.errors.LockNotAvailable):
                doing += f" (another session held a lock on it for {LOCK_TIMEOUT} s)"
            raise StorageError(
                f"could not {doing} in the source {self.url.redacted()} ({_said(error, self.url)})"
            ) from None

    def table(self, table: Table) -> sql.Composable:
        """The table, its own rows only (``ONLY``: not those of tables inheriting from it);
        a partitioned table, its partitions' rows. Links name it :data:`~.plan.ROW`."""
        name = sql.Identifier(self.schema, table.name)
        found = name if table.partitioned else sql.SQL("ONLY {}").format(name)
        return sql.SQL("{} AS {}").format(found, sql.Identifier(ROW))

    def count(self, table: Table) -> int:
        with self.reading(f"count table {table.name!r}"):
            found = self.conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(self.table(table))
            ).fetchone()
        return int(found[0]) if found else 0

    def read_schema(self) -> Schema:
        with self.reading("read the schema"):
            return read_schema(self.conn, self.schema)


@contextmanager
def source(url: str, schema: str = "public") -> Iterator[Source]:
    """The source at ``url`` inside one read-only ``REPEATABLE READ`` transaction (so every
    read sees the same moment), set up as :mod:`.values` expects; always closed."""
    parsed = parse_url(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "the source must be a postgresql:// URL (what was given is not shown: it may "
            "hold a password): postgresql://user:password@host:port/database"
        )
    try:
        conn = psycopg.connect(
            url, connect_timeout=CONNECT_TIMEOUT, application_name="hutch", client_encoding="UTF8"
        )
    except (psycopg.Error, ValueError) as error:
        raise StorageError(
            f"could not connect to the source {parsed.redacted()} ({_said(error, parsed)}); "
            "check the URL, that the server runs, and that the network reaches it"
        ) from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        opened = Source(conn, parsed, schema)
        with opened.reading("set up the session"):
            conn.execute(
                f"{SESSION_SETTINGS}; SET row_security = off; SET lock_timeout = '{LOCK_TIMEOUT}s'"
            )
        yield opened
    finally:
        conn.close()


def _said(error: BaseException, url: URL) -> str:
    text = redact_text(str(error).strip()) or type(error).__name__
    return text.replace(url.raw, url.redacted())


def check_target(db: Database, plans: Sequence[Plan]) -> None:
    """Refuse a target that holds rows in any collection the import would write."""
    scope = [plan.collection for plan in plans if plan.dropped is None]
    rows = held(db, scope)
    if rows:
        raise HutchError(
            f"{NotEmpty(db.url, rows, scope)}: import into an empty store (or delete those "
            "collections first)"
        )


def read_table(source: Source, plan: Plan, number: int, advance: Callable[[int], None]) -> Imported:
    """Stream ``plan``'s table (``number``: its place in the import) and keep what imports;
    a table left out by a rule is only counted."""
    done = Imported(plan)
    table = plan.table
    if plan.dropped is not None:
        done.read = source.count(table)
        advance(done.read)
        return done
    select = sql.SQL("SELECT {} FROM {}{}").format(
        sql.SQL(", ").join(sql.SQL(field.select) for field in plan.fields),
        source.table(table),
        _ordered(plan),
    )
    with (
        source.reading(f"read table {table.name!r}"),
        source.conn.cursor(name=f"hutch_import_{number}") as cursor,
    ):
        cursor.itersize = BATCH
        cursor.execute(select)
        while batch := cursor.fetchmany(BATCH):
            for values in batch:
                _take(done, values)
            done.read += len(batch)
            advance(len(batch))
    if plan.model is not None:
        snapshot, rejects = check_models(
            Snapshot(tables={plan.collection: done.rows}, values={}), [plan.model]
        )
        done.rows = dict(snapshot.tables.get(plan.collection, {}))
        done.rejects += [attrs.evolve(reject, file=table.name) for reject in rejects]
    return done


def _ordered(plan: Plan) -> sql.Composable:
    """``ORDER BY`` the table's key, if it has one."""
    columns = {field.name: field.column.name for field in plan.fields}
    key = [columns[name] for name in plan.key]
    if plan.id_column is not None:
        key = [plan.id_column]
    if not key:
        return sql.SQL("")
    return sql.SQL(" ORDER BY {}").format(
        sql.SQL(", ").join(sql.Identifier(ROW, name) for name in key)
    )


def _take(done: Imported, values: Sequence[Any]) -> None:
    plan = done.plan
    try:
        row_id, row = plan.row(values)
        check_row(plan.collection, row_id, row)  # what a write would refuse
    except NotJSON as error:
        _reject(done, None, f"a value cannot be kept as JSON: {error}", _source_row(plan, values))
        return
    except HutchError as error:  # (an integer beyond 64 bits inside JSON, say)
        _reject(done, row_id, str(error), _source_row(plan, values))
        return
    if row_id in done.rows:
        if plan.key or plan.id_column is not None:  # a key the source holds unique
            reason = "another row of the table has the same id (its key's text, or the id "
            reason += "derived from it)"
            _reject(done, row_id, reason, _source_row(plan, values))
            return
        row_id = _next_free(done.rows, row_id)  # identical rows of a table with no key
    done.rows[row_id] = row


def _next_free(rows: dict[str, Row], row_id: str) -> str:
    number = 2
    while f"{row_id}-{number}" in rows:
        number += 1
    return f"{row_id}-{number}"


def _reject(done: Imported, row_id: str | None, reason: str, shown: Mapping[str, Any]) -> None:
    plan = done.plan
    raw = orjson.dumps(
        {name: HIDDEN if name in plan.secret else value for name, value in shown.items()},
        default=str,
    ).decode()
    done.rejects.append(
        Reject(
            file=plan.table.name, collection=plan.collection, row_id=row_id, reason=reason, raw=raw
        )
    )


def _source_row(plan: Plan, values: Sequence[Any]) -> dict[str, Any]:
    """A source row as a reject shows it: by field, each value as psycopg read it."""
    return {field.name: _text(value) for field, value in zip(plan.fields, values, strict=True)}


def _text(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


# -- foreign keys ----------------------------------------------------------------------------


def unresolved(
    child: Plan,
    rows: Mapping[str, Row],
    parent: Plan,
    parent_rows: Mapping[str, Row],
    foreign: ForeignKey,
) -> dict[str, tuple[Any, ...]]:
    """The rows (of ``child``) whose foreign key names no row of ``parent``, and what it
    holds. Values are compared as keys are (``42`` as ``"42"``); a key holding NULL names
    nothing, as in SQL."""
    found = {
        _key_values(parent, row_id, row, foreign.references) for row_id, row in parent_rows.items()
    }
    missing = {}
    for row_id, row in rows.items():
        key = _key_values(child, row_id, row, foreign.columns)
        if None not in key and key not in found:
            missing[row_id] = key
    return missing


def _key_values(plan: Plan, row_id: str, row: Row, columns: Sequence[str]) -> tuple[Any, ...]:
    values: list[str | None] = []
    for column in columns:
        field = plan.field_of(column)
        if not field.kept:
            values.append(row_id)
            continue
        value = row.get(field.name)
        if field.parent is not None or value is None:  # (a link holds a row id already)
            values.append(value)
        else:
            values.append(id_for(canonical(field.column, value)))
    return tuple(values)


def reject_orphans(tables: Sequence[Imported]) -> None:
    """Reject every row whose foreign key names a row that is not imported, until none does
    (a rejected row may leave others pointing nowhere, across any cycle of tables)."""
    by_name = {done.plan.table.name: done for done in tables}
    while True:
        orphans: list[tuple[Imported, str, str]] = []
        for done in tables:
            for foreign in done.plan.table.foreign_keys:
                parent = by_name.get(foreign.table)
                if parent is None or parent.plan.dropped is not None:
                    continue  # a table left out: nothing to compare with
                misses = unresolved(done.plan, done.rows, parent.plan, parent.rows, foreign)
                for row_id, key in misses.items():
                    reason = (
                        f"{', '.join(foreign.columns)} ({', '.join(map(str, key))}) names no "
                        f"row of {parent.plan.table.name!r} that is imported (see its reject, "
                        "if any)"
                    )
                    orphans.append((done, row_id, reason))
        if not orphans:
            return
        for done, row_id, reason in orphans:
            if row_id in done.rows:  # (a row may point nowhere by several keys)
                row = done.rows.pop(row_id)
                _reject(done, row_id, reason, row)


def write(db: Database, tables: Sequence[Imported]) -> None:
    """Write every table's kept rows into ``db`` in one transaction (then let them go: the
    store holds them)."""
    store = db.store
    with store.transaction():
        for done in tables:
            for row_id, row in done.rows.items():
                store.set_row(done.plan.collection, row_id, row)
    for done in tables:
        done.written, done.rows = len(done.rows), {}
