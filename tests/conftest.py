"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hutch
import hutch.backends.memory


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Iterator[hutch.Database]:
    """A memory database with only its backend plugin, so no installed plugin's models join in."""
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    with hutch.open("memory://", plugins=[hutch.backends.memory]) as database:
        yield database


@pytest.fixture
def store(db: hutch.Database) -> hutch.Store:
    return db.store
