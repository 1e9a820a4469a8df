"""``jsonl://``: an append-only JSONL log of row changes per collection (docs/jsonl-format.md).

Registered through the ``hutch`` entry-point group, as a third-party backend would be.
"""

from __future__ import annotations

import hutch

from .persister import JsonlPersister

__all__ = ["JsonlPersister"]


@hutch.hookimpl
def hutch_register_backends(register: hutch.RegisterBackend) -> None:
    register("jsonl", JsonlPersister)
