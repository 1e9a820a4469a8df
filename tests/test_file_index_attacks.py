"""Attacks on the ``file://`` index files that take appended lines, and on log generations
numbered without a listing of ``_wal``.

A test whose docstring begins "Was:" is the regression test of a bug an adversarial
review found (and of its siblings, on ``jsonl://`` too where the code is shared); one
that begins "Holds:" guards what held. No test sleeps to synchronise or measures time:
crashes are real processes that exit without closing (``os._exit``) at a chosen call, or
the power-cut states :mod:`crashsim` builds.

What they cover:

- Stored values are compared as JSON values, never by Python equality, where
  ``1 == 1.0 == True`` (nested too): an index file a hand edit or a killed commit left
  listing ``1`` for a row whose field is ``true`` is written again at open, and a
  ``"wal": false`` record a commit killed after its log line left holding ``1`` is
  rewritten, so the committed ``true`` the recovery showed lasts.
- An empty generation that a checkpoint started past stray files and never moved the log
  to, numbered above the live ones, is passed over by recovery once the generation it
  follows is gone; a live generation whose previous is gone holds the checkpoint's mark,
  made durable before the delete.
- An index file's bound comes from what its rows' lines take, never from the file's size
  (which holds what killed processes appended); its read limit too, so an index of large
  values is read back.
- A process under ``durability="none"`` never puts another process's synced commits at
  risk in a power cut.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import logfiles
import orjson
import pytest
from crashsim import Recorder, materialize

import hutch
from hutch.backends.file import FilePersister, indices, wal

QUIET: dict[str, Any] = {"checkpoint_interval": 3600, "follow": False}
POSTS = {"posts": {"wal": False, "indexed": ["n"]}}  # index lines appended at each commit
USERS = {"users": {"indexed": ["n"]}}  # index lines appended at checkpoints
CHILD_TIMEOUT = 120

#: Values that Python's ``==`` confuses while JSON (and hutch's store) tells them apart.
CONFUSED = [
    pytest.param(1, True, id="1-to-true"),
    pytest.param(1, 1.0, id="1-to-1.0"),
    pytest.param(0, False, id="0-to-false"),
    pytest.param({"a": 1}, {"a": True}, id="nested-1-to-true"),
    pytest.param([1.0], [1], id="list-1.0-to-1"),
]


def exact(value: Any) -> bytes:
    """JSON text that tells 1, 1.0 and True apart, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def backend_of(db: hutch.Database) -> FilePersister:
    backend = db.backend
    assert isinstance(backend, FilePersister)
    return backend


def index_path(folder: Path, table: str, field: str = "n") -> Path:
    return folder / table / indices.FOLDER / indices.file_name(field)


def records(folder: Path, table: str, field: str = "n") -> dict[str, Any]:
    """``{row_id: value}`` of the record files that have ``field``, read without hutch."""
    found: dict[str, Any] = {}
    for path in (folder / table).glob("*.json"):
        row = json.loads(path.read_bytes())
        if field in row:
            found[row["id"]] = row[field]
    return found


def listed(folder: Path, table: str, field: str = "n") -> dict[str, Any] | None:
    path = index_path(folder, table, field)
    return indices.listed(path.read_bytes()) if path.exists() else None


def same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    return a is not None and exact(a) == exact(b)


def run_child(script: str, *arguments: str) -> None:
    """Run ``script`` in a real Python process (it may end with ``os._exit``: a kill)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


# -- 1, 1.0 and True are three values, not one -------------------------------------------------


@pytest.mark.parametrize(("before", "after"), CONFUSED)
def test_an_index_a_hand_edit_made_stale_is_written_again_at_open(
    tmp_path: Path, before: Any, after: Any
) -> None:
    """Was: docs/file-format.md says an open rewrites any index file a hand edit made
    stale, but a record edited from ``1`` to ``true`` (or ``1.0``) was not: the open
    compared with ``==``, kept ``[1, "p1"]``, and every verify reported it from then on."""
    folder = tmp_path / "data"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        db.store.set_row("posts", "p1", {"n": before})
        db.store.set_row("posts", "p2", {"n": "other"})
    record = folder / "posts" / "p1.json"
    row = json.loads(record.read_bytes())
    row["n"] = after
    record.write_text(json.dumps(row, indent=2, sort_keys=True) + "\n")
    with hutch.open(folder, **QUIET) as db:
        assert exact(db.store.get_cell("posts", "p1", "n")) == exact(after)
    assert same(listed(folder, "posts"), records(folder, "posts"))
    with hutch.open(folder, read_only=True) as db:
        assert db.backend.verify() == []


def jsonl_url(folder: Path) -> str:
    return f"jsonl://{folder.resolve()}"


@pytest.mark.parametrize("scheme", ["file", "jsonl"])
@pytest.mark.parametrize(("before", "after"), CONFUSED)
def test_an_index_file_edited_to_a_value_equal_only_in_python_is_written_again_at_open(
    tmp_path: Path, scheme: str, before: Any, after: Any
) -> None:
    """Was: the index file itself edited by hand to list ``1`` where the row holds ``true``
    (or ``1.0``...) matched the rows by ``==`` at open, on both folder backends (they share
    the comparison), so it was kept, and verify reported it until a reindex."""
    folder = tmp_path / "data"
    url = str(folder) if scheme == "file" else jsonl_url(folder)
    index = (
        index_path(folder, "posts")
        if scheme == "file"
        else folder / "indices" / "posts" / indices.file_name("n")
    )
    options = QUIET if scheme == "file" else {"follow": False}
    with hutch.open(url, collections={"posts": {"indexed": ["n"]}}, **options) as db:
        db.store.set_row("posts", "p1", {"n": after})
        db.store.set_row("posts", "p2", {"n": "other"})
    index.write_bytes(indices.encode({"p1": before, "p2": "other"}))
    with hutch.open(url, **options):
        pass
    assert same(indices.listed(index.read_bytes()), {"p1": after, "p2": "other"})
    with hutch.open(url, read_only=True) as db:
        assert db.backend.verify() == []


KILLED_AFTER_LOG = r"""
import json, os, sys
import hutch
from hutch.backends.file import persister
folder, table, before, after, kill_at = sys.argv[1:]
collections = {"posts": {"wal": False, "indexed": ["n"]}, "users": {"indexed": ["n"]}}
options = {"checkpoint_interval": 3600, "follow": False}
db = hutch.open(folder, collections=collections, **options)
db.store.set_row(table, "p1", {"n": json.loads(before)})
db.store.set_row(table, "p2", {"n": "other"})
db.close()  # the index file written whole, sorted
db = hutch.open(folder, **options)
def killed(self, *arguments, **options):
    os._exit(0)
setattr(persister.FilePersister, kill_at, killed)
db.store.set_row(table, "p1", {"n": json.loads(after)})  # its log line is synced, then: killed
os._exit(1)
"""


@pytest.mark.parametrize(("before", "after"), CONFUSED)
def test_a_commit_killed_after_its_log_line_is_not_undone_by_the_next_reopen(
    tmp_path: Path, before: Any, after: Any
) -> None:
    """Was: a ``"wal": false`` commit is killed after its log line is synced, before its
    record file is written. The next open replayed it (the store showed ``true``) but
    rewrote only the records that differ by ``!=``, and ``{"n": 1} != {"n": True}`` is
    false: the record kept ``1``, the row was no longer dirty, the log was dropped at the
    checkpoints, and the open after that showed ``1``: what a recovery showed was lost."""
    folder = tmp_path / "data"
    run_child(
        KILLED_AFTER_LOG, str(folder), "posts", json.dumps(before), json.dumps(after), "_write_rows"
    )
    with hutch.open(folder, **QUIET) as db:
        first = exact(db.store.get_cell("posts", "p1", "n"))
    assert first == exact(after)  # (holds: the log's version wins)
    with hutch.open(folder, **QUIET) as db:
        assert exact(db.store.get_cell("posts", "p1", "n")) == first
    assert exact(records(folder, "posts")["p1"]) == first


@pytest.mark.parametrize(("before", "after"), CONFUSED)
def test_a_commit_killed_between_its_record_and_its_index_line_leaves_no_stale_index(
    tmp_path: Path, before: Any, after: Any
) -> None:
    """Was: killed after the record file is written, before the index line is appended,
    the open found the record right and the index ``==``-equal, so it kept an index file
    listing ``1`` for a row holding ``true``; the file is sorted, so no close rewrote it."""
    folder = tmp_path / "data"
    run_child(
        KILLED_AFTER_LOG,
        str(folder),
        "posts",
        json.dumps(before),
        json.dumps(after),
        "_write_index_changes",
    )
    assert exact(records(folder, "posts")["p1"]) == exact(after)  # the record was written
    with hutch.open(folder, **QUIET) as db:
        assert exact(db.store.get_cell("posts", "p1", "n")) == exact(after)
        assert db.backend.verify() == []
    assert same(listed(folder, "posts"), records(folder, "posts"))


def test_values_python_confuses_are_kept_apart_by_commits_checkpoints_and_reopens(
    tmp_path: Path,
) -> None:
    """Holds: without a crash or a hand edit, every appended line names the exact value, for
    both kinds of collection, across reopen (the appended lines are read in turn)."""
    folder = tmp_path / "data"
    steps: list[Any] = [1, True, 1.0, 0, False, None, [1], [True], {"a": 1}, {"a": True}, 1]
    with hutch.open(folder, collections=POSTS | USERS, **QUIET) as db:
        for value in steps:
            for table in ("posts", "users"):
                db.store.set_row(table, "p1", {"n": value})
                db.store.set_row(table, "p2", {"n": value, "m": 1})
                db.store.del_cell(table, "p2", "n")
            assert same(listed(folder, "posts"), records(folder, "posts"))
            backend_of(db).checkpoint()
            assert same(listed(folder, "users"), records(folder, "users"))
            assert db.backend.verify() == []
    for table in ("posts", "users"):
        assert same(listed(folder, table), {"p1": 1})
    with hutch.open(folder, **QUIET) as db:
        assert db.backend.verify() == []


# -- several processes, one index file ------------------------------------------------------

POOL: list[Any] = [1, 1.0, True, False, 0, None, "1", "a", [1], {"a": 1}, {"a": True}, [], {}]


@pytest.mark.usefixtures("several_opens")
@pytest.mark.parametrize("logged", [False, True], ids=["wal false", "wal true"])
@pytest.mark.parametrize("seed", range(4))
def test_several_opens_appending_to_one_index_keep_it_equal_to_the_records(
    tmp_path: Path, logged: bool, seed: int
) -> None:
    """Holds: three opens of one folder (each with its own files and locks, as processes
    would) update, delete, delete the field, reinsert, checkpoint, compact and close in
    turn; the index file lists exactly the records after every ``"wal": false`` commit,
    verify finds nothing, and a reopen reads the same."""
    rng = random.Random(seed)
    folder = tmp_path / "data"
    collections = {"t": {"wal": logged, "indexed": ["n"]}}
    dbs = [hutch.open(folder, collections=collections, **QUIET) for _ in range(3)]
    try:
        for _ in range(80):
            db = rng.choice(dbs)
            db.refresh()
            row_id, roll = f"r{rng.randint(0, 5)}", rng.random()
            if roll < 0.4:
                db.store.set_row("t", row_id, {"n": rng.choice(POOL), "k": 1})
            elif roll < 0.5:
                db.store.del_cell("t", row_id, "n")
            elif roll < 0.6:
                db.store.del_row("t", row_id)
            elif roll < 0.7:
                with db.store.transaction():
                    for _ in range(3):
                        db.store.set_cell("t", f"r{rng.randint(0, 5)}", "n", rng.choice(POOL))
            elif roll < 0.85:
                backend_of(db).checkpoint()
            elif roll < 0.9:
                db.compact()
            elif roll < 0.95:
                dbs.remove(db)
                db.close()
                dbs.append(hutch.open(folder, collections=collections, **QUIET))
                continue
            if not logged:
                assert same(listed(folder, "t"), records(folder, "t"))
            assert db.backend.verify() == []
    finally:
        for db in dbs:
            db.close()
    with hutch.open(folder, **QUIET) as db:
        expected = {r: row["n"] for r, row in db.store.get_table("t").items() if "n" in row}
        assert same(listed(folder, "t"), expected)
        assert exact(records(folder, "t")) == exact(expected)
        assert db.backend.verify() == []


# -- how big an index file grows -------------------------------------------------------------

GROWING = r"""
import os, sys
from pathlib import Path
import hutch
folder = Path(sys.argv[1])
index = folder / "posts" / "indices" / "n.jsonl"
db = hutch.open(folder, collections={"posts": {"wal": False, "indexed": ["n"]}},
                checkpoint_interval=3600, follow=False, durability="none")  # (no syncs: quick)
start = index.stat().st_size if index.exists() else 0
i = 0
while True:  # append, short of what this process takes for its bound
    before = index.stat().st_size if index.exists() else 0
    db.store.set_row("posts", "p1", {"n": f"author {i % 10}"})
    i += 1
    after = index.stat().st_size
    if after < before or after + 2 * (after - before) > 2 * start + 4096:
        break
os._exit(0)  # killed: no close, which would write the file whole
"""


def test_an_index_file_stays_within_its_bound_across_killed_processes(tmp_path: Path) -> None:
    """Was: an index file is to be written whole once it passes twice what its rows take,
    plus 4 KiB, but a process that first appended to a file it did not write took the
    file's size, appended lines included, as what its rows take: each process killed
    before close doubled the bound. Four such processes left a one-row index of 18 bytes
    at about 60 KiB (six, at 250 KiB), which every open read whole, and it grew on to
    about 2 MiB, where an open found it too big to read and wrote it whole."""
    folder = tmp_path / "data"
    for _ in range(4):
        run_child(GROWING, str(folder))
    live = len(indices.encode({"p1": "author 0"}))
    line = len(indices.appended(["p1"], {"p1": "author 0"}))
    size = index_path(folder, "posts").stat().st_size
    assert size <= 2 * live + indices.FLOOR + line, size
    with hutch.open(folder, **QUIET) as db:
        assert db.backend.verify() == []


def test_an_index_of_large_values_is_read_back_not_reported_and_rewritten_at_every_open(
    tmp_path: Path,
) -> None:
    """Was: an index file was read only up to 1 MiB plus 8 KiB a row. Indexed values of
    40 KB (a document's body, say) made a file hutch wrote itself, sorted and exact, that
    verify reported as unreadable on every run (`hutch reindex` could not help: it writes
    the same bytes), and that every writing open wrote whole again."""
    folder = tmp_path / "data"
    collections = {"docs": {"wal": False, "indexed": ["body"]}}
    with hutch.open(folder, collections=collections, **QUIET) as db:
        with db.store.transaction():
            for i in range(40):
                db.store.set_row("docs", f"d{i}", {"body": f"{i}" + "x" * 40_000})
        db.reindex()
        assert db.backend.verify() == []
    index = index_path(folder, "docs", "body")
    inode = index.stat().st_ino
    with hutch.open(folder, **QUIET):
        pass
    assert index.stat().st_ino == inode  # not written again: it matched


def test_a_jsonl_index_of_large_values_is_read_back_not_rewritten_at_every_open(
    tmp_path: Path,
) -> None:
    """Was: the ``jsonl://`` backend reads its index files with the same limit, so an index of
    large values was written again at every writing open, and verify reported it."""
    url = jsonl_url(tmp_path / "data")
    db = hutch.open(url, collections={"docs": {"indexed": ["body"]}}, follow=False)
    with db, db.store.transaction():
        for i in range(40):
            db.store.set_row("docs", f"d{i}", {"body": f"{i}" + "x" * 40_000})
    index = tmp_path / "data" / "indices" / "docs" / indices.file_name("body")
    inode = index.stat().st_ino
    with hutch.open(url, follow=False) as db:
        assert db.backend.verify() == []
    assert index.stat().st_ino == inode
    with hutch.open(url, read_only=True) as db:
        assert db.backend.verify() == []


def test_an_index_whose_values_shrank_is_written_whole_before_it_outgrows_what_is_read(
    tmp_path: Path,
) -> None:
    """An index file written whole with large values, whose rows then all take small ones:
    its appended lines are bounded by what the rows take now, not by what they took when
    it was written, so the file stays one that is read back (and verify finds nothing)."""
    folder = tmp_path / "data"
    collections = {"docs": {"wal": False, "indexed": ["body"]}}
    with hutch.open(folder, collections=collections, durability="none", **QUIET) as db:
        with db.store.transaction():
            for i in range(40):
                db.store.set_row("docs", f"d{i}", {"body": "x" * 40_000})
        db.reindex()
        for turn in range(2000):
            db.store.set_row("docs", f"d{turn % 40}", {"body": turn})
        size = index_path(folder, "docs", "body").stat().st_size
        live = indices.size({f"d{i}": 1960 + i for i in range(40)})
        assert size <= 2 * live + indices.FLOOR, size
        assert db.backend.verify() == []


# -- power cuts during appends and whole writes ---------------------------------------------

CRASH_POOL: list[Any] = [1, 2.5, True, None, "1", [1], {"a": 1}, {"b": [2]}, "zz"]


def test_every_crash_state_of_index_appends_and_rewrites_opens_with_exact_index_files(
    folder: Path, scratch: Path
) -> None:
    """Holds (for values ``==`` tells apart): commits to a ``"wal": false`` and a logged
    collection, with checkpoints, enough appended bytes for whole writes (padded rows
    changed often), deletes and deleted fields; at every crash state the open leaves each
    index file listing exactly the rows, and verify finds nothing."""
    collections = POSTS | USERS
    rng = random.Random(3)
    with Recorder(folder) as recording:
        db = hutch.open(folder, collections=collections, **QUIET)
        try:
            for _ in range(90):
                table, row_id, roll = (
                    rng.choice(["posts", "users"]),
                    f"r{rng.randint(0, 3)}",
                    rng.random(),
                )
                if roll < 0.6:
                    value = rng.choice(CRASH_POOL)
                    db.store.set_row(table, row_id, {"n": value, "pad": "x" * rng.randint(0, 200)})
                elif roll < 0.72:
                    if db.store.has_row(table, row_id):
                        db.store.set_partial_row(table, row_id, {"m": 1})
                        db.store.del_cell(table, row_id, "n")
                elif roll < 0.85:
                    db.store.del_row(table, row_id)
                else:
                    backend_of(db).checkpoint()
        finally:
            db.close()
    points = list(recording.points())
    chosen = sorted(set(random.Random(5).sample(points, min(120, len(points)))))
    checked = 0
    for number, (_, state) in enumerate(recording.states(2, chosen)):
        target = scratch / f"state{number}"
        materialize(state, target)
        with hutch.open(target, **QUIET) as opened:
            for table in collections:
                rows = opened.store.get_table(table)
                expected = {r: row["n"] for r, row in rows.items() if "n" in row}
                found = listed(target, table) if index_path(target, table).exists() else {}
                assert same(found, expected), state.origin
            assert opened.backend.verify() == [], state.origin
        shutil.rmtree(target)
        checked += 1
    assert checked > 100


# -- log generations named by number ---------------------------------------------------------

CHECKPOINT_KILLED_BEFORE_MOVE = r"""
import os, sys
import hutch
from hutch.backends.file.log import Log
db = hutch.open(sys.argv[1], checkpoint_interval=3600, follow=False)
db.store.set_value("x", 1)
Log.move_to = lambda self, number: os._exit(0)  # killed between rotate and move_to
db.backend.checkpoint()
os._exit(1)
"""


def newest_number(folder: Path) -> int:
    return int(logfiles.generations(folder)[-1].stem)


@pytest.mark.usefixtures("several_opens")
def test_an_empty_generation_started_past_strays_hides_no_commit_once_its_previous_is_gone(
    tmp_path: Path,
) -> None:
    """Was: strays bore the names g+1 and g+2 when a process's checkpoint started g+3
    (previous: g) and was killed before moving the log there. The strays are moved out
    (as verify tells), and a running process checkpoints twice: the log goes on in g+1,
    g+2, and g is deleted. An open listed g+3 as the newest generation, found no g for
    it to follow, took it for the live chain and replayed nothing after the last mark:
    the commit in g+2 was lost, and that open's checkpoint deleted g+1 and g+2."""
    folder = tmp_path / "data"
    with hutch.open(folder, **QUIET) as db:
        db.store.set_value("a", 1)
        backend_of(db).checkpoint()
        g = newest_number(folder)
        strays = [folder / "_wal" / wal.name(g + 1), folder / "_wal" / wal.name(g + 2)]
        for stray in strays:
            stray.write_bytes(b"not a log\n")
        run_child(CHECKPOINT_KILLED_BEFORE_MOVE, str(folder))
        assert (folder / "_wal" / wal.name(g + 3)).exists()
        for stray in strays:
            stray.unlink()
        db.refresh()
        assert db.store.get_value("x") == 1
        backend_of(db).checkpoint()
        db.store.set_value("b", 2)
        backend_of(db).checkpoint()
        db.store.set_value("c", 3)  # acknowledged: synced in the log, not yet checkpointed
        with hutch.open(folder, **QUIET) as other:  # a new worker, or the open after a crash
            assert other.store.get_values() == {"a": 1, "b": 2, "c": 3, "x": 1}
    with hutch.open(folder, **QUIET) as db:
        assert db.store.get_values() == {"a": 1, "b": 2, "c": 3, "x": 1}


@pytest.mark.usefixtures("several_opens")
def test_an_empty_generation_started_past_strays_hides_no_commit_once_compact_left_no_sibling(
    tmp_path: Path,
) -> None:
    """Was: as above, but ``db.compact()`` deletes the generation the live one follows too:
    no generation is left that follows what the empty one follows, and both the empty one
    and the live one follow a generation that is gone. Recovery took the empty one (the
    higher number) and lost the commit made after the compact."""
    folder = tmp_path / "data"
    with hutch.open(folder, **QUIET) as db:
        db.store.set_value("a", 1)
        backend_of(db).checkpoint()
        g = newest_number(folder)
        strays = [folder / "_wal" / wal.name(g + 1), folder / "_wal" / wal.name(g + 2)]
        for stray in strays:
            stray.write_bytes(b"not a log\n")
        run_child(CHECKPOINT_KILLED_BEFORE_MOVE, str(folder))
        for stray in strays:
            stray.unlink()
        db.refresh()
        backend_of(db).checkpoint()
        db.store.set_value("b", 2)
        db.compact()
        assert [int(p.stem) for p in logfiles.generations(folder)] == [g + 2, g + 3]
        db.store.set_value("c", 3)
        with hutch.open(folder, **QUIET) as other:
            assert other.store.get_values() == {"a": 1, "b": 2, "c": 3, "x": 1}
    with hutch.open(folder, **QUIET) as db:
        assert db.store.get_values() == {"a": 1, "b": 2, "c": 3, "x": 1}


def test_a_power_cut_while_a_compact_deletes_generations_keeps_the_live_one_known(
    folder: Path, scratch: Path
) -> None:
    """A checkpoint that keeps no older generation deletes the one the live generation
    follows: the live one then holds nothing but the checkpoint's mark, which is made
    durable before anything is deleted. Otherwise a power cut could keep a deletion and
    lose the mark, leaving the live generation empty beside an older one whose delete did
    not last: recovery, passing over an empty generation whose previous is gone, would
    replay that older one over newer records."""
    db = hutch.open(folder, **QUIET)
    try:
        db.store.set_value("x", 1)
        backend_of(db).checkpoint()  # a mark in the second generation; x=1 stays in the first
        db.store.set_value("x", 2)
        with Recorder(folder) as recording, backend_of(db)._checkpointing():
            backend_of(db)._checkpoint_held(keep_previous=False)
    finally:
        db.close()
    checked = 0
    for number, (_, state) in enumerate(recording.states(24)):
        target = scratch / f"state{number}"
        materialize(state, target)
        with hutch.open(target, **QUIET) as opened:
            assert opened.store.get_values() == {"x": 2}, state.origin
        shutil.rmtree(target)
        checked += 1
    assert checked > 20


@pytest.mark.usefixtures("several_opens")
def test_a_checkpoint_killed_between_rotate_and_move_loses_nothing_and_is_taken_over(
    tmp_path: Path,
) -> None:
    """Holds: without strays, the empty generation a killed checkpoint started is taken over
    by the next checkpoint, commits meanwhile stay in the one before, and every open
    (during and after) holds all of them."""
    folder = tmp_path / "data"
    with hutch.open(folder, **QUIET) as db:
        db.store.set_value("a", 1)
        backend_of(db).checkpoint()
        g = newest_number(folder)
        run_child(CHECKPOINT_KILLED_BEFORE_MOVE, str(folder))
        assert (folder / "_wal" / wal.name(g + 1)).exists()
        db.refresh()
        db.store.set_value("b", 2)
        with hutch.open(folder, **QUIET) as other:
            assert other.store.get_values() == {"a": 1, "b": 2, "x": 1}
            other.store.set_value("c", 3)
        db.refresh()
        backend_of(db).checkpoint()
        db.store.set_value("d", 4)
        backend_of(db).checkpoint()
        db.store.set_value("e", 5)
        with hutch.open(folder, **QUIET) as other:
            assert other.store.get_values() == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "x": 1}
    with hutch.open(folder, **QUIET) as db:
        assert db.store.get_values() == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "x": 1}


KILLED_IN_FORGET = r"""
import os, sys
import hutch
from hutch.backends.file.log import Log
db = hutch.open(sys.argv[1], checkpoint_interval=3600, follow=False)
for turn in range(3):
    db.store.set_value(f"k{turn}", turn)
    db.backend.checkpoint()
db.store.set_value("last", 9)
Log.forget = lambda self, before: os._exit(0)  # killed after the mark, before the delete
db.backend.checkpoint()
os._exit(1)
"""


def test_a_checkpoint_killed_between_its_mark_and_its_delete_loses_nothing(
    tmp_path: Path,
) -> None:
    """Holds: the mark is appended, the old generations not yet deleted; the next open
    replays only what the mark leaves out, and its checkpoint deletes the rest."""
    folder = tmp_path / "data"
    with hutch.open(folder, **QUIET):
        pass
    run_child(KILLED_IN_FORGET, str(folder))
    with hutch.open(folder, **QUIET) as db:
        assert db.store.get_values() == {"k0": 0, "k1": 1, "k2": 2, "last": 9}
        db.store.set_value("after", 1)
    with hutch.open(folder, **QUIET) as db:
        assert db.store.get_values() == {"k0": 0, "k1": 1, "k2": 2, "last": 9, "after": 1}
        assert len(logfiles.generations(folder)) <= 3


# -- durability="none" beside processes that sync ----------------------------------------------

KILLED_AFTER_COMMIT = r"""
import os, sys
import hutch
from hutch.backends.file import persister
db = hutch.open(sys.argv[1], checkpoint_interval=3600, follow=False)
if sys.argv[2] == "row":  # killed once its log line is synced, before its record file
    persister.FilePersister._write_rows = lambda self, *arguments, **options: os._exit(0)
    db.store.set_row("posts", "p1", {"n": 1})
else:
    db.store.set_value("kept", 1)
os._exit(0)  # killed: only the log holds it
"""


@pytest.mark.usefixtures("several_opens")
@pytest.mark.parametrize("how", ["killed, a value", "killed, a wal false row", "alongside"])
def test_a_process_under_durability_none_loses_no_synced_commit_of_another_in_a_power_cut(
    folder: Path, scratch: Path, how: str
) -> None:
    """Was: a checkpoint under ``durability="none"`` wrote record and value files without
    syncing them (and rewrote at open, unsynced, the ``"wal": false`` records a killed
    commit left behind), then deleted the log generations holding them. A commit another
    process synced (``durability="commit"``), found in the log at open or read from it
    while both are open, was then lost in a power cut. What the log holds of other
    processes is written synced, whatever this process's durability."""
    with hutch.open(folder, collections={"posts": {"wal": False}}, **QUIET):
        pass
    if how.startswith("killed"):
        run_child(KILLED_AFTER_COMMIT, str(folder), "row" if how.endswith("row") else "value")
    other = hutch.open(folder, **QUIET) if how == "alongside" else None
    try:
        with Recorder(folder) as recording:
            db = hutch.open(folder, durability="none", **QUIET)
            try:
                if other is not None:
                    other.store.set_value("kept", 1)  # synced before it returns
                recording.mark("acknowledged")
                db.store.set_value("mine", 2)
                db.compact()  # the generations holding it are deleted
            finally:
                db.close()
    finally:
        if other is not None:
            other.close()
    (acknowledged,) = [k for k in recording.points() if recording.marks_at(k)]
    checked = 0
    for number, (_, state) in enumerate(recording.states(6, recording.points()[acknowledged:])):
        target = scratch / f"state{number}"
        materialize(state, target)
        with hutch.open(target, **QUIET) as opened:
            if how.endswith("row"):
                assert opened.store.get_row("posts", "p1") == {"n": 1}, state.origin
            else:
                assert opened.store.get_value("kept") == 1, state.origin
        shutil.rmtree(target)
        checked += 1
    assert checked > 50


# -- what stands where an index file belongs ------------------------------------------------


@pytest.mark.parametrize("table", ["posts", "users"])
@pytest.mark.parametrize("kind", ["folder", "link", "fifo", "hard link", "indices a file"])
@pytest.mark.parametrize("action", ["close", "compact", "commit", "verify", "reindex"])
def test_what_stands_where_an_index_belongs_raises_only_hutch_errors(
    tmp_path: Path, table: str, kind: str, action: str
) -> None:
    """Holds: a folder, a link, a FIFO or a hard-linked file where an index file belongs, or
    a file where the ``indices`` folder belongs, met at close, compact, a commit with a
    checkpoint, verify or reindex: no raw Python exception, and the next open verifies
    (the quarantine aside)."""
    folder = tmp_path / "data"
    index = index_path(folder, table)
    db = hutch.open(folder, collections=POSTS | USERS, **QUIET)
    try:
        db.store.set_row(table, "p1", {"n": 1})
        backend_of(db).checkpoint()
        db.store.set_row(table, "p2", {"n": 2})
        backend_of(db).checkpoint()
        if kind == "indices a file":
            shutil.rmtree(index.parent)
            index.parent.write_bytes(b"x")
        else:
            index.unlink()
        if kind == "folder":
            index.mkdir()
            (index / "inside").write_bytes(b"x")
        elif kind == "link":
            index.symlink_to(tmp_path / "elsewhere.jsonl")
        elif kind == "fifo":
            os.mkfifo(index)
        elif kind == "hard link":
            (tmp_path / "other.jsonl").write_bytes(b'[1,"p1"]\n')
            os.link(tmp_path / "other.jsonl", index)
        try:
            if action == "compact":
                db.compact()
            elif action == "commit":
                db.store.set_row(table, "p3", {"n": 3})
                backend_of(db).checkpoint()
            elif action == "verify":
                db.backend.verify()
            elif action == "reindex":
                db.reindex()
        except hutch.HutchError:
            pass
    finally:
        db.close()
    if kind == "hard link":
        assert (tmp_path / "other.jsonl").read_bytes() == b'[1,"p1"]\n'
    with hutch.open(folder, **QUIET) as db:
        problems = [p for p in db.backend.verify() if "_quarantine" not in p]
        assert problems == []
        assert same(listed(folder, table), records(folder, table))
