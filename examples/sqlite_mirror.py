"""A folder of JSON files as the truth, and a SQLite mirror to ask it questions in SQL.

Run it with ``python examples/sqlite_mirror.py`` (it writes ./data and ./mirror.db).
"""

from __future__ import annotations

import sqlite3

import hutch


def main() -> None:
    with hutch.open("./data", mirrors=["sqlite:///mirror.db"]) as db:
        store = db.store
        with store.transaction():
            for row_id, city, age in [("ada", "London", 36), ("alan", "Wilmslow", 41)]:
                store.set_row("people", row_id, {"city": city, "age": age, "tags": ["math"]})
            store.set_row("people", "grace", {"city": "Arlington", "age": 85, "admiral": True})
        mirror = db.mirrors[0]
        print(f"mirror {mirror.url}: in step = {mirror.in_step}")

    # Any SQL tool (sqlite3, Datasette) reads the mirror as ordinary tables and columns.
    with sqlite3.connect("mirror.db") as sql:
        query = "SELECT id, city, age FROM people WHERE age > ? ORDER BY age DESC"
        for row in sql.execute(query, (40,)):
            print("over 40:", row)
        tagged = "SELECT people.id FROM people, json_each(people.tags) WHERE json_each.value = ?"
        print("tagged math:", [r[0] for r in sql.execute(tagged, ("math",))])


if __name__ == "__main__":
    main()
