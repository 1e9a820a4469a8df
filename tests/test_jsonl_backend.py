"""The ``jsonl://`` backend: append-only JSONL logs per collection (docs/jsonl-format.md)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, LineReader, count_in_processes
from hypothesis import HealthCheck, given, settings
from operations import operations
from test_file_crash import WRITER, canonical, make_plan, states_after, temp_files

import hutch
from hutch.backends.jsonl import JsonlPersister


def url(root: Path) -> str:
    return f"jsonl://{root.resolve()}"


def contents(db: hutch.Database) -> bytes:
    store = db.store
    tables = {table: store.get_table(table) for table in store.get_table_ids()}
    return canonical({"tables": tables, "values": store.get_values()})


def log_lines(path: Path) -> list[Any]:
    """The lines of a file, as JSON."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def data_lines(path: Path) -> list[Any]:
    """The lines of a log after its header."""
    return log_lines(path)[1:]


def test_both_url_forms_open_the_jsonl_backend(tmp_path: Path, monkeypatch: Any) -> None:
    with hutch.open(url(tmp_path / "a")) as db:
        assert isinstance(db.backend, JsonlPersister)
        assert db.capabilities.durable
        assert db.capabilities.multi_process
        assert db.capabilities.change_feed
    monkeypatch.chdir(tmp_path)
    with hutch.open("jsonl:b") as db:
        db.store.set_row("t", "r", {"a": 1})
    assert (tmp_path / "b" / "t.jsonl").exists()


def test_the_layout_is_one_log_per_collection_a_values_log_and_a_commit_log(
    tmp_path: Path,
) -> None:
    with hutch.open(url(tmp_path), collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        with db.store.transaction():
            db.store.set_row("users", "u2", {"email": "b@x.io"})
            db.store.set_row("teams", "t1", {"name": "red"})
            db.store.set_value("k", None)
        db.store.del_row("users", "u1")
        db.store.del_value("k")
    manifest = orjson.loads((tmp_path / "hutch.json").read_bytes())
    assert manifest["format"] == 2
    assert manifest["kind"] == "jsonl"
    assert manifest["collections"]["users"]["indexed"] == ["email"]
    folder = manifest["id"]
    assert len(folder) == 32
    for name in ("users.jsonl", "teams.jsonl", "_values.jsonl", "_commits.jsonl"):
        assert log_lines(tmp_path / name)[0] == ["hutch-jsonl", 2, folder, name, 1]
    assert data_lines(tmp_path / "users.jsonl") == [
        [1, "u1", {"email": "a@x.io"}],
        [2, "u2", {"email": "b@x.io"}],
        [3, "u1", None],
    ]
    assert data_lines(tmp_path / "teams.jsonl") == [[2, "t1", {"name": "red"}]]
    assert data_lines(tmp_path / "_values.jsonl") == [[2, "k", None], [4, "k"]]
    assert data_lines(tmp_path / "_commits.jsonl") == [
        [1, {"users.jsonl": [1, 1]}, 1],
        [2, {"_values.jsonl": [1, 1], "teams.jsonl": [1, 1], "users.jsonl": [1, 2]}, 2],
        [3, {"users.jsonl": [1, 3]}, 3],
        [4, {"_values.jsonl": [1, 2]}, 4],
    ]
    assert log_lines(tmp_path / "indices" / "users" / "email.jsonl") == [["b@x.io", "u2"]]


def test_everything_round_trips_through_close_and_open(tmp_path: Path) -> None:
    rows: dict[str, dict[str, Any]] = {
        "u1": {"n": 1, "f": 1.0, "b": True, "none": None, "s": 'é "q"\n\\', "l": [1, {"x": []}]},
        "u2": {"big": 2**63 - 1, "small": -(2**63), "d": {"id": "nested ids are fine"}},
    }
    with hutch.open(url(tmp_path)) as db:
        for row_id, row in rows.items():
            db.store.set_row("users", row_id, row)
        db.store.set_value("v", {"a": [1, 2.5, None]})
        before = contents(db)
    with hutch.open(url(tmp_path)) as db:
        assert contents(db) == before
        assert db.store.get_table("users") == rows


@pytest.mark.parametrize("durability", ["commit", "batch", "none"])
def test_every_durability_keeps_data_across_a_clean_close(tmp_path: Path, durability: str) -> None:
    with hutch.open(url(tmp_path), durability=durability, batch_interval=0.01) as db:
        for i in range(20):
            db.store.set_row("t", f"r{i}", {"i": i})
        db.store.set_value("k", durability)
    with hutch.open(url(tmp_path)) as db:
        assert len(db.store.get_row_ids("t")) == 20
        assert db.store.get_value("k") == durability


@pytest.mark.usefixtures("several_opens")
def test_compaction_drops_dead_lines_atomically_and_keeps_the_content(tmp_path: Path) -> None:
    options: dict[str, Any] = {"compact_lines": 50, "collections": {"t": {"indexed": ["i"]}}}
    with (
        hutch.open(url(tmp_path), **options) as db,
        hutch.open(url(tmp_path), **options, follow=False) as other,
    ):
        for i in range(200):
            db.store.set_row("t", f"r{i % 7}", {"i": i})
            db.store.set_value(f"v{i % 3}", i)
        assert len(data_lines(tmp_path / "t.jsonl")) <= 50
        assert len(data_lines(tmp_path / "_values.jsonl")) <= 50
        assert len(data_lines(tmp_path / "_commits.jsonl")) <= 50
        assert temp_files(tmp_path) == []
        other.refresh()  # it follows the compacted logs
        assert contents(other) == contents(db)
        with other.store.transaction():
            other.store.del_row("t", "r0")
        before = contents(other)
        assert log_lines(tmp_path / "t.jsonl")[0][-1] > 1, "a new generation"
        lines = data_lines(tmp_path / "t.jsonl")
        assert [entry[0] for entry in lines] == sorted(entry[0] for entry in lines)
        assert len(lines) < 200, "dead lines were dropped"
    with hutch.open(url(tmp_path)) as db:
        assert contents(db) == before
        index = log_lines(tmp_path / "indices" / "t" / "i.jsonl")
        assert index == sorted([row["i"], r] for r, row in db.store.get_table("t").items())


def test_a_torn_last_line_and_an_unfinished_commit_are_ignored_and_trimmed(
    tmp_path: Path,
) -> None:
    with hutch.open(url(tmp_path)) as db:
        db.store.set_row("a", "r1", {"n": 1})
        db.store.set_row("b", "r1", {"n": 1})
        before = contents(db)
    good = {name: (tmp_path / name).read_bytes() for name in ("a.jsonl", "b.jsonl")}
    # A commit that wrote its line to a.jsonl but never reached the commit log, and a torn line.
    with (tmp_path / "a.jsonl").open("ab") as log:
        log.write(b'[3,"r2",{"n":2}]\n')
    with (tmp_path / "b.jsonl").open("ab") as log:
        log.write(b'[3,"r2",{"n":')
    with (tmp_path / "_commits.jsonl").open("ab") as log:
        log.write(b"[3,")
    with hutch.open(url(tmp_path)) as db:
        assert contents(db) == before
        assert {name: (tmp_path / name).read_bytes() for name in good} == good
        db.store.set_row("c", "r1", {"n": 3})  # commit 3 at last: the old lines stay gone
    with hutch.open(url(tmp_path)) as db:
        assert not db.store.has_row("a", "r2")
        assert db.store.get_row("c", "r1") == {"n": 3}


def test_a_damaged_line_before_good_ones_is_reported(tmp_path: Path) -> None:
    with hutch.open(url(tmp_path)) as db:
        db.store.set_row("t", "r1", {"n": 1})
        db.store.set_row("t", "r2", {"n": 2})
    log = tmp_path / "t.jsonl"
    header, rest = log.read_bytes().split(b"\n", 1)
    log.write_bytes(header + b"\ngarbage\n" + rest)
    with pytest.raises(hutch.CorruptData, match=r"t\.jsonl: line 2 \(byte \d+\) is not a line"):
        hutch.open(url(tmp_path))
    assert log.read_bytes() == header + b"\ngarbage\n" + rest


@pytest.mark.parametrize(
    ("edited", "fits"),
    [
        (b'{"n":9223372036854775807}', True),  # 19 digits, the largest 64-bit integer
        (b'{"n":-9223372036854775808}', True),
        (b'{"n":9223372036854775808}', False),  # one more does not fit
        (b'{"n":123456789012345678901234}', False),  # orjson alone would read a float
        (b'{"n":[1,{"m":-123456789012345678901234}]}', False),
        (b'{"n":1.23456789012345678901234}', True),
        (b'{"id":"r9"}', False),  # "id" is the row id's name
        (b'{"":1}', False),
        (b'{"n":"a\\u0000b"}', False),
        (b'{"n":"\\u0000"}', False),
        (b'{"n":"id"}', True),  # text that only looks like what needs a check
        (b'{"n":"12345678901234567890"}', True),
    ],
)
def test_a_line_edited_by_hand_is_checked_like_a_write(
    tmp_path: Path, edited: bytes, fits: bool
) -> None:
    with hutch.open(url(tmp_path)) as db:
        db.store.set_row("t", "r1", {"n": 1})
    log = tmp_path / "t.jsonl"
    log.write_bytes(log.read_bytes().replace(b'{"n":1}', edited))
    if fits:
        with hutch.open(url(tmp_path)) as db:
            assert db.store.get_row("t", "r1") == orjson.loads(edited)
    else:
        with pytest.raises(hutch.CorruptData, match=r"t\.jsonl"):
            hutch.open(url(tmp_path))


def test_indices_list_value_and_row_id_sorted_and_follow_every_change(tmp_path: Path) -> None:
    collections = {"users": {"indexed": ["team", "age"]}}
    with hutch.open(url(tmp_path), collections=collections) as db:
        db.store.set_row("users", "b", {"team": "red", "age": 30})
        db.store.set_row("users", "a", {"team": "red", "age": 2.5})
        db.store.set_row("users", "c", {"team": None})
        db.store.set_row("users", "d", {"team": "blue", "age": 1})
        db.store.del_row("users", "d")
    folder = tmp_path / "indices" / "users"
    assert log_lines(folder / "team.jsonl") == [[None, "c"], ["red", "a"], ["red", "b"]]
    assert log_lines(folder / "age.jsonl") == [[2.5, "a"], [30, "b"]]
    (folder / "team.jsonl").write_text("stale\n")
    with hutch.open(url(tmp_path)) as db:  # a stale index is rewritten at open
        assert log_lines(folder / "team.jsonl") == [[None, "c"], ["red", "a"], ["red", "b"]]
        (folder / "age.jsonl").unlink()
        db.reindex()
        assert log_lines(folder / "age.jsonl") == [[2.5, "a"], [30, "b"]]


@pytest.mark.parametrize("table", ["../x", "a/b", "_values", "", ".hidden", "x" * 65])
def test_hostile_table_ids_are_refused_before_anything_is_written(
    tmp_path: Path, table: str
) -> None:
    with hutch.open(url(tmp_path / "data")) as db:
        with pytest.raises(hutch.InvalidId):
            db.store.set_row(table, "r", {"a": 1})
        with pytest.raises(hutch.InvalidId):
            db.store.set_row("t", "../" + table, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert [p.name for p in (tmp_path / "data").glob("*.jsonl")] == ["_commits.jsonl"]


def test_a_log_that_is_a_symbolic_link_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"")
    root = tmp_path / "data"
    with hutch.open(url(root)) as db:
        db.store.set_row("t", "r", {"a": 1})
    (root / "t.jsonl").unlink()
    (root / "t.jsonl").symlink_to(outside)
    with pytest.raises(hutch.StorageError, match="link"):
        hutch.open(url(root))
    assert outside.read_bytes() == b""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checkpoint_interval": 1}, "does not take the option"),
        ({"batch_interval": 0}, "batch_interval must be a positive number"),
        ({"compact_lines": "many"}, "compact_lines must be a positive number"),
        ({"collections": {"t": {"indexed": ["../x"]}}}, "becomes a file name"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open(url(tmp_path), **options)


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hutch.json").write_text('{"format": 3, "kind": "jsonl", "collections": {}}')
    with pytest.raises(hutch.UnsupportedFormat, match="upgrade hutch"):
        hutch.open(url(tmp_path))


def test_a_file_store_is_not_opened_as_jsonl(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "r", {"a": 1})
    with pytest.raises(hutch.ConfigError, match="holds a file:// store"):
        hutch.open(url(tmp_path))


@pytest.mark.usefixtures("several_opens")
def test_another_database_sees_commits_and_compactions(tmp_path: Path) -> None:
    with (
        hutch.open(url(tmp_path), compact_lines=20) as a,
        hutch.open(url(tmp_path), follow=False) as b,
    ):
        heard: list[hutch.Changes] = []
        b.store.add_listener(heard.append, table="t")
        a.store.set_row("t", "r1", {"n": 1})
        a.store.set_value("count", 1)
        with b.store.transaction():  # starts from a's commits
            b.store.set_value("count", b.store.get_value("count") + 1)
        assert heard
        assert b.store.get_row("t", "r1") == {"n": 1}
        for i in range(60):  # a compacts t.jsonl; b must see the deletions too
            a.store.set_row("t", f"x{i % 3}", {"i": i})
        a.store.del_row("t", "r1")
        for i in range(60):
            a.store.set_row("t", f"x{i % 3}", {"i": i})
        b.refresh()
        assert contents(b) == contents(a)
        assert a.store.get_value("count") == 2


# -- randomised operations, reopened -----------------------------------------------------------

_operations = operations()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_random_operations_survive_reopening(
    tmp_path: Path, operations: list[tuple[Any, ...]]
) -> None:
    root = tmp_path / os.urandom(6).hex()
    options: dict[str, Any] = {"compact_lines": 4, "collections": {"a": {"indexed": ["b"]}}}
    expected = hutch.open("memory://")
    db = hutch.open(url(root), **options)
    try:
        for operation in operations:
            name, *args = operation
            if name == "reopen":
                db.close()
                db = hutch.open(url(root), **options)
                continue
            getattr(expected.store, name)(*args)
            getattr(db.store, name)(*args)
    finally:
        db.close()
    with hutch.open(url(root)) as reopened:
        assert contents(reopened) == contents(expected)


# -- a writer killed with SIGKILL ----------------------------------------------------------------


def crash_and_check(tmp_path: Path, seed: int, options: dict[str, Any]) -> None:
    """Kill a writer after a random number of acknowledged commits; check every one is there."""
    rng = random.Random(seed)
    root = tmp_path / "data"
    plan = make_plan(rng, 300, reopen_rate=0.05)
    plan_file = tmp_path / "plan.jsonl"
    plan_file.write_text("".join(json.dumps(step) + "\n" for step in plan), encoding="utf-8")
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    errors = tmp_path / "writer.err"
    kill_after = rng.randint(1, 40)
    acked = 0
    with errors.open("wb") as error_file:
        process = subprocess.Popen(
            [sys.executable, str(script), url(root), str(plan_file), json.dumps(options)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=error_file,
            bufsize=0,
        )
    try:
        assert process.stdout is not None
        reader = LineReader(process.stdout)
        while acked < kill_after:
            line = reader.readline()
            assert line is not None, errors.read_text()
            if line == "done":
                break
            assert line == str(acked + 1), errors.read_text()
            acked += 1
        process.kill()
        process.wait(WAIT)
        for line in reader.rest():
            if line != "done":
                acked += 1
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL, errors.read_text()
    states = states_after(plan, acked)
    with hutch.open(url(root)) as db:
        tables = {table: db.store.get_table(table) for table in db.store.get_table_ids()}
        values = db.store.get_values()
        counter = values.get("counter")
        assert counter in states, f"{acked} acknowledged, but the store holds {counter}"
        # Both collections and the values of one commit: all there or none (atomic commits).
        assert canonical((tables, values)) == canonical(states[counter])
        assert temp_files(root) == []
        for table, fields in options.get("collections", {}).items():
            for field in fields["indexed"]:
                index = log_lines(root / "indices" / table / f"{field}.jsonl")
                rows = tables.get(table, {})
                assert index == sorted([r[field], i] for i, r in rows.items() if field in r)


@pytest.mark.parametrize("seed", range(16))
def test_a_killed_writer_loses_no_acknowledged_commit(tmp_path: Path, seed: int) -> None:
    options: dict[str, Any] = {
        "compact_lines": 8,
        "collections": {"items": {"indexed": ["kind"]}, "rows": {"indexed": ["kind"]}},
    }
    crash_and_check(tmp_path, seed, options)


# -- several processes increment one counter -----------------------------------------------------


def test_increments_from_several_processes_add_up(tmp_path: Path) -> None:
    count_in_processes(tmp_path, url(tmp_path / "data"), 4, 40, compact_lines=10)
