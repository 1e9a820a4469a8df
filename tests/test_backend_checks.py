"""``Persister.verify()`` and ``Persister.stats()`` of the built-in backends, on real files: what
a backend keeps beside the rows (index files, ids, SQLite's pages) checked on a read-only open
that writes nothing, and the facts ``hutch stats`` shows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import hutch

SETTINGS = {"users": {"indexed": ["email", "age"]}, "vault": {"wal": False, "indexed": ["n"]}}
BACKENDS = ["file", "jsonl", "sqlite"]


def url_of(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    return f"{backend}://{folder / 'data'}"


def fill(url: str, **options: Any) -> None:
    with hutch.open(url, collections=SETTINGS, **options) as db, db.store.transaction():
        for n in range(5):
            db.store.set_row("users", f"u{n}", {"email": f"u{n}@example.org", "age": 20 + n})
            db.store.set_row("vault", f"v{n}", {"n": n})
        db.store.set_value("version", 3)


def everything(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


@contextmanager
def reading(url: str) -> Iterator[hutch.Database]:
    """The store opened as ``hutch verify`` opens it: read-only, following nothing."""
    with hutch.open(url, read_only=True, follow=False) as db:
        yield db


def problems_of(url: str) -> list[str]:
    with reading(url) as db:
        return db.backend.verify()


def index_file(backend: str, folder: Path, collection: str, field: str) -> Path:
    if backend == "jsonl":
        return folder / "data" / "indices" / collection / f"{field}.jsonl"
    return folder / "data" / collection / "indices" / f"{field}.jsonl"


# -- every backend -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sound_store_verifies_clean_and_verify_writes_nothing(
    backend: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    before = everything(tmp_path)
    assert problems_of(url) == []
    assert everything(tmp_path) == before
    with hutch.open(url, collections=SETTINGS) as db:  # a writing open checks the same
        assert db.backend.verify() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_stats_are_json_facts_about_the_disk(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    with reading(url) as db:
        stats = db.backend.stats()
    assert json.loads(json.dumps(stats)) == stats
    assert stats["bytes"] > 0
    assert stats["log_bytes"] >= 0
    assert {"users", "vault"} <= set(stats["collections"])
    for facts in stats["collections"].values():
        assert facts.get("bytes", 1) > 0
    if backend == "sqlite":
        assert stats["page_size"] * stats["page_count"] == stats["file_bytes"]
        assert stats["journal_mode"] == "wal"
        assert stats["collections"]["users"]["indexes"] >= 2  # the id's, email's and age's
    else:
        assert stats["collections"]["users"]["index_files"] == 2
        assert stats["collections"]["vault"]["index_files"] == 1
        on_disk = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
        assert stats["files"] == len(on_disk)
        assert stats["bytes"] == sum(p.stat().st_size for p in on_disk)
    if backend == "file":
        assert stats["record_files"] == 10
        assert stats["collections"]["users"]["record_files"] == 5
        assert stats["wal_generations"] >= 1
        assert stats["log_bytes"] == sum(
            p.stat().st_size for p in (tmp_path / "data" / "_wal").glob("*.log")
        )
    if backend == "jsonl":
        assert stats["collections"]["users"]["log_lines"] == 5
        assert stats["collections"]["users"]["dead_lines"] == 0


def test_the_memory_backend_has_nothing_on_disk() -> None:
    with hutch.open("memory://") as db:
        assert db.backend.verify() == []
        assert db.backend.stats() == {}


# -- index files (file://, jsonl://) -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["file", "jsonl"])
def test_an_index_file_that_does_not_match_is_reported_line_by_line(
    backend: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    email = index_file(backend, tmp_path, "users", "email")
    lines = email.read_bytes().splitlines()
    edited = [
        b'["wrong@example.org","u0"]',  # a wrong value
        *lines[1:3],  # u3 and u4 left out: missing
        b'["ghost@example.org","nobody"]',  # a row that does not exist
        b"not json",
    ]
    email.write_bytes(b"\n".join(edited) + b"\n")
    (index_file(backend, tmp_path, "users", "age")).unlink()
    problems = problems_of(url)
    assert len(problems) == 6, problems
    text = "\n".join(problems)
    assert f"{email}, line 5: not a [value, row_id] line" in text
    assert (
        'row \'u0\' is listed with "wrong@example.org", but its field is "u0@example.org"' in text
    )
    assert "row 'nobody' is listed, but no such row has the field" in text
    assert "row 'u3' has the field but is not listed" in text
    assert "row 'u4' has the field but is not listed" in text
    assert f"{index_file(backend, tmp_path, 'users', 'age')} is missing" in text
    assert all("hutch reindex" in problem for problem in problems)
    with hutch.open(url, collections=SETTINGS) as db:  # a writing open rewrites them...
        db.reindex()
    assert problems_of(url) == []  # ...and so does hutch reindex


@pytest.mark.parametrize("backend", ["file", "jsonl"])
def test_the_index_file_of_a_field_no_longer_indexed_is_reported(
    backend: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    with hutch.open(url, collections={"users": {"indexed": ["email"]}}):
        pass  # the settings kept in the manifest no longer index age
    stale = index_file(backend, tmp_path, "users", "age")
    if backend == "file":  # a writing open removes it: put it back, as an older hutch left it
        assert not stale.exists()
        stale.write_text('[30,"u1"]\n')
    assert stale.exists()
    (problem,) = problems_of(url)
    assert problem.startswith(f"{stale}: collection 'users' does not index that field")
    assert "delete it" in problem


@pytest.mark.parametrize("backend", ["file", "jsonl"])
def test_index_lines_out_of_order_are_reported(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    age = index_file(backend, tmp_path, "users", "age")
    age.write_bytes(b"".join(reversed(age.read_bytes().splitlines(keepends=True))))
    (problem,) = problems_of(url)
    assert problem.startswith(f"{age}: its lines are not in order")


def test_file_index_entries_of_rows_the_log_holds_may_lag(
    tmp_path: Path, several_opens: None
) -> None:
    url = url_of("file", tmp_path)
    fill(url)
    email = index_file("file", tmp_path, "users", "email")
    vault = index_file("file", tmp_path, "vault", "n")
    with hutch.open(url, checkpoint_interval=3600) as writer:
        writer.store.set_cell("users", "u1", "email", "new@example.org")  # logged, not checkpointed
        writer.store.set_row("users", "u9", {"email": "u9@example.org"})
        writer.store.set_cell("vault", "v1", "n", 10)  # "wal": false: its files are written now
        assert b'"new@example.org"' not in email.read_bytes()  # the index lags behind the log
        assert problems_of(url) == []  # and is not taken for damage
        # A row the log does not hold must be listed as its record says, though.
        email.write_bytes(email.read_bytes().replace(b"u2@example.org", b"u2@example.net"))
        (problem,) = problems_of(url)
        assert "row 'u2' is listed with \"u2@example.net\"" in problem
        assert b"10" in vault.read_bytes()
    assert problems_of(url) == []  # the close's checkpoint wrote the index file whole again


def test_jsonl_index_files_are_compared_only_while_no_writer_has_the_folder_open(
    tmp_path: Path, several_opens: None
) -> None:
    url = url_of("jsonl", tmp_path)
    fill(url)
    email = index_file("jsonl", tmp_path, "users", "email")
    with hutch.open(url) as writer:
        writer.store.set_cell("users", "u1", "email", "new@example.org")
        assert b'"new@example.org"' not in email.read_bytes()  # rewritten at close, not now
        assert problems_of(url) == []  # they lag by design while a writer has the folder open
        assert writer.backend.verify() == []  # its own view knows which lag
    email.write_bytes(email.read_bytes().replace(b"u2@example.org", b"u2@example.net"))
    (problem,) = problems_of(url)
    assert "row 'u2' is listed with \"u2@example.net\"" in problem


# -- the settings a store keeps ----------------------------------------------------------------

KEPT = {
    "users": {"indexed": ["email", "age"], "path": "people/users"},
    "vault": {"wal": False},
    "plain": {},  # the default settings: not reported
}


@pytest.mark.parametrize("backend", ["file", "jsonl"])
def test_a_folder_opened_read_only_reports_the_settings_it_was_created_with(
    backend: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url, collections=KEPT) as db:
        db.store.set_row("users", "u1", {"email": "a@example.org", "age": 3})
        db.store.set_row("vault", "v1", {"n": 1})
        db.store.set_row("plain", "p1", {"n": 1})
        written = db.backend.collection_settings()
    expected = {
        "users": hutch.CollectionSettings(indexed=("email", "age"), path="people/users"),
        "vault": hutch.CollectionSettings(wal=False),
    }
    assert written == expected
    with reading(url) as db:  # no collections= given: the manifest's
        assert db.backend.collection_settings() == expected


def test_sqlite_reports_the_settings_given_to_open(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    with hutch.open(url, collections={"users": {"indexed": ["email"]}}) as db:
        db.store.set_row("users", "u1", {"email": "a@example.org"})
        assert db.backend.collection_settings() == {
            "users": hutch.CollectionSettings(indexed=("email",))
        }
    with reading(url) as db:  # a SQLite file keeps none of its own
        assert db.backend.collection_settings() == {}


# -- names that a case-insensitive file system would merge --------------------------------------


def test_file_row_ids_that_differ_only_in_case_are_reported(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("users", "Ada", {"n": 1})
        db.store.set_row("users", "ada", {"n": 2})
        db.store.set_row("users", "bob", {"n": 3})
    (problem,) = problems_of(url)
    assert problem.startswith("collection 'users': the row ids 'Ada' and 'ada' differ only in case")
    assert "case-insensitive file system" in problem


@pytest.mark.parametrize("backend", ["file", "jsonl"])
def test_collections_that_differ_only_in_case_are_reported(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("Users", "a", {"n": 1})
        db.store.set_row("users", "a", {"n": 2})
    (problem,) = problems_of(url)
    assert "'Users" in problem
    assert "'users" in problem
    assert "differ only in case" in problem
    with hutch.open(url_of("sqlite", tmp_path)) as db:  # (SQLite gives them distinct tables)
        db.store.set_row("Users", "a", {"n": 1})
        db.store.set_row("users", "a", {"n": 2})
    assert problems_of(url_of("sqlite", tmp_path)) == []


# -- what else the file backend looks at ---------------------------------------------------------


def test_quarantined_files_and_strays_in_the_log_folder_are_reported(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    fill(url)
    (tmp_path / "data" / "users" / "u1.json").write_text("{not json", encoding="utf-8")
    with hutch.open(url, on_corrupt="quarantine"):
        pass
    stray = tmp_path / "data" / "_wal" / "00000099.log"
    stray.write_bytes(b"someone else's file\n")
    problems = problems_of(url)
    assert len(problems) == 2, problems
    assert "_quarantine holds 1 file(s) that hutch moved aside" in problems[0]
    assert problems[1].startswith(f"{stray} is not a log generation of this folder")


@contextmanager
def nested(top: Path, levels: int) -> Iterator[None]:
    """``levels`` folders under ``top``, each in the one before, a file in the deepest and a
    link back to ``top`` in each of the first few (to be never followed); removed after,
    from the bottom up (``shutil.rmtree`` and ``rglob`` recurse)."""
    top.mkdir(parents=True, exist_ok=True)
    made = [top]
    try:
        for level in range(levels):
            if level < 3:
                (made[-1] / "loop").symlink_to(top)
            made.append(made[-1] / "d")
            made[-1].mkdir()
        (made[-1] / "deepest.json").write_bytes(b"{}\n")
        yield
    finally:
        (made[-1] / "deepest.json").unlink(missing_ok=True)
        for folder in made[:3]:
            (folder / "loop").unlink(missing_ok=True)
        for folder in reversed(made[1:]):
            folder.rmdir()


@pytest.mark.parametrize("backend", ["file", "jsonl"])
@pytest.mark.parametrize("where", ["users/deep", "_quarantine/users"])
def test_stats_and_verify_walk_folders_nested_a_thousand_deep(
    backend: str, where: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    fill(url)
    with reading(url) as db:
        before = db.backend.stats()
    with nested(tmp_path / "data" / where, 1100), reading(url) as db:
        stats = db.backend.stats()
        problems = db.backend.verify()
    assert stats["folders_too_deep"] == 1  # the folders below checks.DEEPEST levels: not walked
    assert stats["files"] == before["files"]  # no link followed, nothing counted twice
    assert "folders_too_deep" not in before
    if backend == "file" and where.startswith("_quarantine"):
        (problem,) = problems
        assert "_quarantine holds 0 file(s) (and 1 folder(s) nested more than 32" in problem
    else:
        assert problems == []


# -- SQLite ------------------------------------------------------------------------------------


def test_sqlite_ids_held_by_several_rows_are_reported(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    fill(url)
    with sqlite3.connect(tmp_path / "store.db") as conn:  # a hand-made table without the key
        conn.executescript(
            """
            CREATE TABLE users_copy AS SELECT * FROM users;
            DROP TABLE users;
            ALTER TABLE users_copy RENAME TO users;
            INSERT INTO users SELECT * FROM users WHERE id = 'u1' LIMIT 1;
            INSERT INTO users SELECT * FROM users WHERE id = 'u1' LIMIT 1;
            """
        )
    problems = problems_of(url)
    assert any("3 rows have the id 'u1'" in p and "PRIMARY KEY" in p for p in problems), problems


def test_a_missing_sqlite_index_is_reported(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    fill(url)
    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("DROP INDEX idx_users_email")
    assert problems_of(url) == []  # a SQLite file keeps no settings: which fields are indexed?
    with hutch.open(url, read_only=True, collections=SETTINGS) as db:
        (problem,) = db.backend.verify()
    assert "the indexed field 'email' has no index" in problem
    assert f"hutch reindex {url}" in problem


def test_sqlite_damage_quick_check_finds_is_reported(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    with (
        hutch.open(url, collections={"users": {"indexed": ["email"]}}) as db,
        db.store.transaction(),
    ):
        for n in range(2000):
            db.store.set_row("users", f"u{n:04}", {"email": f"{n}@example.org"})
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as conn:  # an index page the load does not read, damaged
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'idx_users_email'"
        ).fetchone()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size + 8)
        file.write(b"\xff" * 64)
    problems = problems_of(url)
    assert problems, "quick_check found nothing"
    assert all("quick_check says" in p and ".recover" in p for p in problems), problems
