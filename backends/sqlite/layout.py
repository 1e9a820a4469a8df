"""A table of a ``sqlite://`` file as SQLite's schema describes it, and what hutch refuses in it.

A person may change the tables with any tool (docs/sqlite-format.md, "Changing
the tables"). hutch reads a table only where every value comes back as it was
written, and writes it only where a write cannot merge or lose rows:

* refused at once (:class:`~hutch.CorruptData`, for reading and writing): a column
  whose declared type gives it an affinity that converts values (``"007"`` stored in
  an INTEGER column reads ``7``), a STRICT table, a view in place of a table, a
  missing ``id`` or ``_hutch_meta`` column, and lines of ``_hutch_tables`` that hutch
  would never write (two collections on one table, a name that is not a table of
  its own);
* refused for writing (a read-only open reads, and ``verify`` names the problem):
  a key column (``id``, ``_values.key``, ``_hutch_tables.collection``) without a
  unique key, or that SQLite compares with another collation than ``BINARY``
  (``COLLATE NOCASE`` takes ``p1`` and ``P1`` for one id); a constraint whose
  ``ON CONFLICT REPLACE`` or ``IGNORE`` would make SQLite delete another row or
  skip hutch's write without an error.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from sqlite_utils.db import quote_identifier

from hutch import CorruptData, InvalidId
from hutch.ids import check_table_id

from .cells import META

#: Which SQLite table holds which collection: ``collection TEXT PRIMARY KEY, name TEXT``.
TABLES_TABLE = "_hutch_tables"
#: The names hutch gives collections' tables: a collection id, perhaps after ``hutch_`` and
#: before a suffix ``_2`` (never ``sqlite_*``, which SQLite keeps; never ``_*``, hutch's own).
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}").fullmatch
#: The affinities that keep a string as it is bound (hutch binds only strings to these columns).
_TEXT_KEEPING = ("TEXT", "BLOB")
#: The affinity that keeps every value as it is bound: no declared type, or ``BLOB``.
_KEEPING = ("BLOB",)
#: What SQL text quotes (strings, identifiers) or comments out: no clause of its own.
_QUOTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|$)", re.S
)
#: A constraint's conflict clause that turns a failed write into a silent one.
_SILENT_CONFLICT = re.compile(r"\bON\s+CONFLICT\s+(REPLACE|IGNORE)\b", re.I)


class Shape(NamedTuple):
    """What a connection remembers of a table it took in, to tell what changed since
    without a log line: its first page (new after a drop), its field columns, and those
    with a DEFAULT."""

    root: int
    fields: frozenset[str]
    defaults: frozenset[str]

    def rewritten_as(self, after: Shape) -> bool:
        """Whether the rows may read differently though no trigger logged a write:
        ``ALTER TABLE`` dropped or renamed a column, or added one with a DEFAULT."""
        return not (self.fields <= after.fields and after.defaults <= self.fields)


class Table:
    """A collection's table: its columns as hutch reads and writes them."""

    def __init__(self, name: str, root: int) -> None:
        self.name = name
        #: The table's first page: it changes when the table is dropped and created again.
        self.root = root
        #: Field column -> its place in a record ``(id, _hutch_meta, field, ...)``.
        self.fields: dict[str, int] = {}
        #: Every column's name in lower case (SQLite compares them so): a cell named so
        #: that is not in ``fields`` keeps its value in ``_hutch_meta``.
        self.folded: set[str] = set()
        #: Field columns with a DEFAULT: adding one changes every row, and logs none.
        self.defaults: set[str] = set()
        #: Column -> (table, column) it references; the column is ``None`` for the key.
        self.references: dict[str, tuple[str, str | None]] = {}
        #: Whether every change of the table reaches the change log (its triggers exist).
        self.logged = True
        #: Whether its key holds its rows (WITHOUT ROWID): created again, it stays so.
        self.without_rowid = False
        #: Whether it has generated columns, which creating it again column by column
        #: would lose (so a foreign key is declared only on a column added later).
        self.generated = False
        #: Why hutch may not write the table (``None``: it may).
        self.refusal: str | None = None

    def add_field(self, column: str) -> None:
        self.fields[column] = len(self.fields) + 2
        self.folded.add(column.lower())

    def shape(self) -> Shape:
        return Shape(self.root, frozenset(self.fields), frozenset(self.defaults))


def inspect(
    conn: sqlite3.Connection, path: Path, name: str, root: int, strict: bool, sql: str
) -> Table:
    """Read a collection's table (made by ``sql``) from SQLite's schema; raise
    :class:`~hutch.CorruptData` if hutch could not read it exactly, and note in ``refusal``
    why it may not write it."""
    where = f"{path}, table {name!r}"
    if strict:
        raise CorruptData(
            f"{where} is STRICT: SQLite converts values to its columns' types there ('007' "
            "becomes 7 in an INTEGER column) and refuses the columns of no type that hutch "
            "adds. Copy its rows into a table made without STRICT, whose field columns have "
            "no type or BLOB (check them against a backup: values may be converted already)"
        )
    table = Table(name, root)
    quoted = quote_identifier(name)
    columns = conn.execute(f"PRAGMA table_xinfo({quoted})").fetchall()
    found = {column[1].lower() for column in columns if not column[6]}
    if "id" not in found:
        raise CorruptData(
            f"{where} has no column 'id' (renamed or dropped by hand?): it holds each row's id; "
            f"give the column its name back (ALTER TABLE {quoted} RENAME COLUMN ... TO id)"
        )
    if META not in found:
        raise CorruptData(
            f"{where} has no column {META!r} (renamed or dropped by hand?): it tells booleans, "
            "nulls, lists and objects apart and holds the cells that have no column. Restore "
            f"the table from a backup, or add the column back (ALTER TABLE {quoted} ADD COLUMN "
            f"{META} TEXT) and read booleans as 0 and 1, nulls as absent cells, lists and "
            "objects as JSON text"
        )
    for _, column, declared, _, default, _, hidden in columns:
        folded = column.lower()
        table.folded.add(folded)
        if hidden:  # a generated column: SQLite computes it, it is no cell
            table.generated = True
        elif folded in ("id", META):
            _check_type(path, name, column, declared, _TEXT_KEEPING)
        else:
            _check_type(path, name, column, declared, _KEEPING)
            table.add_field(column)
            if default is not None and default.upper() != "NULL":
                table.defaults.add(column)
    for fk in conn.execute(f"PRAGMA foreign_key_list({quoted})"):
        table.references[fk[3]] = (fk[2], fk[4])
    table.without_rowid, table.refusal = key_of(conn, path, name, "id")
    table.refusal = table.refusal or silent_conflicts(path, name, sql)
    return table


def check_own(
    conn: sqlite3.Connection, path: Path, name: str, columns: Iterable[str], seq: str = ""
) -> None:
    """Raise :class:`~hutch.CorruptData` if hutch's own table ``name`` lacks one of its
    ``columns`` (strings) or its ``seq`` column (the log's order, an INTEGER key), or gives
    one a type that would convert what hutch stores there (``"007"`` logged as ``7``)."""
    declared = {
        column.lower(): (column, kind, key)
        for _, column, kind, _, _, key in conn.execute(
            f"PRAGMA table_info({quote_identifier(name)})"
        )
    }
    if not declared:
        fix = (
            "open the database again: a writing open makes it anew (and every connection "
            "reads the file whole once)"
            if seq
            else "rename it back, or restore the file from a backup"
        )
        raise CorruptData(
            f"{path}: hutch's table {name!r} is gone (dropped or renamed by hand?): {fix}"
        )
    for wanted in (*columns, *([seq] if seq else [])):
        if wanted not in declared:
            raise CorruptData(
                f"{path}, table {name!r} has no column {wanted!r} (renamed or dropped by "
                f"hand?): hutch keeps its own data there. Give the column its name back (ALTER "
                f"TABLE {name} RENAME COLUMN ... TO {wanted}), or restore the file from a backup"
            )
        column, kind, key = declared[wanted]
        if wanted != seq:
            _check_type(path, name, column, kind, _TEXT_KEEPING)
        elif kind.upper() != "INTEGER" or not key:
            raise CorruptData(
                f"{path}, table {name!r}, column {column!r} is no longer an INTEGER PRIMARY KEY "
                "(changed by hand?), so it no longer numbers the lines in order. Drop the table: "
                "hutch makes it again, and every open connection reads the file whole once"
            )


def silent_conflicts(path: Path, name: str, sql: str | None) -> str | None:
    """Why hutch may not write the table that ``sql`` made, if a constraint of it says
    ``ON CONFLICT REPLACE`` (SQLite would delete another row, or put a default in place of a
    NULL, and log nothing) or ``ON CONFLICT IGNORE`` (it would skip hutch's write without an
    error); ``None`` if none does."""
    found = _SILENT_CONFLICT.search(_QUOTED.sub(" ", sql or ""))
    if found is None:
        return None
    what = found.group(1).upper()
    does = {
        "REPLACE": "delete another row in the way (or put a default in place of a NULL) "
        "without logging it",
        "IGNORE": "skip a write without an error",
    }[what]
    return (
        f"{path}, table {name!r}: a constraint of it says ON CONFLICT {what} (given by hand?), "
        f"which makes SQLite {does}, so memory and the file would part. hutch reads the file "
        "(read_only=True) but writes nothing to it until no constraint has that clause: "
        "create the table again without it (a write that breaks the constraint then fails, "
        "and says so)"
    )


def key_of(conn: sqlite3.Connection, path: Path, name: str, column: str) -> tuple[bool, str | None]:
    """Whether table ``name`` is WITHOUT ROWID, and why hutch may not write it (``None``: it
    may): ``column`` must be its key, unique, compared byte for byte."""
    where = f"{path}, table {name!r}, column {column!r}"
    quoted = quote_identifier(name)
    without_rowid = keyed = False
    problem = None
    for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({quoted})"):
        info = conn.execute(f"PRAGMA index_xinfo({quote_identifier(index)})").fetchall()
        if origin == "pk" and all(entry[1] != -1 for entry in info):
            without_rowid = True  # its key holds the rows: no rowid among its columns
        keys = [(entry[2], entry[4]) for entry in info if entry[5]]
        if not unique or partial or len(keys) != 1 or str(keys[0][0]).lower() != column:
            continue
        collation = str(keys[0][1])
        if collation.upper() == "BINARY":
            keyed = True
        elif problem is None:
            what = "its PRIMARY KEY" if origin == "pk" else f"its unique index {index!r}"
            problem = _merges(where, f"{what} compares with the collation {collation}", column)
    if problem is None and not keyed:
        problem = (
            f"{where}: the table has no PRIMARY KEY on {column!r} (made or changed by hand?), "
            f"so a write would add a second row with one {column} instead of replacing the "
            f"first. hutch writes nothing to the file until it has one: delete the rows "
            f"whose {column} another row holds too (hutch verify names them), and give the "
            f"table its PRIMARY KEY on {column} back"
        )
    elif problem is None and not _compares_bytes(conn, quoted, column):
        problem = _merges(where, "the column compares with a collation other than BINARY", column)
    return without_rowid, problem


def _compares_bytes(conn: sqlite3.Connection, quoted: str, column: str) -> bool:
    """Whether SQLite compares ``column`` byte for byte (a compound SELECT compares with
    the collation of its first SELECT's column; ``NOCASE`` and ``RTRIM`` merge some of
    these three, a collation this connection lacks fails)."""
    probe = (
        f"SELECT count(*) FROM (SELECT {quote_identifier(column)} FROM {quoted} WHERE 0 "
        "UNION SELECT 'a' UNION SELECT 'A' UNION SELECT 'a ')"
    )
    try:
        distinct: int = conn.execute(probe).fetchone()[0]
    except sqlite3.OperationalError:
        return False
    return distinct == 3


def _merges(where: str, what: str, column: str) -> str:
    return (
        f"{where}: {what} (given by hand?), which takes keys that differ (say 'p1' and "
        f"'P1') for one, while hutch keeps them apart: a write would merge their rows. "
        f"hutch reads the file (read_only=True) but writes nothing to it until SQLite "
        f"compares {column!r} byte for byte: create the table again without that COLLATE "
        "(and drop a unique index that has one)"
    )


def _check_type(
    path: Path, table: str, column: str, declared: str, keeping: tuple[str, ...]
) -> None:
    if _affinity(declared) in keeping:
        return
    if keeping == _KEEPING:
        fix = (
            f"Give the column no type, or BLOB (`sqlite-utils transform FILE {table} --type "
            f"{column} blob`, naming every field column so: sqlite-utils gives TEXT to each "
            "column of no type), and check its values against a backup"
        )
    else:
        fix = "Give the column the type TEXT again, and check its values against a backup"
    raise CorruptData(
        f"{path}, table {table!r}, column {column!r}: its declared type {declared} makes "
        "SQLite convert the values stored in it ('007' becomes 7 and 2.0 becomes 2 in an "
        "INTEGER column, 5 becomes '5' in a TEXT one), so hutch could not read back what it "
        f"wrote. {fix}: SQLite converted those already there when the type was given. For "
        "typed queries, CAST in a view"
    )


def _affinity(declared: str) -> str:
    """SQLite's affinity of a column declared so (https://sqlite.org/datatype3.html, 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper or not upper.strip():
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


def read_mapping(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    """``_hutch_tables`` as collection -> table name, each line checked: a valid collection
    named once, a table name hutch gives (so not one of hutch's own tables nor SQLite's),
    and no table named for two collections (SQLite ignores case in names)."""
    where = f"{path}, table {TABLES_TABLE!r}"
    mapping: dict[str, str] = {}
    owners: dict[str, str] = {}  # table name in lower case -> its collection
    for collection, name in conn.execute(f"SELECT collection, name FROM {TABLES_TABLE}"):
        line = f"{where}: the line ({collection!r}, {name!r})"
        try:
            check_table_id(collection)
        except InvalidId:
            raise CorruptData(
                f"{line} names no collection (an id is a letter, then up to 63 letters, "
                "digits or _): fix or delete the line"
            ) from None
        if collection in mapping:
            raise CorruptData(
                f"{where} names the collection {collection!r} twice, with the tables "
                f"{mapping[collection]!r} and {name!r}: delete the line of the table that does "
                f"not hold it, and give {TABLES_TABLE} its PRIMARY KEY on collection back"
            )
        if type(name) is not str or not _TABLE_NAME(name) or name.lower().startswith("sqlite_"):
            raise CorruptData(
                f"{line}: {name!r} is no name hutch gives a collection's table (a letter, then "
                "letters, digits or _; never sqlite_*), so it may be one of hutch's own "
                "tables or SQLite's: fix or delete the line (the collection then starts empty)"
            )
        owner = owners.setdefault(name.lower(), collection)
        if owner != collection:
            raise CorruptData(
                f"{where}: the collections {owner!r} and {collection!r} both name the table "
                f"{name!r} (SQLite ignores case in names), so they would share its rows: fix "
                "the line of the one that does not own it (or delete it: that collection then "
                "starts empty)"
            )
        mapping[collection] = name
    return mapping
