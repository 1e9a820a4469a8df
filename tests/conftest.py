"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from crashcheck import scratch_folder

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
