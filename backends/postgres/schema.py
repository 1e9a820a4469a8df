"""The tables, functions and triggers of a ``postgresql://`` store (docs/postgres-format.md).

A store is one PostgreSQL schema (the first one on the URL's ``search_path``
that exists). Everything in it is named here and written as SQL here: the
persister only runs it. Every name is written schema-qualified, so a session
whose ``search_path`` differs (a person's ``psql``, hutch's own with a second
schema on the path) writes the same tables.

Every table that holds rows (a collection's, and the keyed values') has hutch's
triggers: one takes the store's write lock before a statement writes, one
numbers each written row from the store's sequence, and the last ones append a
line to the change log (and ``NOTIFY``) for every row written, by hutch or by
anyone else. The lock comes first, so the numbers are handed out in commit
order (docs/postgres-format.md, "The write lock").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from hutch import CorruptData, InvalidId, UnsupportedFormat
from hutch.ids import check_table_id

FORMAT_VERSION = 1
KIND = "postgresql"
#: Format version and kind: ``key text PRIMARY KEY, value text``.
META_TABLE = "_hutch"
#: Which table holds which collection: ``collection text PRIMARY KEY, table_name text UNIQUE``.
COLLECTIONS_TABLE = "_hutch_collections"
#: Keyed values: ``id text PRIMARY KEY, value json, seq bigint``.
VALUES_TABLE = "_hutch_values"
#: The change log: ``seq bigint PRIMARY KEY, collection text, row_id text, at timestamptz``.
CHANGES_TABLE = "_hutch_changes"
#: Numbers every written row and log line, in commit order (handed out under the lock).
SEQUENCE = "_hutch_seq"
#: What the change log's ``collection`` says for a keyed value (no collection id starts with _).
VALUES = "_values"
#: The high 32 bits of the store's advisory lock key ("hutc"); the low 32 are the schema's oid.
LOCK_CLASS = 0x68757463
#: PostgreSQL's longest identifier, in bytes (longer ones are cut short without an error).
MAX_NAME = 63
#: What every table of rows holds: its key, its JSON, and the number of its last write.
ROW_COLUMNS = {"id": "text", "row": "json", "seq": "bigint"}
VALUE_COLUMNS = {"id": "text", "value": "json", "seq": "bigint"}


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a SQL string literal, read alike whatever ``standard_conforming_strings``
    says: ``E'...'``, its backslashes doubled, where it holds one (JSON's escapes do)."""
    quoted = text.replace("'", "''")
    if "\\" in text:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


class Layout:
    """The names and the SQL of one store: the schema ``schema``, whose oid is ``oid``."""

    def __init__(self, schema: str, oid: int) -> None:
        self.schema = schema
        self.oid = oid
        #: The key of the store's write lock, ``pg_advisory_xact_lock(key)``: hutch's class
        #: and the schema's oid, so two stores of one database never share it.
        self.lock_key = (LOCK_CLASS << 32) | oid
        #: The channel every commit notifies, with its last sequence number as payload.
        self.channel = f"hutch_{oid}"
        self.meta = self.qualified(META_TABLE)
        self.collections = self.qualified(COLLECTIONS_TABLE)
        self.values = self.qualified(VALUES_TABLE)
        self.changes = self.qualified(CHANGES_TABLE)
        self.sequence = self.qualified(SEQUENCE)
        #: What a commit's upsert calls with how many rows it wrote (see :meth:`functions`).
        self.written = self.qualified("_hutch_written")

    def qualified(self, name: str) -> str:
        """A table (or other object) of the store's schema, as SQL names it."""
        return f"{ident(self.schema)}.{ident(name)}"

    # -- making the store ----------------------------------------------------------------------

    def create(self) -> list[str]:
        """The statements that make hutch's own tables where they are missing."""
        return [
            f"CREATE SEQUENCE IF NOT EXISTS {self.sequence}",
            f"CREATE TABLE IF NOT EXISTS {self.meta} (key text PRIMARY KEY, value text NOT NULL)",
            f"INSERT INTO {self.meta} (key, value) VALUES ('format', '{FORMAT_VERSION}'), "
            f"('kind', '{KIND}') ON CONFLICT (key) DO NOTHING",
            f"CREATE TABLE IF NOT EXISTS {self.collections} "
            "(collection text PRIMARY KEY, table_name text NOT NULL UNIQUE)",
            f"CREATE TABLE IF NOT EXISTS {self.changes} (seq bigint PRIMARY KEY, "
            "collection text NOT NULL, row_id text, at timestamptz NOT NULL DEFAULT now())",
            f"CREATE TABLE IF NOT EXISTS {self.values} "
            "(id text PRIMARY KEY, value json NOT NULL, seq bigint NOT NULL)",
        ]

    def create_table(self, name: str) -> str:
        """The statement that makes a collection's table (its triggers: :meth:`triggers`)."""
        return (
            f"CREATE TABLE {self.qualified(name)} "
            "(id text PRIMARY KEY, row json NOT NULL, seq bigint NOT NULL)"
        )

    def functions(self) -> dict[str, str]:
        """hutch's functions, by name: the body each must have (``prosrc``). The triggers call
        all but ``_hutch_written``, which fails a commit whose upsert or delete PostgreSQL cut
        short without an error (a person's ``BEFORE`` trigger that returns NULL for a row, a
        row deleted while hutch's triggers were off): memory,
        which holds the write, would part from the table. Checked in the statement, it fails
        the COMMIT sent with it (one round trip)."""
        sequence = literal(self.sequence)
        log = f"INSERT INTO {self.changes} (seq, collection, row_id)"
        return {
            "_hutch_lock": f"""
BEGIN
    PERFORM pg_advisory_xact_lock({self.lock_key});
    RETURN NULL;
END
""",
            "_hutch_number": f"""
BEGIN
    NEW.seq := nextval({sequence});
    RETURN NEW;
END
""",
            "_hutch_log": f"""
DECLARE
    last bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        WITH logged AS ({log} SELECT nextval({sequence}), TG_ARGV[0], id FROM hutch_old
            RETURNING seq) SELECT max(seq) INTO last FROM logged;
    ELSIF TG_OP = 'TRUNCATE' THEN
        {log} VALUES (nextval({sequence}), TG_ARGV[0], NULL) RETURNING seq INTO last;
    ELSE
        WITH logged AS ({log} SELECT seq, TG_ARGV[0], id FROM hutch_new
            RETURNING seq) SELECT max(seq) INTO last FROM logged;
        IF TG_OP = 'UPDATE' THEN  -- an id changed by hand: its old row is gone
            WITH logged AS ({log} SELECT nextval({sequence}), TG_ARGV[0], id FROM hutch_old
                WHERE id NOT IN (SELECT id FROM hutch_new)
                RETURNING seq) SELECT greatest(last, max(seq)) INTO last FROM logged;
        END IF;
    END IF;
    IF last IS NOT NULL THEN  -- (a statement that wrote no row logs nothing)
        PERFORM pg_notify({literal(self.channel)}, last::text);
    END IF;
    RETURN NULL;
END
""",
            "_hutch_written": """
BEGIN
    IF written <> expected THEN
        RAISE EXCEPTION 'table %: PostgreSQL wrote or deleted % of % row(s) without an error: '
            'a trigger of the table (not hutch''s) returns NULL for the others, or rows were '
            'deleted with hutch''s triggers off, so the table would not hold what hutch holds. '
            'The transaction was rolled back and nothing was written: change or drop the '
            'trigger, or write with its triggers on',
            quote_literal(tbl), written, expected;
    END IF;
    RETURN written;
END
""",
        }

    def create_function(self, name: str, body: str) -> str:
        tag = "$hutch$"
        while tag in body:  # (a schema named so)
            tag = tag[:-1] + "_$"
        signature = _SIGNATURES.get(name, "() RETURNS trigger")
        return (
            f"CREATE OR REPLACE FUNCTION {self.qualified(name)}{signature} "
            f"LANGUAGE plpgsql AS {tag}{body}{tag}"
        )

    def triggers(self, table: str, collection: str) -> dict[str, str]:
        """The statements that make hutch's triggers on ``table`` (holding ``collection``, or
        the keyed values for :data:`VALUES`), by trigger name.

        The lock is taken before a statement touches a row (a row lock taken first
        could deadlock with a writer holding the store's lock); each row then gets
        its number, and the statement's rows are logged once it is done.
        """
        on = self.qualified(table)
        argument = literal(collection)
        log = f"EXECUTE FUNCTION {self.qualified('_hutch_log')}({argument})"
        return {
            "_hutch_lock": f"CREATE OR REPLACE TRIGGER _hutch_lock BEFORE INSERT OR UPDATE OR "
            f"DELETE OR TRUNCATE ON {on} FOR EACH STATEMENT EXECUTE FUNCTION "
            f"{self.qualified('_hutch_lock')}()",
            "_hutch_number": f"CREATE OR REPLACE TRIGGER _hutch_number BEFORE INSERT OR UPDATE "
            f"ON {on} FOR EACH ROW EXECUTE FUNCTION {self.qualified('_hutch_number')}()",
            "_hutch_log_insert": f"CREATE OR REPLACE TRIGGER _hutch_log_insert AFTER INSERT ON "
            f"{on} REFERENCING NEW TABLE AS hutch_new FOR EACH STATEMENT {log}",
            "_hutch_log_update": f"CREATE OR REPLACE TRIGGER _hutch_log_update AFTER UPDATE ON "
            f"{on} REFERENCING OLD TABLE AS hutch_old NEW TABLE AS hutch_new "
            f"FOR EACH STATEMENT {log}",
            "_hutch_log_delete": f"CREATE OR REPLACE TRIGGER _hutch_log_delete AFTER DELETE ON "
            f"{on} REFERENCING OLD TABLE AS hutch_old FOR EACH STATEMENT {log}",
            "_hutch_log_truncate": f"CREATE OR REPLACE TRIGGER _hutch_log_truncate AFTER "
            f"TRUNCATE ON {on} FOR EACH STATEMENT {log}",
        }

    # -- reading the catalog ---------------------------------------------------------------------

    def columns_query(self) -> str:
        """Every column of every table of the schema: ``(table, column, type)``."""
        return (
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            f"WHERE c.relnamespace = {self.oid} AND c.relkind IN ('r', 'p') "
            "AND a.attnum > 0 AND NOT a.attisdropped"
        )

    def names_query(self) -> str:
        """The name of every relation of the schema (tables, indexes, sequences, views...)."""
        return f"SELECT relname FROM pg_class WHERE relnamespace = {self.oid}"

    def functions_query(self) -> str:
        return (
            f"SELECT proname, prosrc FROM pg_proc WHERE pronamespace = {self.oid} "
            "AND proname LIKE '\\_hutch\\_%'"
        )

    def triggers_query(self) -> str:
        """hutch's triggers that are there and fire: ``(table, trigger)``."""
        return (
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            f"WHERE c.relnamespace = {self.oid} AND NOT t.tgisinternal AND t.tgenabled = 'O' "
            "AND t.tgname LIKE '\\_hutch\\_%'"
        )


#: The arguments and result of the functions that are not trigger functions.
_SIGNATURES = {"_hutch_written": "(tbl text, expected bigint, written bigint) RETURNS bigint"}


def table_name(collection: str, taken: Iterable[str]) -> str:
    """The name of a new collection's table: the collection's own where it is free and fits
    PostgreSQL's 63 bytes, else cut short with a hash and numbered until it is free."""
    base = collection
    if len(base) > MAX_NAME:
        base = f"{collection[: MAX_NAME - 9]}_{hashlib.sha1(collection.encode()).hexdigest()[:8]}"
    used = set(taken)
    name, number = base, 1
    while name in used:
        number += 1
        suffix = f"_{number}"
        name = base[: MAX_NAME - len(suffix)] + suffix
    return name


def check_format(stored: Mapping[str, str], where: str) -> None:
    """Raise unless ``_hutch`` says a postgresql store of a format this hutch reads."""
    kind = stored.get("kind", KIND)
    if kind != KIND:
        raise CorruptData(
            f"{where}: table {META_TABLE} says this schema holds a {kind} store, not a "
            f"{KIND} one; open it with that backend, or give hutch a schema of its own"
        )
    text = stored.get("format")
    if text is None or not text.isdigit():
        raise CorruptData(
            f"{where}: the format in table {META_TABLE} is {text!r}, not a number; put "
            f"{FORMAT_VERSION!r} back (UPDATE {META_TABLE} SET value = '{FORMAT_VERSION}' "
            "WHERE key = 'format')"
        )
    if int(text) > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"{where} says format {text}, newer than the {FORMAT_VERSION} this hutch reads; "
            "upgrade hutch to open it"
        )


def check_collections(
    mapping: Iterable[tuple[str, str]],
    columns: Mapping[str, Mapping[str, str]],
    where: str,
) -> dict[str, str]:
    """The lines of ``_hutch_collections`` (``collection -> table``), each checked: a valid
    collection id whose table is there, with the columns hutch reads as it wrote them."""
    checked: dict[str, str] = {}
    for collection, name in mapping:
        line = f"{where}, table {COLLECTIONS_TABLE}: the line ({collection!r}, {name!r})"
        try:
            check_table_id(collection)
        except InvalidId:
            raise CorruptData(
                f"{line} names no collection (an id is a letter, then up to 63 letters, digits "
                "or _): fix or delete the line"
            ) from None
        if name not in columns:
            raise CorruptData(
                f"{line} names a table that is not there (dropped or renamed by hand?): rename "
                "it back or restore it from a backup, or delete the line (the collection then "
                "starts empty)"
            )
        check_columns(columns[name], ROW_COLUMNS, f"{where}, table {name!r}")
        checked[collection] = name
    return checked


def check_columns(found: Mapping[str, str], wanted: Mapping[str, str], where: str) -> None:
    """Raise :class:`~hutch.CorruptData` unless each of ``wanted``'s columns has its type.

    ``json`` keeps the text as written, so ``1.0``, ``1e300`` and ``-0.0`` read back
    as written; ``jsonb`` would normalise them (and ``text`` would take anything).
    """
    for column, kind in wanted.items():
        has = found.get(column)
        if has == kind:
            continue
        what = "is missing" if has is None else f"is of type {has}"
        raise CorruptData(
            f"{where}: the column {column!r} {what}, where hutch keeps the type {kind} (changed "
            f"by hand?); give it back (ALTER TABLE ... ALTER COLUMN {column} TYPE {kind}, or "
            "restore the table from a backup). For queries on jsonb, add a generated column "
            "or an expression index beside it"
        )
