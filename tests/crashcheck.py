"""Checking crash states: open each state a recording allows and compare it with what it may hold.

The crash-state tests of both folder backends (test_crash_states.py) use it;
:mod:`crashsim` builds the states.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crashsim import Recorder, State, materialize
from test_file_crash import canonical, states_after

import hutch

#: Random states per crash point, crash points per recording (besides the ones just after an
#: acknowledgement), and how often a state's recovery is cut again.
PER_POINT = 2
POINTS = 40
SECOND_CUT_EVERY = 40

Contents = tuple[dict[str, Any], dict[str, Any]]
Plan = list[dict[str, Any]]


def contents(db: hutch.Database) -> Contents:
    store = db.store
    return {t: store.get_table(t) for t in store.get_table_ids()}, store.get_values()


#: Opens a folder with plain ``hutch.open`` (with the test's URL and options), closes it, and
#: says what it held.
Opener = Callable[[Path], Contents]


def opener(url: Callable[[Path], str], **options: Any) -> Opener:
    """An :data:`Opener` for folders at ``url(folder)``, opened with ``options``."""

    def opened(folder: Path) -> Contents:
        with hutch.open(url(folder), **options) as db:
            return contents(db)

    return opened


def crash_points(recording: Recorder, rng: random.Random) -> list[int]:
    """Where to cut: just before and after each acknowledgement, and ``POINTS`` others."""
    every = list(recording.points())
    near = {
        point for point in every if any(label == "ack" for label, _ in recording.marks_at(point))
    }
    near |= {point - 1 for point in near if point}
    return sorted(near | set(rng.sample(every, min(POINTS, len(every)))))


def check_states(
    recording: Recorder,
    scratch: Path,
    allowed: Callable[[int], list[Contents]],
    *,
    opened: Opener,
    rng: random.Random,
) -> int:
    """Open the states of ``recording``; each must hold one of ``allowed(point)``. How many."""
    checked = 0
    states = recording.states(PER_POINT, crash_points(recording, rng))
    for number, (point, state) in enumerate(states):
        folder = scratch / f"state{number}"
        materialize(state, folder)
        try:
            found = opened(folder)
        except Exception as error:
            raise AssertionError(f"{state.origin}: does not open: {error!r}") from error
        wanted = allowed(point)
        assert canonical(found) in {canonical(w) for w in wanted}, (
            f"{state.origin}: holds counter {found[1].get('counter')}, not one of "
            f"{[w[1].get('counter') for w in wanted]}"
        )
        if number % SECOND_CUT_EVERY == 0:
            check_second_cut(state, found, scratch / f"again{number}", opened)
        shutil.rmtree(folder)
        checked += 1
    return checked


def check_second_cut(state: State, found: Contents, where: Path, opened: Opener) -> None:
    """Cut the power again during the recovery of ``state``: what it showed stays."""
    where.mkdir()
    folder = where / "folder"
    materialize(state, folder)
    with Recorder(folder) as recovery:
        opened(folder)
    for number, (_, again) in enumerate(recovery.states(1)):
        target = where / f"cut{number}"
        materialize(again, target)
        assert canonical(opened(target)) == canonical(found), (
            f"{state.origin}, then during its recovery {again.origin}: it changed"
        )
        shutil.rmtree(target)
    shutil.rmtree(where)


def record_plan(
    folder: Path, plan: Plan, open_store: Callable[[], hutch.Database], *, compact_halfway: bool
) -> Recorder:
    """Run ``plan`` (from ``test_file_crash.make_plan``) on the store ``open_store`` opens at
    ``folder``, reopening it where a step says so, each transaction's begin and
    acknowledgement marked; ``compact_halfway``: ``db.compact()`` before the middle step."""
    with Recorder(folder) as recording:
        db = open_store()
        try:
            for number, step in enumerate(plan, 1):
                if step["reopen"]:
                    db.close()
                    db = open_store()
                if compact_halfway and number == len(plan) // 2:
                    db.compact()
                recording.mark("begin", number)
                with db.store.transaction():
                    for method, *arguments in step["ops"]:
                        getattr(db.store, method)(*arguments)
                recording.mark("ack", number)
        finally:
            db.close()
    return recording


def every_acknowledged(recording: Recorder, plan: Plan) -> Callable[[int], list[Contents]]:
    """What a state may hold (``durability="commit"``): every transaction acknowledged before
    the cut, and perhaps the one in flight, whole."""

    def allowed(point: int) -> list[Contents]:
        done, in_flight = acknowledged(recording, point)
        states = states_after(plan, done)
        return [states[done]] + ([states[done + 1]] if in_flight else [])

    return allowed


def whole_transactions(recording: Recorder, plan: Plan) -> Callable[[int], list[Contents]]:
    """What a state may hold (``durability="batch"``): the first transactions, any number of
    them up to the one in flight: unsynced commits may be lost, never half of one."""

    def allowed(point: int) -> list[Contents]:
        done, in_flight = acknowledged(recording, point)
        return [states_after(plan, n)[n] for n in range(done + in_flight + 1)]

    return allowed


def acknowledged(recording: Recorder, point: int) -> tuple[int, bool]:
    """How many transactions were acknowledged at a crash point, and whether one was begun."""
    acks = [value for label, value in recording.marks_before(point) if label == "ack"]
    begun = [value for label, value in recording.marks_before(point) if label == "begin"]
    done = max((v for v in acks if isinstance(v, int)), default=0)
    return done, any(isinstance(v, int) and v > done for v in begun)


@contextmanager
def scratch_folder(fallback: Path) -> Iterator[Path]:
    """Where crash states are opened: in memory (tmpfs) where there is one, since the states
    are many and their syncs prove nothing; the recorded workloads run on the real disk."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        place = Path(tempfile.mkdtemp(prefix="hutch-crash-", dir=shm))
        try:
            yield place
        finally:
            shutil.rmtree(place, ignore_errors=True)
    else:
        yield fallback
