"""Writes tests/data/file_format_1: a file:// folder as hutch wrote it in format 1.

Run with the hutch of commit 856b602 (format 1) first on the path:
    PYTHONPATH=<tree of that commit laid out as `hutch`> python file_format_1.py <folder>
It writes, closes (a checkpoint: records), writes more and exits without closing,
so the log's newest generation holds changes the records lack, as after a crash.
The store's contents are written beside the folder, to <folder>.expected.json.
"""

from __future__ import annotations

import json
import os
import sys

import hutch

folder = sys.argv[1]
settings = {
    "people": {"indexed": ["email"], "path": "crew/people"},
    "audit": {"wal": False, "indexed": ["kind"]},
}
with hutch.open(folder, collections=settings, checkpoint_interval=3600) as db:
    for n in range(6):
        db.store.set_row("people", f"p{n}", {"email": f"p{n}@example.org", "n": n})
        db.store.set_row("audit", f"a{n}", {"kind": "login", "n": n})
        db.store.set_row("notes", f"n{n}", {"text": f"note {n}", "tags": ["x", n]})
    db.store.set_value("counter", 6)
    db.store.set_value("gone", "soon")
db = hutch.open(folder, collections=settings, checkpoint_interval=3600)
with db.store.transaction():
    db.store.set_cell("people", "p1", "email", "changed@example.org")
    db.store.del_row("people", "p2")
    db.store.set_row("people", "p9", {"email": "p9@example.org", "n": 9})
    db.store.set_row("audit", "a9", {"kind": "logout", "n": 9})
    db.store.del_row("notes", "n0")
    db.store.set_value("counter", 7)
    db.store.del_value("gone")
db.store.set_row("notes", "n5", {"text": "édité", "big": 2**62})
store = db.store
expected = {
    "tables": {t: store.get_table(t) for t in store.get_table_ids()},
    "values": store.get_values(),
}
with open(folder + ".expected.json", "w", encoding="utf-8") as out:
    json.dump(expected, out, sort_keys=True, indent=1, ensure_ascii=False)
os._exit(0)  # no close: the newest log generation keeps what the records lack
