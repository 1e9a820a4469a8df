"""The ``hutch`` command: copy, export, import, verify, back up and restore any store by URL.

Each command is a thin layer over a library module (:mod:`hutch.snapshots`,
:mod:`hutch.exchange`, :mod:`hutch.verify`, :mod:`hutch.archives`,
:mod:`hutch.retention`), so what the command does, a program can do too.
Plugins add commands through the ``hutch_register_commands`` hook.

Exit codes: 0 done, 1 an error (the message says what to do), 2 a usage
error, 3 an integrity check failed.
"""

from __future__ import annotations

import code
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

import hutch
from hutch import archives, exchange, retention, snapshots
from hutch.config import DEFAULT_URL, CollectionSettings, parse_url, redact_text
from hutch.database import Database, capabilities_of
from hutch.errors import ConfigError, CorruptData, HutchError
from hutch.model_paths import models_at
from hutch.models import Model, spec_of
from hutch.persister import AlreadyOpen, Snapshot
from hutch.plugin_manager import make_manager, models_of
from hutch.verify import Report, verify

#: The exit code of a failed integrity check (``verify``, and ``restore``'s check).
INTEGRITY_FAILED = 3
#: The schemes whose stores are folders, and the file that marks such a folder as a store.
FOLDER_SCHEMES = ("file", "jsonl")
STORE_MARK = "hutch.json"

F = TypeVar("F", bound=Callable[..., Any])


class Output:
    """How a command talks: text or ``--json`` on stdout, progress bars on a terminal only."""

    def __init__(self, *, as_json: bool, silent: bool) -> None:
        self.as_json = as_json
        self.silent = silent

    def say(self, text: str) -> None:
        """A line for a person (not with ``--json`` or ``--silent``)."""
        if not self.as_json and not self.silent:
            click.echo(text)

    def result(self, data: dict[str, Any], text: str) -> None:
        """What the command found or did: ``data`` as JSON with ``--json``, else ``text``."""
        if self.as_json:  # (json escapes what orjson refuses: a file name's stray bytes)
            click.echo(
                json.dumps(data, indent=2, ensure_ascii=False)
                .encode("utf-8", "backslashreplace")
                .decode()
            )
        elif text:
            click.echo(text)

    @contextlib.contextmanager
    def step(self, label: str, length: int) -> Iterator[Callable[[int], None]]:
        """A progress bar of ``length`` units on a terminal (stderr), else nothing; yields the
        function that advances it. (What the library does in one call, a load or a commit,
        is one unit: the bar says what is running, and fills when it is done.)"""
        if self.silent or self.as_json or not sys.stderr.isatty() or length <= 0:
            yield lambda _: None
            return
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            yield bar.update


def output_options(command: F) -> F:
    """``--json`` and ``--silent``, handed to the command as ``as_json`` and ``silent``."""
    command = click.option("--silent", is_flag=True, help="No progress bars or chatter.")(command)
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON, for scripts."
    )(command)


def _out(as_json: bool, silent: bool) -> Output:
    return Output(as_json=as_json, silent=silent)


class HutchGroup(click.Group):
    """The command group: hutch's errors become a message and exit code 1, and the
    commands of plugins (``hutch_register_commands``) join on first use."""

    _plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        builtin = set(self.commands)
        added = HutchGroup(name="plugins")
        try:
            make_manager().hook.hutch_register_commands(cli=added)
        except HutchError as error:  # the built-in commands still work
            click.echo(f"Warning: plugin commands are left out: {error}", err=True)
            return
        for name, command in added.commands.items():
            if name in builtin:
                click.echo(
                    f"Warning: a plugin registers the command {name!r}, which hutch has; "
                    "hutch's is used (uninstall the plugin, or ask its author to rename it)",
                    err=True,
                )
                continue
            self.add_command(command, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_plugins()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HutchError as error:
            click.echo(f"Error: {redact_text(str(error))}", err=True)
            ctx.exit(1)
        except click.UsageError as error:  # it may quote a URL typed
            raise click.UsageError(redact_text(error.format_message()), error.ctx) from None
        except click.ClickException as error:
            raise click.ClickException(redact_text(error.format_message())) from None


@attrs.frozen
class Settings:
    """What the group's options say, for every command."""

    url: str = DEFAULT_URL
    plugins: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@click.group(cls=HutchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    hutch.__version__, "--version", prog_name="hutch", message="%(prog)s %(version)s"
)
@click.option(
    "--url",
    envvar="HUTCH_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The store a command uses when it is given none; $HUTCH_URL sets it.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="NAME",
    help="Check rows against (and migrate) the models of this plugin (platform, auth, ...); "
    "repeatable.",
)
@click.option(
    "--models",
    "models",
    multiple=True,
    metavar="MODULE[:NAME]",
    help="Check rows against (and migrate) an application's own models: those a module "
    "defines, or one of its attributes (a model, or a list of them); imported from the "
    "working folder; repeatable.",
)
@click.pass_context
def cli(ctx: click.Context, url: str, plugins: tuple[str, ...], models: tuple[str, ...]) -> None:
    """Operate on a hutch store: a folder (./data), jsonl:, sqlite: or any backend's URL.

    Passwords in URLs are never printed. Exit codes: 0 done, 1 error, 2 usage
    error, 3 integrity check failed.
    """
    ctx.obj = Settings(url or DEFAULT_URL, plugins, models)


def main() -> None:
    """The ``hutch`` console script (and ``python -m hutch``)."""
    cli(prog_name="hutch")


def _settings() -> Settings:
    found = click.get_current_context().find_root().obj
    return found if isinstance(found, Settings) else Settings()


def default_url() -> str:
    """The store a command uses when it is given none (``--url``, ``$HUTCH_URL``, ``./data``):
    for the commands of plugins too."""
    return _settings().url


def chosen_models() -> list[type[Model]]:
    """The models of the plugins named with ``--plugin`` (installed ones, loaded by name), and
    those named with ``--models``."""
    settings = _settings()
    found = models_of(settings.plugins)
    for path in settings.models:
        found += models_at(path)
    return list(dict.fromkeys(found))


def _or_default(url: str | None) -> str:
    return default_url() if url is None else url


def _url_and(first: str, second: str | None) -> tuple[str, str]:
    """``[URL] DIR``: one argument is the folder, and the URL is the default."""
    url, folder = (default_url(), first) if second is None else (first, second)
    return url, str(_local(folder, "DIR"))


def _local(path: str, what: str) -> Path:
    """A path the user gave for a file or folder, refused if it reads as a store's URL (an
    argument left out, or two swapped)."""
    if not parse_url(path).bare_path:
        raise click.UsageError(
            f"{what} is {redact_text(path)!r}, which reads as a URL, not a path; see "
            "`hutch COMMAND --help` for the order of the arguments"
        )
    return Path(path)


def _shown(url: str) -> str:
    return parse_url(url).redacted()


def _collections(given: str | None) -> list[str] | None:
    return None if given is None else snapshots.check_collections(given.split(","))


def _held_by(db: Database, names: list[str] | None) -> list[str] | None:
    """``names`` (``--collections``), refused if one is no collection of ``db`` (a typo)."""
    missing = [name for name in names or () if not db.store.has_table(name)]
    if missing:
        held = ", ".join(db.store.get_table_ids()) or "none"
        raise ConfigError(
            f"{db.url} holds no rows in {', '.join(missing)} (--collections); its "
            f"collections: {held}"
        )
    return names


def _counts(snapshot: Snapshot) -> dict[str, int]:
    return {name: len(rows) for name, rows in sorted(snapshot.tables.items())}


def _read(url: str, out: Output, collections: list[str] | None = None) -> Snapshot:
    """A snapshot of the store at ``url`` (one commit point; it may be written meanwhile)."""
    with out.step(f"reading {_shown(url)}", 1) as advance, snapshots.open_reading(url) as db:
        snapshot = snapshots.snapshot_of(db, _held_by(db, collections))
        advance(1)
    return snapshot


@contextlib.contextmanager
def open_target(
    url: str,
    settings: Mapping[str, CollectionSettings] | None = None,
    *,
    plugins: Sequence[str] = (),
) -> Iterator[Database]:
    """The store at ``url`` opened to be written into, with ``settings`` for its collections
    and the domain ``plugins`` named (refused as :func:`_check_target` says): for the
    commands of plugins too."""
    _check_target(url)
    try:
        db = hutch.open(url, follow=False, collections=settings, plugins=plugins)
    except AlreadyOpen as error:
        raise _same_store(url) from error
    with db:
        yield db


def _source_name(url: str) -> str:
    """How a backup names the store it was taken of, one name however it is spelt where the
    store is a folder (its absolute path), so that retention tells stores apart."""
    parsed = parse_url(url)
    if parsed.scheme in FOLDER_SCHEMES:
        return redact_text(f"{parsed.scheme}://{parsed.file_path().resolve()}")
    return parsed.redacted()


def _check_target(url: str) -> None:
    """Refuse to write into a store that keeps nothing (``memory://``), or into a folder that
    is inside another store's folder (it would become records of that store) or holds
    files but is no store (they would be taken for records)."""
    parsed = parse_url(url)
    if not capabilities_of(parsed).durable:
        raise ConfigError(
            f"{_shown(url)} keeps nothing once this command ends; name a durable store "
            "(a folder, jsonl:, sqlite:...)"
        )
    if parsed.scheme not in FOLDER_SCHEMES:
        return
    folder = parsed.file_path()
    if not folder.parent.is_dir():
        raise ConfigError(f"{folder.parent} (where {folder} would go) is no folder; create it")
    _outside_stores(folder.parent)
    if folder.is_dir() and not (folder / STORE_MARK).is_file() and any(folder.iterdir()):
        raise ConfigError(
            f"{folder} holds files but is not a hutch store (it has no {STORE_MARK}); write "
            "into a new or empty folder, or an existing store"
        )


def _same_store(url: str) -> ConfigError:
    return ConfigError(
        f"{_shown(url)} is the store this command reads (by another name, perhaps); name "
        "another store"
    )


def _existing(url: str) -> str:
    """``url``, once it is known to name a store that exists (a command that writes would
    otherwise make a new, empty one where a name was mistyped)."""
    with snapshots.open_reading(url):
        return url


def _write(
    db: Database,
    snapshot: Snapshot,
    out: Output,
    *,
    replace: tuple[str, bool],
    scope: Sequence[str] | None = None,
) -> None:
    """Write ``snapshot`` into ``db`` (see :func:`hutch.snapshots.write`); ``replace`` is the
    option that allows a target that is not empty, and whether it was given."""
    option, given = replace
    with out.step(f"writing {db.url}", 1) as advance:
        try:
            snapshots.write(db, snapshot, scope=scope, replace=given)
        except snapshots.NotEmpty as error:
            raise HutchError(f"{error}: pass {option}") from error
        advance(1)


def _outside_stores(folder: Path) -> Path:
    """``folder``, refused if it is or lies inside a store's folder (one holding
    ``hutch.json``): files written there would become the store's records, or stop it
    opening."""
    resolved = folder.resolve()
    for parent in (resolved, *resolved.parents):
        if (parent / STORE_MARK).is_file():
            raise ConfigError(f"{folder} is inside the store folder {parent}; write outside it")
    return folder


def text_table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell; numbers to the right (for the commands of plugins
    too)."""
    lines = [list(map(str, header)), *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = [i > 0 and all(line[i].isdigit() for line in lines[1:]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(line, widths, numeric, strict=True)
        ).rstrip()
        for line in lines
    )


# -- copy, export, import ------------------------------------------------------------------------


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option(
    "--collections",
    help="Copy only these collections (comma-separated), and no values but the records of "
    "their schema versions.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be copied; write nothing.")
@click.option("--replace", is_flag=True, help="Delete what DST holds there first.")
@output_options
def copy(
    src: str,
    dst: str,
    collections: str | None,
    dry_run: bool,
    replace: bool,
    as_json: bool,
    silent: bool,
) -> None:
    """Copy the store at SRC into DST, between any two backends.

    SRC is read at one commit point, even while other processes write to it.
    DST must be empty (or, with --collections, empty in those collections)
    unless --replace is given; the copy is one transaction: all or nothing.
    """
    out = _out(as_json, silent)
    names = _collections(collections)
    start = time.monotonic()
    with contextlib.ExitStack() as opened:  # SRC stays open: DST is found out if it is SRC
        with out.step(f"reading {_shown(src)}", 1) as advance:
            source = opened.enter_context(snapshots.open_reading(src))
            snapshot = snapshots.snapshot_of(source, _held_by(source, names))
            settings = source.backend.collection_settings()
            advance(1)
        counts = _counts(snapshot)
        data: dict[str, Any] = {
            "source": source.url,
            "target": _shown(dst),
            "collections": counts,
            "values": len(snapshot.values),
            "dry_run": dry_run,
        }
        if dry_run:
            data.update(_dry_run(dst, names, "--replace" if replace else None))
            out.result(data, _listing(counts, len(snapshot.values)) + "\n" + data["verdict"])
            return
        kept = {name: settings[name] for name in snapshot.tables if name in settings}
        with open_target(dst, kept) as db:
            _write(db, snapshot, out, scope=names, replace=("--replace", replace))
    data["seconds"] = round(time.monotonic() - start, 3)
    out.result(
        data,
        f"Copied {snapshots.row_count(snapshot)} rows in {len(counts)} collections and "
        f"{len(snapshot.values)} values from {_shown(src)} to {_shown(dst)}.",
    )


def _dry_run(url: str, scope: Sequence[str] | None, allowed_by: str | None) -> dict[str, Any]:
    """What writing into ``url`` would do, found without writing: how much it holds in
    ``scope``, whether that refuses the write (``allowed_by``: the option given that allows a
    store that is not empty, if any), and a sentence saying so."""
    _check_target(url)
    try:
        with snapshots.open_reading(url) as db:
            held = snapshots.held(db, scope)
    except AlreadyOpen as error:
        raise _same_store(url) from error
    except HutchError as error:  # a store not made yet, often: a read-only open makes none
        return {
            "target_holds": None,
            "would_refuse": False,
            "verdict": f"Dry run: {_shown(url)} could not be read ({error}); writing would "
            "create it, or fail the same way.",
        }
    refused = bool(held) and allowed_by is None
    verdict = (
        f"Dry run: would refuse: {_shown(url)} holds {held} rows and values there"
        if refused
        else f"Dry run: would write into {_shown(url)}"
        + (f", replacing {held} rows and values" if held else "")
    )
    return {"target_holds": held, "would_refuse": refused, "verdict": verdict + "."}


def _listing(counts: dict[str, int], values: int) -> str:
    rows = [(name, count) for name, count in counts.items()]
    rows.append((snapshots.VALUES, values))
    return text_table(rows, ("collection", "rows"))


@cli.command()
@click.argument("url_or_dir", metavar="[URL] DIR")
@click.argument("folder", required=False, metavar="")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(exchange.FORMATS),
    default="jsonl",
    show_default=True,
    help="One file per collection in this format.",
)
@click.option(
    "--collections",
    help="Export only these collections (comma-separated), and no values but the records of "
    "their schema versions.",
)
@output_options
def export(
    url_or_dir: str,
    folder: str | None,
    fmt: str,
    collections: str | None,
    as_json: bool,
    silent: bool,
) -> None:
    """Export the store at URL into DIR: one file per collection, ids and timestamps kept.

    DIR must be empty or new. jsonl and json hold one object per row with
    its id; csv has a column per field (see docs/cli.md for how values are
    written so that they read back exactly).
    """
    out = _out(as_json, silent)
    url, target = _url_and(url_or_dir, folder)
    snapshot = _read(url, out, _collections(collections))
    written = exchange.export(snapshot, _outside_stores(Path(target)), fmt)
    counts = _counts(snapshot)
    out.result(
        {
            "source": _shown(url),
            "folder": target,
            "format": fmt,
            "collections": counts,
            "values": len(snapshot.values),
            "files": [str(path) for path in written],
        },
        _listing(counts, len(snapshot.values)) + f"\nExported to {target} ({fmt}).",
    )


@cli.command(name="import")
@click.argument("folder", metavar="DIR")
@click.argument("url", required=False)
@click.option(
    "--replace",
    is_flag=True,
    help="Delete what URL holds in the export's collections (and values) first.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Where rows that fail go (default: DIR.rejects.jsonl beside DIR).",
)
@output_options
def import_(
    folder: str,
    url: str | None,
    replace: bool,
    rejects: str | None,
    as_json: bool,
    silent: bool,
) -> None:
    """Import an export folder DIR into the store at URL, ids and timestamps kept.

    Rows that do not parse, or do not fit the model of their collection (the
    models named with --plugin or --models), are left out and written to a
    reject file; then the command exits 1. The rest is one transaction, into
    the export's collections (and values), which must be empty there unless
    --replace is given; URL's other collections stay as they are.
    """
    out = _out(as_json, silent)
    url = default_url() if url is None else url
    source = _local(folder, "DIR")
    where = _local(rejects, "--rejects") if rejects else _rejects_beside(source)
    snapshot, refused = exchange.read_export(source)
    with open_target(url) as db:
        snapshot, invalid = exchange.check_models(snapshot, chosen_models())
        refused += invalid
        scope = snapshots.scope_of(snapshot)
        held = snapshots.held(db, scope)
        if held and not replace:  # (before a reject file that a second try would trip on)
            raise HutchError(f"{snapshots.NotEmpty(db.url, held, scope)}: pass --replace")
        if refused:  # before the import commits: no rejected row goes unreported
            exchange.write_rejects(where, refused)
        _write(db, snapshot, out, scope=scope, replace=("--replace", replace))
        shown = db.url
    counts = _counts(snapshot)
    data: dict[str, Any] = {
        "target": shown,
        "collections": counts,
        "values": len(snapshot.values),
        "rejected": len(refused),
    }
    text = _listing(counts, len(snapshot.values)) + f"\nImported into {shown}."
    if refused:
        data["rejects"] = str(where)
        out.result(data, text + f" {len(refused)} rows were rejected: see {where}.")
        raise click.exceptions.Exit(1)
    out.result(data, text)


def _rejects_beside(folder: Path) -> Path:
    """``DIR.rejects.jsonl`` beside the export folder ``DIR``."""
    resolved = folder.resolve()
    return resolved.parent / f"{resolved.name or 'import'}.rejects.jsonl"


# -- verify ---------------------------------------------------------------------------------------


@cli.command(name="verify")
@click.argument("url", required=False)
@click.option("--against", "other", help="Compare with this store too: hashes and sampled rows.")
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="How many random rows to compare field by field with --against.",
)
@click.option("--seed", type=int, help="Seed the sample, to repeat a run.")
@output_options
def verify_command(
    url: str | None,
    other: str | None,
    sample: int,
    seed: int | None,
    as_json: bool,
    silent: bool,
) -> None:
    """Check the integrity of the store at URL; exit 3 if a check fails.

    Record counts; the backend's index files and ids agree with the records;
    for the models named with --plugin or --models, every relationship cell
    resolves, unique fields are unique and rows fit their models; with
    --against, each collection's canonical hash and sampled rows compared
    field by field.
    """
    out = _out(as_json, silent)
    url = default_url() if url is None else url
    with contextlib.ExitStack() as opened:
        try:
            db = opened.enter_context(snapshots.open_reading(url))
        except CorruptData as error:  # what cannot even be read fails the check
            report = Report(_shown(url))
            report.add(str(error))
            _report(out, report)
            return
        against = None
        if other is not None:
            try:
                against = opened.enter_context(snapshots.open_reading(other))
            except AlreadyOpen as error:
                raise ConfigError(
                    f"{_shown(other)} is {_shown(url)} (by another name, perhaps); name "
                    "another store to compare with"
                ) from error
        report = verify(db, models=chosen_models(), against=against, sample=sample, seed=seed)
    _report(out, report)


def _report(out: Output, report: Report) -> None:
    """Print a verification's table and verdict; exit 3 if it failed."""
    header = ["collection", "rows", "sha256"]
    if report.against is not None:
        header += ["rows there", "same"]
    rows = []
    for check in report.collections:
        row: list[object] = [check.name, check.rows, check.sha256[:16]]
        if report.against is not None:
            row += [
                "-" if check.other_rows is None else check.other_rows,
                "yes" if check.matches else "NO",
            ]
        rows.append(row)
    verdict = "PASS" if report.passed else "FAIL"
    lines = [text_table(rows, header)]
    if report.against is not None:
        lines.append(f"Compared with {report.against}: {report.sampled} sampled rows.")
    if not report.passed:
        lines.append(f"{report.problem_count} problems; the first:")
        lines += [f"  - {redact_text(problem)}" for problem in report.problems[:20]]
    lines.append(f"Data integrity: {verdict}")
    out.result(
        {
            "url": report.url,
            "against": report.against,
            "passed": report.passed,
            "collections": [
                {
                    "name": c.name,
                    "rows": c.rows,
                    "sha256": c.sha256,
                    "rows_there": c.other_rows,
                    "sha256_there": c.other_sha256,
                    "same": c.matches,
                }
                for c in report.collections
            ],
            "sampled": report.sampled,
            "problem_count": report.problem_count,
            "problems": report.problems,
        },
        "\n".join(lines),
    )
    if not report.passed:
        raise click.exceptions.Exit(INTEGRITY_FAILED)


# -- backup and restore ---------------------------------------------------------------------------


_KEEP = {
    "last": "Keep the N newest backups.",
    "hourly": "Keep the newest backup of each of the last N hours that have one.",
    "daily": "Keep the newest backup of each of the last N days that have one.",
    "weekly": "Keep the newest backup of each of the last N ISO weeks that have one.",
    "monthly": "Keep the newest backup of each of the last N months that have one.",
}


def _keep_options(command: F) -> F:
    """``--keep-last`` ... ``--keep-monthly``: the retention rule (none given: keep all)."""
    for unit, text in reversed(_KEEP.items()):
        command = click.option(
            f"--keep-{unit}", unit, type=click.IntRange(min=0), default=0, metavar="N", help=text
        )(command)
    return command


@cli.command()
@click.argument("url_or_dir", metavar="[URL] DIR")
@click.argument("folder", required=False, metavar="")
@_keep_options
@output_options
def backup(
    url_or_dir: str,
    folder: str | None,
    as_json: bool,
    silent: bool,
    **keep: int,
) -> None:
    """Back up the store at URL into DIR: one compressed, timestamped archive.

    The backup is taken online at one commit point while the application
    writes on, and holds a manifest of each collection's hash. Then the
    --keep-* rules remove older archives (none given: every archive stays).
    """
    out = _out(as_json, silent)
    url, target = _url_and(url_or_dir, folder)
    rule = retention.Retention(**keep)
    folder_path = _outside_stores(Path(target))
    source = _source_name(url)
    start = time.monotonic()
    with out.step(f"reading {_shown(url)}", 1) as advance, snapshots.open_reading(url) as db:
        snapshot = snapshots.snapshot_of(db)
        settings = db.backend.collection_settings()
        advance(1)
    with out.step("compressing", 1) as advance:
        path = archives.write_archive(
            snapshot, folder_path, source=source, now=datetime.now(UTC), settings=settings
        )
        advance(1)
    seconds = time.monotonic() - start
    pruned = retention.prune(folder_path, rule, source=source, now=datetime.now(UTC), keep=path)
    text = (
        f"Backed up {snapshots.row_count(snapshot)} rows of {_shown(url)} to {path} in "
        f"{seconds:.2f} s."
    )
    if pruned.removed:
        text += f" Removed {len(pruned.removed)} older backups; {len(pruned.kept)} kept."
    for info in pruned.future:
        text += f"\nWarning: {info.path.name} is dated after now (a clock set wrong?): kept."
    for info in pruned.unreadable:
        text += f"\nWarning: {info.path.name} cannot be read (damaged?): kept, never removed."
    out.result(
        {
            "source": _shown(url),
            "archive": str(path),
            "collections": _counts(snapshot),
            "values": len(snapshot.values),
            "seconds": round(seconds, 3),
            **{
                part: [str(info.path) for info in getattr(pruned, part)]
                for part in ("kept", "removed", "future", "foreign", "unreadable")
            },
        },
        text,
    )


@cli.command()
@click.argument("folder", metavar="DIR")
@output_options
def backups(folder: str, as_json: bool, silent: bool) -> None:
    """List the backup archives in DIR, oldest first."""
    out = _out(as_json, silent)
    found: list[dict[str, Any]] = []
    for info in archives.list_archives(_local(folder, "DIR")):
        entry: dict[str, Any] = {
            "archive": str(info.path),
            "taken_at": info.taken_at.isoformat(),
            "bytes": info.size,
        }
        try:
            manifest = archives.read_manifest(info.path)
        except HutchError as error:  # one damaged archive hides none of the others
            entry["damaged"] = str(error)
        else:
            entry["source"] = manifest.source
            entry["rows"] = sum(part.count for part in manifest.collections.values())
            entry["collections"] = len(manifest.collections)
        found.append(entry)
    rows = [
        (
            Path(b["archive"]).name,
            b["taken_at"],
            b.get("rows", "-"),
            b["bytes"],
            b.get("source") or f"DAMAGED: {b['damaged']}",
        )
        for b in found
    ]
    out.result(
        {"folder": folder, "backups": found},
        text_table(rows, ("archive", "taken at (UTC)", "rows", "bytes", "source"))
        if found
        else f"No backups in {folder}.",
    )


@cli.command()
@click.argument("archive")
@click.argument("url", required=False)
@click.option("--dry-run", is_flag=True, help="Check the archive and the target; write nothing.")
@click.option(
    "--force", is_flag=True, help="Restore into a store that is not empty (replacing it)."
)
@output_options
def restore(
    archive: str,
    url: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
    silent: bool,
) -> None:
    """Restore the backup ARCHIVE into the store at URL, then verify it.

    The archive's hashes are checked before anything is written. URL must be
    empty unless --force is given (then what it holds is replaced); the
    restore is one transaction. Exit 3 if the restored store does not verify.
    """
    out = _out(as_json, silent)
    url = default_url() if url is None else url
    with out.step("reading the archive", 1) as advance:
        manifest, snapshot = archives.read_archive(_local(archive, "ARCHIVE"))
        advance(1)
    counts = _counts(snapshot)
    if dry_run:
        data = {
            "archive": archive,
            "target": _shown(url),
            "collections": counts,
            "values": len(snapshot.values),
            "dry_run": True,
            **_dry_run(url, None, "--force" if force else None),
        }
        text = _listing(counts, len(snapshot.values)) + "\nThe archive checks. " + data["verdict"]
        out.result(data, text)
        return
    with open_target(url, manifest.settings) as db:
        _write(db, snapshot, out, replace=("--force", force))
    with snapshots.open_reading(url) as db:
        report = verify(db, models=chosen_models())
    restored = {check.name: check.sha256 for check in report.collections}  # (values too)
    expected = {name: part.sha256 for name, part in manifest.collections.items()}
    expected[snapshots.VALUES] = manifest.values.sha256
    for name in sorted(set(expected) | set(restored)):
        if expected.get(name) != restored.get(name):
            report.add(f"{name} as restored does not match the archive's hash; restore again")
    out.say(f"Restored {archive} ({manifest.created.isoformat()}) into {_shown(url)}.")
    _report(out, report)


# -- looking after a store ------------------------------------------------------------------------


@cli.command()
@click.argument("url", required=False)
@output_options
def stats(url: str | None, as_json: bool, silent: bool) -> None:
    """Show what the store at URL holds: collections, rows, bytes, index files, log sizes."""
    out = _out(as_json, silent)
    with snapshots.open_reading(_or_default(url)) as db:
        store = db.store
        counts = {name: store.get_row_count(name) for name in sorted(store.get_table_ids())}
        disk = db.backend.stats()
        data = {
            "url": db.url,
            "backend": db.config.url.scheme,
            "collections": counts,
            "values": len(store.get_values()),
            "storage": disk,
        }
    on_disk = disk.get("collections", {})
    rows = [
        (
            name,
            count,
            on_disk.get(name, {}).get("bytes", "-"),
            on_disk.get(name, {}).get("index_files", "-"),
        )
        for name, count in counts.items()
    ]
    lines = [text_table(rows, ("collection", "rows", "bytes", "index files"))]
    lines.append(f"values: {data['values']}")
    lines += [f"{key}: {value}" for key, value in disk.items() if key != "collections"]
    out.result(data, "\n".join(lines))


@cli.command()
@click.argument("url", required=False)
@output_options
def reindex(url: str | None, as_json: bool, silent: bool) -> None:
    """Rebuild the on-disk indexes of the store at URL from its records."""
    out = _out(as_json, silent)
    with hutch.open(_existing(_or_default(url)), follow=False) as db:
        db.reindex()
        out.result({"url": db.url, "reindexed": True}, f"Rebuilt the indexes of {db.url}.")


@cli.command()
@click.argument("url", required=False)
@output_options
def compact(url: str | None, as_json: bool, silent: bool) -> None:
    """Drop superseded history of the store at URL now (deleted values leave the disk)."""
    out = _out(as_json, silent)
    with hutch.open(_existing(_or_default(url)), follow=False) as db:
        db.compact()
        out.result({"url": db.url, "compacted": True}, f"Compacted {db.url}.")


@cli.command()
@click.argument("url", required=False)
@click.option("--dry-run", is_flag=True, help="Say what would run; write nothing.")
@output_options
def migrate(url: str | None, dry_run: bool, as_json: bool, silent: bool) -> None:
    """Run the pending migrations of the models named with --plugin or --models.

    The pending migrations of each collection run in one transaction, each
    once, however many processes open the store meanwhile; one that fails
    rolls its collection back and the command exits 1. The store records each
    collection's schema version (see docs/models.md#migrations).
    """
    out = _out(as_json, silent)
    models = chosen_models()
    if not models:
        raise ConfigError(
            "no models to migrate: name the plugins that register them, as in "
            "`hutch --plugin NAME migrate [URL]`, or the modules that define them, as in "
            "`hutch --models myapp.models migrate [URL]`"
        )
    target = _existing(_or_default(url))
    read_only = dry_run and capabilities_of(parse_url(target)).read_only
    with hutch.open(target, follow=False, migrate=False, read_only=read_only) as db:
        done = db.migrate(*models, dry_run=dry_run)
        versions = {
            spec.collection: {"store": db.schema_version(spec.collection), "model": spec.version}
            for spec in map(spec_of, models)
        }
        shown = db.url
    key, verb = ("would_run", "Dry run: would run") if dry_run else ("ran", "Ran")
    newer = {name: v for name, v in versions.items() if v["store"] > v["model"]}
    if done:
        lines = [f"{verb} on {shown}:", *(f"  {step}" for step in done)]
    elif newer:
        lines = [f"Nothing to run on {shown}."]
    else:
        lines = [f"Nothing to migrate: every collection of {shown} is at its model's version."]
    rows = [(name, v["store"], v["model"]) for name, v in versions.items()]
    lines.append(text_table(rows, ("collection", "store version", "model version")))
    lines += [
        f"Warning: {name} is at version {v['store']}, newer than this code's {v['model']}: a "
        "newer version of the application migrated it; deploy that version"
        for name, v in newer.items()
    ]
    out.result(
        {
            "url": shown,
            "dry_run": dry_run,
            key: [attrs.asdict(step) for step in done],
            "collections": versions,
        },
        "\n".join(lines),
    )


@cli.command()
@click.argument("url", required=False)
@click.option("--read-only", is_flag=True, help="Open it read-only (where the backend can).")
def shell(url: str | None, read_only: bool) -> None:
    """A Python prompt with the store at URL open as `db` (and `hutch` imported)."""
    with hutch.open(_existing(_or_default(url)), read_only=read_only) as db:
        banner = f"hutch {hutch.__version__}: db is {db!r}; db.store, db.repo(Model), ..."
        code.interact(banner=banner, local={"db": db, "hutch": hutch}, exitmsg="")
