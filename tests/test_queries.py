"""Wrong calls a user can make are HutchErrors that say what to do, and queries stay cheap."""

from __future__ import annotations

import enum
import types
from typing import Any

import attrs
import pytest

import hutch
import hutch.backends.memory
from hutch.models import spec_of
from hutch.queries import plan


class Level(enum.Enum):
    LOW = "a-low"
    HIGH = "b-high"


@attrs.frozen
class Place:
    city: str


@attrs.frozen(kw_only=True)
class Item(hutch.Model):
    __collection__ = "items"
    __indexed__ = ("level", "name")

    name: str
    code: str | int = ""
    count: int = 0
    level: Level = Level.LOW
    place: Place | None = None
    tags: list[str] = attrs.field(factory=list)
    extra: dict[str, int] = attrs.field(factory=dict)


@pytest.fixture
def items(db: hutch.Database) -> hutch.Repository[Item]:
    repo = db.repo(Item)
    repo.create(id="i1", name="ant", code="x1", count=3, tags=["red"], place=Place("Oslo"))
    repo.create(id="i2", name="bee", code=7, count=1, level=Level.HIGH, place=Place("Rome"))
    repo.create(id="i3", name="cat", count=2, level=Level.HIGH)
    return repo


def ids(found: list[Item]) -> list[str]:
    return [item.id for item in found]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"name__contains": 5}, "name__contains takes text, not 5"),
        ({"count__contains": 5}, "applies to text and list fields, not to a field of type int"),
        ({"tags__contains": 5}, "tags__contains: 5 does not fit the field"),
        ({"place__startswith": "O"}, "applies to text fields"),
        ({"limit": "1"}, "limit takes a whole number of rows, 0 or more, not '1'"),
        ({"limit": -1}, "limit takes a whole number of rows"),
        ({"limit": True}, "limit takes a whole number of rows"),
        ({"offset": "1"}, "offset takes a whole number of rows"),
        ({"offset": -2}, "offset takes a whole number of rows"),
        ({"order_by": 5}, "order_by takes a field name or a list of them"),
        ({"order_by": ["name", 5]}, "order_by takes a field name or a list of them"),
        ({"order_by": "place"}, "order_by='place': a field of type .*Place.* has no order"),
        ({"order_by": "-extra"}, "has no order"),
        ({"order_by": "code"}, "has no order"),  # text or a number: they do not compare
        ({"place__gt": {"city": "A"}}, "place__gt: a field of type .*Place.* has no order"),
        ({"seen": 1}, "Item has no field 'seen'"),
        ({"name__like": "a"}, "unknown lookup 'like'"),
        ({"place__isnull": "false"}, "place__isnull takes True or False, not 'false'"),
        ({"place__isnull": 0}, "takes True or False"),
        ({"name__in": "ant"}, r"name__in takes a list of values, such as .*not 'ant'"),
        ({"name__in": {"ant": 1}}, "name__in takes a list of values"),
        ({"name__in": 5}, "name__in takes a list of values"),
        ({"name__in": [["ant"]]}, "name__in: \\['ant'\\] does not fit the field"),
        ({"level": "c-none"}, "level: 'c-none' does not fit the field"),
    ],
)
def test_a_wrong_find_is_a_query_error_saying_what_it_takes(
    items: hutch.Repository[Item], call: dict[str, Any], message: str
) -> None:
    with pytest.raises(hutch.QueryError, match=message):
        items.find(**call)
    if set(call) & {"limit", "offset", "order_by"}:
        return
    for other in (items.count, items.find_one):
        with pytest.raises(hutch.QueryError, match=message):
            other(**call)


@pytest.mark.parametrize("wrong", [["i1"], {"i1": 1}, 5, None, b"i1"])
def test_a_wrong_id_is_an_invalid_id_in_every_call(
    items: hutch.Repository[Item], wrong: Any
) -> None:
    for call in (items.get, items.exists, items.delete, lambda x: items.update(x, name="z")):
        with pytest.raises(hutch.InvalidId, match="invalid row id"):
            call(wrong)


def test_the_lookups_work_on_what_they_are_for(items: hutch.Repository[Item]) -> None:
    assert ids(items.find(place__isnull=True)) == ["i3"]
    assert ids(items.find(place__isnull=False)) == ["i1", "i2"]
    assert ids(items.find(code__contains="x")) == ["i1"]  # text, in a field that may hold text
    assert ids(items.find(tags__contains="red")) == ["i1"]
    assert ids(items.find(level__gt="a-low")) == ["i2", "i3"]  # enums compare by value
    assert ids(items.find(level__lte=Level.LOW)) == ["i1"]
    assert ids(items.find(order_by=["-level", "-count"])) == ["i3", "i2", "i1"]
    assert ids(items.find(name__in=("cat", "ant"))) == ["i1", "i3"]
    assert ids(items.find(order_by="name", limit=0)) == []
    assert ids(items.find(order_by="name", offset=5)) == []


def test_an_in_filter_given_as_a_generator_is_read_once(items: hutch.Repository[Item]) -> None:
    """Both the index lookup and the test see every value (level and name are indexed)."""
    assert ids(items.find(level__in=(v for v in ["b-high"]))) == ["i2", "i3"]
    assert ids(items.find(name__in=iter(["bee"]), count__in=(n for n in [1, 2]))) == ["i2"]


class _Counted:
    """A field value that counts how often it is compared."""

    compared = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        _Counted.compared += 1
        return self.text == other

    def __hash__(self) -> int:
        return hash(self.text)


def test_an_in_filter_of_many_values_costs_one_lookup_per_row() -> None:
    """40,000 values: a set, not a list scanned for every row."""
    query = plan(spec_of(Item), {"name__in": [f"n{k}" for k in range(40_000)]})
    rows = [types.SimpleNamespace(name=_Counted(f"n{k * 7}")) for k in range(100)]
    _Counted.compared = 0
    assert sum(query.matches(row) for row in rows) == 100
    assert _Counted.compared <= 100


def test_a_value_that_is_not_a_plugin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    with pytest.raises(hutch.ConfigError, match=r"plugins takes a list.*plugins=\['platform'\]"):
        hutch.open("memory://", plugins="platform")
    for wrong in (b"platform", 5, None, object()):
        with pytest.raises(hutch.ConfigError, match="is not a hutch plugin"):
            hutch.open("memory://", plugins=[hutch.backends.memory, wrong])


def test_a_plugin_is_named_by_its_installed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    with hutch.open("memory://", plugins=[hutch.backends.memory, "platform"]) as db:
        assert "users" in {model.__collection__ for model in db.models.models()}
    with pytest.raises(hutch.ConfigError, match="no installed hutch plugin is named 'Platform'"):
        hutch.open("memory://", plugins=[hutch.backends.memory, "Platform"])


def test_a_plugin_whose_hooks_hutch_would_never_call_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")

    class Unmarked:
        def hutch_register_models(self, register: Any) -> None: ...

    class Misspelt:
        @hutch.hookimpl
        def hutch_register_modles(self, register: Any) -> None: ...

    class WrongArguments:
        @hutch.hookimpl
        def hutch_register_models(self, regster: Any) -> None: ...

    with pytest.raises(hutch.PluginError, match=r"none is marked @hutch\.hookimpl"):
        hutch.open("memory://", plugins=[hutch.backends.memory, Unmarked()])
    with pytest.raises(hutch.PluginError, match="unknown hook 'hutch_register_modles'"):
        hutch.open("memory://", plugins=[hutch.backends.memory, Misspelt()])
    with pytest.raises(hutch.PluginError, match="regster"):
        hutch.open("memory://", plugins=[hutch.backends.memory, WrongArguments()])


@pytest.mark.parametrize("wrong", [["x"], 5, None, "Item", Place])
def test_a_repository_of_something_that_is_not_a_model_is_refused(
    db: hutch.Database, wrong: Any
) -> None:
    with pytest.raises(hutch.DefinitionError, match="is not a model"):
        db.repo(wrong)


def test_listener_and_index_calls_with_wrong_arguments(db: hutch.Database) -> None:
    with pytest.raises(hutch.DefinitionError, match="add_listener takes a function"):
        db.store.add_listener("print")  # type: ignore[arg-type]
    db.store.remove_listener(["x"])  # type: ignore[arg-type]  # an unknown id: nothing to do
    with pytest.raises(hutch.DefinitionError, match=r"no index \['x'\]"):
        db.indexes.slice_row_ids(["x"], "a")  # type: ignore[arg-type]
    assert ["x"] not in db.indexes
    db.indexes.delete(["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize("wrong", ["sqlite:///m.db", 5, None])
def test_mirrors_take_a_list_of_urls(wrong: Any) -> None:
    with pytest.raises(hutch.ConfigError, match="mirrors takes a list of URLs"):
        hutch.open("memory://", mirrors=wrong)
