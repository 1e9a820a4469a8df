"""Backup archives: one store snapshot in one compressed, timestamped file.

``hutch backup`` writes them, ``hutch backups`` lists them and ``hutch restore``
reads them back. An archive is a gzip-compressed tar file named
``hutch-backup-<UTC time>.tar.gz`` (so names sort by time) holding, in order:

* ``manifest.json``: format, creation time, source URL, each collection's row
  count and SHA-256 (:func:`hutch.snapshots.collection_hash`), and the collection
  settings of the store (``"settings"``: ``{name: {"indexed": [...], "wal": bool |
  null, "path": str | null}}``, of collections with rows or without), first so
  that a listing reads nothing else;
* ``collections/<name>.jsonl``: one ``{"id": row_id, **row}`` line per row, by id;
* ``values.json``: the keyed values, one JSON object.

Any tar tool can open one. Reading treats an archive as hostile: it is never
extracted, tar headers are parsed here (the standard library's reader follows
links, and reads a header's declared size whole before anyone can refuse it),
and everything in it passes the checks of a write before it is returned.
Writing holds to what reading accepts (member sizes, settings), so that no
backup is written that a restore refuses.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import reprlib
import stat
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import attrs
import orjson

from hutch import files
from hutch.cells import Row, check_exact_numbers, check_row, check_value, may_hold_long_numbers
from hutch.config import CollectionSettings, parse_collections
from hutch.errors import (
    ConfigError,
    CorruptData,
    HutchError,
    InvalidId,
    StorageError,
    UnsupportedFormat,
)
from hutch.ids import check_row_id, check_table_id, check_value_id
from hutch.persister import Snapshot
from hutch.snapshots import collection_hash, values_hash

#: The archive format this hutch writes; it reads this one and older.
FORMAT = 1
MANIFEST = "manifest.json"
VALUES = "values.json"
_NAME = re.compile(r"hutch-backup-([0-9]{8}T[0-9]{6}\.[0-9]{6})Z\.tar\.gz").fullmatch
_STAMP = "%Y%m%dT%H%M%S.%f"
#: gzip's own default: a third of level 9's time for a slightly bigger file.
_COMPRESSLEVEL = 6
#: Members declaring more than these are refused before anything of them is read, and
#: none bigger is written (ustar could hold up to 8 GiB).
_MAX_MANIFEST_BYTES = 16 << 20
_MAX_VALUES_BYTES = 1 << 30
_MAX_COLLECTION_BYTES = 4 << 30
#: tar pads its end to 10 KiB; more than this after the end is not a hutch archive.
_MAX_TRAILER_BYTES = 1 << 20
_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_OCTAL = re.compile(rb"[0-7]+").fullmatch
_NOT_FILES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a folder",
    b"6": "a FIFO",
    b"x": "a pax extended header",
    b"g": "a pax global header",
    b"L": "a GNU long name",
    b"K": "a GNU long link name",
}
_SHA256 = re.compile(r"[0-9a-f]{64}").fullmatch
_ADVICE = "the backup is damaged or was not written by hutch: restore another backup"
#: A collection's ``path``: a relative folder, as the folder backends take it.
_RELATIVE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})*"
).fullmatch


class ArchiveExists(HutchError):
    """An archive of that name (that microsecond) exists already; nothing was overwritten."""


class ArchiveTooLarge(HutchError):
    """A collection (or the values, or the manifest) is more than a backup holds; nothing
    was written."""


@attrs.frozen
class Summary:
    """What a manifest says of a collection's rows or of the keyed values, to check them by."""

    count: int
    sha256: str
    """:func:`hutch.snapshots.collection_hash` or :func:`hutch.snapshots.values_hash`."""


@attrs.frozen(kw_only=True)
class Manifest:
    """An archive's first member, checked: what a listing shows, what a restore checks
    against and the collection settings to open the restored store with."""

    format: int
    created: datetime
    """When the snapshot was taken, in UTC."""
    source: str
    """The URL it was taken from, redacted."""
    collections: Mapping[str, Summary]
    """The collections with rows, by name."""
    values: Summary
    settings: Mapping[str, CollectionSettings]
    """The store's collection settings, by name; collections without rows may have some.
    Empty in an archive written before settings were kept."""


@attrs.frozen
class ArchiveInfo:
    """One archive in a backup folder, as its name and ``stat`` tell (nothing is read)."""

    path: Path
    taken_at: datetime
    """When the snapshot was taken, in UTC, to the microsecond (from the name)."""
    size: int
    """In bytes, compressed."""


def write_archive(
    snapshot: Snapshot,
    folder: Path,
    *,
    source: str,
    now: datetime,
    settings: Mapping[str, CollectionSettings] = {},
) -> Path:
    """Write ``snapshot`` as a new archive in ``folder`` (created if missing) and return it.

    ``source`` is the URL it was read from, already redacted; ``now`` (timezone-aware)
    names the archive; ``settings`` are the store's collection settings, kept so that
    a restore can open the store as it was (checked as a read checks them:
    :class:`~hutch.ConfigError`). The archive appears whole or not at all, and survives
    a power cut once this returns (:func:`hutch.files.write_atomic`; never over another
    file: :class:`ArchiveExists`). A member bigger than a read accepts raises
    :class:`ArchiveTooLarge`. Archives and folders made here are readable by their
    owner only: they hold everything the store holds.
    """
    taken = utc(now, "now")
    final = folder / f"hutch-backup-{taken.year:04d}{taken:%m%dT%H%M%S.%f}Z.tar.gz"
    for name in snapshot.tables:
        check_table_id(name)  # names become member names
    kept = {
        name: {"indexed": list(given.indexed), "wal": given.wal, "path": given.path}
        for name, given in sorted(settings.items())
    }
    try:
        _check_settings(kept)
    except ConfigError as error:
        raise ConfigError(f"cannot back up these collection settings: {error}") from None
    collections = sorted(name for name, rows in snapshot.tables.items() if rows)
    manifest = {
        "format": FORMAT,
        "created": taken.isoformat(timespec="microseconds"),
        "source": source,
        "collections": {
            name: {
                "rows": len(snapshot.tables[name]),
                "sha256": collection_hash(snapshot.tables[name]),
            }
            for name in collections
        },
        "values": {"count": len(snapshot.values), "sha256": values_hash(snapshot.values)},
        "settings": kept,
    }
    head = _fitting(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n",
        _MAX_MANIFEST_BYTES,
        "the manifest",
    )
    values = _fitting(orjson.dumps(snapshot.values) + b"\n", _MAX_VALUES_BYTES, "the keyed values")
    try:
        files.make_folder(folder)
    except OSError as error:
        raise files.storage_error(error, "create the backup folder", folder) from error
    fill = partial(_write_members, head, collections, snapshot, values, taken)
    try:
        files.write_atomic(final, fill)
    except FileExistsError:
        raise ArchiveExists(
            f"{final} exists already (a backup taken in the same microsecond?); it was left "
            "as it is: take the backup again"
        ) from None
    except OSError as error:
        raise files.storage_error(error, "write the backup", final) from error
    return final


def read_manifest(path: Path) -> Manifest:
    """The checked manifest of the archive at ``path``; only its first member is read."""
    with _reading(path) as stream:
        return _read_manifest(stream, path)


def read_archive(path: Path) -> tuple[Manifest, Snapshot]:
    """The manifest and the snapshot the archive at ``path`` holds, all of it checked.

    Anything wrong (a damaged gzip stream, an unexpected, duplicate or non-regular
    member, an invalid id or value, a count or hash that disagrees with the
    manifest) raises :class:`~hutch.CorruptData` naming the member and line; a
    newer format raises :class:`~hutch.UnsupportedFormat`.
    """
    with _reading(path) as stream:
        manifest = _read_manifest(stream, path)
        members = {f"collections/{name}.jsonl": name for name in manifest.collections}
        seen = {MANIFEST}
        tables: dict[str, dict[str, Row]] = {}
        values: dict[str, Any] = {}
        while (header := _next_member(stream, path, len(seen))) is not None:
            name, size = header
            if name in seen:
                raise _corrupt(path, name, "appears twice")
            seen.add(name)
            if name == VALUES:
                data = _read_data(stream, path, name, size, _MAX_VALUES_BYTES)
                values = _decode_values(data, manifest.values, path)
            elif name in members:
                table = members[name]
                data = _read_data(stream, path, name, size, _MAX_COLLECTION_BYTES)
                rows = _decode_rows(data, table, manifest.collections[table], path)
                if rows:  # as in a store, a collection without rows does not exist
                    tables[table] = rows
            else:
                raise _corrupt(
                    path,
                    repr(name),
                    "is not a member of a hutch backup (those are manifest.json, values.json "
                    "and collections/<collection>.jsonl for each collection in the manifest)",
                )
        _check_end(stream, path)
    missing = sorted({VALUES, *members} - seen)
    if missing:
        raise _corrupt(path, missing[0], "is missing: the archive ends early")
    return manifest, Snapshot(tables=tables, values=values)


def list_archives(folder: Path) -> list[ArchiveInfo]:
    """The archives in ``folder``, oldest first: regular files named as :func:`write_archive`
    names them. Anything else there is not hutch's, so it is left out (and never touched)."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                taken = _taken_at(entry.name)
                if taken is not None and entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    found.append(ArchiveInfo(Path(folder, entry.name), taken, size))
    except OSError as error:
        raise files.storage_error(error, "list the backups in", folder) from error
    return sorted(found, key=lambda info: info.taken_at)


def utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; a naive datetime is refused, as its zone can only be guessed."""
    if moment.utcoffset() is None:
        raise ConfigError(
            f"{what} must be a timezone-aware datetime (datetime.now(UTC), say), not {moment!r}"
        )
    return moment.astimezone(UTC)


# -- writing -----------------------------------------------------------------------------------


def _write_members(
    manifest: bytes,
    collections: list[str],
    snapshot: Snapshot,
    values: bytes,
    taken: datetime,
    raw: IO[bytes],
) -> None:
    """Stream the members into ``raw``: one collection's lines at a time in memory, each
    refused if it is bigger than a read accepts."""
    dumps = orjson.dumps
    mtime = int(taken.timestamp())
    # filename="": the gzip header would otherwise carry the temporary file's name.
    with (
        gzip.GzipFile(
            filename="", mode="wb", compresslevel=_COMPRESSLEVEL, fileobj=raw, mtime=mtime
        ) as stream,
        tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, manifest, mtime)
        for name in collections:
            rows = snapshot.tables[name]
            lines = [dumps({"id": row_id, **rows[row_id]}) for row_id in sorted(rows)]
            data = _fitting(
                b"\n".join(lines) + b"\n", _MAX_COLLECTION_BYTES, f"collection {name!r}"
            )
            _add(tar, f"collections/{name}.jsonl", data, mtime)
        _add(tar, VALUES, values, mtime)


def _fitting(data: bytes, limit: int, what: str) -> bytes:
    """``data``, if a read accepts a member that big; else :class:`ArchiveTooLarge`."""
    if len(data) > limit:
        raise ArchiveTooLarge(
            f"cannot back up: {what} takes {len(data)} bytes in a backup, more than one holds "
            f"({limit}), so no backup was written; copy the store with `hutch copy` instead, "
            "or split what is too big"
        )
    return data


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mtime = mtime
    member.mode = 0o600
    tar.addfile(member, io.BytesIO(data))


# -- reading -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[gzip.GzipFile]:
    """The decompressed stream of ``path``; a damaged one raises :class:`~hutch.CorruptData`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # (a FIFO: no wait)
        with os.fdopen(fd, "rb") as raw:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError(f"{path} is not a backup archive (not a regular file)")
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _corrupt(path, None, f"it is not a whole gzip file ({error})") from None
    except OSError as error:
        raise files.storage_error(error, "read the backup", path) from error


def _read_manifest(stream: gzip.GzipFile, path: Path) -> Manifest:
    header = _next_member(stream, path, 0)
    if header is None or header[0] != MANIFEST:
        first = "nothing" if header is None else repr(header[0])
        raise _corrupt(path, None, f"its first member is {first}, not {MANIFEST}")
    data = _read_data(stream, path, MANIFEST, header[1], _MAX_MANIFEST_BYTES)
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise _corrupt(path, MANIFEST, f"malformed JSON ({error})") from None
    if type(manifest) is not dict:
        raise _corrupt(path, MANIFEST, "it is not a JSON object")
    version = manifest.get("format")
    if type(version) is not int or version < 1:
        raise _corrupt(
            path, MANIFEST, f'its "format" is {reprlib.repr(version)}, not a format number'
        )
    if version > FORMAT:
        raise UnsupportedFormat(
            f"{path} is a backup of format {version}, written by a newer hutch (this one reads "
            f"format {FORMAT} and older); upgrade hutch to read it"
        )
    for key, kind in (("created", str), ("source", str), ("collections", dict), ("values", dict)):
        if type(manifest.get(key)) is not kind:
            raise _corrupt(path, MANIFEST, f'its "{key}" is missing or not a JSON {kind.__name__}')
    try:
        created = datetime.fromisoformat(manifest["created"])
    except ValueError:
        created = None
    if created is None or created.utcoffset() is None:
        raise _corrupt(
            path,
            MANIFEST,
            f'its "created" is not a time with its zone: {reprlib.repr(manifest["created"])}',
        )
    collections = {}
    for name, summary in manifest["collections"].items():
        try:
            check_table_id(name)
        except InvalidId as error:
            raise _corrupt(path, MANIFEST, str(error)) from None
        collections[name] = _summary(summary, "rows", f"collection {name!r}", path)
    try:
        settings = _check_settings(manifest.get("settings", {}))  # none before they were kept
    except ConfigError as error:
        raise _corrupt(path, MANIFEST, f'its "settings": {error}') from None
    return Manifest(
        format=version,
        created=created.astimezone(UTC),
        source=manifest["source"],
        collections=collections,
        values=_summary(manifest["values"], "count", '"values"', path),
        settings=settings,
    )


def _summary(summary: object, count: str, what: str, path: Path) -> Summary:
    if not (
        type(summary) is dict
        and type(summary.get(count)) is int
        and summary[count] >= 0
        and type(summary.get("sha256")) is str
        and _SHA256(summary["sha256"])
    ):
        raise _corrupt(
            path,
            MANIFEST,
            f'{what} must be {{"{count}": <count>, "sha256": <hex>}}, not {reprlib.repr(summary)}',
        )
    return Summary(summary[count], summary["sha256"])


def _check_settings(settings: object) -> dict[str, CollectionSettings]:
    """Collection settings as a manifest keeps them, checked as ``hutch.open`` checks them,
    with a ``path`` that is a relative folder; :class:`~hutch.ConfigError` otherwise."""
    if type(settings) is not dict:
        raise ConfigError(f"they must be a JSON object, not {reprlib.repr(settings)}")
    parsed = parse_collections(settings)
    for name, given in parsed.items():
        if given.path is not None and not _RELATIVE(given.path):
            raise ConfigError(
                f"collection {name!r}: path {given.path!r} must be a relative folder of "
                "letters, digits, '_', '.' and '-' (no '..', no leading '/', '.' or '_')"
            )
    return parsed


def _next_member(stream: gzip.GzipFile, path: Path, index: int) -> tuple[str, int] | None:
    """The name and size of the next member (a regular file), or ``None`` at the end."""
    header = stream.read(_BLOCK)
    if len(header) < _BLOCK:
        raise _corrupt(path, None, "it ends without the end-of-archive marker")
    if header == _ZERO_BLOCK:
        return None
    where = f"member {index + 1}"
    stored = header[148:156].strip(b"\0 ")
    checksum = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if header[257:262] != b"ustar" or not _OCTAL(stored) or int(stored, 8) != checksum:
        raise _corrupt(path, where, "its tar header is damaged")
    name = header[:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0]
    member = (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")
    kind = header[156:157]
    if kind not in (b"0", b"\0"):
        what = _NOT_FILES.get(kind, f"of tar type {kind!r}")
        raise _corrupt(path, repr(member), f"is {what}, not a regular file")
    size = header[124:136].strip(b"\0 ")
    if not _OCTAL(size):
        raise _corrupt(path, repr(member), "its tar header gives no size")
    return member, int(size, 8)


def _read_data(stream: gzip.GzipFile, path: Path, name: str, size: int, limit: int) -> bytes:
    if size > limit:
        raise _corrupt(path, name, f"it claims {size} bytes, more than a backup holds ({limit})")
    data = stream.read(size)
    padding = -size % _BLOCK
    if len(data) < size or len(stream.read(padding)) < padding:
        raise _corrupt(path, name, "the archive ends inside it")
    return data


def _check_end(stream: gzip.GzipFile, path: Path) -> None:
    """Read to the end, so that gzip checks its CRC: only tar's zero padding may follow."""
    rest = stream.read(_MAX_TRAILER_BYTES + 1)
    if len(rest) > _MAX_TRAILER_BYTES or rest.strip(b"\0"):
        raise _corrupt(path, None, "something follows the end of the archive")


def _decode_rows(data: bytes, table: str, summary: Summary, path: Path) -> dict[str, Row]:
    member = f"collections/{table}.jsonl"
    lines = data.split(b"\n")
    if lines.pop():
        raise _corrupt(path, f"{member}, line {len(lines) + 1}", "it is cut short (no newline)")
    if len(lines) != summary.count:
        raise _corrupt(
            path, member, f"it holds {len(lines)} rows, the manifest says {summary.count}"
        )
    long_numbers = may_hold_long_numbers(data)
    rows: dict[str, Row] = {}
    for number, line in enumerate(lines, 1):
        try:
            if long_numbers:
                check_exact_numbers(line)
            document = orjson.loads(line)
            if type(document) is not dict or "id" not in document:
                raise ValueError('a row must be a JSON object with an "id"')
            row_id = check_row_id(table, document.pop("id"))
            if row_id in rows:
                raise ValueError(f"row {row_id!r} appears twice")
            rows[row_id], _ = check_row(table, row_id, document)
        except ValueError as error:  # malformed JSON, InvalidId, InvalidValue...
            raise _corrupt(path, f"{member}, line {number}", str(error)) from None
    if collection_hash(rows) != summary.sha256:
        raise _corrupt(path, member, "its rows do not match the manifest's SHA-256")
    return rows


def _decode_values(data: bytes, summary: Summary, path: Path) -> dict[str, Any]:
    try:
        check_exact_numbers(data)
        document = orjson.loads(data)
        if type(document) is not dict:
            raise ValueError("the keyed values must be one JSON object")
        values = {check_value_id(k): check_value(v, f"value {k!r}") for k, v in document.items()}
    except ValueError as error:
        raise _corrupt(path, VALUES, str(error)) from None
    if len(values) != summary.count or values_hash(values) != summary.sha256:
        raise _corrupt(path, VALUES, "the values do not match the manifest's count and SHA-256")
    return values


def _corrupt(path: Path, member: str | None, what: str) -> CorruptData:
    return CorruptData(f"{path}: {f'{member}: ' if member else ''}{what}; {_ADVICE}")


def _taken_at(name: str) -> datetime | None:
    match = _NAME(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1], _STAMP).replace(tzinfo=UTC)
    except ValueError:  # a 13th month, say: named like an archive, but none of hutch's
        return None
