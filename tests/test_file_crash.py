"""Crash safety of the file backend: a writer killed with SIGKILL at a random moment.

A writer process runs a plan of transactions that this test wrote (so the test
knows what each one did) and acknowledges each commit on stdout once it has
returned. The test kills it after a random number of acknowledgements, then
opens the folder and checks that it opens cleanly, that every acknowledged
commit is there with exactly its data, that the one in flight is all there or
not at all, that no temp file is left, and that the record, value and index
files agree with the store.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import logfiles
import orjson
import pytest
from children import WAIT, LineReader

import hutch
from hutch.backends.file import FilePersister, indices

PLAN_LENGTH = 500  # far more than the writer commits before it is killed
KINDS = ("alpha", "beta", "gamma", "delta")
ITEMS_UNLOGGED = {"items": {"wal": False, "indexed": ["kind"]}}

#: The writer: runs the plan (one JSON transaction per line), one acknowledgement per commit.
WRITER = """\
import json, os, signal, sys
import hutch

folder, plan_file, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(plan_file, encoding="utf-8") as lines:
    plan = [json.loads(line) for line in lines]
db = hutch.open(folder, **options)
for number, step in enumerate(plan, 1):
    if step["reopen"]:  # close (a checkpoint) and open again (another, if the log holds any)
        db.close()
        db = hutch.open(folder, **options)
    with db.store.transaction():
        for method, *arguments in step["ops"]:
            getattr(db.store, method)(*arguments)
    os.write(1, b"%d\\n" % number)  # the commit returned: acknowledge it
os.write(1, b"done\\n")
signal.pause()  # idle until killed
"""

Op = list[Any]
Tables = dict[str, dict[str, dict[str, Any]]]
State = tuple[Tables, dict[str, Any]]  # tables and keyed values


# -- the model: what the store must hold after the first n transactions of the plan ----------


class Model:
    """Tables and values as plain dicts, changed by the same operations the writer calls."""

    def __init__(self) -> None:
        self.tables: Tables = {}
        self.values: dict[str, Any] = {}

    def apply(self, ops: list[Op]) -> None:
        for method, *args in ops:
            if method == "set_row":
                table, row_id, row = args
                self.tables.setdefault(table, {})[row_id] = copy.deepcopy(row)
            elif method == "set_partial_row":
                table, row_id, partial = args
                self.tables.setdefault(table, {}).setdefault(row_id, {}).update(
                    copy.deepcopy(partial)
                )
            elif method == "set_cell":
                table, row_id, cell, value = args
                self.tables.setdefault(table, {}).setdefault(row_id, {})[cell] = copy.deepcopy(
                    value
                )
            elif method == "del_row":
                table, row_id = args
                self.tables.get(table, {}).pop(row_id, None)
            elif method == "del_cell":
                table, row_id, cell = args
                row = self.tables.get(table, {}).get(row_id)
                if row is not None:
                    row.pop(cell, None)
                    if not row:
                        del self.tables[table][row_id]
            elif method == "set_value":
                key, value = args
                self.values[key] = copy.deepcopy(value)
            elif method == "del_value":
                (key,) = args
                self.values.pop(key, None)
            else:
                raise AssertionError(f"unknown operation {method!r}")
        self.tables = {table: rows for table, rows in self.tables.items() if rows}

    def snapshot(self) -> State:
        return copy.deepcopy(self.tables), copy.deepcopy(self.values)


def payload(rng: random.Random, n: int) -> Any:
    """A JSON value of some kind; ints, floats and bools stay apart (1, 1.0 and True differ)."""
    return rng.choice(
        [
            n,
            n + 0.5,
            1.0,
            True,
            False,
            None,
            f'text {n}: ünïcödé ✓ "quoted" back\\slash\nnew line',
            [n, "x", None, [1.5, {"k": n}]],
            {"a": n, "b": [True, None], "c": {"d": "é", "e": -n}},
            "",
            [],
            {},
        ]
    )


def make_plan(rng: random.Random, length: int, *, reopen_rate: float) -> list[dict[str, Any]]:
    """Transactions over two tables and some values; each sets ``counter`` to its number."""
    model = Model()
    plan: list[dict[str, Any]] = []
    for n in range(1, length + 1):
        ops: list[Op] = [
            ["set_value", "counter", n],
            ["set_row", "rows", f"r{n}", {"n": n, "kind": rng.choice(KINDS), "p": payload(rng, n)}],
        ]
        older = [(table, row_id) for table, rows in model.tables.items() for row_id in rows]
        roll = rng.random()
        if roll < 0.3:  # several rows at once, in both tables
            for i in range(rng.randint(2, 6)):
                table = rng.choice(["rows", "items"])
                row = {"n": n, "i": i, "kind": rng.choice(KINDS), "p": payload(rng, n)}
                ops.append(["set_row", table, f"r{n}x{i}", row])
        elif older and roll < 0.45:  # delete older rows
            for table, row_id in rng.sample(older, min(len(older), rng.randint(1, 3))):
                ops.append(["del_row", table, row_id])
        elif older and roll < 0.6:  # rewrite an older row entirely
            table, row_id = rng.choice(older)
            ops.append(["set_row", table, row_id, {"rev": n, "kind": rng.choice(KINDS)}])
        elif older and roll < 0.7:  # change some cells of an older row
            table, row_id = rng.choice(older)
            ops.append(["set_partial_row", table, row_id, {"rev": n, "q": payload(rng, n)}])
        elif older and roll < 0.8:
            table, row_id = rng.choice(older)
            ops.append(["set_cell", table, row_id, "kind", rng.choice(KINDS)])
        elif older and roll < 0.88:  # a row leaves the index (and maybe ceases to exist)
            table, row_id = rng.choice(older)
            ops.append(["del_cell", table, row_id, "kind"])
        if rng.random() < 0.3:
            ops.append(["set_value", f"v{rng.randint(0, 4)}", payload(rng, n)])
        if model.values.keys() - {"counter"} and rng.random() < 0.15:
            ops.append(["del_value", rng.choice(sorted(model.values.keys() - {"counter"}))])
        model.apply(ops)
        plan.append({"reopen": rng.random() < reopen_rate, "ops": ops})
    return plan


def states_after(plan: list[dict[str, Any]], acked: int) -> dict[int, State]:
    """The expected contents after ``acked`` transactions and, if there is one, the next."""
    model = Model()
    for step in plan[:acked]:
        model.apply(step["ops"])
    states = {acked: model.snapshot()}
    if acked < len(plan):
        model.apply(plan[acked]["ops"])
        states[acked + 1] = model.snapshot()
    return states


# -- reading a child's stdout with a deadline ------------------------------------------------


# -- checking the folder ---------------------------------------------------------------------


def canonical(data: object) -> bytes:
    """JSON text that tells 1, 1.0 and True apart, with keys sorted."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def temp_files(root: Path) -> list[Path]:
    """Files named like the temp files of atomic writes (``.<name>.<random>.tmp``)."""
    return sorted(
        p for p in root.rglob(".*") if p.is_file() and p.name.endswith(".tmp") and p.name != ".tmp"
    )


def files_on_disk(root: Path) -> State:
    """The tables as the record files hold them, and the keyed values of ``_values.json``."""
    tables: Tables = {}
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("_"):
            continue
        rows: dict[str, dict[str, Any]] = {}
        for record in sorted(folder.glob("*.json")):
            document = orjson.loads(record.read_bytes())
            assert isinstance(document, dict), record
            assert document.pop("id") == record.stem, record
            rows[record.stem] = document
        if rows:
            tables[folder.name] = rows
    values_file = root / "_values.json"
    values = orjson.loads(values_file.read_bytes()) if values_file.exists() else {}
    return tables, values


def check_index_files(root: Path, tables: Tables, indexed: Mapping[str, list[str]]) -> None:
    for table, fields in indexed.items():
        for field in fields:
            index_file = root / table / "indices" / f"{field}.jsonl"
            listed = indices.listed(index_file.read_bytes() if index_file.exists() else b"")
            rows = tables.get(table, {})
            expected = {row_id: row[field] for row_id, row in rows.items() if field in row}
            assert canonical(listed) == canonical(expected), (
                f"{index_file} disagrees with the records"
            )


def check_recovered(
    root: Path, plan: list[dict[str, Any]], acked: int, indexed: Mapping[str, list[str]]
) -> None:
    """Open the folder after the crash and compare it with the plan, the files with the store."""
    states = states_after(plan, acked)
    db = hutch.open(root)
    try:
        assert isinstance(db.backend, FilePersister)
        assert db.backend.quarantined == []
        store = db.store
        tables = {table: store.get_table(table) for table in store.get_table_ids()}
        values = store.get_values()
        counter = values.get("counter")
        assert counter in states, (
            f"{acked} commits were acknowledged, so the store must hold {acked} or "
            f"{acked + 1} of them, not {counter}"
        )
        expected_tables, expected_values = states[counter]
        assert tables == expected_tables
        assert values == expected_values
        assert canonical(tables) == canonical(expected_tables)
        assert canonical(values) == canonical(expected_values)
        assert temp_files(root) == [], "temp files left after open"
        disk_tables, disk_values = files_on_disk(root)
        assert canonical(disk_tables) == canonical(tables), "the records disagree with the store"
        assert canonical(disk_values) == canonical(values), "_values.json disagrees"
        check_index_files(root, tables, indexed)
    finally:
        db.close()
    # After a clean close the newest log changes nothing and the records are the whole truth.
    assert logfiles.changes(logfiles.generations(root)[-1]) == []
    assert canonical(files_on_disk(root)) == canonical((tables, values))
    with hutch.open(root) as again:
        assert canonical(again.store.get_values()) == canonical(values)
        assert canonical(
            {table: again.store.get_table(table) for table in again.store.get_table_ids()}
        ) == canonical(tables)


# -- one crash -------------------------------------------------------------------------------


def crash_and_check(
    tmp_path: Path,
    seed: int,
    *,
    options: Mapping[str, Any],
    reopen_rate: float = 0.0,
    most_acks: int = 40,
) -> None:
    """Run the writer, SIGKILL it after a random number of acknowledgements, check the folder."""
    rng = random.Random(seed)
    root = tmp_path / "data"
    plan = make_plan(rng, PLAN_LENGTH, reopen_rate=reopen_rate)
    plan_file = tmp_path / "plan.jsonl"
    plan_file.write_text("".join(json.dumps(step) + "\n" for step in plan), encoding="utf-8")
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    errors = tmp_path / "writer.err"
    kill_after = rng.randint(1, most_acks)
    acked = 0

    def stderr() -> str:
        return errors.read_text(encoding="utf-8", errors="replace")

    def take(line: str) -> None:
        nonlocal acked
        if line != "done":
            assert line == str(acked + 1), f"unexpected output {line!r}; stderr:\n{stderr()}"
            acked += 1

    with errors.open("wb") as error_file:
        process = subprocess.Popen(
            [sys.executable, str(script), str(root), str(plan_file), json.dumps(options)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=error_file,
            bufsize=0,
        )
    try:
        assert process.stdout is not None
        lines = LineReader(process.stdout)
        while acked < kill_after:
            line = lines.readline()
            assert line is not None, f"the writer ended early; stderr:\n{stderr()}"
            if line == "done":
                break
            take(line)
        process.kill()
        process.wait(WAIT)
        # Commits acknowledged after the kill was decided were acknowledged all the same.
        for line in lines.rest():
            take(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL, f"the writer failed; stderr:\n{stderr()}"
    indexed = {t: s["indexed"] for t, s in options.get("collections", {}).items()}
    check_recovered(root, plan, acked, indexed)


@pytest.mark.parametrize("seed", range(14))
def test_a_killed_writer_loses_no_acknowledged_commit(tmp_path: Path, seed: int) -> None:
    crash_and_check(tmp_path, seed, options={})


@pytest.mark.parametrize("seed", range(100, 114))
def test_a_writer_killed_while_checkpointing_loses_nothing(tmp_path: Path, seed: int) -> None:
    """Checkpoints every few milliseconds in the background, and at each close and open."""
    crash_and_check(
        tmp_path, seed, options={"checkpoint_interval": 0.002}, reopen_rate=0.1, most_acks=80
    )


@pytest.mark.parametrize("seed", range(200, 212))
def test_a_killed_writer_of_an_unlogged_indexed_collection_loses_nothing(
    tmp_path: Path, seed: int
) -> None:
    """``items`` is written to its records at each commit, and its index with it."""
    crash_and_check(
        tmp_path,
        seed,
        options={"collections": ITEMS_UNLOGGED, "checkpoint_interval": 0.02},
        reopen_rate=0.05,
    )


def test_open_removes_temp_files_a_crash_left_anywhere(tmp_path: Path) -> None:
    """Not only beside records: beside the values, the manifest and the index files too."""
    with hutch.open(tmp_path, collections={"items": {"indexed": ["kind"]}}) as db:
        db.store.set_row("items", "a", {"kind": "x"})
        db.store.set_value("k", 1)
    # What a SIGKILL inside an atomic write leaves: a temp file beside its target.
    for place in ("items/.a.json", "._values.json", ".hutch.json", "items/indices/.kind.jsonl"):
        (tmp_path / f"{place}.0badc0de.tmp").write_bytes(b'{"half": ')
    with hutch.open(tmp_path):
        assert temp_files(tmp_path) == []
