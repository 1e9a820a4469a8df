"""Power cuts, simulated: every state a crash could leave opens, with what was acknowledged.

A workload runs on a real folder while :mod:`crashsim` records every call that
changes the disk; from the recording it builds the states a power cut could
leave at each point (unsynced data dropped or torn, unsynced folder entries
present or absent). Each state is written to a fresh folder and opened with
plain ``hutch.open``, and then:

- it opens;
- it holds exactly the transactions acknowledged before the cut, plus perhaps
  the one in flight, all of it or none: no half transaction, nothing never
  acknowledged besides that one;
- a second cut during its recovery keeps what the recovery showed (for some of
  the states: each costs a recording of its own).

Covered: ``wal: true`` and ``wal: false`` collections, keyed values, checkpoints
(at close and at open, and the ones in between), recovery itself, and the
upgrade of a folder written in format 1. Set ``HUTCH_CRASH_STATES`` to a whole
number to draw that many times more random states; a failure names its crash
point and seed, and ``Recorder.state(point, seed=...)`` builds it again.
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
COLLECTIONS = {"items": {"wal": False, "indexed": ["kind"]}, "rows": {"indexed": ["kind"]}}


@pytest.mark.parametrize("seed", range(3))
def test_every_crash_state_of_a_workload_opens_with_what_was_acknowledged(
    folder: Path, scratch: Path, seed: int
) -> None:
    """Transactions over a logged and an unlogged collection and values, with checkpoints at
    every close and open, and one in the middle of the work."""
    rng = random.Random(seed)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {"collections": COLLECTIONS, "checkpoint_interval": 3600}
    recording = record_plan(
        folder, plan, lambda: hutch.open(folder, **options), compact_halfway=True
    )
    allowed = every_acknowledged(recording, plan)
    checked = check_states(recording, scratch, allowed, opened=opener(str, **options), rng=rng)
    assert checked > 100
    print(f"file://, seed {seed}: {checked} crash states opened and checked")


def test_every_crash_state_under_batch_durability_opens_with_whole_transactions(
    folder: Path, scratch: Path
) -> None:
    """Unsynced commits may be lost (batch's bargain), never half of one, and the folder opens."""
    rng = random.Random(11)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {
        "collections": COLLECTIONS,
        "checkpoint_interval": 3600,
        "durability": "batch",
        "batch_interval": 3600,  # flushed at checkpoints and at close only
    }
    recording = record_plan(
        folder, plan, lambda: hutch.open(folder, **options), compact_halfway=False
    )
    allowed = whole_transactions(recording, plan)
    checked = check_states(recording, scratch, allowed, opened=opener(str, **options), rng=rng)
    assert checked > 100
    print(f"file:// under batch: {checked} crash states opened and checked")


def test_every_crash_state_of_a_format_upgrade_opens_with_the_same_data(
    folder: Path, scratch: Path
) -> None:
    shutil.rmtree(folder)
    shutil.copytree(FIXTURES / "file_format_1", folder)
    expected = json.loads((FIXTURES / "file_format_1.expected.json").read_text())
    with Recorder(folder) as recording, hutch.open(folder) as db:
        assert canonical(contents(db)) == canonical((expected["tables"], expected["values"]))
    manifest = json.loads((folder / "hutch.json").read_text())
    assert manifest["format"] == 2

    wanted = (expected["tables"], expected["values"])
    checked = check_states(
        recording, scratch, lambda point: [wanted], opened=opener(str), rng=random.Random(7)
    )
    print(f"file:// upgrade from format 1: {checked} crash states opened and checked")
