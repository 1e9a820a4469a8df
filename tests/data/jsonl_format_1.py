"""Writes tests/data/jsonl_format_1: a jsonl:// folder as hutch wrote it in format 1.

Run with the hutch of commit 856b602 (format 1) first on the path:
    PYTHONPATH=<tree of that commit laid out as `hutch`> python jsonl_format_1.py <folder>
It commits changes over several collections and values (rows and a value deleted, a log
compacted, the commit log shortened), closes, then appends what a crash leaves of a commit
that never reached the commit log: whole lines in one log, a torn line in another, a torn
commit line. The store's contents are written beside the folder, to <folder>.expected.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hutch

folder = Path(sys.argv[1])
url = f"jsonl://{folder.resolve()}"
settings = {"people": {"indexed": ["email"]}, "teams": {}}
with hutch.open(url, collections=settings, compact_lines=12) as db:
    for n in range(6):
        db.store.set_row("people", f"p{n}", {"email": f"p{n}@example.org", "n": n})
        db.store.set_row("teams", f"t{n % 2}", {"name": f"team {n % 2}", "size": n})
    for n in range(30):  # the counters log passes compact_lines, mostly dead: compacted
        db.store.set_row("counters", f"c{n % 3}", {"value": n})
    db.store.set_value("counter", 6)
    db.store.set_value("gone", "soon")
    with db.store.transaction():
        db.store.set_cell("people", "p1", "email", "changed@example.org")
        db.store.del_row("people", "p2")
        db.store.set_row("teams", "t9", {"name": "édité", "big": 2**62, "tags": ["x", None]})
        db.store.set_value("counter", 7)
        db.store.del_value("gone")
    store = db.store
    expected = {
        "tables": {t: store.get_table(t) for t in store.get_table_ids()},
        "values": store.get_values(),
    }
last = json.loads((folder / "_commits.jsonl").read_bytes().splitlines()[-1])[0]
with (folder / "people.jsonl").open("ab") as log:  # a commit that never finished
    log.write(b'[%d,"p7",{"email":"never@example.org"}]\n[%d,"p0",null]\n' % (last + 1, last + 1))
with (folder / "_values.jsonl").open("ab") as log:
    log.write(b'[%d,"counter",8' % (last + 1))
with (folder / "_commits.jsonl").open("ab") as log:
    log.write(b"[%d," % (last + 1))
with open(f"{folder}.expected.json", "w", encoding="utf-8") as out:
    json.dump(expected, out, sort_keys=True, indent=1, ensure_ascii=False)
