"""Benchmark of the model layer against the same data in SQLite, in one run.

SQLite holds the tables an ORM would create (a primary key per table, foreign
keys, an index on every foreign-key column and on the unique email) and
builds the same model objects from its rows, with the same converter.

    python bench/models.py [--teams 50] [--members 20] [--repeat 30]

Workloads and targets:

* the "complex query": an organisation -> its teams -> their members -> those
  users, as repository calls against one SQL join: hutch at least 10x faster;
* ``repo.get`` against a primary-key select that builds the same object:
  hutch at least 3x faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hutch
import hutch.backends.file
from hutch.plugins.platform import Membership, Organisation, PlatformRepositories, Team, User
from hutch.serialise import from_row, to_row

os.environ["HUTCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the plugins named at hutch.open only

SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT, email TEXT UNIQUE,
    name TEXT, image TEXT, password_hash TEXT, email_verified TEXT, role TEXT, storage_tier TEXT);
CREATE TABLE organisations (id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT, name TEXT,
    owner_id TEXT REFERENCES users (id));
CREATE INDEX organisations_owner_id ON organisations (owner_id);
CREATE TABLE teams (id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT, name TEXT,
    organisation_id TEXT REFERENCES organisations (id));
CREATE INDEX teams_organisation_id ON teams (organisation_id);
CREATE TABLE memberships (id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT,
    user_id TEXT REFERENCES users (id), organisation_id TEXT REFERENCES organisations (id),
    team_id TEXT REFERENCES teams (id), role TEXT);
CREATE INDEX memberships_user_id ON memberships (user_id);
CREATE INDEX memberships_organisation_id ON memberships (organisation_id);
CREATE INDEX memberships_team_id ON memberships (team_id);
"""

COMPLEX_QUERY = """
SELECT users.* FROM teams
JOIN memberships ON memberships.team_id = teams.id
JOIN users ON users.id = memberships.user_id
WHERE teams.organisation_id = ?
ORDER BY teams.id, users.id
"""


def build_platform(db: hutch.Database, teams: int, members: int) -> tuple[str, list[str]]:
    """One organisation with ``teams`` teams of ``members`` users each, plus a second one."""
    users, orgs, team_repo, memberships = (
        db.repo(User),
        db.repo(Organisation),
        db.repo(Team),
        db.repo(Membership),
    )
    user_ids: list[str] = []
    with db.store.transaction():
        owner = users.create(email="owner@example.org", name="Owner")
        org = orgs.create(name="Acme", owner_id=owner.id)
        other = orgs.create(name="Globex", owner_id=owner.id)
        for t in range(teams):
            for target in (org, other):
                team = team_repo.create(name=f"{target.name} team {t}", organisation_id=target.id)
                for m in range(members):
                    user = users.create(email=f"{target.name}.{t}.{m}@example.org", name=f"U{m}")
                    user_ids.append(user.id)
                    memberships.create(user_id=user.id, organisation_id=target.id, team_id=team.id)
    return org.id, user_ids


def copy_to_sqlite(db: hutch.Database, con: sqlite3.Connection) -> None:
    con.executescript(SCHEMA)
    for model in (User, Organisation, Team, Membership):
        repo = db.repo(model)
        table = repo.collection
        for instance in repo.all():
            row_id, row = to_row(instance)
            columns = ["id", *row]
            marks = ", ".join("?" for _ in columns)
            con.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                [row_id, *row.values()],
            )
    con.commit()


def user_from(record: sqlite3.Row) -> User:
    """What an ORM does with a row: the same object, built by the same converter."""
    row = dict(record)
    return from_row(User, row.pop("id"), row)


def median(op: Callable[[], Any], repeat: int) -> float:
    op()  # warm: caches, the page cache, SQLite's statement cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        op()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        db = hutch.open(Path(folder) / "data", plugins=[hutch.backends.file, "platform"])
        org_id, user_ids = build_platform(db, args.teams, args.members)
        con = sqlite3.connect(":memory:")
        con.row_factory = sqlite3.Row
        copy_to_sqlite(db, con)
        repos = PlatformRepositories.of(db)
        orgs, teams, users = repos.organisations, repos.teams, repos.users

        def hutch_complex() -> list[User]:
            return [u for team in orgs.get_teams(org_id) for u in teams.get_members(team.id)]

        def sqlite_complex() -> list[User]:
            return [user_from(r) for r in con.execute(COMPLEX_QUERY, (org_id,))]

        ours, theirs = hutch_complex(), sqlite_complex()
        assert sorted(u.id for u in ours) == sorted(u.id for u in theirs), "the answers differ"
        picks = random.Random(7).choices(user_ids, k=2000)

        def hutch_gets() -> None:
            for user_id in picks:
                users.get(user_id)

        def sqlite_gets() -> None:
            for user_id in picks:
                user_from(con.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

        def hutch_cold_gets() -> None:
            fresh = hutch.Repository(db, User)  # an empty instance cache: every get builds
            for user_id in picks:
                fresh.get(user_id)

        rows: list[tuple[str, float, float, float | None]] = [
            (
                f"organisation -> {args.teams} teams -> {len(ours)} members -> users",
                median(hutch_complex, args.repeat),
                median(sqlite_complex, args.repeat),
                10.0,
            ),
            (
                "repo.get vs primary-key select + build",
                median(hutch_gets, args.repeat) / len(picks),
                median(sqlite_gets, args.repeat) / len(picks),
                3.0,
            ),
            (
                "repo.get, instance not cached yet (no target)",
                median(hutch_cold_gets, args.repeat) / len(picks),
                median(sqlite_gets, args.repeat) / len(picks),
                None,
            ),
        ]
        print(
            f"hutch models vs sqlite3 {sqlite3.sqlite_version} (:memory:, ORM-style schema); "
            f"Python {platform.python_version()}, {platform.machine()}; median of {args.repeat}"
        )
        header = f"{'workload':56} {'hutch':>10} {'sqlite':>10} {'speed-up':>9} {'target':>7}  met"
        print(header)
        print("-" * len(header))
        for name, hutch_time, sqlite_time, target in rows:
            ratio = sqlite_time / hutch_time
            goal = "-" if target is None else f"{target:.1f}x"
            met = "-" if target is None else "yes" if ratio >= target else "NO"
            print(
                f"{name:56} {_time(hutch_time):>10} {_time(sqlite_time):>10} {ratio:8.1f}x "
                f"{goal:>7}  {met}"
            )
        db.close()
        con.close()


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.2f} µs"


if __name__ == "__main__":
    main()
