"""Power cuts on a ``jsonl://`` folder, simulated: every state a crash could leave opens with
what was acknowledged (tests/crashsim.py builds the states; see test_crash_states.py).

Covered: commits over two collections and values, compactions (a small
``compact_lines``), a close and an open in the middle, ``db.compact()``,
recovery itself (a second cut during it), ``durability="batch"`` (a cut may
lose recent commits, never half of one), and the upgrade of a folder of format 1.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from crashcheck import (
    check_states,
    contents,
    every_acknowledged,
    opener,
    record_plan,
    whole_transactions,
)
from crashsim import Recorder
from test_file_crash import canonical, make_plan

import hutch

FIXTURES = Path(__file__).parent / "data"
COLLECTIONS = {"items": {"indexed": ["kind"]}, "rows": {"indexed": ["kind"]}}


def url(folder: Path) -> str:
    return f"jsonl://{folder.resolve()}"


@pytest.mark.parametrize("seed", range(3))
def test_every_crash_state_of_a_workload_opens_with_what_was_acknowledged(
    folder: Path, scratch: Path, seed: int
) -> None:
    rng = random.Random(seed)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {"collections": COLLECTIONS, "compact_lines": 6}
    recording = record_plan(
        folder, plan, lambda: hutch.open(url(folder), **options), compact_halfway=True
    )
    allowed = every_acknowledged(recording, plan)
    checked = check_states(recording, scratch, allowed, opened=opener(url, **options), rng=rng)
    assert checked > 100
    print(f"jsonl://, seed {seed}: {checked} crash states opened and checked")


def test_every_crash_state_under_batch_durability_opens_with_whole_transactions(
    folder: Path, scratch: Path
) -> None:
    """Unsynced commits may be lost, and a log may lack lines its commit line counts: recovery
    cuts back to the last commit that reached the disk, never to half of one."""
    rng = random.Random(11)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {
        "collections": COLLECTIONS,
        "compact_lines": 6,
        "durability": "batch",
        "batch_interval": 3600,  # flushed at compactions and at close only
    }
    recording = record_plan(
        folder, plan, lambda: hutch.open(url(folder), **options), compact_halfway=True
    )
    allowed = whole_transactions(recording, plan)
    checked = check_states(recording, scratch, allowed, opened=opener(url, **options), rng=rng)
    assert checked > 100
    print(f"jsonl:// under batch: {checked} crash states opened and checked")


def test_every_crash_state_of_a_format_upgrade_opens_with_the_same_data(
    folder: Path, scratch: Path
) -> None:
    shutil.rmtree(folder)
    shutil.copytree(FIXTURES / "jsonl_format_1", folder)
    expected = json.loads((FIXTURES / "jsonl_format_1.expected.json").read_text())
    wanted = (expected["tables"], expected["values"])
    with Recorder(folder) as recording, hutch.open(url(folder)) as db:
        assert canonical(contents(db)) == canonical(wanted)
    assert json.loads((folder / "hutch.json").read_text())["format"] == 2

    checked = check_states(
        recording, scratch, lambda point: [wanted], opened=opener(url), rng=random.Random(7)
    )
    print(f"jsonl:// upgrade from format 1: {checked} crash states opened and checked")
