"""Attacks on the settings of a file:// folder: collection folders that move
(``path``), collisions between collection folders, settings changed while other processes
have the folder, a hand-edited ``moves`` note, and ``_values.json`` entry by entry.

Each test names what it guards; "Was:" names a bug it once caught.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from children import WAIT, Child
from crashcheck import check_states, opener
from crashsim import Recorder

import hutch
from hutch.backends.file import fsio

#: A writer that commits each of its operations (one transaction each) and dies without
#: closing: the log keeps them, and no record file holds them.
CRASHING_WRITER = """\
import json, os, sys
import hutch
folder, collections, operations = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
db = hutch.open(folder, collections=collections, checkpoint_interval=3600)
for method, *arguments in operations:
    getattr(db.store, method)(*arguments)
os._exit(0)
"""

#: A process that opens a folder with the settings given, says "open" (or "refused <error>"),
#: then waits for a line before it closes and says "closed".
OPENER = """\
import json, os, sys
import hutch
try:
    db = hutch.open(sys.argv[1], collections=json.loads(sys.argv[2]), lock_timeout=60)
except hutch.HutchError as error:
    os.write(1, f"refused {type(error).__name__}: {error}".replace("\\n", " ").encode() + b"\\n")
    sys.exit(0)
os.write(1, b"open\\n")
sys.stdin.readline()
db.close()
os.write(1, b"closed\\n")
"""


def crashed_writer(
    folder: Path, operations: list[list[Any]], collections: dict[str, Any] | None = None
) -> None:
    """Commit ``operations`` (each ``[store method, arguments...]``) in a child process that
    then dies: they are in the log only."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_WRITER,
            str(folder),
            json.dumps(collections or {}),
            json.dumps(operations),
        ],
        check=True,
        timeout=WAIT,
    )


def manifest(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((root / "hutch.json").read_text())
    return found


def write_manifest(root: Path, kept: dict[str, Any]) -> None:
    (root / "hutch.json").write_text(json.dumps(kept))


def file_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def everything(db: hutch.Database) -> dict[str, dict[str, Any]]:
    return {table: db.store.get_table(table) for table in db.store.get_table_ids()}


def opener_child(root: Path, collections: dict[str, Any], tmp_path: Path, name: str) -> Child:
    return Child(
        name,
        [sys.executable, "-c", OPENER, str(root), json.dumps(collections)],
        tmp_path / f"{name}.err",
    )


@contextmanager
def checkpoint_lock_held_shared(root: Path) -> Iterator[None]:
    """Hold ``hutch.checkpoint`` shared, as a read-only open does for its whole load (a backup
    reading the folder, say)."""
    fd = os.open(root / "hutch.checkpoint", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def holds_the_log_folder(root: Path, pid: int) -> bool:
    """Whether process ``pid`` holds the shared flock on ``_wal`` that a writing open takes
    when its settings are read (as /proc/locks shows it)."""
    return pid in fsio.lock_holders(os.stat(root / "_wal"), "FLOCK")


def waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for an flock (a "->" line of /proc/locks)."""
    with open("/proc/locks") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 5 and fields[1] == "->" and fields[5] == str(pid):
                return True
    return False


def until(condition: Any, what: str) -> None:
    """Wait (bounded) for ``condition()``: a condition polled, not a sleep relied upon."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.005)


# -- a collection's rows, after a move -----------------------------------------------------------


def test_log_deletions_of_a_collection_without_settings_spare_records_moved_into_its_folder(
    tmp_path: Path,
) -> None:
    """Was: a writer died after committing, then deleting, a row of ``posts`` (a collection
    without settings): the log holds ``posts: {p1: null}``, no record file. The next open
    gives ``archive`` the path ``posts`` — allowed, as ``posts/`` holds no record — and moves
    archive's folder there. The log's deletion of posts' row is then checkpointed into the
    folder ``posts/``, which is now archive's: archive's own row ``p1`` is deleted. (The
    check that stops an open whose log holds rows for such a collection looks at the rows
    the replay leaves, not at the deletions it makes.)"""
    with hutch.open(tmp_path) as db:
        db.store.set_row("archive", "p1", {"mine": "archive"})
    crashed_writer(tmp_path, [["set_row", "posts", "p1", {"x": 1}], ["del_row", "posts", "p1"]])
    try:
        with hutch.open(tmp_path, collections={"archive": {"path": "posts"}}) as db:
            assert db.store.get_table("archive") == {"p1": {"mine": "archive"}}
    except hutch.ConfigError:
        pass  # refusing the open (before anything is written) would be fine too
    with hutch.open(tmp_path, read_only=True) as db:
        assert db.store.get_table("archive") == {"p1": {"mine": "archive"}}


def test_an_open_refused_for_rows_the_log_holds_has_moved_nothing(tmp_path: Path) -> None:
    """Was: rows that only the log holds for ``blog`` (a collection without settings) stop a
    writing open that gives ``posts`` the path ``blog`` ("before anything is written", says
    file-format.md). The refusal comes after the move: ``posts/`` is already renamed to
    ``blog/`` and the manifest keeps the new path, so the open with the old settings that
    the error invites is refused too, and so is one without settings."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    crashed_writer(tmp_path, [["set_row", "blog", "b1", {"b": 1}]])
    before = manifest(tmp_path)
    with pytest.raises(hutch.ConfigError, match="'blog' has no path of its own"):
        hutch.open(tmp_path, collections={"posts": {"path": "blog"}})
    assert file_names(tmp_path / "posts") == ["p1.json"]
    assert not (tmp_path / "blog").exists()
    assert manifest(tmp_path) == before
    with hutch.open(tmp_path) as db:  # as it was: both collections in their own folders
        assert everything(db) == {"posts": {"p1": {"a": 1}}, "blog": {"b1": {"b": 1}}}


def test_moves_there_and_back_keep_every_row_and_a_clean_index(tmp_path: Path) -> None:
    """Guard: rows in record files and rows only the log holds, moved to a nested path, on,
    back to the collection's name, to the nested path again (its parent left empty): every
    row stays, the index files match, and no folder is left holding records."""
    settings = {"posts": {"indexed": ["a"]}}
    with hutch.open(tmp_path, collections=settings) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    crashed_writer(tmp_path, [["set_row", "posts", "p2", {"a": 2}]], settings)
    expected = {"p1": {"a": 1}, "p2": {"a": 2}}
    for number, path in enumerate(["x/y", "z", None, "x/y", "x/y2"]):
        given = {"posts": {"indexed": ["a"], "path": path}}
        with hutch.open(tmp_path, collections=given) as db:
            assert db.store.get_table("posts") == expected
            assert db.backend.verify() == []
        row: list[list[Any]] = [
            ["set_row", "posts", f"w{number}", {"a": number}],
            ["del_row", "posts", "p1"],
        ]
        crashed_writer(tmp_path, row if number == 2 else row[:1], given)
        expected = {**expected, f"w{number}": {"a": number}}
        if number == 2:
            del expected["p1"]
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"]}}) as db:
        assert db.store.get_table("posts") == expected
        assert db.backend.verify() == []
    assert not any((tmp_path / "x").rglob("*.json"))
    assert not (tmp_path / "z").exists()


def test_a_folder_left_holding_only_index_files_does_not_block_moving_back(
    tmp_path: Path,
) -> None:
    """Was: a collection whose rows were all deleted keeps ``posts/indices/a.jsonl``
    and no record. A new path moves nothing (the folder "holds no records"), so the folder and
    its stale index file stay behind; rows then go to ``blog/``. Giving the collection its
    old place back is refused ("holds files already"), for hutch's own leftover index file
    of that very collection."""
    settings = {"posts": {"indexed": ["a"]}}
    with hutch.open(tmp_path, collections=settings) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with hutch.open(tmp_path, collections=settings) as db:
        db.store.del_row("posts", "p1")
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"], "path": "blog"}}) as db:
        db.store.set_row("posts", "p2", {"a": 2})
    with hutch.open(tmp_path, collections=settings) as db:
        assert db.store.get_table("posts") == {"p2": {"a": 2}}
        assert db.backend.verify() == []


@pytest.mark.usefixtures("several_opens")
def test_a_read_only_open_made_before_a_move_keeps_its_rows(tmp_path: Path) -> None:
    """Guard: a read-only open loaded before the move keeps what it read; one after reads
    the new folder."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with hutch.open(tmp_path, read_only=True) as reader:
        with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}) as writer:
            writer.store.set_row("posts", "p2", {"a": 2})
        assert reader.store.get_table("posts") == {"p1": {"a": 1}}
    with hutch.open(tmp_path, read_only=True) as reader:
        assert reader.store.get_table("posts") == {"p1": {"a": 1}, "p2": {"a": 2}}


@pytest.mark.parametrize("seed", range(2))
def test_every_crash_state_of_a_move_of_rows_only_the_log_holds_opens_with_every_row(
    folder: Path, scratch: Path, seed: int
) -> None:
    """Guard: a power cut anywhere in a move from one nested path to another, of a folder
    whose newest rows (and a deletion) are only in the log of a writer that died, leaves
    every row findable, whether the next open gives the new settings or none."""
    rng = random.Random(seed)
    before = {"items": {"indexed": ["kind"], "path": "old/items"}}
    with hutch.open(folder, collections=before) as db, db.store.transaction():
        for i in range(5):
            db.store.set_row("items", f"r{i}", {"i": i, "kind": rng.choice("ab")})
        rows = db.store.get_table("items")
    crashed_writer(
        folder,
        [["set_row", "items", "logged", {"i": 50, "kind": "z"}], ["del_row", "items", "r0"]],
        before,
    )
    rows = {**{k: v for k, v in rows.items() if k != "r0"}, "logged": {"i": 50, "kind": "z"}}
    after = {"items": {"indexed": ["kind"], "path": "new/deep/items"}}
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
        acknowledged = sum(label == "ack" for label, _ in recording.marks_before(point))
        return done[max(0, acknowledged - 1) : acknowledged + 1]

    for opened in (opener(str, collections=after), opener(str)):
        assert check_states(recording, scratch, allowed, opened=opened, rng=rng) > 20


# -- a hand-edited "moves" note ------------------------------------------------------------------


@pytest.mark.parametrize("victim_settings", [None, {"path": "theirs"}], ids=["default", "path"])
def test_a_moves_note_naming_another_collections_folder_renames_nothing(
    tmp_path: Path, victim_settings: dict[str, Any] | None
) -> None:
    """Was: ``"moves": {"archive": <the folder of posts>}`` (a hand edit, or a manifest
    restored from another day) makes the next open rename posts' folder to archive's path:
    posts' rows turn up as archive's, and archive's own folder is left behind as a
    collection of its own. A note whose old folder is another collection's (kept, or the
    folder of a collection without settings) is as wrong as one outside the root:
    file-format.md makes those ``CorruptData``."""
    settings: dict[str, Any] = {"archive": {"path": "old"}}
    if victim_settings is not None:
        settings["posts"] = victim_settings
    with hutch.open(tmp_path, collections=settings) as db:
        db.store.set_row("posts", "p1", {"mine": "posts"})
        db.store.set_row("archive", "a1", {"mine": "archive"})
    victim_folder = "posts" if victim_settings is None else victim_settings["path"]
    kept = manifest(tmp_path)
    kept["collections"]["archive"]["path"] = "new"
    kept["moves"] = {"archive": victim_folder}
    write_manifest(tmp_path, kept)
    try:
        with hutch.open(tmp_path) as db:
            assert db.store.get_table("posts") == {"p1": {"mine": "posts"}}
    except hutch.CorruptData:
        pass  # the way file-format.md treats a note that does not check
    assert file_names(tmp_path / victim_folder) == ["p1.json"]
    assert not (tmp_path / "new" / "p1.json").exists()


def test_a_moves_note_does_not_follow_a_link_out_of_the_root(tmp_path: Path) -> None:
    """Guard: a note naming a link to a folder outside the root moves nothing out there, and
    the collection's rows stay where they are."""
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x1.json").write_text('{"id": "x1"}\n')
    with hutch.open(root, collections={"posts": {"path": "blog"}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    (root / "escape").symlink_to(outside)
    kept = manifest(root)
    kept["moves"] = {"posts": "escape"}
    write_manifest(root, kept)
    try:
        with hutch.open(root) as db:
            assert db.store.get_table("posts") == {"p1": {"a": 1}}
    except hutch.HutchError:
        pass
    assert file_names(outside) == ["x1.json"]
    assert (root / "escape").is_symlink()
    assert file_names(root / "blog") == ["p1.json"]


# -- collisions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["POSTS/indices", "Posts/archive"])
def test_verify_names_a_folder_inside_another_but_for_case(tmp_path: Path, path: str) -> None:
    """Was: ``{"archive": {"path": "Posts/indices"}}`` beside a collection ``posts`` is
    accepted (ext4 tells the two apart) and ``hutch verify`` says nothing; on a
    case-insensitive file system (macOS, Windows) archive's records would live in posts'
    folder — in its ``indices`` folder even, whose index files every open of archive
    deletes as "not indexed". verify names folders equal but for case; one inside another
    but for case is the same clash, one level down."""
    with hutch.open(tmp_path, collections={"posts": {"indexed": ["a"]}}) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    with hutch.open(tmp_path, collections={"archive": {"path": path}}) as db:
        db.store.set_row("archive", "a1", {"a": 2})
    with hutch.open(tmp_path, read_only=True) as db:
        problems = db.backend.verify()
    assert any("differ only in case" in problem for problem in problems), problems


def test_a_collection_named_like_a_parent_of_another_s_path_gets_no_rows(tmp_path: Path) -> None:
    """Guard: rows of ``x`` while ``archive`` lives in ``x/y`` are refused, and ``x``'s
    folder is not read as a collection."""
    with hutch.open(tmp_path, collections={"archive": {"path": "x/y"}}) as db:
        db.store.set_row("archive", "a1", {"a": 1})
        with pytest.raises(hutch.ConfigError, match="no path of its own"):
            db.store.set_row("x", "y", {"b": 1})
        assert db.store.get_table_ids() == ["archive"]
    with hutch.open(tmp_path) as db:
        assert everything(db) == {"archive": {"a1": {"a": 1}}}


def test_a_collection_moved_away_frees_its_old_folder_for_another(tmp_path: Path) -> None:
    """Guard: ``posts`` moves to ``blog``; at a later open ``archive`` may take ``posts``; and
    a swap in one open is refused before anything moves."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
        db.store.set_row("archive", "a1", {"a": 2})
    with pytest.raises(hutch.ConfigError):
        hutch.open(
            tmp_path, collections={"posts": {"path": "archive"}, "archive": {"path": "posts"}}
        )
    assert file_names(tmp_path / "posts") == ["p1.json"]
    assert file_names(tmp_path / "archive") == ["a1.json"]
    with hutch.open(tmp_path, collections={"posts": {"path": "blog"}}):
        pass
    with hutch.open(tmp_path, collections={"archive": {"path": "posts"}}) as db:
        assert everything(db) == {"posts": {"p1": {"a": 1}}, "archive": {"a1": {"a": 2}}}
    assert file_names(tmp_path / "posts") == ["a1.json"]
    assert file_names(tmp_path / "blog") == ["p1.json"]


# -- settings changed while other processes have the folder --------------------------------------


def test_workers_with_the_same_new_path_all_open_though_a_reader_delays_the_move(
    tmp_path: Path,
) -> None:
    """Was (real processes): operations.md promises that processes started together with the
    same new settings all open ("the first writes them, the others find them"). With a new
    ``path``, the first opener finds it must move the folder, lets its locks go to take the
    checkpoint lock exclusively — keeping its shared lock on ``_wal`` — and waits while a
    read-only load (here: a backup holding ``hutch.checkpoint`` shared) runs. A second
    worker with the very same settings then sees the first as an open with old settings
    and is refused ("other processes have the folder open")."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    settings = {"posts": {"path": "blog"}}
    first: Child | None = None
    second: Child | None = None
    try:
        with checkpoint_lock_held_shared(tmp_path):
            first = opener_child(tmp_path, settings, tmp_path, "first")
            pid = first.process.pid
            until(lambda: holds_the_log_folder(tmp_path, pid), "the first worker to read settings")
            second = opener_child(tmp_path, settings, tmp_path, "second")
            said: str | None = None
            deadline = time.monotonic() + WAIT
            while said is None and not waits_for_a_lock(second.process.pid):
                assert time.monotonic() < deadline, "the second worker neither opened nor waited"
                with contextlib.suppress(TimeoutError):  # (a bounded wait for its line)
                    said = second.lines.readline(timeout=0.01)
        first.expect("open")
        if said is None:
            said = second.read()
        assert said == "open", said
        for started in (first, second):
            started.send("close")
            started.expect("closed")
        assert file_names(tmp_path / "blog") == ["p1.json"]
    finally:
        for child in (first, second):
            if child is not None:
                child.end()


def test_processes_started_together_with_different_paths_never_both_open(tmp_path: Path) -> None:
    """Guard (real processes, started at once, a few rounds): whatever the interleaving, the
    two never both have the folder open with different settings, and every row is where
    the manifest says."""
    with hutch.open(tmp_path) as db:
        db.store.set_row("posts", "p1", {"a": 1})
    for round_number in range(4):
        paths = (f"a{round_number}", f"b{round_number}")
        children = [
            opener_child(tmp_path, {"posts": {"path": path}}, tmp_path, f"c{round_number}{path}")
            for path in paths
        ]
        try:
            said = [child.read() for child in children]
            opened = [child for child, line in zip(children, said, strict=True) if line == "open"]
            assert len(opened) <= 1, said
            for line in said:
                assert line == "open" or "other processes have the folder open" in line, said
            for child in opened:
                child.send("close")
                child.expect("closed")
        finally:
            for child in children:
                child.end()
        with hutch.open(tmp_path, read_only=True) as db:
            assert db.store.get_table("posts") == {"p1": {"a": 1}}


# -- _values.json, entry by entry ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ['"\\ud800"', "1e999", "-1e400"],
    ids=["lone-surrogate", "float-beyond-double", "negative-float-beyond-double"],
)
def test_one_keyed_value_json_cannot_hold_exactly_is_quarantined_alone(
    tmp_path: Path, bad: str
) -> None:
    """Was: a lone surrogate escape (``"\\ud800"``) or a number beyond a double (``1e999``) is
    valid JSON text; the entry holding it is a value no write would accept, like a NUL or an
    integer beyond 64 bits, which are refused or quarantined alone. These make the whole file
    unreadable instead: the error names a character position, not the key, and quarantine
    moves every good value out of the store with it."""
    hutch.open(tmp_path).close()
    text = '{"good": 1, "other": [1, 2], "bad": ' + bad + "}\n"
    (tmp_path / "_values.json").write_text(text)
    with pytest.raises(hutch.CorruptData) as opening:
        hutch.open(tmp_path)
    assert "'bad'" in str(opening.value)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {"good": 1, "other": [1, 2]}
    assert (tmp_path / "_quarantine" / "_root" / "_values.json").read_text() == text


def test_a_duplicate_key_in_the_values_file_is_not_dropped_without_a_word(tmp_path: Path) -> None:
    """Was: ``{"k": "a\\u0000", "k": 2}`` (an entry added by hand after one that
    does not check) opens silently with ``k == 2``; the bad entry is neither named nor
    quarantined, and the next write of ``_values.json`` erases it. A duplicate key is
    damage like any entry that does not check: named, or the file kept whole in the
    quarantine."""
    hutch.open(tmp_path).close()
    text = '{"k": "a\\u0000b", "k": 2, "good": 1}\n'
    (tmp_path / "_values.json").write_text(text)
    with pytest.raises(hutch.CorruptData, match="'k'"):
        hutch.open(tmp_path)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        db.store.set_value("other", 3)
    assert (tmp_path / "_quarantine" / "_root" / "_values.json").read_text() == text


@pytest.mark.parametrize(
    "text",
    [
        '{"good": 1, "big": 123456789012345678901234567890, "": 2, "nul": "\\u0000"}\n',
        '{"good": 1, "bad": "x\\u0000", "bad": "y\\u0000"}\n',
        '{"good": 1, "big": -99999999999999999999, "deep": ' + "[" * 120 + "]" * 120 + "}\n",
    ],
    ids=["mixed", "duplicate-bad", "big-and-deep"],
)
def test_quarantine_keeps_every_bad_entry_and_loads_the_good(tmp_path: Path, text: str) -> None:
    """Guard: bad keys and values quarantined with the good ones loaded, the file kept whole;
    a second quarantine of a file does not overwrite the first copy."""
    hutch.open(tmp_path).close()
    values = tmp_path / "_values.json"
    values.write_text(text)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {"good": 1}
    kept = tmp_path / "_quarantine" / "_root"
    assert (kept / "_values.json").read_text() == text
    values.write_text(text.replace('"good": 1', '"good": 5'))
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {"good": 5}
    assert (kept / "_values.json").read_text() == text
    assert (kept / "_values.json.again").read_text() == text.replace('"good": 1', '"good": 5')
    with hutch.open(tmp_path) as db:
        assert db.store.get_values() == {"good": 5}


@pytest.mark.parametrize("text", ["[1, 2]\n", "null\n", '"x"\n', "", "{", "\xff"])
def test_a_values_file_that_is_no_object_is_hutch_error_and_kept_whole(
    tmp_path: Path, text: str
) -> None:
    """Guard: refused as CorruptData (no raw exception), or quarantined whole."""
    hutch.open(tmp_path).close()
    (tmp_path / "_values.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(hutch.CorruptData, match=r"_values\.json"):
        hutch.open(tmp_path)
    with hutch.open(tmp_path, on_corrupt="quarantine") as db:
        assert db.store.get_values() == {}
    quarantined = tmp_path / "_quarantine" / "_root" / "_values.json"
    assert quarantined.read_bytes() == text.encode("latin-1")
