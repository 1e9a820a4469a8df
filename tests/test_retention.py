"""Retention (hutch.retention): restic's --keep-* rules over backup times on a fake clock, and
pruning a folder of real archives, which removes only the store's own archives that no rule
keeps: never the one just written, one dated in the future, another store's or a damaged one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_files import tmpfs

import hutch
from hutch import retention
from hutch.archives import ArchiveInfo, list_archives, read_manifest, write_archive
from hutch.retention import Pruned, Retention, prune, to_keep

START = datetime(2026, 3, 1, tzinfo=UTC)
SNAPSHOT = hutch.Snapshot(tables={"t": {"r": {"a": 1}}}, values={"v": 1})


def hours(*offsets: float) -> list[datetime]:
    return [START + timedelta(hours=offset) for offset in offsets]


def test_hourly_backups_keep_the_newest_of_each_recent_hour() -> None:
    times = hours(*range(48))
    assert to_keep(times, Retention(hourly=24)) == set(times[24:])


def test_last_keeps_the_newest() -> None:
    times = hours(0, 0.1, 0.2, 5, 9)
    assert to_keep(times, Retention(last=2)) == set(hours(5, 9))


def test_hours_without_a_backup_do_not_count() -> None:
    assert to_keep(hours(0, 1, 5, 9), Retention(hourly=3)) == set(hours(1, 5, 9))


def test_the_newest_backup_of_an_hour_is_the_one_kept() -> None:
    times = hours(10 + 5 / 60, 10 + 40 / 60, 11 + 10 / 60)
    assert to_keep(times, Retention(hourly=2)) == set(hours(10 + 40 / 60, 11 + 10 / 60))


def test_a_backup_is_kept_if_any_rule_keeps_it() -> None:
    times = hours(*range(0, 10 * 24, 6))  # every 6 hours for 10 days
    rule = Retention(last=2, daily=3)
    newest_of_days = hours(7 * 24 + 18, 8 * 24 + 18, 9 * 24 + 18)
    assert to_keep(times, rule) == set(hours(9 * 24 + 12) + newest_of_days)


def test_weeks_are_iso_weeks_and_months_calendar_months() -> None:
    times = [
        datetime(2020, 12, 30, tzinfo=UTC),  # ISO week 53 of 2020
        datetime(2021, 1, 3, tzinfo=UTC),  # still week 53 of 2020
        datetime(2021, 1, 4, tzinfo=UTC),  # week 1 of 2021
        datetime(2021, 1, 31, tzinfo=UTC),
        datetime(2021, 2, 1, tzinfo=UTC),
    ]
    assert to_keep(times, Retention(weekly=4)) == {times[1], times[2], times[3], times[4]}
    assert to_keep(times, Retention(monthly=2)) == {times[3], times[4]}


def test_periods_are_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    # 01:30 and 02:30 on 2 March at +02:00 are 23:30 on 1 March and 00:30 on 2 March in UTC.
    times = [
        datetime(2026, 3, 2, 1, 30, tzinfo=plus_two),
        datetime(2026, 3, 2, 2, 30, tzinfo=plus_two),
    ]
    assert to_keep(times, Retention(daily=2)) == set(times)


def test_an_empty_rule_keeps_everything() -> None:
    times = hours(*range(100))
    assert Retention().is_empty
    assert not Retention(monthly=1).is_empty
    assert to_keep(times, Retention()) == set(times)


@pytest.mark.parametrize("count", [-1, 1.5, True, "3", None])
def test_a_count_must_be_a_whole_number_of_zero_or_more(count: object) -> None:
    with pytest.raises(hutch.ConfigError, match=f"keep-daily must be .* not {count!r}"):
        Retention(daily=count)  # type: ignore[arg-type]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(hutch.ConfigError, match="timezone-aware"):
        to_keep([datetime(2026, 1, 1)], Retention(last=1))


RULES = st.builds(Retention, *(st.integers(min_value=0, max_value=5) for _ in range(5))).filter(
    lambda rule: not rule.is_empty
)
TIMES = st.lists(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2022, 1, 1), timezones=st.just(UTC)
    ),
    max_size=40,
)


@given(times=TIMES, rule=RULES)
def test_any_rule_keeps_the_newest_and_no_more_than_it_counts(
    times: list[datetime], rule: Retention
) -> None:
    kept = to_keep(times, rule)
    assert kept <= set(times)
    assert len(kept) <= rule.last + rule.hourly + rule.daily + rule.weekly + rule.monthly
    if times:
        assert max(times) in kept
    assert set(sorted(set(times), reverse=True)[: rule.last]) <= kept


@given(
    times=TIMES, rule=RULES, more=st.sampled_from(["last", "hourly", "daily", "weekly", "monthly"])
)
def test_a_bigger_count_never_keeps_less(times: list[datetime], rule: Retention, more: str) -> None:
    bigger = attrs.evolve(rule, **{more: getattr(rule, more) + 1})
    assert to_keep(times, rule) <= to_keep(times, bigger)


# -- pruning a folder ------------------------------------------------------------------------

SOURCE = "file:///srv/data"
#: After every backup of these tests: the rules count back from here.
LATER = START + timedelta(days=30)


def backups(folder: Path, times: list[datetime], source: str = SOURCE) -> list[ArchiveInfo]:
    written = {write_archive(SNAPSHOT, folder, source=source, now=moment) for moment in times}
    return [info for info in list_archives(folder) if info.path in written]


def pruned(folder: Path, rule: Retention, **options: Any) -> Pruned:
    return prune(folder, rule, **{"source": SOURCE, "now": LATER, **options})


def test_prune_removes_only_archives_no_rule_keeps(tmp_path: Path) -> None:
    archives = backups(tmp_path, hours(*range(0, 72, 4)))  # 3 days, every 4 hours
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = write_archive(SNAPSHOT, elsewhere, source=SOURCE, now=START)
    (tmp_path / "hutch-backup-20200101T000000.000000Z.tar.gz").symlink_to(outside)

    result = pruned(tmp_path, Retention(last=1, daily=2))

    assert [info.taken_at for info in result.kept] == hours(44, 68)  # newest of day 2, of day 3
    assert sorted(result.kept + result.removed, key=lambda info: info.taken_at) == archives
    assert result.future == result.foreign == result.unreadable == []
    assert list_archives(tmp_path) == result.kept
    assert notes.read_text() == "mine"
    assert outside.is_file()
    assert (tmp_path / "hutch-backup-20200101T000000.000000Z.tar.gz").is_symlink()


def test_a_dry_run_removes_nothing_and_says_what_would_go(tmp_path: Path) -> None:
    archives = backups(tmp_path, hours(*range(6)))

    result = pruned(tmp_path, Retention(last=2), dry_run=True)

    assert result.kept == archives[-2:]
    assert result.removed == archives[:-2]
    assert list_archives(tmp_path) == archives


def test_an_empty_rule_removes_nothing(tmp_path: Path) -> None:
    archives = backups(tmp_path, hours(*range(6)))
    assert pruned(tmp_path, Retention()) == Pruned(
        kept=archives, removed=[], future=[], foreign=[], unreadable=[]
    )
    assert list_archives(tmp_path) == archives


def test_an_empty_folder_has_nothing_to_prune(tmp_path: Path) -> None:
    assert pruned(tmp_path, Retention(last=1)) == Pruned(
        kept=[], removed=[], future=[], foreign=[], unreadable=[]
    )


@pytest.mark.parametrize(
    "rule", [Retention(hourly=1), Retention(daily=1), Retention(weekly=1), Retention(monthly=1)]
)
def test_the_newest_archive_is_never_removed(tmp_path: Path, rule: Retention) -> None:
    archives = backups(tmp_path, [START - timedelta(days=400), START, START + timedelta(minutes=1)])

    result = pruned(tmp_path, rule)

    assert result.kept == archives[-1:]
    assert list_archives(tmp_path) == archives[-1:]


def test_the_archive_just_written_is_always_kept(tmp_path: Path) -> None:
    archives = backups(tmp_path, hours(0, 1, 2, 3))
    just_written = archives[1].path  # older than others: a slow backup finishing late, say

    result = pruned(tmp_path, Retention(last=1), keep=Path(os.path.relpath(just_written)))

    assert result.kept == [archives[1], archives[3]]
    assert list_archives(tmp_path) == result.kept


def test_archives_dated_after_now_are_kept_and_counted_by_no_rule(tmp_path: Path) -> None:
    now = START + timedelta(hours=10)
    past = backups(tmp_path, hours(0, 1, 2))
    ahead = backups(tmp_path, hours(11, 12, 13))  # a clock that was ahead, a restored VM

    result = pruned(tmp_path, Retention(last=2), now=now)

    assert result.kept == past[1:]  # the two newest up to now, not the ones from the future
    assert result.removed == past[:1]
    assert result.future == ahead
    assert list_archives(tmp_path) == past[1:] + ahead


def test_archives_of_another_store_are_left_alone(tmp_path: Path) -> None:
    mine = backups(tmp_path, hours(0, 2, 4))
    theirs = backups(tmp_path, hours(1, 3, 5), source="sqlite:///other.db")

    result = pruned(tmp_path, Retention(last=1))

    assert result.kept == mine[-1:]
    assert result.removed == mine[:-1]
    assert result.foreign == theirs
    assert list_archives(tmp_path) == [*theirs[:2], mine[-1], theirs[-1]]


def test_archives_whose_manifest_cannot_be_read_are_left_alone(tmp_path: Path) -> None:
    archives = backups(tmp_path, hours(0, 1, 2, 3))
    damaged = archives[0].path
    damaged.write_bytes(b"not a backup")
    newest = archives[3].path
    newest.write_bytes(newest.read_bytes()[:20])  # cut short: even the newest is no backup

    result = pruned(tmp_path, Retention(last=1))

    assert [info.path for info in result.unreadable] == [damaged, newest]
    assert result.kept == archives[2:3]  # the newest readable one
    assert result.removed == archives[1:2]
    assert damaged.read_bytes() == b"not a backup"
    assert [info.path for info in list_archives(tmp_path)] == [damaged, archives[2].path, newest]


def test_now_must_be_timezone_aware(tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match="now must be a timezone-aware"):
        pruned(tmp_path, Retention(last=1), now=datetime(2026, 1, 1))


def test_an_archive_removed_by_someone_else_meanwhile_is_gone_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archives = backups(tmp_path, hours(0, 1, 2))

    def read_then_lose(path: Path) -> Any:
        manifest = read_manifest(path)
        if path == archives[0].path:
            path.unlink()  # another prune, between this one's reading and its removal
        return manifest

    monkeypatch.setattr(retention, "read_manifest", read_then_lose)

    result = pruned(tmp_path, Retention(last=1))

    assert (result.kept, result.removed) == (archives[-1:], archives[:-1])
    assert os.listdir(tmp_path) == [archives[-1].path.name]


@pytest.fixture
def read_only_backups(tmp_path: Path) -> Iterator[Path]:
    """Three archives on a file system that was then made read-only."""
    with tmpfs(tmp_path / "backups", "size=4m") as where:
        backups(where, hours(0, 1, 2))
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where


def test_a_removal_that_fails_names_the_archive(read_only_backups: Path) -> None:
    with pytest.raises(hutch.StorageError, match=r"could not remove the old backup .*hutch-backup"):
        pruned(read_only_backups, Retention(last=1))
    assert len(list_archives(read_only_backups)) == 3
