"""``postgresql://``: many application nodes on one PostgreSQL schema (docs/postgres-format.md).

Registered through the ``hutch`` entry-point group, as a third-party backend would be,
for the schemes ``postgresql`` and ``postgres`` (libpq takes both). psycopg comes with
the ``postgres`` extra (``pip install 'hutch[postgres]'``); it is imported only when
such a URL is opened, so an installation without it still opens every other backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hutch
from hutch import BackendConfig, Capabilities, ConfigError, Persister

if TYPE_CHECKING:
    from .persister import PostgresPersister

__all__ = ["CAPABILITIES", "PostgresPersister"]

#: What :class:`PostgresPersister` can do, known without importing psycopg: ``hutch.open``
#: reads it from the factory (``read_only=True`` is refused where it is false).
CAPABILITIES = Capabilities(
    durable=True, multi_process=True, multi_node=True, change_feed=True, read_only=True
)


def open_postgres(config: BackendConfig) -> Persister:
    """The factory of ``postgresql://``: a :class:`PostgresPersister`, if psycopg is installed."""
    try:
        from .persister import PostgresPersister
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "psycopg":
            raise
        raise ConfigError(
            f"{config.url.redacted()!r} needs psycopg, which is not installed; install it "
            "with: pip install 'hutch[postgres]'"
        ) from None
    return PostgresPersister(config)


open_postgres.capabilities = CAPABILITIES  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    if name == "PostgresPersister":
        from .persister import PostgresPersister

        return PostgresPersister
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hutch.hookimpl
def hutch_register_backends(register: hutch.RegisterBackend) -> None:
    register("postgresql", open_postgres)
    register("postgres", open_postgres)
