"""The distribution: a wheel built from the tree installs and works in a fresh environment."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"core": "hutch", "backends": "hutch/backends", "plugins": "hutch/plugins"}
FOLDERS["contrib"] = "hutch/contrib"


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, ROOT)
    (built,) = out.glob("hutch-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_every_package_folder(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).as_posix()
            inside = package if relative == "." else f"{package}/{relative}"
            assert f"{inside}/__init__.py" in names, f"{init} is missing from the wheel"
    assert "hutch/py.typed" in names
    assert not any(name.startswith(("core/", "tests/", "bench/")) for name in names)


@pytest.mark.slow
def test_the_wheel_works_in_a_fresh_virtual_environment(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel)
    out = run(
        python,
        "-c",
        "import importlib.metadata as m, hutch, hutch.backends.memory, hutch.backends.file;"
        "print(hutch.__file__);"
        "print(sorted(e.name for e in m.entry_points(group='hutch')));"
        "print(sorted(e.name for e in m.entry_points(group='hutch.domains')));"
        "db = hutch.open('memory://'); db.store.set_row('t', 'r', {'a': 1});"
        "print(db.store.get_row('t', 'r'), db.models.models());"
        "print(len(hutch.open('memory://', plugins=['platform', 'auth']).models.models()))",
        cwd=tmp_path,
    )
    location, backends, domains, row, named = out.splitlines()
    assert location.startswith(str(env))
    assert backends == "['file', 'import_sql', 'jsonl', 'memory', 'postgres', 'sqlite']"
    assert domains == "['auth', 'fastapi_users', 'platform']"
    assert row == "{'a': 1} []"
    assert named == "11"  # the platform's seven models and auth's four


def test_the_editable_install_maps_the_four_folders() -> None:
    import hutch
    import hutch.backends.memory
    import hutch.contrib
    import hutch.plugins

    assert Path(hutch.__file__).parent == ROOT / "core"
    assert Path(hutch.backends.memory.__file__).parent == ROOT / "backends"
    assert Path(hutch.plugins.__file__).parent == ROOT / "plugins"
    assert Path(hutch.contrib.__file__).parent == ROOT / "contrib"
