"""The jsonl:// logs: a crash's leftovers are cut, damage is never silent, old folders upgrade.

Each test here is a finding of a review, kept as its regression test: a torn
append (zeros, part of a line, whole lines) is cut with a warning that says
where; the cut lasts, and a sequence number used again brings nothing back; a
line broken in two by an editor is damage; a lost commit log or a damaged last
line cuts nothing; a log of another folder is refused; a folder of format 1 is
upgraded (not while an older process holds it); ``db.compact()`` leaves no
deleted value in any file.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import Child
from crashsim import Recorder, materialize

import hutch

FIXTURES = Path(__file__).parent / "data"


def url(folder: Path) -> str:
    return f"jsonl://{folder.resolve()}"


def contents(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    with hutch.open(url(folder)) as db:
        store = db.store
        return {t: store.get_table(t) for t in store.get_table_ids()}, store.get_values()


def committed(folder: Path) -> dict[str, bytes]:
    """A folder with two commits over two collections and the values; its log files."""
    with hutch.open(url(folder)) as db:
        db.store.set_row("users", "u1", {"name": "Ada", "bio": "hello world"})
        with db.store.transaction():
            db.store.set_row("users", "u2", {"name": "Grace"})
            db.store.set_row("teams", "t1", {"name": "red"})
            db.store.set_value("count", 2)
    return {path.name: path.read_bytes() for path in folder.glob("*.jsonl")}


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


EXPECTED = (
    {
        "teams": {"t1": {"name": "red"}},
        "users": {"u1": {"name": "Ada", "bio": "hello world"}, "u2": {"name": "Grace"}},
    },
    {"count": 2},
)


# -- finding 7: a torn append of several lines ----------------------------------------------------


def test_a_torn_append_of_several_lines_is_cut_with_a_warning_that_says_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Zeros (a page that never came), then the end of a line, then whole lines of a commit
    whose commit line never reached _commits.jsonl: once 'not a hutch log line'."""
    good = committed(tmp_path)
    users = tmp_path / "users.jsonl"
    torn = b"\0" * 700 + b'ame":"Eve"}]\n[3,"u1",null]\n[3,"u4",{"name":"Mallory"}]\n'
    users.write_bytes(good["users.jsonl"] + torn)

    assert contents(tmp_path) == EXPECTED
    assert users.read_bytes() == good["users.jsonl"]
    said = warnings(caplog)
    assert any(
        str(users) in w and f"at byte {len(good['users.jsonl'])}" in w and "never returned" in w
        for w in said
    ), said


# -- finding 8: the cut lasts, and a sequence number used again brings nothing back ----------------


def test_a_cut_lasts_a_second_power_cut_and_a_reused_seq_resurrects_nothing(
    tmp_path: Path,
) -> None:
    """Commit 3 wrote its lines (deleting u1, adding u4) and never reached its commit line. The
    next process cuts them and commits its own 3, to another log; a power cut at any moment of
    that must never bring the old lines back."""
    folder = tmp_path / "data"
    folder.mkdir()
    good = committed(folder)
    (folder / "users.jsonl").write_bytes(
        good["users.jsonl"] + b'[3,"u1",null]\n[3,"u4",{"name":"Mallory"}]\n'
    )
    with Recorder(folder) as recording, hutch.open(url(folder)) as db:
        db.store.set_value("count", 3)
    assert (
        recording.durable_state(len(recording.points()) - 1).files["users.jsonl"]
        == (good["users.jsonl"])
    )
    for number, (_, state) in enumerate(recording.states(4)):
        target = tmp_path / f"state{number}"
        materialize(state, target)
        tables, values = contents(target)
        assert tables == EXPECTED[0], state.origin
        assert values["count"] in (2, 3), state.origin


# -- finding 9: a line broken in two ------------------------------------------------------------


def test_a_line_broken_in_two_by_an_editor_is_corrupt_data_and_nothing_is_cut(
    tmp_path: Path,
) -> None:
    """A hard wrap inside a string once read as one entry: a value changed without a word, and
    each open cut one more committed line."""
    committed(tmp_path)
    users = tmp_path / "users.jsonl"
    wrapped = users.read_bytes().replace(b"hello world", b"hello\nworld")
    users.write_bytes(wrapped)
    for _ in range(2):
        with pytest.raises(hutch.CorruptData) as opening:
            hutch.open(url(tmp_path))
        assert f"{users}: line 2 " in str(opening.value)
        assert users.read_bytes() == wrapped


@pytest.mark.parametrize("depth", [101, 1000])
def test_a_row_nested_too_deep_is_corrupt_data_not_a_recursion_error(
    tmp_path: Path, depth: int
) -> None:
    committed(tmp_path)
    users = tmp_path / "users.jsonl"
    users.write_bytes(
        users.read_bytes().replace(b'"hello world"', b"[" * depth + b"1" + b"]" * depth)
    )
    with pytest.raises(hutch.CorruptData, match="nests lists and dicts more than 100 deep"):
        hutch.open(url(tmp_path))


# -- finding 10: a lost commit log, a damaged or stripped last line -----------------------------


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_a_lost_commit_log_is_corrupt_data_and_no_log_is_cut(tmp_path: Path, how: str) -> None:
    good = committed(tmp_path)
    commits = tmp_path / "_commits.jsonl"
    if how == "missing":
        commits.unlink()
    else:
        commits.write_bytes(b"")
    with pytest.raises(hutch.CorruptData, match=f"_commits.jsonl is {how}, but .* holds lines"):
        hutch.open(url(tmp_path))
    for name, data in good.items():
        if name != "_commits.jsonl":
            assert (tmp_path / name).read_bytes() == data


def test_a_committed_last_line_with_a_flipped_byte_is_corrupt_data(tmp_path: Path) -> None:
    good = committed(tmp_path)
    users = tmp_path / "users.jsonl"
    damaged = good["users.jsonl"][:-2] + b"}\n"  # its closing bracket became a brace
    users.write_bytes(damaged)
    with pytest.raises(hutch.CorruptData, match=f"{users}: line 3 .*reached the disk"):
        hutch.open(url(tmp_path))
    assert users.read_bytes() == damaged


def test_a_committed_last_line_without_its_newline_is_read_and_appended_after(
    tmp_path: Path,
) -> None:
    good = committed(tmp_path)
    for name in ("users.jsonl", "_commits.jsonl"):  # an editor stripped the final newline
        (tmp_path / name).write_bytes(good[name].rstrip(b"\n"))
    assert contents(tmp_path) == EXPECTED
    with hutch.open(url(tmp_path)) as db:
        db.store.set_row("users", "u3", {"name": "Alan"})
    assert (tmp_path / "users.jsonl").read_bytes() == (
        good["users.jsonl"] + b'[3,"u3",{"name":"Alan"}]\n'
    )
    tables, _ = contents(tmp_path)
    assert tables["users"]["u3"] == {"name": "Alan"}


def test_under_batch_a_commit_whose_lines_never_reached_the_disk_is_cut_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under durability="batch" the commit log may reach the disk before a log does. Its lines
    say which commits had been flushed, so recovery cuts back to the last whole commit; once
    the commit log says they were (at close), the same state is damage."""
    folder, cut = tmp_path / "data", tmp_path / "cut"
    options: dict[str, Any] = {"durability": "batch", "batch_interval": 3600}
    with hutch.open(url(folder), **options) as db:
        db.store.set_row("users", "u1", {"name": "Ada"})
        before = (folder / "users.jsonl").read_bytes()
        db.store.set_row("users", "u2", {"name": "Grace"})
        db.store.set_value("count", 2)
        shutil.copytree(folder, cut)  # what a power cut now leaves if users.jsonl's page is lost
    for damaged in (folder, cut):
        (damaged / "users.jsonl").write_bytes(before)

    with hutch.open(url(cut), **options) as db:
        assert db.store.get_table("users") == {"u1": {"name": "Ada"}}
        assert db.store.get_values() == {}
    assert any("_commits.jsonl at byte" in w and "commit 2" in w for w in warnings(caplog))
    with pytest.raises(hutch.CorruptData, match=r"users\.jsonl: line 3 .* commit 2 had reached"):
        hutch.open(url(folder), **options)


# -- headers ------------------------------------------------------------------------------------


def test_a_log_of_another_folder_or_file_is_corrupt_data_and_left_alone(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    committed(mine)
    committed(theirs)
    copied = (theirs / "users.jsonl").read_bytes()
    (mine / "users.jsonl").write_bytes(copied)
    with pytest.raises(hutch.CorruptData, match=r"of the folder \w+, not users\.jsonl of this"):
        hutch.open(url(mine))
    assert (mine / "users.jsonl").read_bytes() == copied

    renamed = (mine / "teams.jsonl").read_bytes()
    (mine / "users.jsonl").write_bytes(renamed)  # this folder's teams.jsonl, renamed
    with pytest.raises(hutch.CorruptData, match=r"says it is teams\.jsonl"):
        hutch.open(url(mine))
    assert (mine / "users.jsonl").read_bytes() == renamed


def test_a_manifest_without_its_id_is_corrupt_and_a_missing_one_is_not_made_up(
    tmp_path: Path,
) -> None:
    committed(tmp_path)
    manifest = json.loads((tmp_path / "hutch.json").read_text())
    (tmp_path / "hutch.json").unlink()
    with pytest.raises(hutch.CorruptData, match="is missing") as opening:
        hutch.open(url(tmp_path))  # a new manifest would lose the settings the old one kept
    assert not (tmp_path / "hutch.json").exists()
    written = re.search(r"write (\{.*\}) into it", str(opening.value))
    assert written is not None
    (tmp_path / "hutch.json").write_text(written[1])  # as the message says
    assert contents(tmp_path) == EXPECTED
    assert json.loads((tmp_path / "hutch.json").read_text())["id"] == manifest["id"]

    (tmp_path / "hutch.json").write_text('{"format": 2, "kind": "jsonl", "collections": {}}')
    with pytest.raises(hutch.CorruptData, match="'id'"):
        hutch.open(url(tmp_path))


# -- format 1 ----------------------------------------------------------------------------------


def format_1_folder(tmp_path: Path) -> tuple[Path, Any]:
    folder = tmp_path / "data"
    shutil.copytree(FIXTURES / "jsonl_format_1", folder)
    expected = json.loads((FIXTURES / "jsonl_format_1.expected.json").read_text())
    return folder, (expected["tables"], expected["values"])


def test_a_folder_of_format_1_opens_with_its_data_and_is_upgraded(tmp_path: Path) -> None:
    folder, expected = format_1_folder(tmp_path)
    assert contents(folder) == expected
    manifest = json.loads((folder / "hutch.json").read_text())
    assert manifest["format"] == 2
    assert "upgrading" not in manifest
    assert manifest["collections"]["people"]["indexed"] == ["email"]
    for log in folder.glob("*.jsonl"):
        header = orjson.loads(log.read_bytes().split(b"\n", 1)[0])
        assert header == ["hutch-jsonl", 2, manifest["id"], log.name, 1]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    with hutch.open(url(folder)) as db:
        db.store.set_value("after", True)
    assert contents(folder)[1]["after"] is True


HOLDER = """\
import fcntl, os, sys
folder = sys.argv[1]
if sys.argv[2] == "new":  # what a process of format 2 holds while it has the folder open
    fcntl.flock(os.open(os.path.join(folder, "hutch.open"), os.O_RDWR), fcntl.LOCK_SH)
lock = os.open(os.path.join(folder, "hutch.lock"), os.O_RDWR)  # what every version keeps open
print("holding", flush=True)
sys.stdin.read()
"""


def holding(tmp_path: Path, folder: Path, version: str) -> Child:
    """A process holding the folder open as one of the older hutch (or of this one) does."""
    child = Child(version, [sys.executable, "-c", HOLDER, str(folder), version], tmp_path / "err")
    child.expect("holding")
    return child


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds other processes in /proc")
def test_an_upgrade_waits_until_no_older_process_holds_the_folder(tmp_path: Path) -> None:
    folder, expected = format_1_folder(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    older = holding(tmp_path, folder, "old")
    try:
        pid = older.process.pid
        with pytest.raises(hutch.StorageError, match=f"process\\(es\\) {pid} of an older"):
            hutch.open(url(folder))
    finally:
        older.end()
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "hutch.open"}
    assert after == before

    newer = holding(tmp_path, folder, "new")  # another process of this version, opening it too
    try:
        assert contents(folder) == expected
    finally:
        newer.end()


# -- compaction ---------------------------------------------------------------------------------


def test_compact_leaves_no_deleted_or_overwritten_value_in_any_file(tmp_path: Path) -> None:
    secret = "s3cr3t-to-forget"
    collections = {"users": {"indexed": ["token"]}}
    with hutch.open(url(tmp_path), collections=collections) as db:
        for n in range(5):
            db.store.set_row("users", f"u{n}", {"name": f"user {n}", "token": f"{secret}{n}"})
        db.store.set_value("api_key", secret)
        db.store.set_value("kept", "visible")
        db.store.del_row("users", "u0")
        for n in range(1, 5):
            db.store.set_cell("users", f"u{n}", "token", f"fresh {n}")
        db.store.del_value("api_key")
        assert secret.encode() in every_byte(tmp_path)
        db.compact()
        assert secret.encode() not in every_byte(tmp_path)
        assert db.store.get_row("users", "u1") == {"name": "user 1", "token": "fresh 1"}
    tables, values = contents(tmp_path)
    assert sorted(tables["users"]) == ["u1", "u2", "u3", "u4"]
    assert values == {"kept": "visible"}
