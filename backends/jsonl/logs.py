"""The logs of a ``jsonl://`` folder: which lines count, read back and appended.

The commit log decides. Each commit line gives, for every log the commit wrote,
its generation and how many lines it holds once the commit is in; a line counts
iff it lies within that number for its file's generation. So nothing past that
number needs to parse (a torn append is just bytes to cut), and a sequence
number used again after a crash can never bring a line back.

Every method runs under the folder's write lock (the flock on ``hutch.lock``),
but :meth:`Logs.flush`, which only syncs what this process holds open.

- :meth:`Logs.catch_up` reads what was committed since this process last
  looked (at open: everything), each line checked as a write is. It cuts what
  is provably uncommitted, durably and with a warning naming the file, the byte
  and why: lines past the committed end, the torn last line of the commit log,
  and commits that no later line says reached the disk when a log lacks lines
  they count (a power cut under ``durability="batch"``). Anything else that
  does not check is :class:`~hutch.CorruptData` naming the file and the line.
- :meth:`Logs.append` writes one commit: the lines of each log, then the commit
  line, the commit point.
- :meth:`Logs.compact` and :meth:`Logs.shorten` replace logs by new generations.

A read-only ``Logs`` (``read_only=True``) writes nothing. It runs :meth:`Logs.pin`
once, holding the write lock shared for a moment (no commit is half written):
every file is opened read-only and its size noted, and the commit log (kept
short) is read. Then :meth:`Logs.catch_up`, without the lock, judges those
commit lines — exactly what was there under the lock — and reads the logs up
to the sizes noted, so it reads one commit point while writers go on (a
compaction that replaces a log meanwhile leaves the file held open as it was).
What a writing open would cut is where reading stops (it stays on disk); damage
is refused the same way. :meth:`Logs.unchanged` then tells whether a writer cut
commit lines it used meanwhile (mending a power cut), in which case the lines
they counted may have been written again: the caller reads again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from hutch import CorruptData
from hutch.backends.file import fsio
from hutch.cells import plain_json

from . import lines
from .lines import COMMITS, Entry

log = logging.getLogger("hutch.backends.jsonl")

Counts = dict[str, tuple[int, int]]  # log name -> (generation, lines)


@attrs.define
class _File:
    """One log as this process has read it."""

    name: str
    fd: int | None = None
    ino: int | None = None
    generation: int = 0
    start: int = 0  # the offset past the header
    end: int = 0  # the offset past the last line that counts
    lines: int = 0  # how many lines count (the header is not one)
    open_line: bool = False  # the last of them has no newline (an editor stripped it)

    @property
    def held(self) -> tuple[int, int]:
        """How many lines count, and their bytes."""
        return self.lines, self.end - self.start


@attrs.frozen
class Read:
    """The newly committed lines of one log."""

    name: str
    entries: list[Entry]
    sizes: list[int]  # the bytes of each line
    whole: bool  # the whole file: seen for the first time, or replaced by a compaction


@attrs.frozen
class Compacted:
    """What :meth:`Logs.compact` did."""

    #: The logs replaced, and the bytes of each row's (or key's) line in them now.
    replaced: dict[str, dict[str, int]]
    #: The logs left as they were, and why.
    failed: dict[str, OSError | CorruptData]


@attrs.frozen
class _View:
    """A log's bytes past what this process read (all of them if it was replaced)."""

    fd: int
    ino: int
    generation: int
    start: int
    base_end: int  # the offset where ``data`` starts
    base_lines: int  # how many lines count before it
    data: bytes
    whole: bool


@attrs.frozen
class _Found:
    """What a log holds past what this process read, checked; nothing changed yet."""

    view: _View
    read: lines.Lines
    adopt: bool  # a compaction whose commit line never made it: the whole file counts

    @property
    def valid(self) -> int:
        return self.view.base_lines + len(self.read.entries)


_TORN = "torn"  # a log whose creation a crash interrupted: no line, part of a header at most


@attrs.frozen
class _Plan:
    """What the commit log and the logs hold past what this process read."""

    commits: _View
    read: lines.Commits
    targets: Counts  # the latest (generation, lines) of each log, counting every new line
    found: dict[str, _Found | str | None]


class Logs:
    """The commit log and the data logs of one folder, as this process reads and writes them."""

    def __init__(
        self,
        root_fd: int,
        root: Path,
        folder_id: str,
        *,
        durability: str,
        may_share: Callable[[], bool],
        ours: Callable[[str], bool],
        read_only: bool = False,
    ) -> None:
        self._root_fd = root_fd
        #: Whether a file of the root is one this folder replaces atomically: the temp files
        #: those replacements left (a crash cut them short) are removed at open.
        self._ours = ours
        #: Only :meth:`catch_up` is called: no cut, no removal, no commit line, no sync.
        self._read_only = read_only
        #: Read-only: where reading stops in a file, instead of cutting it there.
        self._stops: dict[str, int] = {}
        #: Read-only: each file as :meth:`pin` opened it, and its size then.
        self._pins: dict[str, tuple[int, int]] = {}
        self._pinned: set[str] | None = None  # the logs pin found (None: not pinned)
        #: Read-only: the commit log's bytes as :meth:`pin` read them, under the lock.
        self._pinned_commits = b""
        self._may_share = may_share  # whether a log may have other names (see links.py)
        self._root = root
        self._folder = folder_id
        self._sync = durability != "none"  # creations, cuts, compactions
        self._sync_commits = durability == "commit"
        self.commits = _File(COMMITS)
        self.files: dict[str, _File] = {}
        #: The latest (generation, lines) of every log a commit line names.
        self.committed: Counts = {}
        self.seq = 0  # the last commit read or written
        self.durable = 0  # every commit up to this one is known to be on disk
        self.claimed = 0  # the commit log says so of every commit up to this one
        self.unsynced = False  # appended without a sync (durability="batch")
        #: The bytes of the commit log's first line: about all a shortening would keep of it.
        self.live_commits = 0
        self._listed = False

    # -- reading -----------------------------------------------------------------------------

    def behind(self) -> bool:
        """Whether another process may have committed since this one last read: one ``stat``
        of the commit log, without the write lock (so it may err towards ``True``)."""
        found = fsio.info(self._root_fd, COMMITS)
        commits = self.commits
        return found is None or found.st_ino != commits.ino or found.st_size != commits.end

    def pin(self) -> None:
        """Read-only, holding the write lock shared: open the commit log and every log, note
        their sizes, and read the commit log, for :meth:`catch_up` to judge those commit
        lines and read the logs up to those sizes once the lock is let go.

        The commit log is read here, not later: a writing open may cut a torn commit
        line and append its own where it was, counting lines past the sizes noted.
        The commit log comes first, so every line a commit line read counts was written
        before its size was noted (a commit writes its lines, then its commit line).
        """
        names = self._prepare()
        self._pinned = set() if names is None else names
        if names is None:
            return
        for name in [COMMITS, *sorted(names)]:
            fd = fsio.open_lock_if_present(self._root_fd, name)
            if fd is None:
                continue
            self._pins[name] = (fd, 0)  # (closed by close(), whatever happens next)
            size = fsio.size(fd)
            if name == COMMITS:
                self._pinned_commits = fsio.read_at(fd, 0, size)
                size = len(self._pinned_commits)
            self._pins[name] = (fd, size)

    def unchanged(self) -> bool:
        """Read-only, after :meth:`catch_up`: whether the commit log still holds the bytes
        :meth:`pin` read, up to the end of the last commit line used.

        Committed lines never change in place, but for one case: a writing open that
        cuts back commits a power cut left unfinished (``durability="batch"``) then
        writes its own lines where theirs were, and :meth:`catch_up`, reading without the
        lock, may have read those as the lines the cut commits count. That writer cut
        the commit log too, and wrote where the first cut line was a line that no cut
        line matches (see :meth:`_take`), so its bytes tell: read again then. (A torn
        commit line past the end used may be cut and written over: the read did not use
        it.)
        """
        pinned = self._pins.get(COMMITS)
        if pinned is None:
            return True
        end = self.commits.end
        return fsio.read_at(pinned[0], 0, end) == self._pinned_commits[:end]

    @property
    def commit_log(self) -> tuple[int, int] | None:
        """Read-only: the commit log's inode and size as :meth:`pin` found it (``None``: none):
        while they stay so, nothing was committed since."""
        pinned = self._pins.get(COMMITS)
        return None if pinned is None else (fsio.inode(pinned[0]), pinned[1])

    def catch_up(self) -> list[Read]:
        """What was committed since this process last looked; cuts what provably never was."""
        if self._pinned is not None:
            names: set[str] | None = self._pinned if COMMITS in self._pins else None
        else:
            names = set(self.files) if self._listed else self._prepare()
        if names is None:  # read-only, and no commit log yet: nothing was ever committed
            return []
        cut_back = False  # commit lines were cut (not just a torn last one)
        while True:
            opened: list[int] = []  # descriptors to close unless a log takes them
            try:
                plan = self._plan(names, opened)
                cut = self._judge(plan)
                if cut is None:
                    return self._take(plan, opened, cut_back=cut_back)
                offset, why, commits_cut = cut
                cut_back = cut_back or commits_cut
                self._cut(plan.commits.fd, COMMITS, offset, why)
            finally:
                for fd in opened:
                    fsio.close(fd)

    def flush(self) -> None:
        """Make every line read or written so far durable: the logs first, then the commit log."""
        seq = self.seq
        for file in [*self.files.values(), self.commits]:
            if file.fd is not None:
                fsio.fdatasync(file.fd)
        self.durable = max(self.durable, seq)
        self.unsynced = False

    def vouch(self) -> None:
        """Flush, then say so in the commit log if no line does yet (at open and at close):
        a hand edit to those commits is then damage, never taken for a power cut's doing."""
        self.flush()
        if self.claimed < self.seq:
            self._record({})

    def _prepare(self) -> set[str] | None:
        """At open, from the one listing of the folder: the logs in it, the temp files a
        crash left removed, and a commit log for a folder that has none yet (read-only:
        ``None``, as nothing was committed; nothing is removed)."""
        listing = fsio.entries(self._root_fd)
        names = {name for name, kind in listing if lines.is_log(name)}
        if not self._read_only:
            fsio.remove_temp_files_of(self._root_fd, listing, self._ours)
        present = fsio.exists(self._root_fd, COMMITS)
        data = fsio.read_head(self._root_fd, COMMITS, lines.HEAD) if present else b""
        if lines.read_header(data) is None and lines.torn_header(data, self._folder, COMMITS):
            holding = sorted(name for name in names if self._holds_lines(name))
            if holding:
                state = "is empty" if present else "is missing"
                raise CorruptData(
                    f"{self._root / COMMITS} {state}, but {self._root / holding[0]} holds "
                    "lines: which of them were committed cannot be told. Restore "
                    f"{COMMITS} from a backup; hutch cuts nothing without it"
                )
            if self._read_only:
                return None
            if present:
                fsio.remove(self._root_fd, COMMITS)
            fd = self._create(COMMITS)
            fsio.close(fd)
            if self._sync:
                fsio.fsync(self._root_fd)
        self._listed = True
        return names

    def _holds_lines(self, name: str) -> bool:
        data = fsio.read_head(self._root_fd, name, lines.HEAD)
        if lines.torn_header(data, self._folder, name):
            return False
        header = lines.read_header(data)
        return header is None or header[1] < len(data)

    def _plan(self, names: set[str], opened: list[int]) -> _Plan:
        """Read the commit log and every log it or ``names`` concern, past what was read."""
        view = self._look(self.commits, opened)
        if not isinstance(view, _View):
            raise CorruptData(
                f"{self._root / COMMITS} is gone (or no longer holds a header) while the folder "
                "is open: restore it from a backup"
            )
        read = lines.read_commits(view.data, None if view.whole else self.seq + 1)
        if read.good and read.good[-1].seq < self.seq:
            raise CorruptData(
                f"{self._root / COMMITS}: its last commit is {read.good[-1].seq}, before "
                f"{self.seq} which this process already read; was the folder restored from "
                "a backup while open? close every process and open it again"
            )
        targets = dict(self.committed)
        for commit in read.good:
            targets.update(commit.logs)
        found: dict[str, _Found | str | None] = {}
        for name in sorted(names | targets.keys()):
            found[name] = self._find(name, targets.get(name), opened)
        return _Plan(view, read, targets, found)

    def _judge(self, plan: _Plan) -> tuple[int, str, bool] | None:
        """Where to cut the commit log (offset, why, whether whole commit lines go: more than
        a torn last line), or ``None``; raises on damage."""
        good = plan.read.good
        first_new = sum(1 for commit in good if commit.seq <= self.seq)
        failures: list[tuple[int, str]] = []
        for name, found in plan.found.items():
            problem = self._problem(name, found, plan.targets.get(name))
            if problem is None:
                continue
            index = _first_claim(good, first_new, name, found)
            if index is None:
                raise CorruptData(
                    f"{problem}: commits already read count those lines. Restore the folder "
                    "from a backup"
                )
            failures.append((index, problem))
        if (bad := plan.read.bad) is not None:
            line = plan.commits.base_lines + bad.index + 2
            where = (
                f"{self._root / COMMITS}: line {line} (byte {plan.commits.base_end + bad.offset})"
            )
            failures.append((len(good), f"{where} {bad.reason}"))
        if not failures:
            return None
        index, problem = min(failures)
        seq = good[index].seq if index < len(good) else (good[-1].seq if good else self.seq) + 1
        proof = plan.read.proof(index, seq)
        if proof is not None:
            raise CorruptData(
                f"{problem}; yet commit {seq} had reached the disk (line "
                f"{plan.commits.base_lines + proof + 2} of {self._root / COMMITS} says so), so "
                "cutting it would lose acknowledged data. Restore the folder from a backup, or "
                "mend that line by hand"
            )
        kept = dict(self.committed)
        for commit in good[:index]:
            kept.update(commit.logs)
        for name, found in plan.found.items():
            if not isinstance(found, _Found) or found.adopt:
                continue
            if found.view.generation > kept.get(name, (1, 0))[0]:
                raise CorruptData(
                    f"{problem}; and {self._root / name} was compacted after that commit, so it "
                    "cannot be cut back. Restore the folder from a backup"
                )
        offsets = [commit.offset for commit in good] + ([bad.offset] if bad is not None else [])
        why = f"{problem}; no later line says commit {seq} reached the disk, so it never did"
        return plan.commits.base_end + offsets[index], why, index < len(good)

    def _problem(
        self, name: str, found: _Found | str | None, target: tuple[int, int] | None
    ) -> str | None:
        """What is wrong with a log, given what the commit log counts in it."""
        path = self._root / name
        if found is None:
            return None if target is None else f"{path} is missing"
        if not isinstance(found, _Found) or found.adopt:
            return None
        wanted = (target or (1, 0))[0]
        if found.view.generation < wanted:
            return (
                f"{path} is generation {found.view.generation}, but commits count lines of {wanted}"
            )
        if (bad := found.read.bad) is not None:
            line = found.view.base_lines + bad.index + 2
            return f"{path}: line {line} (byte {found.view.base_end + bad.offset}) {bad.reason}"
        return None

    def _find(
        self, name: str, target: tuple[int, int] | None, opened: list[int]
    ) -> _Found | str | None:
        """A log's new lines up to ``target``: ``None`` if the file is not there, :data:`_TORN`
        if a crash interrupted its creation (it has no commit yet)."""
        view = self._look(self.files.get(name) or _File(name), opened)
        if view is None or (view == _TORN and target is None):
            return view
        if not isinstance(view, _View):
            raise CorruptData(
                f"{self._root / name} holds no header, yet commits count lines of it. Restore "
                "it from a backup"
            )
        generation, goal = target or (1, 0)
        adopt = view.generation > generation
        if adopt:
            count = view.data.count(b"\n") + (view.data[-1:] not in (b"", b"\n"))
        else:
            count = max(goal - view.base_lines, 0) if view.generation == generation else 0
        read = lines.read_lines(
            view.data, count, lines.check_for(name, plain=plain_json(view.data))
        )
        if adopt and (bad := read.bad) is not None:
            raise CorruptData(
                f"{self._root / name}: line {bad.index + 2} (byte {view.base_end + bad.offset}) "
                f"{bad.reason}; the file was written whole by a compaction, so this is damage. "
                "Restore it from a backup, or mend that line by hand"
            )
        return _Found(view, read, adopt)

    def _look(self, file: _File, opened: list[int]) -> _View | str | None:
        """The bytes of ``file`` past what was read; all of them, after its header, if the file
        is new to this process or was replaced. ``None``: it is not there."""
        if self._pinned is not None:
            return self._look_pinned(file, opened)
        found = fsio.info(self._root_fd, file.name)
        if found is None:
            return None
        if file.fd is not None and found.st_ino == file.ino and found.st_size >= file.end:
            data = fsio.read_at(file.fd, file.end, self._end(file.name, found.st_size) - file.end)
            base = file.end
            if file.open_line and data[:1] == b"\n":  # the newline a writer put after it
                data, base = data[1:], base + 1
            return _View(
                file.fd, file.ino, file.generation, file.start, base, file.lines, data, whole=False
            )
        fd = self._open(file.name)
        if fd is None:
            return None
        opened.append(fd)
        return self._whole(file, fd)

    def _look_pinned(self, file: _File, opened: list[int]) -> _View | str | None:
        """Read-only: the file :meth:`pin` opened, read whole (up to its size then); the commit
        log as :meth:`pin` read it."""
        pinned = self._pins.get(file.name)
        if pinned is None:
            return None
        fd = fsio.duplicate(pinned[0])
        opened.append(fd)
        return self._whole(file, fd, self._pinned_commits if file.name == COMMITS else None)

    def _whole(self, file: _File, fd: int, held: bytes | None = None) -> _View | str:
        """The bytes of the log open as ``fd`` after its header, its header checked first
        (``held``: the file's bytes, already read)."""

        def read(offset: int, length: int) -> bytes:
            if held is None:
                return fsio.read_at(fd, offset, length)
            return held[offset : offset + length]

        # The header is checked before a big file is read whole.
        head_bytes = read(0, self._end(file.name, lines.HEAD))
        header = lines.read_header(head_bytes)
        path = self._root / file.name
        if header is None:
            if lines.torn_header(head_bytes, self._folder, file.name):
                return _TORN
            raise CorruptData(
                f"{path}: line 1 is not the header of a hutch log of format 2; {self._move_out}"
            )
        head, start = header
        if head.folder != self._folder or head.name != file.name:
            raise CorruptData(
                f"{path}: its header says it is {head.name} of the folder {head.folder}, not "
                f"{file.name} of this one ({self._folder}); {self._move_out}"
            )
        if head.generation < file.generation:
            raise CorruptData(
                f"{path} is generation {head.generation}, older than the {file.generation} this "
                "process read; was it restored from a backup while open? close every process "
                "and open it again"
            )
        size = fsio.size(fd) if held is None else len(held)
        data = read(start, self._end(file.name, size) - start)
        return _View(fd, fsio.inode(fd), head.generation, start, start, 0, data, True)

    def _open(self, name: str) -> int | None:
        """A log, opened to be read and (unless read-only) cut and appended to; ``None`` if
        it is gone. Read-only, it is opened as a lock file is by a process that writes
        nothing: never created, no write access asked."""
        if self._read_only:
            return fsio.open_lock_if_present(self._root_fd, name)
        return fsio.open_file(self._root_fd, name, may_share=self._may_share)

    def _end(self, name: str, size: int) -> int:
        """Where reading a file of ``size`` bytes stops: its end, unless a read-only
        :meth:`_cut` stopped it before, or it was longer than when :meth:`pin` noted it."""
        pinned = self._pins.get(name)
        return min(size, self._stops.get(name, size), size if pinned is None else pinned[1])

    @property
    def _move_out(self) -> str:
        return (
            "it is not a log of this folder, and hutch never changes a file it did not write: "
            "move it out of the folder"
        )

    def _take(self, plan: _Plan, opened: list[int], *, cut_back: bool = False) -> list[Read]:
        """Make the plan this process's view: cut what lies past the committed ends, adopt
        compactions whose commit line never made it, and return the new lines.

        ``cut_back``: commit lines were cut (their commits never reached the disk). A
        commit line then goes where the first of them was, before any commit of this
        process, naming no log (or the logs adopted): so no line there ever matches one
        that was cut (a cut one names a log that lacks lines, and says less than its own
        ``seq`` durable), and a read-only load that read a cut one sees the change
        (:meth:`unchanged`). A commit of this process could otherwise write, where a cut
        one was, the very same line over other data lines.
        """
        view, good = plan.commits, plan.read.good
        self._follow(self.commits, view, opened)
        if good:
            if view.whole:
                self.live_commits = good[0].end - good[0].offset
            self.commits.end = view.base_end + good[-1].end
            self.commits.open_line = good[-1].open_line
            self.commits.lines = view.base_lines + len(good)
            self.seq = max(self.seq, good[-1].seq)
            self.claimed = max([self.claimed, *(commit.durable for commit in good)])
            self.durable = max(self.durable, self.claimed)
            for commit in good:
                self.committed.update(commit.logs)
        reads: list[Read] = []
        adopted: Counts = {}
        for name, found in plan.found.items():
            if found is None and (gone := self.files.pop(name, None)) and gone.fd is not None:
                fsio.close(gone.fd)  # an empty log no commit counted, deleted by hand
            elif found == _TORN:
                self._remove_torn(name)
            elif isinstance(found, _Found):
                file = self.files.setdefault(name, _File(name))
                self._settle(file, found, opened)
                if found.adopt:
                    adopted[name] = (file.generation, file.lines)
                if found.read.entries or found.view.whole:
                    read = found.read
                    reads.append(Read(name, read.entries, read.sizes, found.view.whole))
        if adopted and self._read_only:
            self.committed.update(adopted)  # (the next writing open records them)
        elif adopted or (cut_back and not self._read_only):
            if self._sync:
                self._make_durable()
            self._record(adopted)
        return reads

    def _follow(self, file: _File, view: _View, opened: list[int]) -> None:
        """Take a view's file as the one ``file`` reads (closing the one it replaced)."""
        if view.fd != file.fd:
            opened.remove(view.fd)
            replaced = file.fd
            file.fd, file.ino, file.generation, file.start = (
                view.fd,
                view.ino,
                view.generation,
                view.start,
            )
            file.end, file.lines, file.open_line = view.start, 0, False
            if replaced is not None:
                fsio.close(replaced)

    def _settle(self, file: _File, found: _Found, opened: list[int]) -> None:
        """Take what a log was found to hold; cut the lines past its committed end."""
        self._follow(file, found.view, opened)
        if found.read.entries:
            file.end = found.view.base_end + found.read.end
            file.lines = found.valid
            file.open_line = found.read.open_line
        assert file.fd is not None
        size = found.view.base_end + len(found.view.data)
        if size > file.end:
            self._cut(
                file.fd,
                file.name,
                file.end,
                "the lines of a commit that never returned: no commit line counts them",
            )

    def _remove_torn(self, name: str) -> None:
        if self._read_only:
            self.files.pop(name, None)
            log.warning(
                "ignored %s: a log whose creation a crash interrupted (a writing open removes "
                "it; this one is read-only)",
                self._root / name,
            )
            return
        fsio.remove(self._root_fd, name)
        if self._sync:
            fsio.fsync(self._root_fd)
        self.files.pop(name, None)
        log.warning(
            "removed %s: a log whose creation a crash interrupted (it held part of its header "
            "at most, and no commit counted it)",
            self._root / name,
        )

    def _cut(self, fd: int, name: str, offset: int, why: str) -> None:
        """Cut a file at ``offset``, durably before anything else is written, and say so.
        Read-only: stop reading it there instead, leaving the file as it is."""
        size = self._end(name, fsio.size(fd))
        if self._read_only:
            self._stops[name] = offset
            log.warning(
                "ignored %d bytes of %s from byte %d (a writing open cuts them; this one is "
                "read-only): %s",
                size - offset,
                self._root / name,
                offset,
                why,
            )
            return
        fsio.truncate(fd, offset)
        if self._sync:
            fsio.fdatasync(fd)
        log.warning(
            "cut %d bytes from %s at byte %d: %s", size - offset, self._root / name, offset, why
        )

    # -- writing -----------------------------------------------------------------------------

    def append(self, parts: Mapping[str, tuple[bytes, int]]) -> None:
        """One commit: each log's ``(lines, how many)``, then the commit line, the commit point.

        Under ``durability="commit"`` each file is synced before the next is
        written, and a log this commit creates is synced with its folder entry
        before the commit line. On an error nothing of the commit is left.
        """
        if self._sync_commits:
            self._make_durable()
        seq = self.seq + 1
        written: list[tuple[_File, int, int]] = []  # file, its end before, its new end
        counts: Counts = {}
        try:
            created = False
            for name, (data, count) in parts.items():
                file = self.files.get(name)
                if file is None:
                    file, new = self._writable(name)
                    created = created or new
                written.append((file, file.end, self._write(file, data, self._sync_commits)))
                counts[name] = (file.generation, file.lines + count)
            if created and self._sync:
                fsio.fsync(self._root_fd)
            self._commit_line(seq, counts, synced=self._sync_commits)
        except OSError:
            for file, end, _ in written:
                if file.fd is not None:
                    with contextlib.suppress(OSError):
                        fsio.truncate(file.fd, end)
            raise
        # The commit is durable from here on.
        for file, _, new_end in written:
            file.end, file.open_line = new_end, False
        for name, (_, count) in parts.items():
            self.files[name].lines += count
        self.unsynced = self._sync and not self._sync_commits

    def _write(self, file: _File, data: bytes, sync: bool) -> int:
        """Write ``data`` after the last line that counts (on its own line); the new end."""
        assert file.fd is not None
        if file.open_line:
            data = b"\n" + data
        fsio.append_after(file.fd, data, file.end, sync=sync)
        return file.end + len(data)

    def _writable(self, name: str) -> tuple[_File, bool]:
        """A log this process has not read yet, about to take its first lines, and whether it
        was created (with its header, synced); if a crash left one, what it holds is cut."""
        opened: list[int] = []
        try:
            found = self._find(name, self.committed.get(name), opened)
            if isinstance(found, _Found):
                if found.adopt or found.read.entries:
                    raise CorruptData(
                        f"{self._root / name} holds lines of generation {found.view.generation} "
                        f"that no commit this process read counts; {self._move_out}"
                    )
                file = self.files.setdefault(name, _File(name))
                self._settle(file, found, opened)
                return file, False
        finally:
            for fd in opened:
                fsio.close(fd)
        if found == _TORN:
            self._remove_torn(name)
        fd = self._create(name)
        start = fsio.size(fd)
        file = _File(name, fd, fsio.inode(fd), 1, start, start)
        self.files[name] = file
        return file, True

    def _create(self, name: str) -> int:
        """A new log holding its header (synced): a crash leaves it whole or torn."""
        return fsio.create_with(
            self._root_fd, name, lines.header(self._folder, name, 1), sync=self._sync
        )

    def _make_durable(self) -> None:
        """Before a line that says every commit before it is on disk: make that true (others'
        commits under ``durability="batch"`` may not be)."""
        if self.durable < self.seq:
            self.flush()

    def _record(self, counts: Counts) -> None:
        """A commit with no data lines of its own: the new generations of logs (or none)."""
        self._commit_line(self.seq + 1, counts, synced=self._sync)

    def _commit_line(self, seq: int, counts: Counts, *, synced: bool) -> None:
        """Append commit ``seq``'s line (the commit point) and take it as this process's view.
        A line synced after everything before it was says so of itself."""
        claim = seq if synced else self.durable
        line = lines.commit_line(seq, counts, claim)
        self.commits.end = self._write(self.commits, line, synced)
        self.commits.lines += 1
        self.commits.open_line = False
        self.committed.update(counts)
        self.seq = seq
        self.claimed = max(self.claimed, claim)
        if synced:
            self.durable = seq

    # -- replacing ---------------------------------------------------------------------------

    def compact(self, names: list[str]) -> Compacted:
        """Replace each log by a new generation holding its live lines (each line keeps its
        seq): temp file, sync, rename, folder sync; each log on its own, so one that fails
        (a full disk) stays as it was and the others are replaced all the same. Then one
        commit line records those replaced.

        If that line cannot be written, they are recorded by the next :meth:`catch_up`
        instead, which finds them newer than the commit log says (as after a crash
        there); so that failure is only logged."""
        replaced: dict[str, dict[str, int]] = {}
        failed: dict[str, OSError | CorruptData] = {}
        for name in names:
            try:
                replaced[name] = self._compact(self.files[name])
            except (OSError, CorruptData) as error:
                failed[name] = error
        if replaced:
            try:
                self._record(
                    {
                        name: (self.files[name].generation, self.files[name].lines)
                        for name in replaced
                    }
                )
            except OSError as error:
                log.warning(
                    "compacted %s, but could not record it in %s (the next read of the logs "
                    "does): %s",
                    ", ".join(str(self._root / name) for name in replaced),
                    self._root / COMMITS,
                    error,
                )
        return Compacted(replaced, failed)

    def _compact(self, file: _File) -> dict[str, int]:
        """Replace one log by its next generation; the bytes of each row's (or key's) line
        in it."""
        if self._sync:
            self._make_durable()
        live = self._live(file)
        encoded = [lines.encode(entry) for entry in live]
        kept = {entry[1]: len(line) for entry, line in zip(live, encoded, strict=True)}
        data = lines.header(self._folder, file.name, file.generation + 1) + b"".join(encoded)
        del encoded  # (the file is written from one copy of its lines, not two)
        fsio.write_atomic(self._root_fd, file.name, data, sync=self._sync)
        self._reopen(file, file.generation + 1, len(live), len(data))
        return kept

    def shorten(self) -> None:
        """Replace the commit log by a new generation holding one line: every log's count."""
        if not self.seq:
            return
        if self._sync:
            self._make_durable()
        generation = self.commits.generation + 1
        claim = self.seq if self._sync else self.durable
        line = lines.commit_line(self.seq, self.committed, claim)
        data = lines.header(self._folder, COMMITS, generation) + line
        fsio.write_atomic(self._root_fd, COMMITS, data, sync=self._sync)
        self._reopen(self.commits, generation, 1, len(data))
        self.claimed = max(self.claimed, claim)
        self.live_commits = len(line)

    def _live(self, file: _File) -> list[Entry]:
        """The last line of each row (or key) still there, in commit order."""
        assert file.fd is not None
        data = fsio.read_at(file.fd, file.start, file.end - file.start)
        read = lines.read_lines(
            data, file.lines, lines.check_for(file.name, plain=plain_json(data))
        )
        if read.bad is not None:
            raise CorruptData(
                f"{self._root / file.name}: line {read.bad.index + 2} changed since it was read; "
                "close every process and open the folder again"
            )
        return lines.live(read.entries, file.name)

    def _reopen(self, file: _File, generation: int, count: int, size: int) -> None:
        """Hold the file that replaced ``file``'s; the old descriptor is let go only once the
        new one is taken, so a failed open leaves no closed descriptor number in use. If it
        fails, ``file`` stays the old file: :meth:`catch_up`, which every commit runs first,
        finds the new one by its inode and reads it whole."""
        fd = fsio.open_file(self._root_fd, file.name, may_share=self._may_share)
        try:
            ino = fsio.inode(fd)
        except OSError:
            fsio.close(fd)
            raise
        replaced = file.fd
        file.fd, file.ino, file.generation = fd, ino, generation
        file.start = len(lines.header(self._folder, file.name, generation))
        file.end, file.lines, file.open_line = size, count, False
        if replaced is not None:
            fsio.close(replaced)

    def close(self) -> None:
        for file in [*self.files.values(), self.commits]:
            if file.fd is not None:
                fd, file.fd = file.fd, None
                fsio.close(fd)
        pins, self._pins = self._pins, {}
        for fd, _ in pins.values():
            fsio.close(fd)


def _first_claim(
    good: list[lines.Commit], first_new: int, name: str, found: _Found | str | None
) -> int | None:
    """The first new commit that counts a line of ``name`` which is not there."""
    for index in range(first_new, len(good)):
        at = good[index].logs.get(name)
        if at is None:
            continue
        if not isinstance(found, _Found) or at[0] > found.view.generation:
            return index
        if at[0] == found.view.generation and at[1] > found.valid:
            return index
    return None
