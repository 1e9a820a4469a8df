"""Hooks of the parity suite that a backend author may implement (in a conftest or -p plugin)."""

from __future__ import annotations

import pytest


@pytest.hookspec(firstresult=True)
def pytest_hutch_fresh_url(base_url: str, name: str) -> str | None:
    """Return the URL of a fresh, empty store called ``name`` under ``base_url``, or ``None``.

    ``name`` is unique in the run and across runs (letters, digits, ``-`` and
    ``_``). Return ``None`` to let the default rule (a sub-folder, or a sibling
    file for a path with a suffix) decide.
    """
