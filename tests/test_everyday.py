"""The everyday calls: JSON for API responses, bulk creation, counting by a field, paging,
and signing up with a password in one call.

Each behaviour runs on the memory, file and SQLite backends where storage matters (reopening
to read what the backend kept).
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

import hutch
import hutch.backends.file
import hutch.backends.memory
import hutch.backends.sqlite
import hutch.plugins.auth
import hutch.plugins.platform
from hutch.plugins.auth import AuthAdapter
from hutch.plugins.platform import (
    File,
    Membership,
    Organisation,
    Project,
    Resource,
    Team,
    User,
    UserRole,
)
from hutch.plugins.platform.email_review import USERS_REVIEWED
from hutch.plugins.platform.enums import StorageTier
from hutch.serialise import from_row
from hutch.slices import SliceIndex
from hutch.store import Store

BACKENDS = ["memory", "file", "sqlite"]
PLUGINS: list[object] = [hutch.backends.memory, hutch.backends.file, hutch.backends.sqlite]

# -- models -------------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Mood(enum.StrEnum):
    CALM = "calm"
    LOUD = "loud"


@attrs.frozen
class Point:
    x: int
    y: int
    note: str | None = attrs.field(default=None, repr=False)  # a secret, nested


@attrs.frozen(kw_only=True)
class Everything(hutch.Model):
    """A field of every kind a model may hold."""

    __collection__ = "everything"

    text: str
    number: int
    ratio: float
    flag: bool
    when: datetime
    colour: Colour
    size: Size
    mood: Mood
    blob: bytes
    point: Point
    points: list[Point]
    tags: list[str]
    pair: tuple[int, int]
    labels: frozenset[str]
    scores: dict[str, float]
    maybe_when: datetime | None = None
    note: str | None = None
    token: str | None = attrs.field(default=None, repr=False)  # a secret


def everything(**changes: Any) -> Everything:
    fields: dict[str, Any] = {
        "text": "héllo ✓",
        "number": -(2**40),
        "ratio": 0.25,
        "flag": True,
        "when": datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
        "colour": Colour.GREEN,
        "size": Size.LARGE,
        "mood": Mood.LOUD,
        "blob": bytes(range(256)),
        "point": Point(1, 2),
        "points": [Point(3, 4), Point(5, 6)],
        "tags": ["a", "b"],
        "pair": (7, 8),
        "labels": frozenset({"x", "y"}),
        "scores": {"maths": 9.5},
        "maybe_when": datetime(2025, 1, 1, tzinfo=UTC),
        "note": None,
    }
    fields.update(changes)
    return Everything(**fields)


class Status(enum.Enum):
    OPEN = "open"
    DONE = "done"


@attrs.frozen(kw_only=True)
class Org(hutch.Model):
    __collection__ = "orgs"

    name: str


@attrs.frozen(kw_only=True)
class Task(hutch.Model):
    __collection__ = "tasks"
    __indexed__ = ("status", "priority")
    __unique__ = (hutch.Unique("slug", case_insensitive=True), "ref")
    __relations__ = (
        hutch.Relation("org_id", Org, on_delete="cascade"),
        hutch.Relation("parent_id", "tasks", on_delete="cascade"),
    )

    title: str
    slug: str | None = None
    ref: int | None = None
    status: Status | None = Status.OPEN
    priority: int = 0
    done_at: datetime | None = None
    org_id: str | None = None
    parent_id: str | None = None
    tags: list[str] = attrs.field(factory=list)
    secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class Tagged(hutch.Model):
    __collection__ = "tagged"
    __indexed__ = ("labels", "tags", "point")  # a slice per item of a list; none for an object

    labels: frozenset[str] = frozenset()
    tags: list[str] = attrs.field(factory=list)
    point: Point | None = None


class ShoutRepository(hutch.Repository["Shout"]):
    """A repository with a rule of its own, checked in ``create``."""

    def create(self, **fields: Any) -> Shout:
        with self.db.store.transaction():
            shout = super().create(**fields)
            if not shout.text.isupper():
                raise hutch.ValidationError(
                    "invalid Shout: text: must be upper case", {"text": "must be upper case"}
                )
        return shout


@attrs.frozen(kw_only=True)
class Shout(hutch.Model):
    __collection__ = "shouts"
    __repository__ = ShoutRepository

    text: str


# -- fixtures ------------------------------------------------------------------------------------


class Env:
    """A database on one backend that a test can close and open again."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.plugins = PLUGINS
        self.url = {
            "memory": "memory://",
            "file": f"file://{root}",
            "sqlite": f"sqlite:///{root}.db",
        }[backend]
        self.db = self.open()

    def open(self) -> hutch.Database:
        return hutch.open(self.url, plugins=self.plugins)

    def reopen(self) -> hutch.Database:
        """Close and open again, so what follows reads what the backend kept."""
        if self.backend != "memory":
            self.db.close()
            self.db = self.open()
        return self.db

    def with_auth(self) -> hutch.Database:
        """Open again with the auth plugin too."""
        self.db.close()
        self.plugins = [*PLUGINS, hutch.plugins.auth]
        self.db = self.open()
        return self.db


@pytest.fixture(autouse=True)
def _only_the_plugins_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    opened = Env(request.param, tmp_path / "data")
    yield opened
    opened.db.close()


@pytest.fixture
def db() -> Iterator[hutch.Database]:
    with hutch.open("memory://", plugins=PLUGINS) as database:
        yield database


def counting(calls: list[int], function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, counting its calls in ``calls``."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return function(*args, **kwargs)

    return counted


# -- to_json and from_json -------------------------------------------------------------------------


def test_to_json_is_what_a_response_sends() -> None:
    instance = everything(token="tok-123456789")
    data = hutch.to_json(instance)
    assert json.loads(json.dumps(data)) == data  # JSON-ready: nothing the json module refuses
    assert data["id"] == instance.id
    assert data["when"] == "2024-05-01T10:30:15.123456+00:00"  # ISO-8601 text, in UTC
    assert data["created_at"] == instance.created_at.isoformat()
    assert (data["colour"], data["size"], data["mood"]) == ("green", 2, "loud")
    assert data["point"] == {"x": 1, "y": 2}
    assert data["points"] == [{"x": 3, "y": 4}, {"x": 5, "y": 6}]
    assert data["pair"] == [7, 8]
    assert sorted(data["labels"]) == ["x", "y"]
    assert data["scores"] == {"maths": 9.5}
    assert data["note"] is None
    assert isinstance(data["blob"], str)


@pytest.mark.parametrize("through_text", [False, True], ids=["dict", "json text"])
def test_every_field_kind_round_trips(through_text: bool) -> None:
    instance = everything()
    data = hutch.to_json(instance)
    if through_text:
        data = json.loads(json.dumps(data))
    assert hutch.from_json(Everything, data) == instance


def test_secret_fields_are_left_out_unless_asked_for() -> None:
    instance = everything(token="tok-123456789", point=Point(1, 2, note="nested secret"))
    data = hutch.to_json(instance)
    assert "token" not in data
    assert "note" not in data["point"]  # a nested class's secrets too
    assert "tok-123456789" not in json.dumps(data)
    assert hutch.from_json(Everything, data) == attrs.evolve(
        instance, token=None, point=Point(1, 2)
    )
    full = hutch.to_json(instance, include_secrets=True)
    assert full["token"] == "tok-123456789"
    assert full["point"]["note"] == "nested secret"
    assert hutch.from_json(Everything, full) == instance


def test_to_json_of_a_platform_user_leaves_out_the_password_hash() -> None:
    user = User(email="ada@example.org", password_hash="$argon2id$v=19$secret")
    data = hutch.to_json(user)
    assert "password_hash" not in data
    assert data["role"] == "CUSTOMER"


def test_to_json_makes_new_containers() -> None:
    instance = everything()
    data = hutch.to_json(instance)
    data["tags"].append("c")
    data["scores"]["x"] = 1.0
    assert instance.tags == ["a", "b"]
    assert instance.scores == {"maths": 9.5}


def test_from_json_names_every_bad_field() -> None:
    data = hutch.to_json(everything())
    data.update(number="3", colour="blue", when="yesterday", extra=1)
    with pytest.raises(hutch.ValidationError) as raised:
        hutch.from_json(Everything, data)
    assert set(raised.value.errors) == {"number", "colour", "when", "extra"}
    assert raised.value.errors["extra"] == "unknown field"
    assert "Everything" in str(raised.value)


def test_from_json_fills_defaults_and_makes_an_id() -> None:
    task = hutch.from_json(Task, {"title": "write docs"})
    assert task.status is Status.OPEN
    assert task.id
    assert task.created_at.tzinfo is not None


def test_from_json_does_not_quote_a_secret() -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        hutch.from_json(Task, {"title": "t", "secret": ["hunter2-hunter2"]})
    assert "hunter2" not in str(raised.value)
    assert "secret" in raised.value.errors


@pytest.mark.parametrize("data", [None, "{}", ["title", "t"], 5])
def test_from_json_refuses_what_is_not_an_object(data: Any) -> None:
    with pytest.raises(hutch.ValidationError, match="JSON object"):
        hutch.from_json(Task, data)


@pytest.mark.parametrize("model", [dict, int, "Task", None])
def test_from_json_needs_a_model(model: Any) -> None:
    with pytest.raises(hutch.DefinitionError, match="model"):
        hutch.from_json(model, {})


@pytest.mark.parametrize("value", [{"title": "t"}, Org, 5, None])
def test_to_json_needs_an_instance(value: Any) -> None:
    with pytest.raises(hutch.DefinitionError, match="instance"):
        hutch.to_json(value)


def test_to_json_of_a_hand_made_instance_with_a_naive_datetime() -> None:
    task = Task(title="t", done_at=datetime(2024, 1, 1))  # attrs does not check types
    with pytest.raises(hutch.ValidationError, match="timezone-aware"):
        hutch.to_json(task)


# -- create_many -----------------------------------------------------------------------------------


def test_create_many_stores_every_item_in_one_commit(env: Env) -> None:
    db = env.db
    applied: list[int] = []
    db.backend.apply = counting(applied, db.backend.apply)  # type: ignore[method-assign]
    heard: list[hutch.Changes] = []
    db.store.add_listener(heard.append)
    org = db.repo(Org).create(name="Acme")
    applied.clear()
    heard.clear()
    tasks = db.repo(Task).create_many(
        [{"title": f"task {i}", "org_id": org.id, "priority": i % 3} for i in range(50)]
    )
    assert [t.title for t in tasks] == [f"task {i}" for i in range(50)]
    assert len(applied) == 1
    assert len(heard) == 1
    assert len(heard[0].tables["tasks"]) == 50
    db = env.reopen()
    assert sorted(t.id for t in db.repo(Task).all()) == sorted(t.id for t in tasks)
    assert db.repo(Task).get(tasks[7].id) == tasks[7]


def test_create_many_of_nothing_writes_nothing(env: Env) -> None:
    assert env.db.repo(Task).create_many([]) == []
    assert env.db.store.get_table_ids() == []


def test_create_many_takes_any_iterable_of_dicts(db: hutch.Database) -> None:
    created = db.repo(Task).create_many({"title": f"t{i}"} for i in range(3))
    assert [t.title for t in created] == ["t0", "t1", "t2"]


def assert_nothing_written(env: Env) -> None:
    db = env.reopen()
    assert db.repo(Task).count() == 0
    assert db.store.get_row_count("tasks") == 0


def test_create_many_refuses_a_duplicate_within_the_batch(env: Env) -> None:
    with pytest.raises(hutch.IntegrityError) as raised:
        env.db.repo(Task).create_many(
            [
                {"title": "a", "slug": "one"},
                {"title": "b", "slug": "two"},
                {"title": "c", "slug": "ONE"},
            ]
        )
    assert "item 2" in str(raised.value)
    assert "tasks.slug" in str(raised.value)
    assert "is item 0 of the batch" in str(raised.value)  # the id it names was never stored
    assert_nothing_written(env)


def test_create_many_names_the_earlier_item_a_duplicate_clashes_with_by_its_id_alone(
    db: hutch.Database,
) -> None:
    """A value that happens to equal an earlier item's id is no reference to that item."""
    with pytest.raises(hutch.IntegrityError) as raised:
        db.repo(Task).create_many(
            [
                {"id": "blue", "title": "a", "slug": "x"},
                {"id": "b2", "title": "b", "slug": "blue"},
                {"id": "b3", "title": "c", "slug": "blue"},
            ]
        )
    message = str(raised.value)
    assert message.startswith("item 2: tasks.slug must be unique")
    assert "'blue' is taken by 'b2'; 'b2' is item 1 of the batch;" in message
    assert "'blue' is item" not in message


def test_create_many_refuses_a_duplicate_of_a_stored_row(env: Env) -> None:
    env.db.repo(Task).create(title="kept", ref=7)
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*tasks\.ref"):
        env.db.repo(Task).create_many([{"title": "a", "ref": 6}, {"title": "b", "ref": 7}])
    db = env.reopen()
    assert [t.title for t in db.repo(Task).all()] == ["kept"]


def test_create_many_refuses_a_duplicate_id(env: Env) -> None:
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*'t1' is item 0 of the batch"):
        env.db.repo(Task).create_many([{"id": "t1", "title": "a"}, {"id": "t1", "title": "b"}])
    assert_nothing_written(env)


def test_create_many_links_to_rows_made_earlier_in_the_batch(env: Env) -> None:
    org = {"id": "acme", "name": "Acme"}
    env.db.repo(Org).create_many([org])
    tasks = env.db.repo(Task).create_many(
        [
            {"id": "root", "title": "root", "org_id": "acme"},
            {"id": "child", "title": "child", "parent_id": "root"},
            {"id": "grandchild", "title": "grandchild", "parent_id": "child"},
        ]
    )
    assert [t.parent_id for t in tasks] == [None, "root", "child"]
    db = env.reopen()
    db.repo(Task)
    assert db.relationships.local_row_ids("tasks.parent_id", "root") == ["child"]


def test_create_many_refuses_a_link_to_a_row_that_comes_later_or_not_at_all(env: Env) -> None:
    repo = env.db.repo(Task)
    with pytest.raises(hutch.IntegrityError, match=r"item 0\b.*tasks\.parent_id = 'later'"):
        repo.create_many([{"title": "a", "parent_id": "later"}, {"id": "later", "title": "b"}])
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*tasks\.org_id = 'nowhere'"):
        repo.create_many([{"title": "a"}, {"title": "b", "org_id": "nowhere"}])
    assert_nothing_written(env)


def test_create_many_names_every_bad_item_and_field(env: Env) -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        env.db.repo(Task).create_many(
            [{"title": "ok"}, {"title": 5}, {"title": "ok"}, {"priority": "high", "colour": "red"}]
        )
    assert raised.value.errors.keys() == {"1.title", "3.title", "3.priority", "3.colour"}
    assert raised.value.errors["3.colour"] == "unknown field"
    message = str(raised.value)
    assert "item 1" in message
    assert "item 3" in message
    assert "nothing was written" in message
    assert_nothing_written(env)


@pytest.mark.parametrize("item", ["title", ["title", "t"], None, 3])
def test_create_many_refuses_an_item_that_is_not_a_dict(db: hutch.Database, item: Any) -> None:
    with pytest.raises(hutch.ValidationError, match=r"item 1\b.*dict of fields") as raised:
        db.repo(Task).create_many([{"title": "ok"}, item])
    assert list(raised.value.errors) == ["1"]


@pytest.mark.parametrize("items", ["abc", {"title": "t"}, 5, None, b"x"])
def test_create_many_refuses_what_is_not_a_list_of_items(db: hutch.Database, items: Any) -> None:
    with pytest.raises(hutch.ValidationError, match="list of dicts"):
        db.repo(Task).create_many(items)
    assert db.store.get_table_ids() == []


def test_create_many_does_not_quote_a_secret(db: hutch.Database) -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        db.repo(Task).create_many([{"title": "t", "secret": ["hunter2-hunter2"]}])
    assert "hunter2" not in str(raised.value)
    assert "0.secret" in raised.value.errors


def test_create_many_inside_a_transaction_is_undone_alone(env: Env) -> None:
    db = env.db
    repo = db.repo(Task)
    with db.store.transaction():
        kept = repo.create(title="kept", slug="x")
        with pytest.raises(hutch.IntegrityError):
            repo.create_many([{"title": "a"}, {"title": "b", "slug": "X"}])
        assert repo.count() == 1
    db = env.reopen()
    assert db.repo(Task).all() == [kept]


def test_create_many_follows_a_rule_a_repository_checks_in_create(env: Env) -> None:
    repo = env.db.repo(Shout)
    assert [s.text for s in repo.create_many([{"text": "HEY"}, {"text": "YOU"}])] == ["HEY", "YOU"]
    with pytest.raises(hutch.ValidationError, match=r"item 1\b.*upper case"):
        repo.create_many([{"text": "AH"}, {"text": "quiet"}])
    db = env.reopen()
    assert sorted(s.text for s in db.repo(Shout).all()) == ["HEY", "YOU"]


class QuietRepository(hutch.Repository["Quiet"]):
    """A repository with a rule of its own, in ``check``: every write follows it."""

    def check(self, instance: Quiet, previous: Quiet | None = None) -> None:
        super().check(instance, previous)
        if not instance.text.islower():
            raise hutch.ValidationError(
                "invalid Quiet: text: must be lower case", {"text": "must be lower case"}
            )


@attrs.frozen(kw_only=True)
class Quiet(hutch.Model):
    __collection__ = "quiet"
    __repository__ = QuietRepository

    text: str


def test_a_rule_in_check_holds_for_every_write(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = env.db.repo(Quiet)
    created: list[int] = []
    monkeypatch.setattr(hutch.Repository, "create", counting(created, hutch.Repository.create))
    made = repo.create_many([{"text": "hush"}, {"text": "shh"}])
    assert created == []  # one transaction, no create per item
    with pytest.raises(hutch.ValidationError, match=r"item 1\b.*lower case"):
        repo.create_many([{"text": "ok"}, {"text": "LOUD"}])
    with pytest.raises(hutch.ValidationError, match="lower case"):
        repo.create(text="LOUD")
    with pytest.raises(hutch.ValidationError, match="lower case"):
        repo.update(made[0].id, text="LOUD")
    db = env.reopen()
    assert sorted(q.text for q in db.repo(Quiet).all()) == ["hush", "shh"]


def test_create_many_does_not_scan_and_commits_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What makes it faster than a loop of create: one commit, and lookups, never scans."""
    db = env.db
    repo = db.repo(Task)
    repo.create_many([{"title": f"old {i}", "slug": f"old-{i}", "ref": i} for i in range(200)])
    scans: list[int] = []
    lookups: list[int] = []
    applied: list[int] = []
    monkeypatch.setattr(Store, "get_row_ids", counting(scans, Store.get_row_ids))
    monkeypatch.setattr(Store, "get_table", counting(scans, Store.get_table))
    monkeypatch.setattr(SliceIndex, "row_ids", counting(lookups, SliceIndex.row_ids))
    db.backend.apply = counting(applied, db.backend.apply)  # type: ignore[method-assign]

    def lookups_for(count: int) -> int:
        lookups.clear()
        repo.create_many(
            [
                {"title": "n", "slug": f"n-{count}-{i}", "ref": 1000 * count + i}
                for i in range(count)
            ]
        )
        return len(lookups)

    small, large = lookups_for(50), lookups_for(500)
    assert scans == []
    assert len(applied) == 2
    assert large <= 10 * small * 1.5  # lookups grow with the batch, not with the collection


def test_create_many_goes_through_the_platform_rules(db: hutch.Database) -> None:
    users, orgs = db.repo(User), db.repo(Organisation)
    ada, bob = users.create_many([{"email": "ada@example.org"}, {"email": "bob@example.org"}])
    acme, globex = orgs.create_many(
        [{"name": "Acme", "owner_id": ada.id}, {"name": "Globex", "owner_id": ada.id}]
    )
    (red,) = db.repo(Team).create_many([{"name": "red", "organisation_id": acme.id}])
    memberships = db.repo(Membership)
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*already a member"):
        memberships.create_many(
            [
                {"user_id": bob.id, "organisation_id": acme.id},
                {"user_id": bob.id, "organisation_id": acme.id},
            ]
        )
    with pytest.raises(hutch.IntegrityError, match=r"item 0\b.*team of organisation"):
        memberships.create_many(
            [{"user_id": bob.id, "organisation_id": globex.id, "team_id": red.id}]
        )
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*users\.email"):
        users.create_many([{"email": "eve@example.org"}, {"email": "ADA@example.org"}])
    site, app = db.repo(Project).create_many(
        [{"name": "Site", "organisation_id": acme.id}, {"name": "App", "organisation_id": acme.id}]
    )
    (spec,) = db.repo(Resource).create_many([{"name": "Spec", "project_id": site.id}])
    with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*resource of project"):
        db.repo(File).create_many(
            [
                {"name": "a.pdf", "resource_id": spec.id, "project_id": site.id},
                {"name": "b.pdf", "resource_id": spec.id, "project_id": app.id},
            ]
        )
    assert db.store.get_row_count("files") == 0
    assert db.store.get_row_count("memberships") == 0
    assert db.store.get_row_count("users") == 2


def test_create_many_records_the_email_rule_as_create_does(db: hutch.Database) -> None:
    db.repo(User).create_many([{"email": "ada@example.org"}])
    assert db.store.get_value(USERS_REVIEWED) is not None


def test_create_many_follows_the_auth_rules() -> None:
    with hutch.open("memory://", plugins=[*PLUGINS, hutch.plugins.auth]) as db:
        auth = AuthAdapter(db)
        ada = auth.create_user(email="ada@example.org")
        expires = datetime.now(UTC) + timedelta(days=1)
        with pytest.raises(hutch.ValidationError, match=r"item 0\b.*SHA-256"):
            auth.sessions.create_many(
                [{"session_token": "raw-token", "user_id": ada.id, "expires": expires}]
            )
        assert db.store.get_row_count("sessions") == 0
        accounts = db.repo(hutch.plugins.auth.Account)
        linked = {"user_id": ada.id, "type": "oauth", "provider": "github"}
        with pytest.raises(hutch.IntegrityError, match=r"item 1\b.*'a1' is item 0 of the batch"):
            accounts.create_many(
                [
                    {"id": "a1", **linked, "provider_account_id": "42"},
                    {"id": "a2", **linked, "provider_account_id": "42"},
                ]
            )
        assert db.store.get_row_count("accounts") == 0


def test_the_auth_repositories_check_a_batch_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    with hutch.open("memory://", plugins=[*PLUGINS, hutch.plugins.auth]) as db:
        ada = AuthAdapter(db).create_user(email="ada@example.org")
        created: list[int] = []
        monkeypatch.setattr(hutch.Repository, "create", counting(created, hutch.Repository.create))
        linked = {"user_id": ada.id, "type": "oauth", "provider": "github"}
        db.repo(hutch.plugins.auth.Account).create_many(
            [{**linked, "provider_account_id": str(i)} for i in range(3)]
        )
        assert created == []
        assert db.store.get_row_count("accounts") == 3


# -- count_by --------------------------------------------------------------------------------------


def seed_tasks(db: hutch.Database) -> tuple[str, str]:
    orgs = db.repo(Org).create_many([{"name": "Acme"}, {"name": "Globex"}])
    statuses = [Status.OPEN, Status.DONE, None, Status.OPEN, Status.OPEN, None, Status.DONE]
    db.repo(Task).create_many(
        {
            "title": f"t{i}",
            "status": status,
            "priority": i % 2,
            "org_id": orgs[i % 2].id,
            "done_at": datetime(2024, 1, 1 + i % 2, tzinfo=UTC),
        }
        for i, status in enumerate(statuses)
    )
    return orgs[0].id, orgs[1].id


def oracle(db: hutch.Database, field: str, **filters: Any) -> Counter[Any]:
    return Counter(getattr(task, field) for task in db.repo(Task).find(**filters))


def test_count_by_an_indexed_field_reads_the_index(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_tasks(env.db)
    db = env.reopen()
    built: list[int] = []
    monkeypatch.setattr("hutch.repository.from_row", counting(built, from_row))
    counts = db.repo(Task).count_by("status")
    assert counts == {None: 2, Status.OPEN: 3, Status.DONE: 2}
    assert list(counts) == [None, Status.DONE, Status.OPEN]  # in the order values are stored
    assert built == []  # no row was read into a model
    assert db.repo(Task).count_by("priority") == {0: 4, 1: 3}


def test_count_by_a_field_without_an_index_scans(env: Env) -> None:
    seed_tasks(env.db)
    db = env.reopen()
    counts = db.repo(Task).count_by("done_at")
    assert counts == oracle(db, "done_at")
    assert counts == {datetime(2024, 1, 1, tzinfo=UTC): 4, datetime(2024, 1, 2, tzinfo=UTC): 3}
    assert db.repo(Task).count_by("title") == {f"t{i}": 1 for i in range(7)}


def test_count_by_takes_filters_as_find_does(env: Env) -> None:
    acme, globex = seed_tasks(env.db)
    repo = env.db.repo(Task)
    assert repo.count_by("status", org_id=acme) == oracle(env.db, "status", org_id=acme)
    assert repo.count_by("status", org_id=globex, title__in=["t1", "t3", "t5"]) == {
        None: 1,
        Status.DONE: 1,
        Status.OPEN: 1,
    }
    assert repo.count_by("status", title__startswith="nobody") == {}


def test_count_by_on_an_empty_collection(db: hutch.Database) -> None:
    assert db.repo(Task).count_by("status") == {}
    assert db.repo(Task).count_by("title") == {}


def test_count_by_counts_rows_stored_without_the_field_under_its_default(
    db: hutch.Database,
) -> None:
    """A row written before the field existed is in no slice of its index, yet has a value."""
    db.repo(Task).create(title="new", status=Status.DONE)
    db.store.set_row(
        "tasks",
        "old",
        {
            "title": "old",
            "created_at": "2020-01-01T00:00:00+00:00",
            "updated_at": "2020-01-01T00:00:00+00:00",
        },
    )
    assert db.repo(Task).count_by("status") == {Status.OPEN: 1, Status.DONE: 1}
    assert db.repo(Task).count_by("status") == oracle(db, "status")


def test_count_by_a_set_field_counts_whole_values(db: hutch.Database) -> None:
    """Its index has a slice per item, which must not be taken for a value."""
    repo = db.repo(Tagged)
    repo.create_many([{"labels": {"ab"}}, {"labels": {"cd"}}, {"labels": {"cd"}}])
    assert repo.count_by("labels") == {frozenset({"ab"}): 1, frozenset({"cd"}): 2}


def test_count_by_sees_the_transaction_it_runs_in(db: hutch.Database) -> None:
    repo = db.repo(Task)
    with db.store.transaction():
        repo.create(title="a", status=Status.DONE)
        assert repo.count_by("status") == {Status.DONE: 1}
    assert repo.count_by("status") == {Status.DONE: 1}


@pytest.mark.parametrize(
    ("field", "filters", "words"),
    [
        ("colour", {}, "has no field 'colour'"),
        (5, {}, "field name"),
        ("tags", {}, "cannot be counted"),
        ("secret", {}, "secret"),
        ("status", {"colour": "red"}, "has no field 'colour'"),
        ("status", {"priority__gt": "high"}, "priority__gt"),
    ],
)
def test_count_by_refuses_a_wrong_call(
    db: hutch.Database, field: Any, filters: dict[str, Any], words: str
) -> None:
    db.repo(Task).create(title="t", secret="hunter2-hunter2")
    with pytest.raises(hutch.QueryError, match=words) as raised:
        db.repo(Task).count_by(field, **filters)
    assert "hunter2" not in str(raised.value)


@attrs.frozen(kw_only=True)
class Loose(hutch.Model):
    """A field that holds anything, and one of two shapes: an index cannot count either."""

    __collection__ = "loose"
    __indexed__ = ("tag", "code")

    tag: Any = None
    code: str | tuple[str, ...] = ""


def test_count_by_a_field_that_holds_anything_counts_whole_values(db: hutch.Database) -> None:
    """A list cell is in a slice per item and an empty one in none: the index cannot count it."""
    repo = db.repo(Loose)
    repo.create_many([{"id": "a", "tag": "x"}, {"id": "b", "tag": "x"}, {"id": "c", "tag": 5}])
    assert repo.count_by("tag") == {5: 1, "x": 2}
    repo.create_many([{"id": "d", "tag": ["x", "y"]}, {"id": "e", "tag": []}])
    with pytest.raises(hutch.QueryError, match=r"loose row 'd'.*cannot be counted"):
        repo.count_by("tag")
    with pytest.raises(hutch.QueryError, match=r"loose row 'd'.*cannot be counted"):
        repo.count_by("tag", id__in=["d"])


def test_count_by_from_an_index_is_exact_or_not_used(db: hutch.Database) -> None:
    repo = db.repo(Loose)
    repo.create_many([{"code": "x"}, {"code": ("x", "y")}, {"code": ()}, {"code": ("z",)}])
    assert repo.count_by("code") == {"x": 1, ("x", "y"): 1, (): 1, ("z",): 1}


# -- paging ----------------------------------------------------------------------------------------


def test_pages_of_an_indexed_equality_cover_every_row_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = env.db.repo(Task)
    repo.create_many(
        {"title": f"t{i:02}", "status": Status.DONE if i % 3 else Status.OPEN, "priority": i % 4}
        for i in range(60)
    )
    done = repo.find(status=Status.DONE, order_by=["-priority", "created_at"])
    built: list[int] = []
    monkeypatch.setattr("hutch.repository.from_row", counting(built, from_row))
    pages = [
        repo.find(status=Status.DONE, order_by=["-priority", "created_at"], limit=7, offset=start)
        for start in range(0, 50, 7)
    ]
    assert [task for page in pages for task in page] == done
    assert len(done) == 40
    assert all(len(page) <= 7 for page in pages)
    assert len(built) == len(pages) * len(done)  # each page reads the slice, not the other 20


def test_an_equality_on_an_indexed_list_or_object_field_finds_its_rows(env: Env) -> None:
    """Such an index has no slice for a whole list or object, so it cannot answer alone."""
    repo = env.db.repo(Tagged)
    made = repo.create(tags=["a", "b"], point=Point(1, 2), labels={"x"})
    repo.create(tags=["a"], point=Point(3, 4))
    db = env.reopen()
    repo = db.repo(Tagged)
    assert repo.find(tags=["a", "b"]) == [made]
    assert repo.find(tags__in=[["a", "b"], ["c"]]) == [made]
    assert repo.find(point={"x": 1, "y": 2}) == [made]
    assert repo.find(labels=["x"]) == [made]
    assert repo.count(point={"x": 1, "y": 2}, tags=["a", "b"]) == 1


def test_find_by_an_indexed_field_finds_rows_stored_without_it(db: hutch.Database) -> None:
    """A row stored before the field existed holds its default, though it is in no slice."""
    repo = db.repo(Task)
    new = repo.create(title="new", status=Status.DONE)
    stamp = "2020-01-01T00:00:00+00:00"
    db.store.set_row("tasks", "old", {"title": "old", "created_at": stamp, "updated_at": stamp})
    assert db.indexes.indexed_row_count("tasks.status") == 1  # of the 2 rows
    old = repo.get("old")
    assert old is not None
    assert old.status is Status.OPEN
    assert old.priority == 0
    assert repo.find(status=Status.OPEN) == [old]
    assert repo.find(status__in=[Status.OPEN, Status.DONE]) == [new, old]
    assert repo.find(priority=0, order_by="title") == [new, old]
    assert repo.find(status=Status.DONE) == [new]
    assert repo.find_one(status=Status.OPEN) == old


@attrs.frozen(kw_only=True)
class Kinded(hutch.Model):
    __collection__ = "kinded"
    __indexed__ = ("kind", "made")

    name: str
    kind: str = attrs.field(factory=lambda: "plain")  # a constant, made by a function
    made: str = attrs.field(factory=lambda: datetime.now(UTC).isoformat())  # never the same


def test_find_and_count_by_agree_on_rows_stored_before_a_field_with_a_factory(
    db: hutch.Database,
) -> None:
    repo = db.repo(Kinded)
    new = repo.create(name="new")
    stamp = "2020-01-01T00:00:00+00:00"
    db.store.set_row("kinded", "old", {"name": "old", "created_at": stamp, "updated_at": stamp})
    old = repo.get("old")
    assert old is not None
    assert repo.find(kind="plain") == [new, old]
    assert repo.count_by("kind") == {"plain": 2}
    assert repo.count(kind="plain") == 2
    assert repo.find(made=new.made) == [new]


# -- create_user with the platform user's other fields --------------------------------------------


def test_password_sign_up_is_one_call_and_one_commit(env: Env) -> None:
    db = env.with_auth()
    auth = AuthAdapter(db)
    heard: list[hutch.Changes] = []
    db.store.add_listener(heard.append)
    user = auth.create_user(
        email="ada@example.org",
        name="Ada",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        role=UserRole.ADMIN,
        storage_tier="PRO_50GB",
    )
    assert len(heard) == 1
    assert (user.role, user.storage_tier) == (UserRole.ADMIN, StorageTier.PRO_50GB)
    assert "argon2" not in repr(user)
    db = env.reopen()
    assert AuthAdapter(db).get_user_by_email("ada@example.org") == user


def test_create_user_refuses_an_unknown_field() -> None:
    with hutch.open("memory://", plugins=[*PLUGINS, hutch.plugins.auth]) as db:
        auth = AuthAdapter(db)
        with pytest.raises(hutch.ValidationError) as raised:
            auth.create_user(email="ada@example.org", password="plain text", role="KING")
        assert raised.value.errors.keys() == {"password", "role"}
        assert "plain text" not in str(raised.value)
        assert db.store.get_row_count("users") == 0
