"""Upgrading a ``jsonl://`` folder of format 1 to format 2, at open, under the write lock.

Format 1 had no headers; its commit lines were ``[seq, [names]]`` and a line
counted iff its seq was at most the last one in ``_commits.jsonl``. The
upgrade never leaves a folder that does not open, nor one with other data:

1. write every log of format 2 (its header, then one line per live committed
   row or value) and the commit log under temporary names, each synced, then
   sync the folder: until step 2 lasts, the folder is still of format 1, and
   the next open (of either version) removes the temporary files;
2. write the manifest saying format 2 with the folder's new id, and
   ``"upgrading": true``: the commit point;
3. rename each temporary file over its log, sync the folder, and write the
   manifest without ``"upgrading"``. An open that finds ``"upgrading"``
   finishes this step (a rename already done is not done again).

A process of format 1 still holding the folder open would go on with logs that
no longer count, so the upgrade refuses while one does (as far as ``/proc``
shows: processes of other users are invisible unless hutch runs as root). A
process of format 1 that opens the folder afterwards refuses its newer format.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson

from hutch import CorruptData, StorageError
from hutch.backends.file import fsio
from hutch.backends.file.folder import MANIFEST
from hutch.backends.file.links import OPEN_MARK
from hutch.cells import check_exact_numbers

from . import lines, manifest
from .lines import COMMITS, Entry

OLD_LOCK = "hutch.lock"  # what a process of format 1 keeps open
_TEMP = ".upgrade" + fsio.TEMP_SUFFIX


def to_format_2(root_fd: int, root: Path, stored: dict[str, Any], *, sync: bool) -> None:
    """Upgrade the folder of format 1 at ``root`` (see the module docstring)."""
    older = fsio.openers(root_fd, OLD_LOCK) - fsio.flock_holders(root_fd, OPEN_MARK)
    if older:
        raise StorageError(
            f"{root} is a jsonl:// folder of format 1, open in process(es) "
            f"{', '.join(map(str, sorted(older)))} of an older hutch; close them, then open it "
            "again: it is upgraded to format 2 then, and an older hutch cannot open it after that"
        )
    for name, kind in fsio.entries(root_fd):  # what an upgrade a crash cut short left
        if kind == "file" and _target(name) is not None:
            fsio.remove(root_fd, name)
    folder_id = uuid.uuid4().hex
    last, logs = _format_1_logs(root_fd, root)
    files = {
        name: lines.header(folder_id, name, 1) + b"".join(lines.encode(e) for e in entries)
        for name, entries in logs.items()
    }
    counts = {name: (1, len(entries)) for name, entries in logs.items()}
    commit = lines.commit_line(last, counts, last) if last else b""
    files[COMMITS] = lines.header(folder_id, COMMITS, 1) + commit
    for name, data in sorted(files.items()):
        fsio.close(fsio.create_with(root_fd, _temp(name), data, sync=sync))
    if sync:
        fsio.fsync(root_fd)
    data = manifest.encode(folder_id, stored["collections"], upgrading=True)
    fsio.write_atomic(root_fd, MANIFEST, data, sync=sync)
    finish(root_fd, folder_id, stored["collections"], sync=sync)


def finish(root_fd: int, folder_id: str, collections: dict[str, Any], *, sync: bool) -> None:
    """Step 3: move the logs of format 2 into place, then say the upgrade is done."""
    for name, kind in fsio.entries(root_fd):
        target = _target(name)
        if kind == "file" and target is not None:
            fsio.rename(root_fd, name, root_fd, target)
    if sync:
        fsio.fsync(root_fd)
    data = manifest.encode(folder_id, collections)
    fsio.write_atomic(root_fd, MANIFEST, data, sync=sync)


def _temp(name: str) -> str:
    return f".{name}{_TEMP}"


def _target(name: str) -> str | None:
    """The log (or commit log) whose format 2 the upgrade's temp file ``name`` holds, or
    ``None``: any other file is not the upgrade's."""
    target = name[1 : -len(_TEMP)]
    return target if name == _temp(target) and (target == COMMITS or lines.is_log(target)) else None


def _format_1_logs(root_fd: int, root: Path) -> tuple[int, dict[str, list[Entry]]]:
    """The last commit, and each log's live committed lines, as format 1 counted them."""
    names = [name for name, kind in fsio.entries(root_fd) if lines.is_log(name) or name == COMMITS]
    read = {name: _lines(fsio.read_file(root_fd, name), root / name) for name in names}
    commits = read.pop(COMMITS, [])
    last: int = commits[-1][0] if commits else 0
    logs: dict[str, list[Entry]] = {}
    for name, entries in sorted(read.items()):
        count = next((n for n, entry in enumerate(entries) if entry[0] > last), len(entries))
        check = lines.check_for(name, plain=False)
        for number, entry in enumerate(entries[:count], 1):
            try:
                check(entry)
            except ValueError as error:
                raise CorruptData(
                    f"{root / name}: line {number} is not a line of this log ({error}); fix or "
                    "remove that line, then open the folder again to upgrade it"
                ) from None
        logs[name] = lines.live(entries[:count], name)
    return last, logs


def _lines(data: bytes, where: Path) -> list[Entry]:
    """The lines of a log of format 1 as it read them: a last line without its newline, or
    that does not parse, is a torn tail; a line that does not parse before others is damage."""
    body = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
    found: list[Entry] = []
    for number, line in enumerate(body, 1):
        try:
            check_exact_numbers(line)
            entry = orjson.loads(line)
            if type(entry) is not list or not 2 <= len(entry) <= 3 or type(entry[0]) is not int:
                raise ValueError("not [seq, ...]")
        except ValueError as error:
            if number == len(body):
                break
            raise CorruptData(
                f"{where}: line {number} is not a line of a log of format 1 ({error}); fix or "
                "remove that line, then open the folder again to upgrade it"
            ) from None
        found.append(entry)
    return found
