"""Indexes and relationships: slices by cell or function, ordering, incremental upkeep, errors."""

from __future__ import annotations

from typing import Any

import pytest

import hutch
import hutch.backends.memory
from hutch.cells import Row


def add_people(db: hutch.Database) -> None:
    with db.store.transaction():
        db.store.set_row("people", "p1", {"city": "Oslo", "age": 40, "tags": ["a", "b"]})
        db.store.set_row("people", "p2", {"city": "Lima", "age": 25, "tags": ["b"]})
        db.store.set_row("people", "p3", {"city": "Oslo", "age": 31})
        db.store.set_row("people", "p4", {"age": None})


def test_an_index_by_cell_groups_row_ids(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("by_city", "people", "city")
    assert db.indexes.slice_ids("by_city") == ["Lima", "Oslo"]
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p1", "p3"]
    assert db.indexes.slice_row_ids("by_city", "Rome") == []


def test_a_list_cell_puts_the_row_under_each_item(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("by_tag", "people", "tags")
    assert db.indexes.slice_row_ids("by_tag", "b") == ["p1", "p2"]
    assert db.indexes.slice_row_ids("by_tag", "a") == ["p1"]


def test_none_is_a_key_and_a_missing_cell_is_not(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("by_city", "people", "city")
    db.indexes.define("by_age", "people", "age")
    assert db.indexes.slice_row_ids("by_age", None) == ["p4"]
    assert "p4" not in [
        r for k in db.indexes.slice_ids("by_city") for r in db.indexes.slice_row_ids("by_city", k)
    ]


def test_true_and_one_are_different_keys(db: hutch.Database) -> None:
    db.store.set_row("flags", "f1", {"v": True})
    db.store.set_row("flags", "f2", {"v": 1})
    db.store.set_row("flags", "f3", {"v": 1.0})
    db.indexes.define("by_v", "flags", "v")
    assert db.indexes.slice_row_ids("by_v", True) == ["f1"]
    assert db.indexes.slice_row_ids("by_v", 1) == ["f2", "f3"]
    assert db.indexes.slice_ids("by_v") == [True, 1]


def test_a_function_may_return_several_keys(db: hutch.Database) -> None:
    add_people(db)

    def decades(row: Row) -> list[Any]:
        age = row.get("age")
        return [] if age is None else [f"{age // 10}0s", "adult" if age >= 18 else "minor"]

    db.indexes.define("by_decade", "people", decades)
    assert db.indexes.slice_ids("by_decade") == ["20s", "30s", "40s", "adult"]
    assert db.indexes.slice_row_ids("by_decade", "adult") == ["p1", "p2", "p3"]


def test_slices_can_be_sorted_and_reversed(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("oslo_by_age", "people", "city", sort_key="age")
    db.indexes.define("oslo_oldest_first", "people", "city", sort_key="age", reverse=True)
    db.indexes.define("by_name_len", "people", lambda row: "all", sort_key=lambda r: -len(r))
    assert db.indexes.slice_row_ids("oslo_by_age", "Oslo") == ["p3", "p1"]
    assert db.indexes.slice_row_ids("oslo_oldest_first", "Oslo") == ["p1", "p3"]
    assert db.indexes.slice_row_ids("by_name_len", "all") == ["p1", "p2", "p3", "p4"]


def test_mixed_sort_keys_order_without_error(db: hutch.Database) -> None:
    for row_id, value in [("a", "x"), ("b", 2), ("c", None), ("d", True), ("e", [1]), ("f", 1.5)]:
        db.store.set_row("mixed", row_id, {"k": "same", "v": value})
    db.indexes.define("by_v", "mixed", "k", sort_key="v")
    assert db.indexes.slice_row_ids("by_v", "same") == ["c", "d", "f", "b", "a", "e"]


def test_indexes_follow_every_kind_of_write(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("by_city", "people", "city", sort_key="age")
    store = db.store
    store.set_cell("people", "p2", "city", "Oslo")
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p2", "p3", "p1"]
    assert db.indexes.slice_ids("by_city") == ["Oslo"]
    store.set_cell("people", "p1", "age", 20)
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p1", "p2", "p3"]
    store.del_cell("people", "p3", "city")
    store.del_row("people", "p2")
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p1"]
    store.set_partial_row("people", "p9", {"city": "Oslo", "age": 99})
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p1", "p9"]
    store.del_table("people")
    assert db.indexes.slice_ids("by_city") == []


def test_a_failing_key_function_rolls_the_transaction_back(db: hutch.Database) -> None:
    db.indexes.define("strict", "things", lambda row: row["kind"])
    db.store.set_row("things", "t1", {"kind": "ok"})

    def change_both() -> None:
        with db.store.transaction():
            db.store.set_row("things", "t1", {"kind": "changed"})
            db.store.set_row("things", "t2", {"no_kind": 1})

    with pytest.raises(hutch.DefinitionError, match="things/t2") as caught:
        change_both()
    assert isinstance(caught.value.__cause__, KeyError)
    assert db.store.get_table("things") == {"t1": {"kind": "ok"}}
    assert db.indexes.slice_ids("strict") == ["ok"]


@pytest.mark.parametrize("bad", [{"a": 1}, [[1]], float("nan"), object()])
def test_a_key_function_must_return_json_scalars(db: hutch.Database, bad: Any) -> None:
    db.indexes.define("odd", "things", lambda row: bad)
    with pytest.raises(hutch.DefinitionError, match="JSON scalar"):
        db.store.set_row("things", "t1", {"a": 1})
    assert not db.store.has_row("things", "t1")


def test_defining_again_replaces_and_delete_forgets(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("idx", "people", "city")
    db.indexes.define("idx", "people", "age")
    assert db.indexes.slice_ids("idx") == [None, 25, 31, 40]
    assert "idx" in db.indexes
    assert db.indexes.index_ids() == ["idx"]
    assert db.indexes.table_id("idx") == "people"
    db.indexes.delete("idx")
    db.indexes.delete("idx")
    with pytest.raises(hutch.DefinitionError, match="no index 'idx'"):
        db.indexes.slice_row_ids("idx", 25)
    db.store.set_row("people", "p5", {"age": 1})  # a deleted index no longer listens


def test_indexes_cannot_be_defined_inside_a_transaction(db: hutch.Database) -> None:
    with db.store.transaction(), pytest.raises(hutch.DefinitionError, match="outside"):
        db.indexes.define("idx", "people", "city")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "people", "city"), "non-empty"),
        (("idx", "bad table", "city"), "invalid table id"),
        (("idx", "people", 3), "cell id or a function"),
    ],
)
def test_bad_index_definitions(db: hutch.Database, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(hutch.HutchError, match=message):
        db.indexes.define(*args)


def test_a_slice_read_is_a_copy(db: hutch.Database) -> None:
    add_people(db)
    db.indexes.define("by_city", "people", "city")
    db.indexes.slice_row_ids("by_city", "Oslo").append("p99")
    assert db.indexes.slice_row_ids("by_city", "Oslo") == ["p1", "p3"]


def test_relationships_go_both_ways(db: hutch.Database) -> None:
    store = db.store
    store.set_row("organisations", "acme", {"name": "Acme"})
    store.set_row("teams", "t1", {"organisation_id": "acme"})
    store.set_row("teams", "t2", {"organisation_id": "acme"})
    store.set_row("teams", "t3", {"organisation_id": 7})
    db.relationships.define("team_org", local="teams", remote="organisations", on="organisation_id")
    assert db.relationships.remote_row_id("team_org", "t1") == "acme"
    assert db.relationships.remote_row_id("team_org", "t3") is None
    assert db.relationships.remote_row_id("team_org", "missing") is None
    assert db.relationships.local_row_ids("team_org", "acme") == ["t1", "t2"]
    store.set_cell("teams", "t2", "organisation_id", "globex")
    assert db.relationships.local_row_ids("team_org", "acme") == ["t1"]
    assert db.relationships.local_row_ids("team_org", "globex") == ["t2"]
    assert db.relationships.definition("team_org") == hutch.Relationship(
        "teams", "organisations", "organisation_id"
    )
    assert db.relationships.relationship_ids() == ["team_org"]


def test_linked_row_ids_follow_a_chain_and_stop_at_a_cycle(db: hutch.Database) -> None:
    store = db.store
    with store.transaction():
        store.set_row("steps", "s1", {"next": "s2"})
        store.set_row("steps", "s2", {"next": "s3"})
        store.set_row("steps", "s3", {"next": "s1"})
        store.set_row("steps", "s4", {"next": "gone"})
    db.relationships.define("next_step", local="steps", remote="steps", on="next")
    assert db.relationships.linked_row_ids("next_step", "s1") == ["s1", "s2", "s3"]
    assert db.relationships.linked_row_ids("next_step", "s4") == ["s4", "gone"]
    store.del_cell("steps", "s2", "next")
    assert db.relationships.linked_row_ids("next_step", "s1") == ["s1", "s2"]


def test_linked_row_ids_need_a_table_linking_to_itself(db: hutch.Database) -> None:
    db.relationships.define("team_org", local="teams", remote="organisations", on="org")
    with pytest.raises(hutch.DefinitionError, match="a table to itself"):
        db.relationships.linked_row_ids("team_org", "t1")


def test_an_unknown_relationship_is_named(db: hutch.Database) -> None:
    with pytest.raises(hutch.DefinitionError, match="no relationship 'nope'"):
        db.relationships.local_row_ids("nope", "x")
    db.relationships.delete("nope")
