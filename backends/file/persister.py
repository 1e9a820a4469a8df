"""``FilePersister``: a folder of JSON records, made durable through a write-ahead log.

Commit: append the transaction to the log (:mod:`.log`) and ``fdatasync`` it,
under ``hutch.lock`` (an ``flock`` every process of the folder shares), after
reading what the others appended, so each transaction starts from the latest
state.

Checkpoint (in the background, and at close), under ``hutch.checkpoint`` so
that one process at a time does it, never holding the write lock for more
than a moment: start a new log generation; under the write lock, end the
current one with a line naming the new one (each process moves there when it
reads it) and take the set of rows and values the older generations changed;
then, with writers going on, write those record and value files, each synced
before it is renamed into place, sync their folders, and append the changed
rows' lines to the index files (:mod:`.indices`); only then delete the
generations this made redundant (the one just before the newest stays, so
that a process a little behind can still read it). Nothing relies on
``syncfs``: every file and folder that must last a power cut is synced itself.
What a commit, a refresh or a checkpoint costs grows with what it changes, not
with what the folder holds: none lists a folder, and an index file takes a line
per changed row (``_values.json``, one file for every keyed value, is written
whole when a value changed).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from hutch import (
    BackendConfig,
    Capabilities,
    Changes,
    CollectionSettings,
    ConfigError,
    CorruptData,
    HutchError,
    Persister,
    ReadOnlyStorage,
    Snapshot,
    StorageError,
    UnsupportedFormat,
)
from hutch.cells import Row, same_json
from hutch.persister import Background, ProcessGuard, Unseen

from . import checks, fsio, indices, records, upgrade, wal
from .folder import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MOVE_MARK,
    check_collection,
    check_layout,
    check_move,
    check_places,
    claimed_names,
    folder_of,
    holds_records,
    manifest_id,
    mark_move,
    missing_manifest,
    move_folder,
    moved_yet,
    nested_but_for_case,
    open_store_root,
    parse_manifest,
    pending_moves,
    positive,
    settings_json,
    stored_settings,
    unmark,
    warn_if_not_local,
)
from .fsio import storage_error
from .links import OPEN_MARK, hold_open_mark, may_share
from .locking import FolderLock, held_shared
from .log import Log, Unsettled, Vanished, log_folder_ids

log = logging.getLogger("hutch.backends.file")

LOCK_FILE = "hutch.lock"
CHECKPOINT_LOCK = "hutch.checkpoint"
WAL_FOLDER = "_wal"
QUARANTINE_FOLDER = "_quarantine"
#: A checkpoint also starts when the newest log generation grows past this many bytes.
CHECKPOINT_BYTES = 16 << 20
#: Record files written by this many threads at once, so the file system batches their syncs
#: (more threads barely speed a checkpoint up, and slow the committing thread more).
WRITERS = 4
_TABLE_FOLDER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch


#: What opening an index file to append to it raises where it is to be written whole instead:
#: missing, a folder, not writable in place, a link or a FIFO, a file with other names.
_NOT_APPENDABLE = (
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
    fsio.NotRegular,
    fsio.Linked,
)

#: How many times a read-only load is tried; the last try holds the write lock shared
#: throughout (see :meth:`FilePersister._load_read_only`).
_READ_ONLY_TRIES = 4


class _Exclusively(Exception):
    """A writing open found work that no read-only load may see half done: the upgrade of a
    folder of format 1 (it rewrites record files and deletes log generations). It takes the
    checkpoint lock exclusively for it (see :meth:`FilePersister._load_writing`)."""


class _ReadAgain(Exception):
    """A read-only load found that a writer changed what it had read in a way that may
    not be one commit point (the manifest appeared or changed): it starts again."""


@attrs.frozen
class _Plan:
    """What a writing open writes of the folder's settings, once every check passed (see
    :meth:`FilePersister._carry_out`); read-only, only the folder's id."""

    folder_id: str | None
    new: bool = False
    """There was no manifest (nor any log): one is written."""
    wanted: dict[str, dict[str, Any]] | None = None
    """The manifest's ``collections`` as they change (``None``: they do not)."""
    moves: dict[str, str] = attrs.field(factory=dict)
    """The collections whose folder moves: each -> the folder it leaves."""


@attrs.frozen
class _Damaged:
    """A record file that does not read as a record: refused (or quarantined) unless the log
    holds the row's latest version, which replaces it."""

    table_id: str
    row_id: str
    dir_fd: int
    folder: str
    name: str
    error: CorruptData


@attrs.frozen
class _Values:
    """``_values.json`` as read: the entries that check, those that do not (key -> why), and
    the file's bytes (kept whole in the quarantine when some entries do not check)."""

    good: dict[str, Any] = attrs.field(factory=dict)
    bad: dict[str, str] = attrs.field(factory=dict)
    data: bytes = b""


@attrs.frozen
class _Batch:
    """What one checkpoint writes: rows, values and index entries as they stood at its start."""

    rows: dict[str, dict[str, Row | None]]
    values: dict[str, Any] | None
    indexed: dict[str, dict[str, dict[str, Any]]]
    """Collection -> indexed field -> ``{row_id: value}`` of the rows written that have it."""
    durable: bool
    """Whether its files are synced: always but under ``durability="none"``, and then too when
    it holds what other processes logged (see :attr:`FilePersister._others_logged`)."""


class FilePersister(Persister):
    """The ``file://`` backend (and bare paths): one JSON file per record."""

    capabilities = Capabilities(durable=True, multi_process=True, change_feed=True, read_only=True)

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("on_corrupt", "batch_interval", "checkpoint_interval")
        options = config.options
        self.root = config.url.file_path()
        self._url = config.url.redacted()  # as given, for the commands messages suggest
        self._durability = config.durability
        self._sync = config.durability != "none"
        self._on_corrupt = options.get("on_corrupt", "raise")
        if self._on_corrupt not in ("raise", "quarantine"):
            raise ConfigError(
                f"on_corrupt must be 'raise' or 'quarantine', not {self._on_corrupt!r}"
            )
        self._batch_interval = positive(options, "batch_interval", 2.0, " of seconds")
        self._checkpoint_interval = positive(options, "checkpoint_interval", 5.0, " of seconds")
        self._given = {name: check_collection(name, s) for name, s in config.collections.items()}
        self._read_only = config.read_only
        self._lock_timeout = config.lock_timeout
        if self._read_only and self._on_corrupt == "quarantine":
            raise ConfigError(
                "on_corrupt='quarantine' moves damaged files aside, and read_only=True writes "
                "nothing: open without one of them"
            )
        self._held = fsio.Descriptors()
        self._root_fd, self._claim = open_store_root(
            self.root, self._held, read_only=self._read_only
        )
        warn_if_not_local(self.root, log)
        try:
            check_layout(self._root_fd, self.root, "file")
            if self._read_only:
                self._prepare_reading()
            else:
                self._prepare_writing()
        except BaseException as error:
            try:
                self._held.close()
            finally:
                self._claim.release()
            if isinstance(error, OSError):
                raise storage_error(error, "prepare", self.root) from error
            raise
        self._process = ProcessGuard(self.root)
        self._background = Background("flushing", self.root, log)
        #: The settings of every collection (given, or kept in the manifest).
        self.settings: dict[str, CollectionSettings] = {}
        #: The names whose own folder another collection lives in, or inside: each -> that one.
        self._claimed: dict[str, str] = {}
        #: Damaged files moved aside by ``on_corrupt="quarantine"``.
        self.quarantined: list[Path] = []
        self._dir_fds: dict[str, int] = {}
        self._dir_lock = threading.Lock()
        self._log: Log | None = None
        self._ids: dict[str, set[str]] = {}
        self._values: dict[str, Any] = {}
        self._indexed: dict[str, dict[str, dict[str, Any]]] = {}
        #: Collection -> indexed field -> the bytes its rows' index lines take (see
        #: :func:`indices.size`), kept with :attr:`_indexed`: what bounds its index file.
        self._index_sizes: dict[str, dict[str, int]] = {}
        self._dirty: dict[str, dict[str, Row | None]] = {}  # logged, not yet in record files
        self._dirty_in: dict[str, dict[str, int]] = {}  # the generation that logged each
        self._dirty_values = False
        self._values_dirty_in = 0  # the generation that last logged a value
        #: Whether what is dirty holds transactions another process logged (read from the log
        #: at open, or since): they may be commits it synced, so under durability="none" the
        #: checkpoint that writes them syncs them before the log that holds them is deleted.
        self._others_logged = False
        #: Read-only: the index files as the load found them, in its commit point (for verify).
        self._index_files: dict[str, checks.IndexFiles] = {}
        #: Read-only: the manifest's bytes as the load read them (``None``: there was none).
        self._manifest_read: bytes | None = None
        self._unseen = Unseen()  # others' commits, not yet handed to the store
        self._last_checkpoint = time.monotonic()
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None
        #: What a kind of upkeep last failed with (see :meth:`_upkeep`), by what it does.
        self._upkeep_failed: dict[str, str] = {}

    def _prepare_writing(self) -> None:
        """The log folder, the mark of an open folder, and the locks, made where missing."""
        wal_fd = self._held.own(fsio.open_dir(self._root_fd, WAL_FOLDER, create=True))
        self._wal_fd: int | None = wal_fd
        in_place = [
            (self._root_fd, {OPEN_MARK, LOCK_FILE, CHECKPOINT_LOCK}.__contains__),
            (wal_fd, lambda name: wal.number(name) is not None),
        ]
        self._open_fd = self._held.own(
            hold_open_mark(self._root_fd, self.root, in_place, sync=self._sync, log=log)
        )
        self._may_share = may_share(self._root_fd)
        self._write_lock, self._checkpoint_lock = (
            FolderLock(
                self._held.own(fsio.open_lock(self._root_fd, name, may_share=self._may_share)),
                self.root / name,
                f"the {what} lock",
                self._lock_timeout,
            )
            for name, what in ((LOCK_FILE, "write"), (CHECKPOINT_LOCK, "checkpoint"))
        )

    def _prepare_reading(self) -> None:
        """For a read-only open: nothing is made, nor opened yet. The log folder and the lock
        files are opened at load: a writer may make them between now and then."""
        self._wal_fd = None
        self._may_share = may_share(self._root_fd)

    @contextmanager
    def _lock_files(self) -> Iterator[list[tuple[int | None, Path, str]]]:
        """Read-only: the checkpoint and write lock files, opened if they are there (``None``
        if not; none is made), and closed after."""
        opened: list[tuple[int | None, Path, str]] = []
        try:
            for name, what in ((CHECKPOINT_LOCK, "checkpoint"), (LOCK_FILE, "write")):
                try:
                    fd = fsio.open_lock_if_present(self._root_fd, name)
                except OSError as error:
                    raise storage_error(error, "open", self.root / name) from error
                opened.append((fd, self.root / name, f"the {what} lock"))
            yield opened
        finally:
            for fd, _, _ in opened:
                if fd is not None:
                    fsio.close(fd)

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        if self._read_only:
            return self._load_read_only()
        try:
            snapshot = self._load_writing(exclusive=False)
        except _Exclusively:
            snapshot = self._load_writing(exclusive=True)
        # Leave the files whole, so a person reading them sees what the store holds (if
        # another process holds the lock, the background does it).
        with self._upkeep("the opening checkpoint", "the background tries it again"):
            self._checkpoint(wait=False)
        self._worker = threading.Thread(target=self._maintain, name="hutch-file", daemon=True)
        self._worker.start()
        return snapshot

    def _load_writing(self, *, exclusive: bool) -> Snapshot:
        """Read everything, holding the write lock (which opening writers take in turn) and
        the checkpoint lock: shared, so that no checkpoint runs meanwhile while read-only
        loads go on; ``exclusive`` for the upgrade of a folder of format 1 (without it,
        :class:`_Exclusively` is raised before anything is written).

        Every check of the settings comes before this open writes any of them: those of
        the manifest and the folders (:meth:`_prepare_folder`), then those of the log,
        whose every collection named (rows left, or rows deleted) claims the folder of its
        name (:meth:`_misplaced`); then the moves and the manifest (:meth:`_carry_out`).
        What is written before is what any open writes: a crash's temp files removed, a
        move a crash cut short finished, a torn tail of the log cut.
        """
        with self._checkpoint_lock.held(shared=not exclusive), self._write_lock.held():
            try:  # (a crash's: no checkpoint runs meanwhile, so none is being written)
                fsio.remove_temp_files(self._root_fd)
                fsio.remove_temp_files(self._wal_folder)  # a copy of a linked generation cut short
            except OSError as error:
                raise storage_error(error, "remove the temp files of", self.root) from error
            plan = self._prepare_folder(exclusive=exclusive)
            assert plan.folder_id is not None, "a writing open makes one"
            if plan.new:  # (no log yet: its first generation carries the id the manifest keeps)
                self._carry_out(plan)
            self._log = self._open_log(self._wal_folder, plan.folder_id)
            try:
                log_entries = self._recover_log()
                logged = {table_id for entry in log_entries for table_id in entry.changes.tables}
                if (misplaced := self._misplaced(logged)) is not None:
                    raise misplaced
                if not plan.new:
                    self._carry_out(plan)
            except BaseException:
                self._the_log.close()
                self._log = None  # (so that close() writes nothing: those rows stay in the log)
                raise
            snapshot = self._read_everything(log_entries, opening=True)
            self._remove_unindexed()
            self._write_stale_indices()
        return snapshot

    def _load_read_only(self) -> Snapshot:
        """One commit point, writing nothing (see :meth:`_load_at_one_point`).

        The lock files are opened now; if one that was missing appeared meanwhile, a
        writer may have written while the folder was read without it: read again,
        holding it. Read again too when a writer changed the folder in a way the read
        cannot take in: the manifest appeared or changed, or a generation noted was moved
        to the quarantine. The last try holds the write lock shared throughout, so that
        nothing changes then.
        """
        for attempt in range(_READ_ONLY_TRIES):
            with self._lock_files() as locks:
                try:
                    snapshot = self._load_at_one_point(*locks, hold=attempt == _READ_ONLY_TRIES - 1)
                except (_ReadAgain, Vanished):
                    self._forget_folders()
                    continue
                appeared = any(
                    fd is None and fsio.exists(self._root_fd, path.name) for fd, path, _ in locks
                )
            if not appeared:
                return snapshot
            self._forget_folders()
        raise StorageError(
            f"could not read {self.root} at one commit point: writers kept opening it (making "
            "its lock files, writing its manifest, moving damaged log generations aside) while "
            "it was read; open it again"
        )

    def _load_at_one_point(
        self,
        checkpoint_lock: tuple[int | None, Path, str],
        write_lock: tuple[int | None, Path, str],
        *,
        hold: bool = False,
    ) -> Snapshot:
        """One commit point, writing nothing, holding writers up for a moment only.

        Under a shared checkpoint lock (no checkpoint rewrites a record, rotates or
        deletes a generation meanwhile; commits and writing opens go on): read the
        manifest holding the write lock shared (a writing open writes it and makes the
        first generation under the write lock, so it finds both or neither); read the
        records, the values and the index files without it; then, holding it shared
        again for a moment, check that the manifest is the one read and note how far
        the log goes (a ``stat`` of each generation); then replay the log up to there
        (:meth:`_log_up_to`). A ``"wal": false`` record, written at commit under the
        write lock, thus holds no state later than that end, which the replay brings
        every row to. ``hold``: the write lock held shared throughout (a last try).
        A snapshot: a read-only open takes no later commit in (docs/file-format.md,
        "Read-only opens").
        """
        with held_shared(*checkpoint_lock, self._lock_timeout), ExitStack() as throughout:
            if hold:
                throughout.enter_context(held_shared(*write_lock, self._lock_timeout))
            moment = _Moment(None if hold else write_lock, self._lock_timeout)
            if self._wal_fd is None:
                try:
                    wal_fd = fsio.open_dir(self._root_fd, WAL_FOLDER, create=False)
                except FileNotFoundError:
                    pass  # no log: nothing to replay
                except OSError as error:
                    raise storage_error(error, "open", self.root / WAL_FOLDER) from error
                else:
                    self._wal_fd = self._held.own(wal_fd)
            with moment():
                folder_id = self._prepare_folder().folder_id
            on_disk, damaged = self._read_records(tidy=False)
            found_values = self._read_values()
            try:
                self._index_files = self._read_index_files(self._indexed_in(on_disk))
            except OSError as error:
                raise storage_error(error, "read the index files of", self.root) from error
            if self._log is not None:  # (from a read before)
                self._log.close()
                self._log = None
            ends = self._log_end(moment, folder_id)
            log_entries = self._log_up_to(moment, ends, held=hold)
            self._settle(damaged, log_entries)
            values = self._settle_values(found_values, log_entries, opening=False)
            return self._replayed(on_disk, values, log_entries)

    def _log_end(self, moment: _Moment, folder_id: str | None) -> dict[int, int] | None:
        """How far the log goes now (see :meth:`Log.note`), noted holding the write lock shared,
        so that no commit is half written: a moment, whatever the size of the store.
        ``None``: no log to read (the folder has none, or no manifest and no generation).

        First, still holding it, the manifest is read again: if it appeared or changed
        since the load read it (the first writing open of the folder wrote it, and
        generations under its id, meanwhile), :class:`_ReadAgain`.
        """
        try:
            with moment():
                if self._read_manifest() != self._manifest_read:
                    raise _ReadAgain
                if self._wal_fd is None or folder_id is None:
                    return None
                self._log = self._open_log(self._wal_fd, folder_id)
                return self._log.note()
        except OSError as error:
            raise storage_error(error, "read the write-ahead log of", self.root) from error

    def _log_up_to(
        self, moment: _Moment, ends: dict[int, int] | None, *, held: bool
    ) -> list[wal.Entry]:
        """The log's transactions up to ``ends``, read without the write lock (unless
        ``held``), judged only if what was read is settled.

        Bytes read without the lock past a line that does not check may be a writer's:
        a writing open cuts a torn tail and appends where it was, and a line whose sync
        fails is cut back. So if the read meets such a line, or a generation shorter than
        noted (:class:`Unsettled`), or if the last line it read is no longer there once
        the lock is held again (:meth:`Log.confirmed`), the log is noted and read again
        holding the lock throughout, and what is found then is the truth: a later commit
        point, as the records read hold no state later than the first end noted.
        """
        if ends is None:
            return []
        log = self._the_log
        try:
            if held:
                return log.recover(ends)
            try:
                found: list[wal.Entry] | None = log.recover(ends, held=False)
            except Unsettled:
                found = None
            with moment():
                if found is None or not log.confirmed():
                    found = log.recover(log.note())
            return found
        except OSError as error:
            raise storage_error(error, "read the write-ahead log of", self.root) from error

    def _forget_folders(self) -> None:
        """Close the collection folders opened so far (a load starts again: the settings it
        reads may put a collection elsewhere)."""
        with self._dir_lock:
            for fd in self._dir_fds.values():
                fsio.close(fd)
            self._dir_fds.clear()

    def _open_log(self, wal_fd: int, folder_id: str) -> Log:
        """The log folder as this process reads (and, unless read-only, writes) it."""
        return Log(
            wal_fd,
            self.root / WAL_FOLDER,
            folder_id,
            durability=self._durability,
            may_share=self._may_share,
            quarantine=self._quarantine_log if self._on_corrupt == "quarantine" else None,
            read_only=self._read_only,
        )

    @property
    def _wal_folder(self) -> int:
        assert self._wal_fd is not None, "a writing open has a log folder"
        return self._wal_fd

    def begin(self) -> None:
        self._process.check()
        self._background.check()
        self._write_lock.acquire()

    def end(self) -> None:
        self._write_lock.release()

    def behind(self) -> bool:
        if self._read_only:
            return False
        # The log first, then what is read or waiting (see hutch.persister.Unseen).
        return self._log is None or self._log.behind() or bool(self._unseen)

    def catch_up(self) -> None:
        """Read what others appended, under the write lock (so only lines their writers
        synced); the next :meth:`poll` reports it."""
        self._process.check()
        if self._read_only:
            return
        self._background.check()
        with self._write_lock.held():
            self._read_log()

    def poll(self) -> Changes | None:
        self._process.check()
        if self._read_only:
            return None
        if self._write_lock.owned():  # a transaction begins: read up to the last commit
            self._background.check()
            self._read_log()
        return self._unseen.take()

    def _read_log(self) -> None:
        try:
            self._catch_up()
        except OSError as error:
            raise storage_error(error, "read the write-ahead log of", self.root) from error

    def apply(self, changes: Changes) -> None:
        if self._read_only:
            raise ReadOnlyStorage(f"{self.root} was opened with read_only=True: it writes nothing")
        if (misplaced := self._misplaced(changes.tables)) is not None:
            raise misplaced
        try:
            self._the_log.append(changes, lambda size: records.check_record_sizes(changes, size))
        except OSError as error:
            raise storage_error(error, "append to the write-ahead log of", self.root) from error
        # The commit is durable from here on: nothing below may fail the transaction.
        self._take(changes, self._the_log.generation)
        self._write_unlogged(changes)

    def reindex(self) -> None:
        """Rewrite every index file whole."""
        try:
            with self._checkpointing():
                self._rewrite_indices()
        except OSError as error:
            raise storage_error(error, "rebuild the indices of", self.root) from error

    def _rewrite_indices(self, *, appended_only: bool = False) -> None:
        """Write index files whole, holding the checkpoint lock (``appended_only``: those
        holding lines appended since they were, see :meth:`_appended_to`): those of
        ``"wal": false`` collections under the write lock, where commits write them too; the
        others from a snapshot, outside it (a commit meanwhile marks its rows for the next
        checkpoint, which appends their lines)."""
        with self._write_lock.held():
            self._catch_up()
            chosen = {
                table_id: {
                    field: by_row
                    for field, by_row in fields.items()
                    if not appended_only or self._appended_to(table_id, field)
                }
                for table_id, fields in self._indexed.items()
            }
            self._write_indices({t: fields for t, fields in chosen.items() if self._unlogged(t)})
            snapshot = {
                table_id: {field: dict(by_row) for field, by_row in fields.items()}
                for table_id, fields in chosen.items()
                if not self._unlogged(table_id)
            }
        self._write_indices(snapshot)

    def _rewrite_appended_indices(self) -> None:
        """Write whole the index files holding appended lines (holding the checkpoint lock): at
        close, so that a folder no process has open holds them sorted, and at compact, so
        that no old value is left in them."""
        try:
            self._rewrite_indices(appended_only=True)
        except OSError as error:
            raise storage_error(error, "rewrite the indices of", self.root) from error

    def _appended_to(self, table_id: str, field: str) -> bool:
        """Whether an index file holds lines appended since it was written whole: its last
        line is no sorted one (two bytes read), or it is not a file to read."""
        name = indices.file_name(field)
        try:
            folder = fsio.open_dir(
                self._dir_fd(table_id, create=True), indices.FOLDER, create=False
            )
        except (FileNotFoundError, fsio.NotRegular):
            return True
        with _opened(folder):
            found = fsio.info(folder, name)
            if found is None or not found.st_size:
                return found is None
            try:
                return fsio.read_part(folder, name, found.st_size - 2, 2) != b"]\n"
            except (FileNotFoundError, fsio.NotRegular):
                return True

    def checkpoint(self) -> None:
        """Write what the log holds into the record, value and index files now (waiting for
        another process's checkpoint to finish first); the background does it anyway."""
        self._process.check()
        if self._write_lock.owned():
            raise HutchError(
                "a checkpoint cannot run inside a transaction: it waits for the write lock "
                "the transaction holds. Call it after the `with ...transaction():` block ends"
            )
        self._checkpoint(wait=True)

    def compact(self) -> None:
        """Checkpoint, then again keeping no older generation, and write whole the index files
        holding appended lines: the log holds nothing the record files do not, and deleted
        rows and values are gone from every file."""
        self._process.check()
        with self._checkpointing():
            self._checkpoint_held()
            self._checkpoint_held(keep_previous=False)
            self._rewrite_appended_indices()

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.join()
        with ExitStack() as release:  # (each runs, in reverse order, whatever one raises)
            release.callback(self._claim.release)
            release.callback(self._held.close)
            release.callback(self._forget_folders)
            if self._log is not None:
                release.callback(self._close_log)
            if not self._read_only:  # a stray call through this database: refused
                release.callback(self._checkpoint_lock.retire)
                release.callback(self._write_lock.retire)
            if self._log is not None and not self._read_only:
                then = "it was closed without writing its record files, which the next open writes"
                with self._upkeep("the closing checkpoint", then):
                    self._checkpoint(wait=True, closing=True)

    def _close_log(self) -> None:
        """Close the log, syncing what ``durability="batch"`` left unsynced: commits that were
        acknowledged, so a failure here is raised (it is no upkeep)."""
        try:
            self._the_log.close()
        except OSError as error:
            raise storage_error(error, "sync the write-ahead log of", self.root) from error

    @contextmanager
    def _upkeep(self, what: str, then: str) -> Iterator[None]:
        """Run upkeep — a checkpoint, index files rewritten or removed — which is never what
        an open, a close or a commit is for: every commit is in the log, and these files are
        written from it. So a storage error (a full disk, EIO, a read-only file system, a
        permission) is logged, never raised, and the work is tried again later (``then``
        says when). The same failure again is logged at debug level only. Damage
        (``CorruptData``) is raised: a person must look at it. A failed sync of the log is
        raised too, by the log's next flush or append (see ``Log.flush``)."""
        try:
            yield
        except CorruptData:
            raise
        except (OSError, StorageError) as error:
            failure = str(error)
            again = self._upkeep_failed.get(what) == failure
            self._upkeep_failed[what] = failure
            log.log(
                logging.DEBUG if again else logging.WARNING,
                "%s of %s failed (%s); the log holds every commit: %s",
                what,
                self.root,
                error,
                then,
            )
        else:
            self._upkeep_failed.pop(what, None)

    # -- checks (hutch verify, hutch stats) ---------------------------------------------------

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings kept in the manifest (with those given to this open), of each
        collection whose settings are not the default ones."""
        return {name: s for name, s in sorted(self.settings.items()) if s != CollectionSettings()}

    def verify(self) -> list[str]:
        """What is wrong beside the rows: index files that do not match the records, names that
        differ only in case, quarantined files, strays in the log folder.

        Rows the log changed after its last checkpoint mark are left out of the index
        comparison: a checkpoint writes their index entries later, so the files may hold
        any of their versions. Read-only, the index files compared are those the load read,
        in its commit point; a writing open reads them holding its locks.
        """
        self._process.check()
        try:
            if self._read_only:
                found = self._index_files
            else:
                # (the checkpoint lock shared: no checkpoint writes index files meanwhile)
                with self._checkpoint_lock.held(shared=True), self._write_lock.held():
                    self._catch_up()  # (what it read, poll reports)
                    found = self._read_index_files(self._indexed)
            folders = self._folders()
            quarantined = self._quarantined_files()
        except OSError as error:
            raise storage_error(error, "check the files of", self.root) from error
        problems = self._clashes(folders)
        problems += self._index_problems(found)
        if quarantined.files or quarantined.too_deep:
            deeper = (
                f" (and {quarantined.too_deep} folder(s) nested more than {checks.DEEPEST} deep, "
                "not counted)"
                if quarantined.too_deep
                else ""
            )
            problems.append(
                f"{self.root / QUARANTINE_FOLDER} holds {quarantined.files} file(s){deeper} that "
                "hutch moved aside as damaged (on_corrupt='quarantine'), or that someone put "
                "there: repair each and move it back into place with no process open, or "
                "delete it"
            )
        for name in self._log.strays if self._log is not None else []:
            problems.append(
                f"{self.root / WAL_FOLDER / name} is not a log generation of this folder (no "
                "hutch header, another folder's, or renamed); hutch ignores it: move it out of "
                "the log folder"
            )
        return problems

    def _read_index_files(
        self, indexed: Mapping[str, Mapping[str, dict[str, Any]]]
    ) -> dict[str, checks.IndexFiles]:
        """The index files of every collection's folder (``indexed``: collection -> field ->
        ``{row_id: value}``, which bounds how big its index file is read)."""
        found: dict[str, checks.IndexFiles] = {}
        for table_id in self._folders():
            try:
                dir_fd = self._dir_fd(table_id, create=False)
            except FileNotFoundError:
                continue
            settings = self.settings.get(table_id)
            fields = indexed.get(table_id, {})
            found[table_id] = checks.read_index_files(
                dir_fd,
                indices.FOLDER,
                {field: fields.get(field, {}) for field in (settings.indexed if settings else ())},
            )
        return found

    def _index_problems(self, found: Mapping[str, checks.IndexFiles]) -> list[str]:
        fix = f"run `hutch reindex {self._url}` to write the index files again"
        problems: list[str] = []
        for table_id, files in sorted(found.items()):
            folder = self.root / self._folder_of(table_id) / indices.FOLDER
            for name in files.others:
                problems.append(
                    f"{folder / name}: collection {table_id!r} does not index that field (any "
                    "more), so nothing keeps this file current: delete it, or index the field "
                    "again"
                )
        for table_id, fields in sorted(self._indexed.items()):
            files = found.get(table_id, checks.IndexFiles())
            folder = self.root / self._folder_of(table_id) / indices.FOLDER
            if files.trouble is not None:
                problems.append(f"{folder}: {files.trouble}; move it away, then {fix}")
                continue
            lagging = self._dirty.get(table_id, {}).keys()
            for field, expected in sorted(fields.items()):
                where = folder / indices.file_name(field)
                data = files.found.get(field)
                problems += checks.index_problems(where, data, expected, lagging, fix)
        return problems

    def _clashes(self, folders: Mapping[str, str]) -> list[str]:
        """Names that a case-insensitive file system would make one: collection folders (or
        put one inside another), row ids (record files), indexed fields (index files)."""
        problems = checks.clash_problems(
            f"in {self.root}, the collection folders",
            checks.case_clashes(folders.values()),
            "give one of those collections another path",
        )
        for outer, inner in nested_but_for_case(folders):
            problems.append(
                f"in {self.root}, the folder of collection {inner!r} ({folders[inner]!r}) and "
                f"that of {outer!r} ({folders[outer]!r}) differ only in case where one is "
                "inside the other: on a case-insensitive file system (macOS, Windows) the "
                f"first would lie inside the second, mixing their files; give {inner!r} "
                "another path"
            )
        for table_id, ids in sorted(self._ids.items()):
            problems += checks.clash_problems(
                f"collection {table_id!r}: the row ids",
                checks.case_clashes(ids),
                "rename one of them (lower-case ids are safe everywhere)",
            )
        for table_id, settings in sorted(self.settings.items()):
            problems += checks.clash_problems(
                f"collection {table_id!r}: the indexed fields",
                checks.case_clashes(settings.indexed),
                "index one of them only",
            )
        return problems

    def _quarantined_files(self) -> checks.Usage:
        """What the quarantine folder holds."""
        try:
            folder = fsio.open_dir(self._root_fd, QUARANTINE_FOLDER, create=False)
        except (FileNotFoundError, fsio.NotRegular):
            return checks.Usage()
        with _opened(folder):
            return checks.usage(folder)

    def stats(self) -> dict[str, Any]:
        """Bytes and files on disk, a ``stat`` a file: the whole folder, the log, and each
        collection's record and index files."""
        self._process.check()
        try:
            return self._stats()
        except OSError as error:
            raise storage_error(error, "look at the files of", self.root) from error

    def _stats(self) -> dict[str, Any]:
        whole = checks.usage(self._root_fd)
        generations = [
            size
            for name, size in (
                checks.files_named(self._wal_fd, wal.SUFFIX) if self._wal_fd is not None else ()
            )
            if wal.number(name) is not None
        ]
        collections: dict[str, dict[str, int]] = {}
        for table_id in sorted(self._folders()):
            try:
                dir_fd = self._dir_fd(table_id, create=False)
            except FileNotFoundError:
                continue
            held = [size for _, size in checks.files_named(dir_fd, records.RECORD_SUFFIX)]
            index_files: list[int] = []
            try:
                with _opened(fsio.open_dir(dir_fd, indices.FOLDER, create=False)) as inner:
                    index_files = [size for _, size in checks.files_named(inner, indices.SUFFIX)]
            except (FileNotFoundError, fsio.NotRegular):
                pass
            collections[table_id] = {
                "bytes": sum(held) + sum(index_files),
                "record_files": len(held),
                "index_files": len(index_files),
                "index_bytes": sum(index_files),
            }
        values = fsio.info(self._root_fd, records.VALUES)
        found: dict[str, Any] = {
            "bytes": whole.bytes,
            "files": whole.files,
            "log_bytes": sum(generations),
            "wal_generations": len(generations),
            "record_files": sum(c["record_files"] for c in collections.values()),
            "values_bytes": values.st_size if values is not None else 0,
            "collections": collections,
        }
        if whole.too_deep:  # (their files are not in bytes and files)
            found["folders_too_deep"] = whole.too_deep
        return found

    # -- locking -----------------------------------------------------------------------------

    @contextmanager
    def _checkpointing(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the checkpoint lock (taken before the write lock, never after); yields whether
        it was taken (without ``wait``, not if another process holds it)."""
        if not self._checkpoint_lock.acquire(wait=wait):
            yield False
            return
        try:
            yield True
        finally:
            self._checkpoint_lock.release()

    # -- opening -----------------------------------------------------------------------------

    def _read_manifest(self) -> bytes | None:
        """The manifest's bytes (``None``: there is none)."""
        try:
            return fsio.read_file(self._root_fd, MANIFEST, limit=MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise storage_error(error, "read", self.root / MANIFEST) from error

    def _prepare_folder(self, *, exclusive: bool = False) -> _Plan:
        """Read the manifest and settle the settings: upgrade a folder of format 1, finish the
        moves of collection folders a crash cut short (:meth:`_finish_moves`), check the
        settings given (:meth:`_check_changes`, :meth:`_check_places`) and take them; what is
        then to be written, :meth:`_carry_out` writes (after the checks of the log). An
        upgrade needs the checkpoint lock held exclusively: without ``exclusive``,
        :class:`_Exclusively` is raised first. Read-only, nothing is written, the bytes read
        are kept (:meth:`_log_end` compares them), and the folder's id is ``None`` if there
        is no manifest and no generation: no log to read."""
        where = self.root / MANIFEST
        data = self._read_manifest()
        if self._read_only:
            self._manifest_read = data
        manifest: dict[str, Any] = {}
        if data is not None:
            manifest = parse_manifest(data, where, version=records.FORMAT_VERSION)
            if manifest["format"] < records.FORMAT_VERSION:
                if self._read_only:
                    raise UnsupportedFormat(
                        f"{where}: the folder is of format {manifest['format']}, which an "
                        "upgrade turns into this version's; that writes, so open it once "
                        "without read_only=True first"
                    )
                if not exclusive:
                    raise _Exclusively
                upgrade.to_format_2(self._root_fd, self._wal_folder, self.root, sync=self._sync)
                return self._prepare_folder(exclusive=True)
        folder_id = self._folder_id(manifest if data is not None else None, where)
        kept = stored_settings(manifest, where)
        unfinished = pending_moves(manifest, kept, where)
        try:
            if self._read_only:
                self._take_settings(self._read_only_settings(kept, unfinished), kept, {})
                return _Plan(folder_id)
            assert folder_id is not None, "a writing open makes one"
            if unfinished:
                self._finish_moves(folder_id, kept, unfinished)
            moves = self._check_changes(kept, alone=self._hold_loaded())
            self._take_settings(kept | self._given, kept, moves)
        except OSError as error:
            raise storage_error(error, "prepare the collection folders of", self.root) from error
        wanted = {name: settings_json(s) for name, s in sorted(self.settings.items())}
        changed = data is None or bool(moves) or wanted != manifest["collections"]
        return _Plan(folder_id, data is None, wanted if changed else None, moves)

    def _finish_moves(
        self, folder_id: str, kept: Mapping[str, CollectionSettings], unfinished: Mapping[str, str]
    ) -> None:
        """Finish the moves a crash cut short (the manifest notes them, ``unfinished``:
        collection -> the folder it leaves), then write the manifest without the note, then
        remove the moved folders' marks: recovery, as the moves were checked when they
        began."""
        for name, old in sorted(unfinished.items()):
            self._move(name, old, folder_of(name, kept[name]), kept[name].indexed)
        self._write_manifest(folder_id, {n: settings_json(s) for n, s in sorted(kept.items())})
        for name in sorted(unfinished):
            unmark(self._root_fd, folder_of(name, kept[name]))

    def _carry_out(self, plan: _Plan) -> None:
        """Write what this open's settings change, once every check passed: each folder that
        moves gets the mark of its move (synced), the manifest notes the moves and the new
        settings, the folders are renamed, the manifest is written again without the note,
        and the marks are removed (see docs/file-format.md, "Where collections live").

        All under the write lock, with the checkpoint lock held shared only: a read-only
        load reads the manifest holding the write lock shared, and again before it reads
        the log, so one that overlaps a move finds it changed and reads again. So no open
        waits for a read-only load to move a folder (nor keeps, while it waits, the lock
        that tells another open with the same new settings from one with the old)."""
        assert plan.folder_id is not None, "a writing open makes one"
        try:
            for name, old in sorted(plan.moves.items()):
                mark_move(self._root_fd, name, old, sync=self._sync)
            if plan.moves:  # the manifest says where they go before they go
                assert plan.wanted is not None, "a move changes a path"
                self._write_manifest(plan.folder_id, plan.wanted, plan.moves)
                for name, old in sorted(plan.moves.items()):
                    self._move(name, old, self._folder_of(name), self.settings[name].indexed)
            if plan.wanted is not None:
                self._write_manifest(plan.folder_id, plan.wanted)
            for name in sorted(plan.moves):
                unmark(self._root_fd, self._folder_of(name))
            if plan.new and self._sync:
                fsio.fsync(self._root_fd)  # hutch.lock, the log folder: their names last too
        except OSError as error:
            raise storage_error(error, "prepare the collection folders of", self.root) from error

    def _read_only_settings(
        self, kept: dict[str, CollectionSettings], unfinished: Mapping[str, str]
    ) -> dict[str, CollectionSettings]:
        """What a read-only open reads: the settings kept (and those given for collections
        the manifest lacks), and a collection whose move a crash cut short where its folder
        is still (as its mark says, see :func:`moved_yet`)."""
        settings = self._given | kept
        for name, old in unfinished.items():
            new = folder_of(name, settings[name])
            if old != new and not moved_yet(self._root_fd, self.root, name, old, new):
                settings[name] = attrs.evolve(settings[name], path=old)
        return settings

    def _take_settings(
        self,
        settings: dict[str, CollectionSettings],
        kept: Mapping[str, CollectionSettings],
        moves: Mapping[str, str],
    ) -> None:
        """Check where ``settings`` put the collections (:meth:`_check_places`), then use them."""
        folders = {name: folder_of(name, s) for name, s in settings.items()}
        self._check_places(folders, kept, moves)
        self.settings = settings
        self._claimed = {n: c for n, c in claimed_names(folders).items() if n not in settings}

    def _write_manifest(
        self, folder_id: str, wanted: dict[str, dict[str, Any]], moves: dict[str, str] | None = None
    ) -> None:
        data = records.encode_manifest(folder_id, wanted, moves)
        try:
            fsio.write_atomic(self._root_fd, MANIFEST, data, sync=self._sync)
        except OSError as error:
            raise storage_error(error, "write", self.root / MANIFEST) from error

    def _hold_loaded(self) -> bool:
        """Hold the shared ``flock`` on the log folder that every writing open holds from the
        moment its settings are fixed until it closes; whether no other open holds it, so
        that no other process writes the folder with settings of its own."""
        fsio.lock_shared(self._wal_folder)
        return fsio.sole_holder(self._wal_folder)

    def _check_changes(
        self, stored: Mapping[str, CollectionSettings], *, alone: bool
    ) -> dict[str, str]:
        """The collections whose folder moves at this open, as their ``path`` changed: each ->
        the folder it leaves, which holds its records or its index files (they move with it:
        index files left behind would stop a later move back).

        A change of settings (from those kept, or the default ones) is refused while
        another writing process has the folder open: that one would go on with the old
        ones, writing the collection in its old folder (a split that loses rows), the old
        way (its checkpoint could undo a commit), or keeping other index files.
        """
        moves: dict[str, str] = {}
        for name, given in sorted(self._given.items()):
            old = stored.get(name, CollectionSettings())
            before, after = folder_of(name, old), folder_of(name, given)
            changed = {
                "path": (before, after),
                "wal": (old.wal is not False, given.wal is not False),
                "indexed": (sorted(old.indexed), sorted(given.indexed)),
            }
            changes = [
                f"{what} {was!r} -> {now!r}" for what, (was, now) in changed.items() if was != now
            ]
            if changes and not alone:
                raise ConfigError(
                    f"collection {name!r} of {self.root} would change settings "
                    f"({', '.join(changes)}), and other processes have the folder open, which "
                    "would go on with the old ones: close them, then open with the new settings"
                )
            if before != after and holds_records(self._root_fd, before, or_indices=True):
                check_move(self._root_fd, self.root, name, before, after, given.indexed)
                moves[name] = before
        return moves

    def _check_places(
        self,
        folders: Mapping[str, str],
        kept: Mapping[str, CollectionSettings],
        moves: Mapping[str, str],
    ) -> None:
        """Refuse settings that would mix two collections' records: folders that are one, or
        one inside another (:func:`check_places`); and a folder that is, holds or lies in a
        folder holding another collection's records — one without settings, which lives in
        the folder of its name, or one that moves away at this open. (A collection's own
        folder, as the manifest keeps it, holds its own records.)"""
        check_places(self.root, folders)
        held = {name: (name, False) for name in claimed_names(folders) if name not in folders}
        held |= {old: (name, True) for name, old in moves.items()}
        for name, folder in sorted(folders.items()):
            recorded = name in kept and folder_of(name, kept[name]) == folder
            for place, (owner, leaving) in sorted(held.items()):
                if owner == name or (place == folder and recorded and not leaving):
                    continue
                around = folder.startswith(f"{place}/") or place.startswith(f"{folder}/")
                if (place == folder or around) and holds_records(self._root_fd, place):
                    then = (
                        f"it moves away at this open: open once more after, to give {name!r} "
                        "that place"
                        if leaving
                        else f"it has no path of its own: give {name!r} another path, or "
                        f"{owner!r} a path of its own first"
                    )
                    raise ConfigError(
                        f"collection {name!r} would live in {self.root / folder}, but "
                        f"{self.root / place} holds the records of collection {owner!r}, and "
                        f"{then}"
                    )

    def _move(self, name: str, old: str, new: str, fields: Collection[str]) -> None:
        """Move a collection's folder (see :func:`move_folder`; ``fields``: those it indexes),
        saying so."""
        if move_folder(self._root_fd, self.root, name, old, new, fields=fields, sync=self._sync):
            log.warning(
                "moved the folder of collection %r from %s to %s, as its path setting now says",
                name,
                self.root / old,
                self.root / new,
            )

    def _misplaced(self, table_ids: Iterable[str]) -> ConfigError | None:
        """The error for rows of a collection without settings (which lives in the folder of
        its name) where another collection lives in, or inside, that folder; ``None`` if
        there are none. Checked before anything is written."""
        for table_id in table_ids:
            owner = self._claimed.get(table_id)
            if owner is not None:
                return ConfigError(
                    f"collection {table_id!r} has no path of its own, so it would live in "
                    f"{self.root / table_id}, where collection {owner!r} lives (in "
                    f"{self.root / self._folder_of(owner)}): give {table_id!r} a path "
                    f"(hutch.open(..., collections={{{table_id!r}: {{'path': ...}}}})), or "
                    f"{owner!r} another one"
                )
        return None

    def _remove_unindexed(self) -> None:
        """Remove the index files of fields a collection does not index (any more), left by an
        older setting: nothing keeps them current, and a person or a tool reading one would
        trust stale lines. No writing process keeps them either: each has these settings
        (a change is refused while another has the folder open). Their folder is synced.
        Upkeep: those that cannot be removed stay, for the next open (verify names them)."""
        for table_id in self._folders():
            then = "the next open removes them"
            with self._upkeep(f"removing the unindexed fields' files of {table_id!r}", then):
                self._remove_unindexed_of(table_id)

    def _remove_unindexed_of(self, table_id: str) -> None:
        folder = self.root / self._folder_of(table_id) / indices.FOLDER
        try:
            try:
                dir_fd = self._dir_fd(table_id, create=False)
                inner = fsio.open_dir(dir_fd, indices.FOLDER, create=False)
            except (FileNotFoundError, fsio.NotRegular):
                return
            settings = self.settings.get(table_id, CollectionSettings())
            kept = {indices.file_name(field) for field in settings.indexed}
            with _opened(inner):
                stale = [
                    name
                    for name, kind in fsio.entries(inner)
                    if name.endswith(indices.SUFFIX)
                    and name not in kept
                    and kind in ("file", "link")
                    and not fsio.is_temp(name)
                ]
                for name in stale:
                    fsio.remove(inner, name)
                    log.info("removed %s: an index of a field not indexed", folder / name)
                if stale and self._sync:
                    fsio.fsync(inner)
        except OSError as error:
            raise storage_error(error, "remove the stale index files of", folder) from error

    def _folder_id(self, manifest: dict[str, Any] | None, where: Path) -> str | None:
        """The id the folder's log files carry: the manifest's, or a new one for a new folder
        (read-only: ``None``, none is made up: with no manifest and no generation, there is
        no log to judge). A folder whose logs carry an id but that has no manifest is
        refused (its settings would be lost)."""
        if manifest is not None:
            return manifest_id(manifest, where, "a header line of a file in _wal")
        if self._wal_fd is None:  # read-only, and no log: a folder no process wrote
            return None
        found, headless = log_folder_ids(self._wal_fd)
        if len(found) > 1:
            raise CorruptData(
                f"{where} is missing, and the log folder holds files of several folders "
                f"({', '.join(sorted(found))}); restore hutch.json from a backup"
            )
        if not found and headless:
            raise CorruptData(
                f"{where} is missing, and {self.root / WAL_FOLDER / headless[0]} is a log "
                "without a header: one of format 1, whose transactions only an upgrade reads. "
                "Restore hutch.json from a backup"
            )
        if found:
            raise missing_manifest(self.root, "file", found.pop(), records.FORMAT_VERSION)
        return None if self._read_only else uuid.uuid4().hex

    def _read_everything(
        self, log_entries: list[wal.Entry] | None = None, *, opening: bool
    ) -> Snapshot:
        """For a writing open, holding the write lock: the log's live chain (``log_entries``,
        if the caller read it), then the records, with every transaction of the log replayed
        over them.

        The log first: a checkpoint of another process may be writing record files
        meanwhile (when this process fell behind), from rows it took before this read;
        what its mark says is in the files is, since the mark comes after them.
        ``opening``: holding the checkpoint lock too, so the temp files found beside the
        records are a crash's leftovers (removed), never those of a checkpoint running
        meanwhile, and so is the mark of a move whose note is gone.
        """
        if log_entries is None:
            log_entries = self._recover_log()
        on_disk, damaged = self._read_records(tidy=opening)
        self._settle(damaged, log_entries)
        values = self._settle_values(self._read_values(), log_entries, opening=opening)
        snapshot = self._replayed(on_disk, values, log_entries)
        self._write_replayed_unlogged(on_disk, snapshot.tables)
        return snapshot

    def _recover_log(self, ends: Mapping[int, int] | None = None) -> list[wal.Entry]:
        """Every transaction of the log's live chain (up to ``ends``, if given)."""
        try:
            return self._the_log.recover(ends) if self._log is not None else []
        except OSError as error:
            raise storage_error(error, "read the write-ahead log of", self.root) from error

    def _settle(self, damaged: list[_Damaged], log_entries: list[wal.Entry]) -> None:
        """Refuse (or quarantine) the damaged records whose rows the log does not hold."""
        covered = {(t, r) for entry in log_entries for t, r, _ in entry.changes.rows()}
        for record in damaged:
            if (record.table_id, record.row_id) in covered:
                continue  # the log holds its latest version and rewrites it
            if self._on_corrupt == "raise":
                raise record.error
            self._quarantine(record.dir_fd, record.folder, record.name)

    def _replayed(
        self, on_disk: dict[str, dict[str, Row]], values: dict[str, Any], entries: list[wal.Entry]
    ) -> Snapshot:
        """The records and values with the log's transactions replayed over them; this
        process's view of ids, indexed fields and what is dirty made from it."""
        tables = {t: dict(rows) for t, rows in on_disk.items()}
        for entry in entries:
            _apply_to(tables, values, entry.changes)
        tables = {t: rows for t, rows in tables.items() if rows}
        self._ids = {t: set(rows) for t, rows in tables.items()}
        self._values = dict(values)
        self._indexed = self._indexed_in(tables)
        self._index_sizes = {
            table_id: {field: indices.size(by_row) for field, by_row in fields.items()}
            for table_id, fields in self._indexed.items()
        }
        self._dirty, self._dirty_in, self._dirty_values = {}, {}, False
        for entry in entries:
            self._mark_dirty(entry.changes, entry.generation)
        self._others_logged = any(entry.changes for entry in entries)
        return Snapshot(tables=tables, values=values)

    def _indexed_in(
        self, tables: Mapping[str, Mapping[str, Row]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Collection -> indexed field -> ``{row_id: value}`` of the rows of ``tables`` that
        have it, for every collection that indexes a field."""
        return {
            table_id: {
                field: {
                    r: row[field] for r, row in tables.get(table_id, {}).items() if field in row
                }
                for field in settings.indexed
            }
            for table_id, settings in self.settings.items()
            if settings.indexed
        }

    def _write_replayed_unlogged(
        self, on_disk: dict[str, dict[str, Row]], tables: dict[str, dict[str, Row]]
    ) -> None:
        """``"wal": false`` rows are written at commit; rewrite the replayed ones the files lack
        (a crash came between the log and the file), leaving durable files that agree alone.
        Synced whatever the durability: they may be another process's synced commits, and
        they are dirty no more, so no checkpoint writes them again before the log is gone."""
        for table_id, rows in self._dirty.items():
            if not self._unlogged(table_id):
                continue
            found, replayed = on_disk.get(table_id, {}), tables.get(table_id, {})
            stale = {  # (compared as JSON: a record holding 1 for a row now true is stale)
                row_id: replayed.get(row_id)
                for row_id in rows
                if not same_json(found.get(row_id), replayed.get(row_id))
            }
            try:
                self._write_rows(table_id, stale, sync=True)
            except (OSError, StorageError) as error:  # the log holds them: a checkpoint retries
                log.warning("could not write %s records now (%s); will retry", table_id, error)
                continue
            rows.clear()
            self._dirty_in.pop(table_id, None)

    def _folders(self) -> dict[str, str]:
        """Every collection, in the settings or found as a folder, with its folder. A folder
        named like a collection whose settings put it elsewhere, or that another collection
        lives in, is not one."""
        folders = {name: folder_of(name, s) for name, s in self.settings.items()}
        claimed = set(folders.values())
        not_one = claimed | self.settings.keys() | self._claimed.keys()
        for name, kind in fsio.entries(self._root_fd):
            if not _TABLE_FOLDER(name):
                continue
            if kind == "link" or (name in claimed and kind != "dir"):
                raise StorageError(
                    f"could not use the collection folder {self.root / name}: it is "
                    f"{fsio.kind_at(self._root_fd, name)}, "
                    "and hutch keeps a collection in a real folder (never following a link); "
                    "move it away"
                )
            if kind == "dir" and name not in not_one:
                folders[name] = name
        return folders

    def _read_records(self, *, tidy: bool) -> tuple[dict[str, dict[str, Row]], list[_Damaged]]:
        """Every record file (``tidy``: removing the temp files a crash left beside them, and
        the mark of a move that outlived its note), and those that do not read as records
        (see :meth:`_settle`). A file removed since the listing is left out: a commit
        deleted its row, and the log says so."""
        tables: dict[str, dict[str, Row]] = {}
        damaged: list[_Damaged] = []
        for table_id, folder in self._folders().items():
            try:
                dir_fd = self._dir_fd(table_id, create=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise storage_error(error, "open", self.root / folder) from error
            rows: dict[str, Row] = {}
            folder_path = self.root / folder
            for name, kind in fsio.entries(dir_fd):
                if not name.endswith(records.RECORD_SUFFIX):
                    if not tidy:
                        continue
                    if kind == "file" and (fsio.is_temp(name) or name == MOVE_MARK):
                        fsio.remove(dir_fd, name)  # left by a crash; its content never counted
                    elif name == indices.FOLDER and kind == "dir":
                        with _opened(fsio.open_dir(dir_fd, name, create=False)) as inner:
                            fsio.remove_temp_files(inner)
                    continue
                try:
                    data = _read_record(dir_fd, name, folder_path)
                    if data is None:
                        continue
                    row_id, row = records.decode_record(table_id, name, data, folder_path)
                except CorruptData as error:
                    row_id = name.removesuffix(records.RECORD_SUFFIX)
                    damaged.append(_Damaged(table_id, row_id, dir_fd, folder, name, error))
                    continue
                rows[row_id] = row
            tables[table_id] = rows
        return tables, damaged

    def _read_values(self) -> _Values:
        """``_values.json``, each entry checked (see :meth:`_settle_values`); a file that does
        not read as keyed values at all is refused, or quarantined whole."""
        where = self.root / records.VALUES
        try:
            data = fsio.read_file(self._root_fd, records.VALUES, limit=records.MAX_VALUES_BYTES)
            good, bad = records.decode_values(data)
        except FileNotFoundError:
            return _Values()
        except (ValueError, fsio.NotRegular, fsio.TooBig) as error:  # JSON, not an object...
            if self._on_corrupt == "raise":
                reason = error.strerror if isinstance(error, OSError) else error
                raise CorruptData(f"{where}: {reason}; fix or remove it") from None
            self._quarantine(self._root_fd, ".", records.VALUES)
            return _Values()
        except OSError as error:
            raise storage_error(error, "read", where) from error
        return _Values(good, bad, data)

    def _settle_values(
        self, found: _Values, log_entries: list[wal.Entry], *, opening: bool
    ) -> dict[str, Any]:
        """The keyed values whose entries check. One that does not is refused, unless the log
        holds the key's latest value, which replaces it; with ``on_corrupt="quarantine"``,
        the file as it is is copied to the quarantine folder (kept whole for a person to
        repair), and (``opening``: holding the checkpoint lock, so no checkpoint writes the
        file meanwhile) written again without the entries that do not check."""
        covered = {
            key
            for entry in log_entries
            for key in (*entry.changes.values, *entry.changes.deleted_values)
        }
        bad = {key: why for key, why in found.bad.items() if key not in covered}
        if not bad:
            return found.good
        where = self.root / records.VALUES
        listed = sorted(bad)[: checks.LISTED]
        reasons = "; ".join(bad[key] for key in listed)  # (each names its key)
        if len(bad) > len(listed):
            reasons += f"; and {len(bad) - len(listed)} more"
        if self._on_corrupt == "raise":
            raise CorruptData(
                f"{where}: {reasons}; fix or remove those entries, or open with "
                "on_corrupt='quarantine' (the file is kept in the quarantine folder, and the "
                "other values are loaded)"
            )
        kept = self._set_aside(
            ".", records.VALUES, partial(_write_copy, found.data, sync=self._sync)
        )
        if opening:
            data = records.encode_values(found.good)
            try:
                fsio.write_atomic(self._root_fd, records.VALUES, data, sync=self._sync)
            except OSError as error:
                raise storage_error(error, "write", where) from error
        log.warning(
            "%s: %s. The file as it was is kept in %s, and the other values are loaded: repair "
            "those entries there, then set them again (db.store.set_value)",
            where,
            reasons,
            kept,
        )
        return found.good

    def _quarantine_log(self, name: str) -> None:
        self._quarantine(self._wal_folder, WAL_FOLDER, name)

    def _quarantine(self, dir_fd: int, folder: str, name: str) -> None:
        """Move a damaged file to ``_quarantine/<folder>/`` and report it."""

        def move(inner: int, target: str) -> None:
            fsio.rename(dir_fd, name, inner, target)
            if self._sync:
                fsio.fsync(inner)
                fsio.fsync(dir_fd)

        moved = self._set_aside(folder, name, move)
        log.warning(
            "moved %s to %s: it is damaged, or not what hutch keeps there",
            self.root / folder / name,
            moved,
        )

    def _set_aside(self, folder: str, name: str, put: Callable[[int, str], None]) -> Path:
        """Put a file into ``_quarantine/<folder>/`` (``put(folder_fd, name)``: synced, under
        ``name``, or ``name.again``... where that is taken), and list it in
        :attr:`quarantined`; where it went."""
        sub = "_root" if folder == "." else folder.replace("/", "__")
        try:
            with _opened(fsio.open_dir(self._root_fd, QUARANTINE_FOLDER, create=True)) as top:
                with _opened(fsio.open_dir(top, sub, create=True)) as inner:
                    target = name
                    while fsio.exists(inner, target):
                        target += ".again"
                    put(inner, target)
                if self._sync:
                    fsio.fsync(top)
            if self._sync:
                fsio.fsync(self._root_fd)
        except OSError as error:
            raise storage_error(error, "quarantine", self.root / folder / name) from error
        moved = self.root / QUARANTINE_FOLDER / sub / target
        self.quarantined.append(moved)
        return moved

    # -- catching up -------------------------------------------------------------------------

    def _catch_up(self) -> None:
        """Take in what other processes appended to the log since this one last looked."""
        with self._unseen.reading():
            read = self._the_log.catch_up()
            if read is None:
                self._reload()
                return
            for entry in read:
                if entry.checkpointed is not None:  # another process wrote those record files
                    self._written_up_to(entry.checkpointed)
                    continue
                self._unseen.put(entry.changes)
                self._take(entry.changes, entry.generation)
                self._others_logged = True
        if (stuck := self._the_log.stuck) is not None:  # what came before it is taken in
            if isinstance(stuck, OSError):
                raise storage_error(stuck, "move on to the next log generation of", self.root)
            raise stuck

    def _reload(self) -> None:
        """Too far behind to read the log: read everything and report the difference."""
        old_ids, old_values = self._ids, self._values
        snapshot = self._read_everything(opening=False)
        tables: dict[str, dict[str, Row | None]] = {}
        for table_id, ids in old_ids.items():
            tables[table_id] = dict.fromkeys(ids)
        for table_id, rows in snapshot.tables.items():
            tables.setdefault(table_id, {}).update(rows)
        gone = frozenset(old_values) - frozenset(snapshot.values)
        self._unseen.put(Changes(tables, dict(snapshot.values), gone))

    @property
    def _the_log(self) -> Log:
        assert self._log is not None, "load first"
        return self._log

    # -- writing -----------------------------------------------------------------------------

    def _take(self, changes: Changes, generation: int) -> None:
        """Keep this process's view of ids, values and indexed fields current (``changes``
        were logged in ``generation``).

        It runs on every commit, so it works table by table and field by field,
        leaving the per-row work to set and dict methods where it can.
        """
        for table_id, rows in changes.tables.items():
            ids = self._ids.setdefault(table_id, set())
            ids.update(rows)
            ids.difference_update([row_id for row_id, row in rows.items() if row is None])
            sizes = self._index_sizes.get(table_id, {})
            for field, by_row in self._indexed.get(table_id, {}).items():
                was = indices.size({r: by_row[r] for r in rows if r in by_row})
                for row_id, row in rows.items():
                    if row is not None and field in row:
                        by_row[row_id] = row[field]
                    else:
                        by_row.pop(row_id, None)
                sizes[field] += indices.size({r: by_row[r] for r in rows if r in by_row}) - was
        self._values.update(changes.values)
        for key in changes.deleted_values:
            self._values.pop(key, None)
        self._mark_dirty(changes, generation)

    def _mark_dirty(self, changes: Changes, generation: int) -> None:
        for table_id, rows in changes.tables.items():
            self._dirty.setdefault(table_id, {}).update(rows)
            self._dirty_in.setdefault(table_id, {}).update(dict.fromkeys(rows, generation))
        if changes.values or changes.deleted_values:
            self._dirty_values, self._values_dirty_in = True, generation

    def _written_up_to(self, generation: int) -> None:
        """Another process's checkpoint wrote what the log held up to the end of
        ``generation`` into the record files (its mark says so once they are durable): what
        was logged there is not dirty here any more, so no other process writes it again."""
        for table_id, logged_in in list(self._dirty_in.items()):
            dirty = self._dirty.get(table_id, {})
            for row_id in [r for r, g in logged_in.items() if g <= generation]:
                del logged_in[row_id]
                dirty.pop(row_id, None)
            if not logged_in:
                del self._dirty_in[table_id]
                self._dirty.pop(table_id, None)
        if self._values_dirty_in <= generation:
            self._dirty_values = False

    def _write_unlogged(self, changes: Changes) -> None:
        """Write the records and indices of ``"wal": false`` collections now (the log already
        holds them).

        Under the write lock: no checkpoint writes these collections' files
        outside it, so an older version never lands after a newer one.
        """
        for table_id, rows in changes.tables.items():
            if not self._unlogged(table_id):
                continue
            try:
                self._the_log.flush()  # batch: the files never hold what the log could lose
                self._write_rows(table_id, rows, sync=self._sync)
                self._write_index_changes(table_id, self._index_changes(table_id, rows), rows)
            except (OSError, StorageError) as error:  # the commit stands: a checkpoint retries
                log.warning("could not write %s records now (%s); will retry", table_id, error)
                continue
            dirty, logged_in = self._dirty[table_id], self._dirty_in[table_id]
            for row_id in rows:
                dirty.pop(row_id, None)
                logged_in.pop(row_id, None)

    def _unlogged(self, table_id: str) -> bool:
        """Whether a collection is ``"wal": false``: its files are written at each commit."""
        settings = self.settings.get(table_id)
        return settings is not None and settings.wal is False

    def _write_rows(self, table_id: str, rows: Mapping[str, Row | None], *, sync: bool) -> None:
        """Write (or delete) record files, each synced given ``sync`` (many at once, so the
        file system batches the syncs), then sync their folder."""
        if not rows:
            return
        dir_fd = self._dir_fd(table_id, create=True)
        folder = self._folder_of(table_id)
        _in_threads(partial(self._write_row_of, dir_fd, folder, rows, sync), list(rows))
        if sync:
            fsio.fsync(dir_fd)

    def _write_row_of(
        self, dir_fd: int, folder: str, rows: Mapping[str, Row | None], sync: bool, row_id: str
    ) -> None:
        name = row_id + records.RECORD_SUFFIX
        row = rows[row_id]
        if row is None:
            self._clearing(dir_fd, folder, name, partial(fsio.remove, dir_fd, name))
        else:
            data = records.encode_record(row_id, row)
            write = partial(fsio.write_atomic, dir_fd, name, data, sync=sync, sync_folder=False)
            self._clearing(dir_fd, folder, name, write)

    def _clearing(self, dir_fd: int, folder: str, name: str, write: Callable[[], None]) -> None:
        """``write`` (or remove) a file hutch keeps; if a folder stands in its way (no hutch
        writes one there: no collection lives under a record's name), move that to the
        quarantine folder, say so and write again: a checkpoint is never stuck behind it."""
        try:
            write()
        except fsio.NotRegular:
            self._quarantine(dir_fd, folder, name)
            write()

    # -- checkpoints -------------------------------------------------------------------------

    def _checkpoint(self, *, wait: bool, closing: bool = False) -> None:
        """Write what the log holds into record, value and index files; drop redundant log.

        Without ``wait``, nothing happens while another process checkpoints. ``closing``:
        then write whole the index files that hold appended lines.
        """
        with self._checkpointing(wait=wait) as taken:
            if taken:
                self._checkpoint_held()
                if closing:
                    self._rewrite_appended_indices()

    def _checkpoint_held(self, *, keep_previous: bool = True) -> None:
        """A checkpoint, holding the checkpoint lock (see the module docstring): writers wait
        only while the changed set is taken and while the mark of its end is appended.

        ``keep_previous``: keep the generation before the newest, for processes a
        little behind (without it they read everything again).
        """
        self._last_checkpoint = time.monotonic()
        with self._write_lock.held():
            self._catch_up()
            idle = not self._dirty and not self._dirty_values
            current = self._the_log.generation
        try:
            if idle:  # all in the files: still drop what earlier checkpoints left behind
                before = self._the_log.previous_of(current) if keep_previous else current
                self._the_log.forget(before=before or 0)
                return
            newest = self._the_log.rotate()
        except OSError as error:
            raise storage_error(error, "checkpoint", self.root) from error
        with self._write_lock.held():
            self._catch_up()
            try:
                self._the_log.move_to(newest)  # later commits go there
                batch = self._take_batch()
            except OSError as error:
                raise storage_error(error, "checkpoint", self.root) from error
        try:
            self._write_batch(batch)
        except BaseException as error:
            with self._write_lock.this_process():  # (no wait for another process may stop it)
                self._give_back(batch)
            if isinstance(error, OSError):
                raise storage_error(error, "checkpoint", self.root) from error
            raise
        previous = self._the_log.previous_of(newest)
        if previous is None:
            return
        try:
            with self._write_lock.held():  # every process then takes these files as written
                self._catch_up()
                self._the_log.mark_checkpointed(previous)
            self._the_log.forget(before=previous if keep_previous else newest)
        except OSError as error:
            raise storage_error(error, "checkpoint", self.root) from error

    def _take_batch(self) -> _Batch:
        """The changed rows, values and indices as they stand (holding the write lock).

        ``"wal": false`` rows still dirty (their write at commit failed, or another
        process logged them) are written here, under the lock, where commits write them too.
        """
        durable = self._sync or self._others_logged
        rows: dict[str, dict[str, Row | None]] = {}
        for table_id, changed in self._dirty.items():
            if not self._unlogged(table_id):
                rows[table_id] = changed
            elif changed:
                self._write_rows(table_id, changed, sync=durable)
                self._write_index_changes(table_id, self._index_changes(table_id, changed), changed)
        indexed = {
            table_id: self._index_changes(table_id, changed) for table_id, changed in rows.items()
        }
        values = dict(self._values) if self._dirty_values else None
        self._dirty, self._dirty_in, self._dirty_values = {}, {}, False
        self._others_logged = False
        return _Batch(rows, values, indexed, durable)

    def _give_back(self, batch: _Batch) -> None:
        """A checkpoint failed: what it took is dirty again (newer changes win)."""
        now = self._the_log.generation  # (later than they were logged: kept dirty longer)
        for table_id, rows in batch.rows.items():
            dirty = self._dirty.setdefault(table_id, {})
            logged_in = self._dirty_in.setdefault(table_id, {})
            for row_id, row in rows.items():
                dirty.setdefault(row_id, row)
                logged_in.setdefault(row_id, now)
        if batch.values is not None and not self._dirty_values:
            self._dirty_values, self._values_dirty_in = True, now
        self._others_logged = self._others_logged or (batch.durable and not self._sync)

    def _write_batch(self, batch: _Batch) -> None:
        """Write a checkpoint's files, synced (see :attr:`_Batch.durable`); several at once so
        the syncs batch. ``_values.json`` is synced whatever the durability: it holds every
        value, those that other processes synced too, and a power cut must not tear them."""
        for table_id, rows in batch.rows.items():
            self._write_rows(table_id, rows, sync=batch.durable)
        if batch.values is not None:
            data = records.encode_values(batch.values)
            write = partial(fsio.write_atomic, self._root_fd, records.VALUES, data, sync=True)
            self._clearing(self._root_fd, ".", records.VALUES, write)
        for table_id, fields in batch.indexed.items():
            self._write_index_changes(table_id, fields, batch.rows[table_id], locked=False)

    def _index_changes(self, table_id: str, row_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Indexed field -> ``{row_id: value}`` of the rows ``row_ids`` that have it, as they
        stand (holding the write lock): what a commit or a checkpoint adds to the index files."""
        return {
            field: {row_id: by_row[row_id] for row_id in row_ids if row_id in by_row}
            for field, by_row in self._indexed.get(table_id, {}).items()
        }

    def _write_index_changes(
        self,
        table_id: str,
        fields: Mapping[str, Mapping[str, Any]],
        row_ids: Collection[str],
        *,
        locked: bool = True,
    ) -> None:
        """Append the lines of the rows ``row_ids`` that changed to a collection's index files
        (``fields``: field -> ``{row_id: value}`` of those that have it, see
        :func:`indices.appended`), so that a commit or a checkpoint costs what it changed,
        not what the index holds.

        A file is written whole instead where a line cannot be appended (see
        :meth:`_append_index`), from this process's view of the index, taken under the
        write lock (``locked``: it is held already).
        """
        if not fields or not row_ids:
            return
        dir_fd = self._dir_fd(table_id, create=True)
        whole = list(fields)
        try:
            folder_fd = fsio.open_dir(dir_fd, indices.FOLDER, create=False)
        except (FileNotFoundError, fsio.NotRegular):  # (written whole: made, or moved aside)
            pass
        else:
            with _opened(folder_fd):
                whole = [
                    field
                    for field, values in fields.items()
                    if not self._append_index(
                        folder_fd, table_id, field, indices.appended(row_ids, values)
                    )
                ]
        if not whole:
            return
        if locked:
            self._write_indices(
                {table_id: {field: self._indexed[table_id][field] for field in whole}}
            )
            return
        with self._write_lock.held():  # a copy: the checkpoint writes it with commits going on
            view = {field: dict(self._indexed[table_id][field]) for field in whole}
        self._write_indices({table_id: view})

    def _append_index(self, folder_fd: int, table_id: str, field: str, lines: bytes) -> bool:
        """Append ``lines`` to an index file, synced; ``False``, writing nothing, where the file
        is to be written whole instead, replaced by rename: one of :data:`_NOT_APPENDABLE`
        (a file with other names would take the lines in too), one ending in a torn line (a
        killed writer's: no line may follow it), or a crowded one (:func:`indices.crowded`:
        what bounds it is what the rows' lines take now, never the file's own size, which
        holds what others appended and left)."""
        try:
            fd = fsio.open_file(folder_fd, indices.file_name(field))
        except _NOT_APPENDABLE:
            return False
        with _opened(fd):
            end = fsio.size(fd)
            if end and fsio.read_at(fd, end - 1, 1) != b"\n":
                return False
            if indices.crowded(end + len(lines), self._index_sizes[table_id][field]):
                return False
            fsio.append_after(fd, lines, end, sync=self._sync)
        return True

    def _write_indices(self, indexed: Mapping[str, Mapping[str, dict[str, Any]]]) -> None:
        """Write index files whole (each atomically, synced)."""
        for table_id, fields in indexed.items():
            if not fields:
                continue
            dir_fd = self._dir_fd(table_id, create=True)
            folder = self._folder_of(table_id)
            try:
                folder_fd = fsio.open_dir(dir_fd, indices.FOLDER, create=True)
            except fsio.NotRegular:  # a file where the indices' folder belongs
                self._quarantine(dir_fd, folder, indices.FOLDER)
                folder_fd = fsio.open_dir(dir_fd, indices.FOLDER, create=True)
            with _opened(folder_fd):
                for field, by_row in fields.items():
                    name, data = indices.file_name(field), indices.encode(by_row)
                    write = partial(fsio.write_atomic, folder_fd, name, data, sync=self._sync)
                    self._clearing(folder_fd, f"{folder}/{indices.FOLDER}", name, write)
            if self._sync:
                fsio.fsync(dir_fd)

    def _write_stale_indices(self) -> None:
        """Rewrite index files that do not match the records (a hand edit, a new setting).
        Upkeep, each collection's on its own: those that cannot be written stay as they are,
        for the next open or ``db.reindex()`` (verify names them)."""
        for table_id, fields in self._indexed.items():
            then = "the next open (or db.reindex()) writes them"
            with self._upkeep(f"rewriting the index files of {table_id!r}", then):
                self._write_stale_indices_of(table_id, fields)

    def _write_stale_indices_of(self, table_id: str, fields: dict[str, dict[str, Any]]) -> None:
        try:
            dir_fd = self._dir_fd(table_id, create=True)
            for field, by_row in fields.items():
                try:
                    with _opened(fsio.open_dir(dir_fd, indices.FOLDER, create=False)) as inner:
                        current = indices.current(inner, field, by_row)
                except (FileNotFoundError, fsio.NotRegular):  # no folder: written anew
                    current = None
                if current is None or not indices.matches(current, by_row):
                    self._write_indices({table_id: fields})
                    return
        except OSError as error:
            where = self.root / self._folder_of(table_id)
            raise storage_error(error, "write the indices of", where) from error

    def _dir_fd(self, table_id: str, *, create: bool) -> int:
        """The folder of a collection, opened once and never through a symbolic link."""
        with self._dir_lock:
            fd = self._dir_fds.get(table_id)
            if fd is None:
                fd = self._open_folder(self._folder_of(table_id), create=create)
                self._dir_fds[table_id] = fd
            return fd

    def _folder_of(self, table_id: str) -> str:
        settings = self.settings.get(table_id)
        return (settings.path if settings else None) or table_id

    def _open_folder(self, path: str, *, create: bool) -> int:
        return fsio.open_folder(self._root_fd, path, create=create, sync=self._sync)

    # -- the background worker ---------------------------------------------------------------

    def _maintain(self) -> None:
        """Flush batched commits and checkpoint, until the database closes."""
        tick = min(self._batch_interval, self._checkpoint_interval, 1.0)
        while not self._closing.wait(tick):
            self._background.run(self._maintain_once)

    def _maintain_once(self) -> None:
        """Flush, and checkpoint if one is due; each is tried again at the next round. A
        failed flush (of commits acknowledged under ``durability="batch"``) is raised to the
        application by its next call; a failed checkpoint is upkeep, and only logged (see
        :meth:`_upkeep`): no call of the application fails for it."""
        with self._write_lock.held():
            try:
                self._the_log.flush()
            except OSError as error:
                raise storage_error(error, "sync the write-ahead log of", self.root) from error
            due = time.monotonic() - self._last_checkpoint >= self._checkpoint_interval
            big = self._the_log.size >= CHECKPOINT_BYTES
        if due or big:
            with self._upkeep("a background checkpoint", "it is tried again at the next round"):
                self._checkpoint(wait=False)


@attrs.frozen
class _Moment:
    """Read-only: the write lock held shared for a moment (``lock``: the lock file, as
    :func:`held_shared` takes it; ``None``: it is held throughout already)."""

    lock: tuple[int | None, Path, str] | None
    timeout: float

    def __call__(self) -> AbstractContextManager[None]:
        if self.lock is None:
            return nullcontext()
        return held_shared(*self.lock, self.timeout)


def _read_record(dir_fd: int, name: str, folder: Path) -> bytes | None:
    """A record file's bytes (``None``: removed since the folder was listed);
    :class:`~hutch.CorruptData` (quarantinable) if what bears its name is no file hutch
    wrote: a folder, a link, a FIFO, or too big to be a record."""
    try:
        return fsio.read_file(dir_fd, name, limit=records.MAX_RECORD_BYTES)
    except FileNotFoundError:
        return None
    except (fsio.NotRegular, fsio.TooBig) as error:
        raise CorruptData(f"{folder / name}: {error.strerror}; move it away") from None
    except OSError as error:
        raise storage_error(error, "read", folder / name) from error


def _write_copy(data: bytes, dir_fd: int, name: str, *, sync: bool) -> None:
    """A copy of a damaged file, kept in the quarantine (see :meth:`FilePersister._set_aside`)."""
    fsio.write_atomic(dir_fd, name, data, sync=sync)


def _apply_to(tables: dict[str, dict[str, Row]], values: dict[str, Any], changes: Changes) -> None:
    for table_id, row_id, row in changes.rows():
        if row is None:
            tables.get(table_id, {}).pop(row_id, None)
        else:
            tables.setdefault(table_id, {})[row_id] = row
    values.update(changes.values)
    for key in changes.deleted_values:
        values.pop(key, None)


@contextmanager
def _opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        fsio.close(fd)


def _in_threads(work: Callable[[str], None], names: list[str]) -> None:
    """``work(name)`` for every name, from :data:`WRITERS` threads when there are many (the
    file system batches their syncs); the first error is raised once all threads stop.

    A few plain threads over slices of one list of names, not a future per file: a
    checkpoint allocates little, so it sets off no garbage collection that would hold up
    the threads that commit meanwhile.
    """
    if len(names) <= WRITERS * 4:
        for name in names:
            work(name)
        return
    errors: list[BaseException] = []

    def run(part: list[str]) -> None:
        try:
            for name in part:
                if errors:
                    return
                work(name)
        except BaseException as error:  # raised again below, in the caller
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(names[i::WRITERS],), name=f"hutch-file-write-{i}")
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
