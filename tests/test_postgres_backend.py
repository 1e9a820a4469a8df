"""``postgresql://`` against a real, throw-away PostgreSQL cluster (tests/pgcluster.py).

The parity suite as on every backend; JSON that comes back exactly (where jsonb
would not); several databases and processes that lose no increment under the
cluster-wide write lock; rows written with plain SQL reaching open databases;
``LockTimeout`` while another session holds the lock; reopening. Every test
skips, saying why, where no cluster can be started.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, LineReader, end_process
from pgcluster import Cluster
from test_parity import run_suite, skip_reasons

import hutch
from hutch.backends.postgres.schema import Layout

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install 'hutch[postgres]'"
)

#: The store's write lock as docs/postgres-format.md tells a person to take it.
TAKE_THE_LOCK = (
    "SELECT pg_advisory_xact_lock((x'68757463'::bigint << 32) | "
    "current_schema()::regnamespace::oid::bigint)"
)


def _strict(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so True, 1 and 1.0 compare unequal."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    return (type(value).__name__, value)


def _contents(db: hutch.Database) -> Any:
    tables = {table: db.store.get_table(table) for table in db.store.get_table_ids()}
    return _strict([tables, db.store.get_values()])


def _wait_until(db: hutch.Database, condition: Callable[[], bool], what: str) -> None:
    """Wait (at most ``WAIT`` seconds) until ``condition()`` holds, woken by each change the
    database takes in (its follower thread reads others' commits)."""
    heard = threading.Event()
    listener = db.store.add_listener(lambda changes: heard.set())
    try:
        deadline = time.monotonic() + WAIT
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{what}: not seen within {WAIT} s")
            heard.wait(remaining)
            heard.clear()
    finally:
        db.store.remove_listener(listener)


# -- the parity suite --------------------------------------------------------------------------


def test_the_parity_suite_passes(tmp_path: Path, pg_cluster: Cluster) -> None:
    """Each parity test opens a fresh schema (hutch.backends.postgres.testing names it)."""
    output = run_suite(
        tmp_path,
        "-p",
        "hutch.backends.postgres.testing",
        "--hutch-url",
        pg_cluster.database("parity"),
    )
    assert skip_reasons(output) == []  # durable, multi-process and -node, with a change feed


def test_a_file_store_with_a_postgres_mirror_holds_the_same_rows(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    """After each parity test, each mirror (a schema), opened on its own, is compared row for
    row with its file:// store."""
    output = run_suite(
        tmp_path,
        "-p",
        "hutch.backends.postgres.testing",
        "--hutch-url",
        f"file://{tmp_path.as_posix()}/stores",
        "--hutch-mirror",
        pg_cluster.database("mirrors"),
    )
    assert skip_reasons(output) == []


# -- JSON --------------------------------------------------------------------------------------

EXACT: list[Any] = [
    1,
    1.0,
    0,
    0.0,
    -0.0,
    2**63 - 1,
    -(2**63),
    1e300,
    -1e-300,
    5e-324,
    1.7976931348623157e308,
    0.1,
    123456789.12345679,
    True,
    False,
    None,
    "",
    "ünïcødé 🦔 \u2028 \\ \" '",
    '{"json": "in a string"}',
    [],
    {},
    [1, 1.0, [[[[None]]]]],
    {"b": 1, "a": {"nested": [1.0, -0.0, 2**62]}},
]


def test_every_json_value_comes_back_exactly_after_a_reopen(pg_url: str) -> None:
    with hutch.open(pg_url) as db:
        for n, value in enumerate(EXACT):
            db.store.set_row("cells", f"r{n}", {"v": value})
            db.store.set_value(f"k{n}", value)
        before = _contents(db)
    with hutch.open(pg_url) as again:
        assert _contents(again) == before
    with psycopg.connect(pg_url) as conn:  # the column keeps the text hutch wrote
        stored: dict[str, str] = dict(conn.execute("SELECT id, row::text FROM cells"))
    for n, value in enumerate(EXACT):
        assert stored[f"r{n}"] == orjson.dumps({"v": value}).decode()


def test_json_a_person_writes_reads_as_written(pg_url: str) -> None:
    """1.0 stays a float and 1e300 a float (jsonb would give 1 and an integer of 301
    digits), -0.0 keeps its sign, key order does not matter."""
    with hutch.open(pg_url) as db:
        db.store.set_row("cells", "seed", {"v": 1})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cells (id, row) VALUES ('hand', "
            """'{ "b" : 1.0, "a": 1E+300, "c": -0.0, "d": 10, "e": "\\u00e9" }')"""
        )
    with hutch.open(pg_url) as db:
        row = db.store.get_row("cells", "hand")
    assert row is not None
    assert _strict(row) == _strict({"a": 1e300, "b": 1.0, "c": -0.0, "d": 10, "e": "é"})
    assert str(row["c"]) == "-0.0"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "not a JSON object"),
        ('{"n": 18446744073709551616}', "does not fit in 64 bits"),
        ('{"id": "x"}', "'id'"),
    ],
)
def test_a_row_hutch_cannot_read_is_corrupt_data_naming_it(
    pg_url: str, text: str, problem: str
) -> None:
    with hutch.open(pg_url) as db:
        db.store.set_row("cells", "seed", {"v": 1})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO cells (id, row) VALUES ('bad', %s::json)", (text,))
    with pytest.raises(hutch.CorruptData, match=problem) as caught:
        hutch.open(pg_url)
    assert "table 'cells', row id 'bad'" in str(caught.value)
    assert "***" in str(caught.value)  # the URL, its password hidden


def test_a_column_made_jsonb_is_refused(pg_url: str) -> None:
    with hutch.open(pg_url) as db:
        db.store.set_row("cells", "r", {"v": 1.0})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE cells ALTER COLUMN row TYPE jsonb")
    with pytest.raises(hutch.CorruptData, match=r"column 'row' is of type jsonb.*json"):
        hutch.open(pg_url)


# -- several databases, several processes ------------------------------------------------------


def _increment(db: hutch.Database, times: int) -> None:
    for _ in range(times):
        with db.store.transaction():
            db.store.set_value("n", (db.store.get_value("n") or 0) + 1)
            count = db.store.get_cell("counters", "c", "n", 0)
            db.store.set_cell("counters", "c", "n", count + 1)


def test_two_databases_on_one_url_lose_no_increment(pg_url: str, several_opens: None) -> None:
    databases = [hutch.open(pg_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(_increment, db, 60) for db in databases]
            for future in done:
                future.result(timeout=WAIT)
        for db in databases:
            db.refresh()
            assert db.store.get_value("n") == 120
            assert db.store.get_row("counters", "c") == {"n": 120}
    finally:
        for db in databases:
            db.close()


CHILD = """
import sys
import hutch

url, times = sys.argv[1], int(sys.argv[2])
with hutch.open(url) as db:
    print("open", flush=True)
    sys.stdin.readline()  # every child open before any writes
    for _ in range(times):
        with db.store.transaction():
            db.store.set_value("n", (db.store.get_value("n") or 0) + 1)
print("done", flush=True)
"""


def test_processes_on_one_url_lose_no_increment(pg_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, pg_url, "50"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert LineReader(child.stdout).readline() == "open"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
        for child in children:
            out, _ = child.communicate(timeout=WAIT)
            assert child.returncode == 0
            assert out == b"done\n"
    finally:
        for child in children:
            end_process(child)
    with hutch.open(pg_url) as db:
        assert db.store.get_value("n") == 150


# -- writes by other SQL clients ---------------------------------------------------------------


def test_rows_changed_with_plain_sql_reach_an_open_database(pg_url: str) -> None:
    with hutch.open(pg_url) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        db.store.set_value("k", 1)
        with psycopg.connect(pg_url, autocommit=True) as sql:
            sql.execute("""UPDATE users SET row = '{"email": "b@x.io"}' WHERE id = 'u1'""")
            _wait_until(db, lambda: db.store.get_cell("users", "u1", "email") == "b@x.io", "update")
            sql.execute("""INSERT INTO users (id, row) VALUES ('u2', '{"n": 2.0}')""")
            _wait_until(db, lambda: db.store.get_row("users", "u2") == {"n": 2.0}, "insert")
            sql.execute("UPDATE users SET id = 'u3' WHERE id = 'u2'")
            _wait_until(db, lambda: db.store.get_row_ids("users") == ["u1", "u3"], "new id")
            sql.execute("DELETE FROM users WHERE id = 'u1'")
            _wait_until(db, lambda: db.store.get_row_ids("users") == ["u3"], "delete")
            sql.execute("""UPDATE _hutch_values SET value = '"by hand"' WHERE id = 'k'""")
            _wait_until(db, lambda: db.store.get_value("k") == "by hand", "a value")
            sql.execute("TRUNCATE users")
            _wait_until(db, lambda: not db.store.has_table("users"), "truncate")
        db.store.set_row("users", "u4", {"n": 4})  # hutch writes on after all of it
    with hutch.open(pg_url) as again:
        assert again.store.get_table("users") == {"u4": {"n": 4}}
        assert again.store.get_values() == {"k": "by hand"}


def test_a_write_takes_in_what_was_committed_with_sql_first(pg_url: str) -> None:
    with hutch.open(pg_url, follow=False) as db:
        db.store.set_row("counters", "c", {"n": 1})
        with psycopg.connect(pg_url, autocommit=True) as sql:
            sql.execute("""UPDATE counters SET row = '{"n": 10}' WHERE id = 'c'""")
        with db.store.transaction():  # the write lock, then others' commits, then the write
            db.store.set_cell("counters", "c", "n", db.store.get_cell("counters", "c", "n") + 1)
    with psycopg.connect(pg_url) as sql:
        assert sql.execute("SELECT row::text FROM counters").fetchone() == ('{"n":11}',)


REFUSE = """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF NEW.row->>'n' = '13' THEN RAISE EXCEPTION 'no thirteen here'; END IF;
    IF NEW.row->>'n' = '0' THEN RETURN NULL; END IF;  -- skipped, without an error
    RETURN NEW;
END $$"""
AUDIT = """CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO audit (id, row) VALUES ('of-' || NEW.id, json_build_object('n', NEW.row->'n'))
        ON CONFLICT (id) DO UPDATE SET row = excluded.row;
    RETURN NULL;
END $$"""


def test_what_a_persons_triggers_do_to_a_commit(pg_url: str) -> None:
    """Refused or skipped, the transaction fails and memory rolls back; a row written beside
    hutch's reaches memory and the listeners with the commit."""
    with hutch.open(pg_url) as db:
        db.store.set_row("users", "u1", {"n": 1})
        db.store.set_row("audit", "a0", {"n": 0})
        with psycopg.connect(pg_url, autocommit=True) as sql:
            for statement in (REFUSE, AUDIT):
                sql.execute(statement)
            for name, when in (("refuse", "BEFORE"), ("audit", "AFTER")):
                sql.execute(
                    f"CREATE TRIGGER {name} {when} INSERT OR UPDATE ON users FOR EACH ROW "
                    f"EXECUTE FUNCTION {name}()"
                )
        with pytest.raises(hutch.StorageError, match="no thirteen here"):
            db.store.set_cell("users", "u1", "n", 13)
        with pytest.raises(
            hutch.StorageError, match=r"wrote or deleted 0 of 1 row\(s\) without an error"
        ):
            db.store.set_cell("users", "u1", "n", 0)
        assert db.store.get_table("users") == {"u1": {"n": 1}}
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)
        db.store.set_cell("users", "u1", "n", 2)
        assert db.store.get_table("audit") == {"a0": {"n": 0}, "of-u1": {"n": 2}}
        assert [changes.tables for changes in heard] == [
            {"users": {"u1": {"n": 2}}},
            {"audit": {"of-u1": {"n": 2}}},
        ]
    with hutch.open(pg_url) as again:
        assert again.store.get_table("audit") == {"a0": {"n": 0}, "of-u1": {"n": 2}}


STAMP = """CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    NEW.row := (NEW.row::jsonb || '{"stamped": true}')::json;
    RETURN NEW;
END $$"""
TOUCH = """CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF NEW.row->>'touched' IS NULL THEN
        UPDATE notes SET row = (row::jsonb || '{"touched": 1}')::json WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$"""
KEEP = """CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    RETURN NULL;
END $$"""


def test_a_persons_triggers_that_change_or_keep_hutchs_own_rows(pg_url: str) -> None:
    """A row stored otherwise than hutch sent it (a BEFORE trigger that edits it, an AFTER
    trigger that updates it again) reaches the writing node's memory with the commit, as
    every other node reads it; a delete a trigger skips fails, and memory keeps the row."""
    with hutch.open(pg_url) as db, psycopg.connect(pg_url, autocommit=True) as sql:
        db.store.set_row("users", "u0", {"n": 0})
        db.store.set_row("notes", "x0", {"n": 0})
        for statement in (STAMP, TOUCH, KEEP):
            sql.execute(statement)
        sql.execute(
            "CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON users "
            "FOR EACH ROW EXECUTE FUNCTION stamp()"
        )
        sql.execute(
            "CREATE TRIGGER touch AFTER INSERT OR UPDATE ON notes "
            "FOR EACH ROW EXECUTE FUNCTION touch()"
        )
        sql.execute(
            "CREATE TRIGGER keep BEFORE DELETE ON notes FOR EACH ROW EXECUTE FUNCTION keep()"
        )
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)

        db.store.set_row("users", "u1", {"n": 1})
        assert db.store.get_row("users", "u1") == {"n": 1, "stamped": True}
        db.store.set_row("notes", "x1", {"n": 1})
        assert db.store.get_row("notes", "x1") == {"n": 1, "touched": 1}
        assert [changes.tables for changes in heard] == [
            {"users": {"u1": {"n": 1}}},
            {"users": {"u1": {"n": 1, "stamped": True}}},
            {"notes": {"x1": {"n": 1}}},
            {"notes": {"x1": {"n": 1, "touched": 1}}},
        ]
        with pytest.raises(hutch.StorageError, match=r"wrote or deleted 0 of 1 row\(s\)"):
            db.store.del_row("notes", "x1")
        assert db.store.get_row("notes", "x1") == {"n": 1, "touched": 1}
        mine = {name: db.store.get_table(name) for name in ("users", "notes")}
    with hutch.open(pg_url) as again:
        assert {name: again.store.get_table(name) for name in ("users", "notes")} == mine


# -- the write lock ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "holding",
    [
        TAKE_THE_LOCK,  # as the docs say
        """UPDATE users SET row = '{"n": 0}' WHERE id = 'u1'""",  # a trigger of hutch's takes it
    ],
    ids=["advisory-lock", "sql-update"],
)
def test_lock_timeout_while_another_session_holds_the_lock(pg_url: str, holding: str) -> None:
    with hutch.open(pg_url, lock_timeout=0.5) as db:
        db.store.set_row("users", "u1", {"n": 1})
        with psycopg.connect(pg_url, autocommit=True, application_name="a migration") as other:
            other.execute("BEGIN")
            other.execute(holding)
            with pytest.raises(hutch.LockTimeout) as caught:
                db.store.set_row("users", "u1", {"n": 2})
            message = str(caught.value)
            assert f"process {other.info.backend_pid} (application 'a migration'" in message
            assert "lock_timeout" in message
            assert "***@" in message
            assert db.store.get_row("users", "u1") == {"n": 1}  # memory rolled back
            other.execute("COMMIT")
        db.store.set_cell("users", "u1", "m", 3)  # the lock is free: the write goes through
        assert db.store.get_row("users", "u1") == {"n": 0 if "UPDATE" in holding else 1, "m": 3}


# -- opening, reopening, errors ----------------------------------------------------------------


def test_reopening_keeps_everything_and_adds_no_second_trigger(pg_url: str) -> None:
    long = "a" * 64  # longer than PostgreSQL's names: its table's name is cut and hashed
    with hutch.open(pg_url) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io", "tags": ["x"]})
        db.store.set_row("users", "gone", {"email": "b@x.io"})
        db.store.set_row(long, "r", {"n": 1})
        db.store.set_value("k", {"a": [1.5]})
        db.store.set_value("gone", 1)
        db.store.del_row("users", "gone")
        db.store.del_value("gone")
        before = _contents(db)
    for _ in range(2):
        with hutch.open(pg_url) as again:
            assert _contents(again) == before
    with psycopg.connect(pg_url) as sql:
        triggers = sql.execute(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal "
            "GROUP BY c.relname"
        ).fetchall()
    hutchs = len(Layout("any", 1).triggers("any", "any"))  # the triggers hutch makes
    assert sorted(count for _, count in triggers) == [hutchs] * 3


def test_a_read_only_open_writes_nothing(pg_url: str) -> None:
    with hutch.open(pg_url, read_only=True) as db:  # an empty schema: an empty store
        assert db.store.get_table_ids() == []
    with psycopg.connect(pg_url) as sql:
        assert sql.execute("SELECT count(*) FROM pg_class WHERE relnamespace = "
                           "current_schema()::regnamespace").fetchone() == (0,)  # fmt: skip
    with hutch.open(pg_url) as db:
        db.store.set_row("users", "u1", {"n": 1})
    with hutch.open(pg_url, read_only=True) as db:
        assert db.store.get_row("users", "u1") == {"n": 1}
        with pytest.raises(hutch.ReadOnlyStorage):
            db.store.set_row("users", "u1", {"n": 2})


def test_the_postgres_scheme_is_an_alias(pg_url: str) -> None:
    with hutch.open(pg_url.replace("postgresql://", "postgres://", 1)) as db:
        db.store.set_row("users", "u1", {"n": 1})
    with hutch.open(pg_url) as db:
        assert db.store.get_row("users", "u1") == {"n": 1}


def test_a_lost_connection_fails_the_call_in_flight_and_the_next_connects_again(
    pg_url: str,
) -> None:
    """The server ends hutch's session inside a transaction: its commit fails and memory
    rolls back; ended between transactions, the next one connects again and goes through."""
    with (
        hutch.open(pg_url, follow=False) as db,
        psycopg.connect(pg_url, autocommit=True) as sql,
    ):

        def end_hutchs_session() -> None:
            ended = sql.execute(
                "SELECT count(pg_terminate_backend(pid, 60000)) FROM pg_stat_activity "
                "WHERE application_name = 'hutch' AND datname = current_database()"
            ).fetchone()
            assert ended == (1,)

        def write_as_the_session_ends() -> None:
            with db.store.transaction():
                db.store.set_row("users", "u1", {"n": 2})
                end_hutchs_session()

        db.store.set_row("users", "u1", {"n": 1})
        with pytest.raises(hutch.StorageError, match="the connection to the server was lost"):
            write_as_the_session_ends()
        assert db.store.get_row("users", "u1") == {"n": 1}
        db.store.set_row("users", "u1", {"n": 3})
        end_hutchs_session()
        db.store.set_row("users", "u1", {"n": 4})
    with hutch.open(pg_url) as again:
        assert again.store.get_row("users", "u1") == {"n": 4}


def test_a_wrong_password_is_a_storage_error_that_hides_it(pg_cluster: Cluster) -> None:
    url = pg_cluster.url().replace(pg_cluster.password, "not-the-password")
    with pytest.raises(hutch.StoragePermissionError) as caught:
        hutch.open(url)
    message = str(caught.value)
    assert "password authentication failed" in message
    assert "not-the-password" not in message
    assert "hutch:***@127.0.0.1" in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pw@s3cret@127.0.0.1:1/db",  # libpq ends the password at the first @
        "postgresql://app:pw/s3cret@127.0.0.1:1/db",  # and at a /
        "postgresql://app:s3cret@[::1/db",  # no URL at all
        "postgresql://app:s3cret%C3@127.0.0.1:1/db",  # an escape that is not UTF-8
    ],
)
def test_no_piece_of_a_password_libpq_misreads_is_shown(url: str) -> None:
    with pytest.raises(hutch.HutchError) as caught:
        hutch.open(url)
    assert "cret" not in str(caught.value)


def test_a_server_that_is_not_there_is_an_error_not_a_hang(pg_cluster: Cluster) -> None:
    url = pg_cluster.url().replace(f":{pg_cluster.port}/", ":1/") + "?connect_timeout=5"
    with pytest.raises(hutch.StorageError, match="could not be reached within connect_timeout"):
        hutch.open(url)


def test_a_schema_that_does_not_exist_is_refused(pg_cluster: Cluster) -> None:
    url = pg_cluster.url() + "?options=-csearch_path%3Dnowhere"
    with pytest.raises(hutch.ConfigError, match=r"search_path \(nowhere\).*CREATE SCHEMA"):
        hutch.open(url)


def test_a_schema_whose_name_holds_a_percent_sign_is_refused(pg_cluster: Cluster) -> None:
    with psycopg.connect(pg_cluster.url(), autocommit=True) as sql:
        sql.execute('CREATE SCHEMA IF NOT EXISTS "50%off"')
    url = pg_cluster.url() + "?options=-csearch_path%3D50%25off"
    with pytest.raises(hutch.ConfigError, match=r"holds '%' \('50%off'\).*CREATE SCHEMA"):
        hutch.open(url)


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # an import of it fails
    monkeypatch.delitem(sys.modules, "hutch.backends.postgres.persister", raising=False)
    with pytest.raises(hutch.ConfigError, match=r"pip install 'hutch\[postgres\]'") as caught:
        hutch.open("postgresql://user:secret@localhost/app")
    assert "secret" not in str(caught.value)
