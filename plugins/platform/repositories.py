"""Domain queries of the platform, one repository per model; none of them scans a collection.

A ``find_by_<field>`` method is an equality on an indexed field (the model
declares the index, or the field is a foreign key, which is always indexed).
A ``get_<things>`` method follows a relationship (``<collection>.<field>``)
from the row pointed at to the rows pointing at it. Results come in id order
(creation order, for generated ids, to the millisecond), without duplicates.

Two rules the core cannot declare live here, checked in the write's own
transaction: a membership's (user, organisation, team) is unique and its team
belongs to its organisation; a file attached to both a project and a resource
names the resource's own project. Breaking one raises ``hutch.IntegrityError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

import hutch

from . import models
from .email_review import USERS_REVIEWED, record_if_first, review_once, review_users
from .emails import email_key
from .enums import ProjectStatus, ResourceStatus, StorageTier, UserRole

if TYPE_CHECKING:
    from hutch.database import Database

M = TypeVar("M", bound=hutch.Model)
Other = TypeVar("Other", bound=hutch.Model)

#: ``users`` by whether ``email_verified`` is None (True) or set (False); see UserRepository.
UNVERIFIED_INDEX = "users.email_verified.isnull"


class PlatformRepository(hutch.Repository[M]):
    """What the platform's repositories share: loading rows by id and following relationships."""

    def _load_all(self, model: type[Other], ids: Iterable[str]) -> list[Other]:
        """The instances of ``model`` with these ids, once each, in the order given."""
        repo = self.db.repo(model)
        with self.db.store.lock:
            found = (repo.get(row_id) for row_id in dict.fromkeys(ids))
            return [instance for instance in found if instance is not None]

    def _pointing_at(self, model: type[Other], field: str, row_id: str) -> list[Other]:
        """The ``model`` rows whose foreign key ``field`` holds ``row_id`` (a relationship)."""
        relationship = f"{model.__collection__}.{field}"
        with self.db.store.lock:
            ids = self.db.relationships.local_row_ids(relationship, row_id)
            return self._load_all(model, ids)


class UserRepository(PlatformRepository["models.User"]):
    """Users by email, role, storage tier and whether their email is verified.

    Made for a store whose users were written under an older email rule, it
    reviews them once (:mod:`~hutch.plugins.platform.email_review`); what that
    found is ``email_review`` (``None`` when no review was due).
    """

    def __init__(self, db: Database, model: type[models.User]) -> None:
        super().__init__(db, model)
        self._define_unverified_index()
        self.email_review = review_once(
            db, USERS_REVIEWED, self.collection, lambda: review_users(db.store, self.collection)
        )

    def _insert(self, instance: models.User) -> None:
        """Store a new user; the first one records that ``users`` follows the current email rule."""
        record_if_first(self.db.store, USERS_REVIEWED, self.collection)
        super()._insert(instance)

    def find_by_email(self, email: str) -> models.User | None:
        """The user whose address is this mailbox under the email rule, or ``None``.

        Case in the domain and in the ASCII letters of the local part, surrounding
        spaces, a trailing dot and how the domain is written (U-label, A-label)
        do not matter; text that is not one mailbox finds nobody. Two users with
        one mailbox (stored under an older rule) raise ``hutch.IntegrityError``
        naming them, rather than sign someone in as either.
        """
        try:
            key = email_key(email)
        except hutch.ValidationError:
            return None
        with self.db.store.lock:
            ids = self.db.indexes.slice_row_ids(self.spec.key_index_id("email"), key)
            if len(ids) > 1:
                named = ", ".join(map(repr, ids[:3]))
                if len(ids) > 3:
                    named += f" and {len(ids) - 3} more"
                raise hutch.IntegrityError(
                    f"users {named} share the mailbox {key!r} under the email rule, so none is "
                    "found by email; change or remove all but one address "
                    "(see docs/auth.md, 'Stores written under the old rule')"
                )
            found = self._load_all(self.model, ids)
        return found[0] if found else None

    def find_by_role(self, role: UserRole | str) -> list[models.User]:
        """The users with this platform role."""
        return self.find(role=role)

    def find_by_storage_tier(self, tier: StorageTier | str) -> list[models.User]:
        """The users on this storage tier."""
        return self.find(storage_tier=tier)

    def find_verified(self) -> list[models.User]:
        """The users whose email is verified (``email_verified`` is set)."""
        with self.db.store.lock:
            return self._load_all(self.model, self._verified_ids(verified=True))

    def find_unverified(self) -> list[models.User]:
        """The users whose email is not verified yet."""
        with self.db.store.lock:
            return self._load_all(self.model, self._verified_ids(verified=False))

    def _verified_ids(self, *, verified: bool) -> list[str]:
        indexes = self.db.indexes
        if self._define_unverified_index():
            return indexes.slice_row_ids(UNVERIFIED_INDEX, not verified)
        # Inside a transaction no index can be defined: read the field's own index instead.
        field_index = self.spec.index_id("email_verified")
        if not verified:
            return indexes.slice_row_ids(field_index, None)
        with self.db.store.lock:
            keys = [key for key in indexes.slice_ids(field_index) if key is not None]
            return sorted({i for key in keys for i in indexes.slice_row_ids(field_index, key)})

    def _define_unverified_index(self) -> bool:
        """Define ``users.email_verified.isnull`` unless it is; False if a transaction is open."""
        indexes, store = self.db.indexes, self.db.store
        if UNVERIFIED_INDEX in indexes:
            return True
        with store.lock:
            if store.in_transaction:  # ours: another thread's would hold the lock
                return False
            if UNVERIFIED_INDEX not in indexes:
                indexes.define(UNVERIFIED_INDEX, self.collection, _unverified)
        return True


def _unverified(row: dict[str, Any]) -> bool:
    return row.get("email_verified") is None


class OrganisationRepository(PlatformRepository["models.Organisation"]):
    """Organisations by name and owner, and what they hold."""

    def find_by_name(self, name: str) -> list[models.Organisation]:
        """The organisations with exactly this name (names need not be unique)."""
        return self.find(name=name)

    def find_by_owner(self, user_id: str) -> list[models.Organisation]:
        """The organisations this user owns."""
        return self.find(owner_id=user_id)

    def get_teams(self, organisation_id: str) -> list[models.Team]:
        """The organisation's teams."""
        return self._pointing_at(models.Team, "organisation_id", organisation_id)

    def get_projects(self, organisation_id: str) -> list[models.Project]:
        """The organisation's projects."""
        return self._pointing_at(models.Project, "organisation_id", organisation_id)

    def get_members(self, organisation_id: str) -> list[models.User]:
        """The users with a membership in the organisation (in any of its teams or none)."""
        with self.db.store.lock:
            members = self._pointing_at(models.Membership, "organisation_id", organisation_id)
            return self._load_all(models.User, sorted({m.user_id for m in members}))


class TeamRepository(PlatformRepository["models.Team"]):
    """Teams by organisation, and their members."""

    def find_by_organisation(self, organisation_id: str) -> list[models.Team]:
        """The teams of an organisation."""
        return self.find(organisation_id=organisation_id)

    def get_members(self, team_id: str) -> list[models.User]:
        """The users who have a membership in this team."""
        with self.db.store.lock:
            members = self._pointing_at(models.Membership, "team_id", team_id)
            return self._load_all(models.User, sorted({m.user_id for m in members}))


class ProjectRepository(PlatformRepository["models.Project"]):
    """Projects by organisation and status, and their resources."""

    def find_by_organisation(self, organisation_id: str) -> list[models.Project]:
        """The projects of an organisation."""
        return self.find(organisation_id=organisation_id)

    def find_by_status(self, status: ProjectStatus | str) -> list[models.Project]:
        """The projects with this status."""
        return self.find(status=status)

    def get_resources(self, project_id: str) -> list[models.Resource]:
        """The project's resources."""
        return self._pointing_at(models.Resource, "project_id", project_id)


class ResourceRepository(PlatformRepository["models.Resource"]):
    """Resources by project and status."""

    def find_by_project(self, project_id: str) -> list[models.Resource]:
        """The resources of a project."""
        return self.find(project_id=project_id)

    def find_by_status(self, status: ResourceStatus | str) -> list[models.Resource]:
        """The resources with this status."""
        return self.find(status=status)


class MembershipRepository(PlatformRepository["models.Membership"]):
    """Memberships by user, organisation and team; a user's organisations and teams."""

    def check(self, instance: models.Membership, previous: models.Membership | None = None) -> None:
        """Refuse a duplicate membership, or a team of another organisation, on every write.

        Only a change of user, organisation or team can make a duplicate, so
        changing the role of one of two duplicates (which deleting a team can
        leave behind) is allowed.
        """
        super().check(instance, previous)
        self._check_membership(
            instance, moved=previous is None or _place(previous) != _place(instance)
        )

    def find_by_user(self, user_id: str) -> list[models.Membership]:
        """The user's memberships."""
        return self.find(user_id=user_id)

    def find_by_organisation(self, organisation_id: str) -> list[models.Membership]:
        """The memberships of an organisation, team memberships included."""
        return self.find(organisation_id=organisation_id)

    def find_by_team(self, team_id: str) -> list[models.Membership]:
        """The memberships of a team."""
        return self.find(team_id=team_id)

    def get_user_organisations(self, user_id: str) -> list[models.Organisation]:
        """The organisations the user is a member of, once each."""
        with self.db.store.lock:
            organisation_ids = sorted({m.organisation_id for m in self.find_by_user(user_id)})
            return self._load_all(models.Organisation, organisation_ids)

    def get_user_teams(self, user_id: str, organisation_id: str | None = None) -> list[models.Team]:
        """The teams the user is a member of, in one organisation or in all."""
        with self.db.store.lock:
            team_ids = sorted(
                {
                    m.team_id
                    for m in self.find_by_user(user_id)
                    if m.team_id is not None
                    and (organisation_id is None or m.organisation_id == organisation_id)
                }
            )
            return self._load_all(models.Team, team_ids)

    def _check_membership(self, membership: models.Membership, *, moved: bool = True) -> None:
        if membership.team_id is not None:
            team = self.db.repo(models.Team).get(membership.team_id)
            if team is not None and team.organisation_id != membership.organisation_id:
                raise hutch.IntegrityError(
                    f"memberships.team_id = {membership.team_id!r} is a team of organisation "
                    f"{team.organisation_id!r}, not of {membership.organisation_id!r}; give the "
                    "team's own organisation"
                )
        if not moved:
            return
        for other in self.find_by_user(membership.user_id):
            if other.id != membership.id and _place(other) == _place(membership):
                where = "organisation-wide" if membership.team_id is None else "in that team"
                raise hutch.IntegrityError(
                    f"user {membership.user_id!r} is already a member of organisation "
                    f"{membership.organisation_id!r} {where} (membership {other.id!r}); update "
                    "that membership instead",
                    row_id=other.id,
                )


def _place(membership: models.Membership) -> tuple[str, str, str | None]:
    """What no two memberships may share."""
    return membership.user_id, membership.organisation_id, membership.team_id


class FileRepository(PlatformRepository["models.File"]):
    """Files by project and by resource."""

    def check(self, instance: models.File, previous: models.File | None = None) -> None:
        """On every write, a file attached to a resource and a project names the resource's
        project."""
        super().check(instance, previous)
        self._check_file(instance)

    def find_by_project(self, project_id: str) -> list[models.File]:
        """The files attached to a project (directly, with or without a resource)."""
        return self.find(project_id=project_id)

    def find_by_resource(self, resource_id: str) -> list[models.File]:
        """The files attached to a resource."""
        return self.find(resource_id=resource_id)

    def _check_file(self, file: models.File) -> None:
        if file.project_id is None or file.resource_id is None:
            return
        resource = self.db.repo(models.Resource).get(file.resource_id)
        if resource is not None and resource.project_id != file.project_id:
            raise hutch.IntegrityError(
                f"files.resource_id = {file.resource_id!r} is a resource of project "
                f"{resource.project_id!r}, not of files.project_id = {file.project_id!r}; give "
                "the resource's own project, or leave project_id out"
            )


@attrs.frozen
class PlatformRepositories:
    """The platform's repositories of one database, typed for their domain methods.

    ``db.repo(User)`` is typed ``hutch.Repository[User]`` whatever ``__repository__``
    says; ``db.repo(User, UserRepository)`` is typed for ``find_by_email``. This holds
    all seven that way: ``repos = PlatformRepositories.of(db); repos.users.find_by_email(...)``.
    """

    users: UserRepository
    organisations: OrganisationRepository
    teams: TeamRepository
    projects: ProjectRepository
    resources: ResourceRepository
    memberships: MembershipRepository
    files: FileRepository

    @classmethod
    def of(cls, db: Database) -> PlatformRepositories:
        """The repositories of ``db`` (the same objects ``db.repo(Model)`` returns)."""
        return cls(
            users=db.repo(models.User, UserRepository),
            organisations=db.repo(models.Organisation, OrganisationRepository),
            teams=db.repo(models.Team, TeamRepository),
            projects=db.repo(models.Project, ProjectRepository),
            resources=db.repo(models.Resource, ResourceRepository),
            memberships=db.repo(models.Membership, MembershipRepository),
            files=db.repo(models.File, FileRepository),
        )
