"""hutch in one page: rows, a transaction, an index, a relationship and a listener.

Run it with ``make demo``, or ``python examples/quickstart.py [URL]``. The default
URL is ``./data``: a folder of JSON files, one per record, which it lists at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hutch


def main(url: str) -> None:
    collections = {"teams": {"indexed": ["organisation_id"]}}
    with hutch.open(url, collections=collections) as db:
        store = db.store
        print(f"opened {db.url} ({type(db).__name__}); durable: {db.capabilities.durable}")

        # Hear about every commit: once per transaction, with its net changes.
        store.add_listener(
            lambda changes: print(f"  committed: {dict(changes.tables) or dict(changes.values)}")
        )

        store.set_row("organisations", "acme", {"name": "Acme"})
        with store.transaction():  # all or nothing; listeners fire once, at the end
            store.set_row("teams", "t1", {"name": "Rockets", "organisation_id": "acme"})
            store.set_row("teams", "t2", {"name": "Anvils", "organisation_id": "acme"})
        store.set_cell("teams", "t2", "name", "Big Anvils")

        try:
            with store.transaction():
                store.del_row("teams", "t1")
                raise RuntimeError("changed my mind")
        except RuntimeError:
            print("  rolled back: t1 is still there ->", store.has_row("teams", "t1"))

        db.indexes.define("teams_by_name", "teams", "name")
        print("teams named 'Rockets':", db.indexes.slice_row_ids("teams_by_name", "Rockets"))

        db.relationships.define(
            "team_organisation", local="teams", remote="organisations", on="organisation_id"
        )
        print("acme's teams:", db.relationships.local_row_ids("team_organisation", "acme"))
        print("t2 belongs to:", db.relationships.remote_row_id("team_organisation", "t2"))

        store.set_value("schema_version", 1)
        print("tables:", store.get_table_ids(), "values:", store.get_values())
        print("teams:", store.get_table("teams"))
        folder = getattr(db.backend, "root", None)

    if isinstance(folder, Path):  # the file backend: show what it wrote
        print(f"files under {folder}:")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            print(f"  {path.relative_to(folder)} ({path.stat().st_size} bytes)")
        print(f"{folder / 'teams' / 't1.json'}:")
        print((folder / "teams" / "t1.json").read_text(), end="")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "./data")
