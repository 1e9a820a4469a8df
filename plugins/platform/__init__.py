"""The platform plugin: the entity models of the web platform hutch was born to serve.

Users, organisations, teams, projects, resources, memberships and files, with
their repositories (see docs/platform.md). Installed with hutch and registered
through the ``hutch`` entry-point group, exactly as a third-party plugin would
be, so every database knows these models, their indexes and their delete
policies as soon as it opens::

    with hutch.open("memory://") as db:
        users = db.repo(User)
        ada = users.create(email="ada@example.org", name="Ada")
        assert users.find_by_email(" ADA@example.org") == ada
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
    """Register the seven platform models with every database that opens."""
    for model in MODELS:
        register(model)
