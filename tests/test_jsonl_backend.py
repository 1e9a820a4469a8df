"""The ``jsonl://`` backend: append-only JSONL logs per collection (docs/jsonl-format.md)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, LineReader, count_in_processes, end_process
from crashcheck import PER_POINT, crash_points, record_plan
from crashsim import materialize, read_tree
from hypothesis import HealthCheck, given, settings
from operations import operations
from test_file_crash import WRITER, canonical, make_plan, states_after, temp_files

import hutch
from hutch.backends.file import fsio
from hutch.backends.jsonl import JsonlPersister
from hutch.backends.jsonl.lines import header


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
        ({"compact_bytes": -1}, "compact_bytes must be a positive number"),
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
    left = read_tree(root)
    with hutch.open(url(root), read_only=True) as db:  # reads what was left, as it was left
        read_only = contents(db)
    assert read_tree(root) == left
    with hutch.open(url(root)) as db:
        assert contents(db) == read_only
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


# -- read-only opens -----------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "data"
NOBODY = 65534
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a file system and dropping to another user need root"
)


def written(root: Path) -> bytes:
    """Write a folder as a writing open leaves it (two collections, one indexed, values, a
    deletion), close it; its contents."""
    with hutch.open(url(root), collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        with db.store.transaction():
            db.store.set_row("users", "u2", {"email": "b@x.io"})
            db.store.set_row("teams", "t1", {"name": "red"})
            db.store.set_value("k", [1, None])
        db.store.del_row("users", "u1")
        db.store.set_value("gone", 1)
        db.store.del_value("gone")
        return contents(db)


@contextlib.contextmanager
def nothing_written(root: Path) -> Iterator[None]:
    """Within it, fsio is asked to change (or sync) nothing at all, and no file or folder
    under ``root`` appears, changes or goes."""
    before = read_tree(root)
    told: list[tuple[Any, ...]] = []
    assert fsio.tracer is None
    fsio.tracer = lambda *call: told.append(call)
    try:
        yield
    finally:
        fsio.tracer = None
    assert told == []
    assert read_tree(root) == before


def test_a_read_only_open_shows_what_was_written_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    before = written(root)
    given = {"users": {"indexed": ["name"]}, "posts": {"indexed": ["title"]}}
    with (
        nothing_written(root),
        hutch.open(url(root), read_only=True, collections=given, durability="batch") as db,
    ):
        assert db.capabilities.read_only
        assert contents(db) == before
        assert db.store.get_table("users") == {"u2": {"email": "b@x.io"}}
        assert db.store.get_value("k") == [1, None]
        backend = db.backend
        assert isinstance(backend, JsonlPersister)
        # The stored settings win; the given ones count for collections the folder lacks.
        assert backend.settings["users"].indexed == ("email",)
        assert backend.settings["posts"].indexed == ("title",)
        assert not backend.behind()
        assert backend.poll() is None
        db.refresh()
        assert "hutch-jsonl" not in {thread.name for thread in threading.enumerate()}
    assert not (root / "indices" / "posts").exists()


def test_every_write_of_a_read_only_open_raises_read_only_storage(tmp_path: Path) -> None:
    root = tmp_path / "data"
    written(root)
    with nothing_written(root), hutch.open(url(root), read_only=True) as db:
        writes: list[Callable[[], object]] = [
            lambda: db.store.set_row("users", "u3", {"email": "c@x.io"}),
            lambda: db.store.del_row("users", "u2"),
            lambda: db.store.set_value("k", 2),
            db.store.transaction().__enter__,
            db.compact,
            db.reindex,
            db.backend.begin,  # never called by the store: refused all the same
            lambda: db.backend.apply(hutch.Changes({"users": {"u3": {"email": "c@x.io"}}})),
        ]
        for write in writes:
            with pytest.raises(hutch.ReadOnlyStorage, match="read_only"):
                write()
        assert db.store.get_row_ids("users") == ["u2"]


TAILS = ["a torn line", "a torn commit line", "an unfinished commit", "a torn log", "a temp file"]


@pytest.mark.parametrize("left", [*TAILS, "all of them"])
def test_what_a_crash_left_is_not_read_and_stays(
    tmp_path: Path, left: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    with hutch.open(url(root)) as db:
        db.store.set_row("a", "r1", {"n": 1})
        db.store.set_row("b", "r1", {"n": 1})
        before = contents(db)
    folder_id = orjson.loads((root / "hutch.json").read_bytes())["id"]
    tails = {
        "a torn line": ("b.jsonl", b'[3,"r2",{"n":'),
        "a torn commit line": ("_commits.jsonl", b'[3,{"a.jsonl":[1,'),
        "an unfinished commit": ("a.jsonl", b'[3,"r2",{"n":2}]\n'),
        "a torn log": ("c.jsonl", header(folder_id, "c.jsonl", 1)[:20]),
        "a temp file": (".a.jsonl.0badc0de.tmp", header(folder_id, "a.jsonl", 2)),
    }
    for name in TAILS if left == "all of them" else [left]:
        file, tail = tails[name]
        with (root / file).open("ab") as log:
            log.write(tail)
    with nothing_written(root), hutch.open(url(root), read_only=True) as db:
        assert contents(db) == before
    assert ("ignored" in caplog.text) == (left != "a temp file")
    with hutch.open(url(root)) as db:  # a writing open cuts what was left, and reads the same
        assert contents(db) == before


@pytest.mark.parametrize("damage", ["a bad line before good ones", "no commit log"])
def test_damage_is_refused_read_only_as_a_writing_open_refuses_it(
    tmp_path: Path, damage: str
) -> None:
    root = tmp_path / "data"
    with hutch.open(url(root)) as db:
        db.store.set_row("t", "r1", {"n": 1})
        db.store.set_row("t", "r2", {"n": 2})
    if damage == "no commit log":
        (root / "_commits.jsonl").unlink()
    else:
        header, rest = (root / "t.jsonl").read_bytes().split(b"\n", 1)
        (root / "t.jsonl").write_bytes(header + b"\ngarbage\n" + rest)
    with nothing_written(root), pytest.raises(hutch.CorruptData) as read_only:
        hutch.open(url(root), read_only=True)
    with pytest.raises(hutch.CorruptData) as writing:
        hutch.open(url(root))
    assert str(read_only.value) == str(writing.value)


def test_a_folder_holding_nothing_opens_empty_and_a_missing_one_is_refused(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(hutch.ConfigError, match="does not exist"):
        hutch.open(url(missing), read_only=True)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with nothing_written(empty), hutch.open(url(empty), read_only=True) as db:
        assert db.store.get_table_ids() == []
        assert db.store.get_values() == {}
    assert list(empty.iterdir()) == []
    # A manifest but no commit log yet: a writing open that stopped before its first commit.
    started = tmp_path / "started"
    hutch.open(url(started)).close()
    (started / "_commits.jsonl").unlink()
    with nothing_written(started), hutch.open(url(started), read_only=True) as db:
        assert db.store.get_table_ids() == []


def test_a_folder_that_needs_an_upgrade_is_refused_until_opened_for_writing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "jsonl_format_1", folder)
    expected = json.loads((FIXTURES / "jsonl_format_1.expected.json").read_text())
    with nothing_written(folder), pytest.raises(hutch.ReadOnlyStorage, match="of format 1"):
        hutch.open(url(folder), read_only=True)
    hutch.open(url(folder)).close()  # upgraded to format 2
    with nothing_written(folder), hutch.open(url(folder), read_only=True) as db:
        assert contents(db) == canonical(expected)
    manifest = orjson.loads((folder / "hutch.json").read_bytes())
    (folder / "hutch.json").write_bytes(orjson.dumps({**manifest, "upgrading": True}))
    with nothing_written(folder), pytest.raises(hutch.ReadOnlyStorage, match="halfway"):
        hutch.open(url(folder), read_only=True)


def _chmod_tree(root: Path, folders: int, files: int) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(folders if path.is_dir() else files)


def test_a_folder_chmod_0555_opens_read_only(tmp_path: Path) -> None:
    root = tmp_path / "data"
    before = written(root)
    _chmod_tree(root, 0o555, 0o444)
    try:
        with nothing_written(root), hutch.open(url(root), read_only=True) as db:
            assert contents(db) == before
    finally:
        _chmod_tree(root, 0o755, 0o644)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder under /tmp that ``nobody`` can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="hutch-jsonl-", dir="/tmp"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base)


#: Opens the folder argv[1] as ``nobody``: read-only, then for writing; prints what each did.
#: (It imports as root first: the interpreter lives where nobody may not read.)
AS_NOBODY = r"""
import json, os, sys, tempfile
import orjson
import hutch

warm = "jsonl://" + tempfile.mkdtemp() + "/w"
hutch.open(warm).close()
hutch.open(warm, read_only=True).close()
os.setgroups([])
os.setgid(NOBODY)
os.setuid(NOBODY)
out = {}
with hutch.open("jsonl://" + sys.argv[1], read_only=True) as db:
    found = {"tables": {t: db.store.get_table(t) for t in db.store.get_table_ids()},
             "values": db.store.get_values()}
    out["read_only"] = orjson.dumps(found, option=orjson.OPT_SORT_KEYS).decode()
try:
    hutch.open("jsonl://" + sys.argv[1]).close()
except hutch.HutchError as error:
    out["writing"] = type(error).__name__
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


@needs_root
def test_a_user_who_may_not_write_the_folder_opens_it_read_only(shared_dir: Path) -> None:
    root = shared_dir / "data"
    before = written(root)  # owned by root: nobody may read it, not write it
    _chmod_tree(root, 0o555, 0o444)
    with nothing_written(root):
        done = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, str(root)],
            cwd=shared_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=WAIT,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["read_only"].encode() == before
    assert out["writing"] == "StoragePermissionError"


@needs_root
def test_a_folder_on_a_read_only_mount_opens_read_only(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=WAIT)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {mount}: {done.stderr.strip()}")
    try:
        root = mount / "data"
        before = written(root)
        command = ["mount", "-o", "remount,ro", str(mount)]
        subprocess.run(command, capture_output=True, check=True, timeout=WAIT)
        with nothing_written(root), hutch.open(url(root), read_only=True) as db:
            assert contents(db) == before
        with pytest.raises(hutch.ReadOnlyStorage, match="read-only"):
            hutch.open(url(root))
    finally:
        if subprocess.run(["umount", str(mount)], check=False, timeout=WAIT).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False, timeout=WAIT)


#: A writer: holds the write lock in a transaction until told to go on, commits it, then
#: (told again) commits argv[2] rows one by one.
WRITER_BESIDE = r"""
import sys
import hutch

with hutch.open(sys.argv[1]) as db:
    with db.store.transaction():
        db.store.set_value("step", 1)
        print("in", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[2])):
        db.store.set_row("t", f"r{n}", {"n": n})
print("done", flush=True)
"""


def test_a_writer_in_another_process_commits_while_a_read_only_database_is_open(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    written(root)
    with (tmp_path / "writer.err").open("wb") as errors:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER_BESIDE, url(root), "50"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            bufsize=0,
        )
    try:
        assert writer.stdin is not None
        assert writer.stdout is not None
        said = LineReader(writer.stdout)
        assert said.readline() == "in", (tmp_path / "writer.err").read_text()
        # A read-only open reads under a shared lock: it waits for the writer's transaction.
        with pytest.raises(hutch.LockTimeout, match=f"write lock.*process {writer.pid}"):
            hutch.open(url(root), read_only=True, lock_timeout=0.2)
        writer.stdin.write(b"go\n")
        assert said.readline() == "committed"
        with hutch.open(url(root), read_only=True) as db:
            snapshot = contents(db)
            assert db.store.get_value("step") == 1
            writer.stdin.write(b"go\n")  # it commits while the read-only database is open
            assert said.readline() == "done", (tmp_path / "writer.err").read_text()
            db.refresh()
            assert contents(db) == snapshot  # a snapshot as of its open
        assert writer.wait(WAIT) == 0, (tmp_path / "writer.err").read_text()
        with hutch.open(url(root), read_only=True) as db:
            assert len(db.store.get_row_ids("t")) == 50
    finally:
        end_process(writer)


@pytest.mark.parametrize("durability", ["commit", "batch"])
def test_every_crash_state_reads_read_only_as_a_writing_open_reads_it(
    folder: Path, scratch: Path, durability: str
) -> None:
    """Power cuts, simulated (tests/crashsim.py): a read-only open of each state a cut could
    leave changes nothing, and holds what a writing open holds after its recovery."""
    rng = random.Random(3)
    plan = make_plan(rng, 12, reopen_rate=0.15)
    options: dict[str, Any] = {
        "collections": {"items": {"indexed": ["kind"]}, "rows": {"indexed": ["kind"]}},
        "compact_lines": 6,
        "durability": durability,
        "batch_interval": 3600,
    }
    recording = record_plan(
        folder, plan, lambda: hutch.open(url(folder), **options), compact_halfway=True
    )
    checked = 0
    for number, (_, state) in enumerate(recording.states(PER_POINT, crash_points(recording, rng))):
        where = scratch / f"state{number}"
        materialize(state, where)
        with nothing_written(where), hutch.open(url(where), read_only=True, **options) as db:
            read_only = contents(db)
        with hutch.open(url(where), **options) as db:
            assert contents(db) == read_only, state.origin
        shutil.rmtree(where)
        checked += 1
    assert checked > 50
