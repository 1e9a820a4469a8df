"""``memory://``: a store that lives only as long as the process; nothing is written anywhere.

Useful for tests, caches and the quickstart. It is registered through the
``hutch`` entry-point group, exactly as a third-party backend would be.
"""

from __future__ import annotations

import hutch
from hutch import BackendConfig, Changes, ConfigError, Persister, Snapshot


class MemoryPersister(Persister):
    """Holds nothing: the store's memory is the whole truth."""

    def __init__(self, config: BackendConfig) -> None:
        config.check_options()
        if config.url.rest not in ("", "//"):
            raise ConfigError(
                f"memory:// takes no path or options, got {config.url.redacted()!r}; "
                "write memory://"
            )

    def load(self) -> Snapshot:
        return Snapshot()

    def apply(self, changes: Changes) -> None:  # noqa: ARG002 - memory is the whole truth
        return None


@hutch.hookimpl
def hutch_register_backends(register: hutch.RegisterBackend) -> None:
    register("memory", MemoryPersister)
