"""Fixtures shared by the test files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashcheck import scratch_folder
from pgcluster import Cluster, running_or_skip

import hutch
import hutch.backends.memory
from hutch.persister import OpenStores


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Iterator[hutch.Database]:
    """A memory database with only its backend plugin, so no installed plugin's models join in."""
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    with hutch.open("memory://", plugins=[hutch.backends.memory]) as database:
        yield database


@pytest.fixture
def store(db: hutch.Database) -> hutch.Store:
    return db.store


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for a store (a crash-state test records its workload there)."""
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """Where crash states are opened (see :func:`crashcheck.scratch_folder`)."""
    with scratch_folder(tmp_path) as place:
        yield place


@pytest.fixture
def several_opens() -> Iterator[None]:
    """The test plays several processes in one: a store may be open several times at once,
    each Database with its own files, locks and threads, as another process would have."""
    with OpenStores.allow_several():
        yield


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL cluster for the whole run (see :mod:`pgcluster`), stopped at the
    end however the run ends; the tests that need it skip, saying why, where none can start."""
    with running_or_skip() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty ``postgresql://`` store: a new schema, named after the test."""
    from hutch.backends.postgres.testing import fresh_url

    node = request.node
    digest = hashlib.sha1(node.nodeid.encode()).hexdigest()[:6]  # (one name in two modules)
    slug = re.sub(r"\W+", "_", node.name)
    return fresh_url(pg_cluster.database("tests"), f"{slug}_{digest}")
