"""Parity: models and repositories (CRUD, lookups, integrity, delete policies) on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import hutch
from hutch.testing.models import Address, Org, Person, Project, Role, Team, register_all


@pytest.fixture
def db(hutch_db: hutch.Database) -> hutch.Database:
    register_all(hutch_db)
    return hutch_db


def _contents(db: hutch.Database) -> dict[str, Any]:
    s = db.store
    return {t: s.get_table(t) for t in s.get_table_ids()}


def build(db: hutch.Database) -> dict[str, str]:
    orgs, people = db.repo(Org), db.repo(Person)
    teams, projects = db.repo(Team), db.repo(Project)
    acme = orgs.create(name="Acme", slug="acme")
    other = orgs.create(name="Other", slug="other")
    ada = people.create(email="Ada@X.io", name="Ada", org_id=acme.id, role=Role.ADMIN)
    bob = people.create(email="bob@x.io", name="Bob", org_id=acme.id, age=40)
    cy = people.create(email="cy@x.io", name="Cy", org_id=other.id, tags=["x"])
    blue = teams.create(name="blue", org_id=acme.id)
    green = teams.create(name="green", org_id=other.id)
    plan = projects.create(title="plan", team_id=blue.id, owner_id=ada.id)
    return {
        "acme": acme.id,
        "other": other.id,
        "ada": ada.id,
        "bob": bob.id,
        "cy": cy.id,
        "blue": blue.id,
        "green": green.id,
        "plan": plan.id,
    }


def test_create_get_update_delete(db: hutch.Database) -> None:
    people = db.repo(Person)
    seen = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ada = people.create(
        email="ada@x.io",
        name="Ada",
        age=36,
        score=1.5,
        seen=seen,
        address=Address(city="London"),
        tags=["math"],
    )
    assert people.get(ada.id) == ada
    assert ada.seen == seen
    assert people.exists(ada.id)
    row = db.store.get_row("parity_people", ada.id)
    assert row is not None
    assert row["email"] == "ada@x.io"
    assert row["address"] == {"city": "London", "postcode": None}
    newer = people.update(ada.id, age=37, tags=["math", "code"])
    assert newer.age == 37
    assert newer.updated_at >= ada.updated_at
    assert newer.created_at == ada.created_at
    assert people.get(ada.id) == newer
    assert people.delete(ada.id) is True
    assert people.delete(ada.id) is False
    assert people.get(ada.id) is None
    with pytest.raises(hutch.NotFound):
        people.update(ada.id, age=1)


def test_given_ids_are_kept_and_bad_ones_refused(db: hutch.Database) -> None:
    people = db.repo(Person)
    person = people.create(id="p-1", email="p@x.io")
    assert person.id == "p-1"
    with pytest.raises(hutch.IntegrityError):
        people.create(id="p-1", email="q@x.io")
    with pytest.raises(hutch.InvalidId):
        people.get("../x")
    with pytest.raises(hutch.ValidationError):
        people.create(email="r@x.io", age="3")
    assert people.count() == 1


def test_lookups_and_ordering(db: hutch.Database) -> None:
    ids = build(db)
    people = db.repo(Person)

    def names(found: list[Person]) -> list[str]:
        return [p.name for p in found]

    assert names(people.find(role=Role.ADMIN)) == ["Ada"]
    assert names(people.find(role="member", order_by="name")) == ["Bob", "Cy"]
    assert names(people.find(org_id=ids["acme"], order_by="-age")) == ["Bob", "Ada"]
    assert names(people.find(age__gte=40)) == ["Bob"]
    assert names(people.find(name__in=["Cy", "Ada"], order_by="name")) == ["Ada", "Cy"]
    assert names(people.find(tags__contains="x")) == ["Cy"]
    assert names(people.find(name__startswith="B")) == ["Bob"]
    assert names(people.find(order_by="name", limit=1, offset=1)) == ["Bob"]
    assert people.count(org_id=ids["acme"]) == 2
    assert people.find_one(email="bob@x.io") is not None
    assert len(people.all()) == 3
    with pytest.raises(hutch.QueryError):
        people.find(nope=1)


def test_unique_fields(db: hutch.Database) -> None:
    build(db)
    people, orgs = db.repo(Person), db.repo(Org)
    before = _contents(db)
    with pytest.raises(hutch.IntegrityError):
        people.create(email="ada@x.IO")  # case-insensitive
    with pytest.raises(hutch.IntegrityError):
        orgs.create(name="again", slug="acme")
    assert _contents(db) == before
    orgs.create(name="case", slug="ACME")  # slug is case-sensitive


def test_a_foreign_key_to_a_missing_row_writes_nothing(db: hutch.Database) -> None:
    before = _contents(db)
    with pytest.raises(hutch.IntegrityError):
        db.repo(Team).create(name="orphan", org_id="nowhere")
    assert _contents(db) == before


def test_cascade_and_set_null(db: hutch.Database) -> None:
    ids = build(db)
    db.repo(Project).delete(ids["plan"])
    assert db.repo(Org).delete(ids["acme"]) is True
    assert [t.name for t in db.repo(Team).all()] == ["green"]
    ada = db.repo(Person).get(ids["ada"])
    assert ada is not None
    assert ada.org_id is None
    cy = db.repo(Person).get(ids["cy"])
    assert cy is not None
    assert cy.org_id == ids["other"]


def test_restrict_deep_in_a_cascade_deletes_nothing(db: hutch.Database) -> None:
    ids = build(db)
    before = _contents(db)
    with pytest.raises(hutch.IntegrityError):
        db.repo(Person).delete(ids["ada"])  # owns a project
    assert _contents(db) == before
    # Deleting the org cascades to the team and its project; Ada is only set_null: fine.
    assert db.repo(Org).delete(ids["acme"]) is True
    assert db.repo(Project).count() == 0
    assert db.repo(Person).delete(ids["ada"]) is True


def test_a_rolled_back_transaction_leaves_nothing(db: hutch.Database) -> None:
    ids = build(db)
    before = _contents(db)
    with pytest.raises(RuntimeError), db.store.transaction():  # noqa: PT012
        db.repo(Project).delete(ids["plan"])
        db.repo(Org).delete(ids["acme"])
        db.repo(Person).create(email="new@x.io")
        raise RuntimeError("roll back")
    assert _contents(db) == before
    assert db.repo(Person).find_one(email="new@x.io") is None


def test_timestamps_are_aware_utc(db: hutch.Database) -> None:
    person = db.repo(Person).create(email="t@x.io")
    assert person.created_at.tzinfo is not None
    assert person.created_at.utcoffset() == timedelta(0)
