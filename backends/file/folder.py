"""A data folder's front door, shared by the folder backends (``file://``, ``jsonl://``).

Reading the manifest and checking options and collection settings are the same
for every backend that keeps its store in a folder. For ``file://``, where each
collection has a folder of its own, it also says where those folders may be
(never one inside another) and moves one when a collection's ``path`` changes:
the moving folder bears a mark (:data:`MOVE_MARK`) while the manifest notes the
move, so that the next open, finishing a move a crash cut short, renames only a
folder that proves to be that collection's.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from hutch import CollectionSettings, ConfigError, CorruptData, UnsupportedFormat
from hutch.config import parse_collections
from hutch.persister import OpenStores

from . import fsio, indices, records
from .fsio import file_system_type

#: File systems on which the durability promise does not hold: network ones, and FUSE ones
#: (sync clients, sshfs...), whose fsync is whatever their daemon makes of it.
_NOT_LOCAL = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "davfs", "fuse")

_FIELD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}").fullmatch
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})*").fullmatch
#: The root's own files (hutch.json, hutch.lock, hutch.checkpoint, hutch.open) begin so.
_OWN_FILES = "hutch."
#: The mark of a collection folder's move: ``{"collection": <name>, "from": <old folder>}``,
#: written (synced) into the folder before the manifest notes the move, and removed once the
#: note is dropped (or, left by a crash, at the next writing open).
MOVE_MARK = "hutch.moving"
_MOST_MARK_BYTES = 4096


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
    # (lower-cased: on a case-insensitive file system, HUTCH.JSON is hutch.json)
    if settings.path is not None and settings.path.split("/")[0].lower().startswith(_OWN_FILES):
        raise ConfigError(
            f"collection {name!r}: path {settings.path!r} starts with the name of a file hutch "
            "keeps in the root (hutch.json, hutch.lock...); give it another path"
        )
    parts = settings.path.split("/")[1:] if settings.path is not None else []
    if any(part.lower().endswith(records.RECORD_SUFFIX) for part in parts):
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


def nested_but_for_case(folders: Mapping[str, str]) -> list[tuple[str, str]]:
    """The collections (``folders``: collection -> folder) whose folder lies inside another's
    but for case (``posts`` and ``Posts/archive``, or ``POSTS/indices``): each pair (the
    outer, the inner). A case-insensitive file system would put one inside the other."""
    by_case: dict[str, list[tuple[str, str]]] = {}
    for name, folder in sorted(folders.items()):
        by_case.setdefault(folder.lower(), []).append((name, folder))
    pairs: list[tuple[str, str]] = []
    for name, folder in sorted(folders.items()):
        parts = folder.split("/")
        for end in range(1, len(parts)):
            outer = "/".join(parts[:end])
            pairs += [(o, name) for o, place in by_case.get(outer.lower(), []) if place != outer]
    return pairs


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


def holds_records(root_fd: int, folder: str, *, or_indices: bool = False) -> bool:
    """Whether the folder ``folder`` (relative to the root) is there and holds a record file
    (or anything bearing a record's name; ``or_indices``: or an ``indices`` folder, which a
    collection's folder moves with). A link or file where it belongs is an error."""
    try:
        dir_fd = fsio.open_folder(root_fd, folder, create=False, sync=False)
    except FileNotFoundError:
        return False
    try:
        return any(
            name.endswith(records.RECORD_SUFFIX) or (or_indices and name == indices.FOLDER)
            for name, _ in fsio.entries(dir_fd)
        )
    finally:
        fsio.close(dir_fd)


def pending_moves(
    manifest: Mapping[str, Any], settings: Mapping[str, CollectionSettings], where: Path
) -> dict[str, str]:
    """The moves a manifest records (collection -> the folder it leaves), checked as paths
    are: no move ever names a folder outside the root, nor one that is, holds or lies in
    another collection's folder or the collection's own new one. (Which folder holds the
    collection's records, its mark says: see :func:`move_folder`.)"""
    found = manifest.get(records.MOVES, {})
    try:
        if not isinstance(found, dict) or not found.keys() <= settings.keys():
            raise ConfigError("it must map collections the file keeps to folders")
        for name, old in found.items():
            if not isinstance(old, str):
                raise ConfigError(f"collection {name!r}: {old!r} is no folder")
            check_collection(name, CollectionSettings(path=old))
            for other, other_settings in sorted(settings.items()):
                theirs = folder_of(other, other_settings)
                if _nested(old, theirs) and (other != name or old != theirs):
                    whose = "its own new folder" if other == name else f"collection {other!r}'s"
                    raise ConfigError(
                        f"collection {name!r} cannot be leaving {old!r}: that is, holds or lies "
                        f"in {whose} ({theirs!r})"
                    )
    except ConfigError as error:
        raise CorruptData(f"{where}: '{records.MOVES}': {error}; fix the file by hand") from None
    return found


def _nested(one: str, other: str) -> bool:
    """Whether two folders (relative to the root) are one, or one is inside the other."""
    return one == other or one.startswith(f"{other}/") or other.startswith(f"{one}/")


def check_move(
    root_fd: int, root: Path, name: str, old: str, new: str, fields: Collection[str]
) -> None:
    """Refuse a move of a collection's folder that a rename cannot make: into or out of itself,
    or onto a folder that holds anything but the collection's own index files of ``fields``
    (:func:`_leftover`) (``ConfigError``, before anything is written)."""
    if new.startswith(old + "/") or old.startswith(new + "/"):
        raise ConfigError(
            f"collection {name!r} lives in {root / old}, which {root / new} is inside or around: "
            "move it in two steps (to another path first)"
        )
    with _parent_of(root_fd, new, create=False, sync=False) as (parent, last):
        if parent is not None and _occupied(parent, last) and not _leftover(parent, last, fields):
            raise ConfigError(
                f"collection {name!r} would move from {root / old} to {root / new}, which holds "
                "files already: move them away, or give the collection another path"
            )


def mark_move(root_fd: int, name: str, old: str, *, sync: bool) -> None:
    """Put the mark of collection ``name``'s move into its folder ``old`` (synced, with the
    folder), before the manifest notes the move."""
    mark = orjson.dumps({"collection": name, "from": old}, option=orjson.OPT_APPEND_NEWLINE)
    dir_fd = fsio.open_folder(root_fd, old, create=False, sync=False)
    try:
        fsio.write_atomic(dir_fd, MOVE_MARK, mark, sync=sync)
    finally:
        fsio.close(dir_fd)


def unmark(root_fd: int, folder: str) -> None:
    """Remove the mark of a move from a folder, once the manifest no longer notes the move. (A
    removal a power cut takes back leaves a mark of the collection's own, which the next
    writing open removes.)"""
    try:
        dir_fd = fsio.open_folder(root_fd, folder, create=False, sync=False)
    except FileNotFoundError:  # (a note of no move: the folder may not be there)
        return
    try:
        fsio.remove(dir_fd, MOVE_MARK)
    finally:
        fsio.close(dir_fd)


def _marked(root_fd: int, folder: str, name: str, old: str) -> bool:
    """Whether ``folder`` (relative to the root; never through a link) is there and bears the
    mark of collection ``name``'s move from ``old``."""
    try:
        dir_fd = fsio.open_folder(root_fd, folder, create=False, sync=False)
    except (FileNotFoundError, fsio.NotRegular):
        return False
    try:
        data = fsio.read_file(dir_fd, MOVE_MARK, limit=_MOST_MARK_BYTES)
    except (FileNotFoundError, fsio.NotRegular, fsio.TooBig):
        return False
    finally:
        fsio.close(dir_fd)
    try:
        return bool(orjson.loads(data) == {"collection": name, "from": old})
    except orjson.JSONDecodeError:
        return False


def moved_yet(root_fd: int, root: Path, name: str, old: str, new: str) -> bool:
    """Where the folder of a collection whose move a crash cut short is, as its mark says:
    still ``old`` (``False``), or renamed to ``new`` (``True``). A note whose folders bear no
    mark of that move may name any folder (a hand edit, a manifest from another day):
    ``CorruptData``, and nothing is moved."""
    if _marked(root_fd, old, name, old):
        return False
    if _marked(root_fd, new, name, old):
        return True
    raise CorruptData(
        f"{root / MANIFEST} says collection {name!r} is moving from {root / old} to "
        f"{root / new} ('{records.MOVES}'), but neither folder bears the mark hutch puts into a "
        f"moving folder ({MOVE_MARK}), so the note may name another collection's folder (a "
        f"hand edit, or a manifest from another day): fix the file by hand — remove "
        f"'{records.MOVES}', and give {name!r} the path of the folder that holds its records"
    )


def move_folder(
    root_fd: int, root: Path, name: str, old: str, new: str, *, fields: Collection[str], sync: bool
) -> bool:
    """Move a collection's folder from ``old`` to ``new`` (relative to the root), or finish a
    move a crash cut short, however far it got: rename ``old`` unless that was done (as its
    mark says, :func:`moved_yet`; ``new``'s parents made first, and the collection's own
    index files of ``fields`` that a folder there holds alone removed), then sync both
    parents, so that what is found lasts a power cut. Whether it renamed now. A folder at
    ``new`` that holds anything else is ``CorruptData``."""
    if old == new:  # (a manifest edited by hand: nothing to move)
        return False
    rename = not moved_yet(root_fd, root, name, old, new)
    with (
        _parent_of(root_fd, new, create=True, sync=sync) as (target, new_name),
        _parent_of(root_fd, old, create=False, sync=sync) as (source, old_name),
    ):
        assert target is not None, "made"
        if rename:
            assert source is not None, "marked"
            if _occupied(target, new_name):
                if not _leftover(target, new_name, fields):
                    raise CorruptData(
                        f"{root / old} and {root / new} both hold files of collection {name!r}, "
                        f"which was moving from the first to the second ({root / MANIFEST} says "
                        f"so under '{records.MOVES}'): merge them by hand, or move one away, "
                        "then open again"
                    )
                _clear_leftover(target, new_name)
            fsio.rename(source, old_name, target, new_name)
        for folder in (target, source) if sync else ():
            if folder is not None:
                fsio.fsync(folder)
    return rename


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


def _leftover(dir_fd: int, name: str, fields: Collection[str]) -> bool:
    """Whether the folder ``name`` holds nothing but an ``indices`` folder of index files of
    ``fields`` (and temp files): what a collection's folder keeps once its last record is
    gone, left behind by a hutch that moved no folder without records. Derived from no
    record, they may go."""
    try:
        fd = fsio.open_dir(dir_fd, name, create=False)
    except (FileNotFoundError, fsio.NotRegular):
        return False
    try:
        if fsio.entries(fd) != [(indices.FOLDER, "dir")]:
            return False
        inner = fsio.open_dir(fd, indices.FOLDER, create=False)
    finally:
        fsio.close(fd)
    try:
        ours = {indices.file_name(field) for field in fields}
        return all(
            kind == "file" and (entry in ours or fsio.is_temp(entry))
            for entry, kind in fsio.entries(inner)
        )
    finally:
        fsio.close(inner)


def _clear_leftover(dir_fd: int, name: str) -> None:
    """Remove what :func:`_leftover` found in the folder ``name``, leaving it empty (so that a
    rename may replace it)."""
    fd = fsio.open_dir(dir_fd, name, create=False)
    try:
        inner = fsio.open_dir(fd, indices.FOLDER, create=False)
        try:
            for entry, _ in fsio.entries(inner):
                fsio.remove(inner, entry)
        finally:
            fsio.close(inner)
        fsio.remove_folder(fd, indices.FOLDER)
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
    keeps; refuses a newer format, and a hand edit that repeats a key (which a JSON reader
    would drop without a word). (Which backend's it is, :func:`check_layout` checked.)"""
    try:
        manifest, as_written = records.read_json(data)
        if not as_written and (why := records.unholdable(manifest)) is not None:
            raise CorruptData(f"{where}: {why}; fix it")
    except json.JSONDecodeError as error:
        raise CorruptData(
            f"{where}: malformed JSON at line {error.lineno}, column {error.colno}; fix it"
        ) from None
    except ValueError as error:
        raise CorruptData(f"{where}: {error}; fix it") from None
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
