"""The check that ends an import: the store against the source, in the source's snapshot.

- every row of the source is accounted for: the store holds it, or it was
  rejected (or its table left out by a rule, and only counted);
- every foreign key of the source resolves in the store;
- ``sample`` random rows of each table equal the store's field by field. The
  source's side is read again by PostgreSQL's own ``row_to_json`` rather than by
  the import's conversions, and compared by what each value means (numbers as
  decimals, timestamps as instants, bytea as bytes), so that a conversion that
  went wrong shows here;
- and what ``hutch verify`` checks on the store itself: the backend's index
  files and ids, and for the models, relations, unique fields and their fit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import sql

from hutch import Database, Model
from hutch.cells import Row, same_json
from hutch.verify import Report, verify

from .catalog import Column, ForeignKey
from .load import Imported, Source, unresolved
from .plan import ROW, SOURCE_ID, Field, Plan
from .values import NotJSON

#: How many rows a problem of one kind names at most, per table.
NAMED = 20


def check(
    source: Source,
    db: Database,
    tables: Sequence[Imported],
    *,
    models: Sequence[type[Model]],
    sample: int,
) -> Report:
    """Check ``db`` against the source that ``tables`` were read from (see the module)."""
    report = verify(db, models=list(models))
    by_name = {done.plan.table.name: done for done in tables}
    for done in tables:
        problems = [*_counted(source, db, done)]
        if done.plan.dropped is None:
            for foreign in done.plan.table.foreign_keys:
                parent = by_name.get(foreign.table)
                if parent is not None and parent.plan.dropped is None:
                    problems += _unresolved(db, done.plan, parent.plan, foreign)
            problems += _sampled(source, db, done, sample)
        for problem in problems:
            report.add(problem)
    return report


def _counted(source: Source, db: Database, done: Imported) -> Iterator[str]:
    plan = done.plan
    there = source.count(plan.table)
    if plan.dropped is not None:
        if there != done.read:
            yield f"table {plan.table.name!r}: {there} rows, {done.read} counted"
        return
    stored = db.store.get_row_count(plan.collection)
    if there != stored + len(done.rejects):
        yield (
            f"table {plan.table.name!r}: the source holds {there} rows; the store holds "
            f"{stored} in {plan.collection!r} and {len(done.rejects)} were rejected"
        )


def _unresolved(db: Database, plan: Plan, parent: Plan, foreign: ForeignKey) -> Iterator[str]:
    store = db.store
    with store.lock:
        missing = unresolved(
            plan,
            store.rows_of(plan.collection),
            parent,
            store.rows_of(parent.collection),
            foreign,
        )
    for row_id, key in sorted(missing.items())[:NAMED]:
        yield (
            f"collection {plan.collection!r}, row {row_id!r}: the foreign key {foreign.name!r} "
            f"({', '.join(foreign.columns)} = {', '.join(map(str, key))}) names no row of "
            f"{parent.collection!r}"
        )
    if len(missing) > NAMED:
        yield f"collection {plan.collection!r}: {len(missing) - NAMED} more rows like those"


def _sampled(source: Source, db: Database, done: Imported, sample: int) -> Iterator[str]:
    """``sample`` random source rows against the store's rows of the same ids."""
    plan = done.plan
    if sample == 0:
        return
    rejected = {reject.row_id for reject in done.rejects}
    query = sql.SQL("SELECT {}, row_to_json({}.*)::text FROM {} ORDER BY random() LIMIT {}").format(
        sql.SQL(", ").join(sql.SQL(field.select) for field in plan.fields),
        sql.Identifier(ROW),
        source.table(plan.table),
        sql.Literal(sample),
    )
    with source.reading(f"sample table {plan.table.name!r}"):
        picked = source.conn.execute(query).fetchall()
    named = 0
    for *values, text in picked:
        try:
            row_id, expected = plan.row(values)  # (the id and links: the rest is read again)
        except NotJSON:
            continue  # rejected at the import, and reported there
        if row_id in rejected:
            continue
        stored = db.store.get_row(plan.collection, row_id)
        original = json.loads(text, parse_float=Decimal)
        if stored is None:
            differing = ["(the whole row: it is not in the store)"]
        else:
            differing = [
                field.column.name
                for field in plan.fields
                if not _holds(plan, field, row_id, stored, original[field.column.name], expected)
            ]
            known = {field.name for field in plan.fields if field.kept} | {SOURCE_ID}
            differing += [
                f"{name} (no column of the source's)" for name in stored if name not in known
            ]
        if differing and named < NAMED:
            named += 1
            yield (
                f"collection {plan.collection!r}, row {row_id!r}: {', '.join(differing)} "
                f"differ from the source's (table {plan.table.name!r})"
            )


def _holds(plan: Plan, field: Field, row_id: str, row: Row, original: Any, expected: Row) -> bool:
    """Whether the store keeps ``original`` (the source's value, as ``row_to_json`` gave it)
    for ``field``: in the row, in its id, or as its hash. A link holds the id of the row
    PostgreSQL finds for it (``expected``: the import's reading of this sample; that the
    store has that row, the foreign-key check says)."""
    if field.parent is not None:
        link = row.get(field.name) if field.kept else row_id
        return bool(link == expected.get(field.name, row_id))
    if not field.kept:
        return _key_holds(field, row_id, row, original)
    stored = row.get(field.name)
    if original is None or stored is None:
        return original is None and stored is None
    if field.name in plan.hashed:
        from hutch.plugins.auth import hash_token

        return bool(stored == hash_token(original))
    return _same(field.column, stored, original)


def _key_holds(field: Field, row_id: str, row: Row, original: Any) -> bool:
    """Whether the row with ``row_id`` keeps ``original`` as the value of its key column
    ``field``: as a field, as ``source_id``, or as the text of its id."""
    if field.kept:
        kept = row.get(field.name)
    elif SOURCE_ID in row:
        kept = row[SOURCE_ID]
    else:
        kept = row_id
        if kept == _text_of(original):
            return True
    return kept is not None and _same_value(field.column, kept, original, as_key=True)


def _same(column: Column, stored: Any, original: Any) -> bool:
    """Whether ``stored`` means ``original`` for a value (or array) of ``column``'s kind."""
    if isinstance(original, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(original)
            and all(_same(column, a, b) for a, b in zip(stored, original, strict=True))
        )
    if original is None or stored is None:
        return original is None and stored is None
    return _same_value(column, stored, original)


#: The JSON type the import stores each kind of value as (json and "other": any).
_STORED_AS: dict[str, type | tuple[type, ...]] = {
    "bool": bool,
    "int": int,
    "float": (int, float),
    "numeric": str,
    "text": str,
    "uuid": str,
    "bytea": str,
    "timestamptz": str,
    "timestamp": str,
    "date": str,
    "time": str,
    "enum": str,
}


def _same_value(column: Column, stored: Any, original: Any, *, as_key: bool = False) -> bool:
    """Whether ``stored`` is what the import stores for the source's ``original``: of the
    JSON type it stores that kind as, and meaning the same (``as_key``: equal as PostgreSQL
    compares keys, ``1.00`` as ``1.0``)."""
    kind = column.kind
    wanted = _STORED_AS.get(kind)
    if (
        wanted is not None
        and not as_key  # (a key may be the text of a row id)
        and (not isinstance(stored, wanted) or (kind != "bool" and isinstance(stored, bool)))
    ):
        return False
    try:
        if kind == "numeric" and not isinstance(original, str) and not as_key:  # scale too
            return Decimal(stored).as_tuple() == Decimal(original).as_tuple()
        if kind in ("int", "float", "numeric"):
            if isinstance(original, str) and kind == "numeric":  # 'NaN'
                return bool(stored == original)
            return Decimal(str(stored)) == Decimal(str(original))  # (an oid is text in JSON)
        if kind == "bytea":
            return base64.b64decode(stored) == bytes.fromhex(original[2:])
        if kind in ("timestamptz", "timestamp"):
            if not stored.endswith("+00:00"):  # (UTC, as hutch's models store it)
                return False
            instant = datetime.fromisoformat(original)
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=UTC)
            return datetime.fromisoformat(stored) == instant
        if kind == "date":
            return date.fromisoformat(stored) == date.fromisoformat(original)
        if kind == "time" and original != "24:00:00":
            return time.fromisoformat(stored) == time.fromisoformat(original)
        if kind == "text" and column.padded:
            return bool(stored.rstrip(" ") == original.rstrip(" "))  # (padding means nothing)
        if kind in ("json", "other"):
            return _same_json(stored, original)
    except (ValueError, TypeError, InvalidOperation):
        return False
    return bool(stored == original)


def _same_json(stored: Any, original: Any) -> bool:
    """JSON equality, numbers compared as decimals (1.0 is 1, as in ``jsonb``)."""
    if isinstance(original, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == original.keys()
            and all(_same_json(stored[key], value) for key, value in original.items())
        )
    if isinstance(original, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(original)
            and all(_same_json(a, b) for a, b in zip(stored, original, strict=True))
        )
    if isinstance(original, bool) or original is None or isinstance(original, str):
        return bool(stored == original) and type(stored) is type(original)
    number = float if isinstance(original, Decimal) else int  # (a fraction or exponent: float)
    return type(stored) is number and Decimal(str(stored)) == Decimal(original)


def _text_of(value: Any) -> str:
    """A key's value (as ``row_to_json`` gave it) as the import writes it in an id."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, default=str)


def changed_since(db: Database, tables: Sequence[Imported]) -> Iterator[str]:
    """Every row of the source (read and converted again, in ``tables``) against the store's:
    rows it lacks, rows it holds that the source no longer has, and rows that differ."""
    store = db.store
    for done in tables:
        plan = done.plan
        if plan.dropped is not None:
            continue
        with store.lock:
            held = store.rows_of(plan.collection)
            missing = sorted(set(done.rows) - set(held))
            gone = sorted(set(held) - set(done.rows))
            differ = sorted(
                row_id
                for row_id, row in done.rows.items()
                if row_id in held and not same_json(row, held[row_id])
            )
        for what, ids in (
            ("the store lacks", missing),
            ("the source no longer has", gone),
            ("differ between the source and the store", differ),
        ):
            if ids:
                shown = ", ".join(map(repr, ids[:NAMED])) + (" ..." if len(ids) > NAMED else "")
                yield f"collection {plan.collection!r}: {len(ids)} rows {what}: {shown}"
