"""``sqlite://``: one SQLite table per collection, queryable with SQL (docs/sqlite-format.md).

Registered through the ``hutch`` entry-point group, as a third-party backend would be.
sqlite-utils comes with the ``sqlite`` extra (``pip install 'hutch[sqlite]'``); it is
imported only when a ``sqlite://`` URL is opened, so an installation without it
still opens every other backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hutch
from hutch import BackendConfig, Capabilities, ConfigError, Persister

if TYPE_CHECKING:
    from .persister import SqlitePersister

__all__ = ["CAPABILITIES", "SqlitePersister"]

#: What :class:`SqlitePersister` can do, known without importing sqlite-utils: ``hutch.open``
#: reads it from the factory (``read_only=True`` is refused where it is false).
CAPABILITIES = Capabilities(durable=True, multi_process=True, change_feed=True, read_only=True)


def open_sqlite(config: BackendConfig) -> Persister:
    """The factory of ``sqlite://``: a :class:`SqlitePersister`, if sqlite-utils is installed."""
    try:
        from .persister import SqlitePersister
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "sqlite_utils":
            raise
        raise ConfigError(
            f"{config.url.redacted()!r} needs sqlite-utils, which is not installed; "
            "install it with: pip install 'hutch[sqlite]'"
        ) from None
    return SqlitePersister(config)


open_sqlite.capabilities = CAPABILITIES  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    if name == "SqlitePersister":
        from .persister import SqlitePersister

        return SqlitePersister
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hutch.hookimpl
def hutch_register_backends(register: hutch.RegisterBackend) -> None:
    register("sqlite", open_sqlite)
