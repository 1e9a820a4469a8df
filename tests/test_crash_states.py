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

Each runs on both folder backends. Covered: for ``file://``, ``wal: true`` and
``wal: false`` collections and the checkpoints (at close and at open, and the
ones in between); for ``jsonl://``, compactions (a small ``compact_lines``) and
``db.compact()``; for both, keyed values, recovery itself,
``durability="batch"`` (a cut may lose recent commits, never half of one), and
the upgrade of a folder written in format 1. Set ``HUTCH_CRASH_STATES`` to a
whole number to draw that many times more random states; a failure names its
crash point and seed, and ``Recorder.state(point, seed=...)`` builds it again.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
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


@attrs.frozen
class Backend:
    """A folder backend as these tests run it."""

    scheme: str
    url: Callable[[Path], str]
    options: dict[str, Any]  # for every open, besides durability
    batch_compact_halfway: bool  # whether the batch workload calls db.compact() halfway


BACKENDS = [
    Backend(
        "file",
        str,
        {
            "collections": {
                "items": {"wal": False, "indexed": ["kind"]},
                "rows": {"indexed": ["kind"]},
            },
            "checkpoint_interval": 3600,
        },
        batch_compact_halfway=False,
    ),
    Backend(
        "jsonl",
        lambda folder: f"jsonl://{folder.resolve()}",
        {
            "collections": {"items": {"indexed": ["kind"]}, "rows": {"indexed": ["kind"]}},
            "compact_lines": 6,
        },
        batch_compact_halfway=True,
    ),
]
backends = pytest.mark.parametrize("backend", BACKENDS, ids=[b.scheme for b in BACKENDS])


@backends
@pytest.mark.parametrize("seed", range(3))
def test_every_crash_state_of_a_workload_opens_with_what_was_acknowledged(
    folder: Path, scratch: Path, seed: int, backend: Backend
) -> None:
    """Transactions over two collections and values, with a close and an open in the
    middle, and a db.compact() halfway."""
    rng = random.Random(seed)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options = backend.options
    recording = record_plan(
        folder, plan, lambda: hutch.open(backend.url(folder), **options), compact_halfway=True
    )
    allowed = every_acknowledged(recording, plan)
    opened = opener(backend.url, **options)
    checked = check_states(recording, scratch, allowed, opened=opened, rng=rng)
    assert checked > 100
    print(f"{backend.scheme}://, seed {seed}: {checked} crash states opened and checked")


@backends
def test_every_crash_state_under_batch_durability_opens_with_whole_transactions(
    folder: Path, scratch: Path, backend: Backend
) -> None:
    """Unsynced commits may be lost (batch's bargain), and a log may lack lines its commit
    counts: recovery goes back to the last commit that reached the disk, never to half of
    one, and the folder opens."""
    rng = random.Random(11)
    plan = make_plan(rng, 24, reopen_rate=0.15)
    options: dict[str, Any] = {
        **backend.options,
        "durability": "batch",
        "batch_interval": 3600,  # flushed at checkpoints, compactions and close only
    }
    recording = record_plan(
        folder,
        plan,
        lambda: hutch.open(backend.url(folder), **options),
        compact_halfway=backend.batch_compact_halfway,
    )
    allowed = whole_transactions(recording, plan)
    opened = opener(backend.url, **options)
    checked = check_states(recording, scratch, allowed, opened=opened, rng=rng)
    assert checked > 100
    print(f"{backend.scheme}:// under batch: {checked} crash states opened and checked")


@backends
def test_every_crash_state_of_a_format_upgrade_opens_with_the_same_data(
    folder: Path, scratch: Path, backend: Backend
) -> None:
    shutil.rmtree(folder)
    shutil.copytree(FIXTURES / f"{backend.scheme}_format_1", folder)
    expected = json.loads((FIXTURES / f"{backend.scheme}_format_1.expected.json").read_text())
    wanted = (expected["tables"], expected["values"])
    with Recorder(folder) as recording, hutch.open(backend.url(folder)) as db:
        assert canonical(contents(db)) == canonical(wanted)
    assert json.loads((folder / "hutch.json").read_text())["format"] == 2

    checked = check_states(
        recording,
        scratch,
        lambda point: [wanted],
        opened=opener(backend.url),
        rng=random.Random(7),
    )
    print(f"{backend.scheme}:// upgrade from format 1: {checked} crash states opened and checked")
