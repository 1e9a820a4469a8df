"""The platform plugin: its models, repositories, rules and delete policies, on memory and files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import hutch
from hutch.plugins.platform import (
    MODELS,
    File,
    MembershipRole,
    Organisation,
    PlatformRepositories,
    ProjectStatus,
    ResourceStatus,
    ResourceType,
    StorageTier,
    Team,
    User,
    UserRepository,
    UserRole,
)
from hutch.plugins.platform.repositories import UNVERIFIED_INDEX

COLLECTIONS = ("users", "organisations", "teams", "projects", "resources", "memberships", "files")


class Env:
    """A database on one backend, with a way to close and reopen it (a no-op for memory)."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.db = self._open()

    def _open(self) -> hutch.Database:
        return hutch.open(
            "memory://" if self.backend == "memory" else self.root, plugins=["platform"]
        )

    @property
    def r(self) -> PlatformRepositories:
        return PlatformRepositories.of(self.db)

    def reopen(self) -> None:
        """Close and open again, so what follows reads what the backend kept."""
        if self.backend == "file":
            self.db.close()
            self.db = self._open()

    def counts(self) -> dict[str, int]:
        return {c: self.db.store.get_row_count(c) for c in COLLECTIONS}


@pytest.fixture(params=["memory", "file"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    opened = Env(request.param, tmp_path / "data")
    yield opened
    opened.db.close()


@attrs.frozen
class World:
    """The ids of a small platform: two organisations, their people and their work."""

    ada: str  # owns acme; verified admin
    bob: str  # owns globex; member of acme's rockets team
    cy: str  # member of acme (organisation-wide) and of globex's ops team; unverified
    acme: str
    globex: str
    rockets: str  # acme
    anvils: str  # acme
    ops: str  # globex
    website: str  # acme, active
    archive: str  # acme, archived
    launch: str  # globex, active
    spec: str  # website resource, active
    data: str  # website resource, processing
    logs: str  # launch resource, active


@pytest.fixture
def world(env: Env) -> World:
    r = env.r
    now = datetime.now(UTC)
    ada = r.users.create(
        email="Ada@Example.org", name="Ada", role=UserRole.ADMIN, email_verified=now
    )
    bob = r.users.create(email="bob@example.org", name="Bob", storage_tier=StorageTier.PRO_50GB)
    cy = r.users.create(email="cy@example.org", name="Cy")
    acme = r.organisations.create(name="Acme", owner_id=ada.id)
    globex = r.organisations.create(name="Globex", owner_id=bob.id)
    rockets = r.teams.create(name="Rockets", organisation_id=acme.id)
    anvils = r.teams.create(name="Anvils", organisation_id=acme.id)
    ops = r.teams.create(name="Ops", organisation_id=globex.id)
    website = r.projects.create(name="Website", organisation_id=acme.id)
    archive = r.projects.create(
        name="Archive", organisation_id=acme.id, status=ProjectStatus.ARCHIVED
    )
    launch = r.projects.create(name="Launch", organisation_id=globex.id)
    spec = r.resources.create(name="Spec", project_id=website.id, type=ResourceType.DOCUMENT)
    data = r.resources.create(name="Data", project_id=website.id, status="PROCESSING")
    logs = r.resources.create(name="Logs", project_id=launch.id)
    r.memberships.create(user_id=ada.id, organisation_id=acme.id, role=MembershipRole.OWNER)
    r.memberships.create(user_id=bob.id, organisation_id=globex.id, role=MembershipRole.OWNER)
    r.memberships.create(user_id=bob.id, organisation_id=acme.id, team_id=rockets.id)
    r.memberships.create(user_id=cy.id, organisation_id=acme.id, role=MembershipRole.VIEWER)
    r.memberships.create(user_id=cy.id, organisation_id=globex.id, team_id=ops.id)
    r.files.create(name="spec.pdf", resource_id=spec.id, size=1200, content_type="application/pdf")
    r.files.create(name="logo.png", project_id=website.id, size=300)
    r.files.create(name="logs.txt", project_id=launch.id, resource_id=logs.id)
    return World(
        ada=ada.id,
        bob=bob.id,
        cy=cy.id,
        acme=acme.id,
        globex=globex.id,
        rockets=rockets.id,
        anvils=anvils.id,
        ops=ops.id,
        website=website.id,
        archive=archive.id,
        launch=launch.id,
        spec=spec.id,
        data=data.id,
        logs=logs.id,
    )


def ids(instances: list[Any]) -> list[str]:
    """The ids of what a query returned, which comes in id order."""
    found = [instance.id for instance in instances]
    assert found == sorted(found), "results come in id order"
    return found


def names(instances: list[Any]) -> list[str]:
    return sorted(instance.name for instance in instances)


# -- the plugin ---------------------------------------------------------------------------------


def test_the_plugin_named_registers_every_model_when_a_database_opens(env: Env) -> None:
    assert set(MODELS) <= set(env.db.models.models())  # other installed plugins may add theirs
    assert {"users.email.key", "users.role", "projects.status"} <= set(env.db.indexes.index_ids())
    assert "memberships.team_id" in env.db.relationships.relationship_ids()
    assert [name for name, _ in env.db.plugins.list_name_plugin() if name == "platform"]


def test_unnamed_any_model_of_the_plugin_brings_every_one_and_its_delete_policy(
    tmp_path: Path,
) -> None:
    """Not named, the plugin adds nothing to a database; ``db.repo`` of any platform model
    registers all seven, so no delete breaks a policy of a model the process has not used."""
    folder = tmp_path / "data"
    with hutch.open(folder, plugins=["platform"]) as db:
        r = PlatformRepositories.of(db)
        ada = r.users.create(email="ada@example.org")
        acme = r.organisations.create(name="Acme", owner_id=ada.id)
        globex = r.organisations.create(name="Globex", owner_id=ada.id)
        r.teams.create(name="Rockets", organisation_id=acme.id)
        r.teams.create(name="Ops", organisation_id=globex.id)
    with hutch.open(folder) as db:
        assert db.models.models() == []
        assert db.indexes.index_ids() == []
        with pytest.raises(
            hutch.IntegrityError, match=r"organisations .* \(on_delete='restrict'\)"
        ):
            db.repo(User).delete(ada.id)  # Organisation, never used here, still restricts it
        assert set(db.models.models()) == set(MODELS)
        assert db.repo(User, UserRepository).find_by_email("ADA@example.org") == ada
        db.repo(Organisation).delete(acme.id)
        assert [row["name"] for row in db.store.get_table("teams").values()] == ["Ops"]


def test_each_model_names_its_repository(env: Env) -> None:
    r = env.r
    assert isinstance(env.db.repo(User), UserRepository)
    assert r.users is env.db.repo(User)
    assert r.files is env.db.repo(File)


def test_enum_values_are_their_names() -> None:
    for kind in (UserRole, StorageTier, MembershipRole, ProjectStatus, ResourceType):
        assert [m.value for m in kind] == [m.name for m in kind]
    assert [m.value for m in ResourceStatus] == [m.name for m in ResourceStatus]
    assert [m.name for m in UserRole] == ["GUEST", "CUSTOMER", "ADMIN"]
    assert [m.name for m in StorageTier] == [
        "FREE_500MB",
        "BASIC_5GB",
        "PRO_50GB",
        "ENTERPRISE_500GB",
        "UNLIMITED",
    ]


def test_storage_tiers_have_limits() -> None:
    assert StorageTier.FREE_500MB.limit_bytes == 500_000_000
    assert StorageTier.PRO_50GB.limit_bytes == 50_000_000_000
    assert StorageTier.UNLIMITED.limit_bytes is None


# -- defaults and round trips -------------------------------------------------------------------


def test_defaults(env: Env) -> None:
    r = env.r
    user = r.users.create(email="dee@example.org")
    assert (user.name, user.image, user.password_hash, user.email_verified) == (None,) * 4
    assert user.role is UserRole.CUSTOMER
    assert user.storage_tier is StorageTier.FREE_500MB
    organisation = r.organisations.create(name="Dee's", owner_id=user.id)
    project = r.projects.create(name="P", organisation_id=organisation.id)
    assert project.status is ProjectStatus.ACTIVE
    resource = r.resources.create(name="R", project_id=project.id)
    assert (resource.type, resource.status) == (ResourceType.OTHER, ResourceStatus.ACTIVE)
    membership = r.memberships.create(user_id=user.id, organisation_id=organisation.id)
    assert (membership.team_id, membership.role) == (None, MembershipRole.MEMBER)
    file = r.files.create(name="f", project_id=project.id)
    assert (file.resource_id, file.size, file.content_type, file.path) == (
        None,
        0,
        "application/octet-stream",
        "",
    )
    row = env.db.store.get_row("users", user.id)
    assert row is not None
    assert (row["role"], row["storage_tier"]) == ("CUSTOMER", "FREE_500MB")

    env.reopen()
    r = env.r
    assert r.users.get(user.id) == user
    assert r.resources.get(resource.id) == resource
    assert r.memberships.get(membership.id) == membership
    assert r.files.get(file.id) == file


def test_a_user_round_trips_every_field(env: Env) -> None:
    verified = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    user = env.r.users.create(
        email="eve@example.org",
        name="Eve",
        image="https://example.org/eve.png",
        password_hash="argon2id$v=19$...",
        email_verified=verified,
        role="GUEST",
        storage_tier="ENTERPRISE_500GB",
    )
    env.reopen()
    again = env.r.users.get(user.id)
    assert again == user
    assert again is not None
    assert again.email_verified == verified
    assert (again.role, again.storage_tier) == (UserRole.GUEST, StorageTier.ENTERPRISE_500GB)


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "email"),
        ({"email": 3}, "email"),
        ({"email": "not-an-address"}, "*"),
        ({"email": "two words@example.org"}, "*"),
        ({"email": "a@x.io", "role": "SUPERUSER"}, "role"),
        ({"email": "a@x.io", "storage_tier": "HUGE"}, "storage_tier"),
        ({"email": "a@x.io", "email_verified": "yesterday"}, "email_verified"),
        ({"email": "a@x.io", "nickname": "al"}, "nickname"),
    ],
)
def test_invalid_users_are_refused(env: Env, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(hutch.ValidationError) as caught:
        env.r.users.create(**fields)
    assert field in caught.value.errors
    assert env.db.store.get_row_count("users") == 0


def test_invalid_rows_of_other_models_are_refused(env: Env, world: World) -> None:
    r = env.r
    before = env.counts()
    with pytest.raises(hutch.ValidationError, match="name must not be blank"):
        r.organisations.create(name="  ", owner_id=world.ada)
    with pytest.raises(hutch.ValidationError) as caught:
        r.teams.create(name="Lost")
    assert "organisation_id" in caught.value.errors
    with pytest.raises(hutch.ValidationError) as caught:
        r.projects.create(name="P", organisation_id=world.acme, status="DONE")
    assert "status" in caught.value.errors
    with pytest.raises(hutch.ValidationError) as caught:
        r.resources.create(name="R", project_id=world.website, type="SPREADSHEET")
    assert "type" in caught.value.errors
    with pytest.raises(hutch.ValidationError) as caught:
        r.memberships.create(user_id=world.cy, organisation_id=world.acme, role="KING")
    assert "role" in caught.value.errors
    with pytest.raises(hutch.ValidationError, match="size"):
        r.files.create(name="f", project_id=world.website, size=-1)
    with pytest.raises(hutch.ValidationError) as caught:
        r.files.create(name="f", project_id=world.website, size="10")
    assert "size" in caught.value.errors
    assert env.counts() == before


def test_a_file_needs_a_project_or_a_resource(env: Env, world: World) -> None:
    r = env.r
    with pytest.raises(hutch.ValidationError, match="give project_id, resource_id or both"):
        r.files.create(name="orphan.txt")
    file = r.files.create(name="notes.txt", project_id=world.website)
    with pytest.raises(hutch.ValidationError, match="belongs to a project or a resource"):
        r.files.update(file.id, project_id=None)
    assert r.files.get(file.id) == file
    moved = r.files.update(file.id, project_id=None, resource_id=world.spec)
    assert (moved.project_id, moved.resource_id) == (None, world.spec)


def test_a_files_resource_belongs_to_its_project(env: Env, world: World) -> None:
    r = env.r
    with pytest.raises(hutch.IntegrityError, match="is a resource of project"):
        r.files.create(name="x", project_id=world.launch, resource_id=world.spec)
    file = r.files.create(name="x", project_id=world.website, resource_id=world.spec)
    with pytest.raises(hutch.IntegrityError, match="is a resource of project"):
        r.files.update(file.id, resource_id=world.logs)
    assert r.files.get(file.id) == file


# -- emails ---------------------------------------------------------------------------------------


def test_find_by_email_finds_nobody_for_an_unknown_address(env: Env, world: World) -> None:
    assert env.r.users.find_by_email("nobody@example.org") is None
    assert env.r.users.find_by_email("") is None
    assert env.r.users.find_by_email("ada@example.com") is None


def test_uniqueness_holds_after_reopening(env: Env, world: World) -> None:
    env.reopen()
    with pytest.raises(hutch.IntegrityError, match="must be unique"):
        env.r.users.create(email="ADA@example.org")


def test_a_user_may_change_the_case_of_their_own_email(env: Env, world: World) -> None:
    ada = env.r.users.update(world.ada, email="ada@example.org")
    assert ada.email == "ada@example.org"
    assert env.r.users.find_by_email("ADA@EXAMPLE.ORG") == ada


# -- users ----------------------------------------------------------------------------------------


def test_find_by_role(env: Env, world: World) -> None:
    users = env.r.users
    assert ids(users.find_by_role(UserRole.ADMIN)) == [world.ada]
    assert ids(users.find_by_role("CUSTOMER")) == sorted([world.bob, world.cy])
    assert users.find_by_role(UserRole.GUEST) == []
    users.update(world.cy, role=UserRole.GUEST)
    env.reopen()
    assert ids(env.r.users.find_by_role(UserRole.GUEST)) == [world.cy]
    assert ids(env.r.users.find_by_role(UserRole.CUSTOMER)) == [world.bob]


def test_find_by_storage_tier(env: Env, world: World) -> None:
    users = env.r.users
    assert ids(users.find_by_storage_tier(StorageTier.FREE_500MB)) == sorted([world.ada, world.cy])
    assert ids(users.find_by_storage_tier("PRO_50GB")) == [world.bob]
    assert users.find_by_storage_tier(StorageTier.UNLIMITED) == []


def test_find_verified_and_unverified(env: Env, world: World) -> None:
    users = env.r.users
    assert ids(users.find_verified()) == [world.ada]
    assert ids(users.find_unverified()) == sorted([world.bob, world.cy])
    users.update(world.cy, email_verified=datetime.now(UTC) - timedelta(days=1))
    assert ids(users.find_verified()) == sorted([world.ada, world.cy])
    assert ids(users.find_unverified()) == [world.bob]
    users.update(world.ada, email_verified=None)
    env.reopen()
    assert ids(env.r.users.find_verified()) == [world.cy]
    assert ids(env.r.users.find_unverified()) == sorted([world.ada, world.bob])
    assert UNVERIFIED_INDEX in env.db.indexes.index_ids()


def test_find_verified_inside_the_first_transaction(env: Env) -> None:
    # The repository cannot define its index inside a transaction; it still answers.
    env.reopen()
    verified = datetime.now(UTC)
    with env.db.store.transaction():
        users = env.r.users
        assert UNVERIFIED_INDEX not in env.db.indexes.index_ids()
        a = users.create(email="a@x.io", email_verified=verified)
        b = users.create(email="b@x.io", email_verified=verified)
        c = users.create(email="c@x.io")
        assert ids(users.find_verified()) == sorted([a.id, b.id])
        assert ids(users.find_unverified()) == [c.id]
    assert ids(users.find_verified()) == sorted([a.id, b.id])
    assert UNVERIFIED_INDEX in env.db.indexes.index_ids()


# -- organisations, teams, projects, resources ----------------------------------------------------


def test_organisation_queries(env: Env, world: World) -> None:
    organisations = env.r.organisations
    assert ids(organisations.find_by_name("Acme")) == [world.acme]
    assert organisations.find_by_name("acme") == []  # names are exact
    assert ids(organisations.find_by_owner(world.bob)) == [world.globex]
    assert organisations.find_by_owner(world.cy) == []
    assert names(organisations.get_teams(world.acme)) == ["Anvils", "Rockets"]
    assert names(organisations.get_projects(world.acme)) == ["Archive", "Website"]
    assert ids(organisations.get_members(world.acme)) == sorted([world.ada, world.bob, world.cy])
    assert organisations.get_teams("no-such-organisation") == []


def test_team_queries(env: Env, world: World) -> None:
    teams = env.r.teams
    assert ids(teams.find_by_organisation(world.acme)) == sorted([world.rockets, world.anvils])
    assert ids(teams.find_by_organisation(world.globex)) == [world.ops]
    assert ids(teams.get_members(world.rockets)) == [world.bob]
    assert teams.get_members(world.anvils) == []
    env.r.memberships.create(user_id=world.ada, organisation_id=world.acme, team_id=world.anvils)
    env.r.memberships.create(user_id=world.cy, organisation_id=world.acme, team_id=world.anvils)
    env.reopen()
    assert ids(env.r.teams.get_members(world.anvils)) == sorted([world.ada, world.cy])


def test_project_queries(env: Env, world: World) -> None:
    projects = env.r.projects
    assert ids(projects.find_by_organisation(world.acme)) == sorted([world.website, world.archive])
    assert ids(projects.find_by_status(ProjectStatus.ACTIVE)) == sorted(
        [world.website, world.launch]
    )
    assert ids(projects.find_by_status("ARCHIVED")) == [world.archive]
    assert names(projects.get_resources(world.website)) == ["Data", "Spec"]
    assert projects.get_resources(world.archive) == []
    projects.update(world.launch, status=ProjectStatus.PAUSED)
    env.reopen()
    assert ids(env.r.projects.find_by_status(ProjectStatus.PAUSED)) == [world.launch]
    assert ids(env.r.projects.find_by_status(ProjectStatus.ACTIVE)) == [world.website]


def test_resource_queries(env: Env, world: World) -> None:
    resources = env.r.resources
    assert ids(resources.find_by_project(world.website)) == sorted([world.spec, world.data])
    assert ids(resources.find_by_status(ResourceStatus.ACTIVE)) == sorted([world.spec, world.logs])
    assert ids(resources.find_by_status("PROCESSING")) == [world.data]
    resources.update(world.data, status=ResourceStatus.FAILED)
    assert ids(resources.find_by_status(ResourceStatus.FAILED)) == [world.data]
    assert resources.find_by_status(ResourceStatus.PROCESSING) == []


def test_file_queries(env: Env, world: World) -> None:
    files = env.r.files
    assert names(files.find_by_project(world.website)) == ["logo.png"]
    assert names(files.find_by_project(world.launch)) == ["logs.txt"]
    assert names(files.find_by_resource(world.spec)) == ["spec.pdf"]
    assert names(files.find_by_resource(world.logs)) == ["logs.txt"]


# -- memberships ----------------------------------------------------------------------------------


def test_membership_queries(env: Env, world: World) -> None:
    memberships = env.r.memberships
    assert {(m.organisation_id, m.team_id) for m in memberships.find_by_user(world.bob)} == {
        (world.globex, None),
        (world.acme, world.rockets),
    }
    assert {m.user_id for m in memberships.find_by_organisation(world.acme)} == {
        world.ada,
        world.bob,
        world.cy,
    }
    assert len(memberships.find_by_organisation(world.acme)) == 3
    assert [m.user_id for m in memberships.find_by_team(world.ops)] == [world.cy]
    assert memberships.find_by_team(world.anvils) == []


def test_a_users_organisations_and_teams(env: Env, world: World) -> None:
    memberships = env.r.memberships
    assert ids(memberships.get_user_organisations(world.cy)) == sorted([world.acme, world.globex])
    assert ids(memberships.get_user_organisations(world.ada)) == [world.acme]
    assert ids(memberships.get_user_teams(world.cy)) == [world.ops]
    assert memberships.get_user_teams(world.cy, organisation_id=world.acme) == []
    assert ids(memberships.get_user_teams(world.cy, world.globex)) == [world.ops]
    memberships.create(user_id=world.cy, organisation_id=world.acme, team_id=world.rockets)
    env.reopen()
    memberships = env.r.memberships
    assert ids(memberships.get_user_teams(world.cy)) == sorted([world.rockets, world.ops])
    assert ids(memberships.get_user_teams(world.cy, world.acme)) == [world.rockets]
    assert ids(memberships.get_user_organisations(world.cy)) == sorted([world.acme, world.globex])
    assert memberships.get_user_organisations("nobody") == []


def test_a_membership_is_unique_per_user_organisation_and_team(env: Env, world: World) -> None:
    memberships = env.r.memberships
    before = env.counts()
    with pytest.raises(hutch.IntegrityError, match=r"already a member .* organisation-wide"):
        memberships.create(user_id=world.cy, organisation_id=world.acme, role="ADMIN")
    with pytest.raises(hutch.IntegrityError, match=r"already a member .* in that team"):
        memberships.create(user_id=world.bob, organisation_id=world.acme, team_id=world.rockets)
    extra = memberships.create(user_id=world.bob, organisation_id=world.acme)
    with pytest.raises(hutch.IntegrityError, match="already a member"):
        memberships.update(extra.id, team_id=world.rockets)
    assert memberships.get(extra.id) == extra
    promoted = memberships.update(extra.id, role=MembershipRole.ADMIN)
    assert promoted.role is MembershipRole.ADMIN
    assert env.counts() == {**before, "memberships": before["memberships"] + 1}


def test_a_membership_team_belongs_to_its_organisation(env: Env, world: World) -> None:
    before = env.counts()
    with pytest.raises(hutch.IntegrityError, match="is a team of organisation"):
        env.r.memberships.create(user_id=world.ada, organisation_id=world.acme, team_id=world.ops)
    assert env.counts() == before


# -- foreign keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "fields"),
    [
        ("organisations", {"name": "Ghost Inc", "owner_id": "no-such-user"}),
        ("teams", {"name": "T", "organisation_id": "no-such-organisation"}),
        ("projects", {"name": "P", "organisation_id": "no-such-organisation"}),
        ("resources", {"name": "R", "project_id": "no-such-project"}),
        ("memberships", {"user_id": "no-such-user", "organisation_id": "ACME"}),
        ("memberships", {"user_id": "ADA", "organisation_id": "no-such-organisation"}),
        ("memberships", {"user_id": "ADA", "organisation_id": "ACME", "team_id": "no-such-team"}),
        ("files", {"name": "f", "project_id": "no-such-project"}),
        ("files", {"name": "f", "resource_id": "no-such-resource"}),
    ],
)
def test_foreign_keys_must_point_at_rows(env: Env, collection: str, fields: dict[str, Any]) -> None:
    r = env.r
    ada = r.users.create(id="ADA", email="ada@example.org")
    r.organisations.create(id="ACME", name="Acme", owner_id=ada.id)
    model = {m.__collection__: m for m in MODELS}[collection]
    before = env.counts()
    with pytest.raises(hutch.IntegrityError, match="has no such row; create it first"):
        env.db.repo(model).create(**fields)
    assert env.counts() == before


def test_a_foreign_key_cannot_be_updated_to_a_missing_row(env: Env, world: World) -> None:
    with pytest.raises(hutch.IntegrityError, match="has no such row"):
        env.r.projects.update(world.website, organisation_id="gone")
    project = env.r.projects.get(world.website)
    assert project is not None
    assert project.organisation_id == world.acme


# -- delete policies ------------------------------------------------------------------------------


def test_restrict_an_owner_cannot_be_deleted(env: Env, world: World) -> None:
    before = env.counts()
    with pytest.raises(hutch.IntegrityError, match="on_delete='restrict'"):
        env.r.users.delete(world.ada)
    assert env.counts() == before  # nothing cascaded either
    env.reopen()
    assert env.r.users.exists(world.ada)
    assert len(env.r.memberships.find_by_user(world.ada)) == 1


def test_restrict_lifts_once_ownership_moves(env: Env, world: World) -> None:
    r = env.r
    r.organisations.update(world.acme, owner_id=world.cy)
    assert r.users.delete(world.ada) is True
    assert not r.users.exists(world.ada)
    assert r.memberships.find_by_user(world.ada) == []  # cascade: users -> memberships
    assert r.organisations.exists(world.acme)
    env.reopen()
    assert not env.r.users.exists(world.ada)
    assert env.r.memberships.find_by_user(world.ada) == []


def test_cascade_deleting_an_organisation_takes_everything_under_it(env: Env, world: World) -> None:
    r = env.r
    assert r.organisations.delete(world.acme) is True
    assert r.teams.find_by_organisation(world.acme) == []
    assert r.projects.find_by_organisation(world.acme) == []
    assert r.resources.find_by_project(world.website) == []
    assert r.files.find_by_project(world.website) == []
    assert r.files.find_by_resource(world.spec) == []
    assert r.memberships.find_by_organisation(world.acme) == []
    assert ids(r.memberships.get_user_organisations(world.cy)) == [world.globex]
    env.reopen()
    assert env.counts() == {
        "users": 3,
        "organisations": 1,
        "teams": 1,
        "projects": 1,
        "resources": 1,
        "memberships": 2,
        "files": 1,
    }
    assert env.r.organisations.delete(world.acme) is False


def test_cascade_deleting_a_project_takes_its_resources_and_files(env: Env, world: World) -> None:
    r = env.r
    r.projects.delete(world.website)
    assert not r.resources.exists(world.spec)
    assert not r.resources.exists(world.data)
    assert names(r.files.find_by_project(world.launch)) == ["logs.txt"]
    assert env.counts()["files"] == 1
    assert env.counts()["resources"] == 1


def test_cascade_deleting_a_resource_takes_its_files_only(env: Env, world: World) -> None:
    r = env.r
    r.files.create(name="other.txt", project_id=world.launch)
    r.resources.delete(world.logs)
    assert names(r.files.find_by_project(world.launch)) == ["other.txt"]
    assert r.files.find_by_resource(world.logs) == []
    assert r.projects.exists(world.launch)


def test_cascade_deleting_a_user_takes_their_memberships(env: Env, world: World) -> None:
    r = env.r
    assert r.users.delete(world.cy) is True
    assert r.memberships.find_by_user(world.cy) == []
    assert r.teams.get_members(world.ops) == []
    assert ids(r.organisations.get_members(world.acme)) == sorted([world.ada, world.bob])
    assert r.teams.exists(world.ops)


def test_set_null_deleting_a_team_keeps_its_members_in_the_organisation(
    env: Env, world: World
) -> None:
    r = env.r
    (membership,) = r.memberships.find_by_team(world.rockets)
    assert r.teams.delete(world.rockets) is True
    cleared = r.memberships.get(membership.id)
    assert cleared is not None
    assert (cleared.user_id, cleared.organisation_id, cleared.team_id) == (
        world.bob,
        world.acme,
        None,
    )
    assert cleared.role is membership.role
    assert cleared.updated_at > membership.updated_at
    assert r.memberships.get_user_teams(world.bob, world.acme) == []
    assert ids(r.memberships.get_user_organisations(world.bob)) == sorted(
        [world.acme, world.globex]
    )
    env.reopen()
    again = env.r.memberships.get(membership.id)
    assert again is not None
    assert again.team_id is None
    assert env.r.memberships.find_by_team(world.rockets) == []


def test_set_null_may_leave_duplicates_that_stay_editable(env: Env, world: World) -> None:
    r = env.r
    wide = r.memberships.create(user_id=world.bob, organisation_id=world.acme)
    (in_team,) = r.memberships.find_by_team(world.rockets)
    r.teams.delete(world.rockets)
    assert {m.id for m in r.memberships.find_by_user(world.bob) if m.team_id is None} >= {
        wide.id,
        in_team.id,
    }
    assert ids(r.memberships.get_user_organisations(world.bob)) == sorted(
        [world.acme, world.globex]
    )
    assert ids(r.organisations.get_members(world.acme)) == sorted([world.ada, world.bob, world.cy])
    promoted = r.memberships.update(in_team.id, role=MembershipRole.ADMIN)  # the role only
    assert promoted.role is MembershipRole.ADMIN
    with pytest.raises(hutch.IntegrityError, match="already a member"):
        r.memberships.update(wide.id, organisation_id=world.globex)  # bob is there already
    assert r.memberships.delete(wide.id) is True


def test_policies_apply_before_any_repository_of_the_pointing_models_exists(env: Env) -> None:
    # The plugin registers every model when the database opens, so deleting through one
    # repository follows the policies of models whose repositories nobody has made.
    store = env.db.store
    with store.transaction():
        store.set_row("users", "u1", {"email": "u@x.io"})
        store.set_row("organisations", "o1", {"name": "O", "owner_id": "u1"})
        store.set_row("teams", "t1", {"name": "T", "organisation_id": "o1"})
        store.set_row("memberships", "m1", {"user_id": "u1", "organisation_id": "o1"})
        store.set_partial_row("memberships", "m1", {"team_id": "t1"})
        store.set_row("projects", "p1", {"name": "P", "organisation_id": "o1"})
        store.set_row("resources", "r1", {"name": "R", "project_id": "p1"})
        store.set_row("files", "f1", {"name": "F", "resource_id": "r1"})
    env.reopen()
    with pytest.raises(hutch.IntegrityError, match="restrict"):
        env.db.repo(User).delete("u1")
    env.db.repo(Team).delete("t1")
    assert env.db.store.get_cell("memberships", "m1", "team_id", "missing") is None
    env.db.repo(Organisation).delete("o1")
    assert env.counts() == {**dict.fromkeys(COLLECTIONS, 0), "users": 1}


# -- no scans -------------------------------------------------------------------------------------


def test_no_repository_method_scans_a_collection(
    env: Env, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = env.db.store
    scan = store.get_row_ids

    def refuse_platform_scans(table_id: str) -> list[str]:
        assert table_id not in COLLECTIONS, f"a repository scanned {table_id}"
        return scan(table_id)

    r = env.r
    monkeypatch.setattr(store, "get_row_ids", refuse_platform_scans)
    assert r.users.find_by_email("ADA@example.org") is not None
    assert r.users.find_by_role(UserRole.ADMIN)
    assert r.users.find_by_storage_tier(StorageTier.FREE_500MB)
    assert r.users.find_verified()
    assert r.users.find_unverified()
    assert r.organisations.find_by_name("Acme")
    assert r.organisations.find_by_owner(world.ada)
    assert r.organisations.get_teams(world.acme)
    assert r.organisations.get_projects(world.acme)
    assert r.organisations.get_members(world.acme)
    assert r.teams.find_by_organisation(world.acme)
    assert r.teams.get_members(world.rockets)
    assert r.projects.find_by_organisation(world.acme)
    assert r.projects.find_by_status(ProjectStatus.ACTIVE)
    assert r.projects.get_resources(world.website)
    assert r.resources.find_by_project(world.website)
    assert r.resources.find_by_status(ResourceStatus.ACTIVE)
    assert r.memberships.find_by_user(world.cy)
    assert r.memberships.find_by_organisation(world.acme)
    assert r.memberships.find_by_team(world.ops)
    assert r.memberships.get_user_organisations(world.cy)
    assert r.memberships.get_user_teams(world.cy, world.globex)
    assert r.files.find_by_project(world.website)
    assert r.files.find_by_resource(world.spec)
    r.memberships.create(user_id=world.ada, organisation_id=world.acme, team_id=world.anvils)
    r.files.create(name="n", project_id=world.website, resource_id=world.spec)
