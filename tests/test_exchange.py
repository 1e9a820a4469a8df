"""Export folders (hutch.exchange): exact round trips, rejects with line numbers, hostile
folders, and the check of imported rows against registered models; an export is whole or
absent after a crash, and exports and reject files are readable by their owner only."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_files import tmpfs

import hutch
from hutch import snapshots
from hutch.backends import file as file_backend
from hutch.backends import memory as memory_backend
from hutch.cells import Row
from hutch.exchange import (
    FORMATS,
    ExchangeError,
    Reject,
    check_models,
    export,
    read_export,
    write_rejects,
)
from hutch.persister import Snapshot
from hutch.plugin_manager import AUTOLOAD_OFF
from hutch.serialise import to_row

# Strings a careless CSV writer would read back as something else, or split, or mangle.
AWKWARD_STRINGS = {
    "five": "5",
    "empty": "",
    "true": "true",
    "null": "null",
    "list": "[1]",
    "quoted": '"quoted"',
    "spaced": " 5",
    "spaced_true": "true ",
    "minus": "-",
    "brace": "{",
    "comma": "a,b",
    "lines": "one\ntwo\r\nthree\rfour",
    "quotes": 'say "hi", then ""',
    "tab": "\t",
    "overflow": "1e999",
    "long_digits": "12345678901234567890123",
    "broken_list": "[1,",
    "unicode": "héllo ☃ 𝄞 \u2028",
}

AWKWARD = Snapshot(
    tables={
        "things": {
            "a": {
                "int": 1,
                "float": 1.0,
                "negative_zero": -0.0,
                "biggest": 2**63 - 1,
                "smallest": -(2**63),
                "none": None,
                "yes": True,
                "no": False,
                "huge_float": 1e300,
                "tiny_float": 5e-324,
            },
            "b": AWKWARD_STRINGS,
            "c": {
                "nested": {"z": [1, 2.5, {"deep": [None, True, "x"]}], "a": {}},
                "empty_list": [],
                "empty_object": {},
                "list_of_strings": ["5", "", "null"],
            },
            "9.d-e_f": {"with,comma": 1, "with\nnewline": "x", 'with"quote': None, "ünï": "ü"},
        },
        "other": {"x": {"v": 1}},
    },
    values={"version": 3, "name": "ünï", "config": {"a": [1, 2]}, "ratio": 1.0, "empty": ""},
)


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")


@pytest.fixture
def source() -> Iterator[hutch.Database]:
    """A memory store holding :data:`AWKWARD`."""
    with hutch.open("memory://", plugins=[memory_backend]) as db:
        snapshots.write(db, AWKWARD)
        yield db


def rejected(rejects: list[Reject]) -> list[tuple[int | None, str | None]]:
    return [(reject.line, reject.row_id) for reject in rejects]


def write_file(folder: Path, name: str, data: str | bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_exact(source: hutch.Database, tmp_path: Path, fmt: str) -> None:
    snapshot = snapshots.snapshot_of(source)
    written = export(snapshot, tmp_path / "new" / "export", fmt)

    assert [path.name for path in written] == [f"other.{fmt}", f"things.{fmt}", "_values.json"]
    back, rejects = read_export(tmp_path / "new" / "export")
    assert rejects == []
    assert snapshots.hashes(back) == snapshots.hashes(snapshot)
    assert back.tables["things"]["a"]["negative_zero"] == 0.0
    assert str(back.tables["things"]["a"]["negative_zero"]) == "-0.0"

    # ... and through a file store, as `hutch import` writes it
    with hutch.open(str(tmp_path / "store"), plugins=[file_backend]) as target:
        snapshots.write(target, back)
    with hutch.open(str(tmp_path / "store"), plugins=[file_backend]) as target:
        assert snapshots.hashes(snapshots.snapshot_of(target)) == snapshots.hashes(snapshot)


def test_an_empty_snapshot_exports_to_an_empty_folder(tmp_path: Path) -> None:
    assert export(Snapshot(), tmp_path / "out", "csv") == []
    assert read_export(tmp_path / "out") == (Snapshot(), [])


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_is_readable_by_its_owner_only(
    source: hutch.Database, tmp_path: Path, fmt: str
) -> None:
    tmp_path.chmod(0o755)
    folder = tmp_path / "new" / "export"

    written = export(snapshots.snapshot_of(source), folder, fmt)

    assert written
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in written)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o700
    assert os.listdir(tmp_path) == ["new"]  # no temporary folder left beside it
    assert os.listdir(folder.parent) == ["export"]


def test_an_existing_empty_folder_takes_the_export(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir(mode=0o755)

    export(Snapshot(tables={"t": {"a": {"v": 1}}}), folder, "jsonl")

    assert os.listdir(folder) == ["t.jsonl"]
    assert folder.stat().st_mode & 0o777 == 0o700
    assert os.listdir(tmp_path) == ["out"]


def test_jsonl_lists_id_first_then_sorted_keys(tmp_path: Path) -> None:
    rows: dict[str, Row] = {"b": {"z": {"y": 1, "x": 2}, "a": 1}, "a": {"k": "v"}}
    export(Snapshot(tables={"t": rows}), tmp_path / "out", "jsonl")

    lines = (tmp_path / "out" / "t.jsonl").read_text().splitlines()
    assert lines == ['{"id":"a","k":"v"}', '{"id":"b","a":1,"z":{"x":2,"y":1}}']


def test_json_is_an_indented_array(tmp_path: Path) -> None:
    rows: dict[str, Row] = {"b": {"z": [1], "a": 1}, "a": {"k": "v"}}
    export(Snapshot(tables={"t": rows}), tmp_path / "out", "json")

    text = (tmp_path / "out" / "t.json").read_text()
    assert text.startswith('[\n  {\n    "id": "a",\n    "k": "v"\n  },\n  {\n    "id": "b",')
    assert json.loads(text) == [{"id": "a", "k": "v"}, {"id": "b", "a": 1, "z": [1]}]


def test_csv_cells_follow_the_documented_rule(tmp_path: Path) -> None:
    rows: dict[str, Row] = {
        "r1": {"s": "plain", "n": 1, "f": 1.0, "none": None, "l": [1, "a"]},
        "r2": {"s": "5"},
        "r3": {"s": ""},
        "r4": {"s": "true"},
    }
    export(Snapshot(tables={"t": rows}), tmp_path / "out", "csv")

    data = (tmp_path / "out" / "t.csv").read_text(encoding="utf-8")
    assert data.splitlines()[0] == "id,f,l,n,none,s"
    assert list(csv.reader(io.StringIO(data, newline=""))) == [
        ["id", "f", "l", "n", "none", "s"],
        ["r1", "1.0", '[1,"a"]', "1", "null", "plain"],
        ["r2", "", "", "", "", '"5"'],
        ["r3", "", "", "", "", '""'],
        ["r4", "", "", "", "", '"true"'],
    ]


def test_a_hand_written_csv_reads_by_the_same_rule(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_file(folder, "t.csv", 'id,a,b\r\nr1,hello,5\r\nr2,"[1,2]","[1, 2"\r\nr3,,"""5"""\r\n')

    snapshot, rejects = read_export(folder)
    assert rejects == []
    assert snapshot.tables == {
        "t": {"r1": {"a": "hello", "b": 5}, "r2": {"a": [1, 2], "b": "[1, 2"}, "r3": {"b": "5"}}
    }


# -- export refuses -----------------------------------------------------------------------------


def test_export_refuses_a_folder_that_holds_anything(
    source: hutch.Database, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    write_file(folder, ".hidden", "mine")

    with pytest.raises(ExchangeError, match=r"not empty \(it holds \.hidden\).*new or empty"):
        export(snapshots.snapshot_of(source), folder, "jsonl")
    assert os.listdir(folder) == [".hidden"]
    assert (folder / ".hidden").read_text() == "mine"


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="unknown export format 'xml'; use one of jsonl"):
        export(Snapshot(), tmp_path / "out", "xml")
    assert not (tmp_path / "out").exists()


def test_a_failed_export_leaves_nothing(tmp_path: Path) -> None:
    # The second collection holds a set, which is no JSON: its file fails after the first's.
    broken = Snapshot(tables={"a": {"r": {"v": 1}}, "b": {"r": {"v": {1, 2}}}})
    (tmp_path / "empty").mkdir()

    for folder in (tmp_path / "out", tmp_path / "empty"):
        with pytest.raises(TypeError):
            export(broken, folder, "jsonl")
    assert sorted(os.listdir(tmp_path)) == ["empty"]  # no temporary folder either
    assert os.listdir(tmp_path / "empty") == []


def test_an_interrupted_export_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(Snapshot(tables={"a": {"r": {"v": 1}}}, values={"k": 1}), tmp_path / "out", "csv")
    assert os.listdir(tmp_path) == []


CRASHING_EXPORT = """
import os, sys
from pathlib import Path
from hutch import exchange
from hutch.persister import Snapshot

real_fsync, synced = os.fsync, []
def fsync(fd):
    real_fsync(fd)
    synced.append(fd)
    if len(synced) == 2:  # the second collection's file is written: the power goes
        os._exit(9)
os.fsync = fsync
tables = {name: {"r": {"v": 1}} for name in ("a", "b", "c")}
exchange.export(Snapshot(tables=tables, values={"k": 1}), Path(sys.argv[1]), "jsonl")
"""


def test_a_crash_midway_leaves_no_export_and_the_rest_is_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    died = subprocess.run([sys.executable, "-c", CRASHING_EXPORT, str(folder)], check=False)
    assert died.returncode == 9

    assert not folder.exists()
    (left,) = tmp_path.iterdir()  # the temporary folder: dot-led, and never read as an export
    assert left.name.startswith(".out.tmp-")
    assert sorted(os.listdir(left)) == ["a.jsonl", "b.jsonl"]
    with pytest.raises(hutch.StorageError, match=r"could not read the export .*out: No such"):
        read_export(folder)
    with pytest.raises(ExchangeError, match=r"never finished .* export again, then remove it"):
        read_export(left)

    export(Snapshot(tables={"a": {"r": {"v": 1}}}), folder, "jsonl")  # exporting again works
    assert read_export(folder) == (Snapshot(tables={"a": {"r": {"v": 1}}}), [])


def test_a_folder_filled_meanwhile_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    real_rename = os.rename

    def someone_writes_first(source: Any, target: Any) -> None:
        (folder / "theirs.txt").write_text("theirs")  # another export, or a person
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", someone_writes_first)
    with pytest.raises(ExchangeError, match=r"not empty \(it holds theirs\.txt\)"):
        export(Snapshot(tables={"a": {"r": {"v": 1}}}), folder, "jsonl")
    assert os.listdir(folder) == ["theirs.txt"]
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("kind", ["file", "link to an empty folder", "dangling link"])
def test_export_refuses_what_is_not_a_folder(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "out"
    if kind == "file":
        folder.write_text("mine")
    else:
        (tmp_path / "empty").mkdir()
        folder.symlink_to(tmp_path / ("empty" if kind.endswith("folder") else "missing"))

    with pytest.raises(ExchangeError, match="exists and is not a folder"):
        export(Snapshot(tables={"a": {"r": {"v": 1}}}), folder, "jsonl")
    assert sorted(os.listdir(tmp_path)) == (["out"] if kind == "file" else ["empty", "out"])


def test_export_refuses_the_name_of_an_unfinished_export(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="named as hutch names an unfinished export"):
        export(Snapshot(), tmp_path / ".out.tmp-0123456789abcdef", "jsonl")
    assert os.listdir(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system."""
    with tmpfs(tmp_path / "small", "size=1m") as where:
        yield where


def test_a_full_disk_is_disk_full_naming_the_export_and_leaves_nothing(small_disk: Path) -> None:
    rows = {f"r{i}": {"noise": os.urandom(64).hex()} for i in range(20_000)}
    folder = small_disk / "out"

    with pytest.raises(hutch.DiskFull) as caught:
        export(Snapshot(tables={"t": rows}), folder, "jsonl")

    assert str(caught.value).startswith(f"could not export to {folder}: the disk is full")
    assert ".tmp" not in str(caught.value)
    assert os.listdir(small_disk) == []


# -- rejects ------------------------------------------------------------------------------------


def test_jsonl_rejects_name_the_line(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    deep_long = "[" * 5000 + "1234567890123456789012" + "]" * 5000
    lines = [
        b'{"id": "a", "v": 1}',  # 1: kept
        b"not json",  # 2
        b'{"id": "../etc", "v": 1}',  # 3: a bad id
        b'{"id": "big", "v": 18446744073709551616}',  # 4: beyond 64 bits
        b'{"id": "a", "v": 2}',  # 5: a duplicate
        b"[1, 2]",  # 6: not an object
        b'{"v": 1}',  # 7: no id
        b"   ",  # 8: blank, skipped
        b'{"id": "empty"}',  # 9: no cells
        b'{"id": "nul", "v": "a\\u0000b"}',  # 10: NUL
        b'{"id": "bytes", "v": "\xff\xfe"}',  # 11: not UTF-8
        b'{"id": "deep", "v": ' + deep.encode() + b"}",  # 12: beyond orjson's depth
        b'{"id": "deeper", "v": ' + deep_long.encode() + b"}",  # 13: stdlib json's recursion
        b'{"id": "nested", "v": ' + b"[" * 150 + b"]" * 150 + b"}",  # 14: beyond MAX_NESTING
        b'{"id": "b", "id2": 1, "v": 2.0}',  # 15: kept
        b'{"id": "nan", "v": NaN}',  # 16
    ]
    write_file(tmp_path / "in", "t.jsonl", b"\n".join(lines) + b"\r\n")

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {"t": {"a": {"v": 1}, "b": {"id2": 1, "v": 2.0}}}
    assert rejected(rejects) == [
        (2, None),
        (3, "../etc"),
        (4, "big"),
        (5, "a"),
        (6, None),
        (7, None),
        (9, "empty"),
        (10, "nul"),
        (11, None),
        (12, None),
        (13, None),
        (14, "nested"),
        (16, None),
    ]
    reasons = [reject.reason for reject in rejects]
    assert reasons[0].startswith("not JSON:")
    assert "invalid row id '../etc'" in reasons[1]
    assert "64-bit" in reasons[2]
    assert reasons[3] == "duplicate id: line 1 has it too and is kept"
    assert reasons[4] == "not an object but an array"
    assert reasons[5] == 'no "id"'
    assert "NUL" in reasons[7]
    assert "more than 100 deep" in reasons[11]
    assert all(reject.file == "t.jsonl" and reject.collection == "t" for reject in rejects)
    assert rejects[0].raw == "not json"
    assert all(len(reject.raw) <= 1000 and len(reject.reason) <= 1000 for reject in rejects)


def test_json_rejects_name_the_record(tmp_path: Path) -> None:
    records = [{"id": "a", "v": 1}, {"id": "a", "v": 2}, "text", {"id": "b", "v": [1]}, {}, 5]
    deep = '{"id": "deep", "v": ' + "[" * 1000 + "]" * 1000 + "}"  # deeper than json.dumps goes
    write_file(tmp_path / "in", "t.json", json.dumps(records)[:-1] + ", " + deep + "]")

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {"t": {"a": {"v": 1}, "b": {"v": [1]}}}
    assert rejected(rejects) == [(2, "a"), (3, None), (5, None), (6, None), (7, "deep")]
    assert rejects[3].reason == "not an object but a number"
    assert "more than 100 deep" in rejects[4].reason
    assert rejects[1].reason == "not an object but a string"
    assert json.loads(rejects[0].raw) == {"id": "a", "v": 2}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ('[{"id": "a", "v": 1},', "not JSON, so none of it was read"),
        ('{"id": "a", "v": 1}', "not a JSON array of rows but an object"),
        ("[" * 3000 + "]" * 3000, "not JSON"),
        ("[" * 3000 + "1" * 30 + "]" * 3000, "nests lists and objects too deep"),
    ],
)
def test_a_json_file_that_does_not_parse_is_one_reject(tmp_path: Path, data: str, why: str) -> None:
    write_file(tmp_path / "in", "t.json", data)
    write_file(tmp_path / "in", "u.jsonl", '{"id": "a", "v": 1}\n')

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {"u": {"a": {"v": 1}}}  # the other collection is read
    assert [(r.file, r.line, r.collection) for r in rejects] == [("t.json", None, "t")]
    assert why in rejects[0].reason


def test_csv_rejects_name_the_line_a_record_starts_on(tmp_path: Path) -> None:
    data = (
        "v,id\r\n"  # the id column may be anywhere
        "1,a\r\n"  # 2: kept
        '"two\r\nlines",b\r\n'  # 3-4: kept
        "3,a\r\n"  # 5: a duplicate
        "\r\n"  # 6: blank
        "4\r\n"  # 7: too few cells
        "5,c,extra\r\n"  # 8: too many
        "6,-bad\r\n"  # 9: a bad id
        "99999999999999999999999,d\r\n"  # 10: beyond 64 bits
        ",e\r\n"  # 11: no cells
    )
    write_file(tmp_path / "in", "t.csv", data.encode() + b"\xff,f\r\n")  # 12: not UTF-8

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {"t": {"a": {"v": 1}, "b": {"v": "two\r\nlines"}}}
    assert rejected(rejects) == [
        (5, "a"),
        (7, None),
        (8, None),
        (9, "-bad"),
        (10, "d"),
        (11, "e"),
        (12, "f"),
    ]
    assert rejects[1].reason == "1 cells, but the header has 2"
    assert rejects[2].raw == "5,c,extra"
    assert "lone surrogate" in rejects[6].reason

    write_rejects(tmp_path / "rejects.jsonl", rejects)  # the undecodable byte is written escaped
    lines = (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[6])["raw"] == "\\udcff,f"


def test_broken_csv_quoting_rejects_the_rest(tmp_path: Path) -> None:
    write_file(tmp_path / "in", "t.csv", 'id,v\r\na,1\r\nb,"x"y\r\nc,3\r\n')

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {"t": {"a": {"v": 1}}}
    assert rejected(rejects) == [(3, None)]
    assert rejects[0].reason.startswith("not CSV from here on")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("", "it is empty"),
        ("name,v\r\nx,1\r\n", "it must name the column 'id' once"),
        ("id,v,id\r\n", "it must name the column 'id' once"),
        ("id,v,v\r\n", "it names the column 'v' twice"),
        ("id,,v\r\n", "invalid cell id ''"),
    ],
)
def test_a_csv_without_a_usable_header_is_one_reject(tmp_path: Path, data: str, why: str) -> None:
    write_file(tmp_path / "in", "t.csv", data)

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.tables == {}
    assert [(r.file, r.line) for r in rejects] == [("t.csv", None)]
    assert why in rejects[0].reason


def test_a_csv_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    write_file(tmp_path / "in", "t.csv", "\ufeffid,v\r\na,1\r\n".encode())

    assert read_export(tmp_path / "in") == (Snapshot(tables={"t": {"a": {"v": 1}}}), [])


def test_values_are_checked_one_by_one(tmp_path: Path) -> None:
    write_file(tmp_path / "in", "_values.json", '{"ok": 1, "": 2, "nul": "a\\u0000b", "n": null}')

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.values == {"ok": 1, "n": None}
    assert [(r.file, r.line, r.collection) for r in rejects] == [
        ("_values.json", 2, None),
        ("_values.json", 3, None),
    ]
    assert "invalid value id ''" in rejects[0].reason


def test_values_that_are_not_an_object_are_one_reject(tmp_path: Path) -> None:
    write_file(tmp_path / "in", "_values.json", "[1]")

    snapshot, rejects = read_export(tmp_path / "in")
    assert snapshot.values == {}
    assert [(r.line, r.reason) for r in rejects] == [
        (None, "not a JSON object of key -> value but an array")
    ]


def test_write_rejects_writes_one_object_a_line(tmp_path: Path) -> None:
    rejects = [
        Reject(file="t.jsonl", line=3, collection="t", row_id="r", reason="why", raw="x" * 5000),
        Reject(reason="no file"),
    ]
    path = tmp_path / "rejects.jsonl"
    write_rejects(path, rejects)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {
            "file": "t.jsonl",
            "line": 3,
            "collection": "t",
            "row_id": "r",
            "reason": "why",
            "raw": "x" * 1000,
        },
        {
            "file": None,
            "line": None,
            "collection": None,
            "row_id": None,
            "reason": "no file",
            "raw": "",
        },
    ]
    assert os.listdir(tmp_path) == ["rejects.jsonl"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_existing_file_is_never_replaced_by_rejects(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    path.write_text("someone's notes")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "nowhere")

    for taken in (path, tmp_path / "link.jsonl"):
        with pytest.raises(ExchangeError, match=r"exists already.*move it away, or choose"):
            write_rejects(taken, [Reject(reason="x")])
    assert path.read_text() == "someone's notes"
    assert sorted(os.listdir(tmp_path)) == ["link.jsonl", "rejects.jsonl"]


def test_rejects_into_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "rejects.jsonl"
    with pytest.raises(hutch.StorageError, match=r"could not write the rejects to .*missing/rej"):
        write_rejects(path, [Reject(reason="x")])


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written in, even by root: a read-only file system."""
    with tmpfs(tmp_path / "read-only", "ro,size=1m") as where:
        yield where


def test_rejects_into_a_folder_that_cannot_be_written(read_only: Path) -> None:
    path = read_only / "rejects.jsonl"
    with pytest.raises(hutch.StorageError, match="could not write the rejects to") as caught:
        write_rejects(path, [Reject(reason="x")])
    assert str(caught.value).startswith(f"could not write the rejects to {path}: ")
    assert ".tmp" not in str(caught.value)


# -- hostile folders ----------------------------------------------------------------------------


def test_a_symbolic_link_is_refused_even_to_a_good_file(tmp_path: Path) -> None:
    outside = write_file(tmp_path, "secret.jsonl", '{"id": "a", "password": "x"}\n')
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "users.jsonl").symlink_to(outside)

    with pytest.raises(ExchangeError, match=r"'users\.jsonl' is not a regular file"):
        read_export(folder)


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "users.jsonl")

    with pytest.raises(ExchangeError, match=r"'users\.jsonl' is not a regular file"):
        read_export(folder)


def test_every_stray_entry_is_named_and_nothing_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_file(folder, "users.jsonl", '{"id": "a", "v": 1}\n')
    write_file(folder, "users.csv", "id,v\r\na,1\r\n")
    write_file(folder, "notes.txt", "hello")
    write_file(folder, "bad-name.jsonl", "")
    write_file(folder, "1st.csv", "")
    write_file(folder, "_values.jsonl", "")
    (folder / "sub").mkdir()

    with pytest.raises(ExchangeError) as raised:
        read_export(folder)
    message = str(raised.value)
    for expected in [
        "'1st.csv' does not name a collection",
        "'_values.jsonl' does not name a collection",
        "'bad-name.jsonl' does not name a collection",
        "'notes.txt' is not <collection>.jsonl, .json or .csv",
        "'sub' is not a regular file",
        "'users.csv' and 'users.jsonl' both hold the collection 'users'",
        "nothing was read",
    ]:
        assert expected in message


def test_a_missing_folder_is_a_hutch_error(tmp_path: Path) -> None:
    with pytest.raises(hutch.StorageError, match=r"could not read the export .*missing: No such"):
        read_export(tmp_path / "missing")


def test_a_long_text_cell_round_trips_through_csv(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    rows = {"a": {"text": "x" * 500_000}}
    export(Snapshot(tables={"t": rows}), tmp_path / "out", "csv")

    assert read_export(tmp_path / "out") == (Snapshot(tables={"t": rows}), [])
    assert csv.field_size_limit() == limit  # the process-wide limit is put back


# -- models -------------------------------------------------------------------------------------


def _digits(value: Any) -> str:
    """A phone number compares by its digits; one without any is refused."""
    digits = re.sub(r"\D", "", value)
    if not digits:
        raise hutch.ValidationError("a phone number needs digits", {"phone": "no digits"})
    return digits


@attrs.frozen(kw_only=True)
class Member(hutch.Model):
    __collection__ = "members"
    __unique__ = (
        hutch.Unique("email", case_insensitive=True),
        "handle",
        hutch.Unique("phone", key=_digits),
        "api_key",
    )

    name: str
    email: str
    handle: str | None = None
    phone: str | None = None
    age: int = 0
    api_key: str | None = attrs.field(default=None, repr=False)


@pytest.fixture
def members_db() -> Iterator[hutch.Database]:
    with hutch.open("memory://", plugins=[memory_backend]) as db:
        db.models.register(Member)
        yield db


def test_check_models_rejects_rows_that_do_not_fit(
    members_db: hutch.Database, tmp_path: Path
) -> None:
    repo = members_db.repo(Member)
    repo.create(id="m1", name="Ann", email="ann@x.io", handle="ann", phone="+1 555 0100")
    original = snapshots.snapshot_of(members_db)
    good = original.tables["members"]["m1"]
    extra = {
        "m2": {**good, "email": "ANN@x.io", "handle": "ann2", "phone": None},  # email, any case
        "m3": {**good, "email": "c@x.io", "handle": "ann", "phone": None},  # handle
        "m4": {**good, "email": "d@x.io", "handle": None, "phone": "1-555-0100"},  # phone digits
        "m5": {**good, "email": "e@x.io", "handle": None, "phone": "none"},  # the key refuses
        "m6": {**good, "email": "f@x.io", "handle": None, "phone": None, "age": "3"},  # a str
        "m7": {"email": "g@x.io"},  # no name, no timestamps
        "m8": {**good, "email": "h@x.io", "handle": None, "phone": None, "colour": "red"},  # kept
        "m9": {**good, "email": "i@x.io", "handle": None, "phone": None, "api_key": "k-123456789"},
        "m10": {**good, "email": "j@x.io", "handle": None, "phone": None, "api_key": "k-123456789"},
        "m11": {**good, "email": "k@x.io", "handle": None, "phone": None},  # kept
    }
    snapshot = Snapshot(
        tables={"members": {**original.tables["members"], **extra}, "loose": {"x": {"v": 1}}},
        values={"k": 1},
    )
    export(snapshot, tmp_path / "out", "jsonl")
    imported, read_rejects = read_export(tmp_path / "out")
    assert read_rejects == []

    checked, rejects = check_models(imported, [Member])

    assert sorted(checked.tables["members"]) == ["m1", "m10", "m11", "m8"]
    assert checked.tables["members"]["m8"]["colour"] == "red"  # another version's field: kept
    assert checked.tables["loose"] == {"x": {"v": 1}}  # no model: not checked
    assert checked.values == {"k": 1}
    assert len(imported.tables["members"]) == 11  # the snapshot given is left as it was
    by_id = {str(reject.row_id): reject.reason for reject in rejects}
    assert sorted(by_id, key=lambda r: int(r[1:])) == [
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "m9",
    ]
    assert by_id["m2"] == (
        "members.email must be unique (ignoring case): 'ANN@x.io' is taken by 'm1'"
    )
    assert by_id["m3"] == "members.handle must be unique: 'ann' is taken by 'm1'"
    assert by_id["m4"] == (
        "members.phone must be unique (compared by _digits): '1-555-0100' is taken by 'm1'"
    )
    assert by_id["m5"] == "does not fit the model Member: phone: no digits"
    assert by_id["m6"].startswith("does not fit the model Member: age:")
    assert "name: required field missing" in by_id["m7"]
    # "later" is in file order, and an export lists rows by id: m10 before m9
    assert by_id["m9"] == "members.api_key must be unique: this value is taken by 'm10'"
    secret = next(reject for reject in rejects if reject.row_id == "m9")
    assert "k-123456789" not in secret.raw
    assert json.loads(secret.raw)["api_key"] == "<secret>"
    assert all(r.collection == "members" and r.file is None for r in rejects)

    # what passed is what a repository reads back
    with hutch.open("memory://", plugins=[memory_backend]) as target:
        snapshots.write(target, checked)
        assert [m.id for m in target.repo(Member).all()] == ["m1", "m10", "m11", "m8"]


def test_check_models_drops_a_collection_left_empty(members_db: hutch.Database) -> None:
    snapshot = Snapshot(tables={"members": {"m1": {"name": 1}}})

    checked, rejects = check_models(snapshot, [Member])
    assert checked.tables == {}
    assert rejected(rejects) == [(None, "m1")]


def _broken(value: Any) -> str:
    raise KeyError(value)


@attrs.frozen(kw_only=True)
class Badge(hutch.Model):
    __collection__ = "badges"
    __unique__ = (hutch.Unique("code", key=_broken),)

    code: str


def test_a_broken_unique_key_is_a_definition_error(members_db: hutch.Database) -> None:
    members_db.models.register(Badge)
    _, badge = to_row(Badge(id="b1", code="x"))

    with pytest.raises(hutch.DefinitionError, match=r"the key of Badge\.code failed \(KeyError"):
        check_models(Snapshot(tables={"badges": {"b1": badge}}), [Badge])
