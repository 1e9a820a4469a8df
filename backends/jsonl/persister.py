"""``JsonlPersister``: per collection an append-only JSONL log of row changes.

Commit: append one line per changed row to each collection's log (and one per
changed value to ``_values.jsonl``), then one line to ``_commits.jsonl`` saying
how many lines each of those logs holds now: that line is the commit point.
What counts, and what recovery cuts, is :mod:`.logs`'s (docs/jsonl-format.md).

Several processes share the folder as they share a ``file://`` one: a write
transaction holds an ``flock`` on ``hutch.lock`` from ``begin`` to ``end`` and
first reads what the others committed, so it starts from the latest state.
Each process holds a shared ``flock`` on ``hutch.open`` while the folder is
open: what tells it from a process of format 1, which an upgrade waits for.

Opened with ``read_only=True``, it writes nothing at all: it reads the folder
once, at one commit point, and is a snapshot as of its open from then on. It
holds a shared ``flock`` on ``hutch.lock`` (if there is one) only while it reads
the manifest and opens the logs and notes their sizes (:meth:`.Logs.pin`): then
writers go on while it reads those files up to there.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from hutch import (
    BackendConfig,
    Capabilities,
    Changes,
    CollectionSettings,
    ConfigError,
    Persister,
    ReadOnlyStorage,
    Snapshot,
    StorageError,
)
from hutch.backends.file import checks, fsio, indices
from hutch.backends.file.folder import (
    MANIFEST,
    check_indexed,
    check_layout,
    open_store_root,
    positive,
    settings_json,
    warn_if_not_local,
)
from hutch.backends.file.fsio import storage_error
from hutch.backends.file.links import OPEN_MARK, InPlace, hold_open_mark, may_share
from hutch.backends.file.locking import FolderLock, held_shared
from hutch.cells import Row
from hutch.config import parse_collections
from hutch.persister import Background, ProcessGuard, Unseen

from . import compaction, lines, manifest, upgrade
from .compaction import Live
from .lines import Entry
from .logs import Logs, Read

log = logging.getLogger("hutch.backends.jsonl")

LOCK_FILE = upgrade.OLD_LOCK
INDICES = "indices"
#: A log is compacted once it holds more than this many lines, most of them dead...
COMPACT_LINES = 1000
#: ... or more than this many bytes, most of them dead (see compaction.py).
COMPACT_BYTES = 1 << 20


class JsonlPersister(Persister):
    """The ``jsonl://`` backend: a few big append-only files instead of one file per row."""

    capabilities = Capabilities(durable=True, multi_process=True, change_feed=True, read_only=True)

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("batch_interval", "compact_lines", "compact_bytes")
        self.root = config.url.file_path()
        self._url = config.url.redacted()  # as given, for the commands messages suggest
        #: Writes nothing at all: no file, no lock file, no cut, no sync, no thread.
        self._read_only = config.read_only
        self._lock_timeout = config.lock_timeout
        self._durability = config.durability
        self._sync = config.durability != "none"
        self._batch_interval = positive(config.options, "batch_interval", 2.0)
        #: When a log is compacted: under these many lines, and bytes, never for them.
        self._rule = compaction.Rule(
            (
                positive(config.options, "compact_lines", COMPACT_LINES),
                positive(config.options, "compact_bytes", COMPACT_BYTES),
            )
        )
        self._given = {name: check_indexed(name, s) for name, s in config.collections.items()}
        self._held = fsio.Descriptors()
        self._root_fd, self._claim = open_store_root(
            self.root, self._held, read_only=self._read_only
        )
        warn_if_not_local(self.root, log)
        self._may_share = may_share(self._root_fd)
        self._write_lock: FolderLock | None = None  # a read-only open has none
        try:
            check_layout(self._root_fd, self.root, "jsonl")
            if not self._read_only:
                in_place: InPlace = [(self._root_fd, _changed_in_place)]
                self._held.own(
                    hold_open_mark(self._root_fd, self.root, in_place, sync=self._sync, log=log)
                )
                lock_fd = self._held.own(
                    fsio.open_lock(self._root_fd, LOCK_FILE, may_share=self._may_share)
                )
                self._write_lock = FolderLock(
                    lock_fd, self.root / LOCK_FILE, "the write lock", config.lock_timeout
                )
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
        self._logs: Logs | None = None
        #: The live lines of each log (their keys: the ids of a collection's rows).
        self._live: dict[str, Live] = {}
        self._values: dict[str, Any] = {}
        self._indexed: dict[str, dict[str, dict[str, Any]]] = {}
        self._stale_indices: set[str] = set()
        #: Read-only: the commit log's inode and size at the commit point read (None: none).
        self._loaded_at: tuple[int, int] | None = None
        self._unseen = Unseen()  # others' commits, not yet handed to the store
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        if self._read_only:
            return self._taken(self._read_once())
        with self._lock.held():
            try:
                self._logs = self._new_logs(self._prepare_folder())
                reads = self._logs.catch_up()
                if self._sync:  # a killed writer's lines may be in the page cache only
                    self._logs.vouch()
            except OSError as error:
                raise storage_error(error, "open", self.root) from error
            snapshot = self._taken(reads)
            self._maintain_files()
            self._write_stale_indices()
        if self._durability == "batch":
            self._worker = threading.Thread(target=self._flusher, name="hutch-jsonl", daemon=True)
            self._worker.start()
        return snapshot

    def _read_once(self) -> list[Read]:
        """Read-only: everything committed up to one commit point, holding writers up only
        while the manifest is read, the logs are opened and their sizes noted and the
        commit log is read (no commit is half written then); the logs are read up to
        there after, with writers going on. Nothing stays open: a snapshot reads nothing
        more.

        Read again, holding the lock throughout, in the two cases where what was read
        without it may not be that commit point: a writing open mended a power cut
        meanwhile, cutting commits the read used (:meth:`.Logs.unchanged`), or the
        folder had no lock file and a writer made one meanwhile.
        """
        for hold in (False, True, True):
            reads = self._read_pinned(hold=hold)
            if reads is not None:
                return reads
        raise StorageError(
            f"could not read {self.root} at one commit point: writers kept changing it while "
            "it was read, though it was read holding the write lock. Open it again"
        )

    def _read_pinned(self, *, hold: bool) -> list[Read] | None:
        """One try of :meth:`_read_once` (``hold``: the lock throughout); ``None`` if what was
        read may not be one commit point."""
        with ExitStack() as held:
            locked = held.enter_context(self._shared_lock())
            logs = self._logs = self._new_logs(self._prepare_folder())
            try:
                try:
                    logs.pin()
                    self._loaded_at = logs.commit_log
                except OSError as error:
                    raise storage_error(error, "open", self.root) from error
                if not hold:
                    held.close()  # writers go on
                try:
                    reads = logs.catch_up()
                    unchanged = logs.unchanged()
                    appeared = not locked and fsio.exists(self._root_fd, LOCK_FILE)
                except OSError as error:
                    raise storage_error(error, "read", self.root) from error
            finally:
                logs.close()
        return reads if unchanged and not appeared else None

    def _new_logs(self, folder_id: str) -> Logs:
        return Logs(
            self._root_fd,
            self.root,
            folder_id,
            durability=self._durability,
            may_share=self._may_share,
            ours=_replaced_whole,
            read_only=self._read_only,
        )

    def _taken(self, reads: list[Read]) -> Snapshot:
        """What the logs read at open hold, as this process's view and as the snapshot."""
        self._indexed = {
            t: {field: {} for field in s.indexed} for t, s in self.settings.items() if s.indexed
        }
        changes = self._take(reads, before=0)
        tables = {
            t: {r: row for r, row in rows.items() if row is not None}
            for t, rows in changes.tables.items()
        }
        tables = {t: rows for t, rows in tables.items() if rows}
        return Snapshot(tables=tables, values=dict(self._values))

    def begin(self) -> None:
        self._refuse_writes("write")  # (the store refuses first: never called read-only)
        self._process.check()
        self._background.check()
        self._lock.acquire()

    def end(self) -> None:
        self._lock.release()

    def behind(self) -> bool:
        if self._read_only:  # a snapshot as of its open
            return False
        # The log first, then what is read or waiting (see hutch.persister.Unseen).
        return self._logs is None or self._logs.behind() or bool(self._unseen)

    def catch_up(self) -> None:
        """Read what others committed, under the write lock (so only lines their writers
        synced); the next :meth:`poll` reports it."""
        if self._read_only:  # a snapshot as of its open: others' commits are not taken in
            return
        self._process.check()
        self._background.check()
        with self._lock.held():
            self._keep_unseen()

    def poll(self) -> Changes | None:
        if self._read_only:
            return None
        self._process.check()
        if self._lock.owned():  # a transaction begins: read up to the last commit
            self._background.check()
            self._keep_unseen()
        return self._unseen.take()

    def apply(self, changes: Changes) -> None:
        self._refuse_writes("write")  # (the store refuses first: never called read-only)
        self._process.check()
        if not self._lock.owned():  # not inside begin/end: catch up first
            with self._lock.held():
                self._keep_unseen()
                self._apply(changes)
        else:
            self._apply(changes)

    def reindex(self) -> None:
        self._refuse_writes("reindex")
        with self._lock.held():
            self._keep_unseen()
            self._stale_indices.update(self._indexed)
            _raise_first(self._write_indices())

    def compact(self) -> None:
        """Rewrite every log holding a dead line and shorten the commit log, now: a deleted
        or overwritten row or value is then in no file of the folder. A log that cannot be
        rewritten (a full disk) stays as it was, and fails the call once the rest is done."""
        self._refuse_writes("compact")
        self._process.check()
        with self._lock.held():
            self._keep_unseen()
            dead = [name for name in self._the_logs.files if self._dead(name)]
            failed = [*self._compact(dead).values(), *self._shorten()]
            self._stale_indices.update(self._indexed)
            failed += self._write_indices()
        _raise_first(failed)

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.join()
        try:
            if self._logs is not None and not self._read_only:
                with self._lock.held():
                    self._catch_up()
                    self._maintain_files()  # (upkeep: what fails is logged, and stops nothing)
                    _warn(self._write_indices())
                    if self._sync:
                        self._vouch()
        finally:
            try:
                if self._write_lock is not None:  # a stray call through this database: refused
                    self._write_lock.retire()
                if self._logs is not None:
                    self._logs.close()
                self._held.close()
            finally:
                self._claim.release()

    # -- checks (hutch verify, hutch stats) ---------------------------------------------------

    def collection_settings(self) -> dict[str, CollectionSettings]:
        """The settings kept in the manifest (with those given to this open), of each
        collection whose settings are not the default ones (``wal`` and ``path`` are kept,
        though they change nothing here)."""
        return {name: s for name, s in sorted(self.settings.items()) if s != CollectionSettings()}

    def verify(self) -> list[str]:
        """What is wrong beside the rows: index files that do not match the logs, names that
        differ only in case.

        Index files lag behind the logs by design until a writer rewrites them (at
        compaction, close, ``reindex``, open), so they are compared only where they
        should be current: on a writing open, those rewritten since their collection last
        changed (under the write lock); read-only, all of them, but only while no process
        has the folder open for writing and nothing was committed since the load.
        """
        self._process.check()
        fields = {table: list(s.indexed) for table, s in sorted(self.settings.items())}
        problems = checks.clash_problems(
            f"in {self.root}, the logs",
            checks.case_clashes(self._the_logs.files),
            "give one of those collections another name",
        )
        for table, indexed in fields.items():
            problems += checks.clash_problems(
                f"collection {table!r}: the indexed fields",
                checks.case_clashes(indexed),
                "index one of them only",
            )
        try:
            found = self._current_index_files()
        except OSError as error:
            raise storage_error(error, "read the indices of", self.root) from error
        fix = f"run `hutch reindex {self._url}` (or open it for writing) to write them again"
        for table, files in sorted(found.items()):
            folder = self.root / INDICES / table
            for name in files.others:
                problems.append(
                    f"{folder / name}: collection {table!r} does not index that field (any "
                    "more), so nothing keeps this file current: delete it, or index the field "
                    "again"
                )
            if files.trouble is not None:
                problems.append(f"{folder}: {files.trouble}; move it away, then {fix}")
                continue
            for field, expected in sorted(self._indexed.get(table, {}).items()):
                where = folder / indices.file_name(field)
                data = files.found.get(field)
                problems += checks.index_problems(where, data, expected, (), fix)
        return problems

    def _current_index_files(self) -> dict[str, checks.IndexFiles]:
        """The index files that should match the logs now (see :meth:`verify`), read."""
        if not self._read_only:
            with self._lock.held():
                self._keep_unseen()
                tables = set(self._indexed) | self._index_folders()
                return self._read_index_files(tables - self._stale_indices)
        if self._writers() or self._commit_log() != self._loaded_at:
            return {}
        found = self._read_index_files(set(self._indexed) | self._index_folders())
        return found if self._commit_log() == self._loaded_at else {}

    def _read_index_files(self, tables: set[str]) -> dict[str, checks.IndexFiles]:
        found = {}
        for table in sorted(tables):
            settings = self.settings.get(table)
            indexed = settings.indexed if settings is not None else ()
            fields = self._indexed.get(table, {})
            found[table] = checks.read_index_files(
                self._root_fd, f"{INDICES}/{table}", {f: fields.get(f, {}) for f in indexed}
            )
        return found

    def _index_folders(self) -> set[str]:
        """The collections that have a folder in ``indices``."""
        try:
            folder = fsio.open_dir(self._root_fd, INDICES, create=False)
        except (FileNotFoundError, fsio.NotRegular):
            return set()
        try:
            return {
                name for name, kind in fsio.entries(folder) if kind == "dir" and _is_table(name)
            }
        finally:
            fsio.close(folder)

    def _writers(self) -> bool:
        """Whether a process has the folder open for writing (holds ``hutch.open`` shared):
        an exclusive ``flock`` is tried, never waited for, and let go at once."""
        fd = fsio.open_lock_if_present(self._root_fd, OPEN_MARK)
        if fd is None:
            return False
        try:
            return not fsio.lock(fd, wait=False)
        finally:
            fsio.close(fd)  # (and with it the lock, if it was taken)

    def _commit_log(self) -> tuple[int, int] | None:
        """The commit log's inode and size now: while they stay as they were, nothing was
        committed (a commit appends, a shortening replaces the file)."""
        found = fsio.info(self._root_fd, lines.COMMITS)
        return None if found is None else (found.st_ino, found.st_size)

    def stats(self) -> dict[str, Any]:
        """Bytes and files on disk, a ``stat`` a file: the whole folder, and each log (in this
        format the logs are the data) with its collection's index files."""
        self._process.check()
        try:
            return self._stats()
        except OSError as error:
            raise storage_error(error, "look at the files of", self.root) from error

    def _stats(self) -> dict[str, Any]:
        whole = checks.usage(self._root_fd)
        sizes = dict(checks.files_named(self._root_fd, lines.SUFFIX))
        logs = {name: size for name, size in sizes.items() if lines.is_log(name)}
        counted = self._the_logs.files
        collections: dict[str, dict[str, int]] = {}
        for name, size in sorted(logs.items()):
            table = lines.log_table(name)
            if table is None:
                continue
            index_files: list[int] = []
            try:
                folder = fsio.open_folder(
                    self._root_fd, f"{INDICES}/{table}", create=False, sync=False
                )
            except (FileNotFoundError, fsio.NotRegular):
                pass
            else:
                try:
                    index_files = [size for _, size in checks.files_named(folder, indices.SUFFIX)]
                finally:
                    fsio.close(folder)
            file = counted.get(name)
            lines_held, body = (0, 0) if file is None else (file.lines, file.end - file.start)
            live = self._live_in(name)
            collections[table] = {
                "bytes": size + sum(index_files),
                "log_bytes": size,
                "log_lines": lines_held,
                "dead_lines": max(lines_held - len(live.sizes), 0),
                "dead_bytes": max(body - live.bytes, 0),
                "index_files": len(index_files),
                "index_bytes": sum(index_files),
            }
        found: dict[str, Any] = {
            "bytes": whole.bytes,
            "files": whole.files,
            "log_bytes": sum(logs.values()) + sizes.get(lines.COMMITS, 0),
            "log_files": len(logs),
            "commit_log_bytes": sizes.get(lines.COMMITS, 0),
            "commit_log_lines": self._the_logs.commits.lines,
            "values_bytes": logs.get(lines.VALUES, 0),
            "collections": collections,
        }
        if whole.too_deep:  # (their files are not in bytes and files)
            found["folders_too_deep"] = whole.too_deep
        return found

    @property
    def _the_logs(self) -> Logs:
        assert self._logs is not None, "load first"
        return self._logs

    @property
    def _lock(self) -> FolderLock:
        assert self._write_lock is not None, "a read-only open takes no write lock"
        return self._write_lock

    def _refuse_writes(self, doing: str) -> None:
        if self._read_only:
            raise ReadOnlyStorage(
                f"cannot {doing} {self.root}: it was opened with read_only=True; open it again "
                "without read_only to write"
            )

    # -- opening -----------------------------------------------------------------------------

    @contextmanager
    def _shared_lock(self) -> Iterator[bool]:
        """Read-only: a shared ``flock`` on the lock file if there is one (none is created), so
        that no commit is half written meanwhile; yields whether there was one. It is
        opened here, at load, not before: a writer may have made it since."""
        try:
            fd = fsio.open_lock_if_present(self._root_fd, LOCK_FILE)
        except OSError as error:
            raise storage_error(error, "open", self.root / LOCK_FILE) from error
        try:
            with held_shared(fd, self.root / LOCK_FILE, "the write lock", self._lock_timeout):
                yield fd is not None
        finally:
            if fd is not None:
                fsio.close(fd)

    def _prepare_folder(self) -> str:
        """Read (or start) the manifest, upgrading a folder of format 1; the folder's id.
        Read-only: the manifest as it is, and the settings given only for collections it
        lacks; a folder that needs writing first is refused."""
        where = self.root / MANIFEST
        stored = manifest.read(self._root_fd, self.root)
        if stored is not None and stored["format"] < manifest.FORMAT_VERSION:
            self._refuse_upgrade(f"is a jsonl:// folder of format {stored['format']}")
            upgrade.to_format_2(self._root_fd, self.root, stored, sync=self._sync)
            stored = manifest.read(self._root_fd, self.root)
        folder_id = manifest.folder_id(self._root_fd, self.root, stored) or uuid.uuid4().hex
        kept = stored["collections"] if stored is not None else {}
        if stored is not None and stored.get("upgrading"):
            self._refuse_upgrade("is halfway through its upgrade (a process stopped during it)")
            upgrade.finish(self._root_fd, folder_id, kept, sync=self._sync)
        try:
            merged = {
                name: check_indexed(name, parse_collections({name: s})[name])
                for name, s in kept.items()
            }
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}; fix the file by hand") from None
        if self._read_only:  # the stored settings win: nothing given is written
            self.settings = {**self._given, **merged}
            return folder_id
        merged.update(self._given)
        wanted = {name: settings_json(s) for name, s in sorted(merged.items())}
        if stored is None or wanted != kept:
            data = manifest.encode(folder_id, wanted)
            fsio.write_atomic(self._root_fd, MANIFEST, data, sync=self._sync)
        self.settings = merged
        return folder_id

    def _refuse_upgrade(self, state: str) -> None:
        """Read-only: refuse a folder that only an open that writes can make readable."""
        if self._read_only:
            raise ReadOnlyStorage(
                f"cannot open {self.root} read-only: it {state}, and only an open that may "
                "write upgrades it. Open it once without read_only (it is upgraded to format "
                f"{manifest.FORMAT_VERSION} then, and an older hutch cannot open it after that), "
                "then read-only"
            )

    # -- reading (always under the flock) ----------------------------------------------------

    def _catch_up(self) -> Changes:
        """Take in what was committed since this process last looked."""
        logs = self._the_logs
        before = logs.seq
        try:
            reads = logs.catch_up()
        except OSError as error:
            raise storage_error(error, "read the logs of", self.root) from error
        return self._take(reads, before)

    def _keep_unseen(self) -> None:
        with self._unseen.reading():
            if news := self._catch_up():
                self._unseen.put(news)

    def _take(self, reads: list[Read], before: int) -> Changes:
        """Changes out of the new lines of each log (checked as they were read)."""
        tables: dict[str, dict[str, Row | None]] = {}
        values: dict[str, Any] = {}
        deleted: set[str] = set()
        for read in reads:
            table = lines.log_table(read.name)
            if table is None:
                self._take_values(read, before, values, deleted)
            else:
                self._take_rows(table, read, before, tables.setdefault(table, {}))
            self._tally(read)
        return Changes({t: rows for t, rows in tables.items() if rows}, values, frozenset(deleted))

    def _take_rows(self, table: str, read: Read, before: int, out: dict[str, Row | None]) -> None:
        latest = {row_id: (seq, row) for seq, row_id, row in read.entries}
        changed: dict[str, Row | None] = {
            row_id: row for row_id, (seq, row) in latest.items() if seq > before or not read.whole
        }
        if read.whole:  # replaced by a compaction: compare with what this process knew
            for row_id in self._live_in(read.name).sizes.keys() - latest.keys():
                changed[row_id] = None
        self._take_changed(table, changed)
        out.update(changed)

    def _tally(self, read: Read) -> None:
        """Note the bytes of each row's (or key's) latest line in a log's new lines."""
        if read.whole:  # (a compaction may have written each line anew)
            self._live[read.name] = Live()
        live = self._live_in(read.name)
        for entry, size in zip(read.entries, read.sizes, strict=True):
            live.put(entry[1], None if lines.deletes(entry, read.name) else size)

    def _live_in(self, name: str) -> Live:
        return self._live.setdefault(name, Live())

    def _take_changed(self, table: str, changed: Mapping[str, Row | None]) -> None:
        """Keep this process's view of a collection's indexed fields current."""
        fields = self._indexed.get(table)
        if fields and changed:
            self._stale_indices.add(table)
            for field, by_row in fields.items():
                for row_id, row in changed.items():
                    if row is not None and field in row:
                        by_row[row_id] = row[field]
                    else:
                        by_row.pop(row_id, None)

    def _take_values(self, read: Read, before: int, out: dict[str, Any], deleted: set[str]) -> None:
        entries: list[Entry] = read.entries
        if read.whole:
            latest = {entry[1]: entry for entry in entries}
            gone = [[0, k] for k in self._values if len(latest.get(k, ())) != 3]
            entries = [e for e in latest.values() if e[0] > before] + gone
        for entry in entries:
            key = entry[1]
            if len(entry) == 3:
                self._values[key] = out[key] = entry[2]
                deleted.discard(key)
            elif key in self._values or key in out:
                self._values.pop(key, None)
                out.pop(key, None)
                deleted.add(key)

    # -- writing (always under the flock) ----------------------------------------------------

    def _apply(self, changes: Changes) -> None:
        seq = self._the_logs.seq + 1
        parts: dict[str, tuple[bytes, int]] = {}
        written: dict[str, list[tuple[str, int | None]]] = {}  # log -> (row or key, line size)
        for table, rows in changes.tables.items():
            encoded = [lines.encode([seq, r, row]) for r, row in rows.items()]
            parts[table + lines.SUFFIX] = (b"".join(encoded), len(rows))
            written[table + lines.SUFFIX] = [
                (r, None if row is None else len(line))
                for (r, row), line in zip(rows.items(), encoded, strict=True)
            ]
        if changes.values or changes.deleted_values:
            encoded = [lines.encode([seq, k, v]) for k, v in changes.values.items()]
            gone = sorted(changes.deleted_values)
            data = b"".join(encoded) + b"".join(lines.encode([seq, k]) for k in gone)
            parts[lines.VALUES] = (data, len(changes.values) + len(gone))
            written[lines.VALUES] = [
                *zip(changes.values, map(len, encoded), strict=True),
                *((k, None) for k in gone),
            ]
        try:
            self._the_logs.append(parts)
        except OSError as error:
            raise storage_error(error, "append to the logs of", self.root) from error
        # The commit is durable from here on: nothing below may fail the transaction.
        for table, rows in changes.tables.items():
            self._take_changed(table, rows)
        self._values.update(changes.values)
        for key in changes.deleted_values:
            self._values.pop(key, None)
        for name, sizes in written.items():
            live = self._live_in(name)
            for key, size in sizes:
                live.put(key, size)
        self._maintain_files()

    def _dead(self, name: str) -> int:
        """How many lines of a log are superseded or deletions."""
        return self._the_logs.files[name].lines - len(self._live_in(name).sizes)

    def _maintain_files(self) -> None:
        """Compact the logs more than half dead, by lines or by bytes, past the floors (see
        compaction.py), and shorten the commit log likewise (all it keeps is one line).

        Upkeep, never what the commit, open or close calling it is for: it raises nothing.
        What fails (a full disk, say) is logged and tried again later, and stops nothing
        else: each log is compacted on its own, and waits on its own failure only.
        """
        logs = self._the_logs
        due = [
            name
            for name, file in logs.files.items()
            if self._rule.due(name, file.generation, file.held, self._live_in(name).held)
        ]
        failed = self._compact(due)
        errors = list(failed.values())
        commits = logs.commits
        if self._rule.due(lines.COMMITS, commits.generation, commits.held, (1, logs.live_commits)):
            errors += self._shorten()
        # Derived from the logs: rewritten with them (only those: another collection's index
        # waits for its own compaction, or close, however long it has been stale).
        compacted = {lines.log_table(name) for name in due if name not in failed}
        errors += self._write_indices(self._stale_indices & compacted)
        _warn(errors)

    def _compact(self, names: list[str]) -> dict[str, StorageError]:
        """Compact those logs, each on its own: the live lines of one compacted are then
        exactly the lines it holds. Returns why each of the others failed."""
        logs = self._the_logs
        done = logs.compact(names)
        for name, sizes in done.replaced.items():
            self._live[name] = Live.of(sizes)
            self._rule.done(name)
        failed: dict[str, StorageError] = {}
        for name, error in done.failed.items():
            file = logs.files[name]
            self._rule.failed(name, file.generation, file.held[1])
            failed[name] = _storage_error(error, "compact", self.root / name)
        return failed

    def _shorten(self) -> list[StorageError]:
        """Shorten the commit log; why it failed, if it did."""
        logs = self._the_logs
        try:
            logs.shorten()
        except OSError as error:
            self._rule.failed(lines.COMMITS, logs.commits.generation, logs.commits.held[1])
            return [_storage_error(error, "shorten", self.root / lines.COMMITS)]
        self._rule.done(lines.COMMITS)
        return []

    def _write_indices(self, tables: set[str] | None = None) -> list[StorageError]:
        """Rewrite ``indices/<collection>/<field>.jsonl`` of the collections that changed (those
        of ``tables``, if given), each on its own: one that fails stays stale, to be rewritten
        later (these are derived files), and the others are written all the same. Returns
        why each failed."""
        failed: list[StorageError] = []
        for table in sorted(self._stale_indices if tables is None else tables):
            fields = self._indexed.get(table)
            if not fields:
                continue
            try:
                # Derived files: a folder lost in a power cut is written again at open.
                folder = fsio.open_folder(
                    self._root_fd, f"{INDICES}/{table}", create=True, sync=False
                )
                try:
                    for field, by_row in fields.items():
                        data = indices.encode(by_row)
                        fsio.write_atomic(folder, indices.file_name(field), data, sync=self._sync)
                finally:
                    fsio.close(folder)
            except OSError as error:
                where = self.root / INDICES / table
                failed.append(_storage_error(error, "write the indices in", where))
                continue
            self._stale_indices.discard(table)
        return failed

    def _write_stale_indices(self) -> None:
        """At open: rewrite the index files that do not match the logs (or are missing)."""
        self._stale_indices.clear()
        for table, fields in self._indexed.items():
            try:
                if not self._indices_match(table, fields):
                    self._stale_indices.add(table)
            except OSError as error:
                raise storage_error(error, "read the indices of", self.root) from error
        _warn(self._write_indices())

    def _indices_match(self, table: str, fields: dict[str, dict[str, Any]]) -> bool:
        """Whether a collection's index files match the logs (a missing one, or one
        :func:`indices.current` will not read, does not). The temp files that a crash left
        beside them are removed, from the one listing of their folder."""
        try:
            folder = fsio.open_folder(self._root_fd, f"{INDICES}/{table}", create=False, sync=False)
        except (FileNotFoundError, fsio.NotRegular):
            return False
        try:
            ours = {indices.file_name(field) for field in fields}
            fsio.remove_temp_files_of(folder, fsio.entries(folder), ours.__contains__)
            for field, by_row in fields.items():
                current = indices.current(folder, field, by_row)
                if current is None or not indices.matches(current, by_row):
                    return False
            return True
        finally:
            fsio.close(folder)

    def _vouch(self) -> None:
        """At close: every commit durable, and the commit log saying so."""
        try:
            self._the_logs.vouch()
        except OSError as error:
            raise storage_error(error, "flush the logs of", self.root) from error

    def _flusher(self) -> None:
        """``durability="batch"``: flush what was committed every ``batch_interval`` seconds
        (an interval longer than a wait can last, ``inf`` say, is waited for that long)."""
        while not self._closing.wait(min(self._batch_interval, threading.TIMEOUT_MAX)):
            self._background.run(self._flush)

    def _flush(self) -> None:
        with self._lock.held():
            if self._the_logs.unsynced:
                self._the_logs.flush()


def _storage_error(error: OSError | StorageError, doing: str, where: Path) -> StorageError:
    """``error`` as a :class:`~hutch.StorageError` saying what failed where."""
    if isinstance(error, StorageError):
        return error
    converted = storage_error(error, doing, where)
    converted.__cause__ = error
    return converted


def _warn(errors: list[StorageError]) -> None:
    """Log what upkeep could not do: it is tried again later, and nothing was lost."""
    for error in errors:
        log.warning("%s (tried again later; nothing was lost)", error)


def _raise_first(errors: list[StorageError]) -> None:
    """Raise the first of those errors, the others logged."""
    if errors:
        _warn(errors[1:])
        raise errors[0]


def _is_table(name: str) -> bool:
    """Whether ``name`` is a collection's name (whose log would be ``<name>.jsonl``)."""
    log_name = name + lines.SUFFIX
    return lines.is_log(log_name) and lines.log_table(log_name) is not None


def _changed_in_place(name: str) -> bool:
    """The files of a ``jsonl://`` folder that hutch appends to, cuts or locks in place."""
    return name in (OPEN_MARK, LOCK_FILE, lines.COMMITS) or lines.is_log(name)


def _replaced_whole(name: str) -> bool:
    """The files of a ``jsonl://`` root that hutch replaces through a temp file (the manifest,
    a compacted log, a linked file given a copy of its own)."""
    return name == MANIFEST or _changed_in_place(name)
