"""Reading a ``file://`` folder's write-ahead log in tests, apart from the backend's own code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def generations(root: Path) -> list[Path]:
    """The log generation files, oldest first."""
    return sorted((root / "_wal").glob("*.log"))


def lines(path: Path) -> list[dict[str, Any]]:
    """Every whole line of a generation file, as JSON, header included."""
    return [json.loads(line[9:]) for line in path.read_bytes().splitlines() if line]


def changes(path: Path) -> list[dict[str, Any]]:
    """The transactions of a generation file that change something (no header, no marks)."""
    return [line for line in lines(path) if "s" in line and (line["t"] or line["v"] or line["d"])]


def everything(root: Path) -> bytes:
    """All the log's bytes, every generation."""
    return b"".join(path.read_bytes() for path in generations(root))
