"""The small set of models the parity suite stores: organisations, people, teams, projects."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

import hutch


class Role(enum.Enum):
    MEMBER = "member"
    ADMIN = "admin"


@attrs.frozen
class Address:
    city: str
    postcode: str | None = None


@attrs.frozen(kw_only=True)
class Org(hutch.Model):
    __collection__ = "parity_orgs"
    __unique__ = ("slug",)

    name: str
    slug: str


@attrs.frozen(kw_only=True)
class Person(hutch.Model):
    __collection__ = "parity_people"
    __indexed__ = ("role",)
    __unique__ = (hutch.Unique("email", case_insensitive=True),)
    __relations__ = (hutch.Relation("org_id", Org, on_delete="set_null"),)

    email: str
    name: str = ""
    age: int = 0
    score: float = 0.0
    role: Role = Role.MEMBER
    seen: datetime | None = None
    address: Address | None = None
    tags: list[str] = attrs.field(factory=list)
    org_id: str | None = None


@attrs.frozen(kw_only=True)
class Team(hutch.Model):
    __collection__ = "parity_teams"
    __relations__ = (hutch.Relation("org_id", Org, on_delete="cascade"),)

    name: str
    org_id: str


@attrs.frozen(kw_only=True)
class Project(hutch.Model):
    __collection__ = "parity_projects"
    __relations__ = (
        hutch.Relation("team_id", Team, on_delete="cascade"),
        hutch.Relation("owner_id", Person, on_delete="restrict"),
    )

    title: str
    team_id: str
    owner_id: str | None = None


MODELS: tuple[type[hutch.Model], ...] = (Org, Person, Team, Project)


def register_all(db: hutch.Database) -> None:
    """Register every parity model, so each delete policy applies from the start."""
    for model in MODELS:
        db.repo(model)
