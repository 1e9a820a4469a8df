"""The hooks a hutch plugin may implement; docs/plugins.md documents each one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from hutch.models import Model
from hutch.persister import BackendConfig, Persister

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("hutch")
hookimpl = pluggy.HookimplMarker("hutch")

#: ``register(scheme, factory)``: a factory takes a ``BackendConfig`` and returns a ``Persister``.
RegisterBackend = Callable[[str, Callable[[BackendConfig], Persister]], None]


@hookspec
def hutch_register_backends(register: RegisterBackend) -> None:
    """Register backends: call ``register(scheme, factory)`` once per URL scheme."""


@hookspec
def hutch_register_models(register: Callable[[type[Model]], None]) -> None:
    """Register models: call ``register(Model)`` for each; a database knows them from its open."""


@hookspec
def hutch_register_commands(cli: click.Group) -> None:
    """Add commands to the ``hutch`` command: ``@cli.command()`` on each, as click has it."""
