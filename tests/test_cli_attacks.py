"""Attacks on the ``hutch`` command: each test is a bug a user can hit (see the report).

Every test fails on the code it was written against and passes once the bug is
fixed, whichever reasonable fix is chosen (refusing, or doing the right thing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from children import WAIT
from click.testing import CliRunner, Result

import hutch
from hutch import archives, snapshots
from hutch.cli import cli
from hutch.verify import verify

SECRET = "s3cret"
PG_URL = f"postgresql://app:{SECRET}@127.0.0.1:1/app"  # no server there: refused at once
NOW = "2026-01-01T00:00:00+00:00"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``hutch ARGS`` through click's runner; it must end cleanly (an exit code, never an
    exception a user would see as a traceback)."""
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown = "".join(traceback.format_exception(*result.exc_info))  # type: ignore[misc]
        pytest.fail(f"hutch {' '.join(args)} raised instead of exiting:\n{shown}")
    return result


def fill(url: str, rows: int = 5) -> None:
    with hutch.open(url) as db, db.store.transaction():
        for i in range(rows):
            db.store.set_row("people", f"p{i}", {"name": f"Zoë {i}", "n": i, "f": 1.0})
        db.store.set_value("version", 3)


def rows_of(url: str) -> dict[str, dict[str, dict[str, object]]]:
    with snapshots.open_reading(url) as db:
        return snapshots.snapshot_of(db).tables


def backup_of(tmp_path: Path, url: str) -> Path:
    invoke("backup", url, str(tmp_path / "backups"))
    (info,) = archives.list_archives(tmp_path / "backups")
    return info.path


@pytest.fixture
def src(tmp_path: Path) -> str:
    url = str(tmp_path / "data")
    fill(url)
    return url


# -- 1. a store written inside a folder store breaks that store ----------------------------------


@pytest.mark.parametrize("command", ["copy", "restore", "import"])
def test_writing_a_store_inside_another_folder_store_leaves_that_one_readable(
    tmp_path: Path, src: str, command: str
) -> None:
    before = rows_of(src)
    if command == "copy":
        first = src
    elif command == "restore":
        first = str(backup_of(tmp_path, src))
    else:
        first = str(tmp_path / "exported")
        invoke("export", src, first)
    invoke(command, first, f"{src}/inner")
    # Refusing is fine (export and backup refuse a folder inside a store's folder), so is
    # writing there: the outer store must still open, unchanged.
    assert rows_of(src) == before


# -- 2. verify crashes on a relationship cell holding a list or an object ------------------------


@pytest.mark.parametrize("cell", [["o1"], {"id": "o1"}])
def test_verify_reports_a_relationship_cell_that_is_not_an_id(tmp_path: Path, cell: object) -> None:
    url = str(tmp_path / "store")
    with hutch.open(url) as db:
        db.store.set_row(
            "teams",
            "t1",
            {"name": "Blue", "organisation_id": cell, "created_at": NOW, "updated_at": NOW},
        )
    result = invoke("--plugin", "platform", "verify", url)
    assert result.exit_code == 3, result.output
    assert "t1" in result.output
    assert "Data integrity: FAIL" in result.output


def test_the_verify_library_call_reports_a_relationship_cell_that_is_not_an_id() -> None:
    with hutch.open("memory://") as db:
        db.relationships.define("team_org", local="teams", remote="organisations", on="org_id")
        db.store.set_row("teams", "t1", {"org_id": ["o1"]})
        report = verify(db)
    assert not report.passed
    assert any("t1" in problem for problem in report.problems)


# -- 3. retention removes another store's backups -------------------------------------------------


def test_backup_retention_never_removes_another_stores_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two applications, each with its store in ./data (the default URL), back up into one
    # shared folder. docs/operations.md: "other stores' archives ... are never removed".
    shared = tmp_path / "backups"
    for app, rows in (("app1", 5), ("app2", 7)):
        (tmp_path / app).mkdir()
        monkeypatch.chdir(tmp_path / app)
        fill("./data", rows)
        assert invoke("backup", str(shared), "--keep-last", "1").exit_code == 0
    sizes = sorted(
        sum(part.count for part in archives.read_manifest(info.path).collections.values())
        for info in archives.list_archives(shared)
    )
    assert sizes == [5, 7], "app2's backup removed app1's only archive"


# -- 4. restore of a FIFO hangs for ever ----------------------------------------------------------


def test_restore_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "hutch-backup-20260101T000000.000000Z.tar.gz"
    os.mkfifo(fifo)
    target = tmp_path / "restored"
    process = subprocess.Popen(
        [sys.executable, "-m", "hutch", "restore", str(fifo), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        process.wait(timeout=15)
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
        os.close(os.open(fifo, os.O_WRONLY))  # the reader is blocked in open(): let it go
        process.wait(WAIT)
    out, err = process.communicate()
    assert not hung, "hutch restore waited for ever for a writer on a FIFO"
    assert process.returncode == 1, out + err
    assert err.startswith("Error:")


# -- 5. --dry-run exits 0, "would write", where the real run then refuses -----------------------


# (A SQLite file that cannot be read is not told apart from one not made yet: the dry run
# says it could not read it, and that a real run makes it or fails the same way.)
_DRY_TARGETS = {
    "file-no-parent": "{tmp}/nowhere/store",
    "jsonl-no-parent": "jsonl:{tmp}/nowhere/store",
    "memory": "memory://",
}


@pytest.mark.parametrize(
    ("command", "target"),
    [
        *((command, target) for command in ("copy", "restore") for target in _DRY_TARGETS.values()),
        ("copy", "file://{src}"),  # SRC itself, by another name
    ],
    ids=[
        *(f"{command}-{name}" for command in ("copy", "restore") for name in _DRY_TARGETS),
        "copy-itself",
    ],
)
def test_dry_run_agrees_with_the_real_run(
    tmp_path: Path, src: str, target: str, command: str
) -> None:
    url = target.format(tmp=tmp_path, src=src)
    first = src if command == "copy" else str(backup_of(tmp_path, src))
    dry = invoke(command, first, url, "--dry-run", "--json")
    real = invoke(command, first, url)
    # --dry-run "checks the target": where the real run fails, it must not say it would write.
    assert (dry.exit_code == 0 and not json.loads(dry.stdout)["would_refuse"]) == (
        real.exit_code == 0
    ), f"--dry-run said:\n{dry.output}\nthe real run said:\n{real.output}"


# -- 6. a URL given where DIR goes becomes a folder named after it -------------------------------


@pytest.mark.parametrize("command", ["export", "backup"])
@pytest.mark.parametrize("url", ["sqlite:///app.db", PG_URL], ids=["sqlite", "postgresql"])
def test_a_url_is_not_taken_for_the_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    fill("./data")
    result = invoke(command, url)  # the user meant: this store, and forgot DIR
    assert result.exit_code != 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert SECRET not in result.output


# -- 7. passwords printed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("import", PG_URL, "{exported}"),  # import is DIR [URL]; export is [URL] DIR
        ("restore", PG_URL, "{archive}"),  # restore is ARCHIVE [URL]
        ("verify", "{src}", PG_URL),  # forgot --against
        ("copy", "{src}", "{tmp}/copy", PG_URL),  # one argument too many
        ("backups", PG_URL),  # backups takes the folder, not the store
    ],
    ids=["import-swapped", "restore-swapped", "verify-extra", "copy-extra", "backups"],
)
def test_passwords_are_not_printed_when_arguments_are_swapped_or_extra(
    tmp_path: Path, src: str, args: tuple[str, ...]
) -> None:
    exported = tmp_path / "exported"
    invoke("export", src, str(exported))
    archive = backup_of(tmp_path, src)
    given = [a.format(exported=exported, archive=archive, src=src, tmp=tmp_path) for a in args]
    result = invoke(*given)
    assert result.exit_code != 0
    assert SECRET not in result.output, result.output


@pytest.mark.parametrize("scheme", ["file", "jsonl"])
@pytest.mark.parametrize("command", ["stats", "verify", "export"])
def test_a_secret_query_parameter_of_a_folder_url_is_not_printed(
    tmp_path: Path, scheme: str, command: str
) -> None:
    url = f"{scheme}:{tmp_path}/store?password={SECRET}"
    args = (command, url, str(tmp_path / "out")) if command == "export" else (command, url)
    result = invoke(*args)
    assert result.exit_code == 1
    assert SECRET not in result.output, result.output


# -- 8. --json output with a path that is not UTF-8 ----------------------------------------------


@pytest.mark.parametrize("command", ["export", "backup"])
def test_json_output_with_a_path_that_is_not_utf8(tmp_path: Path, src: str, command: str) -> None:
    target = os.path.join(str(tmp_path), os.fsdecode(b"out\xff"))
    result = invoke(command, src, target, "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)


# -- 9. an empty URL argument is taken as "no URL": the default store ----------------------------


def test_an_empty_url_argument_is_not_the_default_store(tmp_path: Path, src: str) -> None:
    archive = backup_of(tmp_path, src)
    exported = tmp_path / "exported"
    invoke("export", src, str(exported))
    production = str(tmp_path / "production")
    with hutch.open(production) as db:
        db.store.set_row("orders", "o1", {"total": 5})
        db.store.set_row("people", "mine", {"name": "kept"})
    env = {"HUTCH_URL": production}
    # As in a script: hutch restore "$ARCHIVE" "$TARGET" --force, with $TARGET unset.
    restored = invoke("restore", str(archive), "", "--force", env=env)
    assert restored.exit_code != 0, restored.output
    imported = invoke("import", str(exported), "", "--replace", env=env)
    assert imported.exit_code != 0, imported.output
    assert rows_of(production) == {
        "orders": {"o1": {"total": 5}},
        "people": {"mine": {"name": "kept"}},
    }


# -- 10. --collections naming a collection that does not exist ------------------------------------


@pytest.mark.parametrize("command", ["copy", "export"])
def test_collections_naming_no_collection_is_an_error(
    tmp_path: Path, src: str, command: str
) -> None:
    result = invoke(command, src, str(tmp_path / "out"), "--collections", "peple")  # a typo
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:")
    assert "peple" in result.output


# -- 11. a byte order mark: accepted in csv, every row refused in jsonl, json, _values.json --------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("people.jsonl", '{"id": "p1", "name": "Ann"}\n'),
        ("people.json", '[{"id": "p1", "name": "Ann"}]\n'),
        ("people.csv", "id,name\r\np1,Ann\r\n"),
    ],
    ids=["jsonl", "json", "csv"],
)
def test_import_reads_files_saved_with_a_byte_order_mark(
    tmp_path: Path, name: str, text: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8-sig")  # as Notepad saves "UTF-8 with BOM"
    (folder / "_values.json").write_text('{"version": 3}\n', encoding="utf-8-sig")
    dst = str(tmp_path / "store")
    result = invoke("import", str(folder), dst)
    assert result.exit_code == 0, result.output
    with snapshots.open_reading(dst) as db:
        assert db.store.get_row("people", "p1") == {"name": "Ann"}
        assert db.store.get_values() == {"version": 3}


# -- 12. verify --against the same store: the library's advice about threads ----------------------


def test_verify_against_the_same_store_by_another_name(tmp_path: Path, src: str) -> None:
    result = invoke("verify", src, "--against", f"file://{src}")
    # Comparing a store with itself may pass, or be refused as copy refuses it; the error of
    # hutch.open meant for programmers ("share the one Database between threads") is neither.
    assert result.exit_code in (0, 1), result.output
    assert "thread" not in result.output, result.output


# -- 13. a rejects file left by an earlier import refuses an import that rejects nothing ---------


def test_a_leftover_rejects_file_does_not_refuse_an_import_that_rejects_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "people.jsonl").write_text('{"id": "p1", "name": "Ann"}\nnot json\n', "utf-8")
    assert invoke("import", str(folder), str(tmp_path / "first")).exit_code == 1
    # The user reads in.rejects.jsonl, fixes the export and imports again.
    (folder / "people.jsonl").write_text('{"id": "p1", "name": "Ann"}\n', "utf-8")
    result = invoke("import", str(folder), str(tmp_path / "second"))
    assert result.exit_code == 0, result.output
    assert rows_of(str(tmp_path / "second")) == {"people": {"p1": {"name": "Ann"}}}
