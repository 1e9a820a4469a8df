"""Listeners: called once per outermost commit with the net Changes, filtered, isolated."""

from __future__ import annotations

import pytest

import hutch


class Boom(Exception):
    pass


def fail_in_transaction(store: hutch.Store) -> None:
    with store.transaction():
        store.set_value("k", 1)
        raise Boom


def write_row_and_value(store: hutch.Store) -> None:
    with store.transaction():
        store.set_row("users", "u1", {"email": "a@x.io"})
        store.set_value("k", 1)


def test_add_listener_returns_distinct_ids(store: hutch.Store) -> None:
    ids = [store.add_listener(lambda c: None) for _ in range(3)]
    ids.append(store.add_listener(lambda c: None, table="users"))
    ids.append(store.add_listener(lambda c: None, table="users", row="u1"))
    assert len(set(ids)) == 5


def test_a_listener_hears_each_single_call(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.set_value("k", 1)
    store.del_row("users", "u1")
    assert heard == [
        hutch.Changes({"users": {"u1": {"email": "a@x.io"}}}),
        hutch.Changes(values={"k": 1}),
        hutch.Changes({"users": {"u1": None}}),
    ]


def test_a_listener_fires_once_per_transaction_with_the_net_changes(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.set_value("old", 1)
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    with store.transaction():
        store.set_row("users", "u2", {"email": "b@x.io"})
        store.set_cell("users", "u2", "age", 3)
        store.del_row("users", "u1")
        store.set_value("k", 1)
        store.set_value("k", 2)
        store.del_value("old")
        with store.transaction():
            store.set_value("inner", None)
    assert heard == [
        hutch.Changes(
            {"users": {"u1": None, "u2": {"email": "b@x.io", "age": 3}}},
            {"k": 2, "inner": None},
            frozenset({"old"}),
        )
    ]


def test_a_listener_fires_after_the_commit(store: hutch.Store) -> None:
    seen: list[object] = []
    store.add_listener(lambda c: seen.append(store.get_row("users", "u1")))
    with store.transaction():
        store.set_row("users", "u1", {"email": "a@x.io"})
        assert seen == []
    assert seen == [{"email": "a@x.io"}]


def test_a_listener_does_not_fire_for_a_rolled_back_transaction(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    with pytest.raises(Boom):
        fail_in_transaction(store)
    assert heard == []


def test_a_listener_does_not_fire_for_a_no_op(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.del_row("users", "u2")
    store.del_value("k")
    with store.transaction():
        store.set_value("k", 1)
        store.del_value("k")
    assert heard == []


def test_every_listener_fires(store: hutch.Store) -> None:
    first: list[hutch.Changes] = []
    second: list[hutch.Changes] = []
    store.add_listener(first.append)
    store.add_listener(second.append)
    store.set_value("k", 1)
    assert first == second == [hutch.Changes(values={"k": 1})]


# -- filters -----------------------------------------------------------------------------------


def test_a_table_listener_hears_only_commits_touching_its_table(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append, table="users")
    store.set_row("teams", "t1", {"n": 1})
    store.set_value("k", 1)
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.del_row("users", "u1")
    assert [c.tables["users"] for c in heard] == [{"u1": {"email": "a@x.io"}}, {"u1": None}]


def test_a_table_listener_hears_a_transaction_touching_several_tables_once(
    store: hutch.Store,
) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append, table="users")
    with store.transaction():
        store.set_row("teams", "t1", {"n": 1})
        store.set_row("users", "u1", {"n": 1})
        store.set_row("users", "u2", {"n": 2})
    assert len(heard) == 1
    assert heard[0].tables["users"] == {"u1": {"n": 1}, "u2": {"n": 2}}


def test_a_row_listener_hears_only_commits_touching_its_row(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append, table="users", row="u1")
    store.set_row("users", "u2", {"n": 2})
    store.set_row("teams", "u1", {"n": 1})
    store.set_value("u1", 1)
    store.set_row("users", "u1", {"n": 1})
    store.set_cell("users", "u1", "n", 2)
    store.del_cell("users", "u1", "n")
    assert [c.tables["users"]["u1"] for c in heard] == [{"n": 1}, {"n": 2}, None]


def test_a_row_listener_may_name_a_row_that_does_not_exist_yet(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append, table="users", row="later")
    store.set_cell("users", "later", "n", 1)
    assert len(heard) == 1


def test_a_row_filter_without_a_table_raises_invalid_id(store: hutch.Store) -> None:
    with pytest.raises(hutch.InvalidId):
        store.add_listener(lambda c: None, row="u1")


@pytest.mark.parametrize(("table", "row"), [("../x", None), ("users", "../x"), ("", None)])
def test_a_listener_with_a_bad_filter_raises_invalid_id(
    store: hutch.Store, table: str, row: str | None
) -> None:
    heard: list[hutch.Changes] = []
    with pytest.raises(hutch.InvalidId):
        store.add_listener(heard.append, table=table, row=row)
    store.set_row("users", "u1", {"n": 1})
    assert heard == []


# -- remove_listener ---------------------------------------------------------------------------


def test_a_removed_listener_no_longer_fires(store: hutch.Store) -> None:
    removed: list[hutch.Changes] = []
    kept: list[hutch.Changes] = []
    listener_id = store.add_listener(removed.append)
    store.add_listener(kept.append)
    store.set_value("k", 1)
    store.remove_listener(listener_id)
    store.set_value("k", 2)
    assert [c.values for c in removed] == [{"k": 1}]
    assert [c.values for c in kept] == [{"k": 1}, {"k": 2}]


def test_removing_an_unknown_listener_is_a_no_op(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    listener_id = store.add_listener(heard.append)
    store.remove_listener(listener_id + 1000)
    store.remove_listener(listener_id)
    store.remove_listener(listener_id)
    store.set_value("k", 1)
    assert heard == []


def test_the_same_function_added_twice_fires_twice_and_is_removed_by_id(
    store: hutch.Store,
) -> None:
    heard: list[hutch.Changes] = []
    first = store.add_listener(heard.append)
    store.add_listener(heard.append)
    store.set_value("k", 1)
    assert len(heard) == 2
    store.remove_listener(first)
    store.set_value("k", 2)
    assert len(heard) == 3


# -- private copies ----------------------------------------------------------------------------


def test_mutating_the_changes_a_listener_gets_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    def vandal(changes: hutch.Changes) -> None:
        row = changes.tables["users"]["u1"]
        assert row is not None
        row["tags"].append("evil")
        row["email"] = "evil"
        changes.values["k"]["n"].append("evil")

    store.add_listener(vandal)
    with store.transaction():
        store.set_row("users", "u1", {"email": "a@x.io", "tags": ["a"]})
        store.set_value("k", {"n": [1]})
    assert store.get_row("users", "u1") == {"email": "a@x.io", "tags": ["a"]}
    assert store.get_value("k") == {"n": [1]}


def test_each_listener_gets_its_own_copy(store: hutch.Store) -> None:
    def vandal(changes: hutch.Changes) -> None:
        row = changes.tables["users"]["u1"]
        assert row is not None
        row["tags"].append("evil")
        changes.values["k"].append("evil")

    heard: list[hutch.Changes] = []
    store.add_listener(vandal)
    store.add_listener(heard.append)
    with store.transaction():
        store.set_row("users", "u1", {"tags": ["a"]})
        store.set_value("k", [1])
    assert heard == [hutch.Changes({"users": {"u1": {"tags": ["a"]}}}, {"k": [1]})]


def test_mutating_the_changes_does_not_leak_into_the_next_commit(
    store: hutch.Store,
) -> None:
    """The next commit compares against the committed row, not the listener's mutated copy."""
    kept: list[hutch.Changes] = []

    def vandal(changes: hutch.Changes) -> None:
        row = changes.tables["t"]["r"]
        assert row is not None
        row["l"].append(2)

    store.add_listener(vandal)
    store.add_listener(kept.append)
    store.set_row("t", "r", {"l": [1]})
    store.set_cell("t", "r", "x", 1)
    assert kept[1].tables == {"t": {"r": {"l": [1], "x": 1}}}


# -- listeners that raise ----------------------------------------------------------------------


def test_a_listener_that_raises_does_not_undo_the_commit(store: hutch.Store) -> None:
    def bad(changes: hutch.Changes) -> None:
        raise Boom("listener failed")

    store.add_listener(bad)
    with pytest.raises(hutch.ListenerError):
        write_row_and_value(store)
    assert store.get_row("users", "u1") == {"email": "a@x.io"}
    assert store.get_value("k") == 1


def test_listener_error_is_raised_after_every_listener_ran(store: hutch.Store) -> None:
    first_error = Boom("first")
    second_error = ValueError("second")
    ran: list[str] = []

    def first(changes: hutch.Changes) -> None:
        ran.append("first")
        raise first_error

    def second(changes: hutch.Changes) -> None:
        ran.append("second")

    def third(changes: hutch.Changes) -> None:
        ran.append("third")
        raise second_error

    store.add_listener(first)
    store.add_listener(second)
    store.add_listener(third)
    with pytest.raises(hutch.ListenerError) as raised:
        store.set_value("k", 1)
    assert sorted(ran) == ["first", "second", "third"]
    assert raised.value.errors == [first_error, second_error]
    assert isinstance(raised.value, hutch.HutchError)


def test_a_listener_error_is_also_raised_by_a_single_call(store: hutch.Store) -> None:
    def bad(changes: hutch.Changes) -> None:
        raise Boom

    store.add_listener(bad, table="users")
    store.set_value("k", 1)  # not the listener's table: no error
    store.del_row("users", "u1")  # nothing to delete: no commit, so no error either
    with pytest.raises(hutch.ListenerError):
        store.set_row("users", "u1", {"n": 1})
    assert store.get_row("users", "u1") == {"n": 1}


def test_the_store_is_usable_after_a_listener_error(store: hutch.Store) -> None:
    calls: list[int] = []

    def bad_once(changes: hutch.Changes) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Boom

    store.add_listener(bad_once)
    with pytest.raises(hutch.ListenerError):
        store.set_value("k", 1)
    store.set_value("k", 2)
    assert store.get_value("k") == 2
    assert len(calls) == 2


# -- listeners that write ----------------------------------------------------------------------


def test_a_listener_may_write_to_the_store_in_a_new_transaction(store: hutch.Store) -> None:
    def audit(changes: hutch.Changes) -> None:
        for row_id, row in changes.tables["users"].items():
            store.set_row("audit", row_id, {"deleted": row is None})

    audit_heard: list[hutch.Changes] = []
    store.add_listener(audit, table="users")
    store.add_listener(audit_heard.append, table="audit")
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.del_row("users", "u1")
    assert store.get_table("audit") == {"u1": {"deleted": True}}
    assert [c.tables["audit"] for c in audit_heard] == [
        {"u1": {"deleted": False}},
        {"u1": {"deleted": True}},
    ]


def test_a_write_from_a_listener_is_its_own_commit(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []

    def counter(changes: hutch.Changes) -> None:
        if "hits" not in changes.values:
            store.set_value("hits", store.get_value("hits", 0) + 1)

    store.add_listener(counter)
    store.add_listener(heard.append)
    with store.transaction():
        store.set_value("a", 1)
        store.set_value("b", 2)
    assert store.get_value("hits") == 1
    assert sorted(sorted(c.values) for c in heard) == [["a", "b"], ["hits"]]
