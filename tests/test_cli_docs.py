"""docs/cli.md shows every command's help exactly as ``hutch`` prints it.

Run ``python tests/test_cli_docs.py`` to write the help into docs/cli.md again
after changing a command.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hutch.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
#: A command's help in docs/cli.md: the marker, then a fenced block.
BLOCK = re.compile(r"<!-- help: (?P<name>[a-z-]*) -->\n```text\n(?P<help>.*?)```\n", re.DOTALL)


def builtin_commands() -> list[str]:
    """hutch's commands, those its own plugins register included (``import-sql``)."""
    return sorted(cli.list_commands(click.Context(cli)))


def help_of(name: str) -> str:
    """What ``hutch [NAME] --help`` prints, at a fixed width."""
    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(
        cli, args, prog_name="hutch", terminal_width=88, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def documented() -> dict[str, str]:
    return {m["name"]: m["help"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", ["", *builtin_commands()])
def test_the_help_in_the_docs_is_current(name: str) -> None:
    shown = documented()
    assert name in shown, f"docs/cli.md has no help block for {name or 'hutch'!r}"
    assert shown[name] == help_of(name), (
        f"the help of {name or 'hutch'!r} changed: run `python tests/test_cli_docs.py`"
    )


def rewrite() -> None:
    """Put every command's current help into docs/cli.md's blocks."""
    text = DOC.read_text(encoding="utf-8")
    text = BLOCK.sub(
        lambda m: f"<!-- help: {m['name']} -->\n```text\n{help_of(m['name'])}```\n", text
    )
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    click.echo(f"rewriting {DOC}")
    rewrite()
