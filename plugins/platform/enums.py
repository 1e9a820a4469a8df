"""The platform's closed vocabularies: roles, storage tiers and statuses.

Every enum is an :class:`enum.Enum` whose values are the members' names, so
a row stores ``"ADMIN"`` and a filter may say ``role=UserRole.ADMIN`` or
``role="ADMIN"``.
"""

from __future__ import annotations

import enum


class UserRole(enum.Enum):
    """What a user may do on the platform as a whole (not within an organisation)."""

    GUEST = "GUEST"
    CUSTOMER = "CUSTOMER"
    ADMIN = "ADMIN"


class StorageTier(enum.Enum):
    """How much a user may store; :attr:`limit_bytes` is the quota (SI units)."""

    FREE_500MB = "FREE_500MB"
    BASIC_5GB = "BASIC_5GB"
    PRO_50GB = "PRO_50GB"
    ENTERPRISE_500GB = "ENTERPRISE_500GB"
    UNLIMITED = "UNLIMITED"

    @property
    def limit_bytes(self) -> int | None:
        """The quota in bytes (1 MB = 10**6 bytes), or ``None`` for :attr:`UNLIMITED`."""
        return _LIMITS[self]


_MB, _GB = 10**6, 10**9
_LIMITS: dict[StorageTier, int | None] = {
    StorageTier.FREE_500MB: 500 * _MB,
    StorageTier.BASIC_5GB: 5 * _GB,
    StorageTier.PRO_50GB: 50 * _GB,
    StorageTier.ENTERPRISE_500GB: 500 * _GB,
    StorageTier.UNLIMITED: None,
}


class MembershipRole(enum.Enum):
    """What a member may do within an organisation (or one of its teams)."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"


class ProjectStatus(enum.Enum):
    """Where a project is in its life; new projects are ``ACTIVE``."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


class ResourceType(enum.Enum):
    """What kind of thing a resource is; ``OTHER`` when nobody said."""

    DOCUMENT = "DOCUMENT"
    DATASET = "DATASET"
    FOLDER = "FOLDER"
    LINK = "LINK"
    SERVICE = "SERVICE"
    OTHER = "OTHER"


class ResourceStatus(enum.Enum):
    """Whether a resource can be used; new resources are ``ACTIVE``."""

    ACTIVE = "ACTIVE"
    PROCESSING = "PROCESSING"
    FAILED = "FAILED"
    ARCHIVED = "ARCHIVED"
