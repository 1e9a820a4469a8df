"""The ``hutch`` command: every command through click's runner, and some through a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest
from children import WAIT
from click.testing import CliRunner, Result

import hutch
from hutch import archives, snapshots
from hutch.cli import cli


def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
    """``hutch ARGS`` through click's runner; its exit status must be ``code``."""
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"
    return result


def hutch_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hutch ARGS`` as a real process (the console script beside this Python)."""
    script = Path(sys.executable).with_name("hutch")
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
        env={**os.environ, **(env or {})},
    )


def fill(url: str) -> dict[str, str]:
    """A store with awkward values in two collections and keyed values; its hashes."""
    with hutch.open(url) as db:
        with db.store.transaction():
            for i in range(30):
                db.store.set_row(
                    "people",
                    f"p{i:02}",
                    {
                        "name": f"Zoë {i}",
                        "n": i,
                        "ratio": i / 2,
                        "tags": ["a", {"b": None}],
                        "text": "5" if i % 2 else "",
                    },
                )
            db.store.set_row("places", "x", {"big": 2**63 - 1, "one": 1.0, "neg": -0.0})
            db.store.set_value("version", 3)
        return snapshots.hashes(snapshots.snapshot_of(db))


def hashes_of(url: str) -> dict[str, str]:
    with snapshots.open_reading(url) as db:
        return snapshots.hashes(snapshots.snapshot_of(db))


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = str(tmp_path / "source")
    return url, fill(url)


# -- the command itself --------------------------------------------------------------------------


def test_version() -> None:
    assert hutch.__version__ == version("hutch")
    assert run("--version").output.strip() == f"hutch {hutch.__version__}"


def test_help_lists_every_command() -> None:
    output = run("--help").output
    for name in (
        "copy",
        "export",
        "import",
        "verify",
        "backup",
        "backups",
        "restore",
        "stats",
        "reindex",
        "compact",
        "shell",
    ):
        assert f"  {name}" in output


def test_a_usage_error_exits_2() -> None:
    assert "No such command" in run("frobnicate", code=2).output
    assert "Missing argument" in run("copy", code=2).output


def test_an_error_says_what_and_exits_1(tmp_path: Path) -> None:
    result = run("stats", str(tmp_path / "missing"), code=1)
    assert result.output.startswith("Error: ")
    assert "missing" in result.output
    assert "Traceback" not in result.output


def test_passwords_in_urls_are_never_printed() -> None:
    result = run("stats", "postgresql://app:s3cret@127.0.0.1:1/app", code=1)  # no server
    assert "s3cret" not in result.output
    assert "app:***@127.0.0.1:1" in result.output


def test_the_url_defaults_to_hutch_url_then_dot_data(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, _ = source
    assert "people" in run("stats", env={"HUTCH_URL": url}).output
    assert "people" in run("--url", url, "stats").output
    (tmp_path / "cwd").mkdir()
    fill(str(tmp_path / "cwd" / "data"))
    done = hutch_process("stats", cwd=tmp_path / "cwd", env={"HUTCH_URL": ""})
    assert done.returncode == 0, done.stderr
    assert "people" in done.stdout


def test_json_output_for_scripts(source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    data = json.loads(run("stats", url, "--json").output)
    assert data["collections"] == {"people": 30, "places": 1}
    assert data["values"] == 1
    assert data["storage"]["bytes"] > 0


def test_no_progress_bars_off_a_terminal(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, _ = source
    output = run("copy", url, str(tmp_path / "copy")).output
    assert "writing" not in output
    assert "%" not in output


# -- copy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["sqlite:///{}/t.db", "jsonl:{}/log", "{}/folder"])
def test_copy_between_backends_keeps_everything(
    tmp_path: Path, source: tuple[str, dict[str, str]], target: str
) -> None:
    url, expected = source
    dst = target.format(tmp_path)
    run("copy", url, dst)
    assert hashes_of(dst) == expected
    run("verify", dst, "--against", url)
    back = str(tmp_path / "back")
    run("copy", dst, back)
    assert hashes_of(back) == expected


def test_copy_keeps_collection_settings(tmp_path: Path) -> None:
    url = str(tmp_path / "source")
    settings = {"people": {"path": "folk", "indexed": ["name"]}}
    with hutch.open(url, collections=settings) as db:
        db.store.set_row("people", "p1", {"name": "Ann"})
    run("copy", url, str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "folk" / "indices" / "name.jsonl").is_file()
    with hutch.open(tmp_path / "copy", collections=settings) as db:
        assert db.store.get_row("people", "p1") == {"name": "Ann"}


def test_copy_into_memory_is_refused(source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    assert "keeps nothing" in run("copy", url, "memory://", code=1).output


def test_copy_into_the_same_store_by_another_name_is_refused(
    tmp_path: Path, source: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, expected = source
    (tmp_path / "link").symlink_to(tmp_path / "source")
    monkeypatch.chdir(tmp_path)
    for other in ("source", f"file:{tmp_path}/source", str(tmp_path / "link")):
        assert "the store this command reads" in run("copy", url, other, "--replace", code=1).output
    assert hashes_of(url) == expected


def test_copy_refuses_a_store_that_is_not_empty_unless_replace(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, expected = source
    dst = f"sqlite:///{tmp_path}/t.db"
    with hutch.open(dst) as db:
        db.store.set_row("old", "o1", {"keep": "me?"})
    result = run("copy", url, dst, code=1)
    assert "not empty" in result.output
    assert "--replace" in result.output
    with snapshots.open_reading(dst) as db:
        assert db.store.get_table_ids() == ["old"]
    run("copy", url, dst, "--replace")
    assert hashes_of(dst) == expected


def test_copy_only_some_collections(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, expected = source
    dst = str(tmp_path / "some")
    run("copy", url, dst, "--collections", "places")
    copied = hashes_of(dst)
    assert set(copied) == {"places", snapshots.VALUES}
    assert copied["places"] == expected["places"]
    assert "no such!" in run("copy", url, dst, "--collections", "no such!", code=1).output


def test_copy_dry_run_writes_nothing(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    dst = tmp_path / "new"
    result = run("copy", url, str(dst), "--dry-run")
    assert "people" in result.output
    assert "writing would create it" in result.output
    assert not dst.exists()
    data = json.loads(run("copy", url, url + "-x", "--dry-run", "--json").output)
    assert data["collections"] == {"people": 30, "places": 1}
    assert not data["would_refuse"]


def test_copy_into_itself_is_refused(source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    assert "the store this command reads" in run("copy", url, url, code=1).output


# -- export and import ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_then_import_keeps_everything(
    tmp_path: Path, source: tuple[str, dict[str, str]], fmt: str
) -> None:
    url, expected = source
    out = tmp_path / "out"
    run("export", url, str(out), "--format", fmt)
    assert (out / f"people.{fmt}").is_file()
    dst = f"sqlite:///{tmp_path}/imported.db"
    run("import", str(out), dst)
    assert hashes_of(dst) == expected


def test_import_rejects_bad_rows_to_a_file_and_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "people.jsonl").write_text(
        '{"id": "p1", "name": "Ann"}\nnot json\n{"id": "bad id!", "name": "Bo"}\n'
        '{"id": "p2", "name": "Cy"}\n',
        encoding="utf-8",
    )
    dst = str(tmp_path / "store")
    result = run("import", str(folder), dst, code=1)
    rejects = tmp_path / "in.rejects.jsonl"
    assert str(rejects) in result.output
    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    with snapshots.open_reading(dst) as db:
        assert sorted(db.store.get_row_ids("people")) == ["p1", "p2"]


def test_import_checks_rows_against_enabled_models(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    created = "2026-01-01T00:00:00+00:00"
    (folder / "organisations.jsonl").write_text(
        json.dumps(
            {
                "id": "o1",
                "name": "Acme",
                "owner_id": "u1",
                "created_at": created,
                "updated_at": created,
            }
        )
        + "\n"
        + json.dumps({"id": "o2", "name": 5, "created_at": created, "updated_at": created})
        + "\n",
        encoding="utf-8",
    )
    dst = str(tmp_path / "store")
    run(
        "--plugin",
        "platform",
        "import",
        str(folder),
        dst,
        "--rejects",
        str(tmp_path / "r.jsonl"),
        code=1,
    )
    (reject,) = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(reject)["row_id"] == "o2"
    with snapshots.open_reading(dst) as db:
        row = db.store.get_row("organisations", "o1")
    assert row is not None
    assert row["created_at"] == created


def test_import_replace_touches_only_the_exports_collections(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with hutch.open(url) as db:
        db.store.set_row("orders", "o1", {"n": 1})
        db.store.set_row("invoices", "i1", {"n": 2})
        db.store.set_value("k", 3)
    run("export", url, str(tmp_path / "out"), "--collections", "orders")
    assert "--replace" in run("import", str(tmp_path / "out"), url, code=1).output
    run("import", str(tmp_path / "out"), url, "--replace")
    with snapshots.open_reading(url) as db:
        assert db.store.get_table_ids() == ["invoices", "orders"]
        assert db.store.get_values() == {"k": 3}


def test_export_and_backup_refuse_a_folder_inside_the_store(
    source: tuple[str, dict[str, str]],
) -> None:
    url, expected = source
    assert "inside the store folder" in run("export", url, url + "/out", code=1).output
    assert "inside the store folder" in run("backup", url, url + "/backups", code=1).output
    assert hashes_of(url) == expected


def test_plugins_are_named_by_entry_point(source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    result = run("--plugin", "nope", "verify", url, code=1)
    assert "platform" in result.output


# -- verify --------------------------------------------------------------------------------------


def test_verify_passes_a_sound_store(source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    output = run("verify", url).output
    assert "people" in output
    assert output.rstrip().endswith("Data integrity: PASS")


def test_verify_finds_an_orphan_and_exits_3(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    now = "2026-01-01T00:00:00+00:00"
    with hutch.open(url) as db:
        db.store.set_row(
            "teams",
            "t1",
            {"name": "Blue", "organisation_id": "o-gone", "created_at": now, "updated_at": now},
        )
    run("verify", url)  # an application's own teams: no plugin named, no model applies
    result = run("--plugin", "platform", "verify", url, code=3)
    assert "o-gone" in result.output
    assert "Data integrity: FAIL" in result.output
    data = json.loads(run("--plugin", "platform", "verify", url, "--json", code=3).output)
    assert not data["passed"]
    assert data["problem_count"] >= 1


def test_verify_applies_the_models_of_each_domain_plugin_named(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    now = "2026-01-01T00:00:00+00:00"
    session = {"session_token": "0" * 64, "user_id": "u-gone", "expires": now}
    with hutch.open(url) as db:
        db.store.set_row("sessions", "s1", {**session, "created_at": now, "updated_at": now})
    run("verify", url)
    run("--plugin", "platform", "verify", url)  # the platform has no sessions
    result = run("--plugin", "platform", "--plugin", "auth", "verify", url, code=3)
    assert "u-gone" in result.output


def test_verify_against_another_store_finds_differences(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, _ = source
    other = f"sqlite:///{tmp_path}/other.db"
    run("copy", url, other)
    assert "Data integrity: PASS" in run("verify", url, "--against", other, "--sample", "5").output
    with hutch.open(other) as db:
        db.store.set_cell("people", "p03", "n", 1000)
    result = run("verify", url, "--against", other, "--sample", "100", code=3)
    assert "people differs" in result.output
    assert "p03" in result.output
    assert "'n'" in result.output
    assert "1000" not in result.output  # values may be secrets: never printed


# -- backup and restore --------------------------------------------------------------------------


def test_backup_then_restore(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, expected = source
    folder = tmp_path / "backups"
    run("backup", url, str(folder))
    (archive,) = archives.list_archives(folder)
    listing = run("backups", str(folder)).output
    assert archive.path.name in listing
    assert "31" in listing
    target = f"jsonl:{tmp_path}/restored"
    output = run("restore", str(archive.path), target).output
    assert "Data integrity: PASS" in output
    assert hashes_of(target) == expected


def test_restore_refuses_a_store_that_is_not_empty(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, expected = source
    run("backup", url, str(tmp_path / "b"))
    (archive,) = archives.list_archives(tmp_path / "b")
    target = str(tmp_path / "busy")
    with hutch.open(target) as db:
        db.store.set_row("mine", "m1", {"a": 1})
    assert "--force" in run("restore", str(archive.path), target, code=1).output
    assert "would refuse" in run("restore", str(archive.path), target, "--dry-run").output
    with snapshots.open_reading(target) as db:
        assert db.store.get_table_ids() == ["mine"]
    run("restore", str(archive.path), target, "--force")
    assert hashes_of(target) == expected


def test_restore_dry_run_writes_nothing(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    run("backup", url, str(tmp_path / "b"))
    (archive,) = archives.list_archives(tmp_path / "b")
    assert (
        "writing would create it"
        in run("restore", str(archive.path), str(tmp_path / "t"), "--dry-run").output
    )
    assert not (tmp_path / "t").exists()


def test_backup_keeps_what_the_rules_say(
    tmp_path: Path, source: tuple[str, dict[str, str]]
) -> None:
    url, _ = source
    folder = tmp_path / "b"
    (folder).mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    for _ in range(3):
        run("backup", url, str(folder), "--keep-last", "2")
    assert len(archives.list_archives(folder)) == 2
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_backup_uses_the_default_url(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    data = json.loads(run("backup", str(tmp_path / "b"), "--json", env={"HUTCH_URL": url}).output)
    assert data["collections"] == {"people": 30, "places": 1}


# -- looking after a store -----------------------------------------------------------------------


def test_commands_that_write_refuse_a_store_that_does_not_exist(tmp_path: Path) -> None:
    for command in ("reindex", "compact", "shell"):
        run(command, str(tmp_path / "typo"), code=1)
    assert not (tmp_path / "typo").exists()


def test_stats_reindex_compact(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with hutch.open(url, collections={"people": {"indexed": ["name"]}}) as db:
        db.store.set_row("people", "p1", {"name": "Ann"})
    index = tmp_path / "store" / "people" / "indices" / "name.jsonl"
    index.unlink()
    assert "index" in run("verify", url, code=3).output
    run("reindex", url)
    assert index.is_file()
    run("verify", url)
    assert "Compacted" in run("compact", url).output
    assert "people" in run("stats", url).output


def test_shell_has_the_store_open(tmp_path: Path, source: tuple[str, dict[str, str]]) -> None:
    url, _ = source
    done = subprocess.run(
        [sys.executable, "-m", "hutch", "shell", url],
        input='print("rows:", db.store.get_row_count("people"))\n',
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "rows: 30" in done.stdout


def test_a_real_process_exits_3_when_verify_fails(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with hutch.open(url) as db:
        db.store.set_row("teams", "t1", {"name": "Blue", "organisation_id": "nowhere"})
    done = hutch_process("--plugin", "platform", "verify", url, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Data integrity: FAIL" in done.stdout


# -- plugins -------------------------------------------------------------------------------------


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> dict[str, str]:
    """A distribution on PYTHONPATH whose entry point adds a ``hello`` command."""
    site = tmp_path / "site"
    (site / "hutch_hello-1.0.dist-info").mkdir(parents=True)
    (site / "hutch_hello-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hutch-hello\nVersion: 1.0\n", encoding="utf-8"
    )
    (site / "hutch_hello-1.0.dist-info" / "entry_points.txt").write_text(
        "[hutch]\nhello = hutch_hello\n", encoding="utf-8"
    )
    (site / "hutch_hello.py").write_text(
        textwrap.dedent(
            """
            import click
            import hutch

            @hutch.hookimpl
            def hutch_register_commands(cli):
                @cli.command()
                @click.argument("name")
                def hello(name):
                    "Say hello."
                    click.echo(f"hello {name}")
            """
        ),
        encoding="utf-8",
    )
    return {"PYTHONPATH": str(site)}


def test_plugins_add_commands(tmp_path: Path, plugin_on_path: dict[str, str]) -> None:
    done = hutch_process("hello", "world", cwd=tmp_path, env=plugin_on_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello world\n"
    listed = hutch_process("--help", cwd=tmp_path, env=plugin_on_path)
    assert "hello" in listed.stdout


def test_an_import_refused_for_a_full_store_leaves_no_reject_file(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "people.jsonl").write_text('{"id": "p1", "n": 1}\nnot json\n', encoding="utf-8")
    url = str(tmp_path / "store")
    with hutch.open(url) as db:
        db.store.set_row("people", "old", {"n": 0})
    assert "--replace" in run("import", str(folder), url, code=1).output
    assert not (tmp_path / "in.rejects.jsonl").exists()
    run("import", str(folder), url, "--replace", code=1)  # one row rejected: exit 1
    assert (tmp_path / "in.rejects.jsonl").is_file()
    with snapshots.open_reading(url) as db:
        assert db.store.get_row_ids("people") == ["p1"]
