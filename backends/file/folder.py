"""A data folder's front door, shared by the folder backends (``file://``, ``jsonl://``).

Reading the manifest and checking options and collection settings are the same
for every backend that keeps its store in a folder.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from hutch import CollectionSettings, ConfigError, CorruptData, UnsupportedFormat

from .fsio import file_system_type

#: File systems on which the durability promise does not hold: network ones, and FUSE ones
#: (sync clients, sshfs...), whose fsync is whatever their daemon makes of it.
_NOT_LOCAL = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "davfs", "fuse")

_FIELD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}").fullmatch
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})*").fullmatch


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
    """The option ``name`` (a positive number, ``unit`` said in the error), or ``default``."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number{unit}, not {value!r}")
    return float(value)


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
    return settings


def settings_json(settings: CollectionSettings) -> dict[str, Any]:
    """A collection's settings as the manifest keeps them."""
    return {"indexed": list(settings.indexed), "wal": settings.wal, "path": settings.path}


def parse_manifest(
    data: bytes, where: Path, *, version: int, kind: str | None = None
) -> dict[str, Any]:
    """A manifest: its ``format``, ``collections`` (always a dict) and whatever else it
    keeps; refuses a newer format (and, given ``kind``, a folder of another backend)."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise CorruptData(
            f"{where}: malformed JSON at line {error.lineno}, column {error.colno}; fix it"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise CorruptData(f"{where}: not a hutch manifest (no format version)")
    found = manifest.get("kind", "file")
    if kind is not None and found != kind:
        raise ConfigError(
            f"{where}: this folder holds a {found}:// store, not a {kind}:// one; open it with "
            f"{found}:// or give {kind}:// another folder"
        )
    if manifest["format"] > version:
        raise UnsupportedFormat(
            f"{where} says format {manifest['format']}, newer than the {version} "
            "this hutch reads; upgrade hutch to open it"
        )
    collections = manifest.setdefault("collections", {})
    if not isinstance(collections, dict):
        raise CorruptData(f"{where}: 'collections' must be an object")
    return manifest
