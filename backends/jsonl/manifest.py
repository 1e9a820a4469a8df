"""``hutch.json`` of a ``jsonl://`` folder: format, kind, the folder's id, collection settings.

The id is in the header of every log too, so a log copied in from another folder
is told apart, and a folder whose manifest was lost finds its id again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hutch import CorruptData
from hutch.backends.file import fsio
from hutch.backends.file.folder import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    manifest_id,
    missing_manifest,
    parse_manifest,
)

from . import lines

#: 1: logs without headers, a line counted by its seq (upgraded at open); 2: now.
FORMAT_VERSION = 2
KIND = "jsonl"
_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def read(root_fd: int, root: Path) -> dict[str, Any] | None:
    """The manifest (of any format up to this one's), or ``None`` if there is none."""
    try:
        data = fsio.read_file(root_fd, MANIFEST, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        return None
    return parse_manifest(data, root / MANIFEST, version=FORMAT_VERSION)


def encode(folder_id: str, collections: dict[str, Any], *, upgrading: bool = False) -> bytes:
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "kind": KIND,
        "id": folder_id,
        "collections": collections,
    }
    if upgrading:
        manifest["upgrading"] = True
    return orjson.dumps(manifest, option=_PRETTY)


def folder_id(root_fd: int, root: Path, manifest: dict[str, Any] | None) -> str | None:
    """The id of the folder: the manifest's; ``None`` for a new folder. A folder whose logs'
    headers carry an id but that has no manifest is refused: its settings are lost."""
    if manifest is not None:
        return manifest_id(manifest, root / MANIFEST, f"the first line of {lines.COMMITS}")
    ids = set()
    for name, kind in fsio.entries(root_fd):
        if kind == "file" and (name == lines.COMMITS or lines.is_log(name)):
            header = lines.read_header(fsio.read_head(root_fd, name, lines.HEAD))
            if header is not None:
                ids.add(header[0].folder)
    if len(ids) > 1:
        raise CorruptData(
            f"{root / MANIFEST} is missing, and the logs in {root} carry the ids of several "
            f"folders ({', '.join(sorted(ids))}); restore {MANIFEST} from a backup"
        )
    if ids:
        raise missing_manifest(root, KIND, ids.pop(), FORMAT_VERSION)
    return None
