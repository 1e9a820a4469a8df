"""A third-party-style backend in one file: ``dict://``, a JSON snapshot rewritten on every commit.

It shows what a plugin author writes (see docs/writing-a-backend.md and
docs/testing-backends.md): a ``hutch.Persister`` subclass, a plugin object that
registers it for a URL scheme, and one command that runs the parity suite:

    pytest --pyargs hutch.testing --hutch-plugin examples/dict_backend.py:plugin \\
        --hutch-url dict:///tmp/dict-parity

Run as a script, it opens a store, writes, closes, opens it again and prints
what came back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import hutch


class DictPersister(hutch.Persister):
    """Keeps every row and value in one JSON file, ``dict:///path/to/store.json``."""

    capabilities = hutch.Capabilities(durable=True)

    def __init__(self, config: hutch.BackendConfig) -> None:
        config.check_options()
        self.path = config.url.file_path()
        if not self.path.parent.is_dir():
            raise hutch.ConfigError(
                f"cannot open {config.url.redacted()}: the folder {self.path.parent} does not "
                "exist; create it first"
            )
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.values: dict[str, Any] = {}

    def load(self) -> hutch.Snapshot:
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.tables, self.values = data["tables"], data["values"]
        return hutch.Snapshot(
            tables={
                t: {r: dict(row) for r, row in rows.items()} for t, rows in self.tables.items()
            },
            values=dict(self.values),
        )

    def apply(self, changes: hutch.Changes) -> None:
        # Build the new state beside the old one, write it, and only then keep it: if the
        # write fails, both the file and self.tables stay as they were.
        tables = {t: dict(rows) for t, rows in self.tables.items()}
        for table_id, row_id, row in changes.rows():
            rows = tables.setdefault(table_id, {})
            if row is None:
                rows.pop(row_id, None)
                if not rows:
                    del tables[table_id]
            else:
                rows[row_id] = row
        values = {k: v for k, v in self.values.items() if k not in changes.deleted_values}
        values.update(changes.values)
        self._write({"tables": tables, "values": values})
        self.tables, self.values = tables, values

    def _write(self, data: dict[str, Any]) -> None:
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class DictPlugin:
    """The plugin object: hutch calls its hooks, as it would an installed package's."""

    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("dict", DictPersister)


plugin = DictPlugin()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"dict://{Path(folder).as_posix()}/store.json"
        with hutch.open(url, plugins=[plugin]) as db:
            db.store.set_row("users", "u1", {"email": "ada@example.org", "tags": ["admin"]})
            db.store.set_value("version", 1)
            print(f"wrote users/u1 to {url}; durable: {db.capabilities.durable}")
        with hutch.open(url, plugins=[plugin]) as db:
            print("after reopening:", db.store.get_row("users", "u1"), db.store.get_values())


if __name__ == "__main__":
    main()
