"""Parity: transactions (all or nothing, nested) and listeners (net changes, once per commit)."""

from __future__ import annotations

from typing import Any

import pytest

import hutch


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


def _contents(s: hutch.Store) -> tuple[dict[str, Any], dict[str, Any]]:
    return {t: s.get_table(t) for t in s.get_table_ids()}, s.get_values()


def _plain(changes: hutch.Changes) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    tables = {t: dict(rows) for t, rows in changes.tables.items()}
    return tables, dict(changes.values), sorted(changes.deleted_values)


@pytest.fixture
def heard(hutch_store: hutch.Store) -> list[hutch.Changes]:
    changes: list[hutch.Changes] = []
    hutch_store.add_listener(changes.append)
    return changes


def test_a_transaction_commits_everything_once(
    hutch_store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    s = hutch_store
    with s.transaction():
        s.set_row("users", "u1", {"a": 1})
        s.set_row("users", "u2", {"a": 2})
        s.set_value("k", "v")
        assert s.get_row("users", "u1") == {"a": 1}  # a transaction reads its own writes
        assert heard == []
    assert len(heard) == 1
    assert _plain(heard[0]) == ({"users": {"u1": {"a": 1}, "u2": {"a": 2}}}, {"k": "v"}, [])


def test_an_exception_rolls_everything_back(
    hutch_store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"a": 1})
    s.set_value("k", 1)
    before = _contents(s)
    heard.clear()
    with pytest.raises(Boom), s.transaction():  # noqa: PT012
        s.set_row("users", "u1", {"a": 2})
        s.del_row("users", "u1")
        s.set_row("users", "u2", {"a": 3})
        s.del_value("k")
        s.set_value("j", [1])
        raise Boom
    assert _contents(s) == before
    assert heard == []


def test_a_nested_failure_undoes_only_its_own_writes(
    hutch_store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    s = hutch_store
    with s.transaction():
        s.set_row("users", "u1", {"a": 1})
        with pytest.raises(Boom), s.transaction():  # noqa: PT012
            s.set_row("users", "u2", {"a": 2})
            s.set_cell("users", "u1", "a", 99)
            raise Boom
        assert s.get_table("users") == {"u1": {"a": 1}}
        with s.transaction():
            s.set_row("users", "u3", {"a": 3})
    assert s.get_table("users") == {"u1": {"a": 1}, "u3": {"a": 3}}
    assert len(heard) == 1
    assert _plain(heard[0]) == ({"users": {"u1": {"a": 1}, "u3": {"a": 3}}}, {}, [])


def test_an_outer_failure_undoes_committed_inner_levels(
    hutch_store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    s = hutch_store
    with pytest.raises(Boom), s.transaction():  # noqa: PT012
        with s.transaction():
            s.set_row("users", "u1", {"a": 1})
        raise Boom
    assert s.get_table_ids() == []
    assert heard == []


def test_listeners_hear_net_changes(hutch_store: hutch.Store, heard: list[hutch.Changes]) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"a": 1})
    s.set_value("k", 1)
    heard.clear()
    with s.transaction():  # changed and put back: no change at all
        s.set_row("users", "u1", {"a": 2})
        s.set_row("users", "u1", {"a": 1})
        s.set_row("users", "u9", {"a": 9})
        s.del_row("users", "u9")
        s.set_value("k", 2)
        s.set_value("k", 1)
    assert heard == []
    with s.transaction():
        s.set_cell("users", "u1", "a", 5)
        s.del_row("users", "u1")
        s.del_value("k")
        s.set_value("n", None)
    assert len(heard) == 1
    assert _plain(heard[0]) == ({"users": {"u1": None}}, {"n": None}, ["k"])


def test_json_twins_are_changes(hutch_store: hutch.Store, heard: list[hutch.Changes]) -> None:
    s = hutch_store
    s.set_cell("t", "r", "c", 1)
    s.set_cell("t", "r", "c", True)
    s.set_cell("t", "r", "c", 1.0)
    assert [_plain(c)[0] for c in heard] == [
        {"t": {"r": {"c": 1}}},
        {"t": {"r": {"c": True}}},
        {"t": {"r": {"c": 1.0}}},
    ]
    assert type(s.get_cell("t", "r", "c")) is float


def test_listeners_filter_by_table_and_row_and_can_be_removed(hutch_store: hutch.Store) -> None:
    s = hutch_store
    tables: list[hutch.Changes] = []
    rows: list[hutch.Changes] = []
    s.add_listener(tables.append, table="users")
    lid = s.add_listener(rows.append, table="users", row="u2")
    s.set_row("teams", "t1", {"a": 1})
    s.set_row("users", "u1", {"a": 1})
    s.set_row("users", "u2", {"a": 1})
    assert len(tables) == 2
    assert len(rows) == 1
    s.remove_listener(lid)
    s.set_row("users", "u2", {"a": 2})
    assert len(rows) == 1
    assert len(tables) == 3


def test_listeners_get_a_private_copy(hutch_store: hutch.Store) -> None:
    s = hutch_store

    def scribble(changes: hutch.Changes) -> None:
        row = changes.tables["users"]["u1"]
        assert row is not None
        row["tags"].append("scribbled")

    s.add_listener(scribble)
    s.set_row("users", "u1", {"tags": ["a"]})
    assert s.get_row("users", "u1") == {"tags": ["a"]}


def test_a_failing_listener_does_not_undo_the_commit(hutch_store: hutch.Store) -> None:
    s = hutch_store

    def fail(changes: hutch.Changes) -> None:  # noqa: ARG001 - the listener signature
        raise Boom

    s.add_listener(fail)
    with pytest.raises(hutch.ListenerError):
        s.set_row("users", "u1", {"a": 1})
    assert s.get_row("users", "u1") == {"a": 1}
