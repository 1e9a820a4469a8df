"""``hutch import-sql``'s reading side against a real, throw-away PostgreSQL (tests/pgcluster.py):
the schema as ``pg_catalog`` has it (kinds, keys, foreign keys, enums, partitions, odd names,
the order to load tables in) and values converted as the loader converts them (session
settings, then ``select_expression`` and ``converter`` per column). Each test has a schema of
its own; every test skips, saying why, where no cluster can be started.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from pgcluster import Cluster

import hutch
from hutch.contrib.import_sql.catalog import Column, ForeignKey, Schema, Table, read_schema
from hutch.contrib.import_sql.values import (
    SESSION_SETTINGS,
    NotJSON,
    converter,
    select_expression,
)

if TYPE_CHECKING:
    from psycopg import Connection

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install 'hutch[postgres]'"
)


@pytest.fixture
def conn(pg_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Connection[Any]]:
    """A connection whose search path is a new, empty schema named after the test (see
    :func:`schema_of`), dropped at the end."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    slug = re.sub(r"\W+", "_", request.node.name)[:50]
    name = f"{slug}_{digest}"
    with psycopg.connect(pg_cluster.database("import_sql"), autocommit=True) as connection:
        quoted = psycopg.sql.Identifier(name)
        connection.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(quoted))
        connection.execute(psycopg.sql.SQL("SET search_path TO {}").format(quoted))
        yield connection
        connection.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(quoted))


def schema_of(conn: Connection[Any]) -> Schema:
    """The schema the test made, read as the importer reads it."""
    row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return read_schema(conn, row[0])


def converted(conn: Connection[Any], table: Table) -> list[dict[str, Any]]:
    """Every row of ``table`` as the loader reads it: each cell converted, or the
    :class:`NotJSON` its converter raised."""
    conn.execute(SESSION_SETTINGS)
    query = psycopg.sql.SQL("SELECT {} FROM {}").format(
        psycopg.sql.SQL(", ").join(psycopg.sql.SQL(select_expression(c)) for c in table.columns),
        psycopg.sql.Identifier(table.name),
    )
    converters = [converter(column) for column in table.columns]
    rows = []
    for values in conn.execute(query).fetchall():
        row: dict[str, Any] = {}
        for column, convert, value in zip(table.columns, converters, values, strict=True):
            try:
                row[column.name] = convert(value)
            except NotJSON as error:
                row[column.name] = error
        rows.append(row)
    return rows


def one_column(conn: Connection[Any], sql_type: str, *literals: str) -> list[Any]:
    """The values ``literals`` (SQL, cast to ``sql_type``) as they come out of a column of
    that type, converted."""
    conn.execute(f"CREATE TABLE one (n int PRIMARY KEY, v {sql_type})")
    for number, literal in enumerate(literals):
        conn.execute(f"INSERT INTO one VALUES ({number}, ({literal})::{sql_type})")
    table = schema_of(conn).tables["one"]
    return [row["v"] for row in sorted(converted(conn, table), key=lambda row: row["n"])]


# The schema


def test_every_kind_of_column(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
        CREATE DOMAIN moment AS timestamptz;
        CREATE DOMAIN many AS integer[];
        CREATE DOMAIN mood_here AS mood;
        CREATE TABLE everything (
            b bool NOT NULL, i2 smallint, i4 integer, i8 bigint, o oid,
            f4 real, f8 double precision, n numeric(10, 2), n0 numeric,
            t text, vc varchar(20), c char(3), nm name,
            j json, jb jsonb, u uuid, by bytea,
            tz timestamptz, ts timestamp(3), d date, tm time, ttz timetz,
            iv interval, ip inet, ch "char", iv2 int2vector, m mood,
            pos positive NOT NULL, mo moment, ma many, mh mood_here,
            ai integer[], a2 integer[][], at text[], am mood[], au uuid[], atz timestamptz[],
            ap positive[], aj jsonb[], ab bytea[], aip inet[]
        )
        """
    )
    table = schema_of(conn).tables["everything"]
    got = {c.name: (c.kind, c.array, c.not_null) for c in table.columns}
    assert got == {
        "b": ("bool", False, True),
        "i2": ("int", False, False),
        "i4": ("int", False, False),
        "i8": ("int", False, False),
        "o": ("int", False, False),
        "f4": ("float", False, False),
        "f8": ("float", False, False),
        "n": ("numeric", False, False),
        "n0": ("numeric", False, False),
        "t": ("text", False, False),
        "vc": ("text", False, False),
        "c": ("text", False, False),
        "nm": ("text", False, False),
        "j": ("json", False, False),
        "jb": ("json", False, False),
        "u": ("uuid", False, False),
        "by": ("bytea", False, False),
        "tz": ("timestamptz", False, False),
        "ts": ("timestamp", False, False),
        "d": ("date", False, False),
        "tm": ("time", False, False),
        "ttz": ("other", False, False),
        "iv": ("other", False, False),
        "ip": ("other", False, False),
        "ch": ("other", False, False),
        "iv2": ("other", False, False),  # int2vector is not an array of int2 to psycopg
        "m": ("enum", False, False),
        "pos": ("int", False, True),
        "mo": ("timestamptz", False, False),
        "ma": ("int", True, False),
        "mh": ("enum", False, False),
        "ai": ("int", True, False),
        "a2": ("int", True, False),
        "at": ("text", True, False),
        "am": ("enum", True, False),
        "au": ("uuid", True, False),
        "atz": ("timestamptz", True, False),
        "ap": ("int", True, False),
        "aj": ("json", True, False),
        "ab": ("bytea", True, False),
        "aip": ("other", True, False),
    }
    assert [c.name for c in table.columns] == list(got)  # in attnum order
    types = {c.name: c.type for c in table.columns}
    assert types["ts"] == "timestamp(3) without time zone"
    assert types["n"] == "numeric(10,2)"
    assert types["a2"] == "integer[]"
    assert types["pos"] == "positive"
    assert table.column("m").labels == table.column("mh").labels == ("sad", "ok", "happy")
    assert table.column("am").labels == ("sad", "ok", "happy")
    assert table.column("i4").labels == ()
    with pytest.raises(KeyError, match="no column 'nope'"):
        table.column("nope")


def test_every_kind_converts_through_psycopg(conn: Connection[Any], store: hutch.Store) -> None:
    conn.execute(
        """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
        CREATE DOMAIN many AS integer[];
        CREATE TABLE everything (
            b bool, i2 smallint, i8 bigint, o oid, f4 real, f8 double precision,
            n numeric(10, 2), t text, c char(3), nm name, j json, jb jsonb, u uuid, by bytea,
            tz timestamptz, ts timestamp(3), d date, tm time, tm0 time, ttz timetz,
            iv interval, ip inet, m mood, pos positive, ma many,
            ai integer[], a2 integer[][], at text[], am mood[], atz timestamptz[], ab bytea[],
            af double precision[], aj jsonb[], an numeric[], ad date[]
        );
        INSERT INTO everything VALUES (
            true, -32768, 9223372036854775807, 4294967295, 1.1, 0.1,
            1.50, 'é ☃ 𝄞 "q"', 'ab', 'nm', '{"b": [1, 2.5]}', '{"a": null}',
            'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x00ff',
            '2024-01-02 03:04:05.5+05:30', '2024-01-02 03:04:05.123', '2024-02-29',
            '03:04:05.25', '03:04:05', '03:04:05+02', '1 year 2 mons 3 days 04:05:06',
            '192.168.0.1/24', 'ok', 7, '{1,2}',
            '{1,NULL,3}', '{{1,2},{3,NULL}}', '{"a b","c,\\"d",NULL,"NULL"}',
            '{happy,NULL,sad}', '{"2024-01-02 03:04:05+00",NULL}', ARRAY['\\x01'::bytea, NULL],
            '{1.5,NULL,-0}', ARRAY['{"x": 1.0}'::jsonb, NULL], '{1.50,NaN,NULL}',
            '{{2024-01-02,NULL},{2024-01-03,2024-01-04}}'
        );
        INSERT INTO everything (b) VALUES (NULL)
        """
    )
    first, empty = converted(conn, schema_of(conn).tables["everything"])
    assert first == {
        "b": True,
        "i2": -32768,
        "i8": 9223372036854775807,
        "o": 4294967295,
        "f4": 1.1,
        "f8": 0.1,
        "n": "1.50",
        "t": 'é ☃ 𝄞 "q"',
        "c": "ab",  # (character(n) drops its padding, as in arrays)
        "nm": "nm",
        "j": {"b": [1, 2.5]},
        "jb": {"a": None},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "by": "AP8=",
        "tz": "2024-01-01T21:34:05.500000+00:00",
        "ts": "2024-01-02T03:04:05.123000+00:00",
        "d": "2024-02-29",
        "tm": "03:04:05.250000",
        "tm0": "03:04:05",
        "ttz": "03:04:05+02",
        "iv": "P1Y2M3DT4H5M6S",
        "ip": "192.168.0.1/24",
        "m": "ok",
        "pos": 7,
        "ma": [1, 2],
        "ai": [1, None, 3],
        "a2": [[1, 2], [3, None]],
        "at": ["a b", 'c,"d', None, "NULL"],
        "am": ["happy", None, "sad"],
        "atz": ["2024-01-02T03:04:05+00:00", None],
        "ab": ["AQ==", None],
        "af": [1.5, None, -0.0],
        "aj": [{"x": 1.0}, None],
        "an": ["1.50", "NaN", None],
        "ad": [["2024-01-02", None], ["2024-01-03", "2024-01-04"]],
    }
    assert type(first["aj"][0]["x"]) is float
    assert all(value is None for value in empty.values())
    store.set_row("everything", "r1", first)  # JSON every backend keeps
    assert store.get_row("everything", "r1") == first


def test_select_expressions_quote_and_cast() -> None:
    def column(name: str, kind: str, array: bool = False) -> Column:
        return Column(name=name, type="?", kind=kind, array=array, not_null=False)

    assert select_expression(column("createdAt", "int")) == '"createdAt"'
    assert select_expression(column('say "hi"', "text", array=True)) == '"say ""hi"""::text[]'
    assert select_expression(column("at", "timestamptz")) == '"at"::text'
    assert select_expression(column("at", "timestamptz", array=True)) == '"at"::text[]'
    assert select_expression(column("n", "numeric")) == '"n"::text'
    assert select_expression(column("ip", "other")) == 'to_jsonb("ip")::text'
    assert select_expression(column("ip", "other", array=True)) == 'to_jsonb("ip")::text'
    assert select_expression(column("n", "numeric"), 'CAST("n" AS int)') == 'CAST("n" AS int)::text'
    with pytest.raises(ValueError, match="kind 'money'"):
        select_expression(column("m", "money"))
    with pytest.raises(ValueError, match="kind 'money'"):
        converter(column("m", "money"))


def test_enum_labels_keep_their_order_not_their_creation(conn: Connection[Any]) -> None:
    conn.execute("CREATE TYPE step AS ENUM ('todo', 'done')")
    conn.execute("ALTER TYPE step ADD VALUE 'doing' BEFORE 'done'")
    conn.execute("ALTER TYPE step ADD VALUE 'idea' BEFORE 'todo'")
    conn.execute("CREATE TABLE task (id int PRIMARY KEY, s step NOT NULL)")
    conn.execute("INSERT INTO task VALUES (1, 'doing'), (2, 'idea')")
    table = schema_of(conn).tables["task"]
    assert table.column("s").labels == ("idea", "todo", "doing", "done")
    assert table.column("s").type == "step"
    assert [row["s"] for row in converted(conn, table)] == ["doing", "idea"]


def test_primary_keys_and_unique_keys(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE member (
            team text, person text, email text, nick text, code text, a int, b int,
            PRIMARY KEY (person, team),
            UNIQUE (email),
            CONSTRAINT pair UNIQUE (b, a)
        );
        CREATE UNIQUE INDEX member_email_again ON member (email);
        CREATE UNIQUE INDEX member_pk_again ON member (person, team);
        CREATE UNIQUE INDEX member_nick ON member (nick) INCLUDE (code);
        CREATE UNIQUE INDEX member_partial ON member (code) WHERE code IS NOT NULL;
        CREATE UNIQUE INDEX member_lower ON member (lower(email));
        CREATE INDEX member_plain ON member (a);
        CREATE TABLE log (at timestamptz, line text);
        """
    )
    tables = schema_of(conn).tables
    member = tables["member"]
    assert member.primary_key == ("person", "team")
    assert sorted(member.uniques) == [("b", "a"), ("email",), ("nick",)]
    assert tables["log"].primary_key == ()
    assert tables["log"].uniques == ()
    assert tables["log"].foreign_keys == ()


def test_foreign_keys_with_each_delete_rule(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE org (id int PRIMARY KEY, region text, code text, UNIQUE (code, region));
        CREATE TABLE team (
            id int PRIMARY KEY,
            a int REFERENCES org ON DELETE CASCADE,
            b int REFERENCES org ON DELETE RESTRICT,
            c int REFERENCES org ON DELETE SET NULL,
            d int DEFAULT 1 REFERENCES org ON DELETE SET DEFAULT,
            e int REFERENCES org,
            f int REFERENCES org ON DELETE NO ACTION,
            r text, k text,
            CONSTRAINT "by code" FOREIGN KEY (r, k) REFERENCES org (region, code)
        );
        """
    )
    team = schema_of(conn).tables["team"]
    rules = {key.columns: (key.table, key.references, key.on_delete) for key in team.foreign_keys}
    assert rules == {
        ("a",): ("org", ("id",), "cascade"),
        ("b",): ("org", ("id",), "restrict"),
        ("c",): ("org", ("id",), "set_null"),
        ("d",): ("org", ("id",), "set_default"),
        ("e",): ("org", ("id",), "no_action"),
        ("f",): ("org", ("id",), "no_action"),
        ("r", "k"): ("org", ("region", "code"), "no_action"),
    }
    assert {key.name for key in team.foreign_keys} >= {"by code", "team_a_fkey"}


def test_composite_foreign_keys_onto_composite_primary_keys(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE membership (team int, person int, PRIMARY KEY (team, person));
        CREATE TABLE grant_ (
            id int PRIMARY KEY, who int, what int,
            FOREIGN KEY (what, who) REFERENCES membership (team, person) ON DELETE CASCADE
        );
        """
    )
    schema = schema_of(conn)
    assert schema.tables["membership"].primary_key == ("team", "person")
    assert schema.tables["grant_"].foreign_keys == (
        ForeignKey(
            name="grant__what_who_fkey",
            columns=("what", "who"),
            table="membership",
            references=("team", "person"),
            on_delete="cascade",
        ),
    )


def test_partitioned_tables_are_read_through_their_parent(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE account (id int PRIMARY KEY);
        CREATE TABLE event (
            id int, at date NOT NULL, account int REFERENCES account ON DELETE CASCADE,
            PRIMARY KEY (id, at)
        ) PARTITION BY RANGE (at);
        CREATE TABLE event_2023 PARTITION OF event FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
        CREATE TABLE event_2024 PARTITION OF event
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (at);
        CREATE TABLE event_2024_h1 PARTITION OF event_2024
            FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
        CREATE TABLE event_2024_h2 PARTITION OF event_2024
            FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
        CREATE TABLE note (
            id int PRIMARY KEY, event int, at date, FOREIGN KEY (event, at) REFERENCES event
        );
        INSERT INTO account SELECT generate_series(1, 10);
        INSERT INTO event
            SELECT n, date '2023-06-01' + n, n % 10 + 1 FROM generate_series(1, 500) AS n;
        """
    )
    schema = schema_of(conn)
    assert sorted(schema.tables) == ["account", "event", "note"]
    event = schema.tables["event"]
    assert event.primary_key == ("id", "at")
    assert [(key.table, key.on_delete) for key in event.foreign_keys] == [("account", "cascade")]
    assert [(key.columns, key.table) for key in schema.tables["note"].foreign_keys] == [
        (("event", "at"), "event")
    ]
    assert schema.tables["account"].estimated_rows == 0  # never analysed (too few rows for
    # autovacuum to analyse it meanwhile)
    assert len(converted(conn, event)) == 500
    conn.execute("ANALYZE")
    analysed = schema_of(conn)
    assert analysed.tables["event"].estimated_rows == 500
    assert analysed.tables["account"].estimated_rows == 10


def test_quoted_pascal_case_and_spaced_names(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
        CREATE TABLE "User" ("id" text PRIMARY KEY, "emailVerified" timestamp(3), "role" "Role");
        CREATE TABLE "Team Member" (
            "user Id" text REFERENCES "User" ON DELETE CASCADE,
            "naïve ""quoted"" ☃" int,
            "ORDER" int,
            PRIMARY KEY ("user Id", "naïve ""quoted"" ☃")
        );
        CREATE TABLE "_ProjectToTeam" ("A" text NOT NULL, "B" text NOT NULL);
        CREATE UNIQUE INDEX "_ProjectToTeam_AB_unique" ON "_ProjectToTeam" ("A", "B");
        INSERT INTO "User" VALUES ('u1', '2024-01-02 03:04:05.007', 'ADMIN');
        INSERT INTO "Team Member" VALUES ('u1', 1, 2);
        INSERT INTO "_ProjectToTeam" VALUES ('p', 't');
        """
    )
    schema = schema_of(conn)
    assert sorted(schema.tables) == ["Team Member", "User", "_ProjectToTeam"]
    member = schema.tables["Team Member"]
    assert [c.name for c in member.columns] == ["user Id", 'naïve "quoted" ☃', "ORDER"]
    assert member.primary_key == ("user Id", 'naïve "quoted" ☃')
    assert member.foreign_keys[0].table == "User"
    assert schema.tables["User"].column("role").type == '"Role"'
    assert schema.tables["User"].column("role").labels == ("USER", "ADMIN")
    assert schema.tables["_ProjectToTeam"].uniques == (("A", "B"),)
    assert converted(conn, member) == [{"user Id": "u1", 'naïve "quoted" ☃': 1, "ORDER": 2}]
    assert converted(conn, schema.tables["User"]) == [
        {"id": "u1", "emailVerified": "2024-01-02T03:04:05.007000+00:00", "role": "ADMIN"}
    ]


def test_load_order_with_chains_self_references_and_a_cycle(conn: Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE z_org (id int PRIMARY KEY);
        CREATE TABLE team (id int PRIMARY KEY, org int REFERENCES z_org);
        CREATE TABLE a_project (
            id int PRIMARY KEY, team int REFERENCES team, parent int REFERENCES a_project
        );
        CREATE TABLE person (id int PRIMARY KEY, manager int REFERENCES person);
        CREATE TABLE egg (id int PRIMARY KEY, hen int);
        CREATE TABLE hen (id int PRIMARY KEY, egg int REFERENCES egg);
        ALTER TABLE egg ADD FOREIGN KEY (hen) REFERENCES hen;
        CREATE TABLE basket (id int PRIMARY KEY, egg int REFERENCES egg, z int REFERENCES z_org);
        """
    )
    schema = schema_of(conn)
    everything = ["a_project", "basket", "egg", "hen", "person", "team", "z_org"]
    order = schema.load_order(reversed(everything))
    assert order == ["egg", "hen", "person", "z_org", "basket", "team", "a_project"]
    assert schema.load_order(everything + everything) == order  # each once, whatever the order
    # Only the tables asked for; a reference to one left out does not hold anything back.
    assert schema.load_order(["a_project", "z_org"]) == ["a_project", "z_org"]
    assert schema.load_order(["team", "z_org", "a_project"]) == ["z_org", "team", "a_project"]
    assert schema.load_order([]) == []


def test_load_order_breaks_only_the_cycle() -> None:
    def table(name: str, *references: str) -> Table:
        keys = tuple(
            ForeignKey(f"{name}_{to}", ("x",), to, ("id",), "no_action") for to in references
        )
        return Table(name, (), ("id",), (), keys, 0)

    # a -> b -> c -> b (a cycle that "a" needs, but is not part of), and d -> c.
    tables = [table("a", "b"), table("b", "c"), table("c", "b"), table("d", "c"), table("e")]
    schema = Schema("s", {t.name: t for t in tables})
    assert schema.load_order("abcde") == ["b", "c", "a", "d", "e"]
    three = [table("x", "z"), table("y", "x"), table("z", "y"), table("w", "w")]
    schema = Schema("s", {t.name: t for t in three})
    assert schema.load_order(["z", "y", "x", "w"]) == ["w", "x", "y", "z"]
    assert schema.load_order(["unknown", "x"]) == ["unknown", "x"]


def test_a_missing_schema_is_a_config_error_naming_those_there_are(
    conn: Connection[Any],
) -> None:
    there = schema_of(conn).name
    with pytest.raises(hutch.ConfigError, match=f"no schema 'nowhere'.*'public'.*{there}"):
        read_schema(conn, "nowhere")
    with pytest.raises(hutch.ConfigError, match="no schema"):
        read_schema(conn, "Public")  # names are exact
    assert read_schema(conn, there).tables == {}


def test_a_schema_named_oddly_is_a_parameter(conn: Connection[Any]) -> None:
    conn.execute("""CREATE SCHEMA "it's ""odd""; --" CREATE TABLE "t" (id int PRIMARY KEY)""")
    try:
        schema = read_schema(conn, """it's "odd"; --""")
        assert list(schema.tables) == ["t"]
        assert schema.tables["t"].primary_key == ("id",)
    finally:
        conn.execute("""DROP SCHEMA "it's ""odd""; --" CASCADE""")


def test_the_schema_is_read_in_a_handful_of_queries(conn: Connection[Any]) -> None:
    for number in range(40):
        conn.execute(
            f"CREATE TABLE t{number} (id int PRIMARY KEY, up int REFERENCES t{number}, "
            "tags text[], at timestamptz)"
        )
    statements: list[Any] = []

    class Counting(psycopg.Cursor):  # type: ignore[misc,name-defined]
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(query)
            return super().execute(query, *args, **kwargs)

    conn.cursor_factory = Counting
    schema = schema_of(conn)
    assert len(schema.tables) == 40
    assert len(statements) <= 8


# Values


def test_floats_that_json_cannot_hold_are_not_json(conn: Connection[Any]) -> None:
    values = one_column(
        conn, "float8", "'NaN'", "'Infinity'", "'-Infinity'", "1.5", "1e308", "NULL", "'-0'"
    )
    assert [type(value) for value in values[:3]] == [NotJSON] * 3
    assert "nan" in str(values[0])
    assert values[3:] == [1.5, 1e308, None, -0.0]
    assert math.copysign(1, values[6]) == -1


def test_float4_and_float_arrays_with_nan(conn: Connection[Any]) -> None:
    conn.execute("CREATE TABLE f (a real, b double precision[])")
    conn.execute("INSERT INTO f VALUES ('NaN', '{1,2}'), (0.1, '{{1,NaN},{NULL,3}}')")
    rows = converted(conn, schema_of(conn).tables["f"])
    assert isinstance(rows[0]["a"], NotJSON)
    assert rows[0]["b"] == [1.0, 2.0]
    assert rows[1]["a"] == 0.1  # printed shortest-exact, so read as the decimal written
    assert isinstance(rows[1]["b"], NotJSON)


def test_infinite_and_out_of_range_dates_are_not_json(conn: Connection[Any]) -> None:
    stamps = one_column(
        conn,
        "timestamptz",
        "'infinity'",
        "'-infinity'",
        "'0044-03-15 12:00:00+00 BC'",
        "'10000-01-01 00:00:00+00'",
        "'0001-01-01 00:00:00+00'",
        "'9999-12-31 23:59:59.999999+00'",
    )
    assert [type(stamp) for stamp in stamps[:4]] == [NotJSON] * 4
    assert "'infinity'" in str(stamps[0])
    assert stamps[4:] == ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999+00:00"]
    conn.execute("DROP TABLE one")
    plain = one_column(conn, "timestamp", "'infinity'", "'-infinity'", "'2024-01-02'")
    assert [type(stamp) for stamp in plain[:2]] == [NotJSON] * 2
    assert plain[2] == "2024-01-02T00:00:00+00:00"
    conn.execute("DROP TABLE one")
    days = one_column(
        conn,
        "date",
        "'infinity'",
        "'-infinity'",
        "'0044-03-15 BC'",
        "'10000-01-01'",
        "'0001-01-01'",
    )
    assert [type(day) for day in days[:4]] == [NotJSON] * 4
    assert days[4] == "0001-01-01"
    conn.execute("DROP TABLE one")
    in_arrays = one_column(conn, "date[]", "'{2024-01-01,infinity}'", "'{2024-01-01,NULL}'")
    assert isinstance(in_arrays[0], NotJSON)
    assert in_arrays[1] == ["2024-01-01", None]


def test_numeric_text_is_kept_exactly(conn: Connection[Any]) -> None:
    big = "123456789012345678901234567890.123456789012345678901234567890"
    values = one_column(
        conn, "numeric", "'1.50'", f"'{big}'", "'NaN'", "'-0.000'", "'1e-20'", "'Infinity'"
    )
    assert values == ["1.50", big, "NaN", "0.000", "0.00000000000000000001", "Infinity"]
    conn.execute("DROP TABLE one")
    assert one_column(conn, "numeric(12,4)", "1.5") == ["1.5000"]


def test_jsonb_numbers_are_read_exactly(conn: Connection[Any]) -> None:
    huge = 2**64 + 1
    values = one_column(
        conn,
        "jsonb",
        "'1.0'",
        "'1'",
        f"'{huge}'",
        f"'[-{huge}, 18446744073709551615, 0.1]'",
        """'{"a": {"b": [true, null, "x"]}, "": 1e2}'""",
        "'\"\\u00e9\"'",
        "'null'",
        "NULL",
    )
    assert values[0] == 1.0
    assert type(values[0]) is float
    assert values[1] == 1
    assert type(values[1]) is int
    assert values[2] == huge
    assert type(values[2]) is int
    assert values[3] == [-huge, 2**64 - 1, 0.1]
    assert values[4] == {"a": {"b": [True, None, "x"]}, "": 100}
    assert values[5] == "é"
    assert values[6:] == [None, None]  # JSON null and SQL NULL alike


def test_json_kept_as_written_and_numbers_beyond_a_float(conn: Connection[Any]) -> None:
    values = one_column(
        conn,
        "json",
        "'1e400'",
        "'[12345678901234567890123, 1e400]'",
        """'{"a": 1, "a": 2}'""",
        "'1.50'",
    )
    assert isinstance(values[0], NotJSON)
    assert isinstance(values[1], NotJSON)
    assert values[2:] == [{"a": 2}, 1.5]


def test_bytea_is_base64_on_one_line(conn: Connection[Any]) -> None:
    blob = bytes(range(256)) * 3
    values = one_column(conn, "bytea", f"'\\x{blob.hex()}'", "''", "NULL")
    assert len(blob) > 57
    assert values[0] == base64.b64encode(blob).decode("ascii")
    assert "\n" not in values[0]
    assert values[1:] == ["", None]


def test_timestamptz_is_what_hutch_models_store(conn: Connection[Any]) -> None:
    moments = [
        datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 6, 30, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-7))),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    conn.execute("CREATE TABLE one (n int PRIMARY KEY, v timestamptz, ts timestamp(3))")
    conn.execute("SET TIME ZONE 'America/New_York'")  # the loader's settings override it
    for number, moment in enumerate(moments):
        conn.execute(
            "INSERT INTO one VALUES (%s, %s, %s)",
            (number, moment, moment.astimezone(UTC).replace(tzinfo=None)),
        )
    rows = sorted(converted(conn, schema_of(conn).tables["one"]), key=lambda row: row["n"])
    expected = [moment.astimezone(UTC).isoformat() for moment in moments]
    assert [row["v"] for row in rows] == expected
    assert expected[1] == "2024-01-02T03:04:05+00:00"
    # timestamp(3) rounds to milliseconds, and is read as UTC.
    assert [row["ts"] for row in rows] == [
        "2024-01-02T03:04:05.123000+00:00",
        "2024-01-02T03:04:05+00:00",
        "2024-07-01T06:59:59+00:00",
        "1969-12-31T18:30:00+00:00",
    ]


def test_uuid_enum_interval_inet_and_time_as_text(conn: Connection[Any]) -> None:
    conn.execute("CREATE TYPE colour AS ENUM ('red', 'Dark Blue', 'it''s')")
    conn.execute(
        "CREATE TABLE t (u uuid, c colour, i interval, ip inet, cidr_ cidr, tm time, "
        "r int4range, tt timetz)"
    )
    conn.execute(
        "INSERT INTO t VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'Dark Blue', "
        "'-1 day 00:00:00.5', '::1', '10.0.0.0/8', '24:00:00', '[1,5)', '03:04:05.1-05'), "
        "(gen_random_uuid(), 'it''s', '1 month', '2001:db8::1/64', NULL, '00:00:00.000001', "
        "'empty', NULL)"
    )
    first, second = converted(conn, schema_of(conn).tables["t"])
    assert first == {
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "c": "Dark Blue",
        "i": "P-1DT0.5S",
        "ip": "::1",
        "cidr_": "10.0.0.0/8",
        "tm": "24:00:00",
        "r": "[1,5)",
        "tt": "03:04:05.1-05",
    }
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", second["u"])
    assert second["c"] == "it's"
    assert second["i"] == "P1M"
    assert second["ip"] == "2001:db8::1/64"
    assert second["tm"] == "00:00:00.000001"
    assert second["r"] == "empty"


def test_other_kinds_are_printed_as_psql_shows_them(conn: Connection[Any]) -> None:
    """Each value as its type's output function prints it (composite values as objects of
    their fields), in arrays too, whatever the array's delimiter (box's is ';')."""
    conn.execute("CREATE TYPE pair AS (a int, b text)")
    conn.execute('CREATE TABLE t (n int, ips inet[], p pair, ps pair[], c "char", m money)')
    conn.execute(
        """INSERT INTO t VALUES (1, '[0:1]={::1,NULL}', ROW(NULL, NULL), NULL, 'x', 1.5),
        (2, '{{10.0.0.1/8,1.2.3.4},{NULL,::1/64}}', ROW(1, 'a "b", c'),
         ARRAY[ROW(2, NULL)::pair, NULL], NULL, NULL)"""
    )
    table = schema_of(conn).tables["t"]
    assert [(c.kind, c.array) for c in table.columns[1:]] == [
        ("other", True),
        ("other", False),
        ("other", True),
        ("other", False),
        ("other", False),
    ]
    first, second = sorted(converted(conn, table), key=lambda row: row["n"])
    assert first == {
        "n": 1,
        "ips": ["::1", None],
        "p": {"a": None, "b": None},
        "ps": None,
        "c": "x",
        "m": "$1.50",
    }
    assert second == {
        "n": 2,
        "ips": [["10.0.0.1/8", "1.2.3.4"], [None, "::1/64"]],
        "p": {"a": 1, "b": 'a "b", c'},
        "ps": [{"a": 2, "b": None}, None],
        "c": None,
        "m": None,
    }
    conn.execute("CREATE TABLE boxes (b box, bs box[])")
    conn.execute(
        "INSERT INTO boxes VALUES "
        "('((1,1),(0,0))', ARRAY['((1,1),(0,0))'::box, '((3,3),(2,2))'::box])"
    )
    (boxes,) = converted(conn, schema_of(conn).tables["boxes"])
    assert boxes == {"b": "(1,1),(0,0)", "bs": ["(1,1),(0,0)", "(3,3),(2,2)"]}


def test_arrays_of_domains_are_lists(conn: Connection[Any]) -> None:
    for name, base in (
        ("dtext", "text"),
        ("dint", "int"),
        ("dflt", "float8"),
        ("dbool", "bool"),
        ("dbytes", "bytea"),
    ):
        conn.execute(f"CREATE DOMAIN {name} AS {base}")
    conn.execute("CREATE TABLE d (t dtext[], i dint[], f dflt[], b dbool[], y dbytes[])")
    conn.execute(
        """INSERT INTO d VALUES ('{a,"b c",NULL}', '{{1,2},{3,NULL}}', '{1.5,-0,NaN}',
        '{t,NULL}', ARRAY[decode('0102', 'hex')]::dbytes[])"""
    )
    conn.execute("DELETE FROM d")  # a NaN rejects its row: one without it
    conn.execute(
        """INSERT INTO d VALUES ('{a,"b c",NULL}', '{{1,2},{3,NULL}}', '{1.5,-0}',
        '{t,NULL}', ARRAY[decode('0102', 'hex')]::dbytes[])"""
    )
    (row,) = converted(conn, schema_of(conn).tables["d"])
    assert row == {
        "t": ["a", "b c", None],
        "i": [[1, 2], [3, None]],
        "f": [1.5, -0.0],
        "b": [True, None],
        "y": ["AQI="],
    }
    nan = Column("f", "dflt[]", "float", True, False)
    with pytest.raises(NotJSON, match="nan"):
        converter(nan)(["1.5", "NaN"])


def test_json_numbers_a_float_cannot_hold_exactly_are_refused() -> None:
    json_column = Column("j", "jsonb", "json", False, False)
    read = converter(json_column)
    assert read('{"a": 0.1, "b": 1.0, "c": 1e300, "d": 12345678901234567890}') == {
        "a": 0.1,
        "b": 1.0,
        "c": 1e300,
        "d": 12345678901234567890,
    }
    assert read("[-9223372036854775809]") == [-9223372036854775809]  # (hutch's write refuses)
    for inexact in (
        "0.1000000000000000000001",
        '{"price": 19.999999999999999999}',
        "123456789.123456789123",
        "1e-400",
        "1e400",
    ):
        with pytest.raises(NotJSON, match="more digits than a float keeps"):
            read(inexact)


def test_columns_are_frozen_values() -> None:
    column = Column("a", "integer", "int", False, True)
    assert column == Column("a", "integer", "int", False, True, ())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        column.name = "b"  # type: ignore[misc]
