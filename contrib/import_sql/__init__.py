"""``hutch import-sql``: an existing PostgreSQL database (Prisma's and Auth.js's tables
included) imported into a hutch store, then checked against it (docs/operations.md).

Registered through the ``hutch`` entry-point group, as a third-party plugin's command
would be. psycopg comes with the ``postgres`` extra; the command imports it when it runs,
so ``hutch --help`` works without it.
"""

from __future__ import annotations

import click

import hutch


@hutch.hookimpl
def hutch_register_commands(cli: click.Group) -> None:
    cli.add_command(import_sql_command())


def import_sql_command() -> click.Command:
    """The command; without psycopg, one that says what to install."""
    try:
        from .command import import_sql
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "psycopg":
            raise
        return _needs_psycopg()
    return import_sql


def _needs_psycopg() -> click.Command:
    @click.command(
        name="import-sql",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help="Import a PostgreSQL database (needs psycopg: pip install 'hutch[postgres]').",
    )
    def import_sql() -> None:
        raise hutch.ConfigError(
            "hutch import-sql needs psycopg, which is not installed; install it with: "
            "pip install 'hutch[postgres]'"
        )

    return import_sql
