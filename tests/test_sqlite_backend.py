"""The ``sqlite://`` backend: one SQLite table per collection (docs/sqlite-format.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, Child, count_in_processes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operations import operations

import hutch
from hutch.backends.sqlite import SqlitePersister
from hutch.backends.sqlite.persister import storage_error


def url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"  # sqlite:////absolute/path.db


def canonical(data: object) -> bytes:
    """JSON text that tells 1, 1.0 and True apart, with keys sorted."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def contents(db: hutch.Database) -> bytes:
    store = db.store
    tables = {table: store.get_table(table) for table in store.get_table_ids()}
    return canonical({"tables": tables, "values": store.get_values()})


def reopened_row(path: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    with hutch.open(url(path)) as db:
        db.store.set_row("t", "r", row)
    with hutch.open(url(path)) as db:
        return db.store.get_row("t", "r")


# -- URLs and capabilities ---------------------------------------------------------------------


def test_both_url_forms_open_the_sqlite_backend(tmp_path: Path, monkeypatch: Any) -> None:
    with hutch.open(url(tmp_path / "a.db")) as db:
        assert isinstance(db.backend, SqlitePersister)
        assert db.capabilities.durable
        assert db.capabilities.multi_process
        assert db.capabilities.change_feed
        db.store.set_row("t", "r", {"a": 1})
    assert (tmp_path / "a.db").is_file()
    monkeypatch.chdir(tmp_path)
    with hutch.open("sqlite:///b.db") as db:
        db.store.set_row("t", "r", {"a": 1})
    assert (tmp_path / "b.db").is_file()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite://host/x.db", "names the host"),
        ("sqlite:x.db", "not a sqlite URL"),
        ("sqlite:///x.db?mode=ro", "no query"),
        ("sqlite:///missing/x.db", "does not exist"),
    ],
)
def test_bad_urls_are_refused_clearly(
    tmp_path: Path, monkeypatch: Any, given: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open(given)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match="lock_timeout"):
        hutch.open(url(tmp_path / "a.db"), lock_timeout=-1)
    with pytest.raises(hutch.ConfigError, match="wal_size"):
        hutch.open(url(tmp_path / "a.db"), wal_size=3)


# -- exact types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        0,
        1,
        -(2**63),
        2**63 - 1,
        1.0,
        0.0,
        -0.0,
        1.5,
        1e300,
        None,
        "",
        "text",
        "1",
        "1.0",
        "true",
        "null",
        "[1, 2]",
        '{"a": 1}',
        '"quoted"',
        [],
        {},
        [1, "a", None, True, 1.0],
        {"a": {"b": [1.0, False]}},
    ],
)
def test_every_kind_of_value_round_trips_exactly(tmp_path: Path, value: Any) -> None:
    row = reopened_row(tmp_path / "a.db", {"v": value})
    assert canonical(row) == canonical({"v": value})


def test_null_and_absent_stay_distinct(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("t", "null", {"a": 1, "b": None})
        db.store.set_row("t", "absent", {"a": 1})
    with hutch.open(url(path)) as db:
        assert db.store.get_row("t", "null") == {"a": 1, "b": None}
        assert db.store.get_row("t", "absent") == {"a": 1}


def test_a_field_with_mixed_types_comes_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    rows: dict[str, dict[str, Any]] = {
        "r1": {"x": 1},
        "r2": {"x": 1.0},
        "r3": {"x": True},
        "r4": {"x": "1"},
        "r5": {"x": "[1]"},
        "r6": {"x": [1]},
        "r7": {"x": None},
        "r8": {"x": {"1": 1}},
        "r9": {"y": 0},
    }
    with hutch.open(url(path)) as db:
        for row_id, row in rows.items():
            db.store.set_row("t", row_id, row)
    with hutch.open(url(path)) as db:
        assert canonical(db.store.get_table("t")) == canonical(rows)


def test_cells_whose_names_clash_ignoring_case_are_kept(tmp_path: Path) -> None:
    row = {"name": "a", "Name": "b", "NAME": True, "ID": 3, "_hutch_meta": "m", 'q"uote': 1}
    assert canonical(reopened_row(tmp_path / "a.db", row)) == canonical(row)


_operations = operations(cells=st.sampled_from(["a", "b", "A", "c d", "é"]), row_size=4)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_random_rows_survive_reopening_exactly(
    tmp_path: Path, operations: list[tuple[Any, ...]]
) -> None:
    path = tmp_path / f"{os.urandom(6).hex()}.db"
    options: dict[str, Any] = {"collections": {"a": {"indexed": ["b"]}}}
    expected = hutch.open("memory://")
    db = hutch.open(url(path), **options)
    try:
        for operation in operations:
            name, *args = operation
            if name == "reopen":
                db.close()
                db = hutch.open(url(path), **options)
                continue
            getattr(expected.store, name)(*args)
            getattr(db.store, name)(*args)
    finally:
        db.close()
    with hutch.open(url(path)) as reopened:
        assert contents(reopened) == contents(expected)


# -- the layout, seen with ordinary SQL --------------------------------------------------------


def test_plain_columns_are_queryable_with_ordinary_sql(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("users", "u1", {"email": "ada@x.io", "age": 36, "admin": True})
        db.store.set_row("users", "u2", {"email": "bob@x.io", "age": 41, "admin": False})
        db.store.set_row("users", "u3", {"email": "cy@x.io", "tags": ["a", "b"]})
    connection = sqlite3.connect(path)
    try:
        found = connection.execute(
            "SELECT id, email FROM users WHERE age > 40 OR admin = 1 ORDER BY id"
        ).fetchall()
        assert found == [("u1", "ada@x.io"), ("u2", "bob@x.io")]
        assert connection.execute(
            "SELECT value FROM users, json_each(users.tags) WHERE users.id = 'u3'"
        ).fetchall() == [("a",), ("b",)]
        assert connection.execute(
            "SELECT typeof(email), typeof(age), typeof(admin) FROM users WHERE id = 'u1'"
        ).fetchone() == ("text", "integer", "integer")
        assert connection.execute("SELECT _hutch_meta FROM users WHERE id = 'u2'").fetchone() == (
            '{"admin":"b"}',
        )
        assert connection.execute("SELECT _hutch_meta FROM users WHERE id = 'u1'").fetchone() == (
            '{"admin":"b"}',
        )
    finally:
        connection.close()


def columns(path: Path, table: str) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
    finally:
        connection.close()


def test_new_fields_add_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("t", "r1", {"a": 1})
        assert columns(path, "t") == ["id", "_hutch_meta", "a"]
        db.store.set_row("t", "r2", {"b": 2, "a": 3})
        db.store.set_cell("t", "r1", "c", "x")
        assert columns(path, "t") == ["id", "_hutch_meta", "a", "b", "c"]
        assert db.store.get_row("t", "r1") == {"a": 1, "c": "x"}


def test_indexed_fields_get_indexes(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    collections = {"users": {"indexed": ["email", "org id"]}, "groups": {"indexed": ["slug"]}}
    with hutch.open(url(path), collections=collections) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        db.reindex()
    connection = sqlite3.connect(path)
    try:

        def indexed(table: str) -> list[list[str]]:
            names = [row[1] for row in connection.execute(f"PRAGMA index_list({table})")]
            return sorted(
                [row[2] for row in connection.execute(f'PRAGMA index_info("{name}")')]
                for name in names
                if not name.startswith("sqlite_autoindex")
            )

        assert indexed("users") == [["email"], ["org id"]]
        assert indexed("groups") == [["slug"]]
    finally:
        connection.close()
    with hutch.open(url(path), collections=collections) as db:  # opening again adds none
        assert db.store.get_row_ids("users") == ["u1"]
    assert columns(path, "groups") == ["id", "_hutch_meta", "slug"]


def test_values_and_the_format_tables(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_value("none", None)
        db.store.set_value("json", '{"a": 1}')
        db.store.set_value("list", [1.0, True])
        db.store.set_value("gone", 1)
        db.store.del_value("gone")
    with hutch.open(url(path)) as db:
        assert canonical(db.store.get_values()) == canonical(
            {"json": '{"a": 1}', "list": [1.0, True], "none": None}
        )
    connection = sqlite3.connect(path)
    try:
        assert dict(connection.execute("SELECT key, value FROM _values")) == {
            "none": "null",
            "json": '"{\\"a\\": 1}"',
            "list": "[1.0,true]",
        }
        assert dict(connection.execute("SELECT key, value FROM _hutch")) == {
            "format": "1",
            "kind": "sqlite",
        }
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


def test_collections_whose_names_clash_in_sqlite_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("users", "u", {"n": 1})
        db.store.set_row("Users", "u", {"n": 2})
        db.store.set_row("sqlite_x", "u", {"n": 3})
    with hutch.open(url(path)) as db:
        assert [db.store.get_cell(t, "u", "n") for t in ("users", "Users", "sqlite_x")] == [1, 2, 3]


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    hutch.open(url(path)).close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE _hutch SET value = '99' WHERE key = 'format'")
    connection.close()
    with pytest.raises(hutch.UnsupportedFormat, match="upgrade hutch"):
        hutch.open(url(path))


@pytest.mark.parametrize(("durability", "synchronous"), [("commit", 2), ("batch", 1), ("none", 0)])
def test_every_durability_keeps_data_and_sets_synchronous(
    tmp_path: Path, durability: str, synchronous: int
) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path), durability=durability) as db:
        backend = db.backend
        assert isinstance(backend, SqlitePersister)
        connection = backend._conn
        assert connection.execute("PRAGMA synchronous").fetchone() == (synchronous,)
        db.store.set_row("t", "r", {"a": 1.0})
    with hutch.open(url(path)) as db:
        assert canonical(db.store.get_row("t", "r")) == b'{"a":1.0}'


# -- several connections on one file -----------------------------------------------------------


@pytest.mark.usefixtures("several_opens")
def test_two_databases_on_one_file_see_each_others_commits(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path), follow=False) as a, hutch.open(url(path), follow=False) as b:
        heard: list[hutch.Changes] = []
        b.store.add_listener(heard.append, table="t")
        a.store.set_row("t", "r1", {"n": 1, "flag": True})
        a.store.set_value("count", 1)
        with b.store.transaction():  # starts from a's commits
            b.store.set_value("count", b.store.get_value("count") + 1)
        assert heard
        assert heard[0].tables == {"t": {"r1": {"n": 1, "flag": True}}}
        assert b.store.get_row("t", "r1") == {"n": 1, "flag": True}
        a.store.del_row("t", "r1")
        a.store.set_row("t", "r2", {"n": [2]})
        heard.clear()
        b.refresh()
        assert heard[0].tables == {"t": {"r1": None, "r2": {"n": [2]}}}
        assert contents(b) == contents(a)
        a.refresh()
        assert a.store.get_value("count") == 2
        heard.clear()
        b.refresh()  # nothing new: no listener call
        assert heard == []


def test_a_write_by_a_plain_sqlite_connection_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io", "admin": True})
        connection = sqlite3.connect(path)
        try:
            with connection:
                connection.execute("UPDATE users SET email = 'b@x.io' WHERE id = 'u1'")
                connection.execute("INSERT INTO users (id, email) VALUES ('u2', 'c@x.io')")
        finally:
            connection.close()
        db.refresh()
        assert db.store.get_table("users") == {
            "u1": {"email": "b@x.io", "admin": True},
            "u2": {"email": "c@x.io"},
        }


def test_a_failed_apply_rolls_everything_back(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("t", "keep", {"n": 1})
        connection = sqlite3.connect(path)
        try:
            with connection:  # a real refusal, from inside SQLite, on the second row only
                connection.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.id = 'bad' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
                )
        finally:
            connection.close()

        def write_three() -> None:
            with db.store.transaction():
                db.store.set_row("t", "good", {"n": 2, "new field": True})
                db.store.set_value("v", 1)
                db.store.set_row("t", "bad", {"n": 3})

        with pytest.raises(hutch.StorageError, match="refused by a trigger"):
            write_three()
        assert db.store.get_row_ids("t") == ["keep"]
        assert db.store.get_values() == {}
        db.store.set_row("t", "after", {"n": 4})  # the connection is usable again
    assert columns(path, "t") == ["id", "_hutch_meta", "n"]  # the new column was rolled back
    with hutch.open(url(path)) as db:
        assert sorted(db.store.get_row_ids("t")) == ["after", "keep"]
        assert db.store.get_values() == {}


def test_a_held_lock_fails_the_transaction_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path), lock_timeout=0.05) as db:
        db.store.set_row("t", "r", {"n": 1})
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(hutch.LockTimeout, match="lock_timeout"):
                db.store.set_row("t", "r", {"n": 2})
            assert db.store.get_row("t", "r") == {"n": 1}
        finally:
            other.close()
        db.store.set_row("t", "r", {"n": 3})
    with hutch.open(url(path)) as db:
        assert db.store.get_row("t", "r") == {"n": 3}


def test_a_file_that_is_not_sqlite_is_corrupt_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not a database, " * 100)
    with pytest.raises(hutch.CorruptData, match="not a SQLite database"):
        hutch.open(url(path))


def refused_write(path: Path) -> sqlite3.Error:
    """The error SQLite raises for a write through a read-only connection to a new store."""
    hutch.open(url(path)).close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.Error) as caught:
            read_only.execute("INSERT INTO _values VALUES ('k', '1')")
    finally:
        read_only.close()
    return caught.value


def test_sqlite_errors_become_hutch_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    caught = refused_write(path)
    error = storage_error(caught, "write to", path)
    assert isinstance(error, hutch.ReadOnlyStorage)
    assert str(path) in str(error)
    full = sqlite3.connect(tmp_path / "full.db")
    try:
        full.execute("PRAGMA max_page_count = 2")
        full.execute("CREATE TABLE big (x)")
        with pytest.raises(sqlite3.Error) as too_big:
            full.execute("INSERT INTO big VALUES (zeroblob(100000))")
    finally:
        full.close()
    assert isinstance(storage_error(too_big.value, "write to", path), hutch.DiskFull)


def test_increments_from_several_processes_add_up(tmp_path: Path) -> None:
    count_in_processes(tmp_path, url(tmp_path / "a.db"), 3, 30)


def test_without_sqlite_utils_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("sqlite_utils", "sqlite_utils.db"):  # as if it were not installed
        monkeypatch.setitem(sys.modules, module, None)
    for module in ("persister", "schema"):
        monkeypatch.delitem(sys.modules, f"hutch.backends.sqlite.{module}")
    with pytest.raises(hutch.ConfigError, match=r"pip install 'hutch\[sqlite\]'"):
        hutch.open(url(tmp_path / "a.db"))


def test_a_number_beyond_64_bits_written_by_hand_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with hutch.open(url(path)) as db:
        db.store.set_row("t", "r1", {"list": [1]})
        db.store.set_value("v", 1)
    huge = "123456789012345678901234"  # orjson alone would read the nearest float
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute("UPDATE t SET list = ?", (f"[{huge}]",))
        with pytest.raises(hutch.CorruptData, match=f"table 't', row id 'r1': the integer {huge}"):
            hutch.open(url(path))
        with connection:
            connection.execute("UPDATE t SET list = '[1]'")
            connection.execute("UPDATE _values SET value = ?", (f'{{"a": -{huge}}}',))
        with pytest.raises(hutch.CorruptData, match=f"key 'v': the integer -{huge}"):
            hutch.open(url(path))
    finally:
        connection.close()


# -- read-only opens ---------------------------------------------------------------------------


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder``, with its bytes. (Never while this process has a SQLite
    connection with locks on one of them: closing any descriptor of a file drops them all.)"""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def write_a_store(path: Path) -> bytes:
    """A store as a writing open leaves it, closed; its contents."""
    with hutch.open(url(path), collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io", "admin": True, "tags": ["a"]})
        db.store.set_row("users", "u2", {"email": "b@x.io", "boss": None})
        db.store.set_row("teams", "t1", {"name": "red", "size": 1.0})
        db.store.set_value("k", [1, None])
        db.store.set_value("gone", 1)
        db.store.del_row("users", "u2")
        db.store.del_value("gone")
        return contents(db)


def test_a_read_only_open_reads_everything_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "odd name%20é"  # the URI quotes it: SQLite must not decode %20
    folder.mkdir()
    path = folder / "app.db"
    written = write_a_store(path)
    before = files_in(folder)
    assert list(before) == ["app.db"]  # the writer's close removed its -wal and -shm
    given = {"users": {"indexed": ["name"]}, "posts": {"indexed": ["title"]}}
    with hutch.open(url(path), read_only=True, collections=given, durability="none") as db:
        assert db.capabilities.read_only
        assert contents(db) == written
        assert db.store.get_row("users", "u1") == {"email": "a@x.io", "admin": True, "tags": ["a"]}
        db.relationships.define("team_users", local="users", remote="teams", on="team")
        backend = db.backend
        assert isinstance(backend, SqlitePersister)
        assert backend._immutable  # without -wal and -shm, mode=ro would create them
        assert not backend.behind()
        assert backend.poll() is None
        db.refresh()
        assert files_in(folder) == before  # no -wal, no -shm, no index, no foreign key
    assert files_in(folder) == before


def test_every_write_of_a_read_only_open_raises_read_only_storage(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    write_a_store(path)
    before = files_in(tmp_path)
    with hutch.open(url(path), read_only=True) as db:
        backend = db.backend
        writes: list[Callable[[], object]] = [
            lambda: db.store.set_row("users", "u3", {"email": "c@x.io"}),
            lambda: db.store.del_row("users", "u1"),
            lambda: db.store.set_value("k", 2),
            db.store.transaction().__enter__,
            db.compact,
            db.reindex,
            # never called by the store or the database: refused all the same
            backend.begin,
            lambda: backend.apply(hutch.Changes({"users": {"u3": {"email": "c@x.io"}}})),
            backend.reindex,
            backend.compact,
        ]
        for write in writes:
            with pytest.raises(hutch.ReadOnlyStorage, match="read_only"):
                write()
        assert db.store.get_row_ids("users") == ["u1"]
    assert files_in(tmp_path) == before


def test_a_missing_file_is_refused_read_only_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match=r"does not exist.*read_only=True creates nothing"):
        hutch.open(url(tmp_path / "app.db"), read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_hutchs_tables_opens_empty_or_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    with connection:
        connection.execute("CREATE TABLE notes (text)")
    connection.close()
    before = files_in(tmp_path)
    with hutch.open(url(empty), read_only=True) as db:
        assert db.store.get_table_ids() == []
        assert db.store.get_values() == {}
    with pytest.raises(hutch.ConfigError, match=r"holds tables \(notes\) but not hutch's"):
        hutch.open(url(other), read_only=True)
    assert files_in(tmp_path) == before


def test_a_file_lacking_some_of_hutchs_tables_needs_a_writing_open_first(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    write_a_store(path)
    connection = sqlite3.connect(path)
    with connection:  # as a file of an older hutch, without the change log
        connection.execute("DROP TABLE _hutch_changes")
    connection.close()
    with pytest.raises(hutch.UnsupportedFormat, match=r"_hutch_changes.*without read_only"):
        hutch.open(url(path), read_only=True)
    hutch.open(url(path)).close()  # makes it
    with hutch.open(url(path), read_only=True) as db:
        assert db.store.get_row_ids("users") == ["u1"]


WRITER = """\
import os, sys
import hutch

with hutch.open(sys.argv[1]) as db:
    db.store.set_row("t", "first", {"n": 0})
    os.write(1, b"ready\\n")
    for line in sys.stdin:
        db.store.set_row("t", line.strip(), {"n": 1})
        os.write(1, b"wrote\\n")
"""


@contextlib.contextmanager
def writer_process(path: Path, err: Path) -> Iterator[Child]:
    """Another process with ``path`` open for writing, one row written ("first"); each line
    sent makes it write a row of that id. Killed at the end, as a crash would end it."""
    writer = Child("writer", [sys.executable, "-c", WRITER, url(path)], err)
    try:
        writer.expect("ready")
        yield writer
    finally:
        writer.end()


def wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def test_a_read_only_open_follows_another_process_that_writes(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "app.db"
    with writer_process(path, tmp_path / "writer.err") as writer:
        before = files_in(folder)  # the writer's -wal and -shm are there: mode=ro reads them
        with hutch.open(url(path), read_only=True) as db:
            assert db.store.get_table("t") == {"first": {"n": 0}}
            backend = db.backend
            assert isinstance(backend, SqlitePersister)
            assert not backend._immutable
        after = files_in(folder)
        # Every SQLite reader marks in the -shm (shared memory) which log frames it reads; the
        # database and its -wal are as they were.
        assert after.keys() == before.keys() == {"app.db", "app.db-wal", "app.db-shm"}
        assert after["app.db"] == before["app.db"]
        assert after["app.db-wal"] == before["app.db-wal"]
        with hutch.open(url(path), read_only=True) as db:
            writer.send("r1")
            writer.expect("wrote")
            db.refresh()
            assert db.store.get_row("t", "r1") == {"n": 1}
            writer.send("r2")  # the follower thread takes it in, without a refresh
            writer.expect("wrote")
            wait_for(lambda: db.store.get_row("t", "r2") is not None)


def test_a_read_only_open_follows_a_writer_that_opens_after_it(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "app.db"
    write_a_store(path)
    with hutch.open(url(path), read_only=True, follow=False) as db:
        backend = db.backend
        assert isinstance(backend, SqlitePersister)
        assert backend._immutable
        with writer_process(path, tmp_path / "writer.err") as writer:
            db.refresh()  # the writer made the -wal and -shm: opened again with mode=ro
            assert not backend._immutable
            assert db.store.get_row("t", "first") == {"n": 0}
            assert db.store.get_row("users", "u1") is not None
            writer.send("r1")
            writer.expect("wrote")
            db.refresh()
            assert db.store.get_row("t", "r1") == {"n": 1}


def live_files(tmp_path: Path) -> dict[str, bytes]:
    """The files of a database another process has open, with a commit only in its -wal (a
    copy taken while it runs), and the writer's error output kept in ``tmp_path``."""
    folder = tmp_path / "live"
    folder.mkdir()
    with writer_process(folder / "app.db", tmp_path / "writer.err"):
        files = files_in(folder)
    assert set(files) == {"app.db", "app.db-wal", "app.db-shm"}
    return files


def test_a_wal_holding_commits_without_its_shm_is_refused_read_only(tmp_path: Path) -> None:
    files = live_files(tmp_path)
    del files["app.db-shm"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in files.items():
        (copy / name).write_bytes(data)
    with pytest.raises(hutch.ReadOnlyStorage, match=r"app\.db-wal holds commits"):
        hutch.open(url(copy / "app.db"), read_only=True)
    assert files_in(copy) == files
    with hutch.open(url(copy / "app.db")) as db:  # a writing open reads them
        assert db.store.get_row("t", "first") == {"n": 0}


@contextlib.contextmanager
def read_only_file_system(files: dict[str, bytes]) -> Iterator[Path]:
    """A folder holding ``files`` on a file system of its own mounted read-only (a tmpfs),
    or a skip where mounting is not allowed."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    folder = Path(tempfile.mkdtemp(prefix="hutch-sqlite-ro-"))
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a file system here: {mounted.stderr.strip()}")
        try:
            for name, data in files.items():
                (folder / name).write_bytes(data)
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, timeout=WAIT)
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True, timeout=WAIT)
    finally:
        folder.rmdir()


@pytest.mark.parametrize("copy", ["of a closed file", "taken while a writer ran"])
def test_a_copy_on_a_read_only_file_system_opens_read_only(tmp_path: Path, copy: str) -> None:
    if copy == "of a closed file":
        write_a_store(tmp_path / "app.db")
        files = files_in(tmp_path)
    else:
        files = live_files(tmp_path)
    with read_only_file_system(files) as folder:
        with hutch.open(url(folder / "app.db"), read_only=True) as db:
            backend = db.backend
            assert isinstance(backend, SqlitePersister)
            if copy == "of a closed file":
                assert db.store.get_row_ids("users") == ["u1"]
                assert backend._immutable  # nobody can write it: nothing to follow
                assert not backend.behind()
                assert backend.poll() is None
            else:  # immutable=1 would skip the commit in the -wal: mode=ro reads it
                assert db.store.get_table("t") == {"first": {"n": 0}}
                assert not backend._immutable
        assert files_in(folder) == files


def test_a_folder_that_may_not_be_written_opens_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    path = folder / "app.db"
    write_a_store(path)
    before = files_in(folder)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        with hutch.open(url(path), read_only=True) as db:  # (root may write it all the same)
            assert db.store.get_row_ids("users") == ["u1"]
        assert files_in(folder) == before  # (as another user: tests/test_read_only.py)
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


def test_errors_of_a_read_only_connection_say_it_only_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    caught = refused_write(path)
    error = storage_error(caught, "read", path, read_only=True)
    assert isinstance(error, hutch.ReadOnlyStorage)
    assert "could not read it without writing" in str(error)
