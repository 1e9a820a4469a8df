"""What a ``file://`` commit, refresh and checkpoint cost grows with what they change, never with
what the folder holds.

Each test here is a finding of a review, kept as its regression test: files hutch
did not write in ``_wal`` made every write slower (a listing of the folder per
checkpoint, idle or not), and an indexed collection wrote its whole index file
at every ``"wal": false`` commit and every checkpoint. No test measures time:
they count folder listings, and the bytes written to index files, for a small
index and one twenty times bigger.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import logfiles
import pytest

import hutch
from hutch.backends.file import FilePersister, fsio, indices, wal

POSTS = {"posts": {"wal": False, "indexed": ["author"]}}  # written at each commit
USERS = {"users": {"indexed": ["email"]}}  # written at checkpoints
QUIET: dict[str, Any] = {"checkpoint_interval": 3600, "follow": False}

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="tells an index file's writes by /proc/self/fd"
)


@contextmanager
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every folder listing made meanwhile (the folder's descriptor, once a listing)."""
    made: list[int] = []
    real = fsio.entries

    def counted(dir_fd: int) -> list[tuple[str, str]]:
        made.append(dir_fd)
        return real(dir_fd)

    with monkeypatch.context() as patched:
        patched.setattr(fsio, "entries", counted)
        yield made


@contextmanager
def index_bytes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The bytes written to index files meanwhile (temp files of whole writes included)."""
    written = [0]
    real = fsio.write_at

    def counted(fd: int, data: bytes, offset: int) -> None:
        if f"/{indices.FOLDER}/" in os.readlink(f"/proc/self/fd/{fd}"):
            written[0] += len(data)
        real(fd, data, offset)

    with monkeypatch.context() as patched:
        patched.setattr(fsio, "write_at", counted)
        yield written


def file_backend(db: hutch.Database) -> FilePersister:
    backend = db.backend
    assert isinstance(backend, FilePersister)
    return backend


def holding(folder: Path, text: bytes) -> list[Path]:
    """The files under ``folder`` that hold ``text``."""
    return [path for path in folder.rglob("*") if path.is_file() and text in path.read_bytes()]


def newest_number(folder: Path) -> int:
    return int(logfiles.generations(folder)[-1].stem)


# -- no listing per commit, refresh or checkpoint ----------------------------------------------


@pytest.mark.usefixtures("several_opens")
def test_no_folder_is_listed_to_commit_refresh_or_checkpoint_whatever_the_log_folder_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200,000 files hutch did not write in ``_wal`` made each write hundreds of times slower:
    every checkpoint, idle ones too, listed the folder (three times) and read every file
    bearing a generation's name. A checkpoint now names the next generation after the
    current one, and deletes only the generations it knows of."""
    folder = tmp_path / "data"
    options = {"collections": POSTS | USERS, **QUIET}
    with hutch.open(folder, **options) as db, hutch.open(folder, **options) as other:
        db.store.set_row("users", "u0", {"email": "u0@example.org"})
        log_folder = folder / "_wal"
        for i in range(300):
            (log_folder / f"junk-{i}").write_bytes(b"not hutch's")
        after = newest_number(folder)
        strays = {  # the names the next generations would take, each a file hutch did not write
            log_folder / wal.name(number): b"not a log\n" for number in range(after + 1, after + 4)
        }
        for path, data in strays.items():
            path.write_bytes(data)
        with listings(monkeypatch) as made:
            for turn in range(3):
                db.store.set_row("posts", f"p{turn}", {"author": "ada"})
                db.store.set_row("users", f"u{turn}", {"email": f"{turn}@example.org"})
                db.store.set_value("turn", turn)
                other.store.set_row("users", f"o{turn}", {"email": f"o{turn}@example.org"})
                db.refresh()
                file_backend(other).checkpoint()  # another process moves the log on
                db.store.set_row("posts", f"q{turn}", {"author": "bob"})
                other.refresh()
                file_backend(db).checkpoint()
                file_backend(db).checkpoint()  # with nothing to write
            db.compact()
            assert db.store.get_row("users", "o2") == {"email": "o2@example.org"}
        assert made == []
    assert {path: path.read_bytes() for path in strays} == strays
    assert len(list(log_folder.glob("junk-*"))) == 300
    with hutch.open(folder) as db:
        assert db.store.get_row_count("posts") == 6
        assert db.store.get_row_count("users") == 6
        assert db.store.get_value("turn") == 2
        problems = db.backend.verify()  # the strays are reported, never removed
        assert [path.name for path in strays] == [problem.split()[0][-12:] for problem in problems]


@pytest.mark.usefixtures("several_opens")
def test_a_generation_a_failed_checkpoint_started_past_a_stray_hides_no_later_commit(
    tmp_path: Path,
) -> None:
    """A checkpoint that started generation g+2 (a stray bore g+1's name then) and stopped
    before moving the log there, then one that started g+1 once the stray was gone: the
    log goes on in g+1, and the empty g+2, though numbered higher, hides none of it."""
    folder = tmp_path / "data"
    with hutch.open(folder, **QUIET) as db:
        db.store.set_value("before", 1)
        current = newest_number(folder)
        folder_id = json.loads((folder / "hutch.json").read_bytes())["id"]
        started = folder / "_wal" / wal.name(current + 2)
        started.write_bytes(wal.header(folder_id, current + 2, current))
        file_backend(db).checkpoint()  # starts g+1, the first free name
        db.store.set_value("after", 2)
        with hutch.open(folder, **QUIET) as opened:  # reads the log as an open after a crash
            assert opened.store.get_value("after") == 2
            opened.store.set_value("opened", 3)
            db.refresh()
            assert db.store.get_value("opened") == 3
    assert not started.exists()  # outside the live chain, and empty: deleted
    with hutch.open(folder) as db:
        assert db.store.get_values() == {"before": 1, "after": 2, "opened": 3}


# -- index files: a commit or a checkpoint writes what it changed ------------------------------


def commits_index_bytes(
    folder: Path, monkeypatch: pytest.MonkeyPatch, collections: dict[str, Any], rows: int
) -> int:
    """The bytes written to index files by 30 one-row commits (and a checkpoint after each)
    into a collection of ``rows`` indexed rows."""
    (table,) = collections
    (field,) = collections[table]["indexed"]
    with hutch.open(folder, collections=collections, **QUIET) as db:
        with db.store.transaction():
            for i in range(rows):
                db.store.set_row(table, f"r{i}", {field: f"v{i % 97}"})
        file_backend(db).checkpoint()
        with index_bytes(monkeypatch) as written:
            for i in range(30):
                db.store.set_row(table, f"r{i * 31}", {field: f"changed {i}"})
                file_backend(db).checkpoint()
        assert db.backend.verify() == []
    return written[0]


@needs_proc
@pytest.mark.parametrize("collections", [POSTS, USERS], ids=["wal false", "wal true"])
def test_a_commit_or_checkpoint_writes_index_bytes_as_it_changes_not_as_the_index_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collections: dict[str, Any]
) -> None:
    """A ``"wal": false`` collection with an indexed field wrote its whole index file at each
    commit (1 s at 100,000 rows), and a checkpoint wrote every index file of a collection
    it touched whole: a line a changed row is appended now."""
    small = commits_index_bytes(tmp_path / "small", monkeypatch, collections, 1_000)
    large = commits_index_bytes(tmp_path / "large", monkeypatch, collections, 20_000)
    assert 0 < large < 3 * small


@needs_proc
def test_appended_index_lines_are_bounded_by_what_the_index_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes append lines; the file is written whole again once it passes twice what its
    rows take (and a floor), so it never grows with the number of commits, and a whole
    write is paid for by the lines appended before it."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        for i in range(10):
            db.store.set_row("posts", f"p{i}", {"author": "ada"})
        sizes = []
        with index_bytes(monkeypatch) as written:
            for i in range(1000):
                db.store.set_row("posts", f"p{i % 10}", {"author": f"author {i}"})
                sizes.append(index.stat().st_size)
        expected = {f"p{i % 10}": f"author {i}" for i in range(990, 1000)}
        assert indices.listed(index.read_bytes()) == expected
    assert max(sizes) < 2 * indices.FLOOR
    assert any(after < before for before, after in itertools.pairwise(sizes))  # written whole...
    appended = len(indices.appended(["p0"], {"p0": "author 999"}))
    assert written[0] < 2 * 1000 * appended  # ...at a cost the appended lines paid for
    assert index.read_bytes() == indices.encode(expected)  # and sorted at close


def test_a_torn_last_index_line_is_never_appended_to(tmp_path: Path) -> None:
    """A writer killed while appending leaves a torn line: the next commit writes the file
    whole rather than append after it, and an open finds a torn index stale."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        db.store.set_row("posts", "p1", {"author": "ada"})
        with index.open("ab") as torn:
            torn.write(b'{"id":"p2","val')
        db.store.set_row("posts", "p2", {"author": "bob"})
        assert index.read_bytes() == b'["ada","p1"]\n["bob","p2"]\n'
        db.store.set_row("posts", "p3", {"author": "cy"})
        assert db.backend.verify() == []
        with index.open("ab") as torn:
            torn.write(b'{"id":"p3"')
    assert index.read_bytes().endswith(b'["cy","p3"]\n')  # (a close writes it whole)
    with index.open("ab") as torn:
        torn.write(b'{"id":"p9","value"')  # a power cut while appending, say
    with hutch.open(folder) as db:
        assert db.backend.verify() == []
    assert index.read_bytes() == b'["ada","p1"]\n["bob","p2"]\n["cy","p3"]\n'


def test_an_index_file_with_other_names_is_never_appended_to(tmp_path: Path) -> None:
    """Lines appended in place would reach every name of the file (a hard link, a ``cp -al``
    backup): such a file is replaced whole, and its other names keep what they held."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        db.store.set_row("posts", "p1", {"author": "ada"})
        kept = tmp_path / "kept.jsonl"
        os.link(index, kept)
        before = kept.read_bytes()
        db.store.set_row("posts", "p2", {"author": "bob"})
        assert kept.read_bytes() == before
        assert indices.listed(index.read_bytes()) == {"p1": "ada", "p2": "bob"}


@pytest.mark.parametrize("kind", ["folder", "link", "fifo"])
def test_what_stands_where_an_index_file_belongs_is_replaced_never_appended_to(
    tmp_path: Path, kind: str
) -> None:
    """A folder is moved to the quarantine, a link or a FIFO replaced (never followed): the
    index file is written whole in its place, as it was before lines were appended."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"")
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        db.store.set_row("posts", "p1", {"author": "ada"})
        index.unlink()
        if kind == "folder":
            index.mkdir()
        elif kind == "link":
            index.symlink_to(outside)
        else:
            os.mkfifo(index)
        db.store.set_row("posts", "p2", {"author": "bob"})
        assert not index.is_symlink()
        assert index.is_file()
        assert index.read_bytes() == b'["ada","p1"]\n["bob","p2"]\n'
        assert outside.read_bytes() == b""
        assert len(file_backend(db).quarantined) == (kind == "folder")


def test_verify_reads_appended_index_lines_in_turn(tmp_path: Path) -> None:
    """Appended lines are read after the sorted ones, each in turn: a row changed, deleted or
    without the field is listed as the last line naming it says, and a line that says
    otherwise than the records is reported."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    fix = "run `hutch reindex"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        for i in range(4):
            db.store.set_row("posts", f"p{i}", {"author": "ada"})
        db.close()
    with hutch.open(folder, **QUIET) as db:
        assert index.read_bytes().startswith(b'["ada","p0"]\n')
        db.store.set_row("posts", "p1", {"author": "bob"})
        db.store.del_row("posts", "p2")
        db.store.set_row("posts", "p3", {"title": "no author"})
        db.store.set_row("posts", "p4", {"author": None})
        assert index.read_bytes().count(b"\n") == 8
        assert db.backend.verify() == []
        with index.open("ab") as edited:
            edited.write(b'{"id":"p0","value":"zed"}\n["ada","p9"]\n')
        problems = db.backend.verify()
        assert len(problems) == 2, problems
        assert 'row \'p0\' is listed with "zed", but its field is "ada"' in problems[1]
        assert (
            'line 10: not a {"id": row_id, "value": value} or {"id": row_id} line' in (problems[0])
        )
        assert all(fix in problem for problem in problems)
        db.reindex()
        assert db.backend.verify() == []


def test_the_open_checks_an_index_with_appended_lines_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index file holding appended lines that list the records' values (a process that
    was killed leaves one) is not written again at open: only one that does not match."""
    folder = tmp_path / "data"
    index = folder / "posts" / indices.FOLDER / "author.jsonl"
    with hutch.open(folder, collections=POSTS, **QUIET) as db:
        db.store.set_row("posts", "p1", {"author": "ada"})
    with index.open("ab") as appended:
        appended.write(indices.appended(["p1"], {"p1": "ada"}))
    held = index.read_bytes()
    with hutch.open(folder, **QUIET):
        assert index.read_bytes() == held


def test_compact_leaves_no_old_value_in_an_index_file(tmp_path: Path) -> None:
    """Appended lines leave an indexed field's old values in the file until it is written
    whole: ``db.compact()`` writes it whole, so that no file holds a deleted or overwritten
    value."""
    folder = tmp_path / "data"
    with hutch.open(folder, collections=POSTS | USERS, **QUIET) as db:
        db.store.set_row("users", "u1", {"email": "secret@example.org"})
        db.store.set_row("posts", "p1", {"author": "secret author"})
        file_backend(db).checkpoint()
        db.store.set_row("users", "u1", {"email": "new@example.org"})
        db.store.del_row("posts", "p1")
        file_backend(db).checkpoint()
        assert sorted(path.name for path in holding(folder, b"secret")) == [
            "author.jsonl",
            "email.jsonl",
        ]
        db.compact()
        assert holding(folder, b"secret") == []
        assert db.backend.verify() == []
