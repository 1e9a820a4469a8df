"""A folder of JSON files as the truth, and a SQLite mirror to ask it questions in SQL.

Run it with ``python examples/sqlite_mirror.py`` (it writes ./data and ./mirror.db),
then, if you have Datasette, ``datasette mirror.db``: each person's team is a link.
"""

from __future__ import annotations

import sqlite3

import hutch


def main() -> None:
    with hutch.open("./data", mirrors=["sqlite:///mirror.db"]) as db:
        # A relationship becomes a foreign key in the mirror: Datasette shows it as a link.
        db.relationships.define("person_team", local="people", remote="teams", on="team_id")
        store = db.store
        with store.transaction():
            store.set_row("teams", "engines", {"name": "Analytical Engines"})
            store.set_row("teams", "codes", {"name": "Codebreakers"})
            for row_id, team, age in [("ada", "engines", 36), ("alan", "codes", 41)]:
                store.set_row("people", row_id, {"team_id": team, "age": age, "tags": ["math"]})
            store.set_row("people", "grace", {"team_id": "codes", "age": 85, "admiral": True})
        mirror = db.mirrors[0]
        print(f"mirror {mirror.url}: in step = {mirror.in_step}")

    # Any SQL tool (sqlite3, Datasette) reads the mirror as ordinary tables and columns.
    with sqlite3.connect("mirror.db") as sql:
        query = "SELECT id, team_id, age FROM people WHERE age > ? ORDER BY age DESC"
        for row in sql.execute(query, (40,)):
            print("over 40:", row)
        per_team = (
            "SELECT teams.name, count(*), avg(people.age) FROM people "
            "JOIN teams ON people.team_id = teams.id GROUP BY teams.id ORDER BY teams.name"
        )
        for name, members, average_age in sql.execute(per_team):
            print(f"{name}: {members} member(s), average age {average_age:.0f}")
        tagged = "SELECT people.id FROM people, json_each(people.tags) WHERE json_each.value = ?"
        print("tagged math:", [r[0] for r in sql.execute(tagged, ("math",))])


if __name__ == "__main__":
    main()
