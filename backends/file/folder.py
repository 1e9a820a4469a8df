"""A data folder's front door, shared by the folder backends (``file://``, ``jsonl://``).

Reading the manifest and checking options and collection settings are the same
for every backend that keeps its store in a folder. For ``file://``, where each
collection has a folder of its own, it also says where those folders may be
(never one inside another) and moves one when a collection's ``path`` changes.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from hutch import CollectionSettings, ConfigError, CorruptData, UnsupportedFormat
from hutch.config import parse_collections
from hutch.persister import OpenStores

from . import fsio, records
from .fsio import file_system_type

#: File systems on which the durability promise does not hold: network ones, and FUSE ones
#: (sync clients, sshfs...), whose fsync is whatever their daemon makes of it.
_NOT_LOCAL = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "davfs", "fuse")

_FIELD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}").fullmatch
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})*").fullmatch
#: The root's own files (hutch.json, hutch.lock, hutch.checkpoint, hutch.open) begin so.
_OWN_FILES = "hutch."


def is_not_local(kind: str) -> bool:
    """Whether a file system type is a network or FUSE one."""
    return kind in _NOT_LOCAL or kind.startswith("fuse.")


def warn_if_not_local(root: Path, log: logging.Logger) -> None:
    """Say so when the folder is where hutch's durability promise does not hold."""
    kind = file_system_type(root)
    if kind is not None and is_not_local(kind):
        log.warning(
            "%s is on a %s file system: hutch's durability promise holds on local file "
            "systems (ext4, xfs, btrfs; tmpfs for throw-away data), not on network or "
            "FUSE ones, nor in folders a sync client copies (docs/file-format.md)",
            root,
            kind,
        )


def positive(options: Mapping[str, Any], name: str, default: float, unit: str = "") -> float:
    """The option ``name`` (a positive number, ``unit`` said in the error), or ``default``;
    ``inf``, or a whole number too big for a float, is infinite (never, for an interval)."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number{unit}, not {value!r}")
    return math.inf if value > sys.float_info.max else float(value)


def check_indexed(name: str, settings: CollectionSettings) -> CollectionSettings:
    """Indexed fields become file names: refuse any that is not a safe one."""
    for field in settings.indexed:
        if not _FIELD(field):
            raise ConfigError(
                f"collection {name!r}: the indexed field {field!r} becomes a file name; use "
                "letters, digits, '_', '.' and '-' (not leading with '.' or '-')"
            )
    return settings


def check_collection(name: str, settings: CollectionSettings) -> CollectionSettings:
    """Settings a folder backend can honour: field and folder names that are safe file names."""
    check_indexed(name, settings)
    if settings.path is not None and not _PATH(settings.path):
        raise ConfigError(
            f"collection {name!r}: path {settings.path!r} must be a relative folder inside the "
            "root, of letters, digits, '_', '.' and '-' (no '..', no leading '/', '.' or '_')"
        )
    if settings.path is not None and settings.path.split("/")[0].startswith(_OWN_FILES):
        raise ConfigError(
            f"collection {name!r}: path {settings.path!r} starts with the name of a file hutch "
            "keeps in the root (hutch.json, hutch.lock...); give it another path"
        )
    if settings.path is not None and any(p.endswith(".json") for p in settings.path.split("/")[1:]):
        raise ConfigError(
            f"collection {name!r}: path {settings.path!r} puts a folder under the name of one "
            "of another collection's records (a part after the first ends in '.json'); give "
            "it another path"
        )
    return settings


def folder_of(name: str, settings: CollectionSettings) -> str:
    """The folder of a collection, relative to the root: its ``path``, or its name."""
    return settings.path or name


def check_places(root: Path, folders: Mapping[str, str]) -> None:
    """Refuse collection folders (``folders``: collection -> folder) that are one, or one
    inside another: their records and index files would mix, and a collection's
    ``indices`` folder is inside its own."""
    by_folder: dict[str, str] = {}
    for name, folder in sorted(folders.items()):
        if folder in by_folder:
            raise ConfigError(
                f"collections {by_folder[folder]!r} and {name!r} would both live in "
                f"{root / folder}; give one of them another path"
            )
        by_folder[folder] = name
    for folder, name in sorted(by_folder.items()):
        parts = folder.split("/")
        for end in range(1, len(parts)):
            outer = "/".join(parts[:end])
            if outer in by_folder:
                raise ConfigError(
                    f"collection {name!r} would live in {root / folder}, inside the folder of "
                    f"collection {by_folder[outer]!r} ({root / outer}); give it a path outside "
                    "every other collection's folder"
                )


def claimed_names(folders: Mapping[str, str]) -> dict[str, str]:
    """The names whose own folder (``<root>/<name>``) a collection with another name lives in,
    or inside: each -> that collection. A collection of that name, unless given a path of
    its own, would share its folder."""
    claimed: dict[str, str] = {}
    for name, folder in sorted(folders.items()):
        top = folder.split("/")[0]
        if top != name:
            claimed.setdefault(top, name)
    return claimed


def holds_records(root_fd: int, folder: str) -> bool:
    """Whether the folder ``folder`` (relative to the root) is there and holds a record file
    (or anything bearing a record's name). A link or file where it belongs is an error."""
    try:
        dir_fd = fsio.open_folder(root_fd, folder, create=False, sync=False)
    except FileNotFoundError:
        return False
    try:
        return any(name.endswith(records.RECORD_SUFFIX) for name, _ in fsio.entries(dir_fd))
    finally:
        fsio.close(dir_fd)


def pending_moves(
    manifest: Mapping[str, Any], settings: Mapping[str, CollectionSettings], where: Path
) -> dict[str, str]:
    """The moves a manifest records (collection -> the folder it leaves), checked as paths
    are: no move ever names a folder outside the root."""
    found = manifest.get(records.MOVES, {})
    try:
        if not isinstance(found, dict) or not found.keys() <= settings.keys():
            raise ConfigError("it must map collections the file keeps to folders")
        for name, old in found.items():
            if not isinstance(old, str):
                raise ConfigError(f"collection {name!r}: {old!r} is no folder")
            check_collection(name, CollectionSettings(path=old))
    except ConfigError as error:
        raise CorruptData(f"{where}: '{records.MOVES}': {error}; fix the file by hand") from None
    return found


def check_move(root_fd: int, root: Path, name: str, old: str, new: str) -> None:
    """Refuse a move of a collection's folder that a rename cannot make: into or out of itself,
    or onto a folder that holds anything (``ConfigError``, before anything is written)."""
    if new.startswith(old + "/") or old.startswith(new + "/"):
        raise ConfigError(
            f"collection {name!r} lives in {root / old}, which {root / new} is inside or around: "
            "move it in two steps (to another path first)"
        )
    with _parent_of(root_fd, new, create=False, sync=False) as (parent, last):
        if parent is not None and _occupied(parent, last):
            raise ConfigError(
                f"collection {name!r} would move from {root / old} to {root / new}, which holds "
                "files already: move them away, or give the collection another path"
            )


def move_folder(root_fd: int, root: Path, name: str, old: str, new: str, *, sync: bool) -> bool:
    """Move a collection's folder from ``old`` to ``new`` (relative to the root), or finish a
    move a crash cut short, however far it got: rename ``old`` unless that was done (``new``'s
    parents made first), then sync both parents, so that what is found lasts a power cut.
    Whether it renamed now. Both folders holding records is ``CorruptData``."""
    if old == new:  # (a manifest edited by hand: nothing to move)
        return False
    with (
        _parent_of(root_fd, new, create=True, sync=sync) as (target, new_name),
        _parent_of(root_fd, old, create=False, sync=sync) as (source, old_name),
    ):
        assert target is not None, "made"
        moved = source is not None and holds_records(source, old_name)
        if source is not None and moved:
            if _occupied(target, new_name):
                raise CorruptData(
                    f"{root / old} and {root / new} both hold files of collection {name!r}, which "
                    f"was moving from the first to the second ({root / MANIFEST} says so under "
                    f"'{records.MOVES}'): merge them by hand, or move one away, then open again"
                )
            fsio.rename(source, old_name, target, new_name)
        for folder in (target, source) if sync else ():
            if folder is not None:
                fsio.fsync(folder)
    return moved


@contextmanager
def _parent_of(
    root_fd: int, folder: str, *, create: bool, sync: bool
) -> Iterator[tuple[int | None, str]]:
    """The parent of ``folder`` (relative to the root), opened (``None`` if it is not there
    and not ``create``d), and ``folder``'s last name."""
    parent, _, last = folder.rpartition("/")
    if not parent:
        yield root_fd, last
        return
    try:
        fd = fsio.open_folder(root_fd, parent, create=create, sync=sync)
    except FileNotFoundError:
        yield None, last
        return
    try:
        yield fd, last
    finally:
        fsio.close(fd)


def _occupied(dir_fd: int, name: str) -> bool:
    """Whether ``name`` is there and is not an empty folder (a rename cannot replace it)."""
    try:
        fd = fsio.open_dir(dir_fd, name, create=False)
    except FileNotFoundError:
        return False
    try:
        return bool(fsio.entries(fd))
    finally:
        fsio.close(fd)


def settings_json(settings: CollectionSettings) -> dict[str, Any]:
    """A collection's settings as the manifest keeps them."""
    return {"indexed": list(settings.indexed), "wal": settings.wal, "path": settings.path}


def stored_settings(manifest: Mapping[str, Any], where: Path) -> dict[str, CollectionSettings]:
    """The collection settings a manifest keeps, each checked as given settings are."""
    try:
        return {
            name: check_collection(name, parse_collections({name: stored})[name])
            for name, stored in manifest.get("collections", {}).items()
        }
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}; fix the file by hand") from None


def parse_manifest(data: bytes, where: Path, *, version: int) -> dict[str, Any]:
    """A manifest: its ``format``, ``collections`` (always a dict) and whatever else it
    keeps; refuses a newer format. (Which backend's it is, :func:`check_layout` checked.)"""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise CorruptData(
            f"{where}: malformed JSON at line {error.lineno}, column {error.colno}; fix it"
        ) from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise CorruptData(
            f"{where}: not a hutch manifest (no format version); restore it from a backup"
        )
    number = manifest["format"]
    if type(number) is not int or number < 1:
        raise CorruptData(
            f"{where}: format {number!r} is no format any hutch wrote (they are whole numbers "
            f"from 1; this hutch writes {version}); fix it, or restore the file from a backup"
        )
    if not isinstance(manifest.get("kind", "file"), str):
        raise CorruptData(f"{where}: 'kind' must be a backend's name, not {manifest['kind']!r}")
    if manifest["format"] > version:
        raise UnsupportedFormat(
            f"{where} says format {manifest['format']}, newer than the {version} "
            "this hutch reads; upgrade hutch to open it"
        )
    collections = manifest.setdefault("collections", {})
    if not isinstance(collections, dict):
        raise CorruptData(f"{where}: 'collections' must be an object")
    return manifest


#: What each folder backend keeps at the top of its folder, always: how a folder whose
#: manifest is gone is still told apart.
_MARKERS = (("jsonl", "_commits.jsonl"), ("file", "_wal"))
MANIFEST = "hutch.json"
#: A manifest bigger than this is refused rather than read whole (it holds settings only).
MAX_MANIFEST_BYTES = 1 << 20


def folder_url(kind: str, root: Path) -> str:
    """The URL that opens the folder ``root`` with the backend ``kind``."""
    return f"{kind}://{root.absolute()}"


def check_layout(root_fd: int, root: Path, kind: str) -> None:
    """Refuse, before anything is written, a folder that holds another backend's store:
    the message names the URL that opens it."""
    found = layout(root_fd)
    if found is not None and found != kind:
        raise ConfigError(
            f"{root} holds a {found}:// store, not a {kind}:// one: open it with "
            f"{folder_url(found, root)!r} (a bare path or a URL without its scheme means "
            f"file://), or give {kind}:// another folder"
        )


def layout_at(path: Path) -> str | None:
    """:func:`layout` of the folder ``path`` (``None`` if it cannot be read)."""
    try:
        fd = fsio.open_dir(fsio.AT_CWD, str(path), create=False)
    except OSError:
        return None
    try:
        return layout(fd)
    finally:
        fsio.close(fd)


def layout(root_fd: int) -> str | None:
    """The backend whose store a folder holds, as its manifest (or, without one, its
    layout) says; ``None`` for a folder that holds none (or a manifest that does not say)."""
    try:
        data = fsio.read_file(root_fd, MANIFEST, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        names = {name for name, _ in fsio.entries(root_fd)}
        return next((kind for kind, marker in _MARKERS if marker in names), None)
    except OSError:
        return None  # the backend reads it again and says what is wrong
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    kind = manifest.get("kind", "file") if isinstance(manifest, dict) else None
    return kind if isinstance(kind, str) else None


def manifest_id(manifest: dict[str, Any], where: Path, carried_by: str) -> str:
    """The folder id a manifest keeps, or :class:`~hutch.CorruptData` saying where else it is
    (``carried_by``: the log line that carries it too)."""
    found = manifest.get("id")
    if not isinstance(found, str) or not found:
        raise CorruptData(
            f"{where}: the folder's id ('id') is missing; every log carries it, so restore the "
            f"file from a backup (or copy the id from {carried_by})"
        )
    return found


def missing_manifest(root: Path, kind: str, folder_id: str, version: int) -> CorruptData:
    """The error for a folder whose logs show a store but whose manifest is gone: writing a
    new one would lose the settings it kept, so hutch says how to restore it."""
    manifest: dict[str, Any] = {"format": version, "id": folder_id, "collections": {}}
    if kind != "file":
        manifest["kind"] = kind
    return CorruptData(
        f"{root / MANIFEST} is missing, though the folder holds a {kind}:// store (its logs "
        f"carry the folder id {folder_id}): a new manifest would lose the settings the old "
        "one kept (each collection's path, indexed fields and wal). Restore it from a "
        f"backup; or, to go on without those settings, write {orjson.dumps(manifest).decode()} "
        "into it and open again, giving each collection's settings"
    )


def open_store_root(
    root: Path, held: fsio.Descriptors, *, read_only: bool
) -> tuple[int, OpenStores]:
    """A store's root folder, opened (``held`` owns the descriptor) and claimed for this
    process (a second open of it here is refused); ``held`` is closed if that fails."""
    root_fd = held.own(fsio.open_root(root, read_only=read_only))
    try:
        return root_fd, OpenStores(fsio.stat_of(root_fd), root)
    except BaseException:
        held.close()
        raise
