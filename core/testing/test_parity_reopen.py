"""Parity: what a durable backend stores comes back exactly after closing and opening the URL again.

Every test here needs the ``durable`` capability; a backend that lacks it skips them, saying so.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import hutch
from hutch.persister import OpenStores
from hutch.testing.models import Org, Person, Project, Team, register_all
from hutch.testing.plugin import Opener
from hutch.testing.test_parity_store import JSON_SAMPLES

pytestmark = pytest.mark.hutch_requires("durable")


def _contents(db: hutch.Database) -> tuple[dict[str, Any], dict[str, Any]]:
    s = db.store
    return {t: s.get_table(t) for t in s.get_table_ids()}, s.get_values()


def _strict(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so True, 1 and 1.0 compare unequal."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return (type(value).__name__, value)


def test_rows_and_values_survive_a_reopen_exactly(hutch_open: Opener) -> None:
    db = hutch_open()
    s = db.store
    for n, value in enumerate(JSON_SAMPLES):
        s.set_row("cells", f"r{n}", {"v": value, "n": n})
        s.set_value(f"k{n}", value)
    s.set_row("users", "u.1-a_b", {"email": "a@x.io"})
    s.set_row("users", "gone", {"email": "b@x.io"})
    s.del_row("users", "gone")
    s.set_row("empty", "e1", {"x": 1})
    s.del_cell("empty", "e1", "x")
    before = _contents(db)
    db.close()
    again = hutch_open()
    assert _strict(_contents(again)) == _strict(before)
    assert again.store.get_table_ids() == ["cells", "users"]


def _delete_one_of_each(store: hutch.Store) -> None:
    """Every kind of deletion, each beside something that stays: a value, the last value of
    a commit, a row, a cell, a table, and a value deleted then set again."""
    store.del_value("gone")
    with store.transaction():  # a commit that only deletes
        store.del_value("also_gone")
    store.del_row("users", "u2")
    store.del_cell("users", "u1", "nick")
    store.del_table("teams")
    store.del_value("back")
    store.set_value("back", "again")


def _seed_deletable(store: hutch.Store) -> None:
    for key in ("gone", "also_gone", "kept", "back"):
        store.set_value(key, key)
    store.set_row("users", "u1", {"name": "Ada", "nick": "A"})
    store.set_row("users", "u2", {"name": "Bob"})
    store.set_row("teams", "t1", {"name": "blue"})


_AFTER_DELETIONS = ({"users": {"u1": {"name": "Ada"}}}, {"back": "again", "kept": "kept"})


def test_every_kind_of_deletion_survives_a_reopen(hutch_open: Opener) -> None:
    db = hutch_open()
    _seed_deletable(db.store)
    db.close()
    db = hutch_open()  # the deletions are of what an earlier open stored
    _delete_one_of_each(db.store)
    assert _contents(db) == _AFTER_DELETIONS
    db.close()
    again = hutch_open()
    assert _contents(again) == _AFTER_DELETIONS
    again.close()
    assert (
        _contents(hutch_open()) == _AFTER_DELETIONS
    )  # and a second reopen, after a write-less open


@pytest.mark.hutch_requires("change_feed")
def test_another_database_takes_in_every_kind_of_deletion(hutch_open: Opener) -> None:
    with OpenStores.allow_several():
        first = hutch_open()
        second = hutch_open(follow=False)
    _seed_deletable(first.store)
    second.refresh()
    _delete_one_of_each(first.store)
    second.refresh()
    assert _contents(second) == _AFTER_DELETIONS


def test_a_rolled_back_transaction_is_not_stored(hutch_open: Opener) -> None:
    db = hutch_open()
    db.store.set_row("users", "u1", {"a": 1})
    with pytest.raises(RuntimeError), db.store.transaction():  # noqa: PT012
        db.store.set_row("users", "u1", {"a": 2})
        db.store.set_row("users", "u2", {"a": 2})
        db.store.set_value("k", 1)
        raise RuntimeError("roll back")
    db.close()
    again = hutch_open()
    assert _contents(again) == ({"users": {"u1": {"a": 1}}}, {})


def test_many_commits_then_reopen(hutch_open: Opener) -> None:
    db = hutch_open()
    s = db.store
    for n in range(30):
        s.set_partial_row("counters", f"c{n % 7}", {"n": n, f"seen{n % 3}": True})
        if n % 5 == 0:
            s.del_row("counters", f"c{(n + 3) % 7}")
        s.set_value("last", n)
    before = _contents(db)
    db.close()
    assert _contents(hutch_open()) == before


def test_models_survive_a_reopen(hutch_open: Opener) -> None:
    db = hutch_open()
    register_all(db)
    org = db.repo(Org).create(name="Acme", slug="acme")
    ada = db.repo(Person).create(email="ada@x.io", org_id=org.id, tags=["a"])
    team = db.repo(Team).create(name="blue", org_id=org.id)
    plan = db.repo(Project).create(title="plan", team_id=team.id, owner_id=ada.id)
    db.close()
    db = hutch_open()
    register_all(db)
    assert db.repo(Person).get(ada.id) == ada
    assert db.repo(Project).get(plan.id) == plan
    assert db.repo(Person).find(org_id=org.id) == [ada]  # indexes rebuilt from the stored rows
    with pytest.raises(hutch.IntegrityError):
        db.repo(Person).create(email="ADA@x.io")
    with pytest.raises(hutch.IntegrityError):
        db.repo(Person).delete(ada.id)  # restrict: owns a project
    assert db.repo(Org).delete(org.id) is True
    db.close()
    db = hutch_open()
    register_all(db)
    assert db.repo(Team).count() == 0
    assert db.repo(Project).count() == 0
    kept = db.repo(Person).get(ada.id)
    assert kept is not None
    assert kept.org_id is None


@pytest.mark.hutch_requires("change_feed")
def test_refresh_takes_in_what_another_database_committed(hutch_open: Opener) -> None:
    """Two databases on one store, as two processes would have them (a store opens once
    per process otherwise); the second takes the first's commits in when told."""
    with OpenStores.allow_several():
        first = hutch_open()
        second = hutch_open(follow=False)
    heard: list[hutch.Changes] = []
    second.store.add_listener(heard.append)
    first.store.set_row("users", "u1", {"a": 1})
    first.store.set_value("k", 1)
    second.refresh()
    assert second.store.get_row("users", "u1") == {"a": 1}
    assert second.store.get_value("k") == 1
    assert len(heard) == 1
    first.store.del_row("users", "u1")
    with second.store.transaction():  # a write transaction takes in others' commits first
        assert second.store.get_row("users", "u1") is None


@pytest.mark.hutch_requires("multi_process")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available here")
def test_a_forked_child_must_open_the_database_again(hutch_db: hutch.Database) -> None:
    """A child shares its parent's locks and connections: writing through them is refused."""
    hutch_db.store.set_row("t", "r", {"a": 1})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what a write does, then leave at once
        try:
            hutch_db.store.set_row("t", "r", {"a": 2})
            message = b"wrote"
        except hutch.StorageError as error:
            message = str(error).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    try:
        reply = os.read(read, 4096).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert "before a fork" in reply
    hutch_db.refresh()
    assert hutch_db.store.get_cell("t", "r", "a") == 1
