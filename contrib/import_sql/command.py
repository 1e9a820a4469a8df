"""``hutch import-sql``: a PostgreSQL database into a hutch store, then checked against it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from hutch import ConfigError, Model
from hutch.cli import (
    INTEGRITY_FAILED,
    Output,
    chosen_models,
    default_url,
    open_target,
    output_options,
    text_table,
)
from hutch.config import redact_text
from hutch.exchange import Reject, write_rejects
from hutch.snapshots import open_reading
from hutch.verify import Report

from . import load
from .catalog import Schema
from .check import changed_since, check
from .load import Imported
from .plan import Plan, plans, skipped_by_convention

#: The domain plugins whose models Prisma's tables map onto (``--prisma``).
PRISMA_PLUGINS = ("platform", "auth")


@click.command(name="import-sql")
@click.argument("source", metavar="SOURCE")
@click.argument("url", required=False)
@click.option("--schema", default="public", show_default=True, help="The source's schema.")
@click.option(
    "--tables", metavar="T1,T2", help="Import only these tables (names as PostgreSQL has them)."
)
@click.option("--skip", metavar="T1,T2", help="Leave these tables out.")
@click.option(
    "--prisma",
    is_flag=True,
    help='Prisma\'s conventions: "User" is users, camelCase columns snake_case fields; '
    "the platform's and Auth.js's tables checked against their models.",
)
@click.option(
    "--dry-run", is_flag=True, help="Read and check every row, report, and write nothing."
)
@click.option(
    "--check-only",
    is_flag=True,
    help="Import nothing: check a store imported before against the source as it is now.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="How many random rows of each table to compare field by field after the import.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Where rejected rows go (default: import-sql.rejects.jsonl in the working folder).",
)
@output_options
def import_sql(
    source: str,
    url: str | None,
    schema: str,
    tables: str | None,
    skip: str | None,
    prisma: bool,
    dry_run: bool,
    check_only: bool,
    sample: int,
    rejects: str | None,
    as_json: bool,
    silent: bool,
) -> None:
    """Import the PostgreSQL database SOURCE (postgresql://...) into the store at URL.

    Every table of the schema, in foreign-key order, read in one snapshot and
    streamed; ids and timestamps kept. Rows that cannot be kept go to a reject
    file, and the command exits 1. Then the store is checked against the
    source (counts, foreign keys, sampled rows, ids, indexes): "Data integrity:
    PASS", or the problems and exit 3.
    """
    if dry_run and check_only:
        raise click.UsageError("--dry-run imports nothing already: give one of the two")
    out = Output(as_json=as_json, silent=silent)
    url = default_url() if url is None else url
    where = Path(rejects) if rejects else Path("import-sql.rejects.jsonl")
    if not check_only:  # before reading anything (hutch never replaces a file it did not make)
        if where.exists():
            raise ConfigError(f"{where} exists already; move it away, or name another --rejects")
        if not where.parent.is_dir():
            raise ConfigError(f"{where.parent} is no folder: name a --rejects file in one")
    models = list(chosen_models())
    if prisma:
        models += _prisma_models()
    with load.source(source, schema) as reading:
        found = reading.read_schema()
        left_out = skipped_by_convention(found, prisma=prisma)
        planned = plans(found, _chosen(found, tables, skip, left_out), prisma=prisma, models=models)
        if dry_run:
            done = _read_all(reading, planned, out)
            refused = _refused(done, where)
            _result(out, done, left_out, None, None, where, refused)
            return
        if check_only:  # what the source holds now, against what the store holds
            plugins = PRISMA_PLUGINS if prisma else ()
            with open_reading(url, plugins=plugins) as db:
                done = _read_all(reading, planned, out)
                changed = list(changed_since(db, done))
                for table in done:
                    table.written, table.rows = len(table.rows), {}
                report = check(reading, db, done, models=models, sample=sample)
                for problem in changed:
                    report.add(problem)
                _result(out, done, left_out, report, db.url, where, [], checked=True)
            return
        with open_target(url, plugins=PRISMA_PLUGINS if prisma else ()) as db:
            load.check_target(db, planned)
            done = _read_all(reading, planned, out)
            refused = _refused(done, where)  # before the import commits: none goes unreported
            load.write(db, done)
            report = check(reading, db, done, models=models, sample=sample)
            target = db.url
    _result(out, done, left_out, report, target, where, refused)


def _refused(done: Sequence[Imported], where: Path) -> list[Reject]:
    """Every table's rejects, written to ``where`` if there are any."""
    refused = [reject for table in done for reject in table.rejects]
    if refused:
        write_rejects(where, refused)
    return refused


def _prisma_models() -> list[type[Model]]:
    from hutch.plugins.auth.models import MODELS as AUTH
    from hutch.plugins.platform.models import MODELS as PLATFORM

    return [*PLATFORM, *AUTH]


def _chosen(
    schema: Schema, tables: str | None, skip: str | None, left_out: dict[str, str]
) -> list[str]:
    """The tables to import: ``--tables`` (or all), less ``--skip`` and the conventions'."""
    named = _names(tables)
    skipped = _names(skip)
    unknown = [name for name in (*named, *skipped) if name not in schema.tables]
    if unknown:
        raise ConfigError(
            f"the schema {schema.name!r} has no table {', '.join(map(repr, unknown))}; its "
            f"tables: {', '.join(sorted(schema.tables)) or 'none'}"
        )
    chosen = [
        name
        for name in named or sorted(schema.tables)
        if name not in skipped and name not in left_out
    ]
    taken = set(chosen)
    dangling = sorted(
        f"{name!r} ({foreign.name}) names rows of {foreign.table!r}"
        for name in chosen
        for foreign in schema.tables[name].foreign_keys
        if foreign.table not in taken
    )
    if dangling:  # (its rows would point nowhere: import both, or neither)
        raise ConfigError(
            f"a table left out is named by tables imported: {'; '.join(dangling)}; import "
            "those tables too (--tables), or leave the others out as well (--skip)"
        )
    return chosen


def _names(given: str | None) -> list[str]:
    return [name.strip() for name in (given or "").split(",") if name.strip()]


def _read_all(reading: load.Source, planned: Sequence[Plan], out: Output) -> list[Imported]:
    """Every table, in the plans' order; then the rows whose foreign keys name rows that
    are not imported are rejected too."""
    done = []
    for number, plan in enumerate(planned):
        label = f"{plan.table.name} -> {plan.collection}"
        with out.step(label, plan.table.estimated_rows) as advance:
            table = load.read_table(reading, plan, number, advance)
        done.append(table)
        state = f"left out: {plan.dropped}" if plan.dropped else f"{len(table.rows)} rows"
        rejected = f", {len(table.rejects)} rejected" if table.rejects else ""
        out.say(f"{label}: {table.read} read, {state}{rejected}")
    load.reject_orphans(done)
    return done


def _result(
    out: Output,
    done: Sequence[Imported],
    left_out: dict[str, str],
    report: Report | None,
    target: str | None,
    where: Path,
    refused: Sequence[Reject],
    *,
    checked: bool = False,
) -> None:
    rows = [
        (
            table.plan.table.name,
            table.plan.collection,
            table.read,
            table.written or len(table.rows),  # (a dry run: what would be)
            len(table.rejects),
        )
        for table in done
    ]
    lines = [text_table(rows, ("table", "collection", "source rows", "imported", "rejected"))]
    notes = {
        **left_out,
        **{t.plan.table.name: t.plan.dropped for t in done if t.plan.dropped is not None},
    }
    lines += [f"Left out {name!r}: {why}." for name, why in notes.items()]
    if target is None:
        lines.append("Dry run: nothing was written.")
    elif checked:
        lines.append(f"Checked {redact_text(target)} against the source; nothing was written.")
    else:
        lines.append(f"Imported into {redact_text(target)}.")
    if refused:
        lines.append(f"{len(refused)} rows were rejected: see {where}.")
    if report is not None:
        if not report.passed:
            lines.append(f"{report.problem_count} problems; the first:")
            lines += [f"  - {redact_text(problem)}" for problem in report.problems[:20]]
        lines.append(f"Data integrity: {'PASS' if report.passed else 'FAIL'}")
    data: dict[str, Any] = {
        "target": target,
        "tables": [
            {"table": t, "collection": c, "source_rows": n, "imported": i, "rejected": r}
            for t, c, n, i, r in rows
        ],
        "left_out": notes,
        "rejected": len(refused),
        "rejects": str(where) if refused else None,
        "passed": None if report is None else report.passed,
        "problems": [] if report is None else report.problems,
    }
    out.result(data, "\n".join(lines))
    if report is not None and not report.passed:
        raise click.exceptions.Exit(INTEGRITY_FAILED)
    if refused:
        raise click.exceptions.Exit(1)
