"""Online backups are never torn: taken while two processes move money between accounts,
every backup restores to the invariant total."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from children import Child
from click.testing import CliRunner

import hutch
from hutch import archives
from hutch.cli import cli

ACCOUNTS = 500
TOTAL = 1000
ROUNDS = 6

MOVER = """\
import json, os, random, sys
import hutch

url, seed, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = hutch.open(url, **json.loads(sys.argv[4]))
rng = random.Random(seed)
store = db.store
moves = 0
os.write(1, b"ready\\n")
while not os.path.exists(stop):
    a, b = rng.sample(range(int(sys.argv[5])), 2)
    with store.transaction():
        have = store.get_cell("wallets", f"a{a}", "balance")
        amount = rng.randint(0, have)
        store.set_cell("wallets", f"a{a}", "balance", have - amount)
        gets = store.get_cell("wallets", f"a{b}", "balance")
        store.set_cell("wallets", f"a{b}", "balance", gets + amount)
        store.set_row("moves", f"m{seed}-{moves}", {"from": a, "to": b, "amount": amount})
    moves += 1
    if moves == 1:
        os.write(1, b"moving\\n")
db.close()
os.write(1, f"moved {moves}\\n".encode())
"""

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "file": ("{}/data", {}),
    "file, wallets not logged": ("{}/data", {"collections": {"wallets": {"wal": False}}}),
    "jsonl": ("jsonl:{}/log", {}),
    "sqlite": ("sqlite:///{}/app.db", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_backups_taken_while_money_moves_always_balance(tmp_path: Path, case: str) -> None:
    pattern, options = CASES[case]
    url = pattern.format(tmp_path)
    with hutch.open(url, **options) as db, db.store.transaction():
        for i in range(ACCOUNTS):
            db.store.set_row("wallets", f"a{i}", {"balance": TOTAL // ACCOUNTS})
    script = tmp_path / "mover.py"
    script.write_text(MOVER, encoding="utf-8")
    stop = tmp_path / "stop"
    movers = [
        Child(
            f"mover {seed}",
            [
                sys.executable,
                str(script),
                url,
                str(seed),
                str(stop),
                json.dumps(options),
                str(ACCOUNTS),
            ],
            tmp_path / f"mover{seed}.err",
        )
        for seed in (1, 2)
    ]
    folder = tmp_path / "backups"
    try:
        for mover in movers:
            mover.expect("ready")
        for mover in movers:
            mover.expect("moving")  # both write while every backup is taken
        for _ in range(ROUNDS):
            result = CliRunner().invoke(cli, ["backup", url, str(folder)], catch_exceptions=False)
            assert result.exit_code == 0, result.output
        stop.touch()
        moved = [int(mover.read().removeprefix("moved ")) for mover in movers]
    finally:
        stop.touch()
        for mover in movers:
            mover.end()
    assert all(moved)
    found = archives.list_archives(folder)
    assert len(found) == ROUNDS
    for info in found:
        _, snapshot = archives.read_archive(info.path)
        balances = [row["balance"] for row in snapshot.tables["wallets"].values()]
        assert len(balances) == ACCOUNTS
        assert sum(balances) == TOTAL, f"{info.path.name} is torn"
    restored = f"sqlite:///{tmp_path}/restored.db"
    result = CliRunner().invoke(
        cli, ["restore", str(found[-1].path), restored], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Data integrity: PASS" in result.output
    with hutch.open(restored, read_only=True) as db:
        assert sum(row["balance"] for row in db.store.get_table("wallets").values()) == TOTAL
