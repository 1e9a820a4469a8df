"""The log folder of a ``file://`` store: its chain of generations, read back and appended to.

What a line is, and how a torn tail is told from damage, is :mod:`.wal`'s. Every
method but :meth:`Log.rotate` and :meth:`Log.forget` runs under the folder's
write lock; those two run under the checkpoint lock (see the persister). A
read-only load holds the checkpoint lock shared, and the write lock (shared)
only for :meth:`Log.note` and :meth:`Log.confirmed` — and for a second
:meth:`Log.recover`, when what the first read without it is unsettled.

- :meth:`Log.recover` (at open) reads the live chain, cuts a torn tail
  (durably, with a warning), makes what it read durable and returns every
  transaction still in the log. Read-only, it reads the generations
  :meth:`Log.note` listed, each up to the size noted, and writes nothing.
  Reading without the write lock, it judges nothing that a writer may be
  changing: a line that does not check, or a generation shorter than noted
  (a writing open may be cutting a torn tail and writing where it was), is
  :class:`Unsettled`, and the caller reads again holding the lock; a generation
  noted that is gone (a writing open moved it to the quarantine) is
  :class:`Vanished`. :meth:`Log.confirmed`, holding the lock again, tells whether
  the last line read is still there (see :meth:`Log.confirmed`).
- :meth:`Log.catch_up` returns what other processes appended since, following
  the line that ends a generation into the next; ``None`` if this process fell
  so far behind that a generation it had not finished was deleted. It costs
  one ``stat`` when nothing is new: it never lists the folder.
- :meth:`Log.append` writes one transaction. Before the first line a process
  writes into a generation, the generation it follows and its own header and
  folder entry are synced: a generation never takes lines before the ones it
  follows are durable.
- :meth:`Log.rotate` starts a new generation; :meth:`Log.move_to` (under the
  write lock) ends the current one with a line naming it, which moves every
  process there: a generation takes lines only once the one before says so.
  :meth:`Log.forget` deletes the ones a checkpoint made redundant, and the
  stale ones a crash left behind, once the current one (which holds the
  checkpoint's mark) lasts: a live generation whose previous is gone always
  holds a line, so recovery passes over an empty one that follows a deleted
  generation, a checkpoint's that no line moved the log to. Neither lists the
  folder (which may hold any number of files hutch did not write): only
  :meth:`Log.recover` does (at open, or for a process that fell so far behind
  that it reads everything again), and :meth:`Log.note` (read-only), and the
  check of a torn line that :meth:`Log.catch_up` meets (once, where a crash
  left one).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from hutch import Changes, CorruptData, HutchError

from . import fsio, wal

log = logging.getLogger("hutch.backends.file")

_NOTHING = Changes({}, {}, frozenset())

#: How much of a generation file holds its header, at most.
_HEAD = 4096


class Unsettled(Exception):
    """Read-only, reading without the write lock: a generation holds a line that does not
    check, or less than its size noted. A writing open may be cutting a torn tail and
    writing where it was, so those bytes say nothing: read again, holding the lock."""


class Vanished(Exception):
    """Read-only: a generation :meth:`Log.note` listed is gone (with the checkpoint lock held
    shared, only a writing open that moves a damaged one to the quarantine removes one):
    the load starts again."""


@attrs.define
class _Generation:
    number: int
    header: wal.Header
    data: bytes  # the whole file, or just its head
    start: int  # the offset past the header


class Log:
    """The ``_wal`` folder of one data folder, as this process reads and writes it."""

    def __init__(
        self,
        wal_fd: int,
        where: Path,
        folder_id: str,
        *,
        durability: str,
        may_share: Callable[[], bool],
        quarantine: Callable[[str], None] | None = None,
        read_only: bool = False,
    ) -> None:
        self._folder_fd = wal_fd
        #: Only :meth:`recover` is called, and it writes nothing: no cut, no new generation.
        self._read_only = read_only
        self._may_share = may_share  # whether a generation may have other names (links.py)
        self._quarantine = quarantine  # moves a damaged generation aside (on_corrupt)
        self._where = where
        self._folder = folder_id
        self._sync = durability != "none"
        self._synced_commits = durability == "commit"
        self.generation = 0  # the newest generation read: it takes the appends
        self._fd: int | None = None
        self._ino = 0  # the inode of the newest generation's file, as opened
        self._end = 0  # offset just past the last transaction read or written in it
        self._looked = 0  # the newest generation's size when this process last looked
        self.seq = 0  # the last transaction read or written
        self._durable = 0  # the highest transaction known to be durable
        self._ready = False  # this process may append to the generation (see append)
        self.unsynced = False  # appended without a sync (durability="batch")
        self._previous: dict[int, int | None] = {}  # generation -> the one it follows
        self._reported: set[int] = set()  # files in the log folder that are not generations
        #: Read-only, after a read without the lock: the last line read of the generation the
        #: log goes on in (generation, offset, bytes), for :meth:`confirmed`.
        self._last_read: tuple[int, int, bytes] | None = None
        #: Why the generation the log goes on in could not be opened (see catch_up), if so.
        self.stuck: Exception | None = None
        #: A failed sync of appended lines, raised by every later flush and append: a sync
        #: tried again may report success for pages the kernel already dropped.
        self._sync_failed: OSError | None = None

    @property
    def size(self) -> int:
        """How far the newest generation's file holds transactions."""
        return self._end

    # -- reading ------------------------------------------------------------------------------

    def behind(self) -> bool:
        """Whether other processes may have appended since this one last looked: one
        ``stat``, without the write lock (so it may err towards ``True``)."""
        found = fsio.info(self._folder_fd, wal.name(self.generation))
        return found is None or found.st_ino != self._ino or found.st_size != self._looked

    def note(self) -> dict[int, int]:
        """How far each generation file goes now: one listing and a ``stat`` a file, nothing
        read. A read-only load notes it holding the write lock for just that moment, then
        reads the log up to there (:meth:`recover`) with writers going on."""
        ends = {}
        for name, kind in fsio.entries(self._folder_fd):
            number = wal.number(name)
            if number is not None and kind == "file":
                found = fsio.info(self._folder_fd, name)
                if found is not None:
                    ends[number] = found.st_size
        return ends

    @property
    def strays(self) -> list[str]:
        """The files in the log folder bearing a generation's name that are not this folder's
        generations (reported when read, and ignored)."""
        return [wal.name(number) for number in sorted(self._reported)]

    def recover(
        self, ends: Mapping[int, int] | None = None, *, held: bool = True
    ) -> list[wal.Entry]:
        """Read the live chain of generations: every transaction still in the log, in order.

        ``ends`` (read-only, from :meth:`note`): read those generations only, each up to
        the size noted, so what writers appended since is never read, nor half a line; a
        generation noted that is gone is :class:`Vanished`. Without ``held`` (read-only,
        the write lock is not held while it reads): a line that does not check, or a
        generation shorter than noted, is :class:`Unsettled` (never judged: the bytes
        past a torn tail may be a writer's, half written), and the last line read is
        kept for :meth:`confirmed`.
        """
        self.stuck = None
        self._last_read = None
        unsettled = self._read_only and not held
        self._refuse_non_files()
        generations = self._generations(whole=True, ends=ends, unsettled=unsettled)
        if not generations and self._read_only:
            return []
        if not generations:
            number = self._create(previous=None)
            self._open(number, len(self._head(number)))
            return []
        chain = _chain(_without_rotated_only(generations))
        marks: list[int] = []
        damaged: list[_Generation] = []  # from a mark hutch never writes on (quarantined)
        for position, generation in enumerate(chain):
            try:
                marks += wal.checkpoint_marks(generation.data, generation.start, generation.number)
            except wal.Damaged as damage:
                if unsettled:
                    raise Unsettled from None
                self._refuse_edit(generation, damage)
                chain, damaged = chain[:position], chain[position:]
                break
        if marks:  # what a finished checkpoint wrote into the files is not replayed
            in_files = max(marks)
            chain = [g for g in chain if g.number > in_files] or chain[-1:]
        found: list[wal.Entry] = []
        expected: int | None = None
        end = 0
        for position, generation in enumerate(chain):
            end = generation.start
            try:
                for entry in wal.entries(generation.data, end, expected, generation.number):
                    if entry is None:
                        if unsettled:
                            raise Unsettled
                        if not self._cut_or_raise(generation, end, expected, chain[position + 1 :]):
                            return self._without(chain[position:] + damaged, found)
                        break
                    found.append(entry)
                    expected, end = entry.seq + 1, entry.end
            except wal.Damaged as damage:
                if unsettled:
                    raise Unsettled from None
                self._refuse_edit(generation, damage)
                return self._without(chain[position:] + damaged, found)
        if damaged:
            return self._without(damaged, found)
        self.seq = found[-1].seq if found else 0
        if self._read_only:
            if unsettled:  # (every line of it checked: it ends with a whole one)
                data = chain[-1].data
                last = data.rfind(b"\n", 0, len(data) - 1) + 1
                self._last_read = (chain[-1].number, last, data[last:])
            return found
        self._open(chain[-1].number, end)
        if self._sync:  # what was read may be in the page cache only (a killed writer's)
            for generation in chain[:-1]:
                self._sync_generation(generation.number)
            fsio.fdatasync(self._current_fd())
        self._durable = self.seq
        return found

    def confirmed(self) -> bool:
        """Read-only, holding the write lock shared again after a :meth:`recover` without it:
        whether the last line it read of the generation the log goes on in is still there,
        byte for byte.

        Writers change no byte of a generation before the end of its last whole line; past
        it, a torn tail is cut and written over. A line written there while the log was
        read, then cut back as its sync failed (a transaction that never committed), was
        the last line of the file when it was read, and is no longer there: read again.
        A line there now, under the lock, is committed, and so is every line before it.
        """
        if self._last_read is None:
            return True
        number, offset, line = self._last_read
        try:
            return fsio.read_part(self._folder_fd, wal.name(number), offset, len(line)) == line
        except FileNotFoundError:
            return False

    def catch_up(self) -> list[wal.Entry] | None:
        """What was appended since this process last read; ``None`` if it fell too far behind.

        If the generation the log goes on in cannot be opened, what came before it is
        returned and :attr:`stuck` says why: the line naming it is read again next time,
        and nothing is appended meanwhile (a line here would be read by no other process).
        """
        found = fsio.info(self._folder_fd, wal.name(self.generation))
        if found is None or found.st_ino != self._ino:
            return None
        size = self._looked = found.st_size
        read: list[wal.Entry] = []
        self.stuck = None
        while True:
            end: wal.Entry | None = None  # the line ending this generation, if read
            if size > self._end:
                data = fsio.read_at(self._current_fd(), self._end, size - self._end)
                offset = 0
                try:
                    for entry in wal.entries(data, 0, self.seq + 1, self.generation):
                        if entry is None:
                            self._check_tail(offset)
                            break
                        if entry.following is not None:
                            end = entry
                            break
                        read.append(entry)
                        offset, self.seq = entry.end, entry.seq
                        if entry.synced:
                            self._durable = max(self._durable, entry.seq)
                except wal.Damaged as damage:
                    raise self._edit_seen(self._end + damage.offset, damage.reason) from None
                self._end += offset
            if end is None:
                return read
            assert end.following is not None
            try:
                if not self._follow(end.following):
                    return None
            except (OSError, HutchError) as error:
                self.stuck = error
                return read
            self.seq = end.seq
            size = self._looked = fsio.size(self._current_fd())

    def _follow(self, number: int) -> bool:
        """Go on in generation ``number``, which the current one ends by naming; ``False`` if a
        checkpoint deleted it already (this process fell far behind)."""
        path = self._where / wal.name(number)
        try:
            header, start = wal.read_header(self._head(number))
        except FileNotFoundError:
            return False
        if (
            header is None
            or header.folder != self._folder
            or header.generation != number
            or header.previous != self.generation
        ):
            raise CorruptData(
                f"{path} is not the log generation that {wal.name(self.generation)} says comes "
                "next: close every process, move it out of the log folder and open the folder "
                "again"
            )
        self._previous[number] = header.previous
        self._open(number, start)
        return True

    def _refuse_non_files(self) -> None:
        """A generation's name on a folder, a link, a FIFO...: what the generation held is not
        there, so say so (or, given a quarantine, move it aside and say so)."""
        for name, kind in fsio.entries(self._folder_fd):
            if kind == "file" or wal.number(name) is None:
                continue
            what = fsio.kind_at(self._folder_fd, name)
            message = f"{self._where / name}: it is {what} where hutch keeps a log generation"
            if self._quarantine is None:
                raise CorruptData(
                    f"{message}; move it out of the log folder, or open the folder with "
                    "on_corrupt='quarantine' to move it aside"
                )
            log.warning("%s: it is moved to the quarantine folder", message)
            self._quarantine(name)

    def _without(self, damaged: list[_Generation], found: list[wal.Entry]) -> list[wal.Entry]:
        """Quarantine a damaged generation and those after it; go on from what came before,
        which a new generation holds, as one transaction, from the start (so a crash before
        the next checkpoint loses none of it)."""
        assert self._quarantine is not None
        self.seq = found[-1].seq if found else 0
        # It follows the first damaged one: until that is moved away, a crash leaves the
        # damage in the chain, and the next open does all this again.
        number = self._create(previous=damaged[0].number)
        self._open(number, len(self._head(number)))
        if found:
            self._write(Changes.combined([entry.changes for entry in found]), sync=self._sync)
        for generation in damaged:
            self._quarantine(wal.name(generation.number))
            self._previous.pop(generation.number, None)
        self._durable = self.seq
        return found

    def _edit_message(self, generation: int, where: str) -> str:
        return (
            f"{self._where / wal.name(generation)}: {where} is no transaction hutch wrote, "
            "though its checksum holds: the log was edited"
        )

    def _edit_seen(self, offset: int, reason: str) -> CorruptData:
        """The error for an edited line met while catching up (at ``offset`` of the current
        generation)."""
        return CorruptData(
            f"{self._edit_message(self.generation, f'byte {offset}')} ({reason}); close every "
            "process and open the folder again to see what to do"
        )

    def _refuse_edit(self, generation: _Generation, damage: wal.Damaged) -> None:
        """A line whose checksum holds but which is no transaction in turn: someone wrote it.
        Never applied, never cut: raise, or (given a quarantine) say so and return."""
        line = wal.line_number(generation.data, damage.offset)
        what = self._edit_message(generation.number, f"line {line} (byte {damage.offset})")
        if self._quarantine is None:
            raise CorruptData(
                f"{what} ({damage.reason}). Restore the folder from a backup, or open it with "
                "on_corrupt='quarantine' to move the log aside and open with the transactions "
                "before that line"
            )
        log.warning(
            "%s (%s): the generation and any after it are moved to the quarantine folder, and "
            "the store opens with the transactions before it",
            what,
            damage.reason,
        )

    def _cut_or_raise(
        self,
        generation: _Generation,
        offset: int,
        expected: int | None,
        later: list[_Generation],
    ) -> bool:
        """A line that does not check at open: cut it as a torn tail (``True``), or, if it is
        damage, raise (or, given a quarantine, say so: ``False``)."""
        path = self._where / wal.name(generation.number)
        line = wal.line_number(generation.data, offset)
        proof = None
        if any(len(g.data) > g.start for g in later):
            proof = "a later generation holds transactions, which it takes only once this one "
            proof += "is synced"
        elif (found := wal.proves_durable(generation.data, offset, expected)) is not None:
            proof = f"line {found} says the transactions before it had been made durable"
        elif (edit := wal.first_edit(generation.data, offset)) is not None:
            self._refuse_edit(generation, edit)  # a line no crash can leave: never cut
            return False
        if proof is not None:
            if self._quarantine is not None:
                log.warning(
                    "%s: line %d (byte %d) is damaged, and %s: the generation and any after "
                    "it are moved to the quarantine folder, and the store opens with the "
                    "transactions before it",
                    path,
                    line,
                    offset,
                    proof,
                )
                return False
            raise CorruptData(
                f"{path}: line {line} (byte {offset}) is damaged, and {proof}: acknowledged "
                "transactions would be lost if it were cut. Restore the folder from a backup, "
                "open it with on_corrupt='quarantine' to move the log aside and open without "
                "them, or move the file out of the log folder"
            )
        if self._read_only:  # what a writing open would cut is not read, and stays
            generation.data = generation.data[:offset]
            return True
        fd = fsio.open_file(self._folder_fd, wal.name(generation.number), may_share=self._may_share)
        try:
            fsio.truncate(fd, offset)
            if self._sync:
                fsio.fdatasync(fd)
        finally:
            fsio.close(fd)
        log.warning(
            "cut %d bytes from %s at byte %d (line %d): the torn tail of a transaction that "
            "never returned (a crash or power cut during its write); no acknowledged "
            "transaction followed it",
            len(generation.data) - offset,
            path,
            offset,
            line,
        )
        generation.data = generation.data[:offset]
        return True

    def _check_tail(self, offset: int) -> None:
        """A line that does not check while catching up is a killed writer's torn tail (the
        next append cuts it), unless something after it proves it was durable."""
        fd = self._current_fd()
        data = fsio.read_at(fd, 0, fsio.size(fd))
        bad = self._end + offset
        if (edit := wal.first_edit(data, bad)) is not None:
            raise self._edit_seen(edit.offset, edit.reason)
        proof = wal.proves_durable(data, bad, self.seq + 1)
        following = self._following(self.generation)
        if proof is not None or (following is not None and len(following.data) > following.start):
            raise CorruptData(
                f"{self._where / wal.name(self.generation)}: line {wal.line_number(data, bad)} "
                f"(byte {bad}) is damaged, and transactions after it were acknowledged; close "
                "every process and open the folder again to see what to do"
            )

    # -- writing ------------------------------------------------------------------------------

    def append(self, changes: Changes, vet: Callable[[int], None] | None = None) -> None:
        """Write one transaction after the last one (cutting a torn tail first); ``vet``
        is given the size of its line first, and may refuse it by raising."""
        self._write(changes, sync=self._synced_commits, vet=vet)

    def mark_checkpointed(self, generation: int) -> None:
        """Record that ``generation`` and the ones before it are in the record files."""
        self._write(_NOTHING, sync=False, checkpointed=generation)

    def move_to(self, number: int) -> None:
        """End the current generation with a line naming ``number``, which :meth:`rotate`
        started after it, and go on there: every process that reads the line follows."""
        if number == self.generation:
            return
        following = self._read(number, whole=False)
        if following is None or following.header.previous != self.generation:
            raise CorruptData(
                f"{self._where / wal.name(number)} does not follow {wal.name(self.generation)}, "
                "the generation in use: close every process and open the folder again"
            )
        self.flush()  # before the line that moves every process: nothing is left to sync
        fd = fsio.open_file(self._folder_fd, wal.name(number), may_share=self._may_share)
        try:
            self._write(_NOTHING, sync=False, following=number)
        except BaseException:
            fsio.close(fd)
            raise
        self._switch(fd, number, following.start)  # the line is out: the move cannot fail

    def _write(
        self,
        changes: Changes,
        *,
        sync: bool,
        vet: Callable[[int], None] | None = None,
        **marks: int,
    ) -> None:
        """Append one line. A mark (a checkpoint's, a generation's end) is not synced under
        the write lock: the next commit's sync, or the background flush, makes it durable,
        and losing it costs only a replay of what the record files hold already."""
        if self.stuck is not None:
            raise self.stuck
        if self._sync_failed is not None:
            raise self._sync_failed
        if not self._ready:
            self._prepare()
        line = wal.encode(self.seq + 1, self._durable, changes, synced=sync, **marks)
        if vet is not None:
            vet(len(line))
        fd = self._current_fd()
        fsio.append_after(fd, line, self._end, sync=False)
        if sync:
            try:
                fsio.fdatasync(fd)
            except OSError as error:
                with contextlib.suppress(OSError):
                    fsio.truncate(fd, self._end)  # this commit fails: its line goes
                self._sync_failed = _sync_failure(error)
                raise
        self.seq += 1
        self._end += len(line)
        self._looked = self._end
        if sync:
            self._durable = self.seq
            self.unsynced = False
        else:
            self.unsynced = self._sync

    def flush(self) -> None:
        """Make every transaction appended so far durable (``durability="batch"``)."""
        if self._sync_failed is not None:
            raise self._sync_failed
        if self.unsynced and self._fd is not None:
            try:
                fsio.fdatasync(self._fd)
            except OSError as error:
                self._sync_failed = _sync_failure(error)
                raise
            self._durable = self.seq
        self.unsynced = False

    def _prepare(self) -> None:
        """Before a first append to the newest generation: what it follows is durable."""
        if self._sync:
            previous = self._previous.get(self.generation)
            if previous is not None and fsio.exists(self._folder_fd, wal.name(previous)):
                self._sync_generation(previous)
            fsio.fsync(self._current_fd())
            fsio.fsync(self._folder_fd)
        self._ready = True

    def _sync_generation(self, number: int) -> None:
        fsio.sync_file(self._folder_fd, wal.name(number))

    # -- generations --------------------------------------------------------------------------

    def rotate(self) -> int:
        """Start a new generation after the current one (under the checkpoint lock, once
        :meth:`catch_up` followed every generation's end), unless the current one holds no
        transaction yet: then that one.

        Found by name, never by listing the folder (which may hold any number of files
        hutch did not write): the first number after the current one that no file bears,
        unless a generation there already follows the current one and holds nothing (a
        checkpoint that failed started it): then that one.
        """
        current = self._read(self.generation, whole=False)
        if current is not None and _holds_nothing(current):
            return self.generation
        number = self.generation
        while True:
            number += 1
            if number in self._reported:  # a stray, seen before: not read again
                continue
            try:
                found = self._read_noted(number, whole=False)
            except FileNotFoundError:
                try:
                    self._start(number, previous=self.generation)
                except FileExistsError:  # made since it was looked at: look again
                    number -= 1
                    continue
                return number
            except fsio.NotRegular:  # (a folder, a link...: not one of this folder's)
                continue
            if (
                found is not None
                and found.header.previous == self.generation
                and _holds_nothing(found)
            ):
                return number

    def forget(self, before: int) -> None:
        """Delete the generations older than ``before``, and the stale ones (outside the live
        chain: a crash, or a checkpoint that failed, left them), each read first to be sure
        it is still one of this folder's. A generation above the current one is deleted
        only while it holds nothing.

        Only the generations this process knows of are looked at, and nothing is listed:
        every generation was seen at open (which lists the folder), or made or followed
        since. The one a failed checkpoint of another process started holds nothing, and
        the next checkpoint takes it over (see :meth:`rotate`).
        """
        live = set()
        number: int | None = self.generation
        while number is not None and number not in live:
            live.add(number)
            number = self._previous.get(number)
        removed = False
        for number in sorted(n for n in self._previous if n < before or n not in live):
            found = self._read(number, whole=False)
            if found is not None and number > self.generation and not _holds_nothing(found):
                continue  # (no checkpoint leaves one: kept, as it may hold commits)
            if found is not None:
                if not removed:
                    self._settle_current()
                fsio.remove(self._folder_fd, wal.name(number))
                removed = True
            self._previous.pop(number, None)
        if removed:
            fsio.fsync(self._folder_fd)

    def _settle_current(self) -> None:
        """Before a generation is deleted, whatever the durability: make the current one last,
        its lines (the checkpoint's mark among them) and its name. Then a live generation whose
        previous is gone always holds a line, which tells it from one a checkpoint started
        and never moved to (see :func:`_rotated_only`), even after a power cut; and what is
        deleted may be another process's synced commits, whose mark must outlast them."""
        fsio.fsync(self._current_fd())
        if not self._sync:  # (otherwise its name was synced when it was made)
            fsio.fsync(self._folder_fd)

    def previous_of(self, generation: int) -> int | None:
        """The generation ``generation`` follows, as far as this process has read."""
        return self._previous.get(generation)

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()  # (a failed sync is raised, once the file is closed)
            finally:
                fd, self._fd = self._fd, None  # forgotten first: a failed close frees it anyway
                fsio.close(fd)

    def _create(self, previous: int | None) -> int:
        """A new generation numbered after every file of the folder (at open, which lists it)."""
        number = create_generation(self._folder_fd, self._folder, previous, sync=self._sync)
        self._previous[number] = previous
        return number

    def _start(self, number: int, previous: int) -> None:
        start_generation(self._folder_fd, self._folder, number, previous, sync=self._sync)
        self._previous[number] = previous

    def _open(self, number: int, end: int) -> None:
        """Take generation ``number`` for appends, once what this process appended to the one
        held so far is durable; a failed sync or open changes nothing."""
        self.flush()
        fd = fsio.open_file(self._folder_fd, wal.name(number), may_share=self._may_share)
        self._switch(fd, number, end)

    def _switch(self, fd: int, number: int, end: int) -> None:
        """Hold ``fd`` (generation ``number``) in place of the one held so far, which is let
        go only now, so no closed descriptor number is ever kept."""
        try:
            ino = fsio.inode(fd)
        except BaseException:  # (fstat of an open descriptor: never, in practice)
            fsio.close(fd)
            raise
        old, self._fd, self._ino = self._fd, fd, ino
        self.generation, self._end, self._ready, self.unsynced = number, end, False, False
        self._looked = end
        if old is not None:
            with contextlib.suppress(OSError):  # a failed close frees the number anyway
                fsio.close(old)

    def _current_fd(self) -> int:
        assert self._fd is not None, "recover first"
        return self._fd

    def _following(self, number: int) -> _Generation | None:
        """The generation started after ``number``, if there is one: found by a listing, as
        this runs only where a crash left a torn line, and its name may be any number after
        ``number`` (an older hutch numbered a generation after every file there)."""
        for name, kind in fsio.entries(self._folder_fd):
            found = wal.number(name)
            if found is None or kind != "file" or found == number or found in self._reported:
                continue
            if found not in self._previous:
                self._read(found, whole=False)
            if self._previous.get(found) == number:
                return self._read(found, whole=False)
        return None

    def _generations(
        self, *, whole: bool, ends: Mapping[int, int] | None = None, unsettled: bool = False
    ) -> list[_Generation]:
        """The generations of this folder in the log folder, oldest first (those of ``ends``
        only, each cut at its noted size, if given: :class:`Vanished` if one is gone, and,
        given ``unsettled``, :class:`Unsettled` if one holds less than noted)."""
        if ends is None:
            numbers = [
                number
                for name, kind in fsio.entries(self._folder_fd)
                if (number := wal.number(name)) is not None and kind == "file"
            ]
        else:
            numbers = list(ends)
        found = []
        for number in numbers:
            limit = None if ends is None else ends[number]
            try:
                generation = self._read_noted(number, whole=whole, limit=limit)
            except FileNotFoundError:
                if ends is not None:
                    raise Vanished from None
                continue  # (a checkpoint deleted it since the listing)
            if generation is None:
                continue
            if unsettled and limit is not None and len(generation.data) < limit:
                raise Unsettled
            found.append(generation)
        return sorted(found, key=lambda g: g.number)

    def _head(self, number: int) -> bytes:
        return fsio.read_head(self._folder_fd, wal.name(number), _HEAD)

    def _read(self, number: int, *, whole: bool) -> _Generation | None:
        """A generation file with a header of this folder, or ``None`` (gone, or a stray,
        which is reported)."""
        try:
            return self._read_noted(number, whole=whole)
        except FileNotFoundError:
            return None

    def _read_noted(
        self, number: int, *, whole: bool, limit: int | None = None
    ) -> _Generation | None:
        """:meth:`_read`, but ``FileNotFoundError`` if it is gone; ``limit``: only its first
        bytes, as many as that."""
        data = self._head(number)[:limit]  # checked before a big file is read whole
        header, start = wal.read_header(data)
        if whole and header is not None:
            name = wal.name(number)
            if limit is None:
                data = fsio.read_file(self._folder_fd, name)
            else:
                data = fsio.read_head(self._folder_fd, name, limit)
        if header is None or header.folder != self._folder or header.generation != number:
            if data and number not in self._reported:
                self._reported.add(number)
                log.warning(
                    "%s is not a log generation of this folder (%s); it is ignored: move it "
                    "out of the log folder",
                    self._where / wal.name(number),
                    "no hutch header" if header is None else "another folder's, or renamed",
                )
            return None
        self._previous[number] = header.previous
        return _Generation(number, header, data, start)


def log_folder_ids(wal_fd: int) -> tuple[set[str], list[str]]:
    """The folder ids in the headers of the generation files of a log folder, and the names
    of the files there that hold bytes but no such header (format 1's, or strays)."""
    found, headless = set(), []
    for name, kind in fsio.entries(wal_fd):
        if kind != "file" or wal.number(name) is None:
            continue
        head = fsio.read_head(wal_fd, name, _HEAD)
        header, _ = wal.read_header(head)
        if header is not None:
            found.add(header.folder)
        elif head:
            headless.append(name)
    return found, sorted(headless)


def create_generation(wal_fd: int, folder_id: str, previous: int | None, *, sync: bool) -> int:
    """A new generation file, numbered after every file there, holding just its header;
    durable with its folder entry (given ``sync``). Its number. (It lists the folder: for
    an open, or an upgrade.)"""
    numbers = [n for name, _ in fsio.entries(wal_fd) if (n := wal.number(name)) is not None]
    number = max(numbers, default=0) + 1
    start_generation(wal_fd, folder_id, number, previous, sync=sync)
    return number


def start_generation(
    wal_fd: int, folder_id: str, number: int, previous: int | None, *, sync: bool
) -> None:
    """The new generation file ``number`` (``FileExistsError`` if a file bears its name),
    holding just its header; durable with its folder entry (given ``sync``)."""
    if number > wal.LAST:
        raise CorruptData(
            f"{wal.name(wal.LAST)} is in the log folder: no generation can follow it; it is "
            "not one hutch wrote, so move it out of the log folder"
        )
    header = wal.header(folder_id, number, previous)
    fsio.close(fsio.create_with(wal_fd, wal.name(number), header, sync=sync))
    if sync:
        fsio.fsync(wal_fd)


def _holds_nothing(generation: _Generation) -> bool:
    """Whether a generation read (its head at least) holds no line after its header."""
    return len(generation.data) == generation.start


def _without_rotated_only(generations: list[_Generation]) -> list[_Generation]:
    """The generations (oldest first) but the newest ones that a checkpoint started and no
    line moved the log to: each holds nothing, and the log goes on in one before it. There
    may be more than one, numbered in any order (a checkpoint numbers the generation it
    starts after the current one, skipping the names that files bear then: once those
    files are gone, a later checkpoint starts one under a lower number), so each newest one
    is judged in turn."""
    by_number = {g.number: g for g in generations}
    kept = list(generations)
    while len(kept) > 1 and (previous := kept[-1].header.previous) is not None:
        if not _rotated_only(by_number.get(previous), kept[-1]):
            break
        kept.pop()
    return kept


def _rotated_only(before: _Generation | None, newest: _Generation) -> bool:
    """Whether ``newest`` is a generation a checkpoint started but no line moved the log to:
    it holds nothing, and ``before``, the one it follows, does not end by naming it, or is
    gone. (A live generation whose previous is gone holds a line: the mark of the checkpoint
    that deleted it, made durable first, or what recovery wrote again past a damaged one;
    one it started past damage with nothing before it is passed over at no cost, as the
    generations left then hold no line either.)"""
    if len(newest.data) > newest.start:
        return False
    if before is None:
        return True
    data = before.data
    if not data.endswith(b"\n"):
        return True
    last = max(data.rfind(b"\n", 0, len(data) - 1) + 1, before.start)
    return wal.following(data[last:]) != newest.number


def _chain(generations: list[_Generation]) -> list[_Generation]:
    """The live chain, oldest first: the newest generation and the ones it follows back.

    A generation outside it was left by a checkpoint whose delete did not last:
    what it holds is in the record files, and it is not replayed.
    """
    by_number = {g.number: g for g in generations}
    chain = [generations[-1]]
    seen = {chain[0].number}
    while (previous := chain[-1].header.previous) in by_number and previous not in seen:
        chain.append(by_number[previous])
        seen.add(previous)
    return chain[::-1]


def _sync_failure(error: OSError) -> OSError:
    """What every later flush and append of a log whose sync failed raises: a sync tried
    again may report success for pages the kernel already dropped."""
    return OSError(
        error.errno,
        f"{error.strerror}; a sync of the log failed, so commits since the last one may not "
        "be durable: close the store and open it again",
    )
