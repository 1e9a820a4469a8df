"""Attacks on ``sqlite://`` files whose schema a person changed by hand (docs/sqlite-format.md,
"Changing the tables"): each test states what must hold, whatever the file's triggers,
constraints and renames do to hutch's writes and to what other connections read.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

import hutch
import hutch.backends.memory
import hutch.backends.sqlite
from hutch.backends.sqlite.cells import decode_row
from hutch.backends.sqlite.schema import MAX_FIELDS
from hutch.testing.test_parity_store import JSON_SAMPLES

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
    """JSON text that tells 1, 1.0 and True (and 0.0 and -0.0) apart."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def everything(db: hutch.Database) -> dict[str, dict[str, dict[str, Any]]]:
    return {table: db.store.get_table(table) for table in db.store.get_table_ids()}


def reopened(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    with open_db(path) as db:
        return everything(db)


# -- 1. what a trigger of the file sets off in a commit -----------------------------------------


AUDIT_WITH_A_BAD_ID = """
CREATE TRIGGER audit_orders AFTER INSERT ON orders BEGIN
    INSERT INTO audit (id, what) VALUES ('audit:' || NEW.id, 'order');
END
"""


def test_a_trigger_that_writes_an_unreadable_row_fails_the_commit_and_writes_nothing(
    path: Path, sql: sqlite3.Connection
) -> None:
    """The trigger's row (id ``audit:o1``, no valid row id) is read back before ``COMMIT``,
    and fails the transaction as a ``CHECK`` would. (Read back after it, the transaction
    raised although it was committed: memory kept ``o1``, listeners (and so mirrors) never
    heard of it, and the file no longer opened.)"""
    with open_db(path) as db:
        db.store.set_row("audit", "first", {"what": "start"})
        db.store.set_row("orders", "o0", {"n": 1})
        sql.executescript(AUDIT_WITH_A_BAD_ID)
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)
        with pytest.raises(hutch.HutchError, match="audit:o1"):
            db.store.set_row("orders", "o1", {"n": 2})
        # Failed means failed: nothing in memory, nothing in the file, nothing heard.
        assert db.store.get_table("orders") == {"o0": {"n": 1}}
        assert heard == []
    assert sql.execute("SELECT id FROM orders ORDER BY id").fetchall() == [("o0",)]
    assert reopened(path)["orders"] == {"o0": {"n": 1}}


@pytest.mark.parametrize(
    "trigger",
    [
        "CREATE TRIGGER blob_audit AFTER INSERT ON orders BEGIN "
        "UPDATE audit SET what = X'00' WHERE id = 'first'; END",
        "CREATE TRIGGER count_orders AFTER INSERT ON orders BEGIN "
        "INSERT OR REPLACE INTO _values (key, value) VALUES ('orders', '{not json'); END",
    ],
)
def test_a_trigger_that_writes_a_blob_or_bad_json_fails_the_commit_and_writes_nothing(
    path: Path, sql: sqlite3.Connection, trigger: str
) -> None:
    """A BLOB in a collection's row, or a keyed value that is no JSON, written by a trigger
    of the file: the commit fails naming the trigger, and neither memory nor the file
    changes (the file still opens)."""
    before = {"audit": {"first": {"what": "start"}}, "orders": {"o0": {"n": 1}}}
    with open_db(path) as db:
        db.store.set_row("audit", "first", {"what": "start"})
        db.store.set_row("orders", "o0", {"n": 1})
        sql.execute(trigger)
        with pytest.raises(hutch.StorageError) as caught:
            db.store.set_row("orders", "o1", {"n": 2})
        assert repr(trigger.split()[2]) in str(caught.value)
        assert "nothing was written" in str(caught.value)
        assert everything(db) == before
        assert db.store.get_values() == {}
    assert reopened(path) == before


def test_a_sqlite_mirror_whose_trigger_writes_an_unreadable_row_falls_behind_unharmed(
    tmp_path: Path,
) -> None:
    """The primary commits; the mirror's commit, which its trigger would leave unreadable,
    fails: the mirror says so (and falls behind), and its file still opens."""
    mirror = tmp_path / "mirror.db"
    plugins = [hutch.backends.sqlite, hutch.backends.memory]
    with hutch.open("memory://", mirrors=[f"sqlite:///{mirror}"], plugins=plugins) as db:
        db.store.set_row("audit", "first", {"what": "start"})
        db.store.set_row("orders", "o0", {"n": 1})
        with contextlib.closing(sqlite3.connect(mirror, isolation_level=None)) as sql:
            sql.execute(AUDIT_WITH_A_BAD_ID)
        db.store.set_row("orders", "o1", {"n": 2})
        assert db.store.get_row("orders", "o1") == {"n": 2}
        assert not db.mirrors[0].in_step
        assert "audit:o1" in str(db.mirrors[0].error)
    assert reopened(mirror)["orders"] == {"o0": {"n": 1}}


def test_a_trigger_that_ignores_a_write_never_leaves_memory_apart_from_the_file(
    path: Path, sql: sqlite3.Connection
) -> None:
    """``SELECT RAISE(IGNORE)`` in a ``BEFORE`` trigger (a common way to make rows
    undeletable, or to drop unwanted inserts) skips hutch's statement without an error and
    without a log line. Unnoticed, the commit returned, the writer's memory said the row was
    deleted (or inserted), and every other open, and the next, read the file's opposite:
    hutch must refuse such a commit or read back what the file holds."""
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1})
        db.store.set_row("t", "b", {"n": 2})
    sql.execute("CREATE TRIGGER keep BEFORE DELETE ON t BEGIN SELECT RAISE(IGNORE); END")
    sql.execute(
        "CREATE TRIGGER positive BEFORE INSERT ON t WHEN NEW.n < 0 BEGIN SELECT RAISE(IGNORE); END"
    )
    with open_db(path) as db:
        writes: list[Callable[[], None]] = [
            lambda: db.store.del_row("t", "a"),
            lambda: db.store.set_row("t", "c", {"n": -1}),
        ]
        for write in writes:
            with contextlib.suppress(hutch.HutchError):  # a refusal is fine, then
                write()  # memory must not have changed either
            assert db.store.get_table("t") == reopened_table(path, "t")


@pytest.mark.parametrize(
    ("trigger", "write"),
    [
        (
            "CREATE TRIGGER frozen BEFORE UPDATE ON t BEGIN SELECT RAISE(IGNORE); END",
            lambda store: store.set_row("t", "a", {"n": 5}),
        ),
        (
            "CREATE TRIGGER no_new_keys BEFORE INSERT ON _values BEGIN SELECT RAISE(IGNORE); END",
            lambda store: store.set_value("new", 1),
        ),
        (
            "CREATE TRIGGER kept_keys BEFORE DELETE ON _values BEGIN SELECT RAISE(IGNORE); END",
            lambda store: store.del_value("k"),
        ),
    ],
)
def test_a_trigger_that_ignores_an_update_or_a_keyed_value_fails_the_commit(
    path: Path, sql: sqlite3.Connection, trigger: str, write: Callable[[hutch.Store], None]
) -> None:
    """An upsert's update, a keyed value's insert or deletion that a trigger skips fails
    the commit naming the trigger; memory stays what the file holds."""
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1})
        db.store.set_value("k", 1)
        sql.execute(trigger)
        with pytest.raises(hutch.StorageError, match=r"RAISE\(IGNORE\)") as caught:
            write(db.store)
        assert repr(trigger.split()[2]) in str(caught.value)
        assert (everything(db), db.store.get_values()) == ({"t": {"a": {"n": 1}}}, {"k": 1})
    with open_db(path) as db:
        assert (everything(db), db.store.get_values()) == ({"t": {"a": {"n": 1}}}, {"k": 1})


def reopened_table(path: Path, table: str) -> dict[str, dict[str, Any]]:
    """The table as a plain connection reads it from the file (``n`` only)."""
    connection = sqlite3.connect(path)
    try:
        return {
            row_id: {"n": n}
            for row_id, n in connection.execute(f'SELECT id, n FROM "{table}" ORDER BY id')
        }
    finally:
        connection.close()


def test_what_triggers_write_is_read_back_before_the_commit_returns(
    path: Path, sql: sqlite3.Connection
) -> None:
    """Holds: a trigger that stamps the written row and fills another collection is seen by
    the writer as its commit returns, with every JSON sample kept exact."""
    with open_db(path) as db:
        db.store.set_row("seen", "first", {"n": 0})
        db.store.set_row("t", "pre", {"v": 0, "stamp": "old"})
        sql.execute(
            "CREATE TRIGGER stamp AFTER INSERT ON t BEGIN "
            "UPDATE t SET stamp = 'x' WHERE id = NEW.id; "
            "INSERT INTO seen (id, n) VALUES (NEW.id, 1); END"
        )
        for n, value in enumerate(JSON_SAMPLES):
            db.store.set_row("t", f"r{n}", {"v": value, "list": [value]})
        expected: dict[str, dict[str, Any]] = {"pre": {"v": 0, "stamp": "old"}} | {
            f"r{n}": {"v": value, "list": [value], "stamp": "x"}
            for n, value in enumerate(JSON_SAMPLES)
        }
        assert canonical(db.store.get_table("t")) == canonical(expected)
        assert len(db.store.get_table("seen")) == len(JSON_SAMPLES) + 1
    assert canonical(reopened(path)["t"]) == canonical(expected)


# -- 2. tables renamed by hand ------------------------------------------------------------------


@pytest.mark.usefixtures("several_opens")
def test_a_collection_table_renamed_by_hand_keeps_other_connections_in_step(
    path: Path, sql: sqlite3.Connection
) -> None:
    """``ALTER TABLE t RENAME TO t_old`` (``sqlite-utils rename-table``) takes the
    change-log triggers ``_hutch_log_*_t`` along to ``t_old``. Unnoticed, the collection
    read empty, hutch created ``t`` again at the next write, and ``CREATE TRIGGER IF NOT
    EXISTS`` found the old names taken: the new ``t`` logged nothing, so another open never
    heard of its later writes and deletions. Refusing the file would do; serving two
    connections different rows silently does not."""
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1})
    sql.execute("ALTER TABLE t RENAME TO t_old")
    try:
        first, second = open_db(path), open_db(path)
    except hutch.HutchError:
        return  # refused: fine
    with first, second:
        first.store.set_row("t", "x", {"n": 1})
        second.refresh()
        first.store.set_row("t", "y", {"n": 2})
        first.store.del_row("t", "x")
        second.refresh()
        assert second.store.get_table("t") == first.store.get_table("t") == {"y": {"n": 2}}


@pytest.mark.usefixtures("several_opens")
def test_a_collection_table_renamed_and_made_again_by_hand_is_logged_again(
    path: Path, sql: sqlite3.Connection
) -> None:
    """``t`` renamed to ``t_old`` (taking hutch's triggers along), then a new ``t`` made by
    hand: a writing open gives ``t`` its triggers back (taking them off ``t_old``, now a
    table of the person's), so that other opens hear of every later write."""
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1})
    sql.execute("ALTER TABLE t RENAME TO t_old")
    sql.execute("CREATE TABLE t (id TEXT PRIMARY KEY, _hutch_meta TEXT, n BLOB)")
    sql.execute("INSERT INTO t (id, n) VALUES ('b', 2)")
    with open_db(path) as first, open_db(path) as second:
        assert first.store.get_table("t") == second.store.get_table("t") == {"b": {"n": 2}}
        first.store.set_row("t", "x", {"n": 1})
        second.refresh()
        first.store.del_row("t", "b")
        second.refresh()
        assert second.store.get_table("t") == first.store.get_table("t") == {"x": {"n": 1}}
    hutchs = (
        "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '_hutch_log_%_t'"
    )
    assert sorted(sql.execute(hutchs).fetchall()) == [("t",)] * 3


# -- 3. a write refused by a person's constraint --------------------------------------------------


@pytest.mark.usefixtures("several_opens")
def test_a_write_refused_by_a_constraint_costs_the_next_poll_no_full_read(
    path: Path, sql: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that a person's ``UNIQUE`` index refuses (an ordinary outcome: the upsert
    fails instead of deleting the other row) makes the connection forget its cached schema,
    but not which tables it had taken in: the next poll after anyone else's one-row commit
    reads that row, not every row of every table (with a follower and another process
    writing, each refused write would cost a read of the whole file)."""
    rows = 2_000
    with open_db(path) as db, db.store.transaction():
        for i in range(rows):
            db.store.set_row("t", f"r{i}", {"email": f"e{i}@x.io"})
    sql.execute("CREATE UNIQUE INDEX t_email ON t (email)")
    decoded = [0]

    def counting(fields: Mapping[str, int], record: Sequence[Any]) -> dict[str, Any]:
        decoded[0] += 1
        return decode_row(fields, record)

    monkeypatch.setattr("hutch.backends.sqlite.persister.decode_row", counting)
    with open_db(path) as writer, open_db(path) as other:
        with pytest.raises(hutch.StorageError, match="UNIQUE"):
            writer.store.set_row("t", "dup", {"email": "e1@x.io"})
        decoded[0] = 0
        other.store.set_row("u", "one", {"n": 1})
        writer.refresh()
        assert writer.store.get_row("u", "one") == {"n": 1}
        assert decoded[0] < 10, f"{decoded[0]} rows decoded to take in a one-row commit"


@pytest.mark.usefixtures("several_opens")
def test_a_write_refused_after_adding_a_table_and_a_column_costs_the_next_poll_no_full_read(
    path: Path, sql: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refused transaction had created a collection's table and added a column: both
    are rolled back, the connection reads the schema again, yet takes in the next commit
    of another open by its one row; the collection's table is made again when written."""
    rows = 2_000
    with open_db(path) as db, db.store.transaction():
        for i in range(rows):
            db.store.set_row("t", f"r{i}", {"email": f"e{i}@x.io"})
    sql.execute("CREATE UNIQUE INDEX t_email ON t (email)")
    decoded = [0]

    def counting(fields: Mapping[str, int], record: Sequence[Any]) -> dict[str, Any]:
        decoded[0] += 1
        return decode_row(fields, record)

    monkeypatch.setattr("hutch.backends.sqlite.persister.decode_row", counting)
    with open_db(path) as writer, open_db(path) as other:

        def refused() -> None:
            with writer.store.transaction():
                writer.store.set_row("fresh", "x", {"a": 1})
                writer.store.set_row("t", "dup", {"email": "e1@x.io", "extra": 1})

        with pytest.raises(hutch.StorageError, match="UNIQUE"):
            refused()
        decoded[0] = 0
        other.store.set_row("u", "one", {"n": 1})
        writer.refresh()
        assert writer.store.get_row("u", "one") == {"n": 1}
        assert decoded[0] < 10, f"{decoded[0]} rows decoded to take in a one-row commit"
        writer.store.set_row("fresh", "y", {"a": 2})
        writer.store.set_row("t", "r1", {"email": "new@x.io", "extra": 2})
    again = reopened(path)
    assert again["fresh"] == {"y": {"a": 2}}
    assert again["t"]["r1"] == {"email": "new@x.io", "extra": 2}


@pytest.mark.usefixtures("several_opens")
def test_a_poll_that_met_an_unreadable_row_takes_the_whole_commit_in_once_it_is_fixed(
    path: Path, sql: sqlite3.Connection
) -> None:
    """A poll that fails on one row of another open's commit notes nothing as taken in: the
    next refresh meets the error again, and once the row is fixed, reads the commit's other
    rows too."""
    with open_db(path) as db, open_db(path) as other:
        db.store.set_row("t", "z", {"n": 0})
        other.refresh()
        with other.store.transaction():
            other.store.set_row("t", "a", {"n": 1})
            other.store.set_row("t", "b", {"n": 2})
        sql.execute("UPDATE t SET n = X'00' WHERE id = 'b'")
        for _ in range(2):  # not once only: behind() still says so
            with pytest.raises(hutch.CorruptData, match="'b'"):
                db.refresh()
        sql.execute("UPDATE t SET n = 3 WHERE id = 'b'")
        db.refresh()
        assert db.store.get_table("t") == {"z": {"n": 0}, "a": {"n": 1}, "b": {"n": 3}}


def test_a_column_dropped_by_hand_is_taken_in_though_verify_read_the_schema_first(
    path: Path, sql: sqlite3.Connection
) -> None:
    """``verify`` reads the schema again; the next poll still sees that a column was dropped
    since this connection last took the file in (no log line says so)."""
    with open_db(path) as db:
        db.store.set_row("t", "a", {"n": 1, "gone": "x"})
        sql.execute("ALTER TABLE t DROP COLUMN gone")
        assert db.backend.verify() == []
        db.refresh()
        assert db.store.get_table("t") == {"a": {"n": 1}}


# -- 4. the column cap --------------------------------------------------------------------------


@pytest.mark.usefixtures("several_opens")
def test_cells_move_between_columns_and_meta_exactly_across_two_opens(
    path: Path, sql: sqlite3.Connection
) -> None:
    """Holds: two opens at the cap, cells named like hutch's columns, a cell deleted from
    ``_hutch_meta``, a column dropped by hand freeing a place; every sample stays exact."""
    base = {f"c{i}": i for i in range(MAX_FIELDS - 1)}
    with open_db(path) as a, open_db(path) as b:
        a.store.set_row("t", "base", base)
        b.refresh()
        a.store.set_row("t", "r1", {"x": True, "_hutch_meta": [1], "ID": None, "Id": -0.0})
        b.store.set_row("t", "r2", {"y": 1.0, "x": False})  # y: no column left
        for n, value in enumerate(JSON_SAMPLES):
            b.store.set_row("t", f"s{n}", {"x": value, "over": value, "_HUTCH_META": value})
        a.refresh()
        b.store.del_cell("t", "r2", "y")
        b.store.del_cell("t", "r1", "_hutch_meta")
        a.refresh()
        sql.execute("ALTER TABLE t DROP COLUMN c0")
        a.store.set_row("t", "r2", {"y": 2.5, "x": None})  # y takes the freed place
        b.refresh()
        b.store.set_partial_row("t", "r1", {"y": "s"})
        a.refresh()
        assert canonical(everything(a)) == canonical(everything(b))
        expected = {
            "base": {k: v for k, v in base.items() if k != "c0"},
            "r1": {"x": True, "ID": None, "Id": -0.0, "y": "s"},
            "r2": {"y": 2.5, "x": None},
        } | {
            f"s{n}": {"x": value, "over": value, "_HUTCH_META": value}
            for n, value in enumerate(JSON_SAMPLES)
        }
        assert canonical(a.store.get_table("t")) == canonical(expected)
    assert canonical(reopened(path)["t"]) == canonical(expected)
    with open_db(path, read_only=True) as db:
        assert canonical(db.store.get_table("t")) == canonical(expected)


def test_an_indexed_field_and_a_relationship_beyond_the_cap_keep_values(path: Path) -> None:
    """Holds: a field beyond the cap gets no column, index nor foreign key, and reads back."""
    late = f"f{MAX_FIELDS}"
    settings = {"t": {"indexed": [late]}}
    with open_db(path) as db:
        db.store.set_row("t", "wide", {f"f{i}": i for i in range(MAX_FIELDS)})
    with open_db(path, collections=settings) as db:
        db.store.set_row("t", "r", {late: "o1", "flag": True})
        db.relationships.define("t_o", local="t", remote="o", on=late)
        db.store.set_row("o", "o1", {"n": 1})
        assert db.relationships.local_row_ids("t_o", "o1") == ["r"]
    with open_db(path, collections=settings) as db:
        assert db.store.get_row("t", "r") == {late: "o1", "flag": True}
        assert db.backend.verify() == []


def test_verify_names_no_missing_index_for_a_field_that_may_have_none(path: Path) -> None:
    """A field named ``_hutch_meta`` (a cell like any other, kept in ``_hutch_meta`` since
    its name is taken) may have no index, and ``reindex`` makes none: ``verify`` (so ``hutch
    verify``) must not report it missing and tell to run ``hutch reindex``, every time."""
    settings = {"t": {"indexed": ["_hutch_meta"]}}
    with open_db(path, collections=settings) as db:
        db.store.set_row("t", "r", {"_hutch_meta": 1})
        db.reindex()
        assert db.backend.verify() == []


# -- 5. tags made stale by a person's UPDATE ------------------------------------------------------


@pytest.mark.parametrize("text", ["5", "1e3", "true", "null", '"x"'])
def test_a_json_tag_made_stale_by_an_update_reads_the_text_as_stored(
    path: Path, sql: sqlite3.Connection, text: str
) -> None:
    """A tag that no longer fits its column is ignored and the value read as stored (a
    tagged boolean set to 'yes' reads 'yes'). hutch writes the tag "j" only over a list or
    an object, so a list column that a person's UPDATE set to the text '1e3' reads that
    text, not the float 1000.0 ('5' not 5, 'true' not True, 'null' not None)."""
    with open_db(path) as db:
        db.store.set_row("t", "r", {"tags": [1], "flag": True})
    sql.execute("UPDATE t SET tags = ?, flag = 'yes' WHERE id = 'r'", (text,))
    with open_db(path) as db:
        assert canonical(db.store.get_row("t", "r")) == canonical({"tags": text, "flag": "yes"})


@pytest.mark.parametrize("text", ["hello", "", "1,2"])
def test_text_under_a_json_tag_that_opens_no_list_nor_object_reads_as_stored(
    path: Path, sql: sqlite3.Connection, text: str
) -> None:
    """Text that is no JSON at all under a stale tag "j" is read as the text it is, as any
    stale tag's value is: it does not keep the file from opening."""
    with open_db(path) as db:
        db.store.set_row("t", "r", {"tags": [1]})
    sql.execute("UPDATE t SET tags = ? WHERE id = 'r'", (text,))
    with open_db(path) as db:
        assert db.store.get_row("t", "r") == {"tags": text}


@pytest.mark.parametrize("text", ["[1,", '{"a": 1', "[1e400]"])
def test_a_list_or_object_under_a_json_tag_that_does_not_parse_is_corrupt(
    path: Path, sql: sqlite3.Connection, text: str
) -> None:
    """Text that opens a list or an object is what the tag "j" says: if it does not parse,
    the row is damaged (never read as a string, a silent change of type)."""
    with open_db(path) as db:
        db.store.set_row("t", "r", {"tags": [1]})
    sql.execute("UPDATE t SET tags = ? WHERE id = 'r'", (text,))
    with pytest.raises(hutch.CorruptData, match="table 't', row id 'r'"):
        open_db(path).close()


def test_a_value_kept_in_meta_gives_way_to_the_column_a_person_filled(
    path: Path, sql: sqlite3.Connection
) -> None:
    """A cell kept in ``_hutch_meta`` (the table was at its cap) whose column a person then
    added and filled: the tag ``[value]`` is stale, the column's value is read."""
    with open_db(path) as db:
        db.store.set_row("t", "base", {f"c{i}": i for i in range(MAX_FIELDS)})
        db.store.set_row("t", "r", {"y": 1, "z": 2})
    sql.execute("ALTER TABLE t ADD COLUMN y BLOB")
    with open_db(path) as db:
        assert db.store.get_row("t", "r") == {"y": 1, "z": 2}
    sql.execute("UPDATE t SET y = 5 WHERE id = 'r'")
    with open_db(path) as db:
        assert db.store.get_row("t", "r") == {"y": 5, "z": 2}


def test_a_trigger_of_hutchs_name_that_writes_more_is_read_back(tmp_path: Path) -> None:
    """Was: a trigger was taken for hutch's by its name and table alone, so what a person's
    body under that name wrote was never read back: memory kept 'b', the file 'CHANGED'."""
    path = tmp_path / "t.db"
    with hutch.open(f"sqlite:///{path}", plugins=[hutch.backends.sqlite]) as db:
        db.store.set_row("users", "u1", {"name": "a"})
    sql = sqlite3.connect(path)
    name = "_hutch_log_insert_users"
    (made,) = sql.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    body = made[made.index("BEGIN") + 5 : made.rindex("END")]
    sql.execute(f"DROP TRIGGER {name}")
    sql.execute(
        f"CREATE TRIGGER {name} AFTER INSERT ON users BEGIN {body} "
        "UPDATE users SET name = 'CHANGED' WHERE id = NEW.id; END"
    )
    sql.commit()
    sql.close()
    with hutch.open(f"sqlite:///{path}", plugins=[hutch.backends.sqlite]) as db:
        db.store.set_row("users", "u2", {"name": "b"})
        assert db.store.get_row("users", "u2") == {"name": "CHANGED"}


def test_a_trigger_of_hutchs_name_whose_text_mimics_hutchs_is_read_back(tmp_path: Path) -> None:
    """Was: a ' BEGIN INSERT INTO _hutch_changes ' string in a WHEN clause passed a check
    of the body's statements; a trigger is hutch's only when it is exactly what hutch makes."""
    path = tmp_path / "t.db"
    with hutch.open(f"sqlite:///{path}", plugins=[hutch.backends.sqlite]) as db:
        db.store.set_row("users", "u1", {"name": "a"})
    sql = sqlite3.connect(path)
    name = "_hutch_log_insert_users"
    sql.execute(f"DROP TRIGGER {name}")
    sql.execute(
        f"CREATE TRIGGER {name} AFTER INSERT ON users "
        "WHEN ' BEGIN INSERT INTO _hutch_changes ' IS NOT NULL BEGIN "
        "INSERT INTO _hutch_changes (table_name, row_id) VALUES ('users', NEW.id); "
        "UPDATE users SET name = 'CHANGED' WHERE id = NEW.id; END"
    )
    sql.commit()
    sql.close()
    with hutch.open(f"sqlite:///{path}", plugins=[hutch.backends.sqlite]) as db:
        db.store.set_row("users", "u2", {"name": "b"})
        assert db.store.get_row("users", "u2") == {"name": "CHANGED"}


def test_a_worker_opening_a_new_sqlite_store_waits_for_the_one_setting_it_up(
    tmp_path: Path,
) -> None:
    """Two workers of a web application opening a new file at once: each switches it to WAL,
    which SQLite refuses at once (without its busy timeout) while the other holds the lock.
    Here a plain connection holds the file's lock as the other worker does in that moment;
    the open must wait for it (up to ``lock_timeout``), not fail."""
    path = tmp_path / "app.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE setting_up (x)")  # (a new file: a rollback journal, locked)
    outcome: list[str] = []
    finished = threading.Event()

    def open_store() -> None:
        try:
            with hutch.open(f"sqlite:///{path}", lock_timeout=30, plugins=[hutch.backends.sqlite]):
                outcome.append("opened")
        except hutch.HutchError as error:
            outcome.append(f"{type(error).__name__}: {error}")
        finally:
            finished.set()

    opener = threading.Thread(target=open_store)
    opener.start()
    try:
        # A bounded look: an open that waits for the lock is still waiting after it.
        refused_while_locked = finished.wait(2)
    finally:
        other.execute("ROLLBACK")
        other.close()
        opener.join(60)
    assert not refused_while_locked, outcome
    assert outcome == ["opened"]
