"""``FilePersister``: a folder of JSON records, made durable through a write-ahead log.

Commit: append the transaction to the log and ``fdatasync`` it (one flush per
commit). Checkpoint (in the background, and at open and close): write the
record files, values and indices that the log says changed, flush the file
system once, then start a new log generation. Several processes share the
folder: a write transaction holds an ``flock`` on ``hutch.lock`` and first
reads what the others appended to the log, so it starts from the latest state.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from hutch import (
    BackendConfig,
    Capabilities,
    Changes,
    CollectionSettings,
    ConfigError,
    CorruptData,
    DiskFull,
    Persister,
    Snapshot,
    StorageError,
)
from hutch.cells import Row, check_exact_numbers, check_value
from hutch.config import parse_collections
from hutch.persister import ProcessGuard

from . import indices, records, wal
from .folder import check_indexed, open_root, parse_manifest, positive, settings_json
from .fsio import (
    is_temp,
    open_dir,
    read_file,
    remove,
    storage_error,
    sync_filesystem,
    write_atomic,
)

log = logging.getLogger("hutch.backends.file")

LOCK_FILE = "hutch.lock"
WAL_FOLDER = "_wal"
QUARANTINE_FOLDER = "_quarantine"
#: A checkpoint also starts when the log grows past this many bytes.
CHECKPOINT_BYTES = 16 << 20
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})*").fullmatch
_TABLE_FOLDER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch


class FilePersister(Persister):
    """The ``file://`` backend (and bare paths): one JSON file per record."""

    capabilities = Capabilities(durable=True, multi_process=True, change_feed=True)

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("on_corrupt", "batch_interval", "checkpoint_interval")
        options = config.options
        self.root = config.url.file_path()
        self._durability = config.durability
        self._on_corrupt = options.get("on_corrupt", "raise")
        if self._on_corrupt not in ("raise", "quarantine"):
            raise ConfigError(
                f"on_corrupt must be 'raise' or 'quarantine', not {self._on_corrupt!r}"
            )
        self._batch_interval = positive(options, "batch_interval", 2.0, " of seconds")
        self._checkpoint_interval = positive(options, "checkpoint_interval", 5.0, " of seconds")
        self._given = {name: _checked(name, s) for name, s in config.collections.items()}
        self._root_fd = open_root(self.root)
        try:
            self._lock_fd = os.open(
                LOCK_FILE,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=self._root_fd,
            )
            self._wal_fd = open_dir(self._root_fd, WAL_FOLDER, create=True)
        except OSError as error:
            os.close(self._root_fd)
            raise storage_error(error, "prepare", self.root) from error
        self._process = ProcessGuard(self.root)
        self._mutex = threading.Lock()  # this process's threads; the flock is per process
        self._holder: int | None = None  # the thread of this process holding the flock
        #: The settings of every collection (given, or kept in the manifest).
        self.settings: dict[str, CollectionSettings] = {}
        #: Damaged files moved aside by ``on_corrupt="quarantine"``.
        self.quarantined: list[Path] = []
        self._dir_fds: dict[str, int] = {}
        self._writer: wal.Writer | None = None
        self._generation = 0
        self._seen = 0  # offset just past the last intact record read in this generation
        self._ids: dict[str, set[str]] = {}
        self._values: dict[str, Any] = {}
        self._indexed: dict[str, dict[str, dict[str, Any]]] = {}
        self._dirty: dict[str, dict[str, Row | None]] = {}  # logged, not yet in record files
        self._dirty_values = False
        self._unseen: list[Changes] = []  # others' commits, not yet handed to the store
        self._unsynced = False
        self._last_checkpoint = time.monotonic()
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        with self._exclusive():
            snapshot = self._read_everything()
            try:
                self._checkpoint()
                self._write_stale_indices()
            except DiskFull as error:  # the log still holds it all: open, and retry later
                log.warning("could not checkpoint %s while opening it: %s", self.root, error)
        self._worker = threading.Thread(target=self._maintain, name="hutch-file", daemon=True)
        self._worker.start()
        return snapshot

    def begin(self) -> None:
        self._process.check()
        self._mutex.acquire()
        try:
            self._lock()
        except BaseException:
            self._mutex.release()
            raise

    def end(self) -> None:
        try:
            self._unlock()
        finally:
            self._mutex.release()

    def poll(self) -> Changes | None:
        self._process.check()
        try:
            if self._holder == threading.get_ident():
                self._catch_up()
            else:
                with self._exclusive():
                    self._catch_up()
        except OSError as error:
            raise storage_error(error, "read the write-ahead log of", self.root) from error
        if not self._unseen:
            return None
        unseen, self._unseen = self._unseen, []
        return Changes.combined(unseen)

    def apply(self, changes: Changes) -> None:
        assert self._writer is not None
        try:
            self._writer.append(wal.encode(changes), self._seen, sync=self._durability == "commit")
        except OSError as error:
            raise storage_error(error, "append to the write-ahead log of", self.root) from error
        # The commit is durable from here on: nothing below may fail the transaction.
        self._seen = self._writer.size
        self._unsynced = self._durability == "batch"
        self._take(changes)
        self._write_unlogged(changes)

    def reindex(self) -> None:
        with self._exclusive():
            self._catch_up()
            try:
                for table_id in self._indexed:
                    self._write_indices(table_id, sync=False)
                self._sync(self._root_fd)
            except OSError as error:
                raise storage_error(error, "rebuild the indices of", self.root) from error

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.join()
        try:
            if self._writer is not None:
                with self._exclusive():
                    self._catch_up()
                    self._checkpoint()
        finally:
            if self._writer is not None:
                self._writer.close()
            for fd in [*self._dir_fds.values(), self._wal_fd, self._lock_fd, self._root_fd]:
                os.close(fd)
            self._dir_fds.clear()

    # -- locking -----------------------------------------------------------------------------

    def _lock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holder = threading.get_ident()

    def _unlock(self) -> None:
        self._holder = None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._mutex:
            self._lock()
            try:
                yield
            finally:
                self._unlock()

    # -- reading -----------------------------------------------------------------------------

    def _read_everything(self) -> Snapshot:
        """The manifest, the records, and the newest log generation replayed over them.

        Older generations were checkpointed before the newest began, so only the
        newest can hold what the record files lack.
        """
        self.settings = self._merge_manifest()
        _remove_temp_files(self._root_fd)
        generations = wal.generations(self._wal_fd) or [1]
        self._generation = generations[-1]
        replay = []
        self._seen = 0
        for changes, end in wal.read_lines(self._read_log(self._generation)):
            replay.append(changes)
            self._seen = end
        covered = {(t, r) for changes in replay for t, r, _ in changes.rows()}
        tables = self._read_records(covered)
        values = self._read_values()
        for changes in replay:
            _apply_to(tables, values, changes)
        tables = {t: rows for t, rows in tables.items() if rows}
        self._ids = {t: set(rows) for t, rows in tables.items()}
        self._values = dict(values)
        self._indexed = {
            table_id: {
                field: {
                    r: row[field] for r, row in tables.get(table_id, {}).items() if field in row
                }
                for field in settings.indexed
            }
            for table_id, settings in self.settings.items()
            if settings.indexed
        }
        self._dirty, self._dirty_values = {}, False
        for changes in replay:
            self._mark_dirty(changes)
        if self._writer is not None:
            self._writer.close()
        self._writer = wal.Writer(self._wal_fd, self._generation)
        return Snapshot(tables=tables, values=values)

    def _merge_manifest(self) -> dict[str, CollectionSettings]:
        """The settings kept in ``hutch.json``, updated with those given to ``hutch.open``."""
        where = self.root / records.MANIFEST
        try:
            stored = parse_manifest(
                read_file(self._root_fd, records.MANIFEST), where, version=records.FORMAT_VERSION
            )
            exists = True
        except FileNotFoundError:
            stored, exists = {}, False
        except OSError as error:
            raise storage_error(error, "read", where) from error
        try:
            merged = {name: _checked(name, _settings_from(name, s)) for name, s in stored.items()}
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}; fix the file by hand") from None
        merged.update(self._given)
        folders: dict[str, str] = {}
        for name, settings in merged.items():
            folder = settings.path or name
            if folder in folders:
                raise ConfigError(
                    f"collections {folders[folder]!r} and {name!r} would both live in "
                    f"{self.root / folder}; give one of them another path"
                )
            folders[folder] = name
        wanted = {name: settings_json(s) for name, s in sorted(merged.items())}
        if not exists or wanted != stored:
            try:
                write_atomic(
                    self._root_fd,
                    records.MANIFEST,
                    records.encode_manifest(wanted),
                    sync=self._durability != "none",
                )
            except OSError as error:
                raise storage_error(error, "write", where) from error
        return merged

    def _folders(self) -> dict[str, str]:
        """Every collection, in the settings or found as a folder, with its folder."""
        folders = {name: s.path or name for name, s in self.settings.items()}
        claimed = set(folders.values())
        for entry in os.scandir(self._root_fd):
            if not _TABLE_FOLDER(entry.name):
                continue
            if entry.is_symlink() or (entry.name in claimed and not entry.is_dir()):
                raise storage_error(
                    OSError(errno.ELOOP, "a symbolic link"),
                    "use the collection folder",
                    self.root / entry.name,
                )
            if entry.name not in claimed and entry.is_dir(follow_symlinks=False):
                folders[entry.name] = entry.name
        return folders

    def _read_records(self, covered: set[tuple[str, str]]) -> dict[str, dict[str, Row]]:
        tables: dict[str, dict[str, Row]] = {}
        for table_id, folder in self._folders().items():
            try:
                dir_fd = self._dir_fd(table_id, create=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise storage_error(error, "open", self.root / folder) from error
            rows: dict[str, Row] = {}
            folder_path = self.root / folder
            for entry in os.scandir(dir_fd):
                name = entry.name
                if not name.endswith(records.RECORD_SUFFIX):
                    if is_temp(name):
                        remove(dir_fd, name)  # left by a crash; its content never counted
                    elif name == indices.FOLDER and entry.is_dir(follow_symlinks=False):
                        with _opened(open_dir(dir_fd, name, create=False)) as inner:
                            _remove_temp_files(inner)
                    continue
                try:
                    row_id, row = records.decode_record(
                        table_id, name, read_file(dir_fd, name), folder_path
                    )
                except IsADirectoryError:
                    continue
                except CorruptData:
                    if (table_id, name.removesuffix(records.RECORD_SUFFIX)) in covered:
                        continue  # the log holds its latest version and rewrites it
                    if self._on_corrupt == "raise":
                        raise
                    self._quarantine(dir_fd, folder, name)
                    continue
                except OSError as error:
                    raise storage_error(error, "read", self.root / folder / name) from error
                rows[row_id] = row
            tables[table_id] = rows
        return tables

    def _read_values(self) -> dict[str, Any]:
        where = self.root / records.VALUES
        try:
            data = read_file(self._root_fd, records.VALUES)
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise storage_error(error, "read", where) from error
        try:
            document = orjson.loads(data)
            check_exact_numbers(data)
            if not isinstance(document, dict):
                raise ValueError("keyed values must be one JSON object")
            return {k: check_value(v, f"value {k!r}") for k, v in document.items()}
        except ValueError as error:  # JSONDecodeError and InvalidValue are ValueErrors
            if self._on_corrupt == "raise":
                raise CorruptData(f"{where}: {error}; fix or remove the file") from None
            self._quarantine(self._root_fd, ".", records.VALUES)
            return {}

    def _quarantine(self, dir_fd: int, folder: str, name: str) -> None:
        """Move a damaged file to ``_quarantine/<folder>/`` and report it."""
        sub = "_root" if folder == "." else folder.replace("/", "__")
        try:
            top = open_dir(self._root_fd, QUARANTINE_FOLDER, create=True)
            try:
                inner = open_dir(top, sub, create=True)
            finally:
                os.close(top)
            try:
                target = name
                while _exists(inner, target):
                    target += ".again"
                os.rename(name, target, src_dir_fd=dir_fd, dst_dir_fd=inner)
            finally:
                os.close(inner)
        except OSError as error:
            raise storage_error(error, "quarantine", self.root / folder / name) from error
        moved = self.root / QUARANTINE_FOLDER / sub / target
        self.quarantined.append(moved)
        log.warning("moved the damaged file %s to %s", self.root / folder / name, moved)

    def _read_log(self, generation: int, offset: int = 0) -> bytes:
        try:
            fd = os.open(
                wal.name(generation),
                os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=self._wal_fd,
            )
        except FileNotFoundError:
            return b""
        try:
            size = os.fstat(fd).st_size
            return os.pread(fd, size - offset, offset) if size > offset else b""
        finally:
            os.close(fd)

    def _catch_up(self) -> None:
        """Take in what other processes appended to the log since this one last looked."""
        generations = wal.generations(self._wal_fd)
        if self._generation not in generations:
            self._reload()
            return
        for generation in generations[generations.index(self._generation) :]:
            if generation != self._generation:
                # The one before was checkpointed by another process: it is in the files.
                self._dirty, self._dirty_values = {}, False
                self._generation, self._seen = generation, 0
            data = self._read_log(generation, self._seen)
            start = self._seen
            for changes, end in wal.read_lines(data):
                self._unseen.append(changes)
                self._take(changes)
                self._seen = start + end
        assert self._writer is not None
        if self._writer.generation != self._generation:
            self._writer.close()
            self._writer = wal.Writer(self._wal_fd, self._generation)

    def _reload(self) -> None:
        """Too far behind to read the log: read everything and report the difference."""
        old_ids, old_values = self._ids, self._values
        snapshot = self._read_everything()
        tables: dict[str, dict[str, Row | None]] = {}
        for table_id, ids in old_ids.items():
            tables[table_id] = dict.fromkeys(ids)
        for table_id, rows in snapshot.tables.items():
            tables.setdefault(table_id, {}).update(rows)
        gone = frozenset(old_values) - frozenset(snapshot.values)
        self._unseen.append(Changes(tables, dict(snapshot.values), gone))

    # -- writing -----------------------------------------------------------------------------

    def _take(self, changes: Changes) -> None:
        """Keep this process's view of ids, values and indexed fields current.

        It runs on every commit, so it works table by table and field by field,
        leaving the per-row work to set and dict methods where it can.
        """
        for table_id, rows in changes.tables.items():
            ids = self._ids.setdefault(table_id, set())
            ids.update(rows)
            ids.difference_update([row_id for row_id, row in rows.items() if row is None])
            for field, by_row in self._indexed.get(table_id, {}).items():
                for row_id, row in rows.items():
                    if row is not None and field in row:
                        by_row[row_id] = row[field]
                    else:
                        by_row.pop(row_id, None)
        self._values.update(changes.values)
        for key in changes.deleted_values:
            self._values.pop(key, None)
        self._mark_dirty(changes)

    def _mark_dirty(self, changes: Changes) -> None:
        for table_id, rows in changes.tables.items():
            self._dirty.setdefault(table_id, {}).update(rows)
        if changes.values or changes.deleted_values:
            self._dirty_values = True

    def _write_unlogged(self, changes: Changes) -> None:
        """Write the records of ``"wal": false`` collections now (the log already holds them)."""
        for table_id, rows in changes.tables.items():
            settings = self.settings.get(table_id)
            if settings is None or settings.wal is not False:
                continue
            sync = self._durability != "none"
            try:
                dir_fd = self._dir_fd(table_id, create=True)
                for row_id, row in rows.items():
                    self._write_record(dir_fd, row_id, row, sync=sync)
                    self._dirty[table_id].pop(row_id, None)
                if table_id in self._indexed:
                    self._write_indices(table_id, sync=sync)
            except OSError as error:  # the commit stands: the next checkpoint retries
                log.warning("could not write %s records now (%s); will retry", table_id, error)

    def _write_record(self, dir_fd: int, row_id: str, row: Row | None, *, sync: bool) -> None:
        name = row_id + records.RECORD_SUFFIX
        if row is None:
            remove(dir_fd, name)
            if sync:
                os.fsync(dir_fd)
        else:
            write_atomic(dir_fd, name, records.encode_record(row_id, row), sync=sync)

    def _checkpoint(self) -> None:
        """Bring record files, values and indices up to date with the log; start a new log."""
        assert self._writer is not None
        self._last_checkpoint = time.monotonic()
        if not self._dirty and not self._dirty_values:
            return
        try:
            for table_id, rows in self._dirty.items():
                if not rows:
                    continue
                dir_fd = self._dir_fd(table_id, create=True)
                for row_id, row in rows.items():
                    self._write_record(dir_fd, row_id, row, sync=False)
                if table_id in self._indexed:
                    self._write_indices(table_id, sync=False)
            if self._dirty_values:
                write_atomic(
                    self._root_fd, records.VALUES, records.encode_values(self._values), sync=False
                )
            self._sync(self._root_fd)
            next_generation = self._generation + 1
            writer = wal.Writer(self._wal_fd, next_generation)
            self._sync(self._wal_fd)
        except OSError as error:
            raise storage_error(error, "checkpoint", self.root) from error
        self._writer.close()
        self._writer = writer
        for old in wal.generations(self._wal_fd):
            if old < self._generation:
                remove(self._wal_fd, wal.name(old))
        self._generation, self._seen = next_generation, 0
        self._dirty, self._dirty_values = {}, False
        self._unsynced = False
        self._last_checkpoint = time.monotonic()

    def _write_indices(self, table_id: str, *, sync: bool) -> None:
        fields = self._indexed.get(table_id)
        if not fields:
            return
        dir_fd = self._dir_fd(table_id, create=True)
        folder_fd = open_dir(dir_fd, indices.FOLDER, create=True)
        try:
            for field, by_row in fields.items():
                write_atomic(folder_fd, indices.file_name(field), indices.encode(by_row), sync=sync)
        finally:
            os.close(folder_fd)

    def _write_stale_indices(self) -> None:
        """Rewrite index files that do not match the records (a hand edit, a new setting)."""
        written = False
        try:
            for table_id, fields in self._indexed.items():
                dir_fd = self._dir_fd(table_id, create=True)
                for field, by_row in fields.items():
                    try:
                        folder_fd = open_dir(dir_fd, indices.FOLDER, create=False)
                        try:
                            current = read_file(folder_fd, indices.file_name(field))
                        finally:
                            os.close(folder_fd)
                    except FileNotFoundError:
                        current = None
                    if current is None or not indices.matches(current, by_row):
                        self._write_indices(table_id, sync=False)
                        written = True
                        break
            if written:
                self._sync(self._root_fd)
        except OSError as error:
            raise storage_error(error, "write the indices of", self.root) from error

    def _sync(self, fd: int) -> None:
        if self._durability != "none":
            sync_filesystem(fd)

    def _dir_fd(self, table_id: str, *, create: bool) -> int:
        """The folder of a collection, opened once and never through a symbolic link."""
        fd = self._dir_fds.get(table_id)
        if fd is None:
            settings = self.settings.get(table_id)
            path = (settings.path if settings else None) or table_id
            fd = self._root_fd
            parts = path.split("/")
            for depth, part in enumerate(parts):
                inner = open_dir(fd, part, create=create)
                if depth:
                    os.close(fd)
                fd = inner
            self._dir_fds[table_id] = fd
        return fd

    # -- the background worker ---------------------------------------------------------------

    def _maintain(self) -> None:
        """Flush batched commits and checkpoint, until the database closes."""
        tick = min(self._batch_interval, self._checkpoint_interval, 1.0)
        while not self._closing.wait(tick):
            try:
                with self._exclusive():
                    assert self._writer is not None
                    if self._unsynced:
                        self._writer.sync()
                        self._unsynced = False
                    due = time.monotonic() - self._last_checkpoint >= self._checkpoint_interval
                    if due or self._writer.size >= CHECKPOINT_BYTES:
                        self._catch_up()
                        self._checkpoint()
            except (OSError, StorageError) as error:
                log.warning("background checkpoint of %s failed: %s", self.root, error)


def _apply_to(tables: dict[str, dict[str, Row]], values: dict[str, Any], changes: Changes) -> None:
    for table_id, row_id, row in changes.rows():
        if row is None:
            tables.get(table_id, {}).pop(row_id, None)
        else:
            tables.setdefault(table_id, {})[row_id] = row
    values.update(changes.values)
    for key in changes.deleted_values:
        values.pop(key, None)


def _checked(name: str, settings: CollectionSettings) -> CollectionSettings:
    """Settings the file backend can honour: field and folder names that are safe file names."""
    check_indexed(name, settings)
    if settings.path is not None and not _PATH(settings.path):
        raise ConfigError(
            f"collection {name!r}: path {settings.path!r} must be a relative folder inside the "
            "root, of letters, digits, '_', '.' and '-' (no '..', no leading '/', '.' or '_')"
        )
    return settings


def _settings_from(name: str, stored: Any) -> CollectionSettings:
    return parse_collections({name: stored})[name]


@contextmanager
def _opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _remove_temp_files(dir_fd: int) -> None:
    """Remove the temp files a crash left behind in a folder; they never held committed data."""
    for entry in os.scandir(dir_fd):
        if is_temp(entry.name):
            remove(dir_fd, entry.name)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
