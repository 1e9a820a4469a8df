"""The Store's reads and writes: TinyBase semantics, ordering, keyed values and copies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hutch


@pytest.fixture
def changes(store: hutch.Store) -> list[hutch.Changes]:
    """Every Changes the store commits from now on, as its listeners hear them."""
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    return heard


# -- set_row / get_row -------------------------------------------------------------------------


def test_set_row_then_get_row_returns_the_row(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    assert store.get_row("users", "u1") == {"email": "a@x.io", "age": 3}


def test_get_row_of_a_missing_row_or_table_is_none(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    assert store.get_row("users", "u2") is None
    assert store.get_row("teams", "u1") is None


def test_set_row_replaces_the_whole_row(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    store.set_row("users", "u1", {"name": "Ann"})
    assert store.get_row("users", "u1") == {"name": "Ann"}


def test_set_row_with_an_empty_dict_deletes_the_row(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.set_row("users", "u2", {"email": "b@x.io"})
    store.set_row("users", "u1", {})
    assert not store.has_row("users", "u1")
    assert store.get_row_ids("users") == ["u2"]


def test_set_row_with_an_empty_dict_on_a_missing_row_does_nothing(
    store: hutch.Store, changes: list[hutch.Changes]
) -> None:
    store.set_row("users", "u1", {})
    assert not store.has_table("users")
    assert changes == []


def test_set_row_with_an_empty_dict_deletes_the_last_row_and_the_table(
    store: hutch.Store,
) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.set_row("users", "u1", {})
    assert not store.has_table("users")
    assert store.get_table_ids() == []


# -- set_partial_row ---------------------------------------------------------------------------


def test_set_partial_row_keeps_the_other_cells(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    store.set_partial_row("users", "u1", {"age": 4, "name": "Ann"})
    assert store.get_row("users", "u1") == {"email": "a@x.io", "age": 4, "name": "Ann"}


def test_set_partial_row_creates_a_missing_row(store: hutch.Store) -> None:
    store.set_partial_row("users", "u1", {"age": 4})
    assert store.get_row("users", "u1") == {"age": 4}
    assert store.has_table("users")


def test_set_partial_row_with_no_cells_changes_nothing(
    store: hutch.Store, changes: list[hutch.Changes]
) -> None:
    store.set_row("users", "u1", {"age": 4})
    changes.clear()
    store.set_partial_row("users", "u1", {})
    store.set_partial_row("users", "u2", {})
    assert store.get_table("users") == {"u1": {"age": 4}}
    assert changes == []


def test_set_partial_row_with_none_sets_the_cell_to_none(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    store.set_partial_row("users", "u1", {"age": None})
    assert store.get_row("users", "u1") == {"email": "a@x.io", "age": None}


# -- set_cell / get_cell / has_cell ------------------------------------------------------------


def test_set_cell_changes_one_cell_and_keeps_the_others(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    store.set_cell("users", "u1", "age", 4)
    assert store.get_row("users", "u1") == {"email": "a@x.io", "age": 4}


def test_set_cell_creates_a_missing_row_and_table(store: hutch.Store) -> None:
    store.set_cell("users", "u1", "age", 4)
    assert store.get_row("users", "u1") == {"age": 4}
    assert store.get_table_ids() == ["users"]


def test_set_cell_to_none_keeps_the_cell(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_cell("users", "u1", "age", None)
    assert store.has_cell("users", "u1", "age")
    assert store.get_row("users", "u1") == {"age": None}


def test_set_cell_to_none_creates_a_row(store: hutch.Store) -> None:
    store.set_cell("users", "u1", "age", None)
    assert store.has_row("users", "u1")
    assert store.get_row("users", "u1") == {"age": None}


def test_get_cell_returns_the_value(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3, "tags": ["a", "b"]})
    assert store.get_cell("users", "u1", "age") == 3
    assert store.get_cell("users", "u1", "tags") == ["a", "b"]


def test_get_cell_returns_the_default_when_the_cell_row_or_table_is_missing(
    store: hutch.Store,
) -> None:
    store.set_row("users", "u1", {"age": 3})
    assert store.get_cell("users", "u1", "email") is None
    assert store.get_cell("users", "u1", "email", "none") == "none"
    assert store.get_cell("users", "u2", "age", "none") == "none"
    assert store.get_cell("teams", "u1", "age", "none") == "none"


def test_get_cell_of_a_none_cell_is_none_not_the_default(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": None})
    assert store.get_cell("users", "u1", "age", "default") is None


def test_has_cell(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3, "email": None})
    assert store.has_cell("users", "u1", "age")
    assert store.has_cell("users", "u1", "email")
    assert not store.has_cell("users", "u1", "name")
    assert not store.has_cell("users", "u2", "age")
    assert not store.has_cell("teams", "u1", "age")


# -- has_row / has_table / ids / counts --------------------------------------------------------


def test_has_row_and_has_table(store: hutch.Store) -> None:
    assert not store.has_table("users")
    store.set_row("users", "u1", {"age": 3})
    assert store.has_table("users")
    assert store.has_row("users", "u1")
    assert not store.has_row("users", "u2")
    assert not store.has_row("teams", "u1")


def test_get_row_ids_are_sorted(store: hutch.Store) -> None:
    for row_id in ["b", "10", "a", "B", "9", "a.1", "a-1"]:
        store.set_row("t", row_id, {"x": 1})
    assert store.get_row_ids("t") == sorted(["b", "10", "a", "B", "9", "a.1", "a-1"])


def test_get_row_ids_of_a_missing_table_is_empty(store: hutch.Store) -> None:
    assert store.get_row_ids("users") == []


def test_get_row_count(store: hutch.Store) -> None:
    assert store.get_row_count("users") == 0
    store.set_row("users", "u1", {"age": 3})
    store.set_row("users", "u2", {"age": 4})
    store.set_row("teams", "t1", {"name": "x"})
    assert store.get_row_count("users") == 2
    store.del_row("users", "u1")
    assert store.get_row_count("users") == 1


def test_get_table_returns_every_row_in_row_id_order(store: hutch.Store) -> None:
    store.set_row("users", "u2", {"age": 4})
    store.set_row("users", "u10", {"age": 10})
    store.set_row("users", "u1", {"age": 3})
    table = store.get_table("users")
    assert table == {"u1": {"age": 3}, "u10": {"age": 10}, "u2": {"age": 4}}
    assert list(table) == ["u1", "u10", "u2"]


def test_get_table_of_a_missing_table_is_empty(store: hutch.Store) -> None:
    assert store.get_table("users") == {}


def test_get_table_ids_are_sorted_and_list_only_tables_with_rows(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_row("Teams", "t1", {"n": 1})
    store.set_row("audit", "a1", {"n": 1})
    store.del_row("audit", "a1")
    assert store.get_table_ids() == ["Teams", "users"]


# -- deletions ---------------------------------------------------------------------------------


def test_del_row_removes_the_row(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_row("users", "u2", {"age": 4})
    store.del_row("users", "u1")
    assert store.get_row("users", "u1") is None
    assert store.get_table("users") == {"u2": {"age": 4}}


def test_del_row_of_the_last_row_removes_the_table(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.del_row("users", "u1")
    assert not store.has_table("users")
    assert store.get_table_ids() == []


def test_del_cell_removes_one_cell(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3, "email": "a@x.io"})
    store.del_cell("users", "u1", "age")
    assert store.get_row("users", "u1") == {"email": "a@x.io"}
    assert not store.has_cell("users", "u1", "age")


def test_deleting_the_last_cell_deletes_the_row_and_the_table(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.del_cell("users", "u1", "age")
    assert not store.has_row("users", "u1")
    assert store.get_row("users", "u1") is None
    assert store.get_row_ids("users") == []
    assert not store.has_table("users")


def test_deleting_the_last_cell_keeps_the_other_rows(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_row("users", "u2", {"age": 4})
    store.del_cell("users", "u1", "age")
    assert store.get_row_ids("users") == ["u2"]


def test_del_table_removes_every_row(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_row("users", "u2", {"age": 4})
    store.set_row("teams", "t1", {"n": 1})
    store.del_table("users")
    assert not store.has_table("users")
    assert store.get_row_ids("users") == []
    assert store.get_table_ids() == ["teams"]


def test_del_table_reports_every_deleted_row(
    store: hutch.Store, changes: list[hutch.Changes]
) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_row("users", "u2", {"age": 4})
    changes.clear()
    store.del_table("users")
    assert len(changes) == 1
    assert changes[0].tables == {"users": {"u1": None, "u2": None}}


def test_deleting_what_does_not_exist_is_a_no_op(
    store: hutch.Store, changes: list[hutch.Changes]
) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_value("k", 1)
    changes.clear()
    store.del_row("users", "u2")
    store.del_row("teams", "t1")
    store.del_cell("users", "u1", "email")
    store.del_cell("users", "u2", "age")
    store.del_cell("teams", "t1", "age")
    store.del_table("teams")
    store.del_value("missing")
    assert store.get_table_ids() == ["users"]
    assert store.get_table("users") == {"u1": {"age": 3}}
    assert store.get_values() == {"k": 1}
    assert changes == []


def test_a_deleted_row_can_be_set_again(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.del_row("users", "u1")
    store.set_cell("users", "u1", "email", "a@x.io")
    assert store.get_row("users", "u1") == {"email": "a@x.io"}


# -- None is a value ---------------------------------------------------------------------------


def test_none_is_a_cell_value_not_a_deletion(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": None})
    assert store.has_row("users", "u1")
    assert store.has_cell("users", "u1", "age")
    assert store.get_row("users", "u1") == {"age": None}
    assert store.get_table_ids() == ["users"]


def test_none_cells_are_reported_as_values_in_changes(
    store: hutch.Store, changes: list[hutch.Changes]
) -> None:
    store.set_row("users", "u1", {"age": None})
    assert changes[0].tables == {"users": {"u1": {"age": None}}}


# -- keyed values ------------------------------------------------------------------------------


def test_set_value_then_get_value(store: hutch.Store) -> None:
    store.set_value("version", 3)
    store.set_value("settings", {"theme": "dark", "sizes": [1, 2]})
    assert store.get_value("version") == 3
    assert store.get_value("settings") == {"theme": "dark", "sizes": [1, 2]}


def test_set_value_replaces_the_value(store: hutch.Store) -> None:
    store.set_value("version", 3)
    store.set_value("version", "four")
    assert store.get_value("version") == "four"


def test_get_value_of_a_missing_value_returns_the_default(store: hutch.Store) -> None:
    assert store.get_value("missing") is None
    assert store.get_value("missing", 42) == 42


def test_a_none_value_is_set_not_missing(store: hutch.Store) -> None:
    store.set_value("k", None)
    assert store.has_value("k")
    assert store.get_value("k", "default") is None
    assert store.get_values() == {"k": None}


def test_has_value(store: hutch.Store) -> None:
    assert not store.has_value("k")
    store.set_value("k", 0)
    assert store.has_value("k")


def test_del_value_removes_the_value(store: hutch.Store) -> None:
    store.set_value("k", 1)
    store.set_value("j", 2)
    store.del_value("k")
    assert not store.has_value("k")
    assert store.get_value("k") is None
    assert store.get_values() == {"j": 2}


def test_get_values_returns_every_value_sorted_by_key(store: hutch.Store) -> None:
    store.set_value("b", 2)
    store.set_value("a", 1)
    store.set_value("C", 3)
    values = store.get_values()
    assert values == {"a": 1, "b": 2, "C": 3}
    assert list(values) == ["C", "a", "b"]


def test_values_and_tables_are_separate(store: hutch.Store) -> None:
    store.set_value("users", 1)
    assert store.get_table_ids() == []
    store.set_row("users", "u1", {"age": 3})
    assert store.get_values() == {"users": 1}


def test_value_keys_are_free_form_strings(store: hutch.Store) -> None:
    store.set_value("a key/with ../odd chars", 1)
    store.set_value(".hidden", 2)
    assert store.get_values() == {".hidden": 2, "a key/with ../odd chars": 1}


# -- JSON values round-trip --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2**63 - 1,
        -(2**63),
        1.5,
        -0.0,
        True,
        False,
        None,
        "",
        "héllo ✓ 🐇",
        [],
        {},
        [1, "a", None, [True, {"x": [2.5]}]],
        {"a": {"b": {"c": [1, 2, {"d": None}]}}},
    ],
)
def test_any_json_value_round_trips_as_a_cell_and_as_a_value(
    store: hutch.Store, value: Any
) -> None:
    store.set_cell("t", "r", "c", value)
    store.set_value("k", value)
    assert store.get_cell("t", "r", "c") == value
    assert type(store.get_cell("t", "r", "c")) is type(value)
    assert store.get_value("k") == value
    assert type(store.get_value("k")) is type(value)


def test_true_and_one_stay_distinct(store: hutch.Store) -> None:
    store.set_row("t", "r", {"b": True, "i": 1, "f": 1.0})
    row = store.get_row("t", "r")
    assert row is not None
    assert [type(row[c]) for c in ("b", "i", "f")] == [bool, int, float]


# -- copies out --------------------------------------------------------------------------------


def test_mutating_the_row_from_get_row_does_not_change_the_store(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    row = store.get_row("users", "u1")
    assert row is not None
    row["age"] = 99
    row["new"] = 1
    assert store.get_row("users", "u1") == {"age": 3}


def test_mutating_nested_data_from_get_row_does_not_change_the_store(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"tags": ["a"], "meta": {"n": [1]}})
    row = store.get_row("users", "u1")
    assert row is not None
    row["tags"].append("b")
    row["meta"]["n"].append(2)
    row["meta"]["x"] = 1
    assert store.get_row("users", "u1") == {"tags": ["a"], "meta": {"n": [1]}}


def test_mutating_what_get_cell_returns_does_not_change_the_store(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"tags": ["a"], "meta": {"n": [1]}})
    store.get_cell("users", "u1", "tags").append("b")
    store.get_cell("users", "u1", "meta")["n"].append(2)
    assert store.get_row("users", "u1") == {"tags": ["a"], "meta": {"n": [1]}}


def test_mutating_what_get_table_returns_does_not_change_the_store(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"tags": ["a"]})
    store.set_row("users", "u2", {"age": 3})
    table = store.get_table("users")
    table["u1"]["tags"].append("b")
    table["u2"]["age"] = 4
    table["u3"] = {"age": 5}
    del table["u1"]
    assert store.get_table("users") == {"u1": {"tags": ["a"]}, "u2": {"age": 3}}


def test_mutating_what_get_value_and_get_values_return_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    store.set_value("k", {"list": [1], "obj": {"a": 1}})
    value = store.get_value("k")
    value["list"].append(2)
    value["obj"]["b"] = 2
    values = store.get_values()
    values["k"]["list"].append(3)
    values["other"] = 1
    assert store.get_values() == {"k": {"list": [1], "obj": {"a": 1}}}


def test_mutating_get_row_ids_and_get_table_ids_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.get_row_ids("users").append("u2")
    store.get_table_ids().append("teams")
    assert store.get_row_ids("users") == ["u1"]
    assert store.get_table_ids() == ["users"]


def test_rows_stay_deep_copied_after_a_partial_update(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"tags": ["a"]})
    store.set_partial_row("users", "u1", {"age": 3})
    store.set_cell("users", "u1", "name", "Ann")
    store.del_cell("users", "u1", "name")
    row = store.get_row("users", "u1")
    assert row is not None
    row["tags"].append("b")
    assert store.get_cell("users", "u1", "tags") == ["a"]


def test_a_cell_that_gains_a_list_is_deep_copied(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"age": 3})
    store.set_cell("users", "u1", "tags", ["a"])
    store.get_table("users")["u1"]["tags"].append("b")
    row = store.get_row("users", "u1")
    assert row is not None
    row["tags"].append("c")
    assert store.get_cell("users", "u1", "tags") == ["a"]


# -- copies in ---------------------------------------------------------------------------------


def test_mutating_the_dict_given_to_set_row_does_not_change_the_store(store: hutch.Store) -> None:
    row: dict[str, Any] = {"age": 3, "tags": ["a"], "meta": {"n": [1]}}
    store.set_row("users", "u1", row)
    row["age"] = 4
    row["new"] = 1
    row["tags"].append("b")
    row["meta"]["n"].append(2)
    assert store.get_row("users", "u1") == {"age": 3, "tags": ["a"], "meta": {"n": [1]}}


def test_mutating_the_dict_given_to_set_partial_row_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    store.set_row("users", "u1", {"age": 3})
    partial: dict[str, Any] = {"tags": ["a"]}
    store.set_partial_row("users", "u1", partial)
    partial["tags"].append("b")
    partial["age"] = 4
    assert store.get_row("users", "u1") == {"age": 3, "tags": ["a"]}


def test_mutating_the_value_given_to_set_cell_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    tags: list[Any] = ["a", {"n": [1]}]
    store.set_cell("users", "u1", "tags", tags)
    tags.append("b")
    tags[1]["n"].append(2)
    assert store.get_cell("users", "u1", "tags") == ["a", {"n": [1]}]


def test_mutating_the_value_given_to_set_value_does_not_change_the_store(
    store: hutch.Store,
) -> None:
    value: dict[str, Any] = {"list": [1], "obj": {"a": 1}}
    store.set_value("k", value)
    value["list"].append(2)
    value["obj"]["b"] = 2
    value["new"] = 1
    assert store.get_value("k") == {"list": [1], "obj": {"a": 1}}


# -- closing -----------------------------------------------------------------------------------


CLOSED_CALLS: dict[str, Callable[[hutch.Store], object]] = {
    "get_row": lambda s: s.get_row("users", "u1"),
    "get_cell": lambda s: s.get_cell("users", "u1", "age"),
    "has_row": lambda s: s.has_row("users", "u1"),
    "has_cell": lambda s: s.has_cell("users", "u1", "age"),
    "has_table": lambda s: s.has_table("users"),
    "get_row_ids": lambda s: s.get_row_ids("users"),
    "get_row_count": lambda s: s.get_row_count("users"),
    "get_table": lambda s: s.get_table("users"),
    "get_table_ids": lambda s: s.get_table_ids(),
    "get_value": lambda s: s.get_value("k"),
    "has_value": lambda s: s.has_value("k"),
    "get_values": lambda s: s.get_values(),
    "set_row": lambda s: s.set_row("users", "u2", {"age": 1}),
    "set_row_empty": lambda s: s.set_row("users", "u1", {}),
    "set_partial_row": lambda s: s.set_partial_row("users", "u1", {"age": 1}),
    "set_cell": lambda s: s.set_cell("users", "u1", "age", 1),
    "del_row": lambda s: s.del_row("users", "u1"),
    "del_row_missing": lambda s: s.del_row("users", "missing"),
    "del_cell": lambda s: s.del_cell("users", "u1", "age"),
    "del_table": lambda s: s.del_table("users"),
    "set_value": lambda s: s.set_value("k", 2),
    "del_value": lambda s: s.del_value("k"),
    "add_listener": lambda s: s.add_listener(lambda changes: None),
    "refresh": lambda s: s.refresh(),
}


@pytest.mark.parametrize("method", list(CLOSED_CALLS))
def test_every_method_raises_closed_error_after_close(method: str) -> None:
    db = hutch.open("memory://")
    db.store.set_row("users", "u1", {"age": 3})
    db.store.set_value("k", 1)
    db.close()
    with pytest.raises(hutch.ClosedError):
        CLOSED_CALLS[method](db.store)


def test_a_transaction_raises_closed_error_after_close() -> None:
    db = hutch.open("memory://")
    db.close()
    with pytest.raises(hutch.ClosedError), db.store.transaction():
        pytest.fail("the block must not run on a closed store")  # pragma: no cover


def test_database_refresh_raises_closed_error_after_close() -> None:
    db = hutch.open("memory://")
    db.close()
    with pytest.raises(hutch.ClosedError):
        db.refresh()


def test_closing_twice_is_fine() -> None:
    db = hutch.open("memory://")
    db.close()
    db.close()
    assert db.closed


def test_with_open_closes_the_database() -> None:
    with hutch.open("memory://") as db:
        db.store.set_row("users", "u1", {"age": 3})
        assert not db.closed
    assert db.closed
    with pytest.raises(hutch.ClosedError):
        db.store.get_row("users", "u1")


def test_with_open_closes_the_database_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), hutch.open("memory://") as db:
        raise RuntimeError("boom")
    assert db.closed


def test_closed_error_is_a_hutch_error() -> None:
    assert issubclass(hutch.ClosedError, hutch.HutchError)


def test_closing_inside_a_transaction_is_refused(db: hutch.Database) -> None:
    with db.store.transaction():
        db.store.set_row("t", "r", {"a": 1})
        with pytest.raises(hutch.HutchError, match="cannot close inside a transaction"):
            db.close()
    assert db.store.get_row("t", "r") == {"a": 1}
    db.close()
    assert db.closed
