"""The model layer: serialisation, ids and timestamps, repositories, integrity and registration.

Every behaviour runs on the memory backend and on the file backend (with close-and-reopen round
trips where the data persists), through the parametrised ``backend`` fixture.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

import hutch
from hutch.backends import file as file_backend
from hutch.backends import memory as memory_backend
from hutch.ids import check_row_id, new_id
from hutch.plugin_manager import AUTOLOAD_OFF

# -- test models ------------------------------------------------------------------------------


class Status(enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    GONE = "gone"


@attrs.frozen
class Address:
    street: str
    city: str
    postcode: str | None = None


@attrs.frozen(kw_only=True)
class Org(hutch.Model):
    __collection__ = "orgs"
    __unique__ = ("slug",)  # case-sensitive

    name: str
    slug: str


@attrs.frozen(kw_only=True)
class User(hutch.Model):
    __collection__ = "users"
    __indexed__ = ("name", "status")
    __unique__ = (hutch.Unique("email", case_insensitive=True), hutch.Unique("handle"))
    __relations__ = (hutch.Relation("org_id", Org, on_delete="set_null"),)

    name: str
    email: str
    handle: str | None = None
    age: int = 0
    score: float = 0.0
    active: bool = True
    status: Status = Status.ACTIVE
    last_seen: datetime | None = None
    address: Address | None = None
    tags: list[str] = attrs.field(factory=list)
    org_id: str | None = None


@attrs.frozen(kw_only=True)
class Team(hutch.Model):
    __collection__ = "teams"
    __relations__ = (hutch.Relation("org_id", "orgs", on_delete="cascade"),)

    name: str
    org_id: str


@attrs.frozen(kw_only=True)
class Membership(hutch.Model):
    __collection__ = "memberships"
    __relations__ = (
        hutch.Relation("team_id", Team, on_delete="cascade"),
        hutch.Relation("user_id", User, on_delete="restrict"),
    )

    team_id: str
    user_id: str


@attrs.frozen(kw_only=True)
class Document(hutch.Model):
    __collection__ = "documents"
    __relations__ = (hutch.Relation("team_id", Team),)  # restrict, the default

    title: str
    team_id: str


@attrs.frozen(kw_only=True)
class Node(hutch.Model):
    __collection__ = "nodes"
    __relations__ = (hutch.Relation("parent_id", "nodes", on_delete="cascade"),)

    label: str
    parent_id: str | None = None


class LabelRepository(hutch.Repository["Label"]):
    def named(self, name: str) -> Label | None:
        return self.find_one(name=name)


@attrs.frozen(kw_only=True)
class Label(hutch.Model):
    __collection__ = "labels"
    __repository__ = LabelRepository

    name: str


@attrs.frozen(kw_only=True)
class Impostor(hutch.Model):
    __collection__ = "users"  # already User's

    name: str


ALL_MODELS: tuple[type[hutch.Model], ...] = (Org, User, Team, Membership, Document, Node, Label)


class ModelsPlugin:
    """A plugin that registers models through the ``hutch_register_models`` hook."""

    def __init__(self, *models: type[hutch.Model]) -> None:
        self.models = models

    @hutch.hookimpl
    def hutch_register_models(self, register: Callable[[type[hutch.Model]], None]) -> None:
        for model in self.models:
            register(model)


# -- fixtures and helpers ---------------------------------------------------------------------


class Backend:
    """Opens databases of one kind; ``reopen`` closes and opens again where data persists.

    Entry-point plugins are not loaded (models that other installed plugins register would
    claim these tests' collections): each database gets its backend and the given plugins.
    """

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.backend_plugin = memory_backend if kind == "memory" else file_backend
        self.opened: list[hutch.Database] = []

    @property
    def persistent(self) -> bool:
        return self.kind == "file"

    def open(self, *plugins: object) -> hutch.Database:
        url: str | Path = "memory://" if self.kind == "memory" else self.path
        db = hutch.open(url, plugins=(self.backend_plugin, *plugins))
        self.opened.append(db)
        return db

    def reopen(self, db: hutch.Database, *plugins: object) -> hutch.Database:
        """The same data through a fresh database (the open one, on the memory backend)."""
        if not self.persistent:
            return db
        db.close()
        return self.open(*plugins)

    def close_all(self) -> None:
        for db in self.opened:
            db.close()


@pytest.fixture(params=["memory", "file"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    opener = Backend(cast(str, request.param), tmp_path / "data")
    yield opener
    opener.close_all()


@pytest.fixture
def db(backend: Backend) -> hutch.Database:
    return backend.open()


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


PLUS_TWO = timezone(timedelta(hours=2))


def register_all(db: hutch.Database) -> None:
    """Register every test model (in a fixed order), so that every delete policy applies."""
    for model in ALL_MODELS:
        db.repo(model)


def seed_users(db: hutch.Database) -> hutch.Repository[User]:
    users = db.repo(User)
    users.create(
        id="u1",
        name="Ada",
        email="ada@x.io",
        handle="ada",
        age=36,
        score=9.5,
        last_seen=utc(2024, 3, 1, 12),
        tags=["admin", "dev"],
    )
    users.create(
        id="u2", name="Bob", email="bob@x.io", age=25, status=Status.SUSPENDED, tags=["dev"]
    )
    users.create(
        id="u3", name="Cy", email="cy@x.io", handle="cy", age=41, last_seen=utc(2024, 1, 15)
    )
    users.create(
        id="u4",
        name="Dee",
        email="dee@x.io",
        age=25,
        status="gone",
        last_seen=utc(2023, 12, 31, 23),
        tags=["ops"],
    )
    users.create(id="u5", name="Eve", email="eve@x.io", age=30, tags=["dev", "ops"])
    return users


def names(instances: Sequence[User]) -> list[str]:
    return [instance.name for instance in instances]


def build_org(db: hutch.Database) -> dict[str, str]:
    """An org with two teams, memberships, and two users in it; returns the ids by role."""
    register_all(db)
    org = db.repo(Org).create(name="Acme", slug="acme")
    other = db.repo(Org).create(name="Other", slug="other")
    users = db.repo(User)
    ada = users.create(name="Ada", email="ada@x.io", org_id=org.id)
    bob = users.create(name="Bob", email="bob@x.io", org_id=org.id)
    cy = users.create(name="Cy", email="cy@x.io", org_id=other.id)
    teams = db.repo(Team)
    red = teams.create(name="red", org_id=org.id)
    blue = teams.create(name="blue", org_id=org.id)
    elsewhere = teams.create(name="green", org_id=other.id)
    memberships = db.repo(Membership)
    m1 = memberships.create(team_id=red.id, user_id=ada.id)
    m2 = memberships.create(team_id=blue.id, user_id=bob.id)
    m3 = memberships.create(team_id=elsewhere.id, user_id=cy.id)
    return {
        "org": org.id,
        "other": other.id,
        "ada": ada.id,
        "bob": bob.id,
        "cy": cy.id,
        "red": red.id,
        "blue": blue.id,
        "green": elsewhere.id,
        "m1": m1.id,
        "m2": m2.id,
        "m3": m3.id,
    }


def snapshot(db: hutch.Database) -> dict[str, dict[str, dict[str, Any]]]:
    return {table: db.store.get_table(table) for table in db.store.get_table_ids()}


# -- serialisation ----------------------------------------------------------------------------


def test_a_model_is_stored_as_json_and_read_back_the_same(
    backend: Backend, db: hutch.Database
) -> None:
    users = db.repo(User)
    ada = users.create(
        name="Ada",
        email="ada@x.io",
        status=Status.SUSPENDED,
        last_seen=utc(2024, 3, 1, 12, 30, 15),
        address={"street": "1 Main St", "city": "Oslo"},
        tags=["admin", "dev"],
        score=1,
    )
    assert ada.address == Address("1 Main St", "Oslo")
    assert ada.score == 1.0
    assert type(ada.score) is float
    row = db.store.get_row("users", ada.id)
    assert row is not None
    assert "id" not in row
    assert row["status"] == "suspended"
    assert row["last_seen"] == "2024-03-01T12:30:15+00:00"
    assert row["created_at"] == ada.created_at.isoformat()
    assert row["address"] == {"street": "1 Main St", "city": "Oslo", "postcode": None}
    assert row["tags"] == ["admin", "dev"]
    assert row["handle"] is None
    assert row["org_id"] is None

    db = backend.reopen(db)
    again = db.repo(User).get(ada.id)
    assert again == ada
    assert again is not None
    assert again.status is Status.SUSPENDED
    assert again.last_seen is not None
    assert again.last_seen.tzinfo is not None
    assert again.last_seen.utcoffset() == timedelta(0)
    if backend.persistent:
        record = json.loads((backend.path / "users" / f"{ada.id}.json").read_text())
        assert record["last_seen"] == "2024-03-01T12:30:15+00:00"
        assert record["status"] == "suspended"
        assert record["address"]["city"] == "Oslo"


def test_optional_fields_default_to_none_and_round_trip(
    backend: Backend, db: hutch.Database
) -> None:
    users = db.repo(User)
    bare = users.create(name="Bare", email="bare@x.io")
    assert bare.last_seen is None
    assert bare.address is None
    assert bare.handle is None
    assert bare.tags == []
    full = users.create(
        name="Full",
        email="full@x.io",
        handle="full",
        last_seen=utc(2024, 1, 1),
        address=None,
    )
    db = backend.reopen(db)
    users = db.repo(User)
    assert users.get(bare.id) == bare
    assert users.get(full.id) == full


def test_aware_datetimes_in_other_zones_become_utc(backend: Backend, db: hutch.Database) -> None:
    users = db.repo(User)
    ada = users.create(
        name="Ada", email="ada@x.io", last_seen=datetime(2024, 6, 1, 12, tzinfo=PLUS_TWO)
    )
    assert ada.last_seen == utc(2024, 6, 1, 10)
    assert ada.last_seen is not None
    assert ada.last_seen.utcoffset() == timedelta(0)
    row = db.store.get_row("users", ada.id)
    assert row is not None
    assert row["last_seen"] == "2024-06-01T10:00:00+00:00"
    changed = users.update(ada.id, last_seen=datetime(2024, 6, 2, 0, 30, tzinfo=PLUS_TWO))
    assert changed.last_seen == utc(2024, 6, 1, 22, 30)
    db = backend.reopen(db)
    row = db.store.get_row("users", ada.id)
    assert row is not None
    assert row["last_seen"] == "2024-06-01T22:30:00+00:00"


def test_naive_datetimes_are_rejected(db: hutch.Database) -> None:
    users = db.repo(User)
    with pytest.raises(hutch.ValidationError, match="timezone-aware") as caught:
        users.create(name="Ada", email="ada@x.io", last_seen=datetime(2024, 1, 1))
    assert set(caught.value.errors) == {"last_seen"}
    assert users.count() == 0
    ada = users.create(name="Ada", email="ada@x.io")
    with pytest.raises(hutch.ValidationError, match="timezone-aware"):
        users.update(ada.id, last_seen=datetime(2024, 1, 1))
    with pytest.raises(hutch.ValidationError, match="timezone-aware"):
        users.create(name="Imported", email="i@x.io", created_at=datetime(2020, 1, 1))
    assert users.get(ada.id) == ada
    assert users.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "3"),  # text is not an int
        ("age", True),  # a bool is not an int
        ("age", 3.0),  # nor is a float
        ("name", 1),  # an int is not text
        ("name", None),  # a required field is not optional
        ("active", 1),  # an int is not a bool
        ("score", True),  # a bool is not a number
        ("score", "1.5"),
        ("status", "unknown"),  # not a value of the enum
        ("tags", ["ok", 2]),  # the items of a list are checked too
        ("address", {"street": "x"}),  # a nested class misses a field
        ("last_seen", "yesterday"),
    ],
)
def test_structuring_is_strict(db: hutch.Database, field: str, value: Any) -> None:
    users = db.repo(User)
    fields: dict[str, Any] = {"name": "Ada", "email": "ada@x.io", field: value}
    with pytest.raises(hutch.ValidationError) as caught:
        users.create(**fields)
    assert list(caught.value.errors) == [field]
    assert field in str(caught.value)
    assert users.count() == 0


def test_unknown_fields_are_rejected(db: hutch.Database) -> None:
    users = db.repo(User)
    with pytest.raises(hutch.ValidationError, match="nickname") as caught:
        users.create(name="Ada", email="ada@x.io", nickname="A")
    assert caught.value.errors["nickname"] == "unknown field"
    assert users.count() == 0
    ada = users.create(name="Ada", email="ada@x.io")
    with pytest.raises(hutch.ValidationError, match="nickname"):
        users.update(ada.id, nickname="A")
    assert users.get(ada.id) == ada


def test_a_validation_error_lists_every_bad_field(db: hutch.Database) -> None:
    users = db.repo(User)
    with pytest.raises(hutch.ValidationError) as caught:
        users.create(
            name=1,
            age="3",
            active="yes",
            status="nope",
            last_seen=datetime(2024, 1, 1),
            tags=[1],
            address={"street": 2, "city": "Oslo"},
        )
    error = caught.value
    bad = {"name", "email", "age", "active", "status", "last_seen", "tags", "address"}
    assert set(error.errors) == bad
    assert all(isinstance(message, str) and message for message in error.errors.values())
    assert error.errors["email"] == "required field missing"
    for field in bad:
        assert f"{field}:" in str(error)
    assert "User" in str(error)
    assert users.count() == 0


def test_validation_error_is_a_hutch_error_and_a_value_error(db: hutch.Database) -> None:
    assert issubclass(hutch.ValidationError, hutch.HutchError)
    assert issubclass(hutch.ValidationError, ValueError)
    with pytest.raises(ValueError, match="age"):
        db.repo(User).create(name="Ada", email="ada@x.io", age="old")
    with pytest.raises(hutch.HutchError):
        db.repo(User).create(name="Ada", email="ada@x.io", age="old")


# -- ids and timestamps -----------------------------------------------------------------------


def test_new_ids_are_valid_unique_and_sortable_by_time() -> None:
    many = [new_id() for _ in range(5000)]
    assert len(set(many)) == len(many)
    for made in many[:100]:
        assert len(made) == 26
        assert check_row_id("t", made) == made
    in_order = []
    for _ in range(5):
        in_order.append(new_id())
        time.sleep(0.002)  # the next id falls in a later millisecond
    assert in_order == sorted(in_order)


def test_ids_are_generated_unless_given(backend: Backend, db: hutch.Database) -> None:
    users = db.repo(User)
    made = []
    for number in range(3):
        made.append(users.create(name=f"n{number}", email=f"n{number}@x.io"))
        time.sleep(0.002)
    for instance in made:
        assert len(instance.id) == 26
        assert check_row_id("users", instance.id) == instance.id
    assert len({instance.id for instance in made}) == 3
    assert [u.id for u in users.all()] == [u.id for u in made]  # id order is creation order
    given = users.create(id="Given-id.1", name="g", email="g@x.io")
    assert given.id == "Given-id.1"
    db = backend.reopen(db)
    assert db.store.has_row("users", "Given-id.1")
    assert db.repo(User).get("Given-id.1") == given


def test_timestamps_are_set_on_create_and_updated_at_moves(
    backend: Backend, db: hutch.Database
) -> None:
    users = db.repo(User)
    before = datetime.now(UTC)
    ada = users.create(name="Ada", email="ada@x.io")
    after = datetime.now(UTC)
    assert before <= ada.created_at <= after
    assert before <= ada.updated_at <= after
    assert ada.created_at.utcoffset() == timedelta(0)
    time.sleep(0.002)
    changed = users.update(ada.id, age=37)
    assert changed.created_at == ada.created_at
    assert changed.updated_at > ada.updated_at
    assert changed.updated_at >= after
    db = backend.reopen(db)
    stored = db.repo(User).get(ada.id)
    assert stored is not None
    assert stored.created_at == ada.created_at
    assert stored.updated_at == changed.updated_at


def test_given_timestamps_are_kept_on_create_and_update(
    backend: Backend, db: hutch.Database
) -> None:
    users = db.repo(User)
    created, updated = utc(2019, 5, 1, 8), utc(2020, 2, 3, 4, 5, 6, 789)
    imported = users.create(
        id="old-1", name="Old", email="old@x.io", created_at=created, updated_at=updated
    )
    assert imported.created_at == created
    assert imported.updated_at == updated
    row = db.store.get_row("users", "old-1")
    assert row is not None
    assert row["created_at"] == "2019-05-01T08:00:00+00:00"
    assert row["updated_at"] == "2020-02-03T04:05:06.000789+00:00"
    later = datetime(2021, 1, 1, 12, tzinfo=PLUS_TWO)
    changed = users.update("old-1", name="Older", updated_at=later)
    assert changed.updated_at == utc(2021, 1, 1, 10)
    assert changed.created_at == created
    fixed = users.update("old-1", created_at=utc(2018, 1, 1))
    assert fixed.created_at == utc(2018, 1, 1)
    assert fixed.updated_at > changed.updated_at  # not given this time, so it moves to now
    db = backend.reopen(db)
    assert db.repo(User).get("old-1") == fixed


# -- repository: create, get, find --------------------------------------------------------------


def test_get_returns_none_for_a_missing_id(db: hutch.Database) -> None:
    users = seed_users(db)
    assert users.get("nobody") is None
    assert not users.exists("nobody")
    assert users.exists("u1")
    ada = users.get("u1")
    assert ada is not None
    assert ada.name == "Ada"


def test_returned_instances_are_frozen(db: hutch.Database) -> None:
    users = seed_users(db)
    for instance in [users.get("u1"), users.find_one(name="Bob"), *users.all()]:
        assert instance is not None
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            instance.name = "Changed"  # type: ignore[misc]
    created = users.create(name="New", email="new@x.io")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        created.age = 1  # type: ignore[misc]
    assert names(users.find(name="Changed")) == []


def test_find_by_equality(backend: Backend, db: hutch.Database) -> None:
    seed_users(db)
    for round_trip in (False, True):
        if round_trip:
            db = backend.reopen(db)
        users = db.repo(User)
        assert names(users.find(name="Ada")) == ["Ada"]
        assert names(users.find(age=25)) == ["Bob", "Dee"]
        assert names(users.find(age__exact=25)) == ["Bob", "Dee"]
        assert names(users.find(handle=None)) == ["Bob", "Dee", "Eve"]
        assert names(users.find(name="Nobody")) == []
        assert names(users.find(active=True)) == ["Ada", "Bob", "Cy", "Dee", "Eve"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"age__in": [25, 41]}, ["Bob", "Cy", "Dee"]),
        ({"name__in": ["Eve", "Ada", "Zed"]}, ["Ada", "Eve"]),
        ({"name__in": []}, []),
        ({"age__ne": 25}, ["Ada", "Cy", "Eve"]),
        ({"handle__ne": None}, ["Ada", "Cy"]),
        ({"age__gt": 30}, ["Ada", "Cy"]),
        ({"age__gte": 30}, ["Ada", "Cy", "Eve"]),
        ({"age__lt": 30}, ["Bob", "Dee"]),
        ({"age__lte": 30}, ["Bob", "Dee", "Eve"]),
        ({"score__gt": 1}, ["Ada"]),
        ({"name__contains": "e"}, ["Dee", "Eve"]),
        ({"email__contains": "@x.io"}, ["Ada", "Bob", "Cy", "Dee", "Eve"]),
        ({"tags__contains": "dev"}, ["Ada", "Bob", "Eve"]),
        ({"tags__contains": "ops"}, ["Dee", "Eve"]),
        ({"tags__contains": "nobody"}, []),
        ({"handle__contains": "a"}, ["Ada"]),  # a None field contains nothing
        ({"name__startswith": "D"}, ["Dee"]),
        ({"email__startswith": "e"}, ["Eve"]),
        ({"handle__startswith": "c"}, ["Cy"]),
        ({"last_seen__isnull": True}, ["Bob", "Eve"]),
        ({"last_seen__isnull": False}, ["Ada", "Cy", "Dee"]),
        ({"handle__isnull": False}, ["Ada", "Cy"]),
    ],
)
def test_find_with_every_lookup(
    db: hutch.Database, filters: dict[str, Any], expected: list[str]
) -> None:
    users = seed_users(db)
    assert names(users.find(**filters)) == expected
    assert users.count(**filters) == len(expected)


def test_enum_filters_take_a_member_or_its_value(db: hutch.Database) -> None:
    users = seed_users(db)
    active = ["Ada", "Cy", "Eve"]
    assert names(users.find(status=Status.ACTIVE)) == active
    assert names(users.find(status="active")) == active
    assert names(users.find(status__in=[Status.GONE, "suspended"])) == ["Bob", "Dee"]
    assert names(users.find(status__ne="active")) == ["Bob", "Dee"]
    assert names(users.find(status__ne=Status.ACTIVE)) == ["Bob", "Dee"]
    with pytest.raises(hutch.QueryError, match="status"):
        users.find(status="no-such-status")


def test_datetime_comparisons(db: hutch.Database) -> None:
    users = seed_users(db)
    new_year = utc(2024, 1, 1)
    assert names(users.find(last_seen__gt=new_year)) == ["Ada", "Cy"]
    assert names(users.find(last_seen__lt=new_year)) == ["Dee"]
    assert names(users.find(last_seen__gte="2024-01-15T00:00:00+00:00")) == ["Ada", "Cy"]
    # Dee was last seen at 2023-12-31 23:00 UTC, which is 01:00 on new year's day at +02:00.
    dee_elsewhere = datetime(2024, 1, 1, 1, tzinfo=PLUS_TWO)
    assert names(users.find(last_seen=dee_elsewhere)) == ["Dee"]
    assert names(users.find(last_seen__lte=dee_elsewhere)) == ["Dee"]
    assert names(users.find(last_seen__lt=dee_elsewhere)) == []
    assert names(users.find(created_at__lte=datetime.now(UTC))) == names(users.all())
    assert names(users.find(created_at__gt=datetime.now(UTC))) == []
    with pytest.raises(hutch.QueryError):
        users.find(last_seen__gt=datetime(2024, 1, 1))  # naive


def test_combined_filters_must_all_match(db: hutch.Database) -> None:
    users = seed_users(db)
    assert names(users.find(status=Status.ACTIVE, age__gte=35)) == ["Ada", "Cy"]
    assert names(users.find(status="active", tags__contains="dev", last_seen__isnull=True)) == [
        "Eve"
    ]
    assert names(users.find(name="Ada", age=25)) == []
    assert names(users.find(name__in=["Ada", "Bob", "Cy"], age__lt=40, status="active")) == ["Ada"]
    assert users.count(age=25, status="gone") == 1


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("age", ["Bob", "Dee", "Eve", "Ada", "Cy"]),  # ties keep id order
        ("-age", ["Cy", "Ada", "Eve", "Bob", "Dee"]),
        (["age", "-name"], ["Dee", "Bob", "Eve", "Ada", "Cy"]),
        (["-age", "name"], ["Cy", "Ada", "Eve", "Bob", "Dee"]),
        ("name", ["Ada", "Bob", "Cy", "Dee", "Eve"]),
        ("-name", ["Eve", "Dee", "Cy", "Bob", "Ada"]),
        ("last_seen", ["Bob", "Eve", "Dee", "Cy", "Ada"]),  # None first
        ("-last_seen", ["Ada", "Cy", "Dee", "Bob", "Eve"]),
        (["handle", "-age"], ["Eve", "Bob", "Dee", "Ada", "Cy"]),
        ("status", ["Ada", "Cy", "Eve", "Dee", "Bob"]),  # by value: active, gone, suspended
    ],
)
def test_order_by(db: hutch.Database, order_by: str | list[str], expected: list[str]) -> None:
    users = seed_users(db)
    assert names(users.find(order_by=order_by)) == expected


def test_limit_and_offset_apply_after_ordering(db: hutch.Database) -> None:
    users = seed_users(db)
    assert names(users.find(order_by="age", limit=2)) == ["Bob", "Dee"]
    assert names(users.find(order_by="age", offset=1, limit=2)) == ["Dee", "Eve"]
    assert names(users.find(order_by="-age", offset=4)) == ["Dee"]
    assert names(users.find(offset=10)) == []
    assert names(users.find(limit=0)) == []
    assert names(users.find(limit=2)) == ["Ada", "Bob"]  # id order
    assert names(users.find(status="active", order_by="-age", limit=2)) == ["Cy", "Ada"]


def test_find_one_count_exists_and_all(backend: Backend, db: hutch.Database) -> None:
    seed_users(db)
    db = backend.reopen(db)
    users = db.repo(User)
    first = users.find_one(status="active")
    assert first is not None
    assert first.id == "u1"
    assert users.find_one(name="Nobody") is None
    assert users.count() == 5
    assert users.count(status=Status.ACTIVE) == 3
    assert users.count(age__gt=100) == 0
    assert users.exists("u5")
    assert not users.exists("u6")
    assert [u.id for u in users.all()] == ["u1", "u2", "u3", "u4", "u5"]
    assert db.repo(Org).all() == []
    assert db.repo(Org).count() == 0


def test_bad_queries_raise_query_error(db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.QueryError, match="nickname"):
        users.find(nickname="A")
    with pytest.raises(hutch.QueryError, match="regex"):
        users.find(name__regex="A.*")
    with pytest.raises(hutch.QueryError, match="age"):
        users.find(age="old")
    with pytest.raises(hutch.QueryError, match="nickname"):
        users.find(order_by="nickname")
    with pytest.raises(hutch.QueryError):
        users.find(name__startswith=1)
    assert issubclass(hutch.QueryError, ValueError)


# -- repository: update and delete ---------------------------------------------------------------


def test_update_returns_the_new_instance(backend: Backend, db: hutch.Database) -> None:
    users = seed_users(db)
    before = users.get("u2")
    assert before is not None
    after = users.update("u2", age=26, status="active", handle="bob", tags=["dev", "qa"])
    assert after.id == "u2"
    assert (after.age, after.status, after.handle, after.tags) == (
        26,
        Status.ACTIVE,
        "bob",
        ["dev", "qa"],
    )
    assert after.name == before.name
    assert before.age == 25  # the old instance is untouched
    assert users.get("u2") == after
    cleared = users.update("u2", handle=None)
    assert cleared.handle is None
    db = backend.reopen(db)
    assert db.repo(User).get("u2") == cleared


def test_update_a_missing_row_raises_not_found(db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.NotFound, match="nobody"):
        users.update("nobody", age=1)
    assert issubclass(hutch.NotFound, hutch.HutchError)
    assert not users.exists("nobody")


def test_update_cannot_change_the_id(db: hutch.Database) -> None:
    users = seed_users(db)
    # ``update(id, **changes)`` takes the id positionally, so an ``id`` among the changes never
    # gets through: Python refuses the call (the repository's own ValidationError for a changed
    # id cannot be reached; either refusal keeps the id).
    changes: dict[str, Any] = {"id": "u9", "age": 99}
    with pytest.raises((TypeError, hutch.ValidationError)):
        users.update("u1", **changes)
    ada = users.get("u1")
    assert ada is not None
    assert (ada.id, ada.age) == ("u1", 36)
    assert not users.exists("u9")
    assert users.count() == 5


def test_update_validates(db: hutch.Database) -> None:
    users = seed_users(db)
    ada = users.get("u1")
    with pytest.raises(hutch.ValidationError) as caught:
        users.update("u1", age="37", name=None)
    assert set(caught.value.errors) == {"age", "name"}
    assert users.get("u1") == ada


def test_delete(backend: Backend, db: hutch.Database) -> None:
    users = seed_users(db)
    assert users.delete("u2") is True
    assert users.get("u2") is None
    assert users.delete("u2") is False
    assert users.delete("nobody") is False
    assert users.count() == 4
    assert names(users.find(age=25)) == ["Dee"]
    db = backend.reopen(db)
    assert db.repo(User).get("u2") is None
    assert db.repo(User).count() == 4


# -- caching and transactions ----------------------------------------------------------------


def test_get_sees_writes_made_through_the_repository(db: hutch.Database) -> None:
    users = seed_users(db)
    first = users.get("u1")
    assert first is not None
    assert users.get("u1") == first  # cached or not, the same data
    users.update("u1", name="Ada L.")
    again = users.get("u1")
    assert again is not None
    assert again.name == "Ada L."
    assert names(users.find(name="Ada L.")) == ["Ada L."]
    assert names(users.find(name="Ada")) == []
    users.delete("u1")
    assert users.get("u1") is None


def test_get_sees_raw_store_writes(db: hutch.Database) -> None:
    users = seed_users(db)
    assert users.get("u1") is not None  # now cached, if the repository caches
    db.store.set_partial_row("users", "u1", {"name": "Raw", "age": 50})
    raw = users.get("u1")
    assert raw is not None
    assert (raw.name, raw.age) == ("Raw", 50)
    assert names(users.find(name="Raw")) == ["Raw"]
    assert names(users.find(age__gte=50)) == ["Raw"]
    db.store.set_cell("users", "u1", "status", "gone")
    gone = users.get("u1")
    assert gone is not None
    assert gone.status is Status.GONE
    db.store.del_row("users", "u1")
    assert users.get("u1") is None
    assert not users.exists("u1")


def test_reads_in_a_transaction_see_its_own_writes(backend: Backend, db: hutch.Database) -> None:
    users = seed_users(db)
    assert users.get("u1") is not None
    with db.store.transaction():
        made = users.create(id="u6", name="Fay", email="fay@x.io", status="gone")
        assert users.get("u6") == made
        assert users.find(name="Fay") == [made]
        assert names(users.find(status=Status.GONE)) == ["Dee", "Fay"]
        users.update("u1", name="Ada L.")
        ada = users.get("u1")
        assert ada is not None
        assert ada.name == "Ada L."
        assert names(users.find(name="Ada L.")) == ["Ada L."]
        assert users.find(name="Ada") == []
        assert users.count() == 6
    assert users.get("u6") == made
    db = backend.reopen(db)
    users = db.repo(User)
    assert users.get("u6") == made
    assert names(users.find(name="Ada L.")) == ["Ada L."]


def test_a_rolled_back_transaction_leaves_nothing(backend: Backend, db: hutch.Database) -> None:
    users = seed_users(db)
    ada = users.get("u1")
    assert ada is not None
    before = snapshot(db)

    def write_then_fail() -> None:
        with db.store.transaction():
            users.create(id="u6", name="Fay", email="fay@x.io")
            users.update("u1", name="Ada L.", age=99)
            users.delete("u2")
            assert users.get("u6") is not None
            assert names(users.find(name="Ada L.")) == ["Ada L."]
            assert users.get("u2") is None
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError, match="undo"):
        write_then_fail()
    assert users.get("u1") == ada
    assert users.get("u6") is None
    assert users.get("u2") is not None
    assert users.find(name="Fay") == []
    assert users.find(name="Ada L.") == []
    assert names(users.find(name="Ada")) == ["Ada"]
    assert users.count() == 5
    assert snapshot(db) == before
    db = backend.reopen(db)
    assert snapshot(db) == before
    assert db.repo(User).get("u1") == ada


# -- index use -----------------------------------------------------------------------------------


def test_equality_on_an_indexed_field_uses_the_index(
    db: hutch.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = seed_users(db)
    scans: list[str] = []
    get_row_ids = db.store.get_row_ids

    def counting_get_row_ids(table_id: str) -> list[str]:
        scans.append(table_id)
        return get_row_ids(table_id)

    monkeypatch.setattr(db.store, "get_row_ids", counting_get_row_ids)
    assert names(users.find(name="Ada")) == ["Ada"]
    assert names(users.find(status=Status.GONE)) == ["Dee"]
    assert names(users.find(status="active", age__gt=35)) == ["Ada", "Cy"]
    assert names(users.find(name__in=["Bob", "Cy"])) == ["Bob", "Cy"]
    assert names(users.find(email="cy@x.io")) == ["Cy"]  # unique fields are indexed
    assert names(users.find(handle=None)) == ["Bob", "Dee", "Eve"]
    assert names(users.find(org_id=None)) == ["Ada", "Bob", "Cy", "Dee", "Eve"]
    scans.clear()
    assert names(users.find(name="Ada", order_by="-age")) == ["Ada"]
    found = users.find_one(name="Eve")
    assert found is not None
    assert users.count(name="Bob") == 1
    with db.store.transaction():
        users.create(id="u6", name="Fay", email="fay@x.io")
        assert names(users.find(name="Fay")) == ["Fay"]
    assert scans == []

    assert names(users.find(age=25)) == ["Bob", "Dee"]  # not indexed: a scan
    assert scans == ["users"]
    assert names(users.find(name__startswith="A")) == ["Ada"]  # not an equality: a scan
    assert scans == ["users", "users"]


# -- integrity -------------------------------------------------------------------------------------


def test_unique_fields_ignore_case_where_declared(backend: Backend, db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.IntegrityError, match="email"):
        users.create(name="Other", email="ADA@X.io")
    users.create(name="Straße", email="straße@x.io")
    with pytest.raises(hutch.IntegrityError, match="ignoring case"):
        users.create(name="Strasse", email="STRASSE@x.io")  # casefolded, these are the same
    assert users.count() == 6
    db = backend.reopen(db)
    users = db.repo(User)
    with pytest.raises(hutch.IntegrityError, match="email"):
        users.create(name="Other", email="Ada@x.IO")
    assert users.count() == 6


def test_case_sensitive_unique_fields(db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.IntegrityError, match="handle"):
        users.create(name="Ada 2", email="ada2@x.io", handle="ada")
    users.create(name="Ada 3", email="ada3@x.io", handle="Ada")  # another case is another value
    users.create(name="Nobody", email="n1@x.io")
    users.create(name="Nobody", email="n2@x.io")  # None is never taken
    orgs = db.repo(Org)
    orgs.create(name="Acme", slug="acme")
    orgs.create(name="ACME", slug="ACME")
    with pytest.raises(hutch.IntegrityError, match="slug"):
        orgs.create(name="Acme again", slug="acme")
    assert orgs.count() == 2
    assert users.count() == 8


def digits(phone: object) -> str:
    """A key for phone numbers: the digits alone; text without eight of them is refused."""
    found = "".join(c for c in str(phone) if c.isdigit())
    if len(found) < 8:
        raise hutch.ValidationError(f"{phone!r} is not a phone number", {"phone": "too short"})
    return found


@attrs.frozen(kw_only=True)
class Contact(hutch.Model):
    __collection__ = "contacts"
    __unique__ = (hutch.Unique("phone", key=digits),)

    phone: str
    name: str = ""


def test_unique_fields_compared_through_a_key(backend: Backend, db: hutch.Database) -> None:
    contacts = db.repo(Contact)
    ada = contacts.create(phone="+44 20 7946 0018", name="Ada")
    assert db.indexes.slice_row_ids("contacts.phone.key", "442079460018") == [ada.id]
    with pytest.raises(hutch.IntegrityError, match=r"must be unique \(compared by digits\)"):
        contacts.create(phone="(44) 2079-460018")
    with pytest.raises(hutch.ValidationError, match="invalid Contact: phone: too short") as raised:
        contacts.create(phone="12")
    assert raised.value.errors == {"phone": "too short"}
    db.store.set_row("contacts", "old", {"phone": "999", "name": "Before the key"})  # by hand
    db = backend.reopen(db, ModelsPlugin(Contact))
    contacts = db.repo(Contact)
    assert db.indexes.slice_ids("contacts.phone.key") == ["442079460018"]  # "999": no key
    old = contacts.update("old", name="Still readable, still changeable")
    assert old.phone == "999"
    with pytest.raises(hutch.ValidationError, match="too short"):
        contacts.update("old", phone="998")
    assert contacts.count() == 2


@attrs.frozen(kw_only=True)
class Blob(hutch.Model):
    __collection__ = "blobs"

    data: bytes = b""
    label: str = ""


def test_bytes_fields_round_trip_and_bytes_for_a_text_field_are_refused(
    backend: Backend, db: hutch.Database
) -> None:
    blobs = db.repo(Blob)
    blob = blobs.create(data=b"\x00\xff raw", label="x")
    assert isinstance(db.store.get_cell("blobs", blob.id, "data"), str)  # base85 text in a row
    db = backend.reopen(db, ModelsPlugin(Blob))
    assert db.repo(Blob).get(blob.id) == blob
    with pytest.raises(hutch.ValidationError, match="label: expected text") as raised:
        db.repo(Blob).create(label=b"not text")
    assert set(raised.value.errors) == {"label"}  # not stored as its base85 encoding


@attrs.frozen(kw_only=True)
class Meeting(hutch.Model):
    __collection__ = "meetings"
    __unique__ = (hutch.Unique("starts", key=lambda text: text[:13]),)  # one a hour

    starts: datetime


def test_a_key_is_given_the_value_as_a_row_holds_it(backend: Backend, db: hutch.Database) -> None:
    meetings = db.repo(Meeting)
    first = meetings.create(starts=utc(2026, 12, 1, 9, 0))
    with pytest.raises(hutch.IntegrityError, match="starts must be unique"):
        meetings.create(starts=utc(2026, 12, 1, 9, 30))  # "2026-12-01T09" on both paths
    with pytest.raises(hutch.IntegrityError, match="starts must be unique"):
        meetings.create(starts=datetime(2026, 12, 1, 11, 15, tzinfo=PLUS_TWO))  # 09:15 in UTC
    assert meetings.all() == [first]


def test_a_key_that_breaks_is_a_definition_error(db: hutch.Database) -> None:
    def broken(value: object) -> object:
        raise TypeError("a bug in the key")

    @attrs.frozen(kw_only=True)
    class Broken(hutch.Model):
        __collection__ = "broken"
        __unique__ = (hutch.Unique("code", key=broken),)

        code: str

    with pytest.raises(hutch.DefinitionError, match=r"the key broken of .*Broken\.code failed"):
        db.repo(Broken).create(code="x")


def test_contains_on_text_with_something_else_is_a_query_error(db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.QueryError, match="name__contains takes text, not 5"):
        users.find(name__contains=5)


@attrs.frozen(kw_only=True)
class Ticket(hutch.Model):
    __collection__ = "tickets"
    __unique__ = (hutch.Unique("code", case_insensitive=True),)

    code: str | int


def test_a_case_insensitive_field_holding_a_number_is_unique_as_stored(db: hutch.Database) -> None:
    tickets = db.repo(Ticket)
    tickets.create(code=7)
    tickets.create(code="AB")
    with pytest.raises(hutch.IntegrityError, match="code must be unique"):
        tickets.create(code=7)
    with pytest.raises(hutch.IntegrityError, match="ignoring case"):
        tickets.create(code="ab")


def test_a_unique_field_takes_a_key_or_case_insensitive_not_both(backend: Backend) -> None:
    @attrs.frozen(kw_only=True)
    class Both(hutch.Model):
        __collection__ = "both"
        __unique__ = (hutch.Unique("phone", case_insensitive=True, key=digits),)

        phone: str

    @attrs.frozen(kw_only=True)
    class NotCallable(hutch.Model):
        __collection__ = "not_callable"
        __unique__ = (hutch.Unique("phone", key="digits"),)  # type: ignore[arg-type]

        phone: str

    db = backend.open()
    with pytest.raises(hutch.DefinitionError, match="not both"):
        db.repo(Both)
    with pytest.raises(hutch.DefinitionError, match="must be a function"):
        db.repo(NotCallable)


def test_unique_fields_clash_within_one_transaction(backend: Backend, db: hutch.Database) -> None:
    users = db.repo(User)

    def create_both(first: dict[str, Any], second: dict[str, Any]) -> None:
        with db.store.transaction():
            users.create(**first)
            users.create(**second)

    with pytest.raises(hutch.IntegrityError, match="email"):
        create_both({"name": "One", "email": "same@x.io"}, {"name": "Two", "email": "SAME@x.io"})
    with pytest.raises(hutch.IntegrityError, match="handle"):
        create_both(
            {"name": "One", "email": "one@x.io", "handle": "h"},
            {"name": "Two", "email": "two@x.io", "handle": "h"},
        )
    assert users.count() == 0
    assert db.store.get_table("users") == {}
    db = backend.reopen(db)
    assert db.repo(User).count() == 0


def test_updating_a_unique_field(db: hutch.Database) -> None:
    users = seed_users(db)
    assert users.update("u1", email="ADA@x.io", handle="ada").email == "ADA@x.io"  # its own
    assert users.update("u1", name="Ada L.").email == "ADA@x.io"
    with pytest.raises(hutch.IntegrityError, match="email"):
        users.update("u2", email="ada@X.IO")
    with pytest.raises(hutch.IntegrityError, match="handle"):
        users.update("u2", handle="cy")
    bob = users.get("u2")
    assert bob is not None
    assert (bob.email, bob.handle) == ("bob@x.io", None)
    users.delete("u3")
    assert users.update("u2", handle="cy").handle == "cy"  # free again once deleted


def test_creating_an_existing_id_is_an_integrity_error(db: hutch.Database) -> None:
    users = seed_users(db)
    with pytest.raises(hutch.IntegrityError, match="u1"):
        users.create(id="u1", name="Again", email="again@x.io")
    ada = users.get("u1")
    assert ada is not None
    assert ada.name == "Ada"


def test_a_foreign_key_to_a_missing_row_writes_nothing(
    backend: Backend, db: hutch.Database
) -> None:
    register_all(db)
    teams, users = db.repo(Team), db.repo(User)
    with pytest.raises(hutch.IntegrityError, match="orgs"):
        teams.create(name="red", org_id="missing")
    with pytest.raises(hutch.IntegrityError, match="org_id"):
        users.create(name="Ada", email="ada@x.io", org_id="missing")
    assert db.store.get_table_ids() == []
    org = db.repo(Org).create(name="Acme", slug="acme")
    red = teams.create(name="red", org_id=org.id)
    with pytest.raises(hutch.IntegrityError):
        teams.update(red.id, org_id="missing")
    assert teams.get(red.id) == red

    def good_rows_then_a_bad_one() -> None:
        with db.store.transaction():
            db.repo(Org).create(id="o2", name="Two", slug="two")
            teams.create(name="blue", org_id="o2")
            db.repo(Membership).create(team_id="nope", user_id="nope")

    with pytest.raises(hutch.IntegrityError, match="team_id"):
        good_rows_then_a_bad_one()
    assert not db.store.has_row("orgs", "o2")
    assert teams.count() == 1
    db = backend.reopen(db)
    assert db.store.get_table_ids() == ["orgs", "teams"]


def test_a_foreign_key_may_point_at_a_row_made_earlier_in_the_transaction(
    db: hutch.Database,
) -> None:
    register_all(db)
    with db.store.transaction():
        org = db.repo(Org).create(name="Acme", slug="acme")
        team = db.repo(Team).create(name="red", org_id=org.id)
    assert db.repo(Team).get(team.id) == team


def test_delete_cascades_recursively_and_sets_null(backend: Backend, db: hutch.Database) -> None:
    ids = build_org(db)
    users = db.repo(User)
    ada_before = users.get(ids["ada"])  # cached, if the repository caches
    assert ada_before is not None
    time.sleep(0.002)
    assert db.repo(Org).delete(ids["org"]) is True
    assert db.repo(Org).get(ids["org"]) is None
    assert [t.name for t in db.repo(Team).all()] == ["green"]
    assert [m.id for m in db.repo(Membership).all()] == [ids["m3"]]
    ada = users.get(ids["ada"])
    assert ada is not None
    assert ada.org_id is None
    assert ada.updated_at > ada_before.updated_at
    assert ada.created_at == ada_before.created_at
    assert (ada.name, ada.email) == (ada_before.name, ada_before.email)
    assert sorted(names(users.find(org_id__isnull=True))) == ["Ada", "Bob"]
    cy = users.get(ids["cy"])
    assert cy is not None
    assert cy.org_id == ids["other"]
    db = backend.reopen(db)
    register_all(db)
    assert db.repo(Team).count() == 1
    assert db.repo(Membership).count() == 1
    stored = db.repo(User).get(ids["ada"])
    assert stored == ada
    row = db.store.get_row("users", ids["ada"])
    assert row is not None
    assert row["org_id"] is None


def test_restrict_refuses_the_delete(db: hutch.Database) -> None:
    ids = build_org(db)
    before = snapshot(db)
    with pytest.raises(hutch.IntegrityError, match="restrict"):
        db.repo(User).delete(ids["ada"])
    assert snapshot(db) == before
    assert db.repo(User).get(ids["ada"]) is not None
    db.repo(Membership).delete(ids["m1"])
    assert db.repo(User).delete(ids["ada"]) is True


def test_restrict_deep_in_a_cascade_deletes_nothing_at_all(
    backend: Backend, db: hutch.Database
) -> None:
    ids = build_org(db)
    db.repo(Document).create(title="plan", team_id=ids["blue"])
    users = db.repo(User)
    ada = users.get(ids["ada"])
    before = snapshot(db)
    with pytest.raises(hutch.IntegrityError, match="documents"):
        db.repo(Org).delete(ids["org"])
    assert snapshot(db) == before
    assert users.get(ids["ada"]) == ada  # set_null rolled back too, cache included
    assert db.repo(Team).count() == 3
    assert db.repo(Membership).count() == 3
    db = backend.reopen(db)
    assert snapshot(db) == before


def test_a_self_referencing_cascade_chain_and_cycles_terminate(db: hutch.Database) -> None:
    nodes = db.repo(Node)
    root = nodes.create(label="root")
    parent = root
    for depth in range(1, 6):
        parent = nodes.create(label=f"depth {depth}", parent_id=parent.id)
    other = nodes.create(label="other")
    assert nodes.delete(root.id) is True
    assert [n.label for n in nodes.all()] == ["other"]

    a = nodes.create(label="a")
    b = nodes.create(label="b", parent_id=a.id)
    c = nodes.create(label="c", parent_id=b.id)
    nodes.update(a.id, parent_id=c.id)  # a -> c -> b -> a
    assert nodes.delete(b.id) is True
    assert [n.label for n in nodes.all()] == ["other"]

    loop = nodes.create(label="loop")
    nodes.update(loop.id, parent_id=loop.id)  # a row that is its own parent
    assert nodes.delete(loop.id) is True
    assert nodes.all() == [other]


# -- registration ----------------------------------------------------------------------------------


def test_a_plugin_registers_models_at_open(backend: Backend) -> None:
    db = backend.open(ModelsPlugin(*ALL_MODELS))
    assert db.models.models() == [Document, Label, Membership, Node, Org, Team, User]
    assert set(db.indexes.index_ids()) >= {
        "users.name",
        "users.status",
        "users.email",
        "users.email.casefold",
        "users.handle",
        "users.org_id",
        "orgs.slug",
        "teams.org_id",
        "memberships.team_id",
        "memberships.user_id",
        "documents.team_id",
        "nodes.parent_id",
    }
    assert set(db.relationships.relationship_ids()) == {
        "users.org_id",
        "teams.org_id",
        "memberships.team_id",
        "memberships.user_id",
        "documents.team_id",
        "nodes.parent_id",
    }
    definition = db.relationships.definition("memberships.user_id")
    assert (definition.local, definition.remote, definition.on) == (
        "memberships",
        "users",
        "user_id",
    )


def test_indexes_of_registered_models_cover_the_rows_on_disk(backend: Backend) -> None:
    db = backend.open()
    seed_users(db)
    db = backend.reopen(db, ModelsPlugin(User))
    assert db.indexes.slice_row_ids("users.name", "Ada") == ["u1"]
    assert db.indexes.slice_row_ids("users.status", "active") == ["u1", "u3", "u5"]
    assert db.indexes.slice_row_ids("users.email.casefold", "ada@x.io") == ["u1"]
    with pytest.raises(hutch.IntegrityError):
        db.repo(User).create(name="Ada", email="ADA@x.io")


def test_delete_policies_of_plugin_models_apply_through_another_repository(
    backend: Backend,
) -> None:
    db = backend.open(ModelsPlugin(Org, Team, User, Membership))
    orgs, users = db.repo(Org), db.repo(User)
    org = orgs.create(name="Acme", slug="acme")
    ada = users.create(name="Ada", email="ada@x.io")
    # Rows of Team and Membership, written without ever touching their repositories.
    db.store.set_row("teams", "t1", {"name": "red", "org_id": org.id})
    db.store.set_row("memberships", "m1", {"team_id": "t1", "user_id": ada.id})
    with pytest.raises(hutch.IntegrityError, match="restrict"):
        users.delete(ada.id)
    assert users.exists(ada.id)
    assert orgs.delete(org.id) is True
    assert not db.store.has_row("teams", "t1")
    assert not db.store.has_row("memberships", "m1")
    assert users.delete(ada.id) is True


def test_two_models_cannot_claim_one_collection(backend: Backend) -> None:
    db = backend.open()
    db.repo(User)
    with pytest.raises(hutch.DefinitionError, match="users"):
        db.repo(Impostor)
    assert db.models.models() == [User]
    db.close()
    with pytest.raises(hutch.DefinitionError, match="Impostor"):
        backend.open(ModelsPlugin(User, Impostor))
    again = backend.open(ModelsPlugin(User))  # a failed open lets go of the folder
    assert again.models.models() == [User]


def test_a_model_may_name_its_repository_class(backend: Backend, db: hutch.Database) -> None:
    labels = db.repo(Label)
    assert isinstance(labels, LabelRepository)
    assert db.repo(Label) is labels
    labels.create(name="urgent")
    db = backend.reopen(db)
    again = db.repo(Label)
    assert isinstance(again, LabelRepository)
    found = again.named("urgent")
    assert found is not None
    assert found.name == "urgent"
    assert type(db.repo(User)) is hutch.Repository


def test_bad_declarations_raise_definition_error(backend: Backend) -> None:
    @attrs.frozen(kw_only=True)
    class UnknownIndexed(hutch.Model):
        __collection__ = "bad_indexed"
        __indexed__ = ("nickname",)
        name: str

    @attrs.frozen(kw_only=True)
    class UnknownUnique(hutch.Model):
        __collection__ = "bad_unique"
        __unique__ = ("nickname",)
        name: str

    @attrs.frozen(kw_only=True)
    class UnknownRelation(hutch.Model):
        __collection__ = "bad_relation"
        __relations__ = (hutch.Relation("org", "orgs"),)
        org_id: str

    @attrs.frozen(kw_only=True)
    class SetNullRequired(hutch.Model):
        __collection__ = "bad_set_null"
        __relations__ = (hutch.Relation("org_id", "orgs", on_delete="set_null"),)
        org_id: str

    @attrs.frozen(kw_only=True)
    class BadPolicy(hutch.Model):
        __collection__ = "bad_policy"
        __relations__ = (hutch.Relation("org_id", "orgs", on_delete=cast(Any, "explode")),)
        org_id: str

    @attrs.frozen(kw_only=True)
    class BadCollection(hutch.Model):
        __collection__ = "bad-collection"

    @attrs.frozen(kw_only=True)
    class NoCollection(hutch.Model):
        pass

    @attrs.frozen
    class NotAModel:
        name: str

    class NotEvenAttrs:
        pass

    db = backend.open()
    cases: list[tuple[object, str]] = [
        (UnknownIndexed, "nickname"),
        (UnknownUnique, "nickname"),
        (UnknownRelation, "org"),
        (SetNullRequired, "None"),
        (BadPolicy, "explode"),
        (BadCollection, "bad-collection"),
        (NoCollection, "__collection__"),
        (NotAModel, "not a model"),
        (NotEvenAttrs, "not a model"),
    ]
    for bad, words in cases:
        with pytest.raises(hutch.DefinitionError, match=words):
            db.repo(cast("type[hutch.Model]", bad))
    assert db.models.models() == []
    assert db.indexes.index_ids() == []
    db.close()
    with pytest.raises(hutch.DefinitionError, match="nickname"):
        backend.open(ModelsPlugin(User, UnknownIndexed))


def test_nested_instances_are_accepted_on_create_and_update(db: hutch.Database) -> None:
    users = db.repo(User)
    ada = users.create(name="Ada", email="ada@x.io", address=Address(street="Main", city="Oslo"))
    moved = users.update(ada.id, name="Ada L.")
    assert moved.address == ada.address
    assert db.repo(User).get(ada.id) == moved


def test_an_instance_holding_a_list_is_never_shared(db: hutch.Database) -> None:
    users = db.repo(User)
    ada = users.create(name="Ada", email="ada@x.io", tags=["a"])
    first = users.get(ada.id)
    assert first is not None
    first.tags.append("sneaky")
    again = users.get(ada.id)
    assert again is not None
    assert again.tags == ["a"]


@attrs.frozen(kw_only=True)
class Club(hutch.Model):
    __collection__ = "clubs"


@attrs.frozen(kw_only=True)
class Squad(hutch.Model):
    __collection__ = "squads"
    __relations__ = (hutch.Relation("club_id", Club, on_delete="cascade"),)

    club_id: str


@attrs.frozen(kw_only=True)
class Player(hutch.Model):
    __collection__ = "players"
    __relations__ = (
        hutch.Relation("club_id", Club, on_delete="cascade"),
        hutch.Relation("squad_id", Squad, on_delete="restrict"),
    )

    club_id: str
    squad_id: str


@pytest.mark.parametrize("order", [(Club, Squad, Player), (Club, Player, Squad)])
def test_a_restrict_inside_one_cascade_does_not_depend_on_registration_order(
    backend: Backend, order: tuple[type[hutch.Model], ...]
) -> None:
    db = backend.open(ModelsPlugin(*order))
    club = db.repo(Club).create()
    squad = db.repo(Squad).create(club_id=club.id)
    db.repo(Player).create(club_id=club.id, squad_id=squad.id)
    assert db.repo(Club).delete(club.id)  # the player goes too, so the restrict holds
    assert db.repo(Player).count() == db.repo(Squad).count() == 0


def test_a_subclass_without_its_own_decorator_is_refused(db: hutch.Database) -> None:
    class Loose(Org):  # no @attrs.frozen: its fields would be ignored
        extra: str

    with pytest.raises(hutch.DefinitionError, match=r"@attrs\.frozen"):
        db.repo(Loose)


def test_update_refuses_a_new_id(db: hutch.Database) -> None:
    orgs = db.repo(Org)
    acme = orgs.create(name="Acme", slug="acme")
    with pytest.raises(hutch.ValidationError, match="cannot change"):
        orgs.update(acme.id, id="other")
    assert orgs.update(acme.id, id=acme.id, name="Acme Inc").name == "Acme Inc"


class Colour(enum.StrEnum):
    RED = "RED"
    BLUE = "BLUE"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    __collection__ = "paints"
    __indexed__ = ("colour", "size")

    colour: Colour = Colour.RED
    size: Size = Size.SMALL


def test_str_and_int_enums_are_enums_too(backend: Backend) -> None:
    db = backend.open(ModelsPlugin(Paint))
    paints = db.repo(Paint)
    tin = paints.create(colour="BLUE", size=2)
    db = backend.reopen(db, ModelsPlugin(Paint))
    paints = db.repo(Paint)
    again = paints.get(tin.id)
    assert again is not None
    assert type(again.colour) is Colour
    assert type(again.size) is Size
    assert paints.find(colour=Colour.BLUE) == paints.find(colour="BLUE") == [again]
    assert paints.find(size=Size.LARGE) == [again]
    with pytest.raises(hutch.ValidationError, match="is not a valid Colour"):
        paints.create(colour="GREEN")


def test_repo_checks_and_types_a_named_repository_class(db: hutch.Database) -> None:
    labels = db.repo(Label, LabelRepository)
    labels.create(name="urgent")
    assert labels.named("urgent") is not None
    with pytest.raises(hutch.DefinitionError, match="not a LabelRepository"):
        db.repo(Org, LabelRepository)


def _pets() -> tuple[type[hutch.Model], ...]:
    return (Owner, Pet)


@attrs.frozen(kw_only=True)
class Owner(hutch.Model):
    __collection__ = "owners"
    __family__ = _pets  # a function, as the family is defined after its first member

    name: str


@attrs.frozen(kw_only=True)
class Pet(hutch.Model):
    __collection__ = "pets"
    __relations__ = (hutch.Relation("owner_id", Owner, on_delete="restrict"),)
    __family__ = _pets

    owner_id: str


@attrs.frozen(kw_only=True)
class Toy(hutch.Model):
    __collection__ = "toys"
    __relations__ = (hutch.Relation("pet_id", Pet, on_delete="cascade"),)
    __family__ = (Pet,)  # a tuple: a Toy brings Pet, which brings its own family

    pet_id: str


def test_a_model_brings_its_family_so_that_their_delete_policies_hold(
    db: hutch.Database,
) -> None:
    db.store.set_row("owners", "ada", {"name": "Ada"})
    db.store.set_row("pets", "rex", {"owner_id": "ada"})
    with pytest.raises(hutch.IntegrityError, match="on_delete='restrict'"):
        db.repo(Owner).delete("ada")  # Pet, never used, came with Owner
    assert [model.__collection__ for model in db.models.models()] == ["owners", "pets"]
    db.repo(Toy)
    assert [model.__collection__ for model in db.models.models()] == ["owners", "pets", "toys"]


@pytest.mark.parametrize("family", [Owner, (Owner, "pets"), lambda: 5, lambda: (Status,)])
def test_a_family_that_is_not_models_is_a_definition_error(
    db: hutch.Database, family: object
) -> None:
    @attrs.frozen(kw_only=True)
    class Stray(hutch.Model):
        __collection__ = "strays"
        __family__ = family

    with pytest.raises(hutch.DefinitionError, match=r"Stray\.__family__"):
        db.repo(Stray)
    assert db.models.models() == []
