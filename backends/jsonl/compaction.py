"""When a log of a ``jsonl://`` folder is compacted: once more than half of it is dead.

Counted in lines past ``compact_lines``, and in bytes past ``compact_bytes``: so a log
holds at most twice the bytes of its live lines (the latest line of each row or key
still there), or the floor, whatever the sizes of its rows. A row of 1 MiB updated a
thousand times leaves a log of a few MiB, not of a thousand.

The cost stays amortised: a compaction rewrites the live lines only once the dead ones
outweigh them, and every dead line was appended by a commit since the last compaction;
so compactions write (and read) at most about what the commits appended.

A compaction that fails (a disk too full for the new generation, say) leaves its log as
it was, and that log waits until it holds twice the bytes it held then: so the tries on
a full disk cost amortised time too, not a rewrite of the whole log at every commit.
The wait is for that generation only: once the log is replaced (by ``db.compact()``, by
another process) the rule applies to it as to any other.
"""

from __future__ import annotations

import attrs


@attrs.define
class Live:
    """The live lines of one log: each row's (or key's) latest line's size, and their sum."""

    sizes: dict[str, int] = attrs.field(factory=dict)
    bytes: int = 0

    @classmethod
    def of(cls, sizes: dict[str, int]) -> Live:
        return cls(sizes, sum(sizes.values()))

    def put(self, key: str, size: int | None) -> None:
        """A new latest line of ``key``, of ``size`` bytes; ``None``: it deletes ``key``."""
        self.bytes -= self.sizes.pop(key, 0)
        if size is not None:
            self.sizes[key] = size
            self.bytes += size

    @property
    def held(self) -> tuple[int, int]:
        """How many live lines, and their bytes."""
        return len(self.sizes), self.bytes


def due(held: tuple[int, int], live: tuple[int, int], most: tuple[float, float]) -> bool:
    """Whether a log is to be compacted: ``held`` and ``live``, its lines and bytes, and those
    of its live lines; ``most``, ``(compact_lines, compact_bytes)``: the floors under which
    a log is never compacted, counted that way."""
    return any(
        total > floor and total - kept > kept
        for total, kept, floor in zip(held, live, most, strict=True)
    )


@attrs.define
class Rule:
    """When the logs of one open are compacted: past the floors, and not while a failed
    compaction waits for its log to double."""

    #: ``(compact_lines, compact_bytes)`` (see :func:`due`); ``inf``: never by that count.
    floors: tuple[float, float]
    #: The logs whose compaction failed: the generation that failed, and the bytes it must
    #: hold before it is tried again.
    _waits: dict[str, tuple[int, int]] = attrs.field(factory=dict, init=False)

    def due(self, name: str, generation: int, held: tuple[int, int], live: tuple[int, int]) -> bool:
        """Whether the log ``name`` (its generation, its lines and bytes, and those of its live
        lines) is to be compacted now."""
        wait = self._waits.get(name)
        return due(held, live, self.floors) and (
            wait is None or wait[0] != generation or held[1] >= wait[1]
        )

    def failed(self, name: str, generation: int, size: int) -> None:
        """The compaction of that generation of ``name``, of ``size`` bytes, failed."""
        self._waits[name] = (generation, 2 * size)

    def done(self, name: str) -> None:
        """``name`` was compacted."""
        self._waits.pop(name, None)
