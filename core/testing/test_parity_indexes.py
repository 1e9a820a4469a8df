"""Parity: indexes and relationships follow every write, commit and rollback alike."""

from __future__ import annotations

import pytest

import hutch


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


def test_an_index_by_cell(hutch_db: hutch.Database) -> None:
    s, ix = hutch_db.store, hutch_db.indexes
    s.set_row("users", "u1", {"city": "Oslo"})
    s.set_row("users", "u3", {"city": "Lima"})
    ix.define("by_city", "users", "city")  # covers rows written before it was defined
    s.set_row("users", "u2", {"city": "Oslo"})
    s.set_row("users", "u4", {"name": "no city"})
    assert ix.slice_ids("by_city") == ["Lima", "Oslo"]
    assert ix.slice_row_ids("by_city", "Oslo") == ["u1", "u2"]
    assert ix.slice_row_ids("by_city", "Rome") == []
    s.set_cell("users", "u1", "city", "Lima")
    s.del_row("users", "u3")
    assert ix.slice_row_ids("by_city", "Lima") == ["u1"]
    assert ix.slice_row_ids("by_city", "Oslo") == ["u2"]
    assert ix.table_id("by_city") == "users"


def test_an_index_by_function_list_cells_and_sorting(hutch_db: hutch.Database) -> None:
    s, ix = hutch_db.store, hutch_db.indexes
    ix.define("by_tag", "posts", "tags")
    ix.define("by_len", "posts", lambda row: len(row.get("tags", [])), sort_key="rank")
    ix.define("by_len_desc", "posts", lambda row: len(row.get("tags", [])), reverse=True)
    s.set_row("posts", "p1", {"tags": ["a", "b"], "rank": 2})
    s.set_row("posts", "p2", {"tags": ["b", "c"], "rank": 1})
    s.set_row("posts", "p3", {"tags": [], "rank": 0})
    assert ix.slice_ids("by_tag") == ["a", "b", "c"]
    assert ix.slice_row_ids("by_tag", "b") == ["p1", "p2"]
    assert ix.slice_row_ids("by_len", 2) == ["p2", "p1"]
    assert ix.slice_row_ids("by_len_desc", 2) == ["p2", "p1"]
    assert ix.slice_ids("by_len") == [0, 2]


def test_slice_keys_order_and_json_twins(hutch_db: hutch.Database) -> None:
    s, ix = hutch_db.store, hutch_db.indexes
    ix.define("by_v", "t", "v")
    for n, value in enumerate(["b", 2, None, True, 1.5, "a", False]):
        s.set_row("t", f"r{n}", {"v": value})
    assert ix.slice_ids("by_v") == [None, False, True, 1.5, 2, "a", "b"]
    assert ix.slice_row_ids("by_v", True) == ["r3"]
    assert ix.slice_row_ids("by_v", 1) == []


def test_a_rollback_restores_indexes_and_relationships(hutch_db: hutch.Database) -> None:
    s, ix, rel = hutch_db.store, hutch_db.indexes, hutch_db.relationships
    ix.define("by_city", "users", "city")
    rel.define("user_org", local="users", remote="orgs", on="org")
    s.set_row("users", "u1", {"city": "Oslo", "org": "o1"})
    with pytest.raises(Boom), s.transaction():  # noqa: PT012
        s.set_row("users", "u1", {"city": "Lima", "org": "o2"})
        s.set_row("users", "u2", {"city": "Lima", "org": "o1"})
        assert ix.slice_row_ids("by_city", "Lima") == ["u1", "u2"]  # its own writes
        raise Boom
    assert ix.slice_ids("by_city") == ["Oslo"]
    assert ix.slice_row_ids("by_city", "Oslo") == ["u1"]
    assert rel.remote_row_id("user_org", "u1") == "o1"
    assert rel.local_row_ids("user_org", "o1") == ["u1"]
    assert rel.local_row_ids("user_org", "o2") == []


def test_relationships(hutch_db: hutch.Database) -> None:
    s, rel = hutch_db.store, hutch_db.relationships
    rel.define("team_org", local="teams", remote="orgs", on="org_id")
    s.set_row("orgs", "o1", {"name": "acme"})
    s.set_row("teams", "t1", {"org_id": "o1"})
    s.set_row("teams", "t2", {"org_id": "o1"})
    s.set_row("teams", "t3", {"org_id": "not a row id!"})
    assert rel.remote_row_id("team_org", "t1") == "o1"
    assert rel.remote_row_id("team_org", "t3") is None
    assert rel.remote_row_id("team_org", "missing") is None
    assert rel.local_row_ids("team_org", "o1") == ["t1", "t2"]
    s.del_cell("teams", "t2", "org_id")
    assert rel.local_row_ids("team_org", "o1") == ["t1"]
    assert "team_org" in rel.relationship_ids()


def test_linked_rows_of_a_table_to_itself(hutch_db: hutch.Database) -> None:
    s, rel = hutch_db.store, hutch_db.relationships
    rel.define("parent", local="nodes", remote="nodes", on="up")
    s.set_row("nodes", "a", {"up": "b"})
    s.set_row("nodes", "b", {"up": "c"})
    s.set_row("nodes", "c", {"up": "a"})  # a cycle
    assert rel.linked_row_ids("parent", "a") == ["a", "b", "c"]
    s.del_cell("nodes", "c", "up")
    s.set_cell("nodes", "c", "x", 1)
    assert rel.linked_row_ids("parent", "b") == ["b", "c"]
