"""Fuzz targets for every loader of on-disk data: each takes a mutated file, or refuses it.

Anyone who can write a data folder can edit, tear or plant any file in it, and
hutch reads them all back (docs/file-format.md, docs/jsonl-format.md, "Damage").
So for every loader, on every mutation of a real folder's files: loading either
succeeds or raises a :class:`hutch.HutchError` (never a bare ``ValueError``,
``KeyError``, ``RecursionError``...); opening a whole store changes nothing
outside its folder; and a folder that opens takes a commit and opens again with
it (what hutch accepts, it can go on with, and it never writes what it then
refuses). The seeds are folders hutch writes here, closed and as a
killed process leaves them (log not yet checkpointed), and the format-1 folders
of ``tests/data``, which an open upgrades. See :mod:`fuzzing` for the mutations
and for ``HUTCH_FUZZ_SECONDS`` / ``HUTCH_FUZZ_SEED`` / ``HUTCH_FUZZ_ITERATION``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fuzzing import SECONDS, Findings, Shape, iterations, listing, mutate, split_lines

import hutch
import hutch.backends.file
import hutch.backends.jsonl
from hutch.backends.file import FilePersister, indices, records, wal
from hutch.backends.file.folder import parse_manifest
from hutch.backends.jsonl import lines
from hutch.cells import plain_json

FIXTURES = Path(__file__).parent / "data"
COLLECTIONS: dict[str, Any] = {
    "posts": {"indexed": ["author"]},
    "notes": {"indexed": ["tag"], "wal": False},
    "people": {"indexed": ["email"], "path": "crew/people"},
}
BACKENDS: dict[str, ModuleType] = {"file": hutch.backends.file, "jsonl": hutch.backends.jsonl}
FUZZED = {"by": "the fuzzer"}  # the row each whole-store target commits
#: File names the format docs give (docs/file-format.md, docs/jsonl-format.md).
MANIFEST, VALUES, COMMITS, INDICES = "hutch.json", "_values.json", "_commits.jsonl", "indices"
Seeds = dict[str, list[Path]]

#: A longer run (``HUTCH_FUZZ_SECONDS``) is not cut short by the suite's timeout.
pytestmark = pytest.mark.timeout(300 + 2 * SECONDS)


@pytest.fixture(autouse=True)
def _only_the_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    """No installed plugin's models join in (each open names its backend as a plugin)."""
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """Folders of each backend: closed, as a killed process leaves one, and of format 1."""
    top = tmp_path_factory.mktemp("seeds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
        _write(top / "file", top / "file-killed", checkpoint_interval=3600)
        _write(top / "jsonl", top / "jsonl-killed", compact_lines=6)
    return {
        "file": [top / "file", top / "file-killed", FIXTURES / "file_format_1"],
        "jsonl": [top / "jsonl", top / "jsonl-killed", FIXTURES / "jsonl_format_1"],
    }


def _write(root: Path, killed: Path, **options: Any) -> None:
    """A workload of nested rows, keyed values, deletes and an indexed field over three
    collections (one ``"wal": false``, one with a ``path``); ``killed`` is a copy of the
    folder taken while it is open, with the last commits in the log only."""
    scheme = root.name
    url = f"{scheme}://{root}"
    with hutch.open(url, plugins=[BACKENDS[scheme]], collections=COLLECTIONS, **options) as db:
        store = db.store
        for n in range(6):
            row = {"author": f"a{n % 3}", "tags": ["x", {"n": n}], "meta": {"deep": [[n], {}]}}
            store.set_row("posts", f"p{n}", {**row, "score": n / 3})
        with store.transaction():
            store.set_row("people", "ada", {"email": "ada@example.org", "born": 1815})
            store.set_row("notes", "n1", {"tag": "t", "text": 'é\n"quoted"'})
            store.set_value("config", {"limits": [1, 2**62], "on": True})
        store.set_value("gone", "soon")
        store.del_row("posts", "p1")
        store.del_value("gone")
        store.set_cell("posts", "p2", "author", None)
        if isinstance(db.backend, FilePersister):
            db.backend.checkpoint()  # the log goes on in a second generation
        store.set_row("notes", "n2", {"tag": None, "big": -(2**63)})
        store.set_row("people", "bob", {"email": "bob@example.org", "friends": ["ada"]})
        store.del_row("posts", "p3")
        store.set_value("count", 3)
        shutil.copytree(root, killed)


def _files(seeds: list[Path], pick: Callable[[Path], list[Path]]) -> list[Path]:
    return [path for seed in seeds for path in pick(seed)]


def _records(root: Path) -> list[Path]:
    """Record files and the keyed values of a ``file://`` folder."""
    return [p for p in root.rglob("*.json") if p.name != MANIFEST and "_wal" not in p.parts]


def _generations(root: Path) -> list[Path]:
    return sorted((root / "_wal").glob("*.log"))


def _manifests(root: Path) -> list[Path]:
    return [root / MANIFEST]


def _logs(root: Path) -> list[Path]:
    return sorted(root.glob("*.jsonl"))


def _indices(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.jsonl") if INDICES in p.parts)


# -- the loaders, one call each ----------------------------------------------------------------

#: File names a record might be found under: none of them may name a row, or a path.
HOSTILE_NAMES = [
    "../x.json",
    ".json",
    ".hidden.json",
    "a\x00.json",
    "\ud800.json",
    "a/b.json",
    "é.json",
    "a" * 200 + ".json",
]


def test_record_files_decode_or_refuse(seeds: Seeds) -> None:
    """``decode_record`` takes a record or raises ``CorruptData``, whatever its bytes and its
    file name; ``decode_values`` raises a ``ValueError`` (its contract: the persister turns it
    into ``CorruptData``, or quarantines the file)."""
    paths = _files(seeds["file"], _records)
    donors = [path.read_bytes() for path in paths]
    findings = Findings("record files")
    for iteration, rng in iterations(findings.target):
        path = rng.choice(paths)
        data = mutate(rng, path.read_bytes(), "json", donors)
        if path.name == VALUES:
            findings.run(
                iteration, {path.name: data}, partial(records.decode_values, data), (ValueError,)
            )
            continue
        name = path.name if rng.random() < 0.8 else rng.choice(HOSTILE_NAMES)
        call = partial(records.decode_record, path.parent.name, name, data, path.parent)
        findings.run(iteration, {name: data}, call, (hutch.HutchError,))
    findings.check()


def test_wal_generations_read_or_refuse(seeds: Seeds) -> None:
    """The write-ahead log's readers take a line or pass it over as bad, whatever the bytes
    (most mutated lines carry a right checksum, so their content is what gets checked)."""
    donors = [path.read_bytes() for path in _files(seeds["file"], _generations)]
    findings = Findings("wal generations")
    for iteration, rng in iterations(findings.target):
        data = mutate(rng, rng.choice(donors), "wal", donors)
        findings.run(
            iteration,
            {"_wal/00000001.log": data},
            partial(_read_generation, data),
            (hutch.HutchError,),
        )
    findings.check()


def _read_generation(data: bytes) -> None:
    """What recovery reads of a generation: its header, its checkpoint marks, its transactions
    up to the first bad line and whether a later line proves a torn one durable, its end.
    ``wal.Damaged`` is a line that checks but is no transaction hutch writes: recovery
    refuses it (``CorruptData``) or quarantines the generation."""
    header, start = wal.read_header(data)
    with contextlib.suppress(wal.Damaged):
        wal.checkpoint_marks(data, start, header.generation if header else 1)
    seq, end = None, start
    with contextlib.suppress(wal.Damaged):
        for entry in wal.entries(data, start, None):
            if entry is None:
                wal.proves_durable(data, end, None if seq is None else seq + 1)
                break
            seq, end = entry.seq, entry.end
    for line in split_lines(data):
        wal.following(line)


def test_manifests_parse_or_refuse(seeds: Seeds) -> None:
    """``parse_manifest`` (both folder backends) gives a manifest whose ``collections`` is a
    dict, or raises."""
    paths = _files(seeds["file"] + seeds["jsonl"], _manifests)
    donors = [path.read_bytes() for path in paths]
    findings = Findings("manifests")
    for iteration, rng in iterations(findings.target):
        data = mutate(rng, rng.choice(donors), "json", donors)
        call = partial(_parse_manifest, data)
        findings.run(iteration, {MANIFEST: data}, call, (hutch.HutchError,))
    findings.check()


def _parse_manifest(data: bytes) -> None:
    manifest = parse_manifest(data, Path(MANIFEST), version=records.FORMAT_VERSION)
    assert isinstance(manifest["collections"], dict), manifest


def test_jsonl_logs_read_or_refuse(seeds: Seeds) -> None:
    """A jsonl log's readers take each line or report the first bad one, whatever the bytes;
    and the shortcut for rows that need no check (``plain_json``) takes exactly the lines
    the full check takes."""
    paths = _files(seeds["jsonl"], _logs)
    donors = [path.read_bytes() for path in paths]
    findings = Findings("jsonl logs")
    for iteration, rng in iterations(findings.target):
        path = rng.choice(paths)
        data = mutate(rng, path.read_bytes(), "jsonl", donors)
        count = rng.randint(0, data.count(b"\n") + 2)
        call = partial(_read_log, path.name, data, count, rng.choice((None, 1)))
        findings.run(iteration, {path.name: data}, call, (hutch.HutchError,))
    findings.check()


def _read_log(name: str, data: bytes, count: int, expected: int | None) -> None:
    """What catching up reads of a log: its header, then its first ``count`` lines (or, of
    the commit log, every line, the first of which must be commit ``expected``)."""
    found = lines.read_header(data)
    lines.torn_header(data, "0" * 32, name)
    body = data[found[1] :] if found else data
    if name == COMMITS:
        lines.read_commits(body, expected)
        return
    shortcut, checked = (
        lines.read_lines(body, count, lines.check_for(name, plain=plain))
        for plain in (plain_json(body), False)
    )
    assert (shortcut.entries, shortcut.bad is None) == (checked.entries, checked.bad is None)
    lines.live(checked.entries, name)


def test_index_files_match_or_refuse(seeds: Seeds) -> None:
    """``indices.matches`` (read by both folder backends at open) says yes or no, whatever
    the bytes of the index file."""
    paths = _files(seeds["file"] + seeds["jsonl"], _indices)
    donors = [path.read_bytes() for path in paths]
    findings = Findings("index files")
    for iteration, rng in iterations(findings.target):
        path = rng.choice(paths)
        original = path.read_bytes()
        truth = indices.listed(original)  # (sorted lines, and lines appended since)
        assert truth is not None, path
        data = mutate(rng, original, "jsonl", donors)
        call = partial(_matches, data, truth)
        findings.run(iteration, {path.name: data}, call, (hutch.HutchError,))
    findings.check()


def _matches(data: bytes, truth: dict[str, Any]) -> None:
    assert isinstance(indices.matches(data, truth), bool)


# -- whole stores --------------------------------------------------------------------------------

#: target -> the backend, which of a folder's files it mutates, and their shape.
STORES: dict[str, tuple[str, Callable[[Path], list[Path]], Shape]] = {
    "file records": ("file", _records, "json"),
    "file wal": ("file", _generations, "wal"),
    "file manifest": ("file", _manifests, "json"),
    "file indices": ("file", _indices, "jsonl"),
    "jsonl logs": ("jsonl", _logs, "jsonl"),
    "jsonl manifest": ("jsonl", _manifests, "json"),
    "jsonl indices": ("jsonl", _indices, "jsonl"),
}


@pytest.mark.parametrize("target", list(STORES))
def test_stores_open_or_refuse(target: str, seeds: Seeds, tmp_path: Path) -> None:
    """A folder with one or two mutated (or deleted) files opens, is read whole, takes a
    commit and opens again with it, or the first ``hutch.open`` raises a ``HutchError``
    (``file://`` also with ``on_corrupt="quarantine"``); either way nothing outside the folder
    changes. A copy of a store lies beside it as bait for a path that climbs out."""
    scheme, pick, shape = STORES[target]
    folders = seeds[scheme]
    donors = [path.read_bytes() for path in _files(folders, pick)]
    shutil.copytree(folders[0], tmp_path / "outside")
    root = tmp_path / "case" / "data"
    url = f"{scheme}://{root}"
    modes: list[dict[str, Any]] = [{}, {"on_corrupt": "quarantine"}] if scheme == "file" else [{}]
    findings = Findings(target)
    for iteration, rng in iterations(target):
        seed = rng.choice(folders)
        files = pick(seed)
        chosen = rng.sample(files, min(len(files), rng.choice((1, 1, 1, 2))))
        mutated = {
            path.relative_to(seed): None
            if rng.random() < 0.05
            else mutate(rng, path.read_bytes(), shape, donors)
            for path in chosen
        }
        shown = {
            f"{seed.name}/{name}": b"(deleted)" if data is None else data
            for name, data in mutated.items()
        }
        for options in modes:
            _lay_out(seed, root, mutated)
            before = listing(tmp_path, skip=root)
            call = partial(_open_and_use, url, BACKENDS[scheme], options)
            findings.run(iteration, shown, call, ())
            after = listing(tmp_path, skip=root)
            if after != before:
                changed = sorted(
                    k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
                )
                findings.note(
                    "a change outside the data folder", iteration, shown, f"changed: {changed}"
                )
        shutil.rmtree(root.parent)
    findings.check()


def _lay_out(seed: Path, root: Path, mutated: dict[Path, bytes | None]) -> None:
    """``root`` as a copy of ``seed`` with the mutated files (``None``: deleted)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(seed, root, symlinks=True)
    for name, data in mutated.items():
        if data is None:
            (root / name).unlink()
        else:
            (root / name).write_bytes(data)


def _open_and_use(url: str, backend: ModuleType, options: dict[str, Any]) -> None:
    """Open; if the folder is taken, read every row and value, commit a row (appending where
    recovery left the log) and close: then it must open again with that row. Refusing the
    folder at the first open is the only failure a loader may have."""
    try:
        db = hutch.open(url, plugins=[backend], **options)
    except hutch.HutchError:
        return
    try:
        with db:
            store = db.store
            for table in store.get_table_ids():
                for row_id in store.get_row_ids(table):
                    store.get_row(table, row_id)
            store.get_values()
            store.set_row("posts", "fuzzed", FUZZED)
        with hutch.open(url, plugins=[backend], **options) as again:
            assert again.store.get_row("posts", "fuzzed") == FUZZED, "the commit is lost"
    except hutch.HutchError as error:
        raise AssertionError(f"the folder opened, then: {error}") from error
