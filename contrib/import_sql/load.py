"""Reading the source in one snapshot and writing what it holds into a hutch store.

The source is read in one ``REPEATABLE READ`` read-only transaction, so every
table (and the check after the import, :mod:`.check`) sees one moment of the
database, whatever other clients write meanwhile. Each table streams through a
server-side cursor, :data:`BATCH` rows at a time. A row that cannot become JSON,
does not fit its model, repeats a unique key of its model (the email rule's
included: two spellings of one mailbox are reported, never merged), or points at
a row that was not imported is rejected with the reason; the rest is written in
one transaction of the target: all of it, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

from .catalog import Schema, read_schema
from .plan import Plan
from .values import SESSION_SETTINGS, NotJSON, select_expression

#: Rows fetched from the server at a time.
BATCH = 2_000
#: How long connecting may take, unless the URL says (seconds).
CONNECT_TIMEOUT = 10


@attrs.define
class Imported:
    """One table's import: rows read, the rows kept (by id), and those rejected."""

    plan: Plan
    read: int = 0
    rows: dict[str, Row] = attrs.field(factory=dict)
    rejects: list[Reject] = attrs.field(factory=list)


@contextmanager
def source(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the source inside one read-only ``REPEATABLE READ`` transaction (so
    every read sees the same moment), set up as :mod:`.values` expects; always closed."""
    parsed = parse_url(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"the source must be a postgresql:// URL, not {parsed.redacted()!r}: "
            "postgresql://user:password@host:port/database"
        )
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, application_name="hutch")
    except (psycopg.Error, ValueError) as error:
        raise StorageError(
            f"could not connect to the source {parsed.redacted()} ({_said(error, parsed)}); "
            "check the URL, that the server runs, and that the network reaches it"
        ) from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with reading(parsed, "set up the session"):
            conn.execute(SESSION_SETTINGS)
        yield conn
    finally:
        conn.close()


@contextmanager
def reading(url: URL, doing: str) -> Iterator[None]:
    """psycopg's errors as hutch's, saying what was being done."""
    try:
        yield
    except psycopg.Error as error:
        raise StorageError(
            f"could not {doing} in the source {url.redacted()} ({_said(error, url)})"
        ) from None


def _said(error: BaseException, url: URL) -> str:
    text = redact_text(str(error).strip()) or type(error).__name__
    return text.replace(url.raw, url.redacted())


def read_source_schema(conn: psycopg.Connection[Any], url: str, schema: str) -> Schema:
    with reading(parse_url(url), "read the schema"):
        return read_schema(conn, schema)


def check_target(db: Database, plans: Sequence[Plan]) -> None:
    """Refuse a target that holds rows in any collection the import would write."""
    scope = [plan.collection for plan in plans if plan.dropped is None]
    if held(db, scope):
        raise HutchError(
            f"{NotEmpty(db.url, held(db, scope), scope)}: import into an empty store (or "
            "delete those collections first)"
        )


def read_table(
    conn: psycopg.Connection[Any],
    url: str,
    schema: str,
    plan: Plan,
    imported: dict[str, Imported],
    advance: Callable[[int], None],
) -> Imported:
    """Stream ``plan``'s table and keep what imports; ``imported`` holds the tables read
    before (the rows this one's links point at)."""
    done = Imported(plan)
    table = plan.table
    select = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL(select_expression(field.column)) for field in plan.fields),
        sql.Identifier(schema, table.name),
    )
    with (
        reading(parse_url(url), f"read table {table.name!r}"),
        conn.cursor(name=f"hutch_import_{len(imported)}") as cursor,
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
    _drop_orphans(done, imported)
    return done


def _take(done: Imported, values: Sequence[Any]) -> None:
    plan = done.plan
    try:
        row_id, row = plan.row(values)
    except NotJSON as error:
        done.rejects.append(
            Reject(
                file=plan.table.name,
                collection=plan.collection,
                reason=f"a value cannot be kept as JSON: {error}",
                raw=_raw(plan, values),
            )
        )
        return
    try:  # what a write would refuse (an integer beyond 64 bits in a json column...)
        check_row(plan.collection, row_id, row)
    except HutchError as error:
        done.rejects.append(
            Reject(
                file=plan.table.name,
                collection=plan.collection,
                row_id=row_id,
                reason=str(error),
                raw=_raw(plan, values),
            )
        )
        return
    if row_id in done.rows:
        if plan.key or plan.id_column is not None:  # a key the source holds unique
            done.rejects.append(
                Reject(
                    file=plan.table.name,
                    collection=plan.collection,
                    row_id=row_id,
                    reason="another row of the table has the same id (its key's text, or "
                    "the id derived from it)",
                    raw=_raw(plan, values),
                )
            )
            return
        row_id = _next_free(done.rows, row_id)  # identical rows of a table with no key
    done.rows[row_id] = row


def _next_free(rows: dict[str, Row], row_id: str) -> str:
    number = 2
    while f"{row_id}-{number}" in rows:
        number += 1
    return f"{row_id}-{number}"


def _raw(plan: Plan, values: Sequence[Any]) -> str:
    """The source row as text for a reject file, secrets (hashed fields) left out."""
    shown = {
        field.column.name: "(left out)" if field.name in plan.hashed else _text(value)
        for field, value in zip(plan.fields, values, strict=True)
    }
    return orjson.dumps(shown).decode()


def _text(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _drop_orphans(done: Imported, imported: dict[str, Imported]) -> None:
    """Reject rows whose link points at a row that is not imported (rejected, or missing),
    until none does (a row of a table pointing at its own rows may take others with it)."""
    plan = done.plan
    links = [field for field in plan.fields if field.parent is not None]
    while True:
        orphans = []
        for field in links:
            parent = done if field.parent == plan.table.name else imported.get(field.parent or "")
            if parent is None:
                continue  # a table left out of the import: nothing to compare with
            for row_id, row in done.rows.items():
                target = row.get(field.name)
                if target is not None and target not in parent.rows:
                    reason = (
                        f"{field.name} points at {parent.plan.collection} row {target!r}, "
                        "which is not imported (see its reject, if any)"
                    )
                    orphans.append((row_id, reason))
        if not orphans:
            return
        for row_id, reason in orphans:
            if row_id in done.rows:  # (a row may point nowhere by several fields)
                row = done.rows.pop(row_id)
                done.rejects.append(
                    Reject(
                        file=plan.table.name,
                        collection=plan.collection,
                        row_id=row_id,
                        reason=reason,
                        raw=orjson.dumps(row).decode(),
                    )
                )


def write(db: Database, tables: Sequence[Imported]) -> None:
    """Write every table's kept rows into ``db`` in one transaction."""
    store = db.store
    with store.transaction():
        for done in tables:
            if done.plan.dropped is not None:
                continue
            for row_id, row in done.rows.items():
                store.set_row(done.plan.collection, row_id, row)
