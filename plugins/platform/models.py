"""The seven entities of the platform, as frozen attrs models.

Ownership runs users → organisations → teams and projects → resources → files,
and memberships tie users to organisations (and, optionally, to one team).

Delete policies (what deleting the row pointed at does):

=============================  =================  ===========================================
field                          points at          on delete
=============================  =================  ===========================================
organisations.owner_id         users              ``restrict``: move ownership first
teams.organisation_id          organisations      ``cascade``
projects.organisation_id       organisations      ``cascade``
resources.project_id           projects           ``cascade``
memberships.user_id            users              ``cascade``
memberships.organisation_id    organisations      ``cascade``
memberships.team_id            teams              ``set_null``: the member stays in the
                                                  organisation, no longer in the team
files.project_id               projects           ``cascade``
files.resource_id              resources          ``cascade``
=============================  =================  ===========================================

So deleting an organisation takes its teams, projects, their resources and
files and its memberships with it; deleting a user takes their memberships,
unless they still own an organisation. Registering any of the seven registers
them all (their ``__family__``), so these policies hold in every process that
uses one of them, whether the application named the plugin or not.

Every field a repository method looks up is indexed (foreign keys always
are). Emails are trimmed and NFC-normalised when a ``User`` is built, and are
unique by the email rule (:mod:`hutch.plugins.platform.emails`): the index
``users.email.key`` holds each user's ``email_key(email)``, which is also what
:meth:`UserRepository.find_by_email` looks up. A ``User``'s ``repr`` leaves out
its ``password_hash``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import attrs

import hutch

from . import repositories
from .emails import email_key, normalise_email
from .enums import (
    MembershipRole,
    ProjectStatus,
    ResourceStatus,
    ResourceType,
    StorageTier,
    UserRole,
)

_SPACE = re.compile(r"\s").search


def _looks_like_email(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    """The shape every stored email has: ``name@domain``, no spaces.

    The full email rule is the unique key's (``email_key``): it refuses what is
    not one mailbox when a user is written, while rows stored under an older
    rule stay readable.
    """
    local, at, domain = value.rpartition("@")
    if not (local and at and domain) or _SPACE(value):
        raise ValueError(f"{attribute.name}: {value!r} is not an email address (name@domain)")


def _not_blank(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be blank")


def _platform() -> tuple[type[hutch.Model], ...]:
    """Every platform model: the family each of them registers with it."""
    return MODELS


@attrs.frozen(kw_only=True)
class User(hutch.Model):
    """Someone who signs in; ``email`` is unique by the email rule (one mailbox, one user)."""

    __collection__ = "users"
    __family__ = _platform
    __repository__ = repositories.UserRepository
    __unique__ = (hutch.Unique("email", key=email_key),)
    __indexed__ = ("role", "storage_tier", "email_verified")

    email: str = attrs.field(converter=normalise_email, validator=_looks_like_email)
    name: str | None = None
    image: str | None = None
    password_hash: str | None = attrs.field(default=None, repr=False)
    email_verified: datetime | None = None
    role: UserRole = UserRole.CUSTOMER
    storage_tier: StorageTier = StorageTier.FREE_500MB


@attrs.frozen(kw_only=True)
class Organisation(hutch.Model):
    """A customer account that people share; its owner cannot be deleted while it exists."""

    __collection__ = "organisations"
    __family__ = _platform
    __repository__ = repositories.OrganisationRepository
    __indexed__ = ("name",)
    __relations__ = (hutch.Relation("owner_id", "users", on_delete="restrict"),)

    name: str = attrs.field(validator=_not_blank)
    owner_id: str


@attrs.frozen(kw_only=True)
class Team(hutch.Model):
    """A group of members within an organisation."""

    __collection__ = "teams"
    __family__ = _platform
    __repository__ = repositories.TeamRepository
    __relations__ = (hutch.Relation("organisation_id", "organisations", on_delete="cascade"),)

    name: str = attrs.field(validator=_not_blank)
    organisation_id: str


@attrs.frozen(kw_only=True)
class Project(hutch.Model):
    """A piece of work of an organisation, holding resources and files."""

    __collection__ = "projects"
    __family__ = _platform
    __repository__ = repositories.ProjectRepository
    __indexed__ = ("status",)
    __relations__ = (hutch.Relation("organisation_id", "organisations", on_delete="cascade"),)

    name: str = attrs.field(validator=_not_blank)
    organisation_id: str
    status: ProjectStatus = ProjectStatus.ACTIVE


@attrs.frozen(kw_only=True)
class Resource(hutch.Model):
    """Something a project uses or produces: a document, a dataset, a service..."""

    __collection__ = "resources"
    __family__ = _platform
    __repository__ = repositories.ResourceRepository
    __indexed__ = ("status",)
    __relations__ = (hutch.Relation("project_id", "projects", on_delete="cascade"),)

    name: str = attrs.field(validator=_not_blank)
    project_id: str
    type: ResourceType = ResourceType.OTHER
    status: ResourceStatus = ResourceStatus.ACTIVE


@attrs.frozen(kw_only=True)
class Membership(hutch.Model):
    """A user's place in an organisation: organisation-wide (no ``team_id``) or in one team.

    The repository keeps (user, organisation, team) unique and the team inside
    the organisation. Deleting the team turns its memberships organisation-wide.
    """

    __collection__ = "memberships"
    __family__ = _platform
    __repository__ = repositories.MembershipRepository
    __relations__ = (
        hutch.Relation("user_id", "users", on_delete="cascade"),
        hutch.Relation("organisation_id", "organisations", on_delete="cascade"),
        hutch.Relation("team_id", "teams", on_delete="set_null"),
    )

    user_id: str
    organisation_id: str
    team_id: str | None = None
    role: MembershipRole = MembershipRole.MEMBER


@attrs.frozen(kw_only=True)
class File(hutch.Model):
    """A stored file's metadata, attached to a project, a resource of it, or both."""

    __collection__ = "files"
    __family__ = _platform
    __repository__ = repositories.FileRepository
    __relations__ = (
        hutch.Relation("project_id", "projects", on_delete="cascade"),
        hutch.Relation("resource_id", "resources", on_delete="cascade"),
    )

    name: str = attrs.field(validator=_not_blank)
    project_id: str | None = None
    resource_id: str | None = attrs.field(default=None)
    size: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    content_type: str = "application/octet-stream"
    path: str = ""

    @resource_id.validator
    def _attached(self, _: attrs.Attribute[str | None], value: str | None) -> None:
        if self.project_id is None and value is None:
            raise ValueError(
                "a file belongs to a project or a resource: give project_id, resource_id or both"
            )


#: Every model of the platform, in the order they may be created.
MODELS: tuple[type[hutch.Model], ...] = (
    User,
    Organisation,
    Team,
    Project,
    Resource,
    Membership,
    File,
)
