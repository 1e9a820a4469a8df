"""A tour of the platform plugin: build a small platform, ask it questions, delete things.

Run it with ``python examples/platform_tour.py [URL]``; the default URL is ``./data``.
It clears the platform's collections first, so it can run again and again on one folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime

import hutch
from hutch.plugins.platform import (
    MODELS,
    MembershipRole,
    PlatformRepositories,
    ProjectStatus,
    ResourceStatus,
    ResourceType,
    StorageTier,
    UserRole,
)


def listed(things: Iterable[object], field: str = "name") -> str:
    """Names (or another field) of what a query returned, sorted, for printing."""
    return ", ".join(sorted(str(getattr(thing, field)) for thing in things)) or "(none)"


def clear(db: hutch.Database) -> int:
    """Delete every row of the platform's collections (rows of a previous run)."""
    store = db.store
    collections = [model.__collection__ for model in MODELS]
    found = sum(store.get_row_count(collection) for collection in collections)
    with store.transaction():
        for collection in collections:
            store.del_table(collection)
    return found


def main(url: str) -> None:
    with hutch.open(url, plugins=["platform"]) as db:  # the domain plugin acts where named
        print(f"opened {db.url}; the platform's models: {listed(db.models.models(), '__name__')}")
        print(f"cleared {clear(db)} rows of an earlier run")
        r = PlatformRepositories.of(db)

        # People: one user per mailbox, by the email rule (case and spaces do not count).
        ada = r.users.create(
            email="Ada@Example.org",
            name="Ada",
            role=UserRole.ADMIN,
            storage_tier=StorageTier.PRO_50GB,
            email_verified=datetime.now(UTC),
        )
        bob = r.users.create(email="bob@example.org", name="Bob")
        cy = r.users.create(email="  cy@example.org ", name="Cy", email_verified=datetime.now(UTC))
        try:
            r.users.create(email="ADA@example.ORG", name="Ada again")
        except hutch.IntegrityError as error:
            print(f"a second Ada is refused: {error}")

        # Organisations, teams, projects, resources, files.
        acme = r.organisations.create(name="Acme", owner_id=ada.id)
        globex = r.organisations.create(name="Globex", owner_id=bob.id)
        rockets = r.teams.create(name="Rockets", organisation_id=acme.id)
        anvils = r.teams.create(name="Anvils", organisation_id=acme.id)
        website = r.projects.create(name="Website", organisation_id=acme.id)
        r.projects.create(name="Old site", organisation_id=acme.id, status=ProjectStatus.ARCHIVED)
        launch = r.projects.create(name="Launch", organisation_id=globex.id)
        spec = r.resources.create(name="Spec", project_id=website.id, type=ResourceType.DOCUMENT)
        r.resources.create(name="Logs", project_id=website.id, status=ResourceStatus.PROCESSING)
        r.resources.create(name="Plan", project_id=launch.id)
        r.files.create(name="spec.pdf", resource_id=spec.id, size=120_000)
        r.files.create(name="logo.svg", project_id=website.id, size=4_000)

        # Memberships: organisation-wide, or in one team.
        r.memberships.create(user_id=ada.id, organisation_id=acme.id, role=MembershipRole.OWNER)
        r.memberships.create(user_id=bob.id, organisation_id=globex.id, role=MembershipRole.OWNER)
        r.memberships.create(user_id=bob.id, organisation_id=acme.id, team_id=rockets.id)
        r.memberships.create(user_id=cy.id, organisation_id=acme.id, team_id=rockets.id)
        r.memberships.create(user_id=cy.id, organisation_id=acme.id, team_id=anvils.id)

        print("\nusers")
        found = r.users.find_by_email("  ADA@EXAMPLE.ORG")
        print(f"  find_by_email('  ADA@EXAMPLE.ORG'): {found.name if found else None}")
        print(f"  admins: {listed(r.users.find_by_role(UserRole.ADMIN))}")
        print(f"  customers: {listed(r.users.find_by_role('CUSTOMER'))}")
        print(f"  on the free tier: {listed(r.users.find_by_storage_tier(StorageTier.FREE_500MB))}")
        print(f"  verified: {listed(r.users.find_verified())}")
        print(f"  not verified yet: {listed(r.users.find_unverified())}")
        limit = ada.storage_tier.limit_bytes or 0
        print(f"  Ada may store {limit / 1e9:.0f} GB ({ada.storage_tier.value})")

        print("\norganisations")
        print(f"  named 'Acme': {len(r.organisations.find_by_name('Acme'))}")
        print(f"  owned by Bob: {listed(r.organisations.find_by_owner(bob.id))}")
        print(f"  Acme's teams: {listed(r.organisations.get_teams(acme.id))}")
        print(f"  Acme's projects: {listed(r.organisations.get_projects(acme.id))}")
        print(f"  Acme's members: {listed(r.organisations.get_members(acme.id))}")
        print(f"  Rockets' members: {listed(r.teams.get_members(rockets.id))}")
        print(f"  find_by_organisation(Acme): {listed(r.teams.find_by_organisation(acme.id))}")

        print("\nprojects and resources")
        print(f"  Acme's projects: {listed(r.projects.find_by_organisation(acme.id))}")
        print(f"  active projects: {listed(r.projects.find_by_status(ProjectStatus.ACTIVE))}")
        print(f"  archived projects: {listed(r.projects.find_by_status('ARCHIVED'))}")
        print(f"  Website's resources: {listed(r.projects.get_resources(website.id))}")
        print(f"  ...by project: {listed(r.resources.find_by_project(website.id))}")
        print(f"  processing: {listed(r.resources.find_by_status(ResourceStatus.PROCESSING))}")
        website_files = r.files.find_by_project(website.id) + r.files.find_by_resource(spec.id)
        print(f"  Website's files: {listed(website_files)}")

        print("\nmemberships")
        print(f"  Cy's memberships: {len(r.memberships.find_by_user(cy.id))}")
        print(f"  in Acme: {len(r.memberships.find_by_organisation(acme.id))}")
        print(f"  in Rockets: {len(r.memberships.find_by_team(rockets.id))}")
        print(f"  Bob's organisations: {listed(r.memberships.get_user_organisations(bob.id))}")
        print(f"  Cy's teams: {listed(r.memberships.get_user_teams(cy.id))}")
        print(f"  Bob's teams in Acme: {listed(r.memberships.get_user_teams(bob.id, acme.id))}")

        print("\ndelete policies")
        try:
            r.users.delete(ada.id)
        except hutch.IntegrityError as error:
            print(f"  restrict: {error}")
        r.teams.delete(anvils.id)
        teams = listed(r.memberships.get_user_teams(cy.id))
        print(f"  set_null: Anvils deleted; Cy's teams now: {teams}")
        print(f"  ...and Cy is still in: {listed(r.memberships.get_user_organisations(cy.id))}")
        r.projects.delete(website.id)
        left = f"resources left: {r.resources.count()}, files left: {r.files.count()}"
        print(f"  cascade: Website deleted; {left}")
        r.organisations.update(acme.id, owner_id=cy.id)
        r.users.delete(ada.id)
        memberships = len(r.memberships.find_by_user(ada.id))
        print(f"  Acme moved to Cy, so Ada could go; her memberships left: {memberships}")
        durable = db.capabilities.durable
        counts = {model.__collection__: db.repo(model).count() for model in MODELS}

    print(f"\nrows: {counts}")
    if durable:
        with hutch.open(url, plugins=["platform"]) as db:
            again = PlatformRepositories.of(db)
            found = again.users.find_by_email("cy@example.org")
            print(
                f"reopened {db.url}: {again.users.count()} users; Cy owns "
                f"{listed(again.organisations.find_by_owner(found.id) if found else [])}"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "./data")
