"""Which backups to keep: restic's and borg's ``--keep-last/-hourly/-daily/...`` rules.

``last N`` keeps the N newest backups. ``hourly N`` keeps the newest backup of
each of the N most recent hours that have one (hours without a backup do not
count), and ``daily``, ``weekly`` (ISO weeks) and ``monthly`` do the same with
their periods, all in UTC. A backup is kept if any rule keeps it; a rule of all
zeros keeps everything, so that forgetting the options never deletes a backup.

Pruning a folder applies the rules to one store's backups only: what another
store keeps in the same folder, an archive whose manifest cannot be read, and
an archive dated after now (a clock that was ahead) are left alone and
counted by no rule, so none of them makes a rule remove a good backup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from hutch import files
from hutch.archives import ArchiveInfo, list_archives, read_manifest, utc
from hutch.errors import ConfigError, HutchError


def _count(_: Any, attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ConfigError(f"keep-{attribute.name} must be a whole number, 0 or more, not {value!r}")


@attrs.frozen
class Retention:
    """How many backups each rule keeps; 0 turns a rule off."""

    last: int = attrs.field(default=0, validator=_count)
    hourly: int = attrs.field(default=0, validator=_count)
    daily: int = attrs.field(default=0, validator=_count)
    weekly: int = attrs.field(default=0, validator=_count)
    monthly: int = attrs.field(default=0, validator=_count)

    @property
    def is_empty(self) -> bool:
        """No rule is on: nothing is ever removed."""
        return not (self.last or self.hourly or self.daily or self.weekly or self.monthly)


#: Each rule's period of a UTC time; ``last`` makes every backup a period of its own.
_PERIODS: dict[str, Callable[[datetime], Hashable]] = {
    "last": lambda t: t,
    "hourly": lambda t: (t.date(), t.hour),
    "daily": lambda t: t.date(),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
}


def to_keep(times: Sequence[datetime], rule: Retention) -> set[datetime]:
    """The backup times (timezone-aware) that ``rule`` keeps, in UTC; all if it is empty."""
    if rule.is_empty:
        return set(times)
    newest_first = sorted({utc(moment, "a backup time") for moment in times}, reverse=True)
    kept: set[datetime] = set()
    for name, period_of in _PERIODS.items():
        left = getattr(rule, name)
        previous: Hashable = None
        for moment in newest_first:
            if not left:
                break
            period = period_of(moment)
            if period != previous:  # the newest backup of a period not seen yet
                kept.add(moment)
                previous = period
                left -= 1
    return kept


@attrs.frozen(kw_only=True)
class Pruned:
    """What :func:`prune` did with each archive in the folder; each list oldest first."""

    kept: list[ArchiveInfo]
    """The store's archives that a rule keeps, the newest, and ``keep``."""
    removed: list[ArchiveInfo]
    """The store's archives no rule keeps: removed (on a dry run, to be removed)."""
    future: list[ArchiveInfo]
    """The store's archives dated after ``now``: kept, and counted by no rule."""
    foreign: list[ArchiveInfo]
    """Archives of another store: left alone."""
    unreadable: list[ArchiveInfo]
    """Archives whose manifest cannot be read (damaged, newer, not readable): left alone."""


def prune(
    folder: Path,
    rule: Retention,
    *,
    source: str,
    now: datetime,
    keep: Path | None = None,
    dry_run: bool = False,
) -> Pruned:
    """Remove the archives of the store ``source`` (the redacted URL their manifests name)
    in ``folder`` that ``rule`` does not keep.

    ``now`` (timezone-aware) is the time the rules count back from; the newest archive
    not after it is always kept, so a folder that had a backup still has one, and so is
    ``keep`` (the archive just written). ``dry_run`` only says what would go. Files not
    named as archives are never touched, nor are other stores' or unreadable archives.
    """
    moment = utc(now, "now")
    mine: list[ArchiveInfo] = []
    future: list[ArchiveInfo] = []
    foreign: list[ArchiveInfo] = []
    unreadable: list[ArchiveInfo] = []
    for info in list_archives(folder):
        try:
            manifest = read_manifest(info.path)
        except HutchError:
            unreadable.append(info)
            continue
        if manifest.source != source:
            foreign.append(info)
        elif info.taken_at > moment:
            future.append(info)
        else:
            mine.append(info)
    newest: set[datetime] = {mine[-1].taken_at} if mine else set()
    wanted = to_keep([info.taken_at for info in mine], rule) | newest
    pinned = None if keep is None else keep.resolve()
    kept: list[ArchiveInfo] = []
    removed: list[ArchiveInfo] = []
    for info in mine:
        chosen = info.taken_at in wanted or info.path.resolve() == pinned
        (kept if chosen else removed).append(info)
    if removed and not dry_run:
        for info in removed:
            try:
                with contextlib.suppress(FileNotFoundError):  # another prune removed it first
                    info.path.unlink()
            except OSError as error:
                raise files.storage_error(error, "remove the old backup", info.path) from error
        try:
            files.sync_folder(folder)
        except OSError as error:
            raise files.storage_error(error, "sync the backup folder", folder) from error
    return Pruned(kept=kept, removed=removed, future=future, foreign=foreign, unreadable=unreadable)
