"""What ``verify`` and ``stats`` of the folder backends (``file://``, ``jsonl://``) share.

Index files are derived data: :func:`index_problems` compares one with the
rows it should list, leaving out the rows a backend says may lag (logged and
not yet written). :func:`case_clashes` finds names that a case-insensitive
file system (macOS, Windows) would make one file. :func:`usage` adds up what a
folder holds, a ``stat`` a file, reading nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from hutch.cells import same_json

from . import fsio, indices

#: How many problems of one kind in one file (or collection) are listed one by one.
LISTED = 10


@attrs.frozen
class IndexFiles:
    """The index files of one collection's folder as a read found them."""

    found: dict[str, bytes | str] = attrs.field(factory=dict)
    """Indexed field -> the file's bytes, or why it could not be read."""
    others: list[str] = attrs.field(factory=list)
    """The names of index files of fields that are not indexed."""
    trouble: str | None = None
    """Why the indices folder itself could not be read."""


def read_index_files(dir_fd: int, path: str, indexed: Mapping[str, dict[str, Any]]) -> IndexFiles:
    """The index files in the folder ``path`` under ``dir_fd`` (temp files left out): those of
    ``indexed`` fields read (field -> ``{row_id: value}``: refused past what an index of
    those rows could hold, see :func:`indices.largest`), the others named."""
    try:
        folder = fsio.open_folder(dir_fd, path, create=False, sync=False)
    except FileNotFoundError:
        return IndexFiles()
    except fsio.NotRegular as error:
        return IndexFiles(trouble=str(error.strerror))
    found: dict[str, bytes | str] = {}
    others: list[str] = []
    try:
        for name, _ in sorted(fsio.entries(folder)):
            if fsio.is_temp(name) or not name.endswith(indices.SUFFIX):
                continue
            field = name.removesuffix(indices.SUFFIX)
            if field not in indexed:
                others.append(name)
                continue
            try:
                found[field] = fsio.read_file(folder, name, limit=indices.largest(indexed[field]))
            except FileNotFoundError:  # removed since the listing: as if never there
                continue
            except (fsio.NotRegular, fsio.TooBig) as error:
                found[field] = str(error.strerror)
    finally:
        fsio.close(folder)
    return IndexFiles(found, others)


def index_problems(
    where: Path,
    data: bytes | str | None,
    expected: Mapping[str, Any],
    lagging: Collection[str],
    fix: str,
) -> list[str]:
    """What is wrong with one index file (at ``where``): ``data`` is its bytes, why it could
    not be read, or ``None`` if it is missing. ``expected`` is ``{row_id: value}`` of every
    row that has the field; rows in ``lagging`` may be listed or not, with any value.

    Its sorted lines come first, then any lines appended since, read in turn (see
    :mod:`.indices`): a row is listed as the last line naming it says.
    """
    if data is None:
        if any(row_id not in lagging for row_id in expected):
            return [f"{where} is missing; {fix}"]
        return []
    if isinstance(data, str):
        return [f"{where} cannot be read: {data}; {fix}"]
    lines = data.splitlines(keepends=True)
    first = next((n for n, line in enumerate(lines) if line.startswith(b"{")), len(lines))
    written: dict[str, Any] = {}  # as the sorted lines list them
    problems: list[str] = []
    for number, line in enumerate(lines[:first], 1):
        pair = _pair(line)
        if pair is None:
            problems.append(f"{where}, line {number}: not a [value, row_id] line; {fix}")
            continue
        value, row_id = pair
        if row_id in written:
            problems.append(f"{where}, line {number}: row {row_id!r} is listed again; {fix}")
        written[row_id] = value
    listed = dict(written)
    for number, line in enumerate(lines[first:], first + 1):
        change = _change(line)
        if change is None:
            problems.append(
                f'{where}, line {number}: not a {{"id": row_id, "value": value}} or '
                f'{{"id": row_id}} line (the only kind after the first of them); {fix}'
            )
        elif change[1]:
            listed[change[0]] = change[1][0]
        else:
            listed.pop(change[0], None)
    wrong = sorted(r for r in listed.keys() & expected.keys() if r not in lagging)
    extra = sorted(r for r in listed.keys() - expected.keys() if r not in lagging)
    missing = sorted(r for r in expected.keys() - listed.keys() if r not in lagging)
    wrong = [r for r in wrong if not same_json(listed[r], expected[r])]
    problems += _listed(
        where,
        wrong,
        lambda r: (
            f"row {r!r} is listed with {_show(listed[r])}, but its field is {_show(expected[r])}"
        ),
        fix,
    )
    problems += _listed(
        where, extra, lambda r: f"row {r!r} is listed, but no such row has the field", fix
    )
    problems += _listed(where, missing, lambda r: f"row {r!r} has the field but is not listed", fix)
    if not problems and b"".join(lines[:first]) != indices.encode(written):
        problems.append(f"{where}: its lines are not in order, or not as hutch writes them; {fix}")
    return problems


def case_clashes(names: Iterable[str]) -> list[list[str]]:
    """The groups of names that differ only in case, each sorted, in order of their first."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)


def clash_problems(what: str, clashes: list[list[str]], fix: str) -> list[str]:
    """One line a group of :func:`case_clashes` (the first few; then how many more)."""
    problems = [
        f"{what} {' and '.join(map(repr, group))} differ only in case: on a case-insensitive "
        f"file system (macOS, Windows) they would be one file; {fix}"
        for group in clashes[:LISTED]
    ]
    if len(clashes) > LISTED:
        problems.append(f"{what}: {len(clashes) - LISTED} more groups differ only in case; {fix}")
    return problems


#: How many folders deep :func:`usage` walks (hutch makes a few levels: a collection's
#: ``path``, its ``indices``; ``_quarantine/<folder>``): a folder below is not entered, only
#: counted. This bounds the descriptors held at once, as the walk holds one a level.
DEEPEST = 32


@attrs.define
class Usage:
    """What a folder holds: how many bytes in how many regular files, and how many folders
    lie too deep to be walked (their files are not counted)."""

    bytes: int = 0
    files: int = 0
    too_deep: int = 0

    def add(self, found: Usage) -> None:
        self.bytes += found.bytes
        self.files += found.files
        self.too_deep += found.too_deep


def usage(dir_fd: int, *, deep: bool = True) -> Usage:
    """The regular files under a folder (``deep``: in its folders too, :data:`DEEPEST` levels
    at most, never through a link), a ``stat`` each; what vanishes meanwhile is left out.

    Walked with a stack of its own, depth first, never by recursion (however deep the
    folders, no ``RecursionError``); a folder's descriptor is held until its last
    subfolder is opened, so no more than one a level is held at once.
    """
    found = Usage()
    waiting: dict[int, int] = {}  # a descriptor this opened -> its subfolders still to open
    stack: list[tuple[int, str | None, int]] = [(dir_fd, None, 0)]  # parent, name, depth
    try:
        while stack:
            parent, name, depth = stack.pop()
            if name is None:
                fd = parent
            else:
                try:
                    fd = fsio.open_dir(parent, name, create=False)  # never through a link
                except (FileNotFoundError, fsio.NotRegular):
                    continue  # gone meanwhile, or a link or a file now
                finally:
                    _let_go(waiting, parent)
                waiting[fd] = 1
            inner = []
            for entry, kind in fsio.entries(fd):
                if kind == "file":
                    info = fsio.info(fd, entry)
                    if info is not None:
                        found.bytes += info.st_size
                        found.files += 1
                elif kind == "dir" and deep:
                    if depth < DEEPEST:
                        inner.append(entry)
                    else:
                        found.too_deep += 1
            if fd in waiting:
                waiting[fd] += len(inner)
            stack.extend((fd, entry, depth + 1) for entry in reversed(inner))
            _let_go(waiting, fd)
    finally:
        for fd in waiting:
            fsio.close(fd)
    return found


def _let_go(waiting: dict[int, int], fd: int) -> None:
    """One user of a descriptor :func:`usage` opened is done with it: closed after the last."""
    if fd in waiting:
        waiting[fd] -= 1
        if not waiting[fd]:
            del waiting[fd]
            fsio.close(fd)


def files_named(dir_fd: int, suffix: str) -> Iterator[tuple[str, int]]:
    """The regular files of a folder whose names end in ``suffix`` (temp files left out),
    with their sizes."""
    for name, kind in fsio.entries(dir_fd):
        if kind == "file" and name.endswith(suffix) and not fsio.is_temp(name):
            entry = fsio.info(dir_fd, name)
            if entry is not None:
                yield name, entry.st_size


def _pair(line: bytes) -> tuple[Any, str] | None:
    try:
        pair = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
        return None
    return pair[0], pair[1]


def _change(line: bytes) -> tuple[str, list[Any]] | None:
    """An appended line: its row id and ``[value]`` (``[]``: the row has the field no more)."""
    try:
        change = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(change, dict) and isinstance(row_id := change.get("id"), str)):
        return None
    if change.keys() == {"id", "value"}:
        return row_id, [change["value"]]
    return (row_id, []) if len(change) == 1 else None


def _show(value: Any) -> str:
    shown = orjson.dumps(value).decode()
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _listed(where: Path, row_ids: list[str], say: Callable[[str], str], fix: str) -> list[str]:
    """One line a row (the first few; then how many more)."""
    problems = [f"{where}: {say(row_id)}; {fix}" for row_id in row_ids[:LISTED]]
    if len(row_ids) > LISTED:
        problems.append(f"{where}: {len(row_ids) - LISTED} more rows like these; {fix}")
    return problems
