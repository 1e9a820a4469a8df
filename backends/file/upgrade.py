"""Upgrading a folder of format 1 (hutch before log headers and transaction numbers) to 2.

Format 1 kept the changes the record files lacked in the newest log generation,
as lines of ``<crc32> {"t": ..., "v": ..., "d": ...}``. The upgrade, run at open
under the checkpoint and write locks, never leaves a folder that does not open:

1. write every row and value the newest format-1 generation changed into the
   record and value files, each synced, and sync their folders: the folder is
   still format 1, and its log replays over them to the same state;
2. start the first format-2 generation (numbered after every format-1 one, so
   a format-1 process never mistakes it for its own), synced;
3. delete the format-1 generations and sync the log folder;
4. write the manifest saying format 2, with the folder's new id: the commit
   point. Before it, hutch of either version opens the folder as format 1.

A format-1 process still holding the folder open would append to a log that
no longer counts, so the upgrade refuses while one does (as far as ``/proc``
shows: processes of other users are invisible unless hutch runs as root). A
format-1 process that opens the folder afterwards refuses it, as it refuses
every newer format.
"""

from __future__ import annotations

import uuid
import zlib
from pathlib import Path
from typing import Any

import orjson

from hutch import Changes, CollectionSettings, CorruptData, HutchError, StorageError
from hutch.cells import Row, check_exact_numbers

from . import fsio, records, wal
from .folder import MANIFEST, parse_manifest, settings_json, stored_settings
from .fsio import storage_error
from .log import create_generation

OLD_LOCK = "hutch.lock"  # what a process of format 1 keeps open
NEW_MARK = "hutch.open"  # what a process of format 2 holds a shared flock on


def to_format_2(root_fd: int, wal_fd: int, root: Path, *, sync: bool) -> None:
    """Upgrade the format-1 folder at ``root`` in place (see the module docstring)."""
    older = fsio.openers(root_fd, OLD_LOCK) - fsio.flock_holders(root_fd, NEW_MARK)
    if older:
        pids = ", ".join(map(str, sorted(older)))
        raise StorageError(
            f"{root} is a folder of format 1, open in process(es) {pids} "
            "of an older hutch; close them, then open it again: it is upgraded to format 2 "
            "then, and an older hutch cannot open it after that"
        )
    where = root / MANIFEST
    try:
        manifest = parse_manifest(
            fsio.read_file(root_fd, MANIFEST), where, version=records.FORMAT_VERSION
        )
        settings = stored_settings(manifest, where)
        numbers = sorted(
            n for name, kind in fsio.entries(wal_fd) if kind == "file" and (n := wal.number(name))
        )
        for number in numbers:  # a manifest older than its log must not lose the log
            header, start = wal.read_header(fsio.read_head(wal_fd, wal.name(number), 4096))
            found = fsio.info(wal_fd, wal.name(number))
            if header is not None and found is not None and found.st_size > start:
                # (one holding just its header is this upgrade's own step 2, cut short)
                raise CorruptData(
                    f"{where} says format 1, but {root / '_wal' / wal.name(number)} is a log of "
                    f"format 2 (of the folder {header.folder}): the manifest is older than the "
                    "log (restored from a backup?). Restore the manifest that goes with the log"
                )
        changes = _format_1_lines(fsio.read_file(wal_fd, wal.name(numbers[-1]))) if numbers else []
        _write_rows(root_fd, settings, changes, sync=sync)
        if any(c.values or c.deleted_values for c in changes):
            values = _read_values(root_fd, root)
            for each in changes:
                values.update(each.values)
                for key in each.deleted_values:
                    values.pop(key, None)
            fsio.write_atomic(root_fd, records.VALUES, records.encode_values(values), sync=sync)
        folder_id = uuid.uuid4().hex
        create_generation(wal_fd, folder_id, None, sync=sync)  # numbered after the old ones
        for number in numbers:
            fsio.remove(wal_fd, wal.name(number))
        if sync:
            fsio.fsync(wal_fd)
        stored = {name: settings_json(s) for name, s in sorted(settings.items())}
        fsio.write_atomic(root_fd, MANIFEST, records.encode_manifest(folder_id, stored), sync=sync)
    except OSError as error:
        raise storage_error(error, "upgrade to format 2", root) from error


def _format_1_lines(data: bytes) -> list[Changes]:
    """The transactions of a format-1 generation, up to the first line that does not check
    (format 1 could not tell a torn tail from damage; it stopped there, and so does this)."""
    found = []
    position = 0
    while (end := data.find(b"\n", position)) >= 0:
        line = data[position:end]
        payload = line[9:]
        if len(line) < 10 or line[8:9] != b" ":
            break
        try:
            if int(line[:8], 16) != zlib.crc32(payload):
                break
            check_exact_numbers(payload)
            fields = orjson.loads(payload)
            found.append(wal.checked_changes(fields["t"], fields["v"], fields["d"]))
        except (ValueError, KeyError, TypeError, AttributeError, HutchError):
            break
        position = end + 1
    return found


def _write_rows(
    root_fd: int, settings: dict[str, CollectionSettings], changes: list[Changes], *, sync: bool
) -> None:
    """Write the final state of every row the changes touch into its record file."""
    final: dict[str, dict[str, Row | None]] = {}
    for each in changes:
        for table_id, row_id, row in each.rows():
            final.setdefault(table_id, {})[row_id] = row
    for table_id, rows in final.items():
        path = (settings[table_id].path if table_id in settings else None) or table_id
        fd = fsio.open_folder(root_fd, path, create=True, sync=sync)
        try:
            for row_id, row in rows.items():
                name = row_id + records.RECORD_SUFFIX
                if row is None:
                    fsio.remove(fd, name)
                else:
                    data = records.encode_record(row_id, row)
                    fsio.write_atomic(fd, name, data, sync=sync, sync_folder=False)
            if sync:
                fsio.fsync(fd)
        finally:
            fsio.close(fd)


def _read_values(root_fd: int, root: Path) -> dict[str, Any]:
    try:
        data = fsio.read_file(root_fd, records.VALUES)
    except FileNotFoundError:
        return {}
    try:
        values, bad = records.decode_values(data)
    except ValueError as error:
        reasons = str(error)
    else:
        if not bad:
            return values
        reasons = "; ".join(bad[key] for key in sorted(bad))  # (each names its key)
    # The upgrade writes the file again, from what checks: the rest would be lost.
    raise CorruptData(
        f"{root / records.VALUES}: {reasons}; fix the file (or remove what does not check), "
        "then open the folder again to upgrade it"
    )
