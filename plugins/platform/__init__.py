"""The platform plugin: the entity models of the web platform hutch was born to serve.

Users, organisations, teams, projects, resources, memberships and files, with
their repositories (see docs/platform.md). Installed with hutch as a domain
plugin (the ``hutch.domains`` entry-point group), exactly as a third-party one
would be: it acts on a database only when the application names it, and then
the database knows these models, their indexes and their delete policies as
soon as it opens::

    with hutch.open("memory://", plugins=["platform"]) as db:
        users = db.repo(User)
        ada = users.create(email="ada@example.org", name="Ada")
        assert users.find_by_email(" ADA@example.org") == ada

Unnamed, the models still work: ``db.repo(Model)`` registers the model it is
given on first use, and with it the other six (its ``__family__``), so every
delete policy holds.
"""

from __future__ import annotations

from collections.abc import Callable

import hutch

from .email_review import EmailClash, EmailReview
from .emails import email_key, normalise_email
from .enums import (
    MembershipRole,
    ProjectStatus,
    ResourceStatus,
    ResourceType,
    StorageTier,
    UserRole,
)
from .models import (
    MODELS,
    File,
    Membership,
    Organisation,
    Project,
    Resource,
    Team,
    User,
)
from .repositories import (
    FileRepository,
    MembershipRepository,
    OrganisationRepository,
    PlatformRepositories,
    PlatformRepository,
    ProjectRepository,
    ResourceRepository,
    TeamRepository,
    UserRepository,
)

__all__ = [
    "MODELS",
    "EmailClash",
    "EmailReview",
    "File",
    "FileRepository",
    "Membership",
    "MembershipRepository",
    "MembershipRole",
    "Organisation",
    "OrganisationRepository",
    "PlatformRepositories",
    "PlatformRepository",
    "Project",
    "ProjectRepository",
    "ProjectStatus",
    "Resource",
    "ResourceRepository",
    "ResourceStatus",
    "ResourceType",
    "StorageTier",
    "Team",
    "TeamRepository",
    "User",
    "UserRepository",
    "UserRole",
    "email_key",
    "hutch_register_models",
    "normalise_email",
]


@hutch.hookimpl
def hutch_register_models(register: Callable[[type[hutch.Model]], None]) -> None:
    """Register the seven platform models with a database that names the plugin."""
    for model in MODELS:
        register(model)
