"""Deleted data leaves the disk: after ``db.compact()`` no byte under the folder holds it.

A store keeps superseded history for a while (log generations, superseded log
lines, SQLite's free pages and -wal file); ``db.compact()`` is the moment it
must go, on every backend: a user's email, a session hash, an OAuth token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hutch
from hutch.backends.file import FilePersister

#: Backends that keep their data on disk, and the URL of a store of theirs under a folder.
BACKENDS = {
    "file": lambda root: str(root),
    "jsonl": lambda root: f"jsonl://{root}",
    "sqlite": lambda root: f"sqlite:///{root}/store.db",
}

GONE = [b"deleted-ada@example.org", b"gho_revoked_token_1f2e3d", b"old-name-overwritten"]


def every_byte(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_compact_leaves_no_deleted_or_overwritten_value_on_disk(
    tmp_path: Path, backend: str
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    url = BACKENDS[backend](root)
    with hutch.open(url) as db:
        store = db.store
        for n in range(50):  # enough rows that old pages and lines hold neighbours
            store.set_row("users", f"u{n}", {"email": f"user{n}@example.org", "n": n})
        store.set_row("users", "ada", {"email": GONE[0].decode(), "name": "Ada"})
        store.set_row("accounts", "a1", {"token": GONE[1].decode(), "user_id": "ada"})
        store.set_row("users", "bob", {"name": GONE[2].decode()})
        store.set_value("motd", GONE[2].decode())
        db.close()
    with hutch.open(url) as db:
        store = db.store
        assert any(value in every_byte(root) for value in GONE)
        with store.transaction():
            store.del_row("users", "ada")
            store.del_row("accounts", "a1")
            store.set_cell("users", "bob", "name", "Bob")
            store.set_value("motd", "hello")
        db.compact()
        found = every_byte(root)
        assert [value for value in GONE if value in found] == []
        store.set_row("users", "carol", {"email": "carol@example.org"})  # still writable
    with hutch.open(url) as db:
        assert not db.store.has_row("users", "ada")
        assert db.store.get_cell("users", "bob", "name") == "Bob"
        assert db.store.get_row_count("users") == 52


def test_compact_on_memory_is_a_no_op() -> None:
    with hutch.open("memory://") as db:
        db.store.set_row("t", "r", {"a": 1})
        db.compact()
        assert db.store.get_row("t", "r") == {"a": 1}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_compact_and_reindex_inside_a_transaction_are_refused_not_a_deadlock(
    tmp_path: Path, backend: str
) -> None:
    """Both wait for the write lock, which this thread's transaction holds: they once hung."""
    with hutch.open(BACKENDS[backend](tmp_path)) as db:
        with db.store.transaction():
            db.store.set_row("users", "ada", {"name": "Ada"})
            for method in (db.compact, db.reindex):
                with pytest.raises(hutch.HutchError, match="inside a transaction"):
                    method()
            db.store.set_row("users", "bob", {"name": "Bob"})  # the transaction goes on
        db.compact()
        db.reindex()
        assert db.store.get_row_count("users") == 2


def test_a_checkpoint_inside_a_transaction_is_refused(tmp_path: Path) -> None:
    with hutch.open(tmp_path) as db:
        backend = db.backend
        assert isinstance(backend, FilePersister)
        with db.store.transaction():
            db.store.set_row("users", "ada", {"name": "Ada"})
            with pytest.raises(hutch.HutchError, match="inside a transaction"):
                backend.checkpoint()
        backend.checkpoint()
