"""Documentation is part of the product: every hook documented, the examples and README run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from hutch import hookspecs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("hutch_")
    ]


def test_there_are_hooks() -> None:
    assert "hutch_register_backends" in hook_names()


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented(name: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    signature = inspect.signature(getattr(hookspecs, name))
    heading = f"### `{name}({', '.join(signature.parameters)})`"
    assert heading in docs, f"docs/plugins.md needs a section headed {heading}"
    summary = inspect.getdoc(getattr(hookspecs, name))
    assert summary, f"{name} needs a one-line docstring"
    first_line = summary.splitlines()[0].replace("``", "`")
    assert first_line in docs, "the section should open with the hook's docstring"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_run(example: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), f"{example.name} should print what it did"


def test_the_quickstart_shows_what_it_did(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "rolled back: t1 is still there -> True" in result.stdout
    assert "acme's teams: ['t1', 't2']" in result.stdout


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_python_in_the_documents_runs(
    document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for number, block in enumerate(
        re.findall(r"```python\n(.*?)```", document.read_text(), flags=re.DOTALL)
    ):
        module = types.ModuleType(f"{document.stem}_block_{number}")  # a real module, as code
        monkeypatch.setitem(sys.modules, module.__name__, module)  # in a file would have
        exec(compile(block, document.name, "exec"), module.__dict__)


def test_the_readme_gives_the_three_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for command in ("demo", "test", "app"):
        assert f"make {command}" in readme
        assert re.search(rf"^{command}:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
