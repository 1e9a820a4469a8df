"""``sqlite://``: foreign keys for relationships, and the change log that poll reads."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operations import operations

import hutch
import hutch.backends.file
import hutch.backends.sqlite
from hutch import Changes
from hutch.backends.sqlite import SqlitePersister
from hutch.backends.sqlite import persister as sqlite_persister

PLUGINS = [hutch.backends.sqlite, hutch.backends.file]


@pytest.fixture(autouse=True)
def no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")


def url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def open_db(path: Path, **options: Any) -> hutch.Database:
    """A database that takes others' commits in only when told (no follower thread)."""
    return hutch.open(url(path), plugins=PLUGINS, **({"follow": False} | options))


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to ``a.db``, as another tool would hold one."""
    connection = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    yield connection
    connection.close()


def fresh(sql: sqlite3.Connection) -> sqlite3.Connection:
    """``sql``, having read the schema again (a PRAGMA alone may see a stale one)."""
    sql.execute("SELECT count(*) FROM sqlite_master")
    return sql


def foreign_keys(sql: sqlite3.Connection, table: str) -> list[tuple[str, str, str]]:
    fresh(sql)
    return [(fk[3], fk[2], fk[4]) for fk in sql.execute(f"PRAGMA foreign_key_list({table})")]


def indexed_columns(sql: sqlite3.Connection, table: str) -> list[str]:
    fresh(sql)
    return sorted(
        info[2]
        for index in sql.execute(f"PRAGMA index_list({table})")
        for info in sql.execute(f'PRAGMA index_info("{index[1]}")')
        if not index[1].startswith("sqlite_autoindex")
    )


def typed(sql: sqlite3.Connection, table: str, column: str) -> list[tuple[Any, str]]:
    return sql.execute(f"SELECT {column}, typeof({column}) FROM {table} ORDER BY id").fetchall()


# -- foreign keys ------------------------------------------------------------------------------


def test_a_relationship_becomes_an_indexed_foreign_key(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        db.store.set_row("orgs", "o1", {"name": "Acme"})
        db.store.set_row("teams", "t1", {"name": "Red", "org_id": "o1"})
        db.store.set_row("teams", "t2", {"name": "Lost", "org_id": "nowhere"})  # not enforced
    assert foreign_keys(sql, "teams") == [("org_id", "orgs", "id")]
    assert indexed_columns(sql, "teams") == ["org_id"]
    joined = "SELECT teams.name, orgs.name FROM teams JOIN orgs ON teams.org_id = orgs.id"
    assert sql.execute(joined).fetchall() == [("Red", "Acme")]


def test_a_column_that_holds_rows_already_gets_its_foreign_key_and_keeps_everything(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    rows: dict[str, dict[str, Any]] = {
        "t1": {"org_id": "o1", "n": 1},
        "t2": {"org_id": 7, "n": 1.0},
        "t3": {"org_id": True, "n": "1"},
        "t4": {"org_id": None, "n": [1]},
        "t5": {"n": None},
    }
    with open_db(tmp_path / "a.db", collections={"teams": {"indexed": ["n"]}}) as db:
        for row_id, row in rows.items():
            db.store.set_row("teams", row_id, row)
    sql.execute("CREATE VIEW team_names AS SELECT id FROM teams")
    before = typed(sql, "teams", "org_id"), typed(sql, "teams", "n")
    with open_db(tmp_path / "a.db", collections={"teams": {"indexed": ["n"]}}) as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        assert db.store.get_table("teams") == rows
    assert foreign_keys(sql, "teams") == [("org_id", "orgs", "id")]
    assert (typed(sql, "teams", "org_id"), typed(sql, "teams", "n")) == before
    assert indexed_columns(sql, "teams") == ["n", "org_id"]
    assert sql.execute("SELECT count(*) FROM team_names").fetchone() == (5,)
    with open_db(tmp_path / "a.db") as db:
        assert db.store.get_table("teams") == rows
        sql.execute("UPDATE teams SET n = 2 WHERE id = 't5'")  # the log's triggers came along
        db.refresh()
        assert db.store.get_row("teams", "t5") == {"n": 2}


def test_describing_a_relationship_again_changes_nothing(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
    version = sql.execute("PRAGMA schema_version").fetchone()
    with open_db(tmp_path / "a.db") as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        db.relationships.define("same_cell", local="teams", remote="orgs", on="org_id")
    assert sql.execute("PRAGMA schema_version").fetchone() == version


def test_relationships_whose_cell_cannot_have_a_column_are_left_alone(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.store.set_row("people", "p1", {"Boss": "p2"})
        db.relationships.define("boss", local="people", remote="people", on="boss")  # clashes
        db.relationships.define("self", local="people", remote="people", on="id")
        db.relationships.define("meta", local="people", remote="people", on="_hutch_meta")
        db.store.set_row("people", "p2", {"boss": "p1", "_hutch_meta": "x"})
        assert db.relationships.local_row_ids("boss", "p1") == ["p2"]
    assert foreign_keys(sql, "people") == []
    with open_db(tmp_path / "a.db") as db:
        assert db.store.get_row("people", "p2") == {"boss": "p1", "_hutch_meta": "x"}


def test_a_relationship_replaced_points_its_foreign_key_elsewhere(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.relationships.define("owner", local="items", remote="users", on="owner_id")
        db.store.set_row("items", "i1", {"owner_id": "g1"})
        db.relationships.define("owner", local="items", remote="groups", on="owner_id")
        assert db.store.get_row("items", "i1") == {"owner_id": "g1"}
    assert foreign_keys(sql, "items") == [("owner_id", "groups", "id")]


def test_a_file_primary_with_a_sqlite_mirror_shows_the_links_in_datasette(
    tmp_path: Path,
) -> None:
    datasette_app = pytest.importorskip("datasette.app")
    mirror = tmp_path / "mirror.db"
    with hutch.open(tmp_path / "data", mirrors=[url(mirror)], plugins=PLUGINS) as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        db.store.set_row("orgs", "o1", {"name": "Acme"})
        db.store.set_row("teams", "t1", {"name": "Red", "org_id": "o1"})
        assert db.mirrors[0].in_step

    async def browse() -> tuple[Any, Any]:
        datasette = datasette_app.Datasette([str(mirror)])
        teams = await datasette.client.get("/mirror/teams.json?_labels=on&_shape=array")
        org = await datasette.client.get("/mirror/orgs/o1.json?_extras=foreign_key_tables")
        return teams.json(), org.json()

    teams, org = asyncio.run(browse())
    assert teams[0]["org_id"] == {"value": "o1", "label": "Acme"}
    assert [
        (t["other_table"], t["other_column"], t["count"]) for t in org["foreign_key_tables"]
    ] == [("teams", "org_id", 1)]


def test_a_mirror_that_was_away_gets_the_foreign_keys_when_it_catches_up(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as alone:
        alone.store.set_row("teams", "t1", {"org_id": "o1"})
    with hutch.open(tmp_path / "data", mirrors=[url(tmp_path / "a.db")], plugins=PLUGINS) as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        db.store.set_row("teams", "t2", {"org_id": "o2"})
    assert foreign_keys(sql, "teams") == [("org_id", "orgs", "id")]
    assert sql.execute("SELECT id, org_id FROM teams").fetchall() == [("t2", "o2")]


# -- the change log ----------------------------------------------------------------------------


def traced(db: hutch.Database) -> list[str]:
    """The statements the backend's connection runs from now on."""
    backend = db.backend
    assert isinstance(backend, SqlitePersister)
    statements: list[str] = []
    backend._conn.set_trace_callback(statements.append)
    return statements


def read_whole(statements: list[str], table: str) -> bool:
    """Whether one of ``statements`` reads every row of ``table`` (a SELECT without WHERE)."""
    return any(
        s.lstrip().startswith("SELECT") and s.rstrip().endswith(f'FROM "{table}"')
        for s in statements
    )


@pytest.mark.usefixtures("several_opens")
def test_poll_reads_only_the_rows_that_others_changed(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db, open_db(tmp_path / "a.db") as other:
        with db.store.transaction():
            for n in range(50):
                db.store.set_row("t", f"r{n}", {"n": n})
            db.store.set_value("v", 1)
        other.refresh()
        heard: list[Changes] = []
        other.store.add_listener(heard.append)
        statements = traced(other)
        with db.store.transaction():
            db.store.set_cell("t", "r1", "n", -1)
            db.store.del_row("t", "r2")
            db.store.set_row("u", "x", {"new": True})
            db.store.del_value("v")
        sql.execute("UPDATE t SET n = 100 WHERE id = 'r3'")
        sql.execute("UPDATE t SET id = 'r4b' WHERE id = 'r4'")
        other.refresh()
        assert not read_whole(statements, "t")
        assert heard[0].tables == {
            "t": {"r1": {"n": -1}, "r2": None, "r3": {"n": 100}, "r4": None, "r4b": {"n": 4}},
            "u": {"x": {"new": True}},
        }
        assert heard[0].deleted_values == frozenset({"v"})
        expected = db.store.get_table("t")
        expected["r3"] = {"n": 100}
        expected["r4b"] = expected.pop("r4")
        assert other.store.get_table("t") == expected
        db.refresh()
        assert db.store.get_table("t") == other.store.get_table("t")


@pytest.mark.usefixtures("several_opens")
def test_a_writer_does_not_hear_its_own_commits(tmp_path: Path) -> None:
    with open_db(tmp_path / "a.db") as db, open_db(tmp_path / "a.db") as other:
        heard: list[Changes] = []
        db.store.set_row("t", "a", {"n": 1})
        other.store.set_row("t", "b", {"n": 2})
        db.store.add_listener(heard.append)
        db.store.set_row("t", "c", {"n": 3})  # takes in b, writes c
        db.store.set_row("t", "d", {"n": 4})
        db.refresh()
        assert [sorted(c.tables["t"]) for c in heard] == [["b"], ["c"], ["d"]]


@pytest.mark.usefixtures("several_opens")
def test_a_connection_behind_the_cut_log_reads_every_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_persister, "KEEP_CHANGES", 3)
    with open_db(tmp_path / "a.db") as db, open_db(tmp_path / "a.db") as lagging:
        db.store.set_row("t", "gone", {"n": 0})
        lagging.refresh()
        db.store.del_row("t", "gone")
        for n in range(10):
            db.store.set_row("t", f"r{n}", {"n": n})
        with sqlite3.connect(tmp_path / "a.db") as sql:
            first, cut = sql.execute("SELECT min(seq), max(seq) FROM _hutch_changes").fetchone()
            assert cut - first < 6  # cut back
        heard: list[Changes] = []
        lagging.store.add_listener(heard.append)
        lagging.refresh()
        assert lagging.store.get_table("t") == db.store.get_table("t")
        assert heard[0].tables["t"]["gone"] is None


def test_a_table_dropped_by_hand_is_noticed(tmp_path: Path, sql: sqlite3.Connection) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.store.set_row("t", "a", {"n": 1})
        db.store.set_row("u", "b", {"n": 2})
        sql.execute("DROP TABLE u")
        db.refresh()
        assert db.store.get_table_ids() == ["t"]
        db.store.set_row("u", "c", {"n": 3})  # created again
    with open_db(tmp_path / "a.db") as db:
        assert db.store.get_table("u") == {"c": {"n": 3}}


def test_a_table_rebuilt_by_hand_is_read_whole_and_logged_again(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.store.set_row("t", "a", {"n": 1})
        db.store.set_row("t", "b", {"n": 2})
        # What `sqlite-utils transform` does: a new table, a copy, a drop, a rename; the
        # triggers are gone with the old table, and rows changed meanwhile are in no log.
        sql.execute("CREATE TABLE t_new (id TEXT PRIMARY KEY, _hutch_meta TEXT, n)")
        sql.execute("INSERT INTO t_new SELECT id, _hutch_meta, n * 10 FROM t WHERE id = 'a'")
        sql.execute("DROP TABLE t")
        sql.execute("ALTER TABLE t_new RENAME TO t")
        whole = traced(db)
        db.refresh()
        assert read_whole(whole, "t")
        assert db.store.get_table("t") == {"a": {"n": 10}}
        sql.execute("UPDATE t SET n = 20 WHERE id = 'a'")  # no trigger logs this one
        db.refresh()
        assert db.store.get_table("t") == {"a": {"n": 20}}
        db.store.set_row("t", "c", {"n": 3})  # the write gives the table its triggers back
        statements = traced(db)
        sql.execute("UPDATE t SET n = 11 WHERE id = 'a'")
        db.refresh()
        assert db.store.get_table("t") == {"a": {"n": 11}, "c": {"n": 3}}
        assert not read_whole(statements, "t")


def seen(db: hutch.Database) -> bytes:
    """Everything a database holds, and what its index says, as canonical JSON."""
    store, indexes = db.store, db.indexes
    tables = {table: store.get_table(table) for table in store.get_table_ids()}
    slices = {repr(key): indexes.slice_row_ids("by_b", key) for key in indexes.slice_ids("by_b")}
    everything = {"tables": tables, "values": store.get_values(), "slices": slices}
    return orjson.dumps(everything, option=orjson.OPT_SORT_KEYS)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    operations=operations(cells=st.sampled_from(["a", "b", "B"]), length=40),
    writers=st.lists(st.booleans(), min_size=40, max_size=40),
    keep=st.sampled_from([2, 10_000]),
)
@pytest.mark.usefixtures("several_opens")
def test_two_connections_agree_after_every_refresh(
    tmp_path: Path, operations: list[tuple[Any, ...]], writers: list[bool], keep: int
) -> None:
    """Random writes through either of two databases on one file ("reopen": both refresh)."""
    path = tmp_path / f"{os.urandom(6).hex()}.db"
    with (
        pytest.MonkeyPatch.context() as patch,
        open_db(path) as first,
        open_db(path) as second,
    ):
        patch.setattr(sqlite_persister, "KEEP_CHANGES", keep)
        for db in (first, second):
            db.indexes.define("by_b", "a", "b")
        for (name, *args), use_first in zip(operations, writers, strict=False):
            if name == "reopen":
                first.refresh()
                second.refresh()
                assert seen(first) == seen(second)
            else:
                getattr((first if use_first else second).store, name)(*args)
        first.refresh()
        second.refresh()
        assert seen(first) == seen(second)
        with open_db(path) as third:
            third.indexes.define("by_b", "a", "b")
            assert seen(third) == seen(first)


def test_a_foreign_key_that_cannot_be_declared_leaves_the_relationship_undefined(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db", lock_timeout=0.05) as db:
        db.store.set_row("teams", "t1", {"org_id": "o1"})
        sql.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
        with pytest.raises(hutch.StorageError, match=r"team_org.*lock_timeout"):
            db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        assert "team_org" not in db.relationships
        sql.execute("ROLLBACK")
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        assert db.relationships.local_row_ids("team_org", "o1") == ["t1"]
        assert db.store.get_table("teams") == {"t1": {"org_id": "o1"}}
    assert foreign_keys(sql, "teams") == [("org_id", "orgs", "id")]


def test_values_whose_triggers_were_dropped_by_hand_are_still_read(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db:
        db.store.set_value("v", 1)
        sql.execute("DROP TRIGGER _hutch_log_update__values")
        sql.execute("DROP TRIGGER _hutch_log_insert__values")
        db.refresh()
        sql.execute("""INSERT OR REPLACE INTO _values (key, value) VALUES ('v', '2')""")
        db.refresh()
        assert db.store.get_value("v") == 2
        db.store.set_value("w", 0)  # the write gives _values its triggers back
        sql.execute("""UPDATE _values SET value = '3' WHERE key = 'v'""")
        db.refresh()
        assert db.store.get_values() == {"v": 3, "w": 0}
    fresh(sql)
    triggers = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '_values'"
    assert sql.execute(triggers).fetchone() == (3,)


@pytest.mark.usefixtures("several_opens")
def test_after_a_failed_write_the_next_poll_still_hears_of_deletions(
    tmp_path: Path, sql: sqlite3.Connection
) -> None:
    with open_db(tmp_path / "a.db") as db, open_db(tmp_path / "a.db") as other:
        db.store.set_row("t", "a", {"n": 1})
        db.store.set_row("t", "b", {"n": 2})
        sql.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.id = 'c' "
            "BEGIN SELECT RAISE(ABORT, 'refused by hand'); END"
        )
        with pytest.raises(hutch.StorageError, match="refused by hand"):
            db.store.set_row("t", "c", {"n": 3})  # fails inside the SQLite transaction
        sql.execute("DROP TRIGGER refuse")
        other.store.del_row("t", "a")
        db.refresh()
        assert db.store.get_table("t") == {"b": {"n": 2}}
