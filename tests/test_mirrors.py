"""Mirrors: every commit of the primary reaches them; a failing mirror never fails a commit."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

import hutch
import hutch.backends.file
import hutch.backends.memory
from hutch import BackendConfig, Changes, Persister, Snapshot


class Fragile(Persister):
    """A mirror that keeps its rows in a dict shared by the test, and fails when told to."""

    rows: ClassVar[dict[str, dict[str, dict[str, object]]]] = {}
    described: ClassVar[dict[str, hutch.Relationship]] = {}
    failing = False

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    def load(self) -> Snapshot:
        return Snapshot(tables={t: dict(rows) for t, rows in Fragile.rows.items()})

    def apply(self, changes: Changes) -> None:
        if Fragile.failing:
            raise OSError("the mirror's disk is gone")
        for table_id, row_id, row in changes.rows():
            if row is None:
                Fragile.rows.get(table_id, {}).pop(row_id, None)
            else:
                Fragile.rows.setdefault(table_id, {})[row_id] = dict(row)

    def describe_relationship(self, relationship_id: str, relationship: hutch.Relationship) -> None:
        if Fragile.failing:
            raise OSError("the mirror's disk is gone")
        Fragile.described[relationship_id] = relationship


class FragilePlugin:
    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("fragile", Fragile)


PLUGINS = [hutch.backends.memory, hutch.backends.file, FragilePlugin()]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    Fragile.rows = {}
    Fragile.described = {}
    Fragile.failing = False


def test_a_mirror_receives_every_commit_and_opens_alone_with_the_same_content(
    tmp_path: Path,
) -> None:
    mirror = tmp_path / "mirror"
    with hutch.open("memory://", mirrors=[mirror], plugins=PLUGINS) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io"})
        with db.store.transaction():
            db.store.set_row("users", "u2", {"email": "b@x.io"})
            db.store.set_value("version", 2)
        db.store.del_row("users", "u1")
        primary = (db.store.get_table("users"), db.store.get_values())
        assert db.mirrors[0].in_step
    with hutch.open(mirror, plugins=PLUGINS) as alone:
        assert (alone.store.get_table("users"), alone.store.get_values()) == primary


def test_a_failing_mirror_never_fails_a_commit_and_resync_catches_up(tmp_path: Path) -> None:
    with hutch.open(tmp_path / "primary", mirrors=["fragile://"], plugins=PLUGINS) as db:
        db.store.set_row("t", "a", {"n": 1})
        Fragile.failing = True
        db.store.set_row("t", "b", {"n": 2})  # the commit stands
        mirror = db.mirrors[0]
        assert not mirror.in_step
        assert isinstance(mirror.error, OSError)
        db.store.set_row("t", "c", {"n": 3})
        assert db.store.get_row_ids("t") == ["a", "b", "c"]
        assert not db.resync_mirrors()  # still failing: it says so
        Fragile.failing = False
        assert db.resync_mirrors()
        assert mirror.in_step
        assert mirror.error is None
        assert Fragile.rows == {"t": {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}}}


def test_opening_resyncs_a_mirror_that_fell_behind(tmp_path: Path) -> None:
    primary, mirror = tmp_path / "primary", tmp_path / "mirror"
    with hutch.open(primary, plugins=PLUGINS) as db:  # written while the mirror was away
        db.store.set_row("t", "new", {"n": 1})
    with hutch.open(mirror, plugins=PLUGINS) as stale:
        stale.store.set_row("t", "gone", {"n": 0})
        stale.store.set_value("stale", True)
    with hutch.open(primary, mirrors=[mirror], plugins=PLUGINS) as db:
        assert db.mirrors[0].in_step
    with hutch.open(mirror, plugins=PLUGINS) as alone:
        assert alone.store.get_table("t") == {"new": {"n": 1}}
        assert alone.store.get_values() == {}


def test_a_mirror_with_an_unknown_scheme_fails_the_open() -> None:
    with pytest.raises(hutch.UnknownBackend, match="nope"):
        hutch.open("memory://", mirrors=["nope://x"], plugins=PLUGINS)


def test_a_mirror_is_told_of_relationships_and_catches_up_on_those_it_missed(
    tmp_path: Path,
) -> None:
    team_org = hutch.Relationship("teams", "orgs", "org_id")
    with hutch.open("memory://", mirrors=["fragile://"], plugins=PLUGINS) as db:
        db.relationships.define("team_org", local="teams", remote="orgs", on="org_id")
        assert Fragile.described == {"team_org": team_org}
        Fragile.failing = True
        db.relationships.define("team_lead", local="teams", remote="users", on="lead_id")
        assert "team_lead" in db.relationships  # the primary's definition stands
        assert not db.mirrors[0].in_step
        Fragile.failing = False
        assert db.resync_mirrors()
        assert Fragile.described == {
            "team_org": team_org,
            "team_lead": hutch.Relationship("teams", "users", "lead_id"),
        }
