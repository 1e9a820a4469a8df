"""``JsonlPersister``: per collection an append-only JSONL log of row changes.

Commit: append one line per changed row to each collection's log (and one per
changed value to ``_values.jsonl``), all stamped with the commit's sequence
number, flush them, then append ``[seq, names]`` to ``_commits.jsonl`` and flush
it: that line is the commit point. A line whose sequence number is above the
last one in the commit log belongs to a commit that never finished; it is
ignored and cut off (docs/jsonl-format.md).

Several processes share the folder as they share a ``file://`` one: a write
transaction holds an ``flock`` on ``hutch.lock`` from ``begin`` to ``end`` and
first reads what the others appended, so it starts from the latest state.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from hutch import (
    BackendConfig,
    Capabilities,
    Changes,
    CollectionSettings,
    ConfigError,
    CorruptData,
    InvalidId,
    InvalidValue,
    Persister,
    Snapshot,
    StorageError,
)
from hutch.backends.file import indices
from hutch.backends.file.folder import check_indexed, parse_manifest, positive, settings_json
from hutch.backends.file.fsio import (
    append_after,
    is_temp,
    open_dir,
    open_root,
    read_file,
    remove,
    storage_error,
    write_atomic,
)
from hutch.cells import Row, check_exact_numbers, check_row, check_value, may_hold_long_numbers
from hutch.config import parse_collections
from hutch.ids import check_row_id, check_value_id
from hutch.persister import ProcessGuard

from . import lines
from .lines import Entry

log = logging.getLogger("hutch.backends.jsonl")

FORMAT_VERSION = 1
KIND = "jsonl"
MANIFEST = "hutch.json"
LOCK_FILE = "hutch.lock"
INDICES = "indices"
#: A log is compacted once it holds more than this many lines, most of them dead.
COMPACT_LINES = 1000
_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch
_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_OPEN = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


def _needs_check(data: bytes) -> bool:
    """Whether ``data`` may hold what orjson accepts but a row may not.

    That is an "id" or empty key, a NUL, or a number that may not fit in 64 bits.
    Bytes without any of these need no per-cell check after orjson read them.
    Substring searches, not a regex: they scan at memory speed.
    """
    return b'"id"' in data or b'""' in data or b"\\u0000" in data or may_hold_long_numbers(data)


class _Log:
    """One append-only file and how much of it this process has read."""

    def __init__(self, name: str, table: str | None) -> None:
        self.name = name
        self.table = table  # None: the values log (or the commit log)
        self.fd: int | None = None
        self.ino: int | None = None
        self.end = 0  # offset just past the last committed line read
        self.lines = 0  # how many lines lie before ``end``


class JsonlPersister(Persister):
    """The ``jsonl://`` backend: a few big append-only files instead of one file per row."""

    capabilities = Capabilities(durable=True, multi_process=True, change_feed=True)

    def __init__(self, config: BackendConfig) -> None:
        config.check_options("batch_interval", "compact_lines")
        self.root = config.url.file_path()
        self._durability = config.durability
        self._batch_interval = positive(config.options, "batch_interval", 2.0)
        self._compact_lines = int(positive(config.options, "compact_lines", COMPACT_LINES))
        self._given = {name: check_indexed(name, s) for name, s in config.collections.items()}
        self._root_fd = open_root(self.root)
        try:
            self._lock_fd = os.open(
                LOCK_FILE, os.O_RDWR | os.O_CREAT | _OPEN, 0o644, dir_fd=self._root_fd
            )
        except OSError as error:
            os.close(self._root_fd)
            raise storage_error(error, "prepare", self.root) from error
        self._process = ProcessGuard(self.root)
        self._mutex = threading.Lock()  # this process's threads; the flock is per process
        self._holder: int | None = None
        #: The settings of every collection (given, or kept in the manifest).
        self.settings: dict[str, CollectionSettings] = {}
        self._commits = _Log(lines.COMMITS, None)
        self._logs: dict[str, _Log] = {}
        self._seq = 0  # the last commit read or written
        self._ids: dict[str, set[str]] = {}
        self._values: dict[str, Any] = {}
        self._indexed: dict[str, dict[str, dict[str, Any]]] = {}
        self._stale_indices: set[str] = set()
        self._unseen: list[Changes] = []
        self._unsynced = False
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None

    # -- the protocol ------------------------------------------------------------------------

    def load(self) -> Snapshot:
        with self._exclusive():
            self.settings = self._merge_manifest()
            for entry in os.scandir(self._root_fd):
                if is_temp(entry.name):
                    remove(self._root_fd, entry.name)  # a crash inside a compaction left it
            self._indexed = {
                t: {field: {} for field in s.indexed} for t, s in self.settings.items() if s.indexed
            }
            changes = self._catch_up()
            tables = {
                t: {r: row for r, row in rows.items() if row is not None}
                for t, rows in changes.tables.items()
            }
            tables = {t: rows for t, rows in tables.items() if rows}
            self._maintain_files()
            self._write_stale_indices()
        if self._durability == "batch":
            self._worker = threading.Thread(target=self._flusher, name="hutch-jsonl", daemon=True)
            self._worker.start()
        return Snapshot(tables=tables, values=dict(self._values))

    def begin(self) -> None:
        self._process.check()
        self._mutex.acquire()
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._holder = threading.get_ident()
        except BaseException:
            self._mutex.release()
            raise

    def end(self) -> None:
        try:
            self._holder = None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def poll(self) -> Changes | None:
        self._process.check()
        if self._holder == threading.get_ident():
            changes = self._catch_up()
        else:
            with self._exclusive():
                changes = self._catch_up()
        if changes:
            self._unseen.append(changes)
        if not self._unseen:
            return None
        unseen, self._unseen = self._unseen, []
        return Changes.combined(unseen)

    def apply(self, changes: Changes) -> None:
        self._process.check()
        if self._holder != threading.get_ident():  # not inside begin/end: catch up first
            with self._exclusive():
                if news := self._catch_up():
                    self._unseen.append(news)
                self._apply(changes)
        else:
            self._apply(changes)

    def reindex(self) -> None:
        with self._exclusive():
            if news := self._catch_up():
                self._unseen.append(news)
            self._stale_indices.update(self._indexed)
            self._write_indices()

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.join()
        try:
            with self._exclusive():
                self._catch_up()
                self._maintain_files()
                self._write_indices()
                if self._durability != "none":
                    self._flush()
        finally:
            for one in [self._commits, *self._logs.values()]:
                if one.fd is not None:
                    os.close(one.fd)
                    one.fd = None
            os.close(self._lock_fd)
            os.close(self._root_fd)

    # -- locking -----------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._mutex:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = None
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- reading (always under the flock) ----------------------------------------------------

    def _catch_up(self) -> Changes:
        """Read what was committed since this process last looked; cut off unfinished commits."""
        try:
            before = self._seq
            self._read_commits()
            names = {e.name for e in os.scandir(self._root_fd) if _is_log(e.name)}
            tables: dict[str, dict[str, Row | None]] = {}
            values: dict[str, Any] = {}
            deleted: set[str] = set()
            for name in sorted(names | set(self._logs)):
                table = _log_table(name)
                one = self._logs.get(name) or self._logs.setdefault(name, _Log(name, table))
                entries, replaced, plain = self._read(one)
                if table is None:
                    self._take_values(entries, replaced, before, values, deleted)
                else:
                    out = tables.setdefault(table, {})
                    self._take_rows(table, entries, replaced, before, out, plain=plain)
        except OSError as error:
            raise storage_error(error, "read the logs of", self.root) from error
        return Changes({t: rows for t, rows in tables.items() if rows}, values, frozenset(deleted))

    def _read_commits(self) -> None:
        entries, _, _ = self._read(self._commits, commits=True)
        if entries:
            seq = entries[-1][0]
            if seq < self._seq:
                raise CorruptData(
                    f"{self.root / lines.COMMITS}: its last commit is {seq}, before {self._seq} "
                    "which this process already read; was the folder restored from a backup "
                    "while open? close every process and open it again"
                )
            self._seq = seq

    def _read(self, one: _Log, *, commits: bool = False) -> tuple[list[Entry], bool, bool]:
        """The committed lines of ``one`` past what was read, whether the file was replaced,
        and whether the lines are plain (no ``"id"`` key, no NUL: what hutch itself writes)."""
        try:
            info = os.stat(one.name, dir_fd=self._root_fd, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise OSError(errno.ELOOP, "not a regular file (a link?)", one.name)
        replaced = info is None or info.st_ino != one.ino
        if replaced:
            known = one.ino is not None
            if one.fd is not None:
                os.close(one.fd)
                one.fd = None
            one.ino, one.end, one.lines = None, 0, 0
            if info is None:
                return [], known, True
            one.fd = os.open(one.name, _OPEN, dir_fd=self._root_fd)
            one.ino = os.fstat(one.fd).st_ino
        assert one.fd is not None
        size = os.fstat(one.fd).st_size
        if size == one.end:
            return [], replaced, True
        data = os.pread(one.fd, max(size - one.end, 0), one.end)
        entries, ends = lines.parse(data, self.root / one.name)
        count = len(entries) if commits else lines.committed(entries, self._seq)
        valid = one.end + (ends[count - 1] if count else 0)
        if valid != size:  # a torn line or a commit that never finished: cut it off
            os.ftruncate(one.fd, valid)
        one.end = valid
        one.lines += count
        plain = not _needs_check(data)
        if not plain and may_hold_long_numbers(data):
            for line in data[: ends[count - 1] if count else 0].splitlines():
                try:
                    check_exact_numbers(line)
                except ValueError as error:
                    raise CorruptData(f"{self.root / one.name}: {error}; fix that line") from None
        return entries[:count], replaced, plain

    def _take_rows(
        self,
        table: str,
        entries: list[Entry],
        replaced: bool,
        before: int,
        out: dict[str, Row | None],
        *,
        plain: bool,
    ) -> None:
        where = self.root / (table + lines.SUFFIX)
        try:
            latest = {row_id: (seq, row) for seq, row_id, row in entries}
        except (TypeError, ValueError):
            raise CorruptData(f"{where}: a row line is [seq, row_id, row]; fix it") from None
        ids = self._ids.setdefault(table, set())
        changed: dict[str, Row | None] = {
            row_id: row for row_id, (seq, row) in latest.items() if seq > before or not replaced
        }
        if replaced:  # compacted by another process: compare with what this one knew
            for row_id in ids - latest.keys():
                changed[row_id] = None
        for row_id, row in changed.items():
            try:
                check_row_id(table, row_id)
                if row is None:
                    continue
                if plain and type(row) is dict:
                    # orjson read it (JSON types, finite floats, valid UTF-8) and the
                    # bytes hold nothing _needs_check looks for: nothing left to check
                    continue
                changed[row_id], _ = check_row(table, row_id, row)
            except (InvalidId, InvalidValue) as error:
                raise CorruptData(f"{where}: {error}; fix or remove that line") from None
        self._take_changed(table, changed)
        out.update(changed)

    def _take_changed(self, table: str, changed: Mapping[str, Row | None]) -> None:
        """Keep this process's view of a collection's ids and indexed fields current."""
        ids = self._ids.setdefault(table, set())
        live = {row_id for row_id, row in changed.items() if row is not None}
        ids.difference_update(changed.keys() - live)
        ids.update(live)
        fields = self._indexed.get(table)
        if fields and changed:
            self._stale_indices.add(table)
            for field, by_row in fields.items():
                for row_id, row in changed.items():
                    if row is not None and field in row:
                        by_row[row_id] = row[field]
                    else:
                        by_row.pop(row_id, None)

    def _take_values(
        self,
        entries: list[Entry],
        replaced: bool,
        before: int,
        out: dict[str, Any],
        deleted: set[str],
    ) -> None:
        where = self.root / lines.VALUES
        if replaced:
            latest = {entry[1]: entry for entry in entries}
            gone = [[0, k] for k in self._values if len(latest.get(k, ())) != 3]
            entries = [e for e in latest.values() if e[0] > before] + gone
        for entry in entries:
            key = entry[1]
            try:
                check_value_id(key)
                value = check_value(entry[2], f"value {key!r}") if len(entry) == 3 else None
            except (InvalidId, InvalidValue) as error:
                raise CorruptData(f"{where}: {error}; fix or remove that line") from None
            if len(entry) == 3:
                self._values[key] = out[key] = value
                deleted.discard(key)
            elif key in self._values or key in out:
                self._values.pop(key, None)
                out.pop(key, None)
                deleted.add(key)

    # -- writing (always under the flock) ----------------------------------------------------

    def _apply(self, changes: Changes) -> None:
        seq = self._seq + 1
        parts: list[tuple[_Log, bytes, int]] = []
        for table, rows in changes.tables.items():
            name = table + lines.SUFFIX
            one = self._logs.get(name) or self._logs.setdefault(name, _Log(name, table))
            data = b"".join(lines.encode([seq, r, row]) for r, row in rows.items())
            parts.append((one, data, len(rows)))
        if changes.values or changes.deleted_values:
            one = self._logs.get(lines.VALUES) or self._logs.setdefault(
                lines.VALUES, _Log(lines.VALUES, None)
            )
            data = b"".join(lines.encode([seq, k, v]) for k, v in changes.values.items())
            data += b"".join(lines.encode([seq, k]) for k in sorted(changes.deleted_values))
            parts.append((one, data, len(changes.values) + len(changes.deleted_values)))
        marker = lines.encode([seq, [one.name for one, _, _ in parts]])
        sync = self._durability == "commit"
        written: list[_Log] = []
        try:
            for one, data, _ in parts:
                written.append(one)
                self._append(one, data, sync=sync)
            written.append(self._commits)
            self._append(self._commits, marker, sync=sync)
        except OSError as error:
            for one in written:  # the commit point was not reached: leave no line behind
                if one.fd is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(one.fd, one.end)
            raise storage_error(error, "append to the logs of", self.root) from error
        # The commit is durable from here on: nothing below may fail the transaction.
        for one, data, count in parts:
            one.end += len(data)
            one.lines += count
        self._commits.end += len(marker)
        self._commits.lines += 1
        self._seq = seq
        self._unsynced = self._durability == "batch"
        for table, rows in changes.tables.items():
            self._take_changed(table, rows)
        self._values.update(changes.values)
        for key in changes.deleted_values:
            self._values.pop(key, None)
        try:
            self._maintain_files()
        except (OSError, StorageError) as error:
            log.warning("could not compact the logs of %s (will retry): %s", self.root, error)

    def _append(self, one: _Log, data: bytes, *, sync: bool) -> None:
        """Append ``data`` after the last committed line; on any error cut the file back."""
        if one.fd is None:
            one.fd = os.open(one.name, _OPEN | os.O_CREAT, 0o644, dir_fd=self._root_fd)
            one.ino = os.fstat(one.fd).st_ino
            if sync:
                os.fsync(self._root_fd)  # the new file's name is durable too
        append_after(one.fd, data, one.end, sync=sync)

    def _maintain_files(self) -> None:
        """Compact the logs whose dead lines passed the threshold; shorten the commit log."""
        try:
            for one in list(self._logs.values()):
                if one.lines <= self._compact_lines or one.fd is None:
                    continue
                live = len(self._values) if one.table is None else len(self._ids.get(one.table, ()))
                if (one.lines - live) * 2 > one.lines:
                    self._compact(one)
            if self._commits.lines > self._compact_lines and self._commits.fd is not None:
                self._rewrite(self._commits, [[self._seq, []]])
        except OSError as error:
            raise storage_error(error, "compact the logs of", self.root) from error

    def _compact(self, one: _Log) -> None:
        """Rewrite a log with one line per live row, atomically (temp file, fsync, rename)."""
        assert one.fd is not None
        entries, _ = lines.parse(os.pread(one.fd, one.end, 0), self.root / one.name)
        latest: dict[str, Entry] = {}
        for entry in entries:
            latest.pop(entry[1], None)  # keep the lines in commit order
            latest[entry[1]] = entry
        if one.table is None:
            live = [e for e in latest.values() if len(e) == 3]
        else:
            live = [e for e in latest.values() if e[2] is not None]
        self._rewrite(one, live)
        if one.table in self._indexed:
            self._stale_indices.add(one.table)
            self._write_indices()

    def _rewrite(self, one: _Log, entries: list[Entry]) -> None:
        data = b"".join(lines.encode(e) for e in entries)
        write_atomic(self._root_fd, one.name, data, sync=self._durability != "none")
        if one.fd is not None:
            os.close(one.fd)
        one.fd = os.open(one.name, _OPEN, dir_fd=self._root_fd)
        one.ino = os.fstat(one.fd).st_ino
        one.end, one.lines = len(data), len(entries)

    def _write_indices(self) -> None:
        """Rewrite ``indices/<collection>/<field>.jsonl`` of the collections that changed."""
        if not self._stale_indices:
            return
        sync = self._durability != "none"
        try:
            folder = open_dir(self._root_fd, INDICES, create=True)
            try:
                for table in sorted(self._stale_indices):
                    fields = self._indexed.get(table)
                    if not fields:
                        continue
                    inner = open_dir(folder, table, create=True)
                    try:
                        for field, by_row in fields.items():
                            data = indices.encode(by_row)
                            write_atomic(inner, indices.file_name(field), data, sync=sync)
                    finally:
                        os.close(inner)
            finally:
                os.close(folder)
        except OSError as error:
            raise storage_error(error, "write the indices of", self.root) from error
        self._stale_indices.clear()

    def _write_stale_indices(self) -> None:
        """At open: rewrite the index files that do not match the logs (or are missing)."""
        self._stale_indices.clear()
        for table, fields in self._indexed.items():
            for field, by_row in fields.items():
                try:
                    folder = open_dir(self._root_fd, INDICES, create=False)
                    try:
                        inner = open_dir(folder, table, create=False)
                        try:
                            current = read_file(inner, indices.file_name(field))
                            for name in os.listdir(inner):
                                if is_temp(name):
                                    remove(inner, name)
                        finally:
                            os.close(inner)
                    finally:
                        os.close(folder)
                except FileNotFoundError:
                    current = None
                except OSError as error:
                    raise storage_error(error, "read the indices of", self.root) from error
                if current is None or not indices.matches(current, by_row):
                    self._stale_indices.add(table)
        self._write_indices()

    def _flush(self) -> None:
        """Make every appended line durable: the logs first, then the commit log."""
        try:
            for one in [*self._logs.values(), self._commits]:
                if one.fd is not None:
                    os.fdatasync(one.fd)
            os.fsync(self._root_fd)
        except OSError as error:
            raise storage_error(error, "flush the logs of", self.root) from error
        self._unsynced = False

    def _flusher(self) -> None:
        """``durability="batch"``: flush what was committed every ``batch_interval`` seconds."""
        while not self._closing.wait(self._batch_interval):
            try:
                with self._mutex:
                    if self._unsynced:
                        self._flush()
            except StorageError as error:
                log.warning("could not flush the logs of %s: %s", self.root, error)

    # -- the manifest ------------------------------------------------------------------------

    def _merge_manifest(self) -> dict[str, CollectionSettings]:
        """The settings kept in ``hutch.json``, updated with those given to ``hutch.open``."""
        where = self.root / MANIFEST
        try:
            stored = parse_manifest(
                read_file(self._root_fd, MANIFEST), where, version=FORMAT_VERSION, kind=KIND
            )["collections"]
            exists = True
        except FileNotFoundError:
            stored, exists = {}, False
        except OSError as error:
            raise storage_error(error, "read", where) from error
        try:
            merged = {
                name: check_indexed(name, parse_collections({name: s})[name])
                for name, s in stored.items()
            }
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}; fix the file by hand") from None
        merged.update(self._given)
        wanted = {name: settings_json(s) for name, s in sorted(merged.items())}
        if not exists or wanted != stored:
            manifest = {"format": FORMAT_VERSION, "kind": KIND, "collections": wanted}
            try:
                write_atomic(
                    self._root_fd,
                    MANIFEST,
                    orjson.dumps(manifest, option=_PRETTY),
                    sync=self._durability != "none",
                )
            except OSError as error:
                raise storage_error(error, "write", where) from error
        return merged


def _is_log(name: str) -> bool:
    """Whether ``name`` is the log of a collection or of the values."""
    return name == lines.VALUES or (
        name.endswith(lines.SUFFIX) and _TABLE(name[: -len(lines.SUFFIX)]) is not None
    )


def _log_table(name: str) -> str | None:
    """The collection whose log ``name`` is, or ``None`` for the values log."""
    return None if name == lines.VALUES else name[: -len(lines.SUFFIX)]
