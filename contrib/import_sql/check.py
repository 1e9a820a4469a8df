"""The check that ends an import: the store against the source, in the source's snapshot.

- every table's rows are accounted for: what the source holds is what was
  imported plus what was rejected (or left out by a rule), and the store holds
  exactly what was imported, under ids that are all different;
- every foreign key of the source resolves in the store: a link holds the id of
  a row that is there, and a key of several columns matches a row's fields;
- ``sample`` random rows of each table, read again from the source and converted
  again, equal the store's field by field;
- and what ``hutch verify`` checks on the store itself: the backend's index
  files and ids, and for the models, relations, unique fields and their fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from hutch import Database, Model
from hutch.cells import Row, same_json
from hutch.config import parse_url
from hutch.verify import Report, verify

from .catalog import ForeignKey
from .load import Imported, reading
from .plan import Plan, id_for
from .values import select_expression


def check(
    conn: psycopg.Connection[Any],
    url: str,
    schema: str,
    db: Database,
    tables: Sequence[Imported],
    *,
    models: Sequence[type[Model]],
    sample: int,
) -> Report:
    """Check ``db`` against the source that ``tables`` were read from (see the module)."""
    report = verify(db, models=list(models))
    by_table = {done.plan.table.name: done for done in tables}
    for done in tables:
        for problem in _counted(conn, url, schema, db, done):
            report.add(problem)
        if done.plan.dropped is not None:
            continue
        for foreign in done.plan.table.foreign_keys:
            parent = by_table.get(foreign.table)
            if parent is not None and parent.plan.dropped is None:
                for problem in _unresolved(db, done, parent, foreign):
                    report.add(problem)
        for problem in _sampled(conn, url, schema, db, done, sample):
            report.add(problem)
    return report


def _counted(
    conn: psycopg.Connection[Any], url: str, schema: str, db: Database, done: Imported
) -> Iterator[str]:
    plan = done.plan
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, plan.table.name))
    with reading(parse_url(url), f"count table {plan.table.name!r}"):
        found = conn.execute(query).fetchone()
    there = found[0] if found else 0
    accounted = done.read if plan.dropped is not None else len(done.rows) + len(done.rejects)
    if there != accounted:
        yield (
            f"table {plan.table.name!r}: the source holds {there} rows, {accounted} were "
            "read and imported or rejected"
        )
    if plan.dropped is not None:
        return
    stored = db.store.get_row_count(plan.collection)
    if stored != len(done.rows):
        yield (
            f"collection {plan.collection!r}: the store holds {stored} rows, "
            f"{len(done.rows)} were imported (two rows under one id?)"
        )


def _unresolved(
    db: Database, done: Imported, parent: Imported, foreign: ForeignKey
) -> Iterator[str]:
    """The store's rows of ``done`` whose foreign key finds no row of ``parent``."""
    plan, store = done.plan, db.store
    child_fields = [_field_name(plan, column) for column in foreign.columns]
    single_link = len(foreign.columns) == 1 and any(
        field.column.name == foreign.columns[0] and field.parent == foreign.table
        for field in plan.fields
    )
    with store.lock:
        rows = store.rows_of(plan.collection)
        parents = store.rows_of(parent.plan.collection)
        if single_link:
            wanted = {row_id: row.get(child_fields[0]) for row_id, row in rows.items()}
            missing = {
                row_id: target
                for row_id, target in wanted.items()
                if target is not None and target not in parents
            }
        else:
            keys = {
                _key_of(parent.plan, row_id, row, foreign.references)
                for row_id, row in parents.items()
            }
            missing = {}
            for row_id, row in rows.items():
                values = tuple(row.get(name) for name in child_fields)
                if None not in values and _hashable(values) not in keys:
                    missing[row_id] = values
    for row_id, target in sorted(missing.items())[:20]:
        yield (
            f"collection {plan.collection!r}, row {row_id!r}: the foreign key {foreign.name!r} "
            f"({', '.join(foreign.columns)} = {target!r}) finds no row in "
            f"{parent.plan.collection!r}"
        )
    if len(missing) > 20:
        yield f"collection {plan.collection!r}: {len(missing) - 20} more rows like those"


def _field_name(plan: Plan, column: str) -> str:
    for field in plan.fields:
        if field.column.name == column:
            return field.name
    raise KeyError(column)


def _key_of(plan: Plan, row_id: str, row: Row, columns: Sequence[str]) -> Any:
    values = []
    for column in columns:
        field = next(field for field in plan.fields if field.column.name == column)
        values.append(row_id if not field.kept else row.get(field.name))
    return _hashable(tuple(values))


def _hashable(values: tuple[Any, ...]) -> Any:
    return tuple(id_for(value) if isinstance(value, list | dict) else value for value in values)


def _sampled(
    conn: psycopg.Connection[Any],
    url: str,
    schema: str,
    db: Database,
    done: Imported,
    sample: int,
) -> Iterator[str]:
    """``sample`` random source rows, converted again, against the store's."""
    plan = done.plan
    if sample == 0:
        return
    rejected = {reject.row_id for reject in done.rejects}
    query = sql.SQL("SELECT {} FROM {} ORDER BY random() LIMIT {}").format(
        sql.SQL(", ").join(sql.SQL(select_expression(field.column)) for field in plan.fields),
        sql.Identifier(schema, plan.table.name),
        sql.Literal(sample),
    )
    with reading(parse_url(url), f"sample table {plan.table.name!r}"):
        picked = conn.execute(query).fetchall()
    for values in picked:
        try:
            row_id, row = plan.row(values)
        except ValueError:
            continue  # rejected at the import, and reported there
        if row_id in rejected:
            continue
        stored = db.store.get_row(plan.collection, row_id)
        if stored is None:
            yield f"collection {plan.collection!r}: the source's row {row_id!r} is not in the store"
        elif not same_json(stored, row):
            differing = sorted(
                name for name in {*row, *stored} if not same_json(row.get(name), stored.get(name))
            )
            yield (
                f"collection {plan.collection!r}, row {row_id!r}: the fields "
                f"{', '.join(differing)} differ from the source's"
            )
