"""Source databases for the ``hutch import-sql`` tests: what the importer reads from.

- :func:`create_prisma_platform` makes what a Next.js platform built with Prisma 6
  and Auth.js v5's Prisma adapter leaves in PostgreSQL: the tables of
  :data:`SCHEMA_PRISMA` made by :data:`PRISMA_PLATFORM_SQL` (the ``migration.sql``
  ``prisma migrate dev`` writes for it), Prisma's own ``_prisma_migrations`` and
  the implicit many-to-many table ``_ProjectToTeam``, filled with realistic,
  deterministic rows (:class:`Expected` says what the tests may count on);
- :func:`add_email_collision` adds a user whose email is another text for an
  existing user's mailbox (by :func:`hutch.plugins.platform.emails.email_key`);
- :func:`create_generic` makes a schema no ORM made: snake_case tables with an
  identity and a serial key, a composite key, no key at all, arrays, ``numeric``,
  ``bytea``, ``uuid``, ``jsonb``, an enum, and a table whose name needs quoting;
- :func:`create_big` makes one table of many rows, server side.

Every function takes a psycopg 3 connection (autocommit or not, not inside a
``conn.transaction()`` block of the caller's), writes in one transaction and
commits it. Tables go where unqualified names go: the first schema of the
connection's ``search_path`` (``public`` by default).

Rows are the same for the same seed, except sessions' and verification tokens'
expiries, which are relative to the time of the call (a session the tests sign in
with must still be valid when they run). Prisma stores ``DateTime`` in
``TIMESTAMP(3)`` (without time zone) as UTC, to the millisecond: so does this module.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from hutch.plugins.platform.emails import email_key

__all__ = [
    "AUTH_TABLES",
    "GENERIC_SQL",
    "GENERIC_TABLES",
    "PLATFORM_TABLES",
    "PRISMA_PLATFORM_SQL",
    "PRISMA_TABLES",
    "SCHEMA_PRISMA",
    "Expected",
    "add_email_collision",
    "create_big",
    "create_generic",
    "create_prisma_platform",
]

#: The schema the platform's developers wrote (Auth.js's models as its Prisma adapter's
#: documentation gives them, with the platform's fields added to ``User``).
SCHEMA_PRISMA = """\
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

enum UserRole {
  GUEST
  CUSTOMER
  ADMIN
}

enum StorageTier {
  FREE_500MB
  BASIC_5GB
  PRO_50GB
  ENTERPRISE_500GB
  UNLIMITED
}

enum MembershipRole {
  OWNER
  ADMIN
  MEMBER
  VIEWER
}

enum ProjectStatus {
  ACTIVE
  PAUSED
  COMPLETED
  ARCHIVED
}

enum ResourceType {
  DOCUMENT
  DATASET
  FOLDER
  LINK
  SERVICE
  OTHER
}

enum ResourceStatus {
  ACTIVE
  PROCESSING
  FAILED
  ARCHIVED
}

model User {
  id            String      @id @default(cuid())
  email         String      @unique
  name          String?
  image         String?
  passwordHash  String?
  emailVerified DateTime?
  role          UserRole    @default(CUSTOMER)
  storageTier   StorageTier @default(FREE_500MB)
  createdAt     DateTime    @default(now())
  updatedAt     DateTime    @updatedAt

  accounts       Account[]
  sessions       Session[]
  Authenticator  Authenticator[]
  organizations  Organization[]
  memberships    Membership[]
}

model Organization {
  id        String   @id @default(cuid())
  name      String
  ownerId   String
  createdAt DateTime @default(now())
  updatedAt DateTime @updatedAt

  owner       User         @relation(fields: [ownerId], references: [id], onDelete: Restrict)
  teams       Team[]
  projects    Project[]
  memberships Membership[]
}

model Team {
  id             String   @id @default(cuid())
  name           String
  organizationId String
  createdAt      DateTime @default(now())
  updatedAt      DateTime @updatedAt

  organization Organization @relation(fields: [organizationId], references: [id], onDelete: Cascade)
  projects     Project[]
  memberships  Membership[]
}

model Project {
  id             String        @id @default(cuid())
  name           String
  organizationId String
  status         ProjectStatus @default(ACTIVE)
  createdAt      DateTime      @default(now())
  updatedAt      DateTime      @updatedAt

  organization Organization @relation(fields: [organizationId], references: [id], onDelete: Cascade)
  teams        Team[]
  resources    Resource[]
  files        File[]
}

model Resource {
  id        String         @id @default(cuid())
  name      String
  projectId String
  type      ResourceType   @default(OTHER)
  status    ResourceStatus @default(ACTIVE)
  createdAt DateTime       @default(now())
  updatedAt DateTime       @updatedAt

  project Project @relation(fields: [projectId], references: [id], onDelete: Cascade)
  files   File[]
}

model Membership {
  id             String         @id @default(cuid())
  userId         String
  organizationId String
  teamId         String?
  role           MembershipRole @default(MEMBER)
  createdAt      DateTime       @default(now())
  updatedAt      DateTime       @updatedAt

  user         User         @relation(fields: [userId], references: [id], onDelete: Cascade)
  organization Organization @relation(fields: [organizationId], references: [id], onDelete: Cascade)
  team         Team?        @relation(fields: [teamId], references: [id], onDelete: SetNull)
}

model File {
  id          String   @id @default(cuid())
  name        String
  projectId   String?
  resourceId  String?
  size        Int
  contentType String
  path        String
  createdAt   DateTime @default(now())
  updatedAt   DateTime @updatedAt

  project  Project?  @relation(fields: [projectId], references: [id], onDelete: Cascade)
  resource Resource? @relation(fields: [resourceId], references: [id], onDelete: Cascade)
}

model Account {
  userId            String
  type              String
  provider          String
  providerAccountId String
  refresh_token     String?
  access_token      String?
  expires_at        Int?
  token_type        String?
  scope             String?
  id_token          String?
  session_state     String?

  createdAt DateTime @default(now())
  updatedAt DateTime @updatedAt

  user User @relation(fields: [userId], references: [id], onDelete: Cascade)

  @@id([provider, providerAccountId])
}

model Session {
  sessionToken String   @unique
  userId       String
  expires      DateTime
  user         User     @relation(fields: [userId], references: [id], onDelete: Cascade)

  createdAt DateTime @default(now())
  updatedAt DateTime @updatedAt
}

model VerificationToken {
  identifier String
  token      String
  expires    DateTime

  @@id([identifier, token])
}

model Authenticator {
  credentialID         String  @unique
  userId               String
  providerAccountId    String
  credentialPublicKey  String
  counter              Int
  credentialDeviceType String
  credentialBackedUp   Boolean
  transports           String?

  user User @relation(fields: [userId], references: [id], onDelete: Cascade)

  @@id([userId, credentialID])
}
"""

#: The ``migration.sql`` that ``prisma migrate dev`` (Prisma 6, PostgreSQL) writes for
#: :data:`SCHEMA_PRISMA`, then the table its schema engine makes to record migrations.
PRISMA_PLATFORM_SQL = """\
-- CreateEnum
CREATE TYPE "UserRole" AS ENUM ('GUEST', 'CUSTOMER', 'ADMIN');

-- CreateEnum
CREATE TYPE "StorageTier" AS ENUM ('FREE_500MB', 'BASIC_5GB', 'PRO_50GB', 'ENTERPRISE_500GB', \
'UNLIMITED');

-- CreateEnum
CREATE TYPE "MembershipRole" AS ENUM ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER');

-- CreateEnum
CREATE TYPE "ProjectStatus" AS ENUM ('ACTIVE', 'PAUSED', 'COMPLETED', 'ARCHIVED');

-- CreateEnum
CREATE TYPE "ResourceType" AS ENUM ('DOCUMENT', 'DATASET', 'FOLDER', 'LINK', 'SERVICE', 'OTHER');

-- CreateEnum
CREATE TYPE "ResourceStatus" AS ENUM ('ACTIVE', 'PROCESSING', 'FAILED', 'ARCHIVED');

-- CreateTable
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "image" TEXT,
    "passwordHash" TEXT,
    "emailVerified" TIMESTAMP(3),
    "role" "UserRole" NOT NULL DEFAULT 'CUSTOMER',
    "storageTier" "StorageTier" NOT NULL DEFAULT 'FREE_500MB',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Organization" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "ownerId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Organization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Team" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Team_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Project" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "status" "ProjectStatus" NOT NULL DEFAULT 'ACTIVE',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Project_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Resource" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "type" "ResourceType" NOT NULL DEFAULT 'OTHER',
    "status" "ResourceStatus" NOT NULL DEFAULT 'ACTIVE',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Resource_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Membership" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "teamId" TEXT,
    "role" "MembershipRole" NOT NULL DEFAULT 'MEMBER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Membership_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "File" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "projectId" TEXT,
    "resourceId" TEXT,
    "size" INTEGER NOT NULL,
    "contentType" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "File_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Account" (
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "refresh_token" TEXT,
    "access_token" TEXT,
    "expires_at" INTEGER,
    "token_type" TEXT,
    "scope" TEXT,
    "id_token" TEXT,
    "session_state" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Account_pkey" PRIMARY KEY ("provider","providerAccountId")
);

-- CreateTable
CREATE TABLE "Session" (
    "sessionToken" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);

-- CreateTable
CREATE TABLE "VerificationToken" (
    "identifier" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "VerificationToken_pkey" PRIMARY KEY ("identifier","token")
);

-- CreateTable
CREATE TABLE "Authenticator" (
    "credentialID" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "credentialPublicKey" TEXT NOT NULL,
    "counter" INTEGER NOT NULL,
    "credentialDeviceType" TEXT NOT NULL,
    "credentialBackedUp" BOOLEAN NOT NULL,
    "transports" TEXT,

    CONSTRAINT "Authenticator_pkey" PRIMARY KEY ("userId","credentialID")
);

-- CreateTable
CREATE TABLE "_ProjectToTeam" (
    "A" TEXT NOT NULL,
    "B" TEXT NOT NULL,

    CONSTRAINT "_ProjectToTeam_AB_pkey" PRIMARY KEY ("A","B")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE UNIQUE INDEX "Session_sessionToken_key" ON "Session"("sessionToken");

-- CreateIndex
CREATE UNIQUE INDEX "Authenticator_credentialID_key" ON "Authenticator"("credentialID");

-- CreateIndex
CREATE INDEX "_ProjectToTeam_B_index" ON "_ProjectToTeam"("B");

-- AddForeignKey
ALTER TABLE "Organization" ADD CONSTRAINT "Organization_ownerId_fkey" FOREIGN KEY ("ownerId") \
REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Team" ADD CONSTRAINT "Team_organizationId_fkey" FOREIGN KEY ("organizationId") \
REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Project" ADD CONSTRAINT "Project_organizationId_fkey" FOREIGN KEY ("organizationId") \
REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Resource" ADD CONSTRAINT "Resource_projectId_fkey" FOREIGN KEY ("projectId") \
REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_userId_fkey" FOREIGN KEY ("userId") \
REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_organizationId_fkey" FOREIGN KEY \
("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_teamId_fkey" FOREIGN KEY ("teamId") \
REFERENCES "Team"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "File" ADD CONSTRAINT "File_projectId_fkey" FOREIGN KEY ("projectId") \
REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "File" ADD CONSTRAINT "File_resourceId_fkey" FOREIGN KEY ("resourceId") \
REFERENCES "Resource"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") \
REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") \
REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Authenticator" ADD CONSTRAINT "Authenticator_userId_fkey" FOREIGN KEY ("userId") \
REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_ProjectToTeam" ADD CONSTRAINT "_ProjectToTeam_A_fkey" FOREIGN KEY ("A") \
REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_ProjectToTeam" ADD CONSTRAINT "_ProjectToTeam_B_fkey" FOREIGN KEY ("B") \
REFERENCES "Team"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The migrations table, as Prisma's schema engine makes it (not part of migration.sql)
CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
"""

#: The platform's tables (each maps onto a model of ``hutch.plugins.platform``).
PLATFORM_TABLES = ("User", "Organization", "Team", "Project", "Resource", "Membership", "File")
#: Auth.js's tables (each maps onto a model of ``hutch.plugins.auth``).
AUTH_TABLES = ("Account", "Session", "VerificationToken", "Authenticator")
#: Every table :func:`create_prisma_platform` makes, in the order it fills them.
PRISMA_TABLES = (*PLATFORM_TABLES, *AUTH_TABLES, "_ProjectToTeam", "_prisma_migrations")

#: How many rows of each table :func:`create_prisma_platform` writes (``Membership``'s and
#: ``File``'s counts follow from the seed: see :attr:`Expected.counts`).
USERS, ORGANIZATIONS, TEAMS, PROJECTS, RESOURCES = 50, 10, 25, 30, 60
FILES, OAUTH_ACCOUNTS, AUTHENTICATORS = 20, 45, 5
SESSIONS, EXPIRED_SESSIONS, VERIFICATION_TOKENS, PROJECT_TEAMS = 40, 6, 5, 40

#: The span the rows' timestamps fall in (UTC, stored without time zone as Prisma does).
_START = datetime(2023, 1, 1)
_END = datetime(2025, 12, 31, 23, 59, 59, 999000)


@dataclass(frozen=True)
class Expected:
    """What :func:`create_prisma_platform` wrote, for the tests to compare an import with."""

    #: Rows per source table, by table name (``"User"``, ``"_ProjectToTeam"``,
    #: ``"_prisma_migrations"``...).
    counts: dict[str, int]
    #: Raw session token (what the browser's cookie holds) -> user id, for every session
    #: that has not expired.
    session_tokens: dict[str, str]
    #: Email (as stored) -> user id, for every user.
    users_by_email: dict[str, str]
    #: Raw session tokens of the sessions that have expired -> user id.
    expired_session_tokens: dict[str, str] = field(default_factory=dict)


# --- writing ----------------------------------------------------------------------------------


@contextmanager
def _writing(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor in one transaction, committed when the block ends (rolled back if it fails)."""
    with conn.transaction(), conn.cursor() as cur:
        yield cur
    if not conn.autocommit:  # commit the transaction ours was a savepoint of, if any
        conn.commit()


def _insert(cur: psycopg.Cursor[Any], table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys: column names) into ``table``."""
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    cur.executemany(statement, [[row[column] for column in columns] for row in rows])


# --- values -----------------------------------------------------------------------------------

_BASE36 = string.digits + string.ascii_lowercase


def _base36(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
    return digits.rjust(width, "0")[-width:]


class _Ids:
    """cuid (v1) ids, as Prisma's ``@default(cuid())`` makes them: ``c``, the time in
    milliseconds, a counter, a fingerprint of the process and randomness, in base 36:
    25 characters, such as ``clx3k0f2q0001k9v8abcdefgh``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._counter = rng.randrange(36**4)
        self._fingerprint = "".join(rng.choice(_BASE36) for _ in range(4))

    def __call__(self, at: datetime) -> str:
        self._counter = (self._counter + 1) % 36**4
        millis = int(at.replace(tzinfo=UTC).timestamp() * 1000)
        noise = "".join(self._rng.choice(_BASE36) for _ in range(8))
        return f"c{_base36(millis, 8)}{_base36(self._counter, 4)}{self._fingerprint}{noise}"


def _between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """A moment in [low, high], to the millisecond."""
    span = max(0, int((high - low).total_seconds() * 1000))
    return low.replace(microsecond=low.microsecond // 1000 * 1000) + timedelta(
        milliseconds=rng.randint(0, span)
    )


def _after(rng: random.Random, *moments: datetime, within: timedelta | None = None) -> datetime:
    """A moment after all of ``moments`` (within ``within`` of the latest, if given), before
    the end of 2025."""
    low = max(moments)
    high = _END if within is None else min(_END, low + within)
    return _between(rng, low, high)


def _stamps(
    rng: random.Random, *after: datetime, within: timedelta | None = None
) -> tuple[datetime, datetime]:
    """``createdAt`` after ``after`` (within a year of the latest, unless ``within`` says
    otherwise), else in 2023-2025, and an ``updatedAt`` at or after it."""
    if after:
        created = _after(rng, *after, within=within or timedelta(days=365))
    else:
        created = _between(rng, _START, _END)
    updated = created if rng.random() < 0.3 else _after(rng, created, within=timedelta(days=200))
    return created, updated


def _now_ms() -> datetime:
    """Now, as a naive UTC datetime to the millisecond (what ``TIMESTAMP(3)`` holds)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _b64(data: bytes, *, url: bool = False) -> str:
    if url:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    return base64.b64encode(data).decode().rstrip("=")


_FIRST_TEXT = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Daniel Lisa Matthew Nancy "
    "Anthony Betty Mark Sandra Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Melissa Timothy Deborah Ronald Stephanie Jason "
    "Rebecca Renée Zoë José Chloé"
)
_FIRST = tuple(_FIRST_TEXT.split())
_LAST_TEXT = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts O'Brien Kim Patel"
)
_LAST = tuple(_LAST_TEXT.split())
_MAIL = ("gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "icloud.com")
_WORK = ("acme.io", "northwind.com", "initech.com", "globex.co", "umbrella-labs.org")
_COMPANIES = (
    "Acme Analytics",
    "Blue Ridge Labs",
    "Cascade Health",
    "Desert Sun Solar",
    "Evergreen Logistics",
    "Foxtail Studio",
    "Golden Gate Robotics",
    "Hudson & Co.",
    "Ironwood Capital",
    "Juniper Schools",
)
_TEAM_NAMES = (
    "Engineering",
    "Design",
    "Marketing",
    "Sales",
    "Support",
    "Data",
    "Platform",
    "Growth",
    "Finance",
    "Legal",
)
_PROJECT_NAMES = (
    "Website Redesign",
    "Q3 Launch",
    "Mobile App",
    "Customer Portal",
    "Data Warehouse",
    "Onboarding Revamp",
    "Billing Migration",
    "Brand Refresh",
    "Annual Report",
    "API v2",
    "Security Audit",
    "Holiday Campaign",
    "Churn Analysis",
    "Partner Program",
    "Hiring Pipeline",
)
_RESOURCES: dict[str, tuple[str, ...]] = {
    "DOCUMENT": ("Requirements", "Kickoff notes", "Style guide", "Runbook", "Contract draft"),
    "DATASET": ("Customer export", "Sales by region", "Survey results", "Event log sample"),
    "FOLDER": ("Assets", "Mockups", "Invoices", "Shared drive"),
    "LINK": ("Figma board", "Jira epic", "Notion page", "Staging site"),
    "SERVICE": ("Search API", "Image resizer", "Webhook relay", "Metrics exporter"),
    "OTHER": ("Misc", "Scratch", "Backlog ideas"),
}
_FILES = (
    ("report.pdf", "application/pdf"),
    ("logo.png", "image/png"),
    ("hero.jpg", "image/jpeg"),
    ("data.csv", "text/csv"),
    ("notes.md", "text/markdown"),
    ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("deck.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("export.json", "application/json"),
    ("archive.zip", "application/zip"),
    ("demo.mp4", "video/mp4"),
    ("Résumé \u2013 final (2).docx", "application/octet-stream"),
)
_MIGRATIONS = (
    "20230114093012_init",
    "20240302151547_storage_tiers_and_authenticators",
)


def _emails(rng: random.Random) -> list[tuple[str | None, str]]:
    """USERS (name, email) pairs: distinct mailboxes by hutch's email rule, a few in mixed
    case, two with non-ASCII local parts (already NFC), a few names missing."""
    people: list[tuple[str | None, str]] = []
    keys: set[str] = set()
    while len(people) < USERS:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local_first = first.lower()
        local_last = last.lower().replace("'", "")
        if not local_first.isascii() and sum(not e.isascii() for _, e in people) >= 2:
            continue  # a couple of internationalised addresses is enough
        shape = rng.choices(range(6), weights=(6, 3, 2, 1, 2, 2))[0]
        if shape == 0:
            local, domain = f"{local_first}.{local_last}", rng.choice(_MAIL)
        elif shape == 1:
            local, domain = f"{local_first[0]}{local_last}", rng.choice(_WORK)
        elif shape == 2:
            local, domain = f"{local_first}{rng.randint(1, 99)}", rng.choice(_MAIL)
        elif shape == 3:
            tag = rng.choice(("news", "work", "shop"))
            local, domain = f"{local_first}.{local_last}+{tag}", rng.choice(_MAIL)
        elif shape == 4:
            local, domain = f"{local_first}_{local_last}{rng.randint(70, 99)}", rng.choice(_MAIL)
        else:
            local, domain = f"{local_first}", rng.choice(_WORK)
        if rng.random() < 0.15:  # some people type their address in mixed case
            local = ".".join(part.capitalize() for part in local.split("."))
            if rng.random() < 0.5:
                domain = domain.capitalize()
        email = f"{local}@{domain}"
        key = email_key(email)
        if key in keys:
            continue
        keys.add(key)
        name: str | None = f"{first} {last}" if rng.random() > 0.1 else None
        people.append((name, email))
    return people


# --- the Prisma platform ----------------------------------------------------------------------


def create_prisma_platform(conn: psycopg.Connection[Any], *, seed: int = 7) -> Expected:
    """Run :data:`PRISMA_PLATFORM_SQL` in the connection's schema, fill the tables with the
    rows the seed makes (in one transaction, committed) and say what was written."""
    rng = random.Random(seed)
    new_id = _Ids(rng)
    now = _now_ms()
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in PRISMA_TABLES}

    # Users -----------------------------------------------------------------------------------
    users = rows["User"]
    tiers = ["FREE_500MB"] * 6 + ["BASIC_5GB"] * 3 + ["PRO_50GB"] * 2 + ["ENTERPRISE_500GB"]
    for index, (name, email) in enumerate(_emails(rng)):
        created, updated = _stamps(rng)
        verified = None if rng.random() < 0.3 else _after(rng, created, within=timedelta(days=2))
        password = None
        if index % 7 == 3:
            salt, digest = _b64(rng.randbytes(16)), _b64(rng.randbytes(32))
            password = f"$argon2id$v=19$m=65536,t=3,p=4${salt}${digest}"
        role = "ADMIN" if index in (0, 17) else "GUEST" if index % 11 == 5 else "CUSTOMER"
        users.append(
            {
                "id": new_id(created),
                "email": email,
                "name": name,
                "image": None,
                "passwordHash": password,
                "emailVerified": verified,
                "role": role,
                "storageTier": "UNLIMITED" if index == 0 else rng.choice(tiers),
                "createdAt": created,
                "updatedAt": max(updated, verified or updated),
            }
        )
    user_by_id = {user["id"]: user for user in users}

    # Organizations, teams, projects, resources --------------------------------------------
    owners = rng.sample(users, ORGANIZATIONS - 1)
    owners.append(owners[0])  # one person owns two organizations
    organizations = rows["Organization"]
    for company, owner in zip(_COMPANIES, owners, strict=True):
        created, updated = _stamps(rng, owner["createdAt"], within=timedelta(days=120))
        organizations.append(
            {
                "id": new_id(created),
                "name": company,
                "ownerId": owner["id"],
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    def spread(total: int) -> list[dict[str, Any]]:
        """``total`` organizations: each at least once, then at random."""
        chosen = list(organizations) + [
            rng.choice(organizations) for _ in range(total - ORGANIZATIONS)
        ]
        rng.shuffle(chosen)
        return chosen

    teams = rows["Team"]
    team_names: dict[str, set[str]] = {}
    for organization in spread(TEAMS):
        taken = team_names.setdefault(organization["id"], set())
        name = rng.choice([n for n in _TEAM_NAMES if n not in taken])
        taken.add(name)
        created, updated = _stamps(rng, organization["createdAt"])
        teams.append(
            {
                "id": new_id(created),
                "name": name,
                "organizationId": organization["id"],
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    projects = rows["Project"]
    statuses = ["ACTIVE"] * 5 + ["PAUSED", "COMPLETED", "COMPLETED", "ARCHIVED"]
    for organization in spread(PROJECTS):
        created, updated = _stamps(rng, organization["createdAt"])
        projects.append(
            {
                "id": new_id(created),
                "name": rng.choice(_PROJECT_NAMES),
                "organizationId": organization["id"],
                "status": rng.choice(statuses),
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    resources = rows["Resource"]
    resource_statuses = ["ACTIVE"] * 6 + ["PROCESSING", "FAILED", "ARCHIVED"]
    for index in range(RESOURCES):
        project = projects[index] if index < PROJECTS else rng.choice(projects)
        kind = rng.choice(list(_RESOURCES))
        created, updated = _stamps(rng, project["createdAt"])
        resources.append(
            {
                "id": new_id(created),
                "name": rng.choice(_RESOURCES[kind]),
                "projectId": project["id"],
                "type": kind,
                "status": rng.choice(resource_statuses),
                "createdAt": created,
                "updatedAt": updated,
            }
        )
    project_by_id = {project["id"]: project for project in projects}

    # Memberships: every owner an OWNER, then members, some in a team of the organization ---
    memberships = rows["Membership"]
    seen: set[tuple[str, str, str | None]] = set()

    def join(user: dict[str, Any], organization: dict[str, Any], team: Any, role: str) -> None:
        key = (user["id"], organization["id"], None if team is None else team["id"])
        if key in seen:
            return
        seen.add(key)
        after = [user["createdAt"], organization["createdAt"]]
        if team is not None:
            after.append(team["createdAt"])
        created, updated = _stamps(rng, *after)
        memberships.append(
            {
                "id": new_id(created),
                "userId": user["id"],
                "organizationId": organization["id"],
                "teamId": key[2],
                "role": role,
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    for organization in organizations:
        join(user_by_id[organization["ownerId"]], organization, None, "OWNER")
    for organization in organizations:
        own_teams = [team for team in teams if team["organizationId"] == organization["id"]]
        for user in rng.sample(users, rng.randint(3, 7)):
            role = rng.choice(["MEMBER", "MEMBER", "MEMBER", "ADMIN", "VIEWER"])
            in_team = bool(own_teams) and rng.random() < 0.6
            join(user, organization, rng.choice(own_teams) if in_team else None, role)

    # Files: on a project, on a resource, or on both (the resource's project) ---------------
    files = rows["File"]
    for index in range(FILES):
        name, content_type = rng.choice(_FILES)
        resource = rng.choice(resources)
        project = project_by_id[resource["projectId"]]
        shape = index % 3  # 0: the project only, 1: the resource only, 2: both
        project_id = None if shape == 1 else project["id"]
        resource_id = None if shape == 0 else resource["id"]
        created, updated = _stamps(rng, (resource if resource_id else project)["createdAt"])
        file_id = new_id(created)
        files.append(
            {
                "id": file_id,
                "name": name,
                "projectId": project_id,
                "resourceId": resource_id,
                "size": rng.choice([0, rng.randint(1, 9_999), rng.randint(10**5, 2**31 - 1)]),
                "contentType": content_type,
                "path": f"uploads/{project['organizationId']}/{project['id']}/{file_id}/{name}",
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    # Accounts: GitHub and Google, and a passkey account for each authenticator -------------
    accounts = rows["Account"]
    linked: set[tuple[str, str]] = set()
    provider_ids: set[str] = set()
    while len(accounts) < OAUTH_ACCOUNTS:
        user = rng.choice(users)
        provider = "github" if rng.random() < 0.6 else "google"
        if (user["id"], provider) in linked:
            continue
        linked.add((user["id"], provider))
        created, updated = _stamps(rng, user["createdAt"], within=timedelta(days=30))
        if provider == "github":
            account_id = str(rng.randint(1_000_000, 189_999_999))
            user["image"] = (
                user["image"] or f"https://avatars.githubusercontent.com/u/{account_id}?v=4"
            )
            tokens: dict[str, Any] = {
                "refresh_token": None,
                "access_token": "gho_" + "".join(rng.choices(string.ascii_letters, k=36)),
                "expires_at": None,
                "token_type": "bearer",
                "scope": "read:user,user:email",
                "id_token": None,
            }
        else:
            account_id = "1" + "".join(rng.choices(string.digits, k=20))
            user["image"] = user["image"] or (
                "https://lh3.googleusercontent.com/a/"
                + _b64(rng.randbytes(36), url=True)
                + "=s96-c"
            )
            header = _b64(b'{"alg":"RS256","kid":"a1b2c3","typ":"JWT"}', url=True)
            claims = _b64(
                f'{{"iss":"https://accounts.google.com","sub":"{account_id}"}}'.encode(),
                url=True,
            )
            tokens = {
                "refresh_token": None
                if rng.random() < 0.5
                else "1//0" + _b64(rng.randbytes(60), url=True),
                "access_token": "ya29." + _b64(rng.randbytes(120), url=True),
                "expires_at": int(updated.replace(tzinfo=UTC).timestamp()) + 3599,
                "token_type": "bearer",
                "scope": "openid https://www.googleapis.com/auth/userinfo.email "
                "https://www.googleapis.com/auth/userinfo.profile",
                "id_token": f"{header}.{claims}.{_b64(rng.randbytes(256), url=True)}",
            }
        if account_id in provider_ids:
            continue
        provider_ids.add(account_id)
        accounts.append(
            {
                "userId": user["id"],
                "type": "oauth" if provider == "github" else "oidc",
                "provider": provider,
                "providerAccountId": account_id,
                **tokens,
                "session_state": None,
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    authenticators = rows["Authenticator"]
    for user in rng.sample(users, AUTHENTICATORS):
        credential = _b64(rng.randbytes(rng.choice([16, 32])), url=True)
        created, updated = _stamps(rng, user["createdAt"])
        accounts.append(
            {
                "userId": user["id"],
                "type": "webauthn",
                "provider": "passkey",
                "providerAccountId": credential,
                "refresh_token": None,
                "access_token": None,
                "expires_at": None,
                "token_type": None,
                "scope": None,
                "id_token": None,
                "session_state": None,
                "createdAt": created,
                "updatedAt": updated,
            }
        )
        authenticators.append(
            {
                "credentialID": credential,
                "userId": user["id"],
                "providerAccountId": credential,
                "credentialPublicKey": _b64(b"\xa5\x01\x02\x03\x26 \x01!X " + rng.randbytes(64)),
                "counter": rng.choice([0, 0, rng.randint(1, 500)]),
                "credentialDeviceType": rng.choice(["singleDevice", "multiDevice"]),
                "credentialBackedUp": rng.random() < 0.6,
                "transports": rng.choice([None, "internal", "internal,hybrid", "usb,nfc"]),
            }
        )

    # Sessions: the token in the cookie is what the table holds ------------------------------
    sessions = rows["Session"]
    session_tokens: dict[str, str] = {}
    expired_tokens: dict[str, str] = {}
    for index in range(SESSIONS):
        user = rng.choice(users)
        if index % 2:
            token = rng.randbytes(32).hex()  # next-auth v4: randomBytes(32).toString("hex")
        else:
            token = str(uuid.UUID(bytes=rng.randbytes(16), version=4))  # Auth.js v5
        created, updated = _stamps(rng, user["createdAt"])
        if index < EXPIRED_SESSIONS:
            expires = _after(rng, updated, within=timedelta(days=30))
            expires = min(expires, now - timedelta(hours=1))
            expired_tokens[token] = user["id"]
        else:
            expires = now + timedelta(
                days=rng.randint(1, 29), milliseconds=rng.randrange(86_400_000)
            )
            session_tokens[token] = user["id"]
        sessions.append(
            {
                "sessionToken": token,
                "userId": user["id"],
                "expires": expires,
                "createdAt": created,
                "updatedAt": updated,
            }
        )

    # Verification tokens: Auth.js keeps sha256(token + secret), never the token -------------
    for index in range(VERIFICATION_TOKENS):
        identifier = "new.signup@example.com" if index == 0 else rng.choice(users)["email"]
        rows["VerificationToken"].append(
            {
                "identifier": identifier,
                "token": hashlib.sha256(rng.randbytes(32)).hexdigest(),
                "expires": now + timedelta(hours=24) if index % 2 else now - timedelta(days=3),
            }
        )

    # The implicit many-to-many: A is the Project, B the Team, of one organization ----------
    pairs = [
        (project["id"], team["id"])
        for project in projects
        for team in teams
        if team["organizationId"] == project["organizationId"]
    ]
    if len(pairs) < PROJECT_TEAMS:
        raise AssertionError(f"only {len(pairs)} (project, team) pairs for seed {seed}")
    rows["_ProjectToTeam"] = [{"A": a, "B": b} for a, b in rng.sample(pairs, PROJECT_TEAMS)]

    # Prisma's record of the migrations applied ----------------------------------------------
    for name in _MIGRATIONS:
        created = datetime.strptime(name[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        started = created + timedelta(seconds=rng.randint(1, 30), microseconds=rng.randrange(10**6))
        finished = started + timedelta(microseconds=rng.randint(40_000, 900_000))
        rows["_prisma_migrations"].append(
            {
                "id": str(uuid.UUID(bytes=rng.randbytes(16), version=4)),
                "checksum": hashlib.sha256(name.encode()).hexdigest(),
                "finished_at": finished,
                "migration_name": name,
                "logs": None,
                "rolled_back_at": None,
                "started_at": started,
                "applied_steps_count": 1,
            }
        )

    with _writing(conn) as cur:
        cur.execute(PRISMA_PLATFORM_SQL)
        for table in PRISMA_TABLES:
            _insert(cur, table, rows[table])

    return Expected(
        counts={table: len(rows[table]) for table in PRISMA_TABLES},
        session_tokens=session_tokens,
        users_by_email={user["email"]: user["id"] for user in users},
        expired_session_tokens=expired_tokens,
    )


def add_email_collision(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """Insert a ``User`` whose email is another text for an existing user's mailbox (the
    local part's first letter and the domain in upper case: hutch's email rule takes both for
    the same); return (the existing user's id, the new user's id). Committed."""
    with _writing(conn) as cur:
        cur.execute(
            'SELECT "id", "email", "name", "createdAt" FROM "User" '
            "WHERE \"email\" ~ '^[a-z][a-z0-9.+_-]*@[a-z0-9.-]+$' "
            'ORDER BY "createdAt", "id" LIMIT 1'
        )
        found = cur.fetchone()
        if found is None:
            raise LookupError("no user with a lower-case ASCII email to collide with")
        existing_id, email, name, created = found
        local, _, domain = email.rpartition("@")
        twin = f"{local[0].upper()}{local[1:]}@{domain.upper()}"
        if twin == email or email_key(twin) != email_key(email):
            raise AssertionError(f"{twin!r} should be another text for {email!r}'s mailbox")
        rng = random.Random(f"collision:{existing_id}")
        created = _after(rng, created, within=timedelta(days=90))
        new_id = _Ids(rng)(created)
        _insert(
            cur,
            "User",
            [
                {
                    "id": new_id,
                    "email": twin,
                    "name": name,
                    "createdAt": created,
                    "updatedAt": created,
                }
            ],
        )
    return existing_id, new_id


# --- a schema no ORM made ---------------------------------------------------------------------

GENERIC_SQL = """\
CREATE TYPE customer_kind AS ENUM ('person', 'company', 'non-profit');

CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    tags text[],
    scores integer[],
    balance numeric(12,2),
    avatar bytea,
    external_id uuid,
    profile jsonb,
    kind customer_kind,
    joined timestamptz
);

CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    placed_at timestamp,
    total numeric
);

CREATE TABLE order_lines (
    order_id integer NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no integer NOT NULL,
    product text NOT NULL,
    quantity integer NOT NULL DEFAULT 1,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE tags_by_day (
    day date NOT NULL,
    tag text
);

CREATE TABLE "Odd Name" (
    "Item ID" integer PRIMARY KEY,
    "Display Name" text,
    "isActive" boolean NOT NULL DEFAULT true,
    "price (€)" numeric(10,2)
);
"""

#: The tables :func:`create_generic` makes, in the order it fills them.
GENERIC_TABLES = ("customers", "orders", "order_lines", "tags_by_day", "Odd Name")


def create_generic(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Make :data:`GENERIC_SQL`'s tables and fill them (committed); return rows per table."""
    tz = UTC
    customers: list[dict[str, Any]] = [
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "tags": ["vip", "early-adopter"],
            "scores": [10, 20, 30],
            "balance": Decimal("1234.50"),
            "avatar": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "external_id": uuid.UUID("6f1c2b9e-3d4a-4c5b-9e8f-0a1b2c3d4e5f"),
            "profile": Jsonb({"plan": "pro", "seats": 5, "ratio": 1.0, "nested": {"a": [1, 2]}}),
            "kind": "person",
            "joined": datetime(2023, 3, 4, 5, 6, 7, 123456, tzinfo=tz),
        },
        {
            "name": "Zoë Ångström \u2013 東京",
            "email": "zoe@example.org",
            "tags": ["日本", "emoji 🎉", "comma, inside", 'quote "x"', ""],
            "scores": [1, None, 3],
            "balance": Decimal("9999999999.99"),
            "avatar": bytes(range(256)),
            "external_id": uuid.UUID("00000000-0000-4000-8000-000000000000"),
            "profile": Jsonb({"big": 12345678901234567890, "text": "naïve", "null": None}),
            "kind": "non-profit",
            "joined": datetime(2024, 2, 29, 23, 59, 59, tzinfo=tz),
        },
        {
            "name": "Acme Corp",
            "email": None,
            "tags": [],
            "scores": [[1, 2], [3, 4]],
            "balance": Decimal("-0.01"),
            "avatar": b"",
            "external_id": None,
            "profile": Jsonb([1, "two", 3.5, False]),
            "kind": "company",
            "joined": datetime(1999, 12, 31, 12, 0, tzinfo=tz),
        },
        {
            "name": "Nobody Nulls",
            "email": "nulls@example.net",
            "tags": None,
            "scores": None,
            "balance": None,
            "avatar": None,
            "external_id": None,
            "profile": None,
            "kind": None,
            "joined": None,
        },
        {
            "name": "Ünïcödé O'Connor",
            "email": "oconnor@example.ie",
            "tags": ["a", None, "c"],
            "scores": [2_147_483_647, -2_147_483_648],
            "balance": Decimal("0.00"),
            "avatar": b"\x00\xff\x00",
            "external_id": uuid.UUID("b3d1c0de-1234-4abc-8def-0123456789ab"),
            "profile": Jsonb({"s": "line\nbreak\ttab", "e": "", "f": 0.1, "n": -0}),
            "kind": "person",
            "joined": datetime(2025, 7, 1, 0, 0, tzinfo=tz),
        },
    ]
    orders: list[dict[str, Any]] = [
        {
            "customer_id": 1,
            "placed_at": datetime(2024, 1, 2, 3, 4, 5),
            "total": Decimal("19.99"),
        },
        {
            "customer_id": 1,
            "placed_at": datetime(2024, 1, 3, 10, 0, 0, 500000),
            "total": Decimal("123456789012345678901234567890.123456789"),
        },
        {"customer_id": 2, "placed_at": None, "total": None},
        {"customer_id": 3, "placed_at": datetime(2025, 12, 31, 23, 59, 59), "total": Decimal(0)},
        {"customer_id": 5, "placed_at": datetime(2023, 6, 15, 8, 30), "total": Decimal("1.50")},
    ]
    lines: list[dict[str, Any]] = [
        {"order_id": 1, "line_no": 1, "product": "Widget", "quantity": 2},
        {"order_id": 1, "line_no": 2, "product": "Gadget \u2013 deluxe", "quantity": 1},
        {"order_id": 2, "line_no": 1, "product": "Ökologischer Kaffee", "quantity": 1_000_000},
        {"order_id": 2, "line_no": 2, "product": "Widget", "quantity": 3},
        {"order_id": 2, "line_no": 10, "product": "茶", "quantity": 7},
        {"order_id": 4, "line_no": 1, "product": "Free sample", "quantity": 1},
        {"order_id": 5, "line_no": 1, "product": "Sticker 🐹", "quantity": 12},
    ]
    tags_by_day: list[dict[str, Any]] = [
        {"day": date(2024, 1, 1), "tag": "new-year"},
        {"day": date(2024, 1, 1), "tag": "holiday"},
        {"day": date(2024, 2, 29), "tag": "leap"},
        {"day": date(2024, 2, 29), "tag": None},
        {"day": date(1970, 1, 1), "tag": "epoch"},
        {"day": date(2025, 12, 25), "tag": "Weihnachten 🎄"},
    ]
    odd: list[dict[str, Any]] = [
        {"Item ID": 1, "Display Name": "First", "isActive": True, "price (€)": Decimal("9.99")},
        {"Item ID": 2, "Display Name": None, "isActive": False, "price (€)": None},
        {
            "Item ID": 2_000_000_000,
            "Display Name": "Ünicode — “quoted”",
            "isActive": True,
            "price (€)": Decimal("12345678.90"),
        },
    ]
    rows = {
        "customers": customers,
        "orders": orders,
        "order_lines": lines,
        "tags_by_day": tags_by_day,
        "Odd Name": odd,
    }
    with _writing(conn) as cur:
        cur.execute(GENERIC_SQL)
        for table in GENERIC_TABLES:
            _insert(cur, table, rows[table])
    return {table: len(rows[table]) for table in GENERIC_TABLES}


# --- many rows --------------------------------------------------------------------------------


def create_big(conn: psycopg.Connection[Any], rows: int = 100_000) -> None:
    """Make the table ``events`` with ``rows`` rows, computed server side from their id (the
    same rows every time), and analyse it (so its estimated row count is close). Committed."""
    with _writing(conn) as cur:
        cur.execute(
            """
            CREATE TABLE events (
                id bigint PRIMARY KEY,
                at timestamptz NOT NULL,
                kind text NOT NULL,
                amount numeric(12,2),
                payload jsonb,
                tags text[]
            )
            """
        )
        cur.execute(
            """
            INSERT INTO events (id, at, kind, amount, payload, tags)
            SELECT
                i,
                timestamptz '2023-01-01 00:00:00+00' + i * interval '317 milliseconds',
                (ARRAY['click', 'view', 'purchase', 'signup', 'refund'])[1 + i %% 5],
                CASE WHEN i %% 7 = 0 THEN NULL ELSE round((i %% 100000) * 1.37, 2) END,
                jsonb_build_object(
                    'user', 'u' || (i %% 997),
                    'page', '/p/' || (i %% 113),
                    'ok', i %% 3 <> 0,
                    'n', i
                ),
                CASE WHEN i %% 4 = 0 THEN NULL
                     ELSE ARRAY['t' || (i %% 10), 'g' || (i %% 3)] END
            FROM generate_series(1, %s::bigint) AS i
            """,
            (rows,),
        )
        cur.execute("ANALYZE events")
