"""Parity: the store contract (TinyBase semantics, order, copies), keyed values, id and value rules.

Every backend must behave exactly as ``memory://`` does here: the store is the
same code on each, so a difference means the backend lost or changed something
it was handed (or refused something it must accept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hutch

# -- rows and cells ----------------------------------------------------------------------------


def test_a_fresh_store_is_empty(hutch_store: hutch.Store) -> None:
    assert hutch_store.get_table_ids() == []
    assert hutch_store.get_values() == {}
    assert hutch_store.get_row("users", "u1") is None
    assert not hutch_store.has_table("users")


def test_set_row_get_row_and_replace(hutch_store: hutch.Store) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"email": "a@x.io", "age": 3})
    assert s.get_row("users", "u1") == {"email": "a@x.io", "age": 3}
    s.set_row("users", "u1", {"name": "Ann"})
    assert s.get_row("users", "u1") == {"name": "Ann"}
    assert s.get_row("users", "u2") is None
    assert s.get_row("teams", "u1") is None


def test_set_partial_row_and_set_cell_create_a_missing_row(hutch_store: hutch.Store) -> None:
    s = hutch_store
    s.set_partial_row("users", "u1", {"age": 4})
    s.set_cell("users", "u2", "name", "Bo")
    assert s.get_table("users") == {"u1": {"age": 4}, "u2": {"name": "Bo"}}
    s.set_partial_row("users", "u1", {"name": "Ann"})
    assert s.get_row("users", "u1") == {"age": 4, "name": "Ann"}


def test_an_empty_row_deletes_and_an_empty_partial_row_does_nothing(
    hutch_store: hutch.Store,
) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"a": 1})
    s.set_partial_row("users", "u1", {})
    assert s.get_row("users", "u1") == {"a": 1}
    s.set_row("users", "u1", {})
    assert not s.has_row("users", "u1")
    assert not s.has_table("users")
    assert s.get_table_ids() == []


def test_deleting_the_last_cell_deletes_the_row_and_the_table(hutch_store: hutch.Store) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"a": 1, "b": 2})
    s.del_cell("users", "u1", "a")
    assert s.get_row("users", "u1") == {"b": 2}
    s.del_cell("users", "u1", "b")
    assert not s.has_row("users", "u1")
    assert s.get_table_ids() == []


def test_none_is_a_value_not_a_deletion(hutch_store: hutch.Store) -> None:
    s = hutch_store
    s.set_row("users", "u1", {"a": None})
    assert s.has_row("users", "u1")
    assert s.has_cell("users", "u1", "a")
    assert s.get_cell("users", "u1", "a", "missing") is None
    assert s.get_cell("users", "u1", "b", "missing") == "missing"
    s.set_value("k", None)
    assert s.has_value("k")
    assert s.get_values() == {"k": None}


def test_deleting_what_does_not_exist_is_a_no_op(hutch_store: hutch.Store) -> None:
    s = hutch_store
    heard: list[hutch.Changes] = []
    s.add_listener(heard.append)
    s.del_row("users", "u1")
    s.del_cell("users", "u1", "a")
    s.del_table("users")
    s.del_value("k")
    assert heard == []
    assert s.get_table_ids() == []


def test_del_row_and_del_table(hutch_store: hutch.Store) -> None:
    s = hutch_store
    for row_id in ("u1", "u2", "u3"):
        s.set_row("users", row_id, {"n": row_id})
    s.set_row("teams", "t1", {"n": 1})
    s.del_row("users", "u2")
    assert s.get_row_ids("users") == ["u1", "u3"]
    s.del_table("users")
    assert s.get_table_ids() == ["teams"]
    assert s.get_row_count("users") == 0


def test_ids_come_back_sorted(hutch_store: hutch.Store) -> None:
    s = hutch_store
    for row_id in ("b", "a", "c10", "c2", "A"):
        s.set_row("things", row_id, {"x": 1})
    s.set_row("alpha", "r", {"x": 1})
    assert s.get_row_ids("things") == ["A", "a", "b", "c10", "c2"]
    assert list(s.get_table("things")) == ["A", "a", "b", "c10", "c2"]
    assert s.get_table_ids() == ["alpha", "things"]
    assert s.get_row_count("things") == 5


JSON_SAMPLES: list[Any] = [
    0,
    -1,
    2**63 - 1,
    -(2**63),
    1.5,
    -0.0,
    1e300,
    True,
    False,
    None,
    "",
    'text with ünïcödé, emoji 🦔 and "quotes" \\ / \n\t',
    '{"looks": "like json"}',
    "null",
    [],
    {},
    [1, "a", None, [2, {"b": False}]],
    {"nested": {"deep": [1.0, 2, "3"]}, "id": "an ordinary key inside"},
]


def test_every_json_value_comes_back_exactly(hutch_store: hutch.Store) -> None:
    s = hutch_store
    for n, value in enumerate(JSON_SAMPLES):
        s.set_cell("cells", f"r{n}", "v", value)
        got = s.get_cell("cells", f"r{n}", "v")
        assert got == value
        assert type(got) is type(value), (value, got)


def test_reads_return_copies(hutch_store: hutch.Store) -> None:
    s = hutch_store
    row: dict[str, Any] = {"tags": ["a"], "meta": {"k": 1}}
    s.set_row("users", "u1", row)
    row["tags"].append("mutated after the write")
    got = s.get_row("users", "u1")
    assert got == {"tags": ["a"], "meta": {"k": 1}}
    assert got is not None
    got["tags"].append("mutated the copy")
    got["meta"]["k"] = 2
    s.get_table("users")["u1"]["tags"].append("x")
    tags = s.get_cell("users", "u1", "tags")
    tags.append("y")
    assert s.get_row("users", "u1") == {"tags": ["a"], "meta": {"k": 1}}
    s.set_value("list", [1])
    s.get_value("list").append(2)
    s.get_values()["list"].append(3)
    assert s.get_value("list") == [1]


# -- keyed values ------------------------------------------------------------------------------


def test_keyed_values(hutch_store: hutch.Store) -> None:
    s = hutch_store
    s.set_value("b", {"x": [1, 2]})
    s.set_value("a", 1)
    assert s.get_values() == {"a": 1, "b": {"x": [1, 2]}}
    assert list(s.get_values()) == ["a", "b"]
    assert s.get_value("missing", "default") == "default"
    s.del_value("a")
    assert s.get_values() == {"b": {"x": [1, 2]}}
    assert not s.has_value("a")


# -- id rules ----------------------------------------------------------------------------------

BAD_TABLE_IDS: list[Any] = ["", "1users", "_users", "users-x", "a/b", "..", "usérs", "a" * 65, 1]
BAD_ROW_IDS: list[Any] = ["", ".", "..", "../x", ".u1", "-u1", "a/b", "a\\b", "u 1", "a" * 129, 1]
GOOD_TABLE_IDS = ["a", "Z", "Users_2", "a" * 64]
GOOD_ROW_IDS = ["0", "u1", "a.b-c_d", "a..b", "a-", "a" * 128]


def _contents(s: hutch.Store) -> tuple[dict[str, Any], dict[str, Any]]:
    return {t: s.get_table(t) for t in s.get_table_ids()}, s.get_values()


@pytest.fixture
def seeded(hutch_store: hutch.Store) -> tuple[hutch.Store, list[hutch.Changes]]:
    hutch_store.set_row("users", "u1", {"email": "a@x.io"})
    hutch_store.set_value("k", 1)
    heard: list[hutch.Changes] = []
    hutch_store.add_listener(heard.append)
    return hutch_store, heard


SEEDED = ({"users": {"u1": {"email": "a@x.io"}}}, {"k": 1})


@pytest.mark.parametrize("table_id", BAD_TABLE_IDS, ids=repr)
def test_a_bad_table_id_raises_invalid_id_before_anything_is_written(
    seeded: tuple[hutch.Store, list[hutch.Changes]], table_id: Any
) -> None:
    s, heard = seeded
    writes: list[Callable[[], object]] = [
        lambda: s.set_row(table_id, "u1", {"a": 1}),
        lambda: s.set_partial_row(table_id, "u1", {"a": 1}),
        lambda: s.set_cell(table_id, "u1", "a", 1),
        lambda: s.del_row(table_id, "u1"),
        lambda: s.del_table(table_id),
        lambda: s.get_row(table_id, "u1"),
    ]
    for write in writes:
        with pytest.raises(hutch.InvalidId):
            write()
    assert _contents(s) == SEEDED
    assert heard == []


@pytest.mark.parametrize("row_id", BAD_ROW_IDS, ids=repr)
def test_a_bad_row_id_raises_invalid_id_before_anything_is_written(
    seeded: tuple[hutch.Store, list[hutch.Changes]], row_id: Any
) -> None:
    s, heard = seeded
    writes: list[Callable[[], object]] = [
        lambda: s.set_row("users", row_id, {"a": 1}),
        lambda: s.set_partial_row("users", row_id, {"a": 1}),
        lambda: s.set_cell("users", row_id, "a", 1),
        lambda: s.del_row("users", row_id),
        lambda: s.del_cell("users", row_id, "a"),
        lambda: s.get_row("users", row_id),
    ]
    for write in writes:
        with pytest.raises(hutch.InvalidId):
            write()
    assert _contents(s) == SEEDED
    assert heard == []


def test_a_cell_called_id_and_a_bad_value_id_are_refused(
    seeded: tuple[hutch.Store, list[hutch.Changes]],
) -> None:
    s, heard = seeded
    with pytest.raises(hutch.InvalidId):
        s.set_row("users", "u2", {"id": "u2"})
    with pytest.raises(hutch.InvalidId):
        s.set_value("", 1)
    assert _contents(s) == SEEDED
    assert heard == []


def test_a_bad_id_inside_a_transaction_rolls_it_back(
    seeded: tuple[hutch.Store, list[hutch.Changes]],
) -> None:
    s, heard = seeded
    with pytest.raises(hutch.InvalidId), s.transaction():  # noqa: PT012
        s.set_row("users", "u2", {"email": "b@x.io"})
        s.set_row("users", "../etc", {"email": "c@x.io"})
    assert _contents(s) == SEEDED
    assert heard == []


def test_valid_ids_are_accepted(hutch_store: hutch.Store) -> None:
    s = hutch_store
    for table_id in GOOD_TABLE_IDS:
        s.set_row(table_id, "r1", {"x": 1})
    for row_id in GOOD_ROW_IDS:
        s.set_row("things", row_id, {"x": 1})
    assert s.get_table_ids() == sorted([*GOOD_TABLE_IDS, "things"])
    assert s.get_row_ids("things") == sorted(GOOD_ROW_IDS)


# -- value rules -------------------------------------------------------------------------------

BAD_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    2**63,
    -(2**63) - 1,
    "a\x00b",
    "\ud800",
    {1: "a"},
    {"a\x00": 1},
    b"bytes",
    {1, 2},
    object(),
    [1, float("nan")],
    {"a": [1, {"b": 2**64}]},
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_a_bad_value_raises_invalid_value_before_anything_is_written(
    seeded: tuple[hutch.Store, list[hutch.Changes]], value: Any
) -> None:
    s, heard = seeded
    writes: list[Callable[[], object]] = [
        lambda: s.set_row("users", "u2", {"v": value}),
        lambda: s.set_cell("users", "u1", "v", value),
        lambda: s.set_value("k", value),
    ]
    for write in writes:
        with pytest.raises(hutch.InvalidValue):
            write()
    assert _contents(s) == SEEDED
    assert heard == []


def test_a_row_that_is_not_a_dict_is_refused(hutch_store: hutch.Store) -> None:
    with pytest.raises(hutch.InvalidValue):
        hutch_store.set_row("users", "u1", ["a"])  # type: ignore[arg-type]
    assert hutch_store.get_table_ids() == []
