"""The parity suite (``hutch.testing``) runs green on every local backend and the example backend.

Each run is a separate pytest process, exactly as a backend author would start
it: ``python -m pytest --pyargs hutch.testing --hutch-url URL``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "dict_backend.py"


def run_suite(tmp_path: Path, *args: str, passes: bool = True, fails: bool = False) -> str:
    """The suite's output; it must exit 0 (1 if it ``fails``), and pass tests if it ``passes``."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "hutch.testing",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == int(fails), result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    if fails:
        return result.stdout
    assert re.search(r"\d+ passed", summary) or not passes, summary
    assert "failed" not in summary, summary
    assert "error" not in summary, summary
    return result.stdout


def skip_reasons(output: str) -> list[str]:
    return re.findall(r"^SKIPPED \[\d+\] \S+: (.*)$", output, flags=re.MULTILINE)


def test_memory(tmp_path: Path) -> None:
    output = run_suite(tmp_path, "--hutch-url", "memory://")
    reasons = skip_reasons(output)
    assert reasons, "memory:// is not durable: the reopen tests must be skipped, with a reason"
    assert all(r.startswith("the memory backend lacks ") for r in reasons), reasons
    assert any("lacks durable: " in r for r in reasons)


def test_file(tmp_path: Path) -> None:
    output = run_suite(tmp_path, "--hutch-url", f"file://{tmp_path.as_posix()}/stores")
    assert skip_reasons(output) == []  # durable, multi-process, with a change feed
    assert len(list((tmp_path / "stores").iterdir())) > 10  # a fresh store per test


def test_jsonl(tmp_path: Path) -> None:
    output = run_suite(tmp_path, "--hutch-url", f"jsonl://{tmp_path.as_posix()}/stores")
    assert skip_reasons(output) == []  # durable, multi-process, with a change feed


def test_sqlite(tmp_path: Path) -> None:
    output = run_suite(tmp_path, "--hutch-url", f"sqlite:///{tmp_path.as_posix()}/parity.db")
    assert skip_reasons(output) == []  # durable, multi-process, with a change feed


def test_file_with_a_mirror(tmp_path: Path) -> None:
    output = run_suite(
        tmp_path,
        "--hutch-url",
        f"file://{tmp_path.as_posix()}/stores",
        "--hutch-mirror",
        f"file://{tmp_path.as_posix()}/mirrors",
    )
    assert skip_reasons(output) == []
    assert len(list((tmp_path / "mirrors").iterdir())) > 10  # a fresh mirror per store


def test_file_with_a_sqlite_mirror(tmp_path: Path) -> None:
    (tmp_path / "mirrors").mkdir()
    output = run_suite(
        tmp_path,
        "--hutch-url",
        f"file://{tmp_path.as_posix()}/stores",
        "--hutch-mirror",
        f"sqlite:///{tmp_path.as_posix()}/mirrors/mirror.db",
    )
    assert skip_reasons(output) == []
    assert len(list((tmp_path / "mirrors").glob("*.db"))) > 10  # a fresh mirror per store


def test_the_example_backend(tmp_path: Path) -> None:
    output = run_suite(
        tmp_path,
        "--hutch-plugin",
        f"{EXAMPLE}:plugin",
        "--hutch-url",
        f"dict://{tmp_path.as_posix()}/stores",
    )
    assert skip_reasons(output) == [
        "the dict backend lacks change_feed: Database.refresh() takes in what another open "
        "database committed",
        "the dict backend lacks multi_process: several processes on one machine may open the "
        "same store at once",
    ]


def test_without_a_url_every_test_skips_saying_why(tmp_path: Path) -> None:
    output = run_suite(tmp_path, "-k", "fresh_store_is_empty", passes=False)
    assert skip_reasons(output) == [
        "no backend to test: give --hutch-url URL (e.g. --hutch-url memory://)"
    ]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("memory://", "memory://"),
        ("file:///tmp/p", "file:///tmp/p/NAME"),
        ("file:///tmp/p/", "file:///tmp/p/NAME"),
        ("jsonl:relative/log", "jsonl:relative/log/NAME"),
        ("sqlite:////tmp/app.db", "sqlite:////tmp/app-NAME.db"),
        ("sqlite:///app.db", "sqlite:///app-NAME.db"),
        ("./data", "./data/NAME"),
        ("postgresql://u@host/db", None),
        ("sqlite:///app.db?mode=ro", None),
    ],
)
def test_the_default_fresh_url_rule(base: str, expected: str | None) -> None:
    from hutch.testing import default_fresh_url

    assert default_fresh_url(base, "NAME") == expected


def test_the_plugin_adds_nothing_to_an_ordinary_run(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getoption("--hutch-url") is None
    assert pytestconfig.pluginmanager.has_plugin("hutch")


FORGETFUL = f'''
import runpy

import hutch

DictPersister = runpy.run_path({str(EXAMPLE)!r})["DictPersister"]


class ForgetsDeletedValues(DictPersister):
    """Stores every change but the deletion of a keyed value."""

    def apply(self, changes: hutch.Changes) -> None:
        super().apply(hutch.Changes(changes.tables, changes.values))


class Plugin:
    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("dict", ForgetsDeletedValues)


plugin = Plugin()
'''


def test_the_fixed_tests_catch_a_backend_that_keeps_deleted_values(tmp_path: Path) -> None:
    """Not only the randomised test: a plain test names what was lost."""
    (tmp_path / "forgetful.py").write_text(FORGETFUL, encoding="utf-8")
    output = run_suite(
        tmp_path,
        "--hutch-plugin",
        f"{tmp_path / 'forgetful.py'}:plugin",
        "--hutch-url",
        f"dict://{tmp_path.as_posix()}/stores",
        "--ignore-glob",
        "*model_based*",
        fails=True,
    )
    failed = re.findall(r"^_+ (\w+) _+$", output, flags=re.MULTILINE)
    assert "test_every_kind_of_deletion_survives_a_reopen" in failed, output[-3000:]
