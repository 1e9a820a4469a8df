"""``sqlite://`` tables changed by hand or by other tools (sqlite-utils, a person's SQL).

A person may query and improve the tables; whatever they change, hutch either
reads and writes every value exactly or refuses with a message that names the
table, the column and what to do (docs/sqlite-format.md, "Changing the tables").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlite_utils

import hutch
import hutch.backends.sqlite
from hutch.backends.sqlite.schema import MAX_FIELDS

PLUGINS = [hutch.backends.sqlite]


@pytest.fixture(autouse=True)
def no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "a.db"


@pytest.fixture
def sql(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the file, as another tool would hold one."""
    connection = sqlite3.connect(path, isolation_level=None)
    yield connection
    connection.close()


def open_db(path: Path, **options: Any) -> hutch.Database:
    """A database that takes others' commits in only when told (no follower thread)."""
    return hutch.open(
        f"sqlite:///{path.resolve()}", plugins=PLUGINS, **({"follow": False} | options)
    )


def canonical(data: object) -> bytes:
    """JSON text that tells 1, 1.0 and True apart."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def written(path: Path, rows: dict[str, dict[str, Any]], table: str = "t") -> None:
    with open_db(path) as db, db.store.transaction():
        for row_id, row in rows.items():
            db.store.set_row(table, row_id, row)


def rebuilt(sql: sqlite3.Connection, table: str, create: str) -> None:
    """Create ``table`` again as ``create`` says (with ``{}`` for its name), keeping its rows:
    what a person (or ``sqlite-utils transform``) does to change a column."""
    sql.execute("BEGIN")
    sql.execute(create.format(f'"{table}_new"'))
    columns = ", ".join(f'"{c[1]}"' for c in sql.execute(f'PRAGMA table_info("{table}")'))
    sql.execute(f'INSERT INTO "{table}_new" ({columns}) SELECT {columns} FROM "{table}"')
    sql.execute(f'DROP TABLE "{table}"')
    sql.execute(f'ALTER TABLE "{table}_new" RENAME TO "{table}"')
    sql.execute("COMMIT")


def made_again(sql: sqlite3.Connection, table: str, create: str) -> None:
    """Drop ``table`` and create it empty as ``create`` says (with ``{}`` for its name)."""
    sql.execute(f'DROP TABLE "{table}"')
    sql.execute(create.format(f'"{table}"'))


def transform(path: Path, **changes: Any) -> None:
    """What ``sqlite-utils transform`` does to table ``t`` (types, renames)."""
    sqlite_utils.Database(path).table("t").transform(**changes)


def refused(path: Path, *words: str, **options: Any) -> str:
    """Open ``path``: it must be refused with ``CorruptData`` naming ``words``."""
    with pytest.raises(hutch.CorruptData) as caught:
        open_db(path, **options).close()
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


# -- 1. declared types: SQLite's type affinity would change values ------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "declared"),
    [("007", int, "INTEGER"), (2.0, int, "INTEGER"), ("1e3", float, "REAL"), (5, str, "TEXT")],
)
def test_a_column_given_a_type_by_sqlite_utils_is_refused(
    path: Path, value: Any, kind: type, declared: str
) -> None:
    written(path, {"r": {"v": value}})
    transform(path, types={"v": kind})
    for read_only in (False, True):
        message = refused(path, "table 't'", "column 'v'", declared, "blob", read_only=read_only)
        assert "backup" in message  # the values there were converted already


def test_an_empty_typed_column_is_refused_before_hutch_writes_into_it(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"r": {"a": 1}})
    sql.execute("ALTER TABLE t ADD COLUMN code NUMERIC")  # "007" would be stored as 7
    refused(path, "column 'code'", "NUMERIC")


def test_typed_id_and_values_columns_are_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"r": {"a": 1}})
    with open_db(path) as db:
        db.store.set_value("k", 1.0)
    rebuilt(sql, "_values", "CREATE TABLE {} (key TEXT PRIMARY KEY, value NUMERIC)")
    refused(path, "table '_values'", "column 'value'", "NUMERIC")
    rebuilt(sql, "_values", "CREATE TABLE {} (key TEXT PRIMARY KEY, value TEXT)")
    rebuilt(sql, "t", "CREATE TABLE {} (id INT PRIMARY KEY, _hutch_meta TEXT, a)")
    refused(path, "table 't'", "column 'id'", "INT")


def test_blob_and_untyped_columns_keep_every_value_exactly(path: Path) -> None:
    rows: dict[str, dict[str, Any]] = {
        "a": {"v": "007"},
        "b": {"v": 2.0},
        "c": {"v": "1e3"},
        "d": {"v": 5},
        "e": {"v": True},
    }
    written(path, rows)
    transform(path, types={"v": bytes})  # `--type v blob`
    with open_db(path) as db:
        assert canonical(db.store.get_table("t")) == canonical(rows)
        db.store.set_row("f", "f", {"v": "08"})
    with open_db(path) as db:
        assert db.store.get_row("f", "f") == {"v": "08"}


def test_new_columns_are_declared_blob_so_that_sqlite_utils_keeps_them(path: Path) -> None:
    rows = {"a": {"v": 5, "w": "007", "x": 1.0}}
    written(path, rows)
    transform(path, rename={"x": "y"})  # touches no type
    with open_db(path) as db:
        assert canonical(db.store.get_table("t")) == canonical(
            {"a": {"v": 5, "w": "007", "y": 1.0}}
        )


def test_a_type_given_while_open_is_refused_at_the_next_read_and_write(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db:
        db.store.set_row("t", "r", {"v": "007"})
        rebuilt(sql, "t", "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, v INTEGER)")
        with pytest.raises(hutch.CorruptData, match="column 'v'"):
            db.refresh()
        with pytest.raises(hutch.CorruptData, match="column 'v'"):
            db.store.set_row("t", "s", {"v": "008"})
        assert db.store.get_row_ids("t") == ["r"]


def test_a_strict_table_is_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"r": {"n": "007"}})
    rebuilt(sql, "t", "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, n INTEGER) STRICT")
    refused(path, "table 't'", "STRICT")


# -- 2. collations: ids that differ must stay apart on disk -------------------------------------


def test_a_nocase_id_column_is_refused_for_writing(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"p1": {"n": 1}})
    rebuilt(sql, "t", "CREATE TABLE {} (id TEXT COLLATE NOCASE PRIMARY KEY, _hutch_meta TEXT, n)")
    refused(path, "table 't'", "column 'id'", "NOCASE")
    with open_db(path, read_only=True) as db:  # reading merges nothing: it may, and verify says
        assert db.store.get_table("t") == {"p1": {"n": 1}}
        (problem,) = db.backend.verify()
    assert "NOCASE" in problem


def test_a_nocase_key_of_the_values_or_the_tables_table_is_refused(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db:
        db.store.set_value("a", 1)
    rebuilt(sql, "_values", "CREATE TABLE {} (key TEXT PRIMARY KEY COLLATE NOCASE, value TEXT)")
    refused(path, "table '_values'", "column 'key'")
    rebuilt(sql, "_values", "CREATE TABLE {} (key TEXT PRIMARY KEY, value TEXT)")
    rebuilt(
        sql, "_hutch_tables", "CREATE TABLE {} (collection TEXT PRIMARY KEY COLLATE NOCASE, name)"
    )
    refused(path, "table '_hutch_tables'", "column 'collection'")


def test_a_nocase_unique_index_on_id_is_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"p1": {"n": 1}})
    sql.execute("CREATE UNIQUE INDEX t_id_nocase ON t (id COLLATE NOCASE)")
    refused(path, "table 't'", "t_id_nocase")


def test_a_collation_given_while_open_refuses_the_next_write(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db:
        db.store.set_row("t", "p1", {"n": 1})
        rebuilt(sql, "t", "CREATE TABLE {} (id TEXT COLLATE NOCASE PRIMARY KEY, _hutch_meta, n)")
        with pytest.raises(hutch.CorruptData, match="NOCASE"):
            db.store.set_row("t", "P1", {"n": 2})
        assert db.store.get_table("t") == {"p1": {"n": 1}}
    assert sql.execute("SELECT id, n FROM t").fetchall() == [("p1", 1)]


def test_a_table_without_a_key_on_id_is_read_but_not_written(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"n": 1}})
    rebuilt(sql, "t", "CREATE TABLE {} (id TEXT, _hutch_meta TEXT, n)")
    refused(path, "table 't'", "PRIMARY KEY")
    with open_db(path, read_only=True) as db:
        assert db.store.get_table("t") == {"a": {"n": 1}}
    assert sql.execute("SELECT count(*) FROM t").fetchone() == (1,)


# -- 3. triggers: what they change in a commit is taken in --------------------------------------


AUDIT = """
CREATE TRIGGER audit_orders AFTER INSERT ON orders BEGIN
    INSERT INTO audit (id, what) VALUES ('for-' || NEW.id, 'order');
    UPDATE orders SET stamp = 'seen' WHERE id = NEW.id;
    DELETE FROM drafts WHERE id = NEW.id;
    INSERT OR REPLACE INTO _values (key, value) VALUES ('orders', '1');
END
"""


@pytest.mark.usefixtures("several_opens")
def test_what_a_trigger_changes_in_a_commit_reaches_the_writer_and_others(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db, open_db(path) as other:
        db.store.set_row("audit", "first", {"what": "start"})
        db.store.set_row("orders", "o0", {"total": 1, "stamp": "old"})
        db.store.set_row("drafts", "o1", {"total": 2})
        sql.execute(AUDIT)
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)
        db.store.set_row("orders", "o1", {"total": 2})
        expected = {
            "audit": {"first": {"what": "start"}, "for-o1": {"what": "order"}},
            "orders": {"o0": {"total": 1, "stamp": "old"}, "o1": {"total": 2, "stamp": "seen"}},
        }
        # As the commit returns, before any refresh: the writer saw what its commit set off.
        assert {t: db.store.get_table(t) for t in db.store.get_table_ids()} == expected
        assert {table for changes in heard for table in changes.tables} == {
            "orders",
            "audit",
            "drafts",
        }
        for seen in (db, other):
            seen.refresh()
            tables = {t: seen.store.get_table(t) for t in seen.store.get_table_ids()}
            assert tables == expected
            assert seen.store.get_values() == {"orders": 1}
        assert {table for changes in heard for table in changes.tables} == {
            "orders",
            "audit",
            "drafts",
        }
    with open_db(path) as again:
        assert {t: again.store.get_table(t) for t in again.store.get_table_ids()} == expected


def test_a_trigger_on_the_values_is_taken_in_too(path: Path, sql: sqlite3.Connection) -> None:
    with open_db(path) as db:
        db.store.set_value("a", 1)
        sql.execute(
            "CREATE TRIGGER twice AFTER UPDATE ON _values WHEN NEW.key = 'a' BEGIN "
            "INSERT OR REPLACE INTO _values (key, value) VALUES ('b', NEW.value * 2); END"
        )
        db.store.set_value("a", 2)
        assert db.store.get_values() == {"a": 2, "b": 4}  # as the commit returns


# -- 4. _hutch_tables: one table for each collection, and only those -------------------------------


def test_two_collections_on_one_table_are_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"r": {"n": 1}}, "a")
    written(path, {"r": {"n": 2}}, "b")
    sql.execute("UPDATE _hutch_tables SET name = 'A' WHERE collection = 'b'")
    refused(path, "_hutch_tables", "'a'", "'b'", read_only=True)
    refused(path, "_hutch_tables", "'a'", "'b'")


@pytest.mark.parametrize(
    ("collection", "name"),
    [
        ("c", "_values"),
        ("c", "_hutch_changes"),
        ("c", "sqlite_master"),
        ("c", "SQLITE_sequence"),
        ("c", "../c"),
        ("c", 7),
        ("no/collection", "c"),
        (5, "c"),
    ],
)
def test_a_line_of_the_tables_table_that_hutch_would_not_write_is_refused(
    path: Path, sql: sqlite3.Connection, collection: object, name: object
) -> None:
    written(path, {"r": {"n": 1}}, "a")
    sql.execute("INSERT INTO _hutch_tables VALUES (?, ?)", (collection, name))
    refused(path, "_hutch_tables", repr(collection))


def test_a_collection_named_twice_is_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"r": {"n": 1}}, "a")
    rebuilt(sql, "_hutch_tables", "CREATE TABLE {} (collection TEXT, name TEXT)")
    sql.execute("INSERT INTO _hutch_tables VALUES ('a', 'a_2')")
    refused(path, "_hutch_tables", "'a'", "twice", read_only=True)


def test_a_new_collection_takes_no_name_a_dropped_table_still_holds(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"r": {"n": 1}}, "a")
    sql.execute("DROP TABLE a")  # the line in _hutch_tables stays: the table comes back
    written(path, {"r": {"n": 2}}, "A")
    written(path, {"r": {"n": 3}}, "a")
    with open_db(path) as db:
        assert [db.store.get_row(t, "r") for t in ("a", "A")] == [{"n": 3}, {"n": 2}]


def test_a_collection_table_renamed_by_hand_is_refused_with_both_ways_out(
    path: Path, sql: sqlite3.Connection
) -> None:
    """Renamed, the table takes hutch's triggers along: refused (read-only too) rather than
    read empty; renamed back it reads again, or with the triggers dropped it starts empty."""
    written(path, {"a": {"n": 1}})
    sql.execute("ALTER TABLE t RENAME TO t_old")
    for read_only in (True, False):
        message = refused(path, "'t'", "'t_old'", "renamed", read_only=read_only)
    sql.execute("ALTER TABLE t_old RENAME TO t")
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"n": 1}}
    sql.execute("ALTER TABLE t RENAME TO t_old")
    for trigger in message.rsplit("(", 1)[1].rstrip(")").split(", "):
        sql.execute(f"DROP TRIGGER {trigger}")
    written(path, {"b": {"n": 2}})
    with open_db(path) as db:
        assert db.store.get_table("t") == {"b": {"n": 2}}
    assert sql.execute("SELECT id, n FROM t_old").fetchall() == [("a", 1)]


def test_the_values_table_renamed_by_hand_is_refused(path: Path, sql: sqlite3.Connection) -> None:
    with open_db(path) as db:
        db.store.set_value("k", 1)
    sql.execute("ALTER TABLE _values RENAME TO old_values")
    for read_only in (True, False):
        refused(path, "'_values'", "'old_values'", "RENAME TO", read_only=read_only)
    sql.execute("ALTER TABLE old_values RENAME TO _values")
    with open_db(path) as db:
        assert db.store.get_values() == {"k": 1}


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("_hutch_tables", "name"),
        ("_hutch_tables", "collection"),
        ("_values", "value"),
        ("_hutch", "value"),
        ("_hutch_changes", "row_id"),
    ],
)
def test_a_column_of_hutchs_own_tables_renamed_is_refused(
    path: Path, sql: sqlite3.Connection, table: str, column: str
) -> None:
    written(path, {"a": {"n": 1}})
    sql.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO renamed")
    for read_only in (True, False):
        refused(path, f"table {table!r}", f"column {column!r}", "RENAME", read_only=read_only)


def test_the_change_log_dropped_while_open_is_refused_until_an_open_makes_it_again(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1})
        sql.execute("DROP TABLE _hutch_changes")
        with pytest.raises(hutch.CorruptData, match=r"'_hutch_changes' is gone.*open the"):
            db.store.set_row("t", "b", {"n": 2})
        assert db.store.get_table("t") == {"a": {"n": 1}}
    written(path, {"b": {"n": 2}})
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"n": 1}, "b": {"n": 2}}


@pytest.mark.parametrize(
    "create",
    [
        "CREATE TABLE {} (seq INTEGER PRIMARY KEY, table_name TEXT NOT NULL, row_id INTEGER)",
        "CREATE TABLE {} (seq INTEGER PRIMARY KEY, table_name NUMERIC NOT NULL, row_id)",
        "CREATE TABLE {} (seq TEXT PRIMARY KEY, table_name TEXT NOT NULL, row_id)",
        "CREATE TABLE {} (seq INTEGER, table_name TEXT NOT NULL, row_id)",
    ],
)
def test_a_change_log_retyped_by_hand_is_refused(
    path: Path, sql: sqlite3.Connection, create: str
) -> None:
    """An INTEGER ``row_id`` would log the id "007" as 7 (other connections would miss its
    changes); a ``seq`` that is no INTEGER PRIMARY KEY numbers no line."""
    written(path, {"007": {"n": 1}})
    made_again(sql, "_hutch_changes", create)
    refused(path, "table '_hutch_changes'")


# -- 5. a cap on plain columns --------------------------------------------------------------------


def field_columns(sql: sqlite3.Connection, table: str) -> list[str]:
    sql.execute("SELECT count(*) FROM sqlite_master")  # read the schema again
    names = [c[1] for c in sql.execute(f'PRAGMA table_info("{table}")')]
    return [name for name in names if name not in ("id", "_hutch_meta")]


def test_new_cell_names_make_at_most_max_fields_columns(
    path: Path, sql: sqlite3.Connection
) -> None:
    rows = {f"r{i}": {f"f{i}": i, f"g{i}": [i], "common": True} for i in range(5 * MAX_FIELDS)}
    written(path, rows)
    assert len(field_columns(sql, "t")) == MAX_FIELDS
    with open_db(path) as db:
        assert canonical(db.store.get_table("t")) == canonical(rows)
        db.store.set_row("t", "late", {"f1": "x", "new": None})  # f1 has a column, new has none
    with open_db(path, read_only=True) as db:
        assert db.store.get_row("t", "late") == {"f1": "x", "new": None}
    assert len(field_columns(sql, "t")) == MAX_FIELDS


def test_cells_without_a_column_are_queryable_with_json_extract(
    path: Path, sql: sqlite3.Connection
) -> None:
    rows = {f"r{i}": {f"f{i}": i} for i in range(MAX_FIELDS + 2)}
    written(path, rows)
    last = f"f{MAX_FIELDS + 1}"
    found = sql.execute(
        f"""SELECT id, json_extract(_hutch_meta, '$."{last}"[0]') FROM t """
        f"""WHERE json_extract(_hutch_meta, '$."{last}"[0]') IS NOT NULL"""
    ).fetchall()
    assert found == [(f"r{MAX_FIELDS + 1}", MAX_FIELDS + 1)]


def test_a_file_with_more_columns_than_the_cap_keeps_them(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"r": {"a": 1}})
    for i in range(MAX_FIELDS + 5):  # an older hutch allowed more
        sql.execute(f"ALTER TABLE t ADD COLUMN c{i}")
    sql.execute(f"UPDATE t SET c{MAX_FIELDS + 4} = 'kept'")
    with open_db(path) as db:
        assert db.store.get_row("t", "r") == {"a": 1, f"c{MAX_FIELDS + 4}": "kept"}
        db.store.set_row("t", "s", {f"c{MAX_FIELDS + 3}": 1, "z": 2})
    assert sql.execute(f"SELECT c{MAX_FIELDS + 3} FROM t WHERE id = 's'").fetchone() == (1,)
    assert "z" not in field_columns(sql, "t")
    with open_db(path) as db:
        assert db.store.get_row("t", "s") == {f"c{MAX_FIELDS + 3}": 1, "z": 2}


# -- siblings: constraints, generated columns, views, WITHOUT ROWID, renamed columns -------------


def test_a_default_given_by_hand_never_fills_a_cell_hutch_left_out(
    path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(path) as db:
        db.store.set_row("t", "old", {"n": 1})
        sql.execute("ALTER TABLE t ADD COLUMN status DEFAULT 'active'")
        db.refresh()  # every row reads 'active' now: no trigger logged that
        assert db.store.get_row("t", "old") == {"n": 1, "status": "active"}
        db.store.set_row("t", "new", {"n": 2})
        db.store.set_row("t", "old", {"n": 3})
        assert db.store.get_table("t") == {"old": {"n": 3}, "new": {"n": 2}}
    with open_db(path) as db:
        assert db.store.get_table("t") == {"old": {"n": 3}, "new": {"n": 2}}


def test_a_column_dropped_while_open_is_noticed(path: Path, sql: sqlite3.Connection) -> None:
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1, "gone": 2})
        sql.execute("ALTER TABLE t DROP COLUMN gone")
        db.refresh()
        assert db.store.get_table("t") == {"a": {"n": 1}}


def test_a_not_null_default_is_never_put_in_place_of_a_null(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"n": 1, "s": "x"}})
    rebuilt(
        sql,
        "t",
        "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, n, s NOT NULL DEFAULT 'd')",
    )
    with open_db(path) as db:
        with pytest.raises(hutch.StorageError, match=r"NOT NULL.*t\.s.*constraint"):
            db.store.set_row("t", "a", {"n": 2, "s": None})
        with pytest.raises(hutch.StorageError, match="NOT NULL"):
            db.store.set_row("t", "b", {"n": 2})
        assert db.store.get_table("t") == {"a": {"n": 1, "s": "x"}}
    assert sql.execute("SELECT id, n, s FROM t").fetchall() == [("a", 1, "x")]


def test_a_unique_index_made_by_hand_never_deletes_another_row(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"email": "x@y.z"}})
    sql.execute("CREATE UNIQUE INDEX t_email ON t (email)")
    with open_db(path) as db:
        with pytest.raises(hutch.StorageError, match="UNIQUE"):
            db.store.set_row("t", "b", {"email": "x@y.z"})
        db.store.set_row("t", "a", {"email": "x@y.z", "n": 1})  # the row itself may change
        assert db.store.get_table("t") == {"a": {"email": "x@y.z", "n": 1}}
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"email": "x@y.z", "n": 1}}


def test_a_check_constraint_refuses_the_write_and_says_what_to_do(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"n": 1}})
    rebuilt(sql, "t", "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, n CHECK (n > 0))")
    with open_db(path) as db:
        with pytest.raises(hutch.StorageError, match=r"CHECK.*drop the constraint"):
            db.store.set_row("t", "a", {"n": -1})
        assert db.store.get_row("t", "a") == {"n": 1}


@pytest.mark.parametrize(
    ("table", "create"),
    [
        (
            "t",
            "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, email BLOB UNIQUE "
            "ON CONFLICT REPLACE)",
        ),
        (
            "t",
            "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, email BLOB, "
            "UNIQUE (email) on  conflict\nignore)",
        ),
        (
            "_values",
            "CREATE TABLE {} (key TEXT PRIMARY KEY, value TEXT UNIQUE ON CONFLICT REPLACE)",
        ),
        (
            "_hutch_changes",
            "CREATE TABLE {} (seq INTEGER PRIMARY KEY, table_name TEXT NOT NULL, "
            "row_id, UNIQUE (table_name, row_id) ON CONFLICT IGNORE)",
        ),
    ],
)
def test_a_constraint_that_replaces_or_ignores_refuses_writing(
    path: Path, sql: sqlite3.Connection, table: str, create: str
) -> None:
    """SQLite resolves a conflict with such a constraint by deleting the other row (logging
    nothing) or by skipping the write, without an error: hutch writes nothing there."""
    written(path, {"a": {"email": "e@x.io"}})
    with open_db(path) as db:
        db.store.set_value("k", 1)
    if table == "_hutch_changes":  # hutch's triggers name it: SQLite renames nothing onto it
        made_again(sql, table, create)
    else:
        rebuilt(sql, table, create)
    refused(path, f"table {table!r}", "ON CONFLICT", "create the table again")
    with open_db(path, read_only=True) as db:
        assert db.store.get_table("t") == {"a": {"email": "e@x.io"}}
        assert any("ON CONFLICT" in problem for problem in db.backend.verify())


def test_a_conflict_clause_quoted_in_a_default_or_a_name_is_no_constraint(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"n": 1}})
    rebuilt(
        sql,
        "t",
        "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, n BLOB CHECK (n != "
        "'on conflict ignore'), \"on conflict replace\" BLOB /* ON CONFLICT REPLACE */)",
    )
    with open_db(path) as db:
        db.store.set_row("t", "b", {"n": 2})
        assert db.store.get_table("t") == {"a": {"n": 1}, "b": {"n": 2}}


def test_a_generated_column_is_no_cell(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"a": {"email": "ada@x.io"}})
    sql.execute("ALTER TABLE t ADD COLUMN domain AS (substr(email, instr(email, '@') + 1)) VIRTUAL")
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"email": "ada@x.io"}}
        db.store.set_row("t", "b", {"email": "bob@y.io", "domain": "mine"})
        db.store.set_partial_row("t", "a", {"n": 1})
        db.relationships.define("by_domain", local="t", remote="t", on="domain")
    with open_db(path) as db:
        assert db.store.get_table("t") == {
            "a": {"email": "ada@x.io", "n": 1},
            "b": {"email": "bob@y.io", "domain": "mine"},
        }
    assert sql.execute("SELECT id, domain FROM t ORDER BY id").fetchall() == [
        ("a", "x.io"),
        ("b", "y.io"),
    ]


def test_a_view_in_place_of_a_table_is_refused(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"a": {"n": 1}})
    sql.execute("ALTER TABLE t RENAME TO t_old")
    sql.execute("CREATE VIEW t AS SELECT * FROM t_old")
    refused(path, "table 't'", "view")
    refused(path, "table 't'", "view", read_only=True)


def test_a_without_rowid_table_is_read_written_and_linked(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"org": "o1"}}, "teams")
    written(path, {"o1": {"n": 1}}, "orgs")
    rebuilt(
        sql, "teams", "CREATE TABLE {} (id TEXT PRIMARY KEY, _hutch_meta TEXT, org) WITHOUT ROWID"
    )
    with open_db(path) as db:
        db.store.set_row("teams", "b", {"org": "o1", "flag": True})
        db.relationships.define("team_org", local="teams", remote="orgs", on="org")
        assert db.relationships.local_row_ids("team_org", "o1") == ["a", "b"]
    with open_db(path) as db:
        assert db.store.get_table("teams") == {"a": {"org": "o1"}, "b": {"org": "o1", "flag": True}}
    sql.execute("SELECT count(*) FROM sqlite_master")
    assert [(fk[3], fk[2]) for fk in sql.execute("PRAGMA foreign_key_list(teams)")] == [
        ("org", "orgs")
    ]
    assert (
        "WITHOUT ROWID"
        in sql.execute("SELECT sql FROM sqlite_master WHERE name = 'teams'").fetchone()[0]
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("ALTER TABLE t RENAME COLUMN id TO key", ("no column 'id'",)),
        ("ALTER TABLE t RENAME COLUMN _hutch_meta TO meta", ("no column '_hutch_meta'",)),
        ("ALTER TABLE t DROP COLUMN _hutch_meta", ("no column '_hutch_meta'", "backup")),
        ("ALTER TABLE t RENAME COLUMN admin TO is_admin", ("row id 'a'", "'admin'", "renamed")),
    ],
)
def test_a_column_hutch_needs_renamed_or_dropped_is_refused(
    path: Path, sql: sqlite3.Connection, change: str, words: tuple[str, ...]
) -> None:
    written(path, {"a": {"admin": True, "tags": [1]}})
    sql.execute(change)
    refused(path, "table 't'", *words)


def test_a_field_column_dropped_with_its_tags_is_refused_until_the_tags_go(
    path: Path, sql: sqlite3.Connection
) -> None:
    written(path, {"a": {"admin": True, "n": 1}})
    sql.execute("ALTER TABLE t DROP COLUMN admin")
    message = refused(path, "'admin'")
    assert "json_remove" in message
    sql.execute("UPDATE t SET _hutch_meta = json_remove(_hutch_meta, '$.admin')")
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"n": 1}}


def test_a_cell_named_rowid_survives_a_rebuild(path: Path, sql: sqlite3.Connection) -> None:
    written(path, {"a": {"rowid": "mine", "oid": 2, "_rowid_": 3.0, "org": "o1"}})
    with open_db(path) as db:
        db.relationships.define("t_org", local="t", remote="orgs", on="org")
    with open_db(path) as db:
        assert canonical(db.store.get_row("t", "a")) == canonical(
            {"rowid": "mine", "oid": 2, "_rowid_": 3.0, "org": "o1"}
        )


def test_the_fix_for_tags_of_dropped_columns_is_sql_that_runs_whatever_their_names(
    path: Path, sql: sqlite3.Connection
) -> None:
    """The statement a refusal suggests quotes the cell's name, ``'`` and ``"`` included."""
    names = ["it's", 'say "hi"', "back\\slash"]
    written(path, {"a": {**dict.fromkeys(names, True), "n": 1}})
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        sql.execute(f"ALTER TABLE t DROP COLUMN {quoted}")
    for _ in names:
        sql.execute(refused(path, "table 't'").split("`")[1])
    with open_db(path) as db:
        assert db.store.get_table("t") == {"a": {"n": 1}}
