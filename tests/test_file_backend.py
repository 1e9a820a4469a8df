"""The file backend: its format on disk, its settings, durability modes, indices and round trips."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import logfiles
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from operations import operations

import hutch
from hutch.backends.file import FilePersister, fsio, indices


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_bare_path_and_a_file_url_open_the_file_backend(tmp_path: Path) -> None:
    with hutch.open(tmp_path / "a") as db:
        assert isinstance(db.backend, FilePersister)
        assert db.capabilities.durable
        assert db.capabilities.multi_process
    with hutch.open(f"file://{tmp_path}/b") as db:
        assert isinstance(db.backend, FilePersister)
        assert db.backend.root == tmp_path / "b"


def test_records_are_pretty_sorted_json_with_the_id_inside(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("users", "u1", {"name": "Ada", "email": "ada@x.io", "tags": ["a"]})
    text = (tmp_path / "users" / "u1.json").read_text()
    assert text.splitlines() == [
        "{",
        '  "email": "ada@x.io",',
        '  "id": "u1",',
        '  "name": "Ada",',
        '  "tags": [',
        '    "a"',
        "  ]",
        "}",
    ]
    assert text.endswith("}\n")


def test_a_committed_transaction_is_on_disk_in_the_log_at_once(tmp_path: Path) -> None:
    db = hutch.open(tmp_path, checkpoint_interval=3600)
    try:
        db.store.set_row("users", "u1", {"name": "Ada"})
        logged = b"".join(p.read_bytes() for p in (tmp_path / "_wal").iterdir())
        assert b'"u1":{"name":"Ada"}' in logged
    finally:
        db.close()
    assert (tmp_path / "users" / "u1.json").exists()


def test_everything_round_trips_through_close_and_open(tmp_path: Path) -> None:
    row = {"s": "é\u2603", "i": -(2**63), "f": 0.1, "t": True, "n": None, "l": [1, [2]], "d": {}}
    with hutch.open(tmp_path) as db:
        db.store.set_row("things", "a.b-c_1", row)
        db.store.set_value("config", {"nested": [1.5, None]})
        db.store.set_value("none", None)
    with hutch.open(tmp_path) as db:
        assert db.store.get_row("things", "a.b-c_1") == row
        assert type(db.store.get_cell("things", "a.b-c_1", "f")) is float
        assert db.store.get_values() == {"config": {"nested": [1.5, None]}, "none": None}


def test_deletes_remove_files_and_empty_tables_vanish(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "r1", {"a": 1})
        db.store.set_row("t", "r2", {"a": 2})
    with hutch.open(tmp_path) as db:
        db.store.del_row("t", "r1")
        db.store.del_cell("t", "r2", "a")
        db.store.set_value("v", 1)
        db.store.del_value("v")
    assert files_under(tmp_path / "t") == []
    with hutch.open(tmp_path) as db:
        assert db.store.get_table_ids() == []
        assert db.store.get_values() == {}


def test_the_manifest_keeps_collection_settings(tmp_path: Path) -> None:
    settings_ = {"users": {"indexed": ["email"], "wal": False, "path": "people"}}
    with hutch.open(tmp_path, collections=settings_) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
    manifest = json.loads((tmp_path / "hutch.json").read_text())
    assert manifest == {
        "format": 2,
        "id": manifest["id"],
        "collections": {"users": {"indexed": ["email"], "wal": False, "path": "people"}},
    }
    assert len(manifest["id"]) == 32
    assert (tmp_path / "people" / "u1.json").exists()
    with hutch.open(tmp_path) as db:  # no settings given: the kept ones apply
        assert db.store.get_row("users", "u1") == {"email": "a@x.io"}
        assert isinstance(db.backend, FilePersister)
        assert db.backend.settings["users"].path == "people"


def test_a_new_path_takes_the_old_folder_along(tmp_path: Path) -> None:
    """Else its rows would vanish from view, and new ones land beside them in another folder
    (test_file_settings.py tests the move further)."""
    with hutch.open(tmp_path, collections={"users": {"path": "people/all"}}) as db:
        db.store.set_row("users", "u1", {"name": "Ada"})
    with hutch.open(tmp_path, collections={"users": {"path": "staff"}}) as db:
        assert db.store.get_row("users", "u1") == {"name": "Ada"}
    assert not (tmp_path / "people" / "all").exists()
    with hutch.open(tmp_path, collections={"notes": {"path": "a"}}) as db:
        pass  # a collection with no files yet moves freely
    with hutch.open(tmp_path, collections={"notes": {"path": "b"}}) as db:
        db.store.set_row("notes", "n1", {"text": "hi"})
    assert (tmp_path / "b" / "n1.json").exists()


@pytest.mark.usefixtures("several_opens")
def test_a_new_wal_setting_is_refused_while_another_open_holds_the_folder(tmp_path: Path) -> None:
    """The other would go on writing the collection the old way: its checkpoint could then put
    back a record file older than a commit."""
    unlogged = {"users": {"wal": False}}
    with hutch.open(tmp_path, collections=unlogged) as first:
        first.store.set_row("users", "u1", {"v": 1})
        with pytest.raises(hutch.ConfigError, match="other processes have the folder open"):
            hutch.open(tmp_path, collections={"users": {"wal": True}})
        with hutch.open(tmp_path, collections=unlogged) as second:  # the same setting: fine
            assert second.store.get_row("users", "u1") == {"v": 1}
    with hutch.open(tmp_path, collections={"users": {"wal": True}}) as db:  # alone now
        assert db.store.get_row("users", "u1") == {"v": 1}
    assert json.loads((tmp_path / "hutch.json").read_text())["collections"]["users"]["wal"]


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hutch.json").write_text('{"format": 99, "collections": {}}')
    with pytest.raises(hutch.UnsupportedFormat, match="upgrade hutch"):
        hutch.open(tmp_path)


@pytest.mark.parametrize(
    ("collections", "message"),
    [
        ({"users": {"indexed": ["../x"]}}, "becomes a file name"),
        ({"users": {"path": "../outside"}}, "relative folder inside the root"),
        ({"users": {"path": "/etc"}}, "relative folder inside the root"),
        ({"users": {"path": "_wal"}}, "relative folder inside the root"),
        ({"a": {"path": "same"}, "b": {"path": "same"}}, "would both live in"),
    ],
)
def test_unsafe_settings_fail_before_any_work(
    tmp_path: Path, collections: dict[str, Any], message: str
) -> None:
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open(tmp_path / "data", collections=collections)


def test_the_root_is_created_but_not_its_parents(tmp_path: Path) -> None:
    hutch.open(tmp_path / "new").close()
    assert (tmp_path / "new" / "hutch.json").exists()
    with pytest.raises(hutch.ConfigError, match="does not exist; create it"):
        hutch.open(tmp_path / "missing" / "data")
    (tmp_path / "file").write_text("")
    with pytest.raises(hutch.ConfigError, match="not a folder"):
        hutch.open(tmp_path / "file")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_corrupt": "ignore"}, "on_corrupt"),
        ({"batch_interval": 0}, "positive number"),
        ({"checkpoint_interval": "soon"}, "positive number"),
        ({"flavour": 1}, "does not take the option"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open(tmp_path, **options)


@pytest.mark.parametrize("never", [float("inf"), 10**400])
@pytest.mark.parametrize("option", ["batch_interval", "checkpoint_interval"])
def test_an_interval_too_long_to_wait_for_means_never(
    tmp_path: Path, option: str, never: float
) -> None:
    """Was a bare OverflowError for a whole number no float holds."""
    options: dict[str, Any] = {option: never}
    with hutch.open(tmp_path, durability="batch", **options) as db:
        db.store.set_row("t", "r", {"n": 1})
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_row("t", "r") == {"n": 1}  # close flushed and checkpointed


def test_indices_list_value_and_row_id_sorted(tmp_path: Path) -> None:
    settings_ = {"users": {"indexed": ["email", "age"]}}
    with hutch.open(tmp_path, collections=settings_) as db:
        db.store.set_row("users", "u2", {"email": "b@x.io", "age": 30})
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        db.store.set_row("users", "u3", {"email": "a@x.io", "age": None})
    lines = (tmp_path / "users" / "indices" / "email.jsonl").read_text().splitlines()
    assert lines == ['["a@x.io","u1"]', '["a@x.io","u3"]', '["b@x.io","u2"]']
    ages = (tmp_path / "users" / "indices" / "age.jsonl").read_text().splitlines()
    assert ages == ['[null,"u3"]', '[30,"u2"]']


def test_a_hand_edit_is_read_at_the_next_open_and_stale_indices_are_rewritten(
    tmp_path: Path,
) -> None:
    settings_ = {"users": {"indexed": ["email"]}}
    with hutch.open(tmp_path, collections=settings_) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
    record = tmp_path / "users" / "u1.json"
    record.write_text('{"id": "u1", "email": "edited@x.io"}')
    (tmp_path / "users" / "u2.json").write_text('{"email": "new@x.io"}\n')
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("users") == {
            "u1": {"email": "edited@x.io"},
            "u2": {"email": "new@x.io"},
        }
    lines = (tmp_path / "users" / "indices" / "email.jsonl").read_text().splitlines()
    assert lines == ['["edited@x.io","u1"]', '["new@x.io","u2"]']


def test_reindex_rebuilds_index_files(tmp_path: Path) -> None:
    with hutch.open(tmp_path, collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        index = tmp_path / "users" / "indices" / "email.jsonl"
        db.close()
    with hutch.open(tmp_path) as db:
        index.unlink()
        db.reindex()
        assert index.read_text() == '["a@x.io","u1"]\n'


def test_wal_false_collections_have_their_records_written_at_commit(tmp_path: Path) -> None:
    settings_ = {"audit": {"wal": False, "indexed": ["kind"]}, "users": {}}
    db = hutch.open(tmp_path, collections=settings_, checkpoint_interval=3600)
    try:
        db.store.set_row("audit", "e1", {"kind": "login"})
        db.store.set_row("users", "u1", {"name": "Ada"})
        assert orjson.loads((tmp_path / "audit" / "e1.json").read_bytes()) == {
            "id": "e1",
            "kind": "login",
        }
        index = (tmp_path / "audit" / "indices" / "kind.jsonl").read_text()
        assert index == '{"id":"e1","value":"login"}\n'  # appended to the empty index
        assert not (tmp_path / "users" / "u1.json").exists()  # waits for the checkpoint
        db.store.del_row("audit", "e1")
        assert not (tmp_path / "audit" / "e1.json").exists()
    finally:
        db.close()
    assert (tmp_path / "users" / "u1.json").exists()


@pytest.mark.parametrize("durability", ["commit", "batch", "none"])
def test_every_durability_keeps_data_across_a_clean_close(tmp_path: Path, durability: str) -> None:
    with hutch.open(tmp_path, durability=durability, batch_interval=0.05) as db:
        for i in range(20):
            db.store.set_row("t", f"r{i}", {"i": i})
    with hutch.open(tmp_path) as db:
        assert db.store.get_row_count("t") == 20


def test_a_checkpoint_leaves_a_newest_log_that_changes_nothing(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "r", {"a": 1})
    logs = logfiles.generations(tmp_path)
    assert logfiles.changes(logs[-1]) == []
    assert len(logs) <= 2


def test_leftover_temp_files_are_removed_at_open(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "r", {"a": 1})
    (tmp_path / "t" / ".r.json.0badc0de.tmp").write_text("{half")
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("t") == {"r": {"a": 1}}
    assert files_under(tmp_path / "t") == ["r.json"]


def test_a_folder_that_is_not_a_collection_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "notes.txt").write_text("hello")
    with hutch.open(tmp_path) as db:
        assert db.store.get_table_ids() == []
    assert (tmp_path / "notes.txt").read_text() == "hello"


_operations = operations(length=25)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_random_operations_survive_reopening(
    tmp_path: Path, operations: list[tuple[Any, ...]]
) -> None:
    root = tmp_path / os.urandom(6).hex()
    expected = hutch.open("memory://")
    db = hutch.open(root, checkpoint_interval=3600)
    try:
        for operation in operations:
            name, *args = operation
            if name == "reopen":
                db.close()
                db = hutch.open(root, checkpoint_interval=3600)
                continue
            getattr(expected.store, name)(*args)
            getattr(db.store, name)(*args)
    finally:
        db.close()
    with hutch.open(root) as reopened:
        for table_id in ["a", "b", "c", "d"]:
            got = orjson.dumps(reopened.store.get_table(table_id), option=orjson.OPT_SORT_KEYS)
            want = orjson.dumps(expected.store.get_table(table_id), option=orjson.OPT_SORT_KEYS)
            assert got == want
        got_values = orjson.dumps(reopened.store.get_values(), option=orjson.OPT_SORT_KEYS)
        assert got_values == orjson.dumps(expected.store.get_values(), option=orjson.OPT_SORT_KEYS)


@pytest.mark.usefixtures("several_opens")
def test_refresh_waits_for_a_checkpoint_in_another_thread(tmp_path: Path) -> None:
    with hutch.open(tmp_path, follow=False) as db, hutch.open(tmp_path) as other:
        other.store.set_row("t", "r", {"n": 1})
        backend = db.backend
        assert isinstance(backend, FilePersister)
        refreshed = threading.Event()

        def refresh() -> None:
            db.refresh()
            refreshed.set()

        with backend._write_lock.held():  # what the background checkpointer holds while it works
            thread = threading.Thread(target=refresh)
            thread.start()
            assert not refreshed.wait(0.2)
        thread.join(30)
        assert refreshed.is_set()
        assert db.store.get_row("t", "r") == {"n": 1}


@pytest.mark.usefixtures("several_opens")
def test_a_process_far_behind_leaves_a_running_checkpoint_its_temp_files(tmp_path: Path) -> None:
    """A process two checkpoints behind reads everything again on its next transaction; it
    once removed the temp files of another's checkpoint in flight, which then failed."""
    options: dict[str, Any] = {"checkpoint_interval": 3600}
    with (
        hutch.open(tmp_path, **options) as db,
        hutch.open(tmp_path, **options, follow=False) as behind,
    ):
        behind.store.set_row("t", "x", {"v": 0})
        backend = db.backend
        assert isinstance(backend, FilePersister)
        for n in range(3):  # the log moves on twice past where ``behind`` reads
            db.store.set_row("t", f"r{n}", {"v": n})
            backend.checkpoint()
        db.store.set_row("t", "late", {"v": 1})
        caught: list[str] = []

        def trace(operation: str, *arguments: Any) -> None:
            if operation == "create" and fsio.is_temp(arguments[1]) and not caught:
                caught.append(arguments[1])
                behind.store.set_row("t", "y", {"v": 1})  # reads everything again, now

        fsio.tracer = trace
        try:
            backend.checkpoint()
        finally:
            fsio.tracer = None
        assert caught
        assert behind.store.get_row("t", "late") == {"v": 1}
    with hutch.open(tmp_path) as db:
        assert db.store.get_row_count("t") == 6


def test_reindex_writes_an_unlogged_collections_index_under_the_write_lock(
    tmp_path: Path,
) -> None:
    """Commits write a ``"wal": false`` collection's index under the lock; a reindex that wrote
    it outside, from a snapshot, could land last and leave the index stale."""
    collections = {"users": {"wal": False, "indexed": ["email"]}, "notes": {"indexed": ["k"]}}
    with hutch.open(tmp_path, collections=collections) as db:
        db.store.set_row("users", "u1", {"email": "ada@example.org"})
        db.store.set_row("notes", "n1", {"k": 1})
        backend = db.backend
        assert isinstance(backend, FilePersister)
        locked: dict[str, bool] = {}  # index file -> whether the write lock was held

        def trace(operation: str, *arguments: Any) -> None:
            if operation == "rename" and arguments[3].endswith(indices.SUFFIX):
                locked[arguments[3]] = backend._write_lock.owned()

        fsio.tracer = trace
        try:
            db.reindex()
        finally:
            fsio.tracer = None
    assert locked == {"email.jsonl": True, "k.jsonl": False}


@pytest.mark.usefixtures("several_opens")
def test_listeners_hear_only_what_changed_here(tmp_path: Path) -> None:
    with (
        hutch.open(tmp_path, checkpoint_interval=3600, follow=False) as db,
        hutch.open(tmp_path, checkpoint_interval=3600) as other,
    ):
        heard: list[hutch.Changes] = []
        db.store.add_listener(heard.append)
        other.store.set_row("t", "gone", {"n": 1})
        other.store.del_row("t", "gone")
        other.store.set_value("v", 1)
        other.store.del_value("v")
        db.refresh()
        assert heard == []
        other.store.set_row("t", "kept", {"n": 1})
        db.refresh()
        assert [dict(c.tables) for c in heard] == [{"t": {"kept": {"n": 1}}}]


@pytest.mark.parametrize(
    ("number", "fits"),
    [
        ("9223372036854775807", True),
        ("-9223372036854775808", True),
        ("9223372036854775808", False),
        ("123456789012345678901234", False),  # orjson alone would read the nearest float
        ("-123456789012345678901234", False),
        ("1.23456789012345678901234", True),
        ('"123456789012345678901234"', True),
    ],
)
def test_a_number_edited_by_hand_comes_back_exactly_or_is_refused(
    tmp_path: Path, number: str, fits: bool
) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("t", "r1", {"n": 1})
        db.store.set_value("v", 1)
    (tmp_path / "t" / "r1.json").write_text(f'{{"id": "r1", "n": {number}}}')
    (tmp_path / "_values.json").write_text(f'{{"v": [{number}]}}')
    expected = json.loads(number)
    if fits:
        with hutch.open(tmp_path) as db:
            assert db.store.get_row("t", "r1") == {"n": expected}
            assert db.store.get_value("v") == [expected]
        return
    with pytest.raises(hutch.CorruptData, match=r"r1\.json: the integer .* does not fit in 64"):
        hutch.open(tmp_path)
    (tmp_path / "t" / "r1.json").write_text('{"id": "r1", "n": 1}')
    with pytest.raises(hutch.CorruptData, match=r"_values\.json"):
        hutch.open(tmp_path)
