"""What can a power cut leave on disk? Record a workload, then build the states a crash allows.

:class:`Recorder` hooks :data:`hutch.backends.file.fsio.tracer`, the one place through which
the folder backends change the disk, and keeps an op log on top of a snapshot of the recorded
folder. A crash point ``k`` is the moment after the first ``k`` operations; at each one the
recording builds the states a power cut may leave, under a model that is POSIX-permissive and
stricter than ext4 on purpose:

- What was in the folder when recording started lasts (it counts as synced).
- A write or truncate of a file lasts once a later ``sync`` of that file happened. Any other is
  kept, dropped or (a write) torn, each on its own: cut after any byte, replaced by zeros, or
  only some of its 4096-byte pages (aligned to file offsets) kept.
- A create, mkdir, rename or unlink lasts once a later ``sync`` of every folder it changes
  happened. Any other is applied or not, each on its own; a rename is applied whole or not at
  all, and it moves its inode to the new name even if the inode's own creation was lost.

Random states are drawn with ``random.Random(seed)``; each state's :attr:`State.origin` says
how to build it again. ``HUTCH_CRASH_STATES`` (a whole number, default 1) multiplies how many
random states :meth:`Recorder.states` draws, to explore further than the default run does.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from hutch.backends.file import fsio

PAGE = 4096  # the unit in which a torn write keeps or loses its data
ROOT = 0  # the node of the recorded folder
MULTIPLIER_VARIABLE = "HUTCH_CRASH_STATES"


class RecordingError(Exception):
    """The workload did something the simulator cannot model, so its states would be wrong."""


@dataclass(frozen=True)
class State:
    """A folder tree a crash could leave: folder paths and file contents, relative, '/'-joined.

    Equal states compare and hash equal whatever their origin.
    """

    folders: frozenset[str]
    files: Mapping[str, bytes]
    origin: str = field(default="", compare=False)

    def __hash__(self) -> int:
        return hash((self.folders, frozenset(self.files.items())))


def state_multiplier() -> int:
    """``$HUTCH_CRASH_STATES`` (default 1): how many times more random states to draw."""
    text = os.environ.get(MULTIPLIER_VARIABLE, "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MULTIPLIER_VARIABLE} must be a whole number of 1 or more, not {text!r}")
    return int(text)


def read_tree(root: Path) -> State:
    """The folders and files under ``root`` as they are now (links and special files left out)."""
    folders: set[str] = set()
    files: dict[str, bytes] = {}
    for path, entry in _walk(root):
        if entry.is_dir(follow_symlinks=False):
            folders.add(path)
        else:
            files[path] = Path(entry.path).read_bytes()
    return State(frozenset(folders), files, origin=f"read from {root}")


def materialize(state: State, target: Path) -> None:
    """Write ``state`` as plain folders and files into ``target``, which must be empty or absent."""
    target.mkdir(exist_ok=True)
    if any(target.iterdir()):
        raise ValueError(f"cannot materialize a crash state into {target}: it is not empty")
    for folder in sorted(state.folders):  # a parent sorts before what it holds
        (target / folder).mkdir()
    for path, data in state.files.items():
        (target / path).write_bytes(data)


class Recorder:
    """Records what a workload does to the disk under ``root`` through fsio, within a ``with``.

    Change the folder only through fsio while recording: what else changes it goes unseen.
    The recorded order is the order in which fsio reported, across threads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._entered = False
        self._failure: RecordingError | None = None
        self._inodes: dict[tuple[int, int], int] = {}  # (device, inode) -> node, while live
        self._folders = {ROOT}  # every folder node ever seen; the rest are files
        self._next_node = ROOT + 1
        self._start_links: list[tuple[int, str, int]] = []  # the snapshot: folder, name, node
        self._start_data: dict[int, bytes] = {}
        self._live = _Namespace()  # the names as the workload sees them, to resolve renames
        self._ops: list[_Op] = []
        self._said: list[str] = []  # what each operation did, for people
        self._marks: list[tuple[int, str, object]] = []  # (operations before it, label, value)

    # -- recording ---------------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        if self._entered:
            raise RecordingError("a Recorder records once; make a new one")
        if fsio.tracer is not None:
            raise RecordingError("another recording is running: fsio reports to one tracer")
        self._entered = True
        self._inodes[_inode(os.stat(self.root))] = ROOT
        nodes = {"": ROOT}
        for path, entry in _walk(self.root):
            key = _inode(entry.stat(follow_symlinks=False))
            if key in self._inodes:
                raise RecordingError(f"{path} is a hard link, which the simulator cannot model")
            node = self._new_node(key, folder=entry.is_dir(follow_symlinks=False))
            if node not in self._folders:
                self._start_data[node] = Path(entry.path).read_bytes()
            parent, _, name = path.rpartition("/")
            self._start_links.append((nodes[parent], name, node))
            self._live.link(nodes[parent], name, node)
            nodes[path] = node
        fsio.tracer = self._trace
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        fsio.tracer = None
        if self._failure is not None and error is None:  # the workload swallowed it
            raise self._failure

    def mark(self, label: str, value: object = None) -> None:
        """Note that the workload reached ``label`` (e.g. ``"ack", 7``) after what it did so far."""
        with self._lock:
            self._marks.append((len(self._ops), label, value))

    def _trace(self, operation: str, *arguments: object) -> None:
        with self._lock:
            try:
                self._record(operation, arguments)
            except RecordingError as error:
                self._failure = self._failure or error
                raise

    def _record(self, operation: str, arguments: tuple[object, ...]) -> None:
        match operation, arguments:
            case (("mkdir" | "create"), (int(parent_fd), str(name), int(fd))):
                self._create(operation, parent_fd, name, fd)
            case "write", (int(fd), int(offset), bytes() | bytearray() | memoryview() as data):
                if (node := self._node(fd)) is not None:
                    what = f"write {len(data)} bytes at {offset} of {self._live.name_of(node)}"
                    self._log(_Write(node, offset, bytes(data)), what)
            case "truncate", (int(fd), int(size)):
                if (node := self._node(fd)) is not None:
                    self._log(
                        _Truncate(node, size), f"truncate {self._live.name_of(node)} to {size}"
                    )
            case "sync", (int(fd),):
                if (node := self._node(fd)) is not None:
                    self._log(_Sync(node), f"sync {self._live.name_of(node)}")
            case "rename", (int(from_fd), str(name), int(to_fd), str(new_name)):
                self._rename(from_fd, name, to_fd, new_name)
            case (("unlink" | "rmdir"), (int(fd), str(name))):
                if (folder := self._node(fd)) is not None:
                    unlink = _Unlink(folder, name, frozenset({folder}))
                    self._log(unlink, f"{operation} {self._live.path(folder, name)}")
            case _:
                raise RecordingError(f"fsio reported {operation}{arguments!r}, an unknown call")

    def _create(self, operation: str, parent_fd: int, name: str, fd: int) -> None:
        key = _inode(os.fstat(fd))
        self._inodes.pop(key, None)  # a new inode: its number may have named an old one
        if (folder := self._node(parent_fd)) is not None:
            node = self._new_node(key, folder=operation == "mkdir")
            link = _Link(folder, name, node, frozenset({folder}))
            self._log(link, f"{operation} {self._live.path(folder, name)}")

    def _rename(self, from_fd: int, name: str, to_fd: int, new_name: str) -> None:
        source, target = self._node(from_fd), self._node(to_fd)
        if source is None and target is None:
            return
        if source is None:
            raise RecordingError(
                f"{new_name!r} was moved into the recorded folder from outside it, so its "
                "content is unknown; record a folder that holds both"
            )
        old = self._live.path(source, name)
        if target is None:  # moved out of the recorded folder: gone, as far as it can tell
            self._log(_Unlink(source, name, frozenset({source})), f"rename {old} out")
            return
        what = f"rename {old} to {self._live.path(target, new_name)}"
        touches = frozenset({source, target})
        node = self._live.entries.get(source, {}).get(name)
        if node is None:  # an untracked entry (a link, a special file) replaced new_name
            self._log(_Unlink(target, new_name, touches), what)
        else:
            self._log(_Link(target, new_name, node, touches), what)

    def _new_node(self, key: tuple[int, int], *, folder: bool) -> int:
        node = self._next_node
        self._next_node += 1
        self._inodes[key] = node
        if folder:
            self._folders.add(node)
        return node

    def _node(self, fd: int) -> int | None:
        """The node of an open file or folder; ``None`` if it is not in the recorded folder."""
        return self._inodes.get(_inode(os.fstat(fd)))

    def _log(self, op: _Op, said: str) -> None:
        if isinstance(op, _Link | _Unlink):
            op.apply(self._live)
        self._ops.append(op)
        self._said.append(said)

    # -- crash states ------------------------------------------------------------------------

    def points(self) -> range:
        """Every crash point: ``k`` is the moment after the first ``k`` operations."""
        return range(len(self._ops) + 1)

    def marks_before(self, k: int) -> list[tuple[str, object]]:
        """The marks made before a crash at point ``k`` could strike: every mark made after the
        first ``k`` operations and before the next one began, and every earlier mark."""
        self._check(k)
        return [(label, value) for at, label, value in self._marks if at <= k]

    def marks_at(self, k: int) -> list[tuple[str, object]]:
        """The marks made right at point ``k``: after the first ``k`` operations."""
        self._check(k)
        return [(label, value) for at, label, value in self._marks if at == k]

    def live_state(self, k: int) -> State:
        """Everything kept: the folder as the workload saw it at point ``k``."""
        return self._build(k, _Fates(random.Random(0), keep=1, tear=0), "everything kept")

    def durable_state(self, k: int) -> State:
        """Only what had been synced by point ``k``."""
        return self._build(k, _Fates(random.Random(0), keep=0, tear=0), "only what was synced")

    def state(self, k: int, seed: int) -> State:
        """The random state that ``random.Random(seed)`` draws at point ``k``."""
        rng = random.Random(seed)
        fates = _Fates(rng, keep=rng.random(), tear=0.5)  # a bias per state: near both extremes too
        return self._build(k, fates, f"seed {seed}, replay: .state({k}, seed={seed})")

    def states(
        self, per_point: int = 8, points: Iterable[int] | None = None
    ) -> Iterator[tuple[int, State]]:
        """At each point (all by default): everything kept, only durable, then random states
        from seeds ``0 … per_point * $HUTCH_CRASH_STATES - 1``; a state equal to one already
        given at that point is skipped."""
        seeds = range(per_point * state_multiplier())
        for k in self.points() if points is None else points:
            drawn = (self.state(k, seed) for seed in seeds)
            seen: set[State] = set()
            for state in itertools.chain([self.live_state(k), self.durable_state(k)], drawn):
                if state not in seen:
                    seen.add(state)
                    yield k, state

    def _check(self, k: int) -> None:
        if k not in self.points():
            raise IndexError(
                f"no crash point {k}: there are {len(self._ops) + 1} (0 … {len(self._ops)})"
            )

    def _build(self, k: int, fates: _Fates, how: str) -> State:
        self._check(k)
        after = f"after {self._said[k - 1]}" if k else "before any operation"
        origin = f"crash point {k} of {len(self._ops)} ({after}), {how}"
        names = _Namespace()
        for folder, name, node in self._start_links:
            names.link(folder, name, node)
        contents = {node: bytearray(data) for node, data in self._start_data.items()}
        synced: set[int] = set()  # nodes synced later than the operation at hand
        lasts = [False] * k
        for i in reversed(range(k)):
            op = self._ops[i]
            if isinstance(op, _Sync):
                synced.add(op.node)
            else:
                lasts[i] = op.touches <= synced
        for op, durable in zip(self._ops[:k], lasts, strict=True):
            if isinstance(op, _Link | _Unlink):
                if durable or fates.applied():
                    op.apply(names)
            elif isinstance(op, _Write | _Truncate):
                content = contents.setdefault(op.file, bytearray())
                if durable:
                    op.apply(content)
                else:
                    fates.apply(op, content)
        return names.state(self._folders, contents, origin)


# -- the op log ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Link:
    """``name`` in ``folder`` names ``node``, moved from any other name it had (mkdir, create,
    rename: fsio never makes a second name for an inode)."""

    folder: int
    name: str
    node: int
    touches: frozenset[int]  # the folders that must be synced for it to last

    def apply(self, names: _Namespace) -> None:
        names.link(self.folder, self.name, self.node)


@dataclass(frozen=True, slots=True)
class _Unlink:
    """Whatever ``name`` in ``folder`` names loses that name."""

    folder: int
    name: str
    touches: frozenset[int]

    def apply(self, names: _Namespace) -> None:
        names.unlink(self.folder, self.name)


@dataclass(frozen=True, slots=True)
class _Write:
    file: int
    offset: int
    data: bytes

    @property
    def touches(self) -> frozenset[int]:
        return frozenset({self.file})

    def apply(self, content: bytearray) -> None:
        _write(content, self.offset, self.data)


@dataclass(frozen=True, slots=True)
class _Truncate:
    file: int
    size: int

    @property
    def touches(self) -> frozenset[int]:
        return frozenset({self.file})

    def apply(self, content: bytearray) -> None:
        if self.size < len(content):
            del content[self.size :]
        else:
            content.extend(bytes(self.size - len(content)))


@dataclass(frozen=True, slots=True)
class _Sync:
    node: int


_Op = _Link | _Unlink | _Write | _Truncate | _Sync


def _write(content: bytearray, offset: int, data: bytes) -> None:
    """``pwrite``: past the end, the file grows with zeros; writing nothing changes nothing."""
    if data:
        content.extend(bytes(max(0, offset - len(content))))
        content[offset : offset + len(data)] = data


class _Fates:
    """What a crash did to each operation that had not lasted yet, drawn on its own: applied
    with the chance ``keep``; a write not applied is torn with the chance ``tear``, else lost."""

    def __init__(self, rng: random.Random, *, keep: float, tear: float) -> None:
        self._rng = rng
        self._keep = keep
        self._tear = tear

    def applied(self) -> bool:
        return self._rng.random() < self._keep

    def apply(self, op: _Write | _Truncate, content: bytearray) -> None:
        rng = self._rng
        if self.applied():
            op.apply(content)
        elif isinstance(op, _Truncate) or not op.data or rng.random() >= self._tear:
            return  # lost
        elif (kind := rng.randrange(3)) == 0:  # cut after any byte
            _write(content, op.offset, op.data[: rng.randrange(len(op.data))])
        elif kind == 1:  # the blocks were allocated, their data never came
            _write(content, op.offset, bytes(len(op.data)))
        else:  # some pages made it, the others hold what they held before
            end = op.offset + len(op.data)
            content.extend(bytes(max(0, end - len(content))))
            for page in range(op.offset - op.offset % PAGE, end, PAGE):
                if rng.random() < 0.5:
                    low, high = max(page, op.offset), min(page + PAGE, end)
                    content[low:high] = op.data[low - op.offset : high - op.offset]


# -- names -----------------------------------------------------------------------------------


class _Namespace:
    """Folder entries, each node under at most one name (a name taken moves the node)."""

    def __init__(self) -> None:
        self.entries: dict[int, dict[str, int]] = {}  # folder -> name -> node
        self.where: dict[int, tuple[int, str]] = {}  # node -> folder, name

    def link(self, folder: int, name: str, node: int) -> None:
        if (was := self.where.pop(node, None)) is not None:
            del self.entries[was[0]][was[1]]
        self.unlink(folder, name)
        self.entries.setdefault(folder, {})[name] = node
        self.where[node] = (folder, name)

    def unlink(self, folder: int, name: str) -> None:
        if (node := self.entries.get(folder, {}).pop(name, None)) is not None:
            del self.where[node]

    def path(self, folder: int, name: str) -> str:
        """The path of ``name`` in ``folder``, for people."""
        return f"{self.name_of(folder)}/{name}" if folder != ROOT else name

    def name_of(self, node: int) -> str:
        if node == ROOT:
            return "."
        if (was := self.where.get(node)) is None:
            return "(a file or folder without a name)"
        return self.path(*was)

    def state(self, folders: set[int], contents: Mapping[int, bytearray], origin: str) -> State:
        """The tree reachable from the root: a node whose name was lost is gone with its files."""
        found: set[str] = set()
        files: dict[str, bytes] = {}
        pending = [(ROOT, "")]
        while pending:
            folder, prefix = pending.pop()
            for name, node in self.entries.get(folder, {}).items():
                if node in folders:
                    found.add(prefix + name)
                    pending.append((node, f"{prefix}{name}/"))
                else:
                    files[prefix + name] = bytes(contents.get(node, b""))
        return State(frozenset(found), files, origin)


def _inode(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino


def _walk(folder: Path, prefix: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every folder and regular file under ``folder``, a folder before what it holds."""
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda entry: entry.name)
    for entry in entries:
        path = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            yield path, entry
            yield from _walk(Path(entry.path), path + "/")
        elif entry.is_file(follow_symlinks=False):
            yield path, entry
