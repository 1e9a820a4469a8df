"""Mutated copies of the files hutch reads back, for the fuzz targets of test_fuzz_loaders.py.

Every file hutch reads may have been edited, torn or planted by anyone who can
write the folder, so a loader must either take it or refuse it with a
:class:`hutch.HutchError`. A target runs a fixed number of iterations by
default; ``HUTCH_FUZZ_SECONDS=<n>`` runs each target for ``n`` seconds instead,
``HUTCH_FUZZ_SEED`` changes the seed, and ``HUTCH_FUZZ_ITERATION=<i>`` runs only
iteration ``i`` (each iteration draws from its own generator, made from the
seed, the target and its number, so a failure replays without the ones before).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

#: ``json``: one document (records, values, manifests); ``jsonl``: one per line (jsonl logs,
#: index files); ``wal``: ``<crc32> <json>`` lines (the write-ahead log of ``file://``).
Shape = Literal["json", "jsonl", "wal"]

SEED = os.environ.get("HUTCH_FUZZ_SEED", "0")
SECONDS = float(os.environ.get("HUTCH_FUZZ_SECONDS", "0"))
ONLY = os.environ.get("HUTCH_FUZZ_ITERATION")
#: Iterations per target without a time budget: enough to keep every mutation honest in
#: ``make test``, short enough for it.
ITERATIONS = 40

#: JSON strings that must never become a path or an id: climbing out, empty, a NUL, ``id``
#: spelt with an escape, a lone surrogate, a separator, too long, a file of the folder.
HOSTILE_STRINGS = [
    '"../x"',
    '"../../outside/posts"',
    '""',
    '"\\u0000"',
    '"i\\u0064"',
    '"id"',
    '"."',
    '".."',
    '"a/b"',
    '"\\u002e\\u002e/x"',
    '"\\ud800"',
    '"_values"',
    '"00000001.log"',
    '"hutch.json"',
    '"posts/indices"',
    '"-x"',
    '"é"',
    '"' + "a" * 200 + '"',
]
#: JSON values of every wrong kind and size: deep nesting, numbers past 64 bits, tokens that
#: are not JSON at all (NaN), counts one off or out of range.
HOSTILE_VALUES = [
    "[" * 300 + "]" * 300,
    '{"a":' * 300 + "1" + "}" * 300,
    "[" * 3000 + "]" * 3000,
    "1" + "0" * 30,
    "-" + "9" * 25,
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775808",
    "9223372036854775807",
    "-9223372036854775809",
    "1e400",
    "NaN",
    "Infinity",
    "-1",
    "0",
    "1",
    "2",
    "0.5",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "[1,2]",
    '{"id":"x"}',
    '{"":1}',
    '"s"',
]
_INTERESTING_BYTES = b'\x00\xff\n\r"\\{}[],:0 9-e\x80\xc3'
_PLACEHOLDER = "\x00fuzz\x00"


def iterations(target: str) -> Iterator[tuple[int, random.Random]]:
    """Each iteration's number and its own random generator."""
    if ONLY is not None:
        yield int(ONLY), _generator(target, int(ONLY))
        return
    deadline = time.monotonic() + SECONDS
    for iteration in itertools.count():
        if time.monotonic() >= deadline if SECONDS > 0 else iteration >= ITERATIONS:
            return
        yield iteration, _generator(target, iteration)


def _generator(target: str, iteration: int) -> random.Random:
    return random.Random(f"{SEED}/{target}/{iteration}")


# -- mutations ---------------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes, shape: Shape, donors: list[bytes]) -> bytes:
    """``data`` after one to three mutations; ``donors`` are files of the same kind, whose
    lines may be spliced in. A ``wal`` file's checksums are mostly made right again, so the
    mutated lines get past them to the checks of their content."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutation = rng.choices((_structured, _lines, _bytes), weights=(45, 25, 30))[0]
        data = mutation(rng, data, shape, donors)
    if shape == "wal" and rng.random() < 0.5:
        data = _rechecksum(data)
    return data


def _structured(rng: random.Random, data: bytes, shape: Shape, donors: list[bytes]) -> bytes:
    """Replace (or drop) one value or key of the document, or of one line, with a hostile one."""
    if shape == "json":
        return _mutate_document(rng, data) or _bytes(rng, data, shape, donors)
    lines = data.split(b"\n")
    candidates = [index for index, line in enumerate(lines) if line]
    if not candidates:
        return _bytes(rng, data, shape, donors)
    index = rng.choice(candidates)
    payload = lines[index][9:] if shape == "wal" else lines[index]
    mutated = _mutate_document(rng, payload)
    if mutated is None:
        return _bytes(rng, data, shape, donors)
    lines[index] = _checksummed(mutated) if shape == "wal" else mutated
    return b"\n".join(lines)


def _mutate_document(rng: random.Random, text: bytes) -> bytes | None:
    try:
        holder = [json.loads(text)]
    except (ValueError, RecursionError):
        return None
    slots: list[tuple[Any, Any, bool]] = []  # container, key or index, whether the key itself
    pending: list[Any] = [holder]
    while pending:
        container = pending.pop()
        keys = range(len(container)) if isinstance(container, list) else list(container)
        for key in keys:
            slots.append((container, key, False))
            if isinstance(container, dict):
                slots.append((container, key, True))
            if isinstance(container[key], list | dict):
                pending.append(container[key])
    container, key, is_key = rng.choice(slots)
    if container is not holder and rng.random() < 0.15:  # a field or item missing
        del container[key]
        fragment = None
    elif is_key:
        container[_PLACEHOLDER] = container.pop(key)
        fragment = rng.choice(HOSTILE_STRINGS)
    else:
        value = container[key]
        container[key] = _PLACEHOLDER
        if type(value) is int and rng.random() < 0.5:  # a count one off, or at a limit
            fragment = str(rng.choice((value - 1, value + 1, value + 2, -1, 0, 2**63 - 1)))
        else:
            fragment = rng.choice(HOSTILE_STRINGS + HOSTILE_VALUES)
    try:
        text_out = json.dumps(holder[0], ensure_ascii=False)
    except RecursionError:
        return None
    if fragment is not None:
        text_out = text_out.replace(json.dumps(_PLACEHOLDER, ensure_ascii=False), fragment, 1)
    return text_out.encode("utf-8", "surrogatepass")


def _lines(rng: random.Random, data: bytes, shape: Shape, donors: list[bytes]) -> bytes:
    """Duplicate, drop or swap whole lines, or splice in a line of another file."""
    lines = split_lines(data)
    if not lines:
        return _bytes(rng, data, shape, donors)
    index = rng.randrange(len(lines))
    action = rng.randrange(4)
    if action == 0:
        lines.insert(rng.randrange(len(lines) + 1), lines[index])
    elif action == 1:
        del lines[index]
    elif action == 2:
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    else:
        donor = split_lines(rng.choice(donors))
        if donor:
            lines.insert(index + rng.randrange(2), rng.choice(donor))
    return b"".join(lines)


def _bytes(rng: random.Random, data: bytes, shape: Shape, donors: list[bytes]) -> bytes:
    """Flip a bit, set a byte, cut the file short, insert, delete or zero a few bytes."""
    if not data:
        return bytes(rng.choice(_INTERESTING_BYTES) for _ in range(rng.randint(1, 8)))
    at = rng.randrange(len(data))
    span = rng.randint(1, 16)
    action = rng.randrange(6)
    if action == 0:
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    if action == 1:
        return data[:at] + bytes([rng.choice(_INTERESTING_BYTES)]) + data[at + 1 :]
    if action == 2:
        return data[:at]
    if action == 3:
        noise = bytes(rng.choice((rng.randrange(256), *_INTERESTING_BYTES)) for _ in range(span))
        return data[:at] + noise + data[at:]
    if action == 4:
        return data[:at] + data[at + span :]
    return data[:at] + b"\0" * span + data[at + span :]


def split_lines(data: bytes) -> list[bytes]:
    """The lines of ``data``, each with its newline (the last one may lack it)."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _checksummed(payload: bytes) -> bytes:
    return b"%08x %s" % (zlib.crc32(payload), payload)


def _rechecksum(data: bytes) -> bytes:
    """Every line that looks like ``<8 hex digits> <payload>`` with its checksum made right."""
    return b"\n".join(
        _checksummed(line[9:]) if len(line) > 9 and line[8:9] == b" " else line
        for line in data.split(b"\n")
    )


# -- checking ----------------------------------------------------------------------------------


def listing(top: Path, skip: Path) -> dict[str, str | bytes]:
    """Everything under ``top`` but ``skip``: each path, and a file's bytes or what a link
    points to, so a change anywhere outside the data folder shows."""
    found: dict[str, str | bytes] = {}
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = [name for name in dirs if here / name != skip]
        for name in dirs + files:
            path = here / name
            key = str(path.relative_to(top))
            if path.is_symlink():
                found[key] = f"link to {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = path.read_bytes()
    return found


def _ours(file_name: str) -> bool:
    """Whether a traceback frame is hutch's own code (where a failure is to be fixed)."""
    return "/backends/" in file_name or "/core/" in file_name


def shown(data: bytes, limit: int = 600) -> str:
    """The start of a file's content, for a failure message."""
    more = f" ... ({len(data)} bytes in all)" if len(data) > limit else ""
    return repr(data[:limit]) + more


class Findings:
    """The distinct failures of one target, the first example of each: a long run goes on past
    the first failure, so that it reports every bug it meets, not only the most common one."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.found: dict[str, str] = {}

    def run(
        self,
        iteration: int,
        files: Mapping[str, bytes],
        call: Callable[[], object],
        allowed: tuple[type[BaseException], ...],
    ) -> None:
        """Call ``call``; note an exception that is not one of ``allowed``."""
        try:
            call()
        except allowed:
            pass
        except Exception as error:  # anything else is what the fuzzing looks for
            cause = error.__cause__ or error  # where a wrapped failure came from
            frames = traceback.extract_tb(cause.__traceback__)
            inner = next((f for f in reversed(frames) if _ours(f.filename)), frames[-1])
            place = Path(inner.filename)
            where = f"{place.parent.name}/{place.name}:{inner.lineno} ({inner.name})"
            detail = "".join(traceback.format_exception(cause)[-6:])
            self.note(
                f"{type(error).__name__} at {where}",
                iteration,
                files,
                f"raised {type(error).__name__}: {str(error)[:300]}\n{detail}",
            )

    def note(self, kind: str, iteration: int, files: Mapping[str, bytes], problem: str) -> None:
        """Keep the first example of each kind of failure."""
        if kind in self.found:
            return
        contents = "\n".join(f"  {name}: {shown(data)}" for name, data in files.items())
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        self.found[kind] = (
            f"[{self.target}] {kind}\n  replay: HUTCH_FUZZ_SEED={SEED} "
            f"HUTCH_FUZZ_ITERATION={iteration} pytest '{test}'\n  files:\n{contents}\n  {problem}"
        )

    def check(self) -> None:
        assert not self.found, f"{len(self.found)} distinct failure(s):\n\n" + "\n\n".join(
            self.found.values()
        )
