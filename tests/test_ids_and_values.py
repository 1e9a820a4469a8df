"""Id rules (hutch.InvalidId) and value rules (hutch.InvalidValue), and value normalisation.

Every rejected call must raise before anything is written: the store's contents stay
as they were and no listener hears anything.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hutch

StoreCall = Callable[[hutch.Store], object]


@pytest.fixture
def store(db: hutch.Database) -> hutch.Store:
    """A store holding one row (users/u1) and one value (k), with a listener on everything."""
    db.store.set_row("users", "u1", {"email": "a@x.io", "tags": ["a"]})
    db.store.set_value("k", 1)
    return db.store


@pytest.fixture
def heard(store: hutch.Store) -> list[hutch.Changes]:
    changes: list[hutch.Changes] = []
    store.add_listener(changes.append)
    return changes


def contents(store: hutch.Store) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Everything the store holds: its tables and its values."""
    return {t: store.get_table(t) for t in store.get_table_ids()}, store.get_values()


BEFORE = ({"users": {"u1": {"email": "a@x.io", "tags": ["a"]}}}, {"k": 1})


def assert_nothing_written(store: hutch.Store, heard: list[hutch.Changes]) -> None:
    assert contents(store) == BEFORE
    assert heard == []


# -- ids ---------------------------------------------------------------------------------------

BAD_TABLE_IDS: list[Any] = [
    "",
    "1users",
    "_users",
    "users-x",
    "users.x",
    "a/b",
    "../x",
    "..",
    ".users",
    "us ers",
    "usérs",
    "users\n",
    "users\x00",
    "a" * 65,
    1,
    b"users",
    ["users"],
    {"users": 1},
]

BAD_ROW_IDS: list[Any] = [
    "",
    ".",
    "..",
    "../x",
    ".u1",
    "-u1",
    "_u1",
    "a/b",
    "a\\b",
    "u 1",
    "ü1",
    "u1\n",
    "u1\x00",
    "a" * 129,
    1,
    True,
    b"u1",
    ["u1"],
    {"u1": 1},
]

GOOD_TABLE_IDS = ["a", "Z", "users", "Users_2", "a_", "a" * 64]
GOOD_ROW_IDS = ["0", "a", "Z", "u1", "a.b-c_d", "1.0", "a..b", "a-", "a" * 128]


def table_id_calls(table_id: Any) -> dict[str, StoreCall]:
    """Every store method that takes a table id, called with ``table_id``."""
    return {
        "get_row": lambda s: s.get_row(table_id, "u1"),
        "get_cell": lambda s: s.get_cell(table_id, "u1", "email"),
        "has_row": lambda s: s.has_row(table_id, "u1"),
        "has_cell": lambda s: s.has_cell(table_id, "u1", "email"),
        "has_table": lambda s: s.has_table(table_id),
        "get_row_ids": lambda s: s.get_row_ids(table_id),
        "get_row_count": lambda s: s.get_row_count(table_id),
        "get_table": lambda s: s.get_table(table_id),
        "add_listener": lambda s: s.add_listener(lambda c: None, table=table_id),
        "add_row_listener": lambda s: s.add_listener(lambda c: None, table=table_id, row="u1"),
        "set_row": lambda s: s.set_row(table_id, "u1", {"email": "b@x.io"}),
        "set_row_empty": lambda s: s.set_row(table_id, "u1", {}),
        "set_partial_row": lambda s: s.set_partial_row(table_id, "u1", {"age": 1}),
        "set_cell": lambda s: s.set_cell(table_id, "u1", "age", 1),
        "del_row": lambda s: s.del_row(table_id, "u1"),
        "del_cell": lambda s: s.del_cell(table_id, "u1", "email"),
        "del_table": lambda s: s.del_table(table_id),
    }


def row_id_calls(table_id: str, row_id: Any) -> dict[str, StoreCall]:
    """Every store method that takes a row id, called with ``table_id`` and ``row_id``."""
    return {
        "get_row": lambda s: s.get_row(table_id, row_id),
        "get_cell": lambda s: s.get_cell(table_id, row_id, "email"),
        "has_row": lambda s: s.has_row(table_id, row_id),
        "has_cell": lambda s: s.has_cell(table_id, row_id, "email"),
        "add_row_listener": lambda s: s.add_listener(lambda c: None, table=table_id, row=row_id),
        "set_row": lambda s: s.set_row(table_id, row_id, {"email": "b@x.io"}),
        "set_row_empty": lambda s: s.set_row(table_id, row_id, {}),
        "set_partial_row": lambda s: s.set_partial_row(table_id, row_id, {"age": 1}),
        "set_cell": lambda s: s.set_cell(table_id, row_id, "age", 1),
        "del_row": lambda s: s.del_row(table_id, row_id),
        "del_cell": lambda s: s.del_cell(table_id, row_id, "email"),
    }


TABLE_METHODS = list(table_id_calls("users"))
ROW_METHODS = list(row_id_calls("users", "u1"))


@pytest.mark.parametrize("method", TABLE_METHODS)
@pytest.mark.parametrize("table_id", BAD_TABLE_IDS, ids=repr)
def test_a_bad_table_id_raises_invalid_id_and_writes_nothing(
    store: hutch.Store, heard: list[hutch.Changes], table_id: Any, method: str
) -> None:
    with pytest.raises(hutch.InvalidId):
        table_id_calls(table_id)[method](store)
    assert_nothing_written(store, heard)


@pytest.mark.parametrize("method", ROW_METHODS)
@pytest.mark.parametrize("row_id", BAD_ROW_IDS, ids=repr)
@pytest.mark.parametrize("table_id", ["users", "teams"], ids=["existing", "missing"])
def test_a_bad_row_id_raises_invalid_id_and_writes_nothing(
    store: hutch.Store, heard: list[hutch.Changes], table_id: str, row_id: Any, method: str
) -> None:
    with pytest.raises(hutch.InvalidId):
        row_id_calls(table_id, row_id)[method](store)
    assert_nothing_written(store, heard)


@pytest.mark.parametrize("table_id", GOOD_TABLE_IDS)
def test_valid_table_ids_are_accepted(store: hutch.Store, table_id: str) -> None:
    store.set_row(table_id, "r1", {"x": 1})
    assert store.get_row(table_id, "r1") == {"x": 1}
    assert table_id in store.get_table_ids()


@pytest.mark.parametrize("row_id", GOOD_ROW_IDS)
def test_valid_row_ids_are_accepted(store: hutch.Store, row_id: str) -> None:
    store.set_row("things", row_id, {"x": 1})
    assert store.get_row("things", row_id) == {"x": 1}
    assert store.get_row_ids("things") == [row_id]


def test_a_bad_id_inside_a_transaction_rolls_the_transaction_back(
    store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    def writes() -> None:
        with store.transaction():
            store.set_row("users", "u2", {"email": "b@x.io"})
            store.set_row("users", "../etc", {"email": "c@x.io"})

    with pytest.raises(hutch.InvalidId):
        writes()
    assert_nothing_written(store, heard)


# None for a table or row id means "no filter" to add_listener, and the reads get_row, get_cell,
# has_row and has_cell return "missing" for a None row id (see the report), so None is checked
# here on the methods that reject it.
NONE_ID_CALLS: dict[str, StoreCall] = {
    "get_row": lambda s: s.get_row(None, "u1"),  # type: ignore[arg-type]
    "get_cell": lambda s: s.get_cell(None, "u1", "email"),  # type: ignore[arg-type]
    "has_row": lambda s: s.has_row(None, "u1"),  # type: ignore[arg-type]
    "has_cell": lambda s: s.has_cell(None, "u1", "email"),  # type: ignore[arg-type]
    "has_table": lambda s: s.has_table(None),  # type: ignore[arg-type]
    "get_row_ids": lambda s: s.get_row_ids(None),  # type: ignore[arg-type]
    "get_row_count": lambda s: s.get_row_count(None),  # type: ignore[arg-type]
    "get_table": lambda s: s.get_table(None),  # type: ignore[arg-type]
    "set_row_table": lambda s: s.set_row(None, "u1", {"x": 1}),  # type: ignore[arg-type]
    "set_row_row": lambda s: s.set_row("users", None, {"x": 1}),  # type: ignore[arg-type]
    "set_partial_row": lambda s: s.set_partial_row("users", None, {"x": 1}),  # type: ignore[arg-type]
    "set_cell": lambda s: s.set_cell("users", None, "x", 1),  # type: ignore[arg-type]
    "del_row": lambda s: s.del_row("users", None),  # type: ignore[arg-type]
    "del_cell": lambda s: s.del_cell("users", None, "email"),  # type: ignore[arg-type]
    "del_table": lambda s: s.del_table(None),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("method", list(NONE_ID_CALLS))
def test_a_none_id_raises_invalid_id_and_writes_nothing(
    store: hutch.Store, heard: list[hutch.Changes], method: str
) -> None:
    with pytest.raises(hutch.InvalidId):
        NONE_ID_CALLS[method](store)
    assert_nothing_written(store, heard)


def test_a_row_listener_without_a_table_raises_invalid_id(store: hutch.Store) -> None:
    with pytest.raises(hutch.InvalidId):
        store.add_listener(lambda c: None, row="u1")


# -- cell ids ----------------------------------------------------------------------------------

BAD_CELL_IDS: list[Any] = ["id", "", "a\x00b", 1, None]


@pytest.mark.parametrize("cell_id", BAD_CELL_IDS, ids=repr)
def test_set_row_rejects_a_bad_cell_id(
    store: hutch.Store, heard: list[hutch.Changes], cell_id: Any
) -> None:
    with pytest.raises(hutch.InvalidId):
        store.set_row("users", "u1", {"email": "b@x.io", cell_id: "x"})
    with pytest.raises(hutch.InvalidId):
        store.set_row("users", "u2", {cell_id: "x"})
    assert_nothing_written(store, heard)


@pytest.mark.parametrize("cell_id", BAD_CELL_IDS, ids=repr)
def test_set_partial_row_rejects_a_bad_cell_id(
    store: hutch.Store, heard: list[hutch.Changes], cell_id: Any
) -> None:
    with pytest.raises(hutch.InvalidId):
        store.set_partial_row("users", "u1", {"age": 3, cell_id: "x"})
    with pytest.raises(hutch.InvalidId):
        store.set_partial_row("users", "u2", {cell_id: "x"})
    assert_nothing_written(store, heard)


# set_cell with an unhashable cell id raises TypeError, not InvalidId (see the report).
@pytest.mark.parametrize("cell_id", BAD_CELL_IDS, ids=repr)
def test_set_cell_rejects_a_bad_cell_id(
    store: hutch.Store, heard: list[hutch.Changes], cell_id: Any
) -> None:
    with pytest.raises(hutch.InvalidId):
        store.set_cell("users", "u1", cell_id, "x")
    with pytest.raises(hutch.InvalidId):
        store.set_cell("users", "u2", cell_id, "x")
    assert_nothing_written(store, heard)


def test_a_cell_named_id_is_rejected_with_a_message_saying_why(store: hutch.Store) -> None:
    with pytest.raises(hutch.InvalidId, match="'id' is the row id"):
        store.set_row("users", "u9", {"id": "u9", "email": "z@x.io"})


def test_a_nested_key_named_id_is_an_ordinary_key(store: hutch.Store) -> None:
    store.set_row("users", "u2", {"meta": {"id": 7}})
    store.set_value("v", {"id": 1})
    assert store.get_cell("users", "u2", "meta") == {"id": 7}
    assert store.get_value("v") == {"id": 1}


def test_cell_ids_are_free_form_strings(store: hutch.Store) -> None:
    store.set_row("users", "u2", {"a b/../c": 1, "ID": 2, "é": 3, ".x": 4})
    assert store.get_row("users", "u2") == {"a b/../c": 1, "ID": 2, "é": 3, ".x": 4}


# -- value ids ---------------------------------------------------------------------------------

BAD_VALUE_IDS: list[Any] = ["", "k\x00", 1, None, ("k",), b"k"]


def value_id_calls(value_id: Any) -> dict[str, StoreCall]:
    return {
        "set_value": lambda s: s.set_value(value_id, 1),
        "get_value": lambda s: s.get_value(value_id),
        "has_value": lambda s: s.has_value(value_id),
        "del_value": lambda s: s.del_value(value_id),
    }


@pytest.mark.parametrize("method", list(value_id_calls("k")))
@pytest.mark.parametrize("value_id", BAD_VALUE_IDS, ids=repr)
def test_a_bad_value_id_raises_invalid_id_and_writes_nothing(
    store: hutch.Store, heard: list[hutch.Changes], value_id: Any, method: str
) -> None:
    with pytest.raises(hutch.InvalidId):
        value_id_calls(value_id)[method](store)
    assert_nothing_written(store, heard)


# get_value([]) raises TypeError rather than InvalidId (see the report), so it is left out here.
@pytest.mark.parametrize("method", ["set_value", "has_value", "del_value"])
def test_an_unhashable_value_id_raises_invalid_id(
    store: hutch.Store, heard: list[hutch.Changes], method: str
) -> None:
    with pytest.raises(hutch.InvalidId):
        value_id_calls(["k"])[method](store)
    assert_nothing_written(store, heard)


# -- values ------------------------------------------------------------------------------------


def nested(depth: int, kind: type) -> Any:
    """A value of ``depth`` lists (or dicts) one inside the other, around a 1."""
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind is list else {"a": value}
    return value


BAD_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    2**63,
    -(2**63) - 1,
    10**30,
    "a\x00b",
    "\ud800",
    "ok \udfff",
    {1: "a"},
    {None: "a"},
    {("a",): 1},
    {"a\x00": 1},
    {"\ud800": 1},
    datetime.datetime(2024, 1, 1),
    datetime.date(2024, 1, 1),
    decimal.Decimal("1.5"),
    {1, 2},
    frozenset(),
    object(),
    b"bytes",
    1j,
    [1, float("nan")],
    (1, float("inf")),
    {"a": [1, {"b": 2**64}]},
    [[["a\x00"]]],
    {"a": {"b": datetime.time(1, 2)}},
    nested(hutch.cells.MAX_NESTING + 1, list),
    nested(hutch.cells.MAX_NESTING + 1, dict),
    nested(5000, list),  # deeper than Python's recursion limit: still InvalidValue
]


def test_values_nest_as_deep_as_the_limit(db: hutch.Database) -> None:
    deepest = nested(hutch.cells.MAX_NESTING, dict)
    db.store.set_row("users", "u2", {"deep": deepest})
    db.store.set_value("deep", nested(hutch.cells.MAX_NESTING, list))
    assert db.store.get_row("users", "u2") == {"deep": deepest}
    assert db.store.get_value("deep") == nested(hutch.cells.MAX_NESTING, list)


@pytest.mark.parametrize("scheme", ["file", "jsonl", "sqlite"])
def test_values_as_deep_as_the_limit_last_in_every_durable_backend(
    tmp_path: Path, scheme: str
) -> None:
    url = {"file": str(tmp_path), "jsonl": f"jsonl://{tmp_path}"}.get(
        scheme, f"sqlite:///{tmp_path}/store.db"
    )
    deepest = nested(hutch.cells.MAX_NESTING, dict)
    with hutch.open(url) as db:
        db.store.set_row("users", "u1", {"deep": deepest})
        db.store.set_value("deep", deepest)
    with hutch.open(url) as db:
        assert db.store.get_row("users", "u1") == {"deep": deepest}
        assert db.store.get_value("deep") == deepest


def value_calls(value: Any) -> dict[str, StoreCall]:
    """Every way of writing ``value``, to an existing and to a new row or key."""
    return {
        "set_row": lambda s: s.set_row("users", "u1", {"email": "b@x.io", "bad": value}),
        "set_row_new": lambda s: s.set_row("users", "u2", {"bad": value}),
        "set_partial_row": lambda s: s.set_partial_row("users", "u1", {"age": 3, "bad": value}),
        "set_partial_row_new": lambda s: s.set_partial_row("users", "u2", {"bad": value}),
        "set_cell": lambda s: s.set_cell("users", "u1", "bad", value),
        "set_cell_new": lambda s: s.set_cell("users", "u2", "bad", value),
        "set_value": lambda s: s.set_value("k", value),
        "set_value_new": lambda s: s.set_value("new", value),
    }


@pytest.mark.parametrize("method", list(value_calls(None)))
@pytest.mark.parametrize("value", BAD_VALUES, ids=reprlib.repr)
def test_a_bad_value_raises_invalid_value_and_writes_nothing(
    store: hutch.Store, heard: list[hutch.Changes], value: Any, method: str
) -> None:
    with pytest.raises(hutch.InvalidValue):
        value_calls(value)[method](store)
    assert_nothing_written(store, heard)


@pytest.mark.parametrize("row", [None, [("email", "x")], "email", 1])
def test_a_row_that_is_not_a_dict_raises_invalid_value(
    store: hutch.Store, heard: list[hutch.Changes], row: Any
) -> None:
    with pytest.raises(hutch.InvalidValue):
        store.set_row("users", "u1", row)
    with pytest.raises(hutch.InvalidValue):
        store.set_partial_row("users", "u1", row)
    assert_nothing_written(store, heard)


def test_the_64_bit_limits_are_accepted(store: hutch.Store) -> None:
    store.set_row("users", "u2", {"max": 2**63 - 1, "min": -(2**63)})
    assert store.get_row("users", "u2") == {"max": 2**63 - 1, "min": -(2**63)}


def test_a_bad_value_inside_a_transaction_rolls_the_transaction_back(
    store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    def writes() -> None:
        with store.transaction():
            store.set_value("k", 2)
            store.set_cell("users", "u1", "when", datetime.date(2024, 1, 1))

    with pytest.raises(hutch.InvalidValue):
        writes()
    assert_nothing_written(store, heard)


# -- error classes -----------------------------------------------------------------------------


@pytest.mark.parametrize("error", [hutch.InvalidId, hutch.InvalidValue])
def test_id_and_value_errors_are_value_errors_and_hutch_errors(error: type[Exception]) -> None:
    assert issubclass(error, ValueError)
    assert issubclass(error, hutch.HutchError)


def test_a_bad_id_can_be_caught_as_value_error(store: hutch.Store) -> None:
    with pytest.raises(ValueError, match="invalid table id"):
        store.set_row("../etc", "u1", {"x": 1})


def test_a_bad_value_can_be_caught_as_value_error(store: hutch.Store) -> None:
    with pytest.raises(ValueError, match="NUL"):
        store.set_value("v", "a\x00")


# -- normalisation -----------------------------------------------------------------------------


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


class Metres(float):
    pass


def exact(value: Any) -> Any:
    """``value`` with every node tagged by its exact type, so that comparisons are strict."""
    if isinstance(value, dict):
        return {(type(k), k): exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return (type(value), value)


NORMALISED: list[tuple[Any, Any]] = [
    ((1, 2), [1, 2]),
    ((), []),
    ([(1, (2, 3))], [[1, [2, 3]]]),
    ({"a": (1,)}, {"a": [1]}),
    (Colour.RED, "red"),
    (Size.BIG, 3),
    (Metres(1.5), 1.5),
    ([Colour.RED, Size.BIG, Metres(2.0)], ["red", 3, 2.0]),
    ({Colour.RED: Size.BIG}, {"red": 3}),
    ({"nested": {"deeper": (Colour.RED,)}}, {"nested": {"deeper": ["red"]}}),
]


@pytest.mark.parametrize(("given", "stored"), NORMALISED, ids=repr)
def test_values_are_normalised_to_plain_json_types(
    store: hutch.Store, given: Any, stored: Any
) -> None:
    store.set_row("t", "r1", {"c": given})
    store.set_partial_row("t", "r2", {"c": given})
    store.set_cell("t", "r3", "c", given)
    store.set_value("v", given)
    for row_id in ("r1", "r2", "r3"):
        assert exact(store.get_cell("t", row_id, "c")) == exact(stored)
    assert exact(store.get_value("v")) == exact(stored)


def test_listeners_hear_normalised_values(store: hutch.Store) -> None:
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    store.set_row("t", "r1", {"c": Colour.RED, "n": (Size.BIG,)})
    store.set_value("v", (Metres(1.5),))
    row = heard[0].tables["t"]["r1"]
    assert row is not None
    assert exact(row) == exact({"c": "red", "n": [3]})
    assert exact(heard[1].values["v"]) == exact([1.5])


def test_a_normalised_value_equal_to_the_stored_one_is_no_change(store: hutch.Store) -> None:
    store.set_row("t", "r1", {"c": "red", "n": [3]})
    heard: list[hutch.Changes] = []
    store.add_listener(heard.append)
    store.set_row("t", "r1", {"c": Colour.RED, "n": (Size.BIG,)})
    assert heard == []
