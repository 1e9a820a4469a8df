"""``file://``: a folder of human-readable JSON files, one per record (see docs/file-format.md).

Registered through the ``hutch`` entry-point group, as a third-party backend would be.
"""

from __future__ import annotations

import hutch

from .persister import FilePersister

__all__ = ["FilePersister"]


@hutch.hookimpl
def hutch_register_backends(register: hutch.RegisterBackend) -> None:
    register("file", FilePersister)
