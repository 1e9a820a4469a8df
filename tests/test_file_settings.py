"""Collection settings of a file:// folder that change between opens, or differ between the
processes that have it open: where each collection lives (``path``), which fields have index
files (``indexed``), and how it is written (``wal``); and the keyed values file, entry by entry.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from children import WAIT
from crashcheck import check_states, opener
from crashsim import Recorder

import hutch
from hutch.backends.file import FilePersister
from hutch.config import parse_collections, parse_url

#: A writer that commits each of its transactions and dies without closing: the log keeps
#: them, and no record file holds them (the open's checkpoint ran before they were made).
CRASHING_WRITER = """\
import json, os, sys
import hutch
folder, collections, transactions = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
db = hutch.open(folder, collections=collections, checkpoint_interval=3600)
for ops in transactions:
    with db.store.transaction():
        for method, *arguments in ops:
            getattr(db.store, method)(*arguments)
os._exit(0)
"""


def crashed_writer(
    folder: Path, transactions: list[list[list[Any]]], collections: dict[str, Any] | None = None
) -> None:
    """Commit ``transactions`` (each a list of ``[store method, arguments...]``) in a child
    process that then dies: they are in the log only."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_WRITER,
            str(folder),
            json.dumps(collections or {}),
            json.dumps(transactions),
        ],
        check=True,
        timeout=WAIT,
    )


def manifest(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((root / "hutch.json").read_text())
    return found


def file_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def mark(folder: Path, collection: str, old: str) -> None:
    """Put the mark hutch puts into a moving folder before the manifest notes the move."""
    (folder / "hutch.moving").write_text(json.dumps({"collection": collection, "from": old}))


# -- one folder, one collection ------------------------------------------------------------------


def test_a_path_onto_the_folder_of_a_collection_without_settings_is_refused(
    tmp_path: Path,
) -> None:
    """Else the two collections become one: the new one shows the other's rows, and deleting
    it deletes them."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with pytest.raises(hutch.ConfigError, match=r"holds the records of collection 'posts'"):
        hutch.open(tmp_path, collections={"archive": {"path": "posts"}})
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
        assert db.store.get_table_ids() == ["posts"]
    assert "archive" not in manifest(tmp_path)["collections"]


def test_rows_of_a_new_collection_in_the_folder_of_another_are_refused_before_any_write(
    tmp_path: Path,
) -> None:
    """A collection without settings lives in the folder of its name: if another collection
    lives there, or inside it, the write fails and memory rolls back."""
    settings = {"archive": {"path": "posts"}, "old": {"path": "attic/old"}}
    with hutch.open(tmp_path, collections=settings) as db:
        db.store.set_row("archive", "x1", {"b": 1})
        for table in ("posts", "attic"):
            with pytest.raises(hutch.ConfigError, match=f"collection '{table}' has no path"):
                db.store.set_row(table, "p1", {"a": 1})
            assert db.store.get_table(table) == {}

        def two_collections() -> None:
            with db.store.transaction():
                db.store.set_row("archive", "x2", {"b": 2})
                db.store.set_row("posts", "p2", {"a": 2})

        with pytest.raises(hutch.ConfigError):
            two_collections()
        assert db.store.get_table("archive") == {"x1": {"b": 1}}
        db.store.set_row("others", "o1", {"c": 1})  # a collection of its own name: fine
    assert file_names(tmp_path / "posts") == ["x1.json"]
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("archive") == {"x1": {"b": 1}}
        assert db.store.get_table_ids() == ["archive", "others"]


def test_rows_only_the_log_holds_keep_their_own_folder(tmp_path: Path) -> None:
    """A collection's rows that no record file holds yet (its writer died before a checkpoint)
    are found in the log: a new path of another collection onto its folder is refused, and the
    log keeps them for an open that gives one of them a folder of its own."""
    crashed_writer(tmp_path, [[["set_row", "posts", "p1", {"a": 1}]]])
    assert file_names(tmp_path / "posts") == []
    with pytest.raises(hutch.ConfigError, match="collection 'posts' has no path of its own"):
        hutch.open(tmp_path, collections={"archive": {"path": "posts"}})
    with hutch.open(tmp_path, collections={"posts": {"path": "own"}}) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
        assert db.store.get_table("archive") == {}
    assert file_names(tmp_path / "own") == ["p1.json"]
    assert file_names(tmp_path / "posts") == []


@pytest.mark.parametrize(
    ("collections", "message"),
    [
        ({"a": {"path": "x"}, "b": {"path": "x/y"}}, r"inside the folder of collection 'a'"),
        ({"a": {"path": "x/y"}, "b": {"path": "x"}}, r"inside the folder of collection 'b'"),
        ({"a": {}, "b": {"path": "a/indices"}}, r"inside the folder of collection 'a'"),
        ({"posts": {"path": "p"}, "b": {"path": "p/indices"}}, r"inside the folder of"),
        ({"a": {"path": "hutch.json"}}, "a file hutch keeps in the root"),
        ({"a": {"path": "hutch.lock/a"}}, "a file hutch keeps in the root"),
        ({"a": {"path": "hutch.open"}}, "a file hutch keeps in the root"),
        ({"a": {"path": "HUTCH.json"}}, "a file hutch keeps in the root"),  # but for case
        ({"a": {"path": "Hutch.Lock/a"}}, "a file hutch keeps in the root"),
        ({"a": {"path": "x/p1.JSON"}}, "the name of one of another collection's records"),
    ],
)
def test_collection_folders_inside_another_or_hutchs_own_are_refused(
    tmp_path: Path, collections: dict[str, Any], message: str
) -> None:
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open(tmp_path / "data", collections=collections)
    assert not (tmp_path / "data" / "hutch.json").exists()


@pytest.mark.parametrize("path", ["posts/indices", "posts/deeper/still", "posts"])
def test_a_path_inside_a_folder_holding_another_collections_records_is_refused(
    tmp_path: Path, path: str
) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    for read_only in (False, True):
        with pytest.raises(hutch.ConfigError, match="holds the records of collection 'posts'"):
            hutch.open(tmp_path, read_only=read_only, collections={"archive": {"path": path}})
    assert file_names(tmp_path / "posts") == ["p1.json"]


def test_a_read_only_open_refuses_a_path_onto_another_collections_records(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with pytest.raises(hutch.ConfigError, match="holds the records of collection 'posts'"):
        hutch.open(tmp_path, read_only=True, collections={"archive": {"path": "posts"}})


def test_a_parent_folder_of_a_collection_is_no_collection(tmp_path: Path) -> None:
    """``<root>/attic`` holds the folder of ``old``: it is not read as a collection ``attic``."""
    with hutch.open(tmp_path, collections={"old": {"path": "attic/old"}}) as db:
        db.store.set_row("old", "o1", {"a": 1})
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table_ids() == ["old"]
        assert db.backend.verify() == []


# -- a new path: the folder moves ----------------------------------------------------------------


def test_a_new_path_moves_the_folder_with_every_row_and_index(tmp_path: Path) -> None:
    """Rows in record files, and rows only the log holds (their writer died), go with it."""
    with hutch.open(tmp_path, collections={"users": {"indexed": ["name"]}}) as db:
        db.store.set_row("users", "u1", {"name": "Ada"})
    crashed_writer(tmp_path, [[["set_row", "users", "u2", {"name": "Bob"}]]])
    settings = {"users": {"indexed": ["name"], "path": "people/all"}}
    with hutch.open(tmp_path, collections=settings) as db:
        assert db.store.get_table("users") == {"u1": {"name": "Ada"}, "u2": {"name": "Bob"}}
    assert not (tmp_path / "users").exists()
    assert file_names(tmp_path / "people" / "all") == ["indices", "u1.json", "u2.json"]
    assert manifest(tmp_path)["collections"]["users"]["path"] == "people/all"
    assert "moves" not in manifest(tmp_path)
    with hutch.open(tmp_path) as db:  # the manifest keeps the new place
        assert sorted(db.store.get_row_ids("users")) == ["u1", "u2"]
        assert db.backend.verify() == []
    with hutch.open(tmp_path, collections={"users": {"indexed": ["name"]}}) as db:  # and back
        assert sorted(db.store.get_row_ids("users")) == ["u1", "u2"]
    assert file_names(tmp_path / "users") == ["indices", "u1.json", "u2.json"]
    assert file_names(tmp_path / "people") == []


def test_a_first_path_for_a_collection_without_settings_moves_its_folder(tmp_path: Path) -> None:
    """The manifest kept nothing for it, and its folder was its name: its rows go along."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    assert file_names(tmp_path / "blog") == ["p1.json"]
    assert not (tmp_path / "posts").exists()


@pytest.mark.usefixtures("several_opens")
def test_a_new_path_is_refused_while_another_open_holds_the_folder(tmp_path: Path) -> None:
    """That one would go on writing the collection in the old folder: the two halves would
    split, and the next open would see one."""
    with hutch.open(tmp_path) as first:
        first.store.set_row("posts", "p1", {"a": 1})
        for path in ("blog", "posts/sub"):
            with pytest.raises(hutch.ConfigError, match="other processes have the folder open"):
                hutch.open(tmp_path, collections={"posts": {"path": path}})
        with pytest.raises(hutch.ConfigError, match="other processes have the folder open"):
            hutch.open(tmp_path, collections={"fresh": {"path": "elsewhere"}})
        first.store.set_row("posts", "p2", {"a": 2})
    assert file_names(tmp_path / "posts") == ["p1.json", "p2.json"]
    assert manifest(tmp_path)["collections"] == {}


def test_a_move_onto_a_folder_that_holds_files_is_refused(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    (tmp_path / "blog").mkdir()
    (tmp_path / "blog" / "notes.txt").write_text("mine")
    with pytest.raises(hutch.ConfigError, match="holds files already"):
        hutch.open(tmp_path, collections={"posts": {"path": "blog"}})
    with pytest.raises(hutch.ConfigError, match="in two steps"):
        hutch.open(tmp_path, collections={"posts": {"path": "posts/inner"}})
    (tmp_path / "blog" / "notes.txt").unlink()  # an empty folder is taken
    with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}


def test_a_move_cut_short_is_finished_by_the_next_open(tmp_path: Path) -> None:
    """The folder bears the mark of its move, then the manifest says where the collection
    goes, and where from, before the rename: the next writing open renames (or finds it
    renamed, the mark gone with it) and drops the note, then the mark; a read-only open
    meanwhile reads where the mark is."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    kept = manifest(tmp_path)
    kept["collections"]["posts"] = {"indexed": [], "wal": None, "path": "blog"}
    kept["moves"] = {"posts": "posts"}
    mark(tmp_path / "posts", "posts", "posts")
    (tmp_path / "hutch.json").write_text(json.dumps(kept))
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    assert (tmp_path / "posts" / "p1.json").exists()  # (read-only: nothing moved)
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    assert file_names(tmp_path / "blog") == ["p1.json"]
    assert "moves" not in manifest(tmp_path)
    mark(tmp_path / "blog", "posts", "posts")  # renamed, but the note stayed
    (tmp_path / "hutch.json").write_text(json.dumps(kept))
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    for note in ("posts", "blog"):  # (the second: a note of no move)
        kept["moves"] = {"posts": note}
        (tmp_path / "hutch.json").write_text(json.dumps(kept))
        with hutch.open(tmp_path) as db:
            assert db.store.get_table("posts") == {"p1": {"a": 1}}
        assert "moves" not in manifest(tmp_path)
        assert file_names(tmp_path / "blog") == ["p1.json"]


@pytest.mark.parametrize(
    "moves",
    [{"posts": "../outside"}, {"posts": "/etc"}, {"nobody": "posts"}, {"posts": 3}, ["posts"]],
)
def test_a_moves_note_that_does_not_check_is_corrupt_data(tmp_path: Path, moves: Any) -> None:
    """It names folders: one outside the root, or of no collection kept, is never used."""
    hutch.open(tmp_path, collections={"posts": {"path": "blog"}}).close()
    kept = manifest(tmp_path)
    kept["moves"] = moves
    (tmp_path / "hutch.json").write_text(json.dumps(kept))
    with pytest.raises(hutch.CorruptData, match="'moves'"):
        hutch.open(tmp_path)


def test_a_move_where_both_folders_hold_files_is_corrupt_data(tmp_path: Path) -> None:
    with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "p0.json").write_text('{"id": "p0"}\n')
    mark(tmp_path / "posts", "posts", "posts")
    kept = manifest(tmp_path)
    kept["moves"] = {"posts": "posts"}
    (tmp_path / "hutch.json").write_text(json.dumps(kept))
    with pytest.raises(hutch.CorruptData, match="both hold files of collection 'posts'"):
        hutch.open(tmp_path)
    assert file_names(tmp_path / "blog") == ["p1.json"]
    assert file_names(tmp_path / "posts") == ["hutch.moving", "p0.json"]


def test_a_mark_of_another_move_or_collection_vouches_for_no_note(tmp_path: Path) -> None:
    """A note is followed only where the folder bears the mark of that very move: the mark of
    another collection, or of a move from another folder, is no proof that the folder is
    the collection's."""
    with hutch.open(tmp_path, collections={"archive": {"path": "old"}}) as db:
        db.store.set_row("posts", "p1", {"mine": "posts"})
        db.store.set_row("archive", "a1", {"mine": "archive"})
    kept = manifest(tmp_path)
    kept["collections"]["archive"]["path"] = "new"
    kept["moves"] = {"archive": "posts"}
    (tmp_path / "hutch.json").write_text(json.dumps(kept))
    for collection, old in (("posts", "posts"), ("archive", "old")):
        mark(tmp_path / "posts", collection, old)
        for read_only in (True, False):
            with pytest.raises(hutch.CorruptData, match="bears the mark"):
                hutch.open(tmp_path, read_only=read_only)
    assert file_names(tmp_path / "posts") == ["hutch.moving", "p1.json"]
    assert not (tmp_path / "new").exists()


def test_a_mark_a_crash_left_without_its_note_is_removed_by_the_next_writing_open(
    tmp_path: Path,
) -> None:
    with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    mark(tmp_path / "blog", "posts", "posts")  # (the note was dropped, the mark not yet)
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    with hutch.open(tmp_path) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    assert file_names(tmp_path / "blog") == ["p1.json"]


def test_index_files_an_older_hutch_left_behind_do_not_stop_a_move_back(tmp_path: Path) -> None:
    """An older hutch moved no folder without records: a collection whose rows were all
    deleted left its index files behind. They are the collection's own, derived from no
    record: a move onto them replaces them. Anything else there still stops the move."""
    settings = {"posts": {"indexed": ["a"]}}
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"], "path": "blog"}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    (tmp_path / "posts" / "indices").mkdir(parents=True)
    (tmp_path / "posts" / "indices" / "a.jsonl").write_text('[7, "gone"]\n')
    (tmp_path / "posts" / "indices" / "b.jsonl").write_text('[8, "gone"]\n')
    with pytest.raises(hutch.ConfigError, match="holds files already"):  # b: not its field
        hutch.open(tmp_path, collections=settings)
    (tmp_path / "posts" / "indices" / "b.jsonl").unlink()
    with hutch.open(tmp_path, collections=settings) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
        assert db.backend.verify() == []
    assert file_names(tmp_path / "posts") == ["indices", "p1.json"]
    assert (tmp_path / "posts" / "indices" / "a.jsonl").read_text() == '[1,"p1"]\n'
    assert not (tmp_path / "blog").exists()


@pytest.mark.parametrize("seed", range(2))
def test_every_crash_state_of_a_move_opens_with_every_row(
    folder: Path, scratch: Path, seed: int
) -> None:
    """A power cut anywhere in a move (and in the writes after it) leaves the rows findable:
    in the old folder, or in the new one, never half in each."""
    rng = random.Random(seed)
    rows = {f"r{i}": {"i": i, "kind": rng.choice("ab")} for i in range(6)}
    before = {"items": {"indexed": ["kind"]}}
    with hutch.open(folder, collections=before) as db, db.store.transaction():
        for row_id, row in rows.items():
            db.store.set_row("items", row_id, row)
    after = {"items": {"indexed": ["kind"], "path": "moved/items"}}
    with (
        Recorder(folder) as recording,
        hutch.open(folder, collections=after, checkpoint_interval=3600) as db,
    ):
        recording.mark("ack", 0)
        db.store.set_row("items", "late", {"i": 99, "kind": "c"})
        recording.mark("ack", 1)
    late = {**rows, "late": {"i": 99, "kind": "c"}}
    done: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"items": rows}, {}),
        ({"items": late}, {}),
    ]

    def allowed(point: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Before the second acknowledgement, the rows moved; from the first, perhaps with
        the row in flight; after the second, with it."""
        acknowledged = sum(label == "ack" for label, _ in recording.marks_before(point))
        return done[max(0, acknowledged - 1) : acknowledged + 1]

    for opened in (opener(str, collections=after), opener(str)):
        checked = check_states(recording, scratch, allowed, opened=opened, rng=rng)
        assert checked > 20


@pytest.mark.parametrize("seed", range(2))
def test_every_crash_state_of_a_move_onto_left_over_index_files_opens_with_every_row(
    folder: Path, scratch: Path, seed: int
) -> None:
    """A power cut anywhere while the index files an older hutch left are removed and the
    folder is renamed over theirs leaves every row findable."""
    rng = random.Random(seed)
    rows = {f"r{i}": {"i": i, "kind": rng.choice("ab")} for i in range(4)}
    elsewhere = {"items": {"indexed": ["kind"], "path": "kept/items"}}
    with hutch.open(folder, collections=elsewhere) as db, db.store.transaction():
        for row_id, row in rows.items():
            db.store.set_row("items", row_id, row)
    left = folder / "items" / "indices"
    left.mkdir(parents=True)
    for name in ("kind.jsonl", ".kind.jsonl.0123abcd.tmp"):
        (left / name).write_text('["z", "gone"]\n')
    back = {"items": {"indexed": ["kind"]}}
    with Recorder(folder) as recording, hutch.open(folder, collections=back):
        pass

    def allowed(point: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [({"items": rows}, {})]

    for opened in (opener(str, collections=back), opener(str)):
        assert check_states(recording, scratch, allowed, opened=opened, rng=rng) > 10


# -- indexed fields ------------------------------------------------------------------------------


def test_index_files_of_fields_no_longer_indexed_are_removed(tmp_path: Path) -> None:
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a", "b"]}}) as db:
        db.store.set_row("posts", "p1", {"a": 1, "b": 2})
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"]}}) as db:
        db.store.set_row("posts", "p2", {"a": 1, "b": 3})
    assert file_names(tmp_path / "posts" / "indices") == ["a.jsonl"]
    with hutch.open(tmp_path, collections={"posts": {"indexed": []}}) as db:
        assert db.backend.verify() == []
    assert file_names(tmp_path / "posts" / "indices") == []


def test_an_index_file_that_reappears_stale_is_written_again(tmp_path: Path) -> None:
    """An index file a field's earlier indexing (or an older hutch) left: never trusted."""
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"]}}) as db:
        db.store.set_row("posts", "p1", {"a": 1, "b": 2})
    stale = tmp_path / "posts" / "indices" / "b.jsonl"
    stale.write_text('[7,"p1"]\n[8,"gone"]\n')
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a", "b"]}}) as db:
        assert db.backend.verify() == []
    assert stale.read_text() == '[2,"p1"]\n'
    stale.write_text('[7,"p1"]\n')
    (tmp_path / "posts" / "indices" / "c.jsonl").write_text('[7,"p1"]\n')
    with hutch.open(tmp_path, read_only=True) as db:  # (kept: read-only writes nothing)
        assert any("b.jsonl" in problem for problem in db.backend.verify())
    with hutch.open(tmp_path) as db:
        assert db.backend.verify() == []
    assert file_names(tmp_path / "posts" / "indices") == ["a.jsonl", "b.jsonl"]
    assert stale.read_text() == '[2,"p1"]\n'


@pytest.mark.usefixtures("several_opens")
def test_a_new_indexed_setting_is_refused_while_another_open_holds_the_folder(
    tmp_path: Path,
) -> None:
    """That one would go on checkpointing without the new index (or with the old one): its
    files would not match the records."""
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"]}}) as first:
        first.store.set_row("posts", "p1", {"a": 1, "b": 2})
        for indexed in (["a", "b"], [], ["b"]):
            with pytest.raises(hutch.ConfigError, match="other processes have the folder open"):
                hutch.open(tmp_path, collections={"posts": {"indexed": indexed}})
        for same in ({"posts": {"indexed": ["a"]}}, {}):  # the same settings, or none: fine
            with hutch.open(tmp_path, collections=same) as second:
                assert second.store.get_row("posts", "p1") == {"a": 1, "b": 2}
    assert manifest(tmp_path)["collections"]["posts"]["indexed"] == ["a"]


@pytest.mark.usefixtures("several_opens")
def test_an_open_still_loading_does_not_stop_a_change_of_settings(tmp_path: Path) -> None:
    """Only an open whose settings are fixed counts: one that has not loaded yet reads the
    manifest the change writes (workers started together with new settings all open)."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    settings = {"posts": {"indexed": ["a"], "path": "blog"}}
    config = hutch.BackendConfig(
        url=parse_url(str(tmp_path)), collections=parse_collections(settings)
    )
    loading = FilePersister(config)  # it has the folder open, and has not read its settings
    try:
        with hutch.open(tmp_path, collections=settings) as first:
            assert first.store.get_row("posts", "p1") == {"a": 1}
            assert loading.load().tables == {"posts": {"p1": {"a": 1}}}
    finally:
        loading.close()
    assert file_names(tmp_path / "blog") == ["indices", "p1.json"]


# -- keyed values --------------------------------------------------------------------------------

BAD_VALUES = (
    '{"good": 1, "also": {"x": [1, 2]}, "": 3, "nul": "a\\u0000b", '
    '"big": 123456789012345678901234, "deep": ' + "[" * 101 + "]" * 101 + "}\n"
)


def test_one_bad_keyed_value_is_named_and_stops_the_open(tmp_path: Path) -> None:
    hutch.open(tmp_path).close()
    (tmp_path / "_values.json").write_text(BAD_VALUES)
    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(tmp_path)
    message = str(opening.value)
    assert str(tmp_path / "_values.json") in message
    for key in ("''", "'nul'", "'big'", "'deep'"):
        assert key in message
    assert "'good'" not in message


def test_quarantine_keeps_the_good_keyed_values_and_the_whole_file_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hutch.open(tmp_path).close()
    values = tmp_path / "_values.json"
    values.write_text(BAD_VALUES)
    kept = tmp_path / "_quarantine" / "_root" / "_values.json"
    with (
        caplog.at_level(logging.WARNING, "hutch.backends.file"),
        hutch.open(tmp_path, on_corrupt="quarantine") as db,
    ):
        assert db.store.get_values() == {"good": 1, "also": {"x": [1, 2]}}
        backend = db.backend
        assert isinstance(backend, FilePersister)
        assert backend.quarantined == [kept]
    assert kept.read_text() == BAD_VALUES  # whole: nothing is lost
    assert json.loads(values.read_text()) == {"good": 1, "also": {"x": [1, 2]}}
    warned = [r.getMessage() for r in caplog.records if str(kept) in r.getMessage()]
    assert len(warned) == 1
    assert "'big'" in warned[0]
    assert str(values) in warned[0]
    with hutch.open(tmp_path) as db:  # the file left holds what checks
        assert db.store.get_values() == {"good": 1, "also": {"x": [1, 2]}}


def test_a_bad_keyed_value_the_log_replaces_is_no_damage(tmp_path: Path) -> None:
    """The log holds the key's latest value (its writer died before a checkpoint): the file's
    version never counts."""
    crashed_writer(
        tmp_path, [[["set_value", "k", 1]], [["set_value", "gone", 1]], [["del_value", "gone"]]]
    )
    (tmp_path / "_values.json").write_text('{"k": "a\\u0000", "gone": "b\\u0000", "v": 2}\n')
    with hutch.open(tmp_path) as db:
        assert db.store.get_values() == {"k": 1, "v": 2}
    assert json.loads((tmp_path / "_values.json").read_text()) == {"k": 1, "v": 2}


def test_a_key_repeated_inside_a_keyed_value_fails_that_entry_alone(tmp_path: Path) -> None:
    hutch.open(tmp_path).close()
    text = '{"good": {"x": 1}, "bad": [{"x": 1, "x": 2}], "far": 1e400}\n'
    (tmp_path / "_values.json").write_text(text)
    with pytest.raises(hutch.CorruptData, match="repeats the key 'x'") as opening:
        hutch.open(tmp_path)
    assert "'bad'" in str(opening.value)
    assert "'far'" in str(opening.value)
    assert "'good'" not in str(opening.value)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {"good": {"x": 1}}


@pytest.mark.parametrize(
    "record",
    [
        '{"id": "p1", "a": "x", "a": 2}',
        '{"id": "p1", "id": "p1", "a": 1}',
        '{"id": "p1", "a": 1e999}',
    ],
    ids=["cell", "id", "beyond-a-double"],
)
def test_a_record_holding_what_a_row_cannot_is_corrupt_data(tmp_path: Path, record: str) -> None:
    """A cell a record names twice was dropped without a word (the last one kept); a number
    beyond a double named a character position, not what was wrong."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    (tmp_path / "posts" / "p1.json").write_text(record)
    with pytest.raises(hutch.CorruptData, match=r"p1\.json: .*(repeats the key|beyond)"):
        hutch.open(tmp_path)


def test_a_manifest_repeating_a_key_is_corrupt_data(tmp_path: Path) -> None:
    """Its settings would be the last ones written, without a word."""
    hutch.open(tmp_path, collections={"posts": {"path": "blog"}}).close()
    text = (tmp_path / "hutch.json").read_text()
    (tmp_path / "hutch.json").write_text(text.replace('"format"', '"collections": {}, "format"'))
    for read_only in (False, True):
        with pytest.raises(
            hutch.CorruptData, match=r"hutch\.json: .*repeats the key 'collections'"
        ):
            hutch.open(tmp_path, read_only=read_only)


def test_a_keyed_values_file_that_is_no_object_is_still_refused_whole(tmp_path: Path) -> None:
    hutch.open(tmp_path).close()
    (tmp_path / "_values.json").write_text("[1, 2]\n")
    with pytest.raises(hutch.CorruptData, match="one JSON object"):
        hutch.open(tmp_path)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {}
    assert (tmp_path / "_quarantine" / "_root" / "_values.json").read_text() == "[1, 2]\n"
    assert not (tmp_path / "_values.json").exists()


# -- the other backends --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["jsonl", "sqlite"])
def test_path_is_accepted_and_ignored_where_collections_have_no_folder(
    tmp_path: Path, scheme: str
) -> None:
    pytest.importorskip("sqlite_utils") if scheme == "sqlite" else None
    url = f"sqlite:///{tmp_path / 'app.db'}" if scheme == "sqlite" else f"jsonl://{tmp_path}"
    with hutch.open(url, collections={"posts": {"path": "blog"}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with hutch.open(url, collections={"posts": {"path": "elsewhere", "wal": False}}) as db:
        assert db.store.get_table("posts") == {"p1": {"a": 1}}
    assert not (tmp_path / "blog").exists()
    assert not (tmp_path / "elsewhere").exists()
