"""The tables of a ``sqlite://`` file, as one connection last read them (docs/sqlite-format.md).

hutch's own tables, one table per collection with a column per field (up to
:data:`MAX_FIELDS`), the indexes of indexed fields, the foreign keys of
relationships, and the triggers that log every row change to ``_hutch_changes``
(so that other connections read only what changed). Each read of the schema
checks what a person may have changed (:mod:`.layout`). Every method that changes
the schema runs inside a write transaction that the caller holds; a read-only
open calls :meth:`Schema.find`, which writes nothing, instead of :meth:`Schema.prepare`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils.db import quote_identifier

from hutch import ConfigError, CorruptData, UnsupportedFormat

from .cells import META, literal
from .layout import (
    TABLES_TABLE,
    Table,
    check_own,
    inspect,
    key_of,
    read_mapping,
    silent_conflicts,
)

FORMAT_VERSION = 1
KIND = "sqlite"
#: Format version and kind: ``key TEXT PRIMARY KEY, value TEXT``.
HUTCH_TABLE = "_hutch"
#: Keyed values: ``key TEXT PRIMARY KEY, value TEXT`` (JSON).
VALUES_TABLE = "_values"
#: One line per row written: ``seq INTEGER PRIMARY KEY, table_name TEXT, row_id``.
CHANGES_TABLE = "_hutch_changes"
#: A collection's table gets at most this many field columns (beside ``id`` and
#: ``_hutch_meta``): the cells of further names keep their values in ``_hutch_meta``, so a
#: client sending ever new names cannot widen the table toward SQLite's limit (2000
#: columns), each ``ALTER TABLE`` rewriting the schema that every connection reads again.
MAX_FIELDS = 100


class Schema:
    """Which table holds which collection, and what each table has."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        self._path = path
        self._collections: dict[str, str] = {}  # collection -> table name
        self._names: dict[str, str] = {}  # table name -> collection
        self.tables: dict[str, Table] = {}
        #: Whether every change of ``_values`` reaches the change log (its triggers exist).
        self.values_logged = True
        #: Why hutch may not write the file (none: it may), as :meth:`load` found it.
        self.refusals: list[str] = []
        #: The file's own triggers (not hutch's) on the tables hutch writes (its own
        #: included), by the table's name in lower case: a write may change more than it
        #: wrote (another collection, the row itself, the values), or be skipped.
        self.triggers: dict[str, list[str]] = {}
        #: Whether hutch's own tables are there (prepare() makes them; find() looks).
        self.found = False
        self._version = -1

    def prepare(self) -> None:
        """Create hutch's own tables (or check their format) and log changes of every table."""
        names = set(self._db.table_names())
        if VALUES_TABLE not in names:
            self._refuse_moved(VALUES_TABLE, "the keyed values", _triggers(self._conn))
        if HUTCH_TABLE not in names:
            self._db.table(HUTCH_TABLE).create({"key": str, "value": str}, pk="key")
            self._conn.executemany(
                f"INSERT INTO {HUTCH_TABLE} (key, value) VALUES (?, ?)",
                [("format", str(FORMAT_VERSION)), ("kind", KIND)],
            )
        else:
            self._check_format()
        if TABLES_TABLE not in names:
            self._db.table(TABLES_TABLE).create({"collection": str, "name": str}, pk="collection")
        if VALUES_TABLE not in names:
            self._db.table(VALUES_TABLE).create({"key": str, "value": str}, pk="key")
        if CHANGES_TABLE not in names:
            self._conn.execute(
                f"CREATE TABLE {CHANGES_TABLE} "
                "(seq INTEGER PRIMARY KEY, table_name TEXT NOT NULL, row_id)"
            )
        self.load()
        self.check_writable()
        self.log_every_table()  # tables of older files get their triggers here
        self.found = True

    def find(self) -> bool:
        """For a read-only open, writing nothing: whether hutch's tables are there, checked
        (their format) and loaded as :meth:`prepare` leaves them. A file without any table
        is an empty store (a writer may make them later: each call looks again, until found);
        a file with other tables only is refused."""
        if self.found:
            return True
        names = set(self._db.table_names())
        if not names:
            return False
        if HUTCH_TABLE not in names:
            listed = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(
                f"{self._path} holds tables ({listed}) but not hutch's: it is no hutch store. "
                "read_only=True adds nothing to it; a writing open would add hutch's tables "
                "beside them"
            )
        self._check_format()
        if VALUES_TABLE not in names:
            self._refuse_moved(VALUES_TABLE, "the keyed values", _triggers(self._conn))
        missing = sorted({TABLES_TABLE, VALUES_TABLE, CHANGES_TABLE} - names)
        if missing:
            raise UnsupportedFormat(
                f"{self._path} lacks hutch's table(s) {', '.join(missing)}, which a writing open "
                "adds (an older hutch made no such table) and read_only=True does not: open it "
                "once without read_only first"
            )
        self.load()
        self.found = True
        return True

    def _check_format(self) -> None:
        check_own(self._conn, self._path, HUTCH_TABLE, ("key", "value"))
        stored = dict(self._conn.execute(f"SELECT key, value FROM {HUTCH_TABLE}").fetchall())
        kind = stored.get("kind", KIND)
        if kind != KIND:
            raise ConfigError(f"{self._path}: this file holds a {kind} store, not a sqlite one")
        try:
            version = int(stored.get("format", FORMAT_VERSION))
        except (TypeError, ValueError):
            raise CorruptData(
                f"{self._path}: the format in table {HUTCH_TABLE} is {stored['format']!r}, "
                "not a number; fix it"
            ) from None
        if version > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"{self._path} says format {version}, newer than the {FORMAT_VERSION} this "
                "hutch reads; upgrade hutch to open it"
            )

    # -- reading the schema ------------------------------------------------------------------

    def load(self) -> None:
        """Read the tables of the collections, their columns and their foreign keys, and
        check them (:mod:`.layout`): raise what hutch cannot read, note what it may not write."""
        self._version = -1  # until this load succeeds: check() then tries again
        objects: dict[str, tuple[str, int, str]] = {}  # name in lower case -> type, root, sql
        for kind, name, root, sql in self._conn.execute(
            "SELECT type, name, rootpage, sql FROM sqlite_master WHERE type != 'trigger'"
        ):
            objects[str(name).lower()] = (kind, root, sql)
        triggers = _triggers(self._conn)
        strict = {
            str(name).lower()
            for schema, name, *_, is_strict in self._conn.execute("PRAGMA table_list")
            if schema == "main" and is_strict
        }  # (an SQLite older than 3.37 lists nothing, and has no STRICT table)
        check_own(self._conn, self._path, TABLES_TABLE, ("collection", "name"))
        check_own(self._conn, self._path, VALUES_TABLE, ("key", "value"))
        check_own(self._conn, self._path, CHANGES_TABLE, ("table_name", "row_id"), seq="seq")
        refusals = [
            refusal
            for name, key in ((TABLES_TABLE, "collection"), (VALUES_TABLE, "key"))
            if (refusal := key_of(self._conn, self._path, name, key)[1])
        ]
        refusals += [  # hutch's own writes there must neither delete another row nor be skipped
            refusal
            for name in (TABLES_TABLE, VALUES_TABLE, CHANGES_TABLE)
            if (refusal := silent_conflicts(self._path, name, objects[name.lower()][2]))
        ]
        collections = read_mapping(self._conn, self._path)
        tables = {}
        for collection, name in collections.items():
            kind, root, sql = objects.get(name.lower(), ("", 0, ""))
            if not kind:
                # A table dropped by hand is created again when written to; one renamed
                # took hutch's triggers along, and its rows would silently be left behind.
                self._refuse_moved(name, f"collection {collection!r}", triggers)
                continue
            if kind != "table" or not root:
                what = {"view": "a view", "table": "a virtual table"}.get(kind, f"an {kind}")
                raise CorruptData(
                    f"{self._path}, table {name!r} (of collection {collection!r}) is {what}, "
                    "not a table: hutch keeps a collection's rows in a table of its own. Put "
                    "the table back (from a backup, or under its own name), or delete the "
                    f"line of {collection!r} in {TABLES_TABLE} (the collection then starts empty)"
                )
            table = inspect(self._conn, self._path, name, root, name.lower() in strict, sql)
            table.logged = _logs(triggers, name)
            if table.refusal is not None:
                refusals.append(table.refusal)
            tables[name] = table
        # Every trigger but hutch's own where they belong; those on tables hutch writes fire.
        written = {
            name.lower()
            for name in (*tables, VALUES_TABLE, CHANGES_TABLE, TABLES_TABLE, HUTCH_TABLE)
        }
        bodies = dict(
            self._conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        )
        keys = {**dict.fromkeys(tables, "id"), VALUES_TABLE: "key"}
        own = {  # by name, place and body: one of hutch's names may hold a person's writes
            (trigger, name.lower())
            for name, key in keys.items()
            for event in _EVENTS
            if _is_hutchs(bodies.get(trigger := _trigger(event, name)), event, name, key)
        }
        fired: dict[str, list[str]] = {}
        for trigger, on in sorted(triggers.items()):
            if on in written and (trigger, on) not in own:
                fired.setdefault(on, []).append(trigger)
        self._collections = collections
        self._names = {name: collection for collection, name in collections.items()}
        self.tables = tables
        self.values_logged = _logs(triggers, VALUES_TABLE)
        self.triggers = fired
        self.refusals = refusals
        self._version = self.schema_version()

    def _refuse_moved(self, name: str, holding: str, triggers: dict[str, str]) -> None:
        """Raise :class:`~hutch.CorruptData` if the triggers that log the changes of table
        ``name`` (gone) are on another table: it was renamed (``ALTER TABLE ... RENAME``
        takes them along), and hutch would start ``holding`` empty, its rows left there."""
        places = sorted({on for e in _EVENTS if (on := triggers.get(_trigger(e, name)))})
        if not places:
            return
        now = places[0]
        names = ", ".join(_trigger(event, name) for event in _EVENTS)
        raise CorruptData(
            f"{self._path}: table {name!r}, which holds {holding}, is gone, and hutch's "
            f"triggers that log its changes are on table {now!r}: was it renamed by hand? "
            f"Rename it back (ALTER TABLE {quote_identifier(now)} RENAME TO "
            f"{quote_identifier(name)}), or, to start {holding} empty and keep {now!r} as a "
            f"table of your own, drop those triggers ({names})"
        )

    def check_writable(self) -> None:
        """Raise :class:`~hutch.CorruptData` if the file has what a write could merge or lose
        rows through (a key compared ignoring case, a key that is not unique, a constraint
        that replaces or ignores)."""
        if self.refusals:
            more = len(self.refusals) - 1
            also = f" (and {more} more problem(s), which hutch verify lists)" if more else ""
            raise CorruptData(self.refusals[0] + also)

    def check(self) -> None:
        """Read the schema again if anyone changed it (a rollback included)."""
        if self.schema_version() != self._version:
            self.load()

    def log_every_table(self) -> None:
        """Give back its change-log triggers to any table that lost them (by hand), or
        whose triggers a rename took to another table."""
        if not self.values_logged:
            self._log_changes(VALUES_TABLE, "key")
            self.values_logged = True
        for table in self.tables.values():
            if not table.logged:
                self._log_changes(table.name, "id")
                table.logged = True

    def forget(self) -> None:
        """The cached schema may hold what was rolled back: trust none of it, read it again."""
        self._collections, self._names, self.tables = {}, {}, {}
        self._version = -1

    def schema_version(self) -> int:
        version: int = self._conn.execute("PRAGMA schema_version").fetchone()[0]
        return version

    def collections(self) -> dict[str, Table]:
        """The collections whose table exists, and their tables."""
        return {
            collection: self.tables[name]
            for collection, name in self._collections.items()
            if name in self.tables
        }

    def collection_of(self, name: str) -> str | None:
        """The collection a SQLite table holds, if it holds one."""
        return self._names.get(name) if name in self.tables else None

    # -- changing the schema -----------------------------------------------------------------

    def table_of(self, collection: str) -> Table | None:
        """The SQLite table of a collection, if it has one."""
        name = self._collections.get(collection)
        return None if name is None else self.tables.get(name)

    def create_table(self, collection: str) -> Table:
        """The SQLite table of a collection, created (and its changes logged) if need be."""
        table = self.table_of(collection)
        if table is not None:
            return table
        name = self._collections.get(collection)
        if name is None:
            taken = {
                str(n).lower() for (n,) in self._conn.execute("SELECT name FROM sqlite_master")
            }
            # SQLite reserves sqlite_* and compares names ignoring case; hutch does neither.
            base = f"hutch_{collection}" if collection.lower().startswith("sqlite_") else collection
            # A table dropped by hand keeps its name: it is created again when written to.
            taken.update(name.lower() for name in self._collections.values())
            name, suffix = base, 2
            while name.lower() in taken:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self._conn.execute(
                f"INSERT INTO {TABLES_TABLE} (collection, name) VALUES (?, ?)", (collection, name)
            )
            self._collections[collection] = name
            self._names[name] = collection
        self._db.table(name).create({"id": str, META: str}, pk="id")
        self._log_changes(name, "id")
        table = self.tables[name] = inspect(
            self._conn, self._path, name, self._root(name), False, ""
        )
        return table

    def has_column(self, table: Table, cell: str) -> bool:
        """Whether ``cell`` has a column of its own in ``table``, adding one if it may (as
        the table's last field: see :func:`.cells.encode_row`)."""
        if cell in table.fields:
            return True
        if not self._may_add(table, cell):
            return False  # the cell lives in _hutch_meta
        self._add_column(table, cell)
        return True

    def index(self, collection: str, field: str) -> None:
        """Give ``field`` a column (if it may have one) and an index."""
        table = self.create_table(collection)
        if not self.has_column(table, field):
            return
        sqlite_table = self._db.table(table.name)
        if [field] in (index.columns for index in sqlite_table.indexes):
            return
        sqlite_table.create_index(
            [field], index_name=f"idx_{table.name}_{field}", find_unique_name=True
        )

    def links(self, local: str, on: str, remote: str) -> bool:
        """Whether the cell ``on`` of ``local`` has a foreign key to ``remote`` (or cannot have)."""
        if on in ("id", META):
            return True  # the key itself, or a cell that lives in _hutch_meta
        table, remote_table = self.table_of(local), self.table_of(remote)
        if table is None or remote_table is None:
            return False
        if on in table.fields:
            # A table with generated columns is not created again (they would be lost).
            return table.generated or table.references.get(on) == (remote_table.name, "id")
        return not self._may_add(table, on)

    def link(self, local: str, on: str, remote: str) -> None:
        """Declare the foreign key ``local.on -> remote.id``, and index it.

        A column can have a foreign key only when the table is created, so a
        column that exists already is given one by creating the table again
        (but for a table with generated columns, which that would lose).
        """
        if self.links(local, on, remote):
            return
        target = (self.create_table(remote).name, "id")
        table = self.create_table(local)
        if on not in table.fields:
            if not self._may_add(table, on):
                return
            self._add_column(table, on, references=target)
        elif table.references.get(on) != target and not table.generated:
            table.references[on] = target
            self._rebuild(table)
        self.index(local, on)

    def _may_add(self, table: Table, cell: str) -> bool:
        # SQLite column names ignore case: a clashing cell lives in _hutch_meta.
        return cell.lower() not in table.folded and len(table.fields) < MAX_FIELDS

    def _add_column(
        self, table: Table, cell: str, references: tuple[str, str | None] | None = None
    ) -> None:
        # BLOB affinity: SQLite stores each value exactly as bound, and sqlite-utils keeps
        # the type when it transforms the table (docs/sqlite-format.md).
        definition = f"{quote_identifier(cell)} BLOB"
        if references is not None:
            definition += _references(references)
            table.references[cell] = references
        self._conn.execute(f"ALTER TABLE {quote_identifier(table.name)} ADD COLUMN {definition}")
        table.add_field(cell)

    def _rebuild(self, table: Table) -> None:
        """Create ``table`` again with its ``references``, keeping rows, indexes and triggers.

        SQLite's way to change a column (https://sqlite.org/lang_altertable.html):
        a new table, a copy, a drop and a rename. Columns keep their declared
        type (BLOB, or none), key, NOT NULL and default; the table stays WITHOUT
        ROWID if it was.
        """
        quoted = quote_identifier(table.name)
        kept = [
            sql
            for (sql,) in self._conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
                "AND sql IS NOT NULL",
                (table.name,),
            )
        ]
        columns = self._conn.execute(f"PRAGMA table_info({quoted})").fetchall()
        definitions = []
        for _, name, declared, not_null, default, key in columns:
            definition = quote_identifier(name)
            if declared:
                definition += f" {declared}"
            if key:
                definition += " PRIMARY KEY"
            if not_null:
                definition += " NOT NULL"
            if default is not None:
                definition += f" DEFAULT ({default})"
            if name in table.references:
                definition += _references(table.references[name])
            definitions.append(definition)
        new = quote_identifier(f"_hutch_rebuild_{table.name}")
        rowid = [] if table.without_rowid else ["rowid"]
        listed = ", ".join([*rowid, *(quote_identifier(column[1]) for column in columns)])
        options = " WITHOUT ROWID" if table.without_rowid else ""
        self._conn.execute(f"CREATE TABLE {new} ({', '.join(definitions)}){options}")
        self._conn.execute(f"INSERT INTO {new} ({listed}) SELECT {listed} FROM {quoted}")
        self._conn.execute(f"DROP TABLE {quoted}")
        # Legacy renaming leaves views and other tables' foreign keys naming the table alone.
        self._conn.execute("PRAGMA legacy_alter_table = ON")
        try:
            self._conn.execute(f"ALTER TABLE {new} RENAME TO {quoted}")
        finally:
            self._conn.execute("PRAGMA legacy_alter_table = OFF")
        for sql in kept:
            self._conn.execute(sql)
        table.root = self._root(table.name)

    def _root(self, name: str) -> int:
        root: int = self._conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()[0]
        return root

    def _log_changes(self, name: str, key: str) -> None:
        """Make every insert, update and delete of ``name`` (by anyone) add its key to the log
        (through triggers of hutch's names, dropped first where a rename left them on
        another table)."""
        for event in _EVENTS:
            trigger = quote_identifier(_trigger(event, name))
            self._conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            self._conn.execute(_log_trigger(event, name, key))


def _log_trigger(event: str, name: str, key: str) -> str:
    """The statement that makes hutch's trigger logging ``event`` on table ``name``."""
    table, named, key = quote_identifier(name), literal(name), quote_identifier(key)
    log = f"INSERT INTO {CHANGES_TABLE} (table_name, row_id)"
    body = {
        "INSERT": f"{log} VALUES ({named}, NEW.{key});",
        "UPDATE": f"{log} SELECT {named}, OLD.{key} WHERE OLD.{key} IS NOT NEW.{key}; "
        f"{log} VALUES ({named}, NEW.{key});",
        "DELETE": f"{log} VALUES ({named}, OLD.{key});",
    }[event]
    trigger = quote_identifier(_trigger(event, name))
    return f"CREATE TRIGGER {trigger} AFTER {event} ON {table} BEGIN {body} END"


def _is_hutchs(sql: object, event: str, name: str, key: str) -> bool:
    """Whether a trigger is exactly the one hutch makes (one of hutch's names may hold a
    person's writes; an older hutch's, written otherwise, counts as a person's: slower)."""
    return isinstance(sql, str) and " ".join(sql.split()) == " ".join(
        _log_trigger(event, name, key).split()
    )


_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _trigger(event: str, table: str) -> str:
    """The name of the trigger that logs ``event`` on ``table``."""
    return f"_hutch_log_{event.lower()}_{table}"


def _triggers(conn: sqlite3.Connection) -> dict[str, str]:
    """Every trigger of the file, and the name (in lower case) of the table it is on."""
    return {
        name: str(on).lower()
        for name, on in conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
        )
    }


def _logs(triggers: dict[str, str], name: str) -> bool:
    """Whether table ``name`` has the three triggers that log its changes (not only their
    names: a rename of another table may have taken those along)."""
    return all(triggers.get(_trigger(event, name)) == name.lower() for event in _EVENTS)


def _references(target: tuple[str, str | None]) -> str:
    remote, column = target
    return f" REFERENCES {quote_identifier(remote)}" + (
        f"({quote_identifier(column)})" if column else ""
    )
