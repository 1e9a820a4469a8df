"""The crash-state simulator, on toy writers that call fsio directly.

Each test checks one rule of the model both ways: what must last does in every state, and
what need not last is lost in some state, so the model can produce the damage a real power
cut does instead of passing everything.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest
from crashsim import PAGE, Recorder, RecordingError, State, materialize, read_tree, state_multiplier

from hutch.backends.file import fsio

OLD = b"old record\n" * 500  # more than a page, so that a tear can keep some of it
NEW = b"new record, longer\n" * 700
MANY = 300  # random states drawn where a test looks for a rare kind of damage


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def now(recording: Recorder) -> int:
    """The crash point right after what the workload did so far."""
    return len(recording.points()) - 1


def drawn(recording: Recorder, k: int, count: int = MANY) -> list[State]:
    return [recording.state(k, seed) for seed in range(count)]


def test_synced_data_and_names_last_and_unsynced_ones_may_not(root: Path) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        sub = fsio.open_dir(top, "sub", create=True)
        fd = fsio.create_new(sub, "f")
        fsio.write_at(fd, b"hello", 0)
        written = now(recording)
        fsio.fdatasync(fd)
        data_synced = now(recording)
        fsio.fsync(sub)
        names_half_synced = now(recording)
        fsio.fsync(top)
        all_synced = now(recording)
        for open_fd in (fd, sub, top):
            fsio.close(open_fd)

    for k, state in recording.states():
        if k >= all_synced:
            assert state.files == {"sub/f": b"hello"}, state.origin
        elif k >= data_synced and "sub/f" in state.files:
            assert state.files["sub/f"] == b"hello", state.origin
    before = drawn(recording, written)
    assert any("sub" not in state.folders for state in before)
    assert any("sub" in state.folders and "sub/f" not in state.files for state in before)
    assert any(state.files.get("sub/f") == b"" for state in before)  # named, data lost
    # the file's name lasts in sub, but sub's own name in the root does not yet
    assert recording.durable_state(names_half_synced) == State(frozenset(), {})
    assert any(state.files == {"sub/f": b"hello"} for state in drawn(recording, data_synced))


def test_write_atomic_with_sync_leaves_the_old_content_or_the_new(root: Path) -> None:
    (root / "r.json").write_bytes(OLD)
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fsio.write_atomic(top, "r.json", NEW, sync=True)
        fsio.close(top)

    seen = set()
    for _, state in recording.states(per_point=50):
        assert state.files["r.json"] in (OLD, NEW), state.origin
        seen.add(state.files["r.json"])
    assert seen == {OLD, NEW}
    last = now(recording)
    assert {state for k, state in recording.states() if k == last} == {
        State(frozenset(), {"r.json": NEW})
    }


def test_write_atomic_without_sync_can_leave_an_empty_or_torn_file(root: Path) -> None:
    (root / "r.json").write_bytes(OLD)
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fsio.write_atomic(top, "r.json", NEW, sync=False)
        fsio.close(top)

    found = {state.files["r.json"] for _, state in recording.states(per_point=MANY)}
    assert {OLD, NEW, b""} <= found
    assert found - {OLD, NEW, b""}, "no torn file"
    assert recording.durable_state(now(recording)).files == {"r.json": OLD}


def test_an_unsynced_append_can_tear_in_every_way(root: Path) -> None:
    base = b"line one\n"
    tail = b"appended" * (3 * PAGE // 8)
    whole = base + tail
    (root / "log").write_bytes(base)
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fd = fsio.open_file(top, "log")
        fsio.append_after(fd, tail, len(base), sync=False)
        unsynced = now(recording)
        fsio.fdatasync(fd)
        fsio.close(fd)
        fsio.close(top)

    logs = [state.files["log"] for state in drawn(recording, unsynced)]
    assert all(log[: len(base)] == base for log in logs)
    assert any(len(base) < len(log) < len(whole) and whole.startswith(log) for log in logs)
    assert base + bytes(len(tail)) in logs
    pages = [(max(page, len(base)), page + PAGE) for page in range(0, len(whole), PAGE)]

    def gap(log: bytes) -> bool:
        """Some page of the append kept after an earlier page that was not."""
        kept = [log[low:high] == whole[low:high] for low, high in pages]
        lost = [log[low:high] == bytes(len(whole[low:high])) for low, high in pages]
        return len(log) == len(whole) and any(
            lost[i] and kept[j] for i in range(len(pages)) for j in range(i + 1, len(pages))
        )

    assert any(gap(log) for log in logs)
    assert {state.files["log"] for state in drawn(recording, now(recording), 20)} == {whole}


def test_a_rename_is_all_or_nothing_until_both_folders_are_synced(root: Path) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        one = fsio.open_dir(top, "one", create=True)
        two = fsio.open_dir(top, "two", create=True)
        fd = fsio.create_new(one, "x")
        fsio.write_at(fd, b"payload", 0)
        fsio.fsync(fd)
        fsio.close(fd)
        for folder in (one, two, top):
            fsio.fsync(folder)
        ready = now(recording)
        fsio.rename(one, "x", two, "y")
        fsio.fsync(two)
        half = now(recording)
        fsio.fsync(one)
        done = now(recording)
        for folder in (one, two, top):
            fsio.close(folder)

    for k, state in recording.states(per_point=30, points=range(ready, done + 1)):
        names = [path for path in ("one/x", "two/y") if path in state.files]
        assert len(names) == 1, state.origin
        assert state.files[names[0]] == b"payload", state.origin
        if k == done:
            assert names == ["two/y"], state.origin
    assert {tuple(sorted(state.files)) for state in drawn(recording, half)} == {
        ("one/x",),
        ("two/y",),
    }


def test_an_unsynced_unlink_may_be_undone(root: Path) -> None:
    (root / "gone").write_bytes(b"bye")
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fsio.remove(top, "gone")
        removed = now(recording)
        fsio.fsync(top)
        fsio.close(top)

    assert {state.files.get("gone") for state in drawn(recording, removed)} == {b"bye", None}
    assert all("gone" not in state.files for state in drawn(recording, now(recording)))


def test_what_existed_before_recording_lasts(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_bytes(b"deep")
    (root / "empty").mkdir()
    (root / "d.txt").write_bytes(OLD)
    (root / "link").symlink_to("d.txt")
    os.mkfifo(root / "fifo")
    before = read_tree(root)
    assert before == State(frozenset({"a", "a/b", "empty"}), {"a/b/c.txt": b"deep", "d.txt": OLD})
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fd = fsio.open_file(top, "d.txt")
        fsio.write_at(fd, NEW, 0)  # never synced
        fsio.close(fd)
        fsio.close(top)

    for _, state in recording.states(per_point=30):
        assert state.folders == before.folders, state.origin
        assert state.files["a/b/c.txt"] == b"deep", state.origin
        assert set(state.files) == {"a/b/c.txt", "d.txt"}, state.origin
    assert recording.durable_state(now(recording)) == before
    assert recording.live_state(now(recording)).files["d.txt"] == NEW
    overwritten = {state.files["d.txt"] for state in drawn(recording, now(recording))}
    assert bytes(len(NEW)) in overwritten  # zeros where the old data was
    assert NEW[:PAGE] + OLD[PAGE:] + bytes(len(NEW) - len(OLD)) in overwritten  # a page kept


def test_a_link_moved_over_a_file_hides_it(root: Path) -> None:
    (root / "d.txt").write_bytes(OLD)
    (root / "link").symlink_to("elsewhere")
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fsio.rename(top, "link", top, "d.txt")
        fsio.close(top)

    assert recording.live_state(1) == State(frozenset(), {})
    assert recording.durable_state(1) == State(frozenset(), {"d.txt": OLD})


def test_materialize_writes_a_state_that_reads_back_equal(root: Path, tmp_path: Path) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        a = fsio.open_dir(top, "a", create=True)
        b = fsio.open_dir(a, "b", create=True)
        fsio.write_atomic(b, "c.json", NEW, sync=False)
        fsio.write_atomic(top, "empty", b"", sync=True)
        for folder in (b, a, top):
            fsio.close(folder)

    states = {state for _, state in recording.states()}
    assert any("a/b" in state.folders for state in states)
    for number, state in enumerate(states):
        target = tmp_path / f"state{number}"
        materialize(state, target)
        assert read_tree(target) == state, state.origin
    with pytest.raises(ValueError, match="not empty"):
        materialize(State(frozenset(), {}), root)


def test_an_empty_write_changes_nothing_torn_or_not(root: Path) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        fsio.write_atomic(top, "empty", b"", sync=False)
        fsio.close(top)

    for _, state in recording.states(per_point=MANY):
        assert set(state.files.values()) <= {b""}, state.origin


def _workload(root: Path, recording: Recorder) -> None:
    """Creates, writes, a truncate, renames of files and folders, unlinks, a reused name."""
    top = fsio.open_root(root)
    logs = fsio.open_dir(top, "logs", create=True)
    fd = fsio.create_new(logs, "a.log")
    for number in range(3):
        recording.mark("write", number)
        fsio.append_after(fd, b"entry %d\n" % number * 600, fsio.size(fd), sync=number == 1)
    fsio.truncate(fd, 5000)
    fsio.close(fd)
    for round_ in range(3):  # the same name, and often the same inode number, made again
        fd = fsio.create_new(top, "scratch")
        fsio.write_at(fd, b"round %d" % round_, 0)
        fsio.close(fd)
        fsio.remove(top, "scratch")
    recording.mark("renames")
    fsio.rename(top, "logs", top, "old-logs")
    kept = fsio.open_dir(top, "kept", create=True)
    fsio.rename(logs, "a.log", kept, "b.log")
    fsio.fsync(kept)
    fsio.fsync(top)
    for folder in (kept, logs, top):
        fsio.close(folder)


def test_the_same_seed_gives_the_same_state(tmp_path: Path) -> None:
    recordings = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        with Recorder(tmp_path / name) as recording:
            _workload(tmp_path / name, recording)
        recordings.append(recording)
    first, second = recordings
    assert first.points() == second.points()
    for k in first.points():
        for seed in range(10):
            assert first.state(k, seed) == first.state(k, seed) == second.state(k, seed)
    assert len({first.state(now(first) - 3, seed) for seed in range(20)}) > 1


def test_everything_kept_is_what_the_workload_saw(root: Path) -> None:
    seen: dict[int, State] = {}
    with Recorder(root) as recording:
        _workload(root, recording)
        seen[now(recording)] = read_tree(root)
        top = fsio.open_root(root)
        fsio.write_atomic(top, "r.json", OLD, sync=True)
        seen[now(recording)] = read_tree(root)
        fsio.write_atomic(top, "r.json", NEW, sync=False)
        fd = fsio.create_new(top, ".left.tmp")
        fsio.close(fd)
        seen[now(recording)] = read_tree(root)
        fsio.remove_temp_files(top)
        fsio.close(top)
    seen[now(recording)] = read_tree(root)

    assert seen[now(recording)].files.keys() == {"kept/b.log", "r.json"}
    for k, tree in seen.items():
        assert recording.live_state(k) == tree, k


def test_marks_tell_what_happened_before_each_crash_point(root: Path) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        recording.mark("begin", 1)
        fsio.write_atomic(top, "a", b"1", sync=True)  # 5 operations
        recording.mark("ack", 1)
        recording.mark("begin", 2)
        fsio.write_atomic(top, "b", b"2", sync=True)
        recording.mark("ack", 2)
        fsio.close(top)

    assert recording.points() == range(11)
    assert recording.marks_before(0) == recording.marks_before(4) == [("begin", 1)]
    assert recording.marks_before(5) == [("begin", 1), ("ack", 1), ("begin", 2)]
    assert recording.marks_before(10) == [("begin", 1), ("ack", 1), ("begin", 2), ("ack", 2)]
    with pytest.raises(IndexError, match="no crash point 11"):
        recording.marks_before(11)


def test_threads_are_recorded_in_the_order_they_report(root: Path) -> None:
    def writer(top: int, name: str) -> None:
        fd = fsio.create_new(top, name)
        for number in range(200):
            fsio.write_at(fd, b"%05d\n" % number, 6 * number)
            if number % 10 == 0:
                fsio.fdatasync(fd)
        fsio.close(fd)

    with Recorder(root) as recording:
        top = fsio.open_root(root)
        threads = [threading.Thread(target=writer, args=(top, f"t{i}")) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fsio.close(top)

    assert len(recording.points()) == 1 + 4 * (1 + 200 + 20)
    assert recording.live_state(now(recording)) == read_tree(root)


def test_only_the_recorded_folder_counts(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with Recorder(root) as recording:
        top, out = fsio.open_root(root), fsio.open_root(outside)
        fsio.close(fsio.create_new(top, "x"))
        fsio.fsync(top)
        fsio.remove(top, "x")
        fd = fsio.create_new(out, "elsewhere")  # often x's inode number again
        fsio.write_at(fd, b"outside", 0)
        fsio.fsync(fd)
        fsio.close(fd)
        assert now(recording) == 3
        fsio.close(fsio.create_new(top, "leaving"))
        fsio.fsync(top)
        fsio.rename(top, "leaving", out, "left")  # gone, as far as the folder can tell
        fsio.fsync(top)
        fsio.close(top)
        fsio.close(out)
    assert recording.durable_state(3) == State(frozenset(), {"x": b""})
    leaving = State(frozenset(), {"leaving": b""})
    assert recording.live_state(5) == recording.durable_state(6) == leaving
    assert recording.live_state(6) == recording.durable_state(7) == State(frozenset(), {})

    def swallowing() -> None:
        """A workload that moves a file in from outside and hides the error."""
        with Recorder(root):
            top, out = fsio.open_root(root), fsio.open_root(outside)
            with contextlib.suppress(RecordingError):
                fsio.rename(out, "left", top, "back")
            fsio.close(top)
            fsio.close(out)

    with pytest.raises(RecordingError, match="from outside"):
        swallowing()
    assert fsio.tracer is None


def test_one_recording_at_a_time(root: Path) -> None:
    with Recorder(root) as recording:
        with pytest.raises(RecordingError, match="another recording"), Recorder(root):
            pass
        assert fsio.tracer is not None
    assert fsio.tracer is None
    with pytest.raises(RecordingError, match="once"), recording:
        pass


def test_HUTCH_CRASH_STATES_multiplies_the_random_states(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Recorder(root) as recording:
        top = fsio.open_root(root)
        for number in range(8):
            fd = fsio.create_new(top, f"f{number}")
            fsio.write_at(fd, NEW, 0)
            fsio.close(fd)

    def count() -> int:
        return sum(1 for _ in recording.states(per_point=2, points=[now(recording)]))

    monkeypatch.delenv("HUTCH_CRASH_STATES", raising=False)
    assert state_multiplier() == 1
    assert count() <= 4
    monkeypatch.setenv("HUTCH_CRASH_STATES", "10")
    assert state_multiplier() == 10
    assert count() > 4
    for wrong in ("0", "-1", "many"):
        monkeypatch.setenv("HUTCH_CRASH_STATES", wrong)
        with pytest.raises(ValueError, match="HUTCH_CRASH_STATES"):
            state_multiplier()
