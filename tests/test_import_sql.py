"""``hutch import-sql``: a Prisma-shaped platform database and a schema no ORM made,
imported from a throw-away PostgreSQL and checked against it (tests/prisma_source.py)."""

from __future__ import annotations

import base64
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from click.testing import CliRunner, Result
from pgcluster import Cluster
from prisma_source import (
    Expected,
    add_email_collision,
    create_generic,
    create_prisma_platform,
)

import hutch
from hutch.cli import cli
from hutch.contrib.import_sql import load
from hutch.contrib.import_sql.check import check
from hutch.contrib.import_sql.plan import derived_id, plans
from hutch.plugins.auth import AuthAdapter, hash_token
from hutch.plugins.platform import Organisation, User

PLUGINS = ["platform", "auth"]


def run(*args: str, cwd: Path, code: int = 0) -> Result:
    """``hutch ARGS`` through click's runner, in ``cwd`` (where a reject file goes); its exit
    status must be ``code``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"
    return result


@pytest.fixture(scope="module")
def prisma(pg_cluster: Cluster) -> tuple[str, Expected]:
    """A database as Prisma and Auth.js left it, read by the tests and never written."""
    url = pg_cluster.database("prisma_platform")
    with psycopg.connect(url) as conn:
        expected = create_prisma_platform(conn)
    return url, expected


@pytest.fixture
def fresh_source(pg_cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """An empty database of this test's own."""
    name = "src_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    return pg_cluster.database(name)


def _source_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


# -- Prisma and Auth.js ------------------------------------------------------------------------


def test_a_prisma_database_imports_whole_and_checks_out(
    prisma: tuple[str, Expected], tmp_path: Path
) -> None:
    url, expected = prisma
    target = str(tmp_path / "data")
    result = run("import-sql", "--prisma", url, target, cwd=tmp_path)
    assert "Data integrity: PASS" in result.output
    assert "Left out '_prisma_migrations'" in result.output
    assert "Left out 'VerificationToken'" in result.output
    assert not (tmp_path / "import-sql.rejects.jsonl").exists()

    collections = {
        "User": "users",
        "Organization": "organisations",
        "Team": "teams",
        "Project": "projects",
        "Resource": "resources",
        "Membership": "memberships",
        "File": "files",
        "Account": "accounts",
        "Session": "sessions",
        "Authenticator": "authenticators",
        "_ProjectToTeam": "project_teams",
    }
    with hutch.open(target, plugins=PLUGINS) as db:
        for table, collection in collections.items():
            assert db.store.get_row_count(collection) == expected.counts[table], table
        assert not db.store.has_table("verification_tokens")
        assert not db.store.has_table("prisma_migrations")

        # Ids and timestamps kept, and the rows are the platform's models.
        users = db.repo(User)
        for email, user_id in expected.users_by_email.items():
            user = users.get(user_id)
            assert user is not None
            assert user.email == email
        (created, updated, user_id), *_ = _source_rows(
            url, 'SELECT "createdAt", "updatedAt", id FROM "User" ORDER BY id LIMIT 1'
        )
        user = users.get(user_id)
        assert user is not None
        assert user.created_at == created.replace(tzinfo=UTC)
        assert user.updated_at == updated.replace(tzinfo=UTC)
        organisations = db.repo(Organisation)
        for org_id, owner_id in _source_rows(url, 'SELECT id, "ownerId" FROM "Organization"'):
            organisation = organisations.get(org_id)
            assert organisation is not None
            assert organisation.owner_id == owner_id

        # Links of the implicit many-to-many table name both rows.
        links = db.store.get_table("project_teams")
        pairs = set(_source_rows(url, 'SELECT "A", "B" FROM "_ProjectToTeam"'))
        assert {(row["project_id"], row["team_id"]) for row in links.values()} == pairs

        # Sessions: stored hashed, and a cookie from before the import still signs in.
        stored = {row["session_token"] for row in db.store.get_table("sessions").values()}
        assert not stored & set(expected.session_tokens)
        auth = AuthAdapter(db)
        for token, user_id in expected.session_tokens.items():
            assert hash_token(token) in stored
            found = auth.get_session_and_user(token)
            assert found is not None, token
            assert found[1].id == user_id
        for token in expected.expired_session_tokens:
            assert auth.get_session_and_user(token) is None

    # And `hutch verify` agrees, with the models.
    verified = run("--plugin", "platform", "--plugin", "auth", "verify", target, cwd=tmp_path)
    assert "Data integrity: PASS" in verified.output


def test_two_spellings_of_one_mailbox_are_reported_not_merged(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        expected = create_prisma_platform(conn, seed=11)
        first, second = add_email_collision(conn)
    target = str(tmp_path / "data")
    result = run("import-sql", "--prisma", fresh_source, target, cwd=tmp_path, code=1)
    assert "1 rows were rejected" in result.output
    assert "Data integrity: PASS" in result.output  # what was imported checks out
    rejects = [
        orjson.loads(line)
        for line in (tmp_path / "import-sql.rejects.jsonl").read_bytes().splitlines()
    ]
    assert [(r["collection"], r["row_id"]) for r in rejects] == [("users", second)]
    assert first in rejects[0]["reason"]
    with hutch.open(target, plugins=PLUGINS) as db:
        assert db.store.get_row_count("users") == expected.counts["User"]
        assert db.store.has_row("users", first)
        assert not db.store.has_row("users", second)


def test_a_dry_run_reads_and_reports_and_writes_nothing(
    prisma: tuple[str, Expected], tmp_path: Path
) -> None:
    url, expected = prisma
    result = run(
        "import-sql", "--prisma", "--dry-run", "--json", url, str(tmp_path / "data"), cwd=tmp_path
    )
    assert not (tmp_path / "data").exists()
    report = orjson.loads(result.output)
    assert report["target"] is None
    counts = {row["table"]: row["source_rows"] for row in report["tables"]}
    assert counts["User"] == expected.counts["User"]
    assert "_prisma_migrations" not in counts


def test_tables_and_skip_choose_what_is_imported(
    prisma: tuple[str, Expected], tmp_path: Path
) -> None:
    url, expected = prisma
    target = str(tmp_path / "data")
    run(
        "import-sql",
        "--prisma",
        "--tables",
        "User,Session",
        "--skip",
        "Session",
        url,
        target,
        cwd=tmp_path,
    )
    with hutch.open(target) as db:
        assert db.store.get_table_ids() == ["users"]
        assert db.store.get_row_count("users") == expected.counts["User"]
    unknown = run(
        "import-sql", url, str(tmp_path / "other"), "--tables", "Nope", code=1, cwd=tmp_path
    )
    assert "has no table 'Nope'" in unknown.output
    assert "User" in unknown.output  # the tables it has


def test_an_import_refuses_a_target_that_holds_rows_there(
    prisma: tuple[str, Expected], tmp_path: Path
) -> None:
    url, _ = prisma
    target = str(tmp_path / "data")
    with hutch.open(target) as db:
        db.store.set_row("users", "someone", {"email": "a@example.org"})
    result = run("import-sql", "--prisma", url, target, code=1, cwd=tmp_path)
    assert "import into an empty store" in result.output
    with hutch.open(target) as db:
        assert db.store.get_row_ids("users") == ["someone"]


# -- a schema no ORM made ----------------------------------------------------------------------


def test_a_generic_schema_with_a_composite_key_and_arrays(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        counts = create_generic(conn)
    target = str(tmp_path / "data")
    result = run("import-sql", fresh_source, target, cwd=tmp_path, code=1)
    assert "Data integrity: PASS" in result.output
    # One customer's jsonb holds an integer beyond 64 bits, which no backend stores exactly:
    # rejected, and the rows pointing at it with it.
    first, *others = [
        orjson.loads(line)
        for line in (tmp_path / "import-sql.rejects.jsonl").read_bytes().splitlines()
    ]
    assert (first["collection"], first["row_id"]) == ("customers", "2")
    assert "outside the 64-bit signed range" in first["reason"]
    assert others
    assert all("names no row of 'customers'" in reject["reason"] for reject in others)
    rejected = [reject["collection"] for reject in (first, *others)]
    with hutch.open(target) as db:
        names = {"Odd Name": "Odd_Name"}
        for table, count in counts.items():
            name = names.get(table, table)
            assert db.store.get_row_count(name) == count - rejected.count(name), table

        for row_id, tags, scores, balance, avatar, external, joined in _source_rows(
            fresh_source,
            "SELECT id, tags, scores, balance::text, avatar, external_id::text, joined "
            "FROM customers",
        ):
            row = db.store.get_row("customers", str(row_id))
            if row_id == 2:
                assert row is None
                continue
            assert row is not None
            assert row.get("tags") == tags
            assert row.get("scores") == scores
            assert row.get("balance") == balance
            assert row.get("avatar") == (
                None if avatar is None else base64.b64encode(avatar).decode()
            )
            assert row.get("external_id") == external
            assert row.get("joined") == (
                None if joined is None else joined.astimezone(UTC).isoformat()
            )

        # The composite key gives each line a derived id; the link to its order is the
        # order's row id, as text.
        for order_id, line_no, product in _source_rows(
            fresh_source, "SELECT order_id, line_no, product FROM order_lines"
        ):
            row = db.store.get_row("order_lines", derived_id([str(order_id), line_no]))
            assert row is not None
            assert (row["order_id"], row["line_no"], row["product"]) == (
                str(order_id),
                line_no,
                product,
            )


def test_a_value_json_cannot_hold_is_rejected_and_the_rest_imports(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, value float8, at timestamptz)")
        conn.execute(
            "INSERT INTO readings VALUES (1, 1.5, now()), (2, 'NaN', now()), "
            "(3, 2.5, 'infinity'), (4, NULL, NULL)"
        )
    target = str(tmp_path / "data")
    rejects = tmp_path / "rejected.jsonl"
    result = run(
        "import-sql", fresh_source, target, "--rejects", str(rejects), code=1, cwd=tmp_path
    )
    assert "2 rows were rejected" in result.output
    assert "Data integrity: PASS" in result.output
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert len(lines) == 2
    assert all(line["collection"] == "readings" for line in lines)
    reasons = sorted(line["reason"] for line in lines)
    assert "column 'at'" in reasons[0]
    assert "infinity" in reasons[0]
    assert "column 'value'" in reasons[1]
    assert "nan" in reasons[1]
    with hutch.open(target) as db:
        assert db.store.get_row_ids("readings") == ["1", "4"]
    again = run(
        "import-sql",
        fresh_source,
        str(tmp_path / "again"),
        "--rejects",
        str(rejects),
        code=1,
        cwd=tmp_path,
    )
    assert "exists already" in again.output  # a reject file is never replaced


def test_the_check_finds_a_store_that_parted_from_the_source(
    fresh_source: str, tmp_path: Path
) -> None:
    """The check that ends an import, run on a store changed since, the way a conversion
    gone wrong would change it: it names each row and field (the source's side is read by
    PostgreSQL's to_jsonb, not by the import's conversions)."""
    with psycopg.connect(fresh_source) as conn:
        create_generic(conn)
    with hutch.open(str(tmp_path / "data")) as db, load.source(fresh_source) as source:
        schema = source.read_schema()
        planned = plans(schema, sorted(schema.tables), prisma=False)
        done = [load.read_table(source, plan, n, lambda _: None) for n, plan in enumerate(planned)]
        load.reject_orphans(done)  # (customer 2's JSON holds an integer beyond 64 bits)
        load.write(db, done)
        assert check(source, db, done, models=[], sample=100).passed

        store = db.store
        customer = store.get_row("customers", "1")
        assert customer is not None
        assert isinstance(customer["joined"], str)
        store.set_row(
            "customers",
            "1",
            {
                **customer,
                "balance": customer["balance"] + "1",  # '1.50' -> '1.501'
                "joined": customer["joined"].replace(":", ";", 1),
                "tags": [*customer["tags"][:-1], "changed"],
                "scores": None if customer["scores"] else [0],
            },
        )
        first_order = store.get_row_ids("orders")[0]
        store.set_cell("orders", first_order, "total", "0.01")
        store.set_cell("order_lines", store.get_row_ids("order_lines")[0], "order_id", "999999")
        store.del_row("tags_by_day", store.get_row_ids("tags_by_day")[0])
        report = check(source, db, done, models=[], sample=100)
    assert not report.passed
    problems = "\n".join(report.problems)
    assert "collection 'customers', row '1': tags, scores, balance, joined differ" in problems, (
        problems
    )
    assert f"collection 'orders', row {first_order!r}: total differ" in problems
    assert "names no row of 'orders'" in problems
    assert "table 'tags_by_day': the source holds 6 rows; the store holds 5" in problems


def test_a_source_that_cannot_be_reached_is_a_clear_error_hiding_its_password(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    url = pg_cluster.url().replace(f":{pg_cluster.port}/", ":1/")
    result = run("import-sql", url, str(tmp_path / "data"), code=1, cwd=tmp_path)
    assert "could not connect to the source" in result.output
    password = pg_cluster.url().split("@")[0].rpartition(":")[2]
    assert password not in result.output
    wrong = run("import-sql", "sqlite:///x.db", str(tmp_path / "data"), code=1, cwd=tmp_path)
    assert "must be a postgresql:// URL" in wrong.output


def test_odd_keys_get_derived_ids_and_every_row_imports(fresh_source: str, tmp_path: Path) -> None:
    """Keys that are no row ids: composite with a column called id, text the id rules
    refuse, an array, no key at all with rows alike; and a link to a table left out."""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE pairs (id int, part text, note text, PRIMARY KEY (id, part));"
            "CREATE TABLE words (word text PRIMARY KEY, seen int);"
            "CREATE TABLE notes (id serial PRIMARY KEY, word text REFERENCES words (word));"
            "CREATE TABLE loose (a int, b text);"
            "INSERT INTO pairs VALUES (1, 'x', 'one'), (1, 'y', 'two');"
            "INSERT INTO words VALUES ('hello world', 1), ('ok', 2), ('é', 3);"
            "INSERT INTO notes (word) VALUES ('hello world'), ('ok'), (NULL);"
            "INSERT INTO loose VALUES (1, 'same'), (1, 'same'), (2, NULL);"
        )
    target = str(tmp_path / "data")
    refused = run("import-sql", "--skip", "words", fresh_source, target, cwd=tmp_path, code=1)
    assert "'notes' (notes_word_fkey) names rows of 'words'" in refused.output
    result = run("import-sql", "--skip", "words,notes", fresh_source, target, cwd=tmp_path)
    assert "Data integrity: PASS" in result.output
    with hutch.open(target) as db:
        pairs = db.store.get_table("pairs")
        assert pairs == {
            derived_id([1, "x"]): {"source_id": 1, "part": "x", "note": "one"},
            derived_id([1, "y"]): {"source_id": 1, "part": "y", "note": "two"},
        }
        assert not db.store.has_table("notes")
        loose = db.store.get_table("loose")
        assert len(loose) == 3
        twins = [row_id for row_id, row in loose.items() if row == {"a": 1, "b": "same"}]
        assert sorted(twins) == sorted(
            [twins[0].removesuffix("-2"), twins[0].removesuffix("-2") + "-2"]
        )
    full = run("import-sql", fresh_source, str(tmp_path / "all"), cwd=tmp_path)
    assert "Data integrity: PASS" in full.output
    with hutch.open(str(tmp_path / "all")) as db:
        assert sorted(db.store.get_row_ids("words")) == sorted(
            [derived_id(["hello world"]), derived_id(["é"]), "ok"]
        )
        # the word is a link: the row id of the word, derived where its text is none
        notes = db.store.get_table("notes")
        assert sorted(str(row.get("word")) for row in notes.values()) == sorted(
            ["None", derived_id(["hello world"]), "ok"]
        )


def _import(source: str, tmp_path: Path, *options: str, code: int = 0) -> tuple[Result, Path]:
    target = tmp_path / "data"
    return run("import-sql", *options, source, str(target), cwd=tmp_path, code=code), target


def _rejects(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "import-sql.rejects.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def test_no_value_is_lost_to_an_id(fresh_source: str, tmp_path: Path) -> None:
    """An id column whose text is no row id keeps its value as source_id, and a table of
    one column keeps it too (a row of no cells would be no row)."""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE tags (id text PRIMARY KEY, n int);"
            "CREATE TABLE nums (id int PRIMARY KEY, label text);"
            "CREATE TABLE lone (id int PRIMARY KEY);"
            "INSERT INTO tags VALUES ('hello world', 1), ('a/b', 2), ('plain', 3);"
            "INSERT INTO nums VALUES (-1, 'system'), (7, 'seven');"
            "INSERT INTO lone VALUES (1), (2);"
        )
    result, target = _import(fresh_source, tmp_path)
    assert "Data integrity: PASS" in result.output
    with hutch.open(target) as db:
        assert db.store.get_table("tags") == {
            derived_id(["hello world"]): {"source_id": "hello world", "n": 1},
            derived_id(["a/b"]): {"source_id": "a/b", "n": 2},
            "plain": {"n": 3},
        }
        assert db.store.get_table("nums") == {
            derived_id([-1]): {"source_id": -1, "label": "system"},
            "7": {"label": "seven"},
        }
        assert db.store.get_table("lone") == {"1": {"source_id": 1}, "2": {"source_id": 2}}


def test_foreign_keys_of_several_columns_and_cycles_reject_what_names_a_rejected_row(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE p (a int, b int, at timestamp, PRIMARY KEY (a, b));"
            "CREATE TABLE c (id int PRIMARY KEY, a int, b int, FOREIGN KEY (a, b) REFERENCES p);"
            "INSERT INTO p VALUES (1, 1, 'infinity'), (1, 2, now());"
            "INSERT INTO c VALUES (1, 1, 1), (2, 1, 2), (3, NULL, 1);"
            "CREATE TABLE x (id int PRIMARY KEY, y_id int);"
            "CREATE TABLE y (id int PRIMARY KEY, x_id int REFERENCES x, day date);"
            "ALTER TABLE x ADD FOREIGN KEY (y_id) REFERENCES y DEFERRABLE INITIALLY DEFERRED;"
            "BEGIN; INSERT INTO x VALUES (1, 10), (2, 20); "
            "INSERT INTO y VALUES (10, 2, 'infinity'), (20, 1, '2024-01-01'); COMMIT;"
        )
    result, target = _import(fresh_source, tmp_path, code=1)
    assert "Data integrity: PASS" in result.output
    rejected = sorted(((r["collection"], r["row_id"]) for r in _rejects(tmp_path)), key=str)
    # p's infinite row, c's row naming it; y's infinite row, x's row naming it, and then
    # y's row naming that one, and x's row naming that...: the whole cycle.
    assert ("c", "1") in rejected
    assert ("x", "1") in rejected
    assert [r for r in rejected if r[0] == "p"] == [("p", None)]
    with hutch.open(target) as db:
        assert sorted(db.store.get_row_ids("c")) == ["2", "3"]
        assert (
            db.store.get_row_count("x")
            + db.store.get_row_count("y")
            + len([r for r in rejected if r[0] in ("x", "y")])
            == 4
        )


def test_keys_postgresql_takes_for_equal_name_one_row(fresh_source: str, tmp_path: Path) -> None:
    """numeric 1 and 1.000, varchar 'ab' and char(5) 'ab   ': one row, as in PostgreSQL; and
    rows of tables that inherit from a table are theirs, not its."""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE p (id numeric(10,2) PRIMARY KEY, x int);"
            "CREATE TABLE c (id int PRIMARY KEY, pid numeric REFERENCES p);"
            "INSERT INTO p VALUES (1, 0); INSERT INTO c VALUES (1, 1), (2, 1.000);"
            "CREATE TABLE p2 (id char(5) PRIMARY KEY, x int);"
            "CREATE TABLE c2 (id int PRIMARY KEY, pid varchar REFERENCES p2);"
            "INSERT INTO p2 VALUES ('ab', 1); INSERT INTO c2 VALUES (1, 'ab');"
            "CREATE TABLE base (id int PRIMARY KEY, x text);"
            "CREATE TABLE derived (extra text) INHERITS (base);"
            "INSERT INTO base VALUES (1, 'base');"
            "INSERT INTO derived VALUES (1, 'd', 'e'), (2, 'd', 'e');"
        )
    result, target = _import(fresh_source, tmp_path)
    assert "Data integrity: PASS" in result.output
    with hutch.open(target) as db:
        assert {row["pid"] for row in db.store.get_table("c").values()} == {"1"}
        assert db.store.get_table("p") == {"1": {"source_id": "1.00", "x": 0}}
        (link,) = [row["pid"] for row in db.store.get_table("c2").values()]
        assert db.store.has_row("p2", link)
        assert db.store.get_table("base") == {"1": {"x": "base"}}
        assert db.store.get_row_count("derived") == 2


def test_rejects_never_show_secrets(fresh_source: str, tmp_path: Path) -> None:
    """A user rejected (a second spelling of a mailbox), with a password hash and OAuth tokens
    on the rows that go with it: none of them reaches the reject file."""
    with psycopg.connect(fresh_source) as conn:
        create_prisma_platform(conn, seed=3)
        _, second = add_email_collision(conn)
        conn.execute(
            """UPDATE "User" SET "passwordHash" = '$argon2id$v=19$SECRET-HASH' WHERE id = %s""",
            (second,),
        )
        conn.execute(
            """INSERT INTO "Account" ("userId", type, provider, "providerAccountId",
            access_token, refresh_token, id_token, "updatedAt")
            VALUES (%s, 'oauth', 'github', '999', 'gho_SECRET', 'ghr_SECRET', 'eyJSECRET',
            now())""",
            (second,),
        )
        conn.execute(
            """INSERT INTO "Session" ("sessionToken", "userId", expires, "updatedAt")
            VALUES ('raw-SECRET-token', %s, now() + interval '1 day', now())""",
            (second,),
        )
        conn.commit()
    _import(fresh_source, tmp_path, "--prisma", code=1)
    text = (tmp_path / "import-sql.rejects.jsonl").read_text()
    assert {r["collection"] for r in _rejects(tmp_path)} == {"users", "accounts", "sessions"}
    assert "SECRET" not in text
    assert "<secret>" in text


def test_hostile_values_are_rejected_not_crashed_on(fresh_source: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE deep (j jsonb);"
            "INSERT INTO deep VALUES ((repeat('[', 300) || repeat(']', 300))::jsonb), ('1');"
            "CREATE TABLE prices (id int PRIMARY KEY, j jsonb);"
            """INSERT INTO prices VALUES (1, '{"p": 19.999999999999999999}'), (2, '{"p": 1.5}')"""
        )
    result, target = _import(fresh_source, tmp_path, code=1)
    assert "Data integrity: PASS" in result.output
    reasons = {r["collection"]: r["reason"] for r in _rejects(tmp_path)}
    assert "prices" in reasons
    assert "more digits than a float keeps" in reasons["prices"]
    assert "deep" in reasons
    with hutch.open(target) as db:
        assert db.store.get_table("prices") == {"2": {"j": {"p": 1.5}}}
        assert db.store.get_row_count("deep") == 1


def test_a_source_that_is_no_url_is_not_echoed(tmp_path: Path) -> None:
    result = run(
        "import-sql", "host=127.0.0.1 password=SECRETPW dbname=x", "data", cwd=tmp_path, code=1
    )
    assert "must be a postgresql:// URL" in result.output
    assert "SECRETPW" not in result.output


def test_check_only_compares_an_imported_store_with_the_source_as_it_is_now(
    fresh_source: str, tmp_path: Path
) -> None:
    """The cut-over's question: does the store still hold what the source holds?"""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2));"
            "INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 9.99), (3, 'pad', NULL);"
        )
    _, target = _import(fresh_source, tmp_path)
    checked = run("import-sql", "--check-only", fresh_source, str(target), cwd=tmp_path)
    assert "Data integrity: PASS" in checked.output
    assert "nothing was written" in checked.output
    with psycopg.connect(fresh_source) as conn:
        conn.execute("UPDATE items SET price = 1.75 WHERE id = 1")
        conn.execute("INSERT INTO items VALUES (4, 'nib', 0.10)")
    changed = run("import-sql", "--check-only", fresh_source, str(target), cwd=tmp_path, code=3)
    assert "the source holds 4 rows; the store holds 3" in changed.output
    assert "collection 'items', row '1': price differ" in changed.output
    with hutch.open(target) as db:
        assert db.store.get_row("items", "1") == {"name": "pen", "price": "1.50"}


def test_schemas_that_once_fooled_the_import_or_its_check(
    fresh_source: str, tmp_path: Path
) -> None:
    """Each of these imported wrongly, or made the check fail on a right import, or crashed
    it: every row now arrives and the check passes."""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            # a partitioned table: its rows are its partitions'
            "CREATE TABLE events (id bigint, at date, PRIMARY KEY (id, at)) "
            "PARTITION BY RANGE (at);"
            "CREATE TABLE events_2024 PARTITION OF events "
            "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
            "INSERT INTO events SELECT g, '2024-01-01'::date + g FROM generate_series(1, 50) g;"
            # a column called t (the check's alias once), oids, char(n) in a domain's array
            "CREATE DOMAIN code AS char(4);"
            "CREATE TABLE odd (id int PRIMARY KEY, t text, o oid, os oid[], c code[], pc char(4));"
            "INSERT INTO odd VALUES (1, 'a', 42, '{1,4294967295}', '{ab,cd}', 'x');"
            # one row to one row by a key that is no row id
            "CREATE TABLE people (id text PRIMARY KEY, name text);"
            "CREATE TABLE profiles (id text PRIMARY KEY REFERENCES people, bio text);"
            "INSERT INTO people VALUES ('has space', 'Ada');"
            "INSERT INTO profiles VALUES ('has space', 'hi');"
            # keys PostgreSQL takes for equal: numeric scales, -0
            "CREATE TABLE amounts (amount numeric PRIMARY KEY, x int);"
            "CREATE TABLE payments (id int PRIMARY KEY, amount numeric REFERENCES amounts);"
            "INSERT INTO amounts VALUES (1.0, 1), (2.5, 2);"
            "INSERT INTO payments VALUES (1, 1.00), (2, 2.50);"
            "CREATE TABLE zeros (z float8 PRIMARY KEY);"
            "CREATE TABLE uses (id int PRIMARY KEY, z float8 REFERENCES zeros);"
            "INSERT INTO zeros VALUES (0); INSERT INTO uses VALUES (1, '-0');"
            # a text key that looks like a derived id, beside the key it is derived from
            "CREATE TABLE named (name text PRIMARY KEY, n int);"
            "INSERT INTO named VALUES ('hello world', 1), "
            "('kd7f54e4fb4d97b407a45ce7ba369ec4cb70d1533', 2);"
            "CREATE TABLE pointers (id int PRIMARY KEY, name text REFERENCES named);"
            "INSERT INTO pointers VALUES (1, 'kd7f54e4fb4d97b407a45ce7ba369ec4cb70d1533');"
            # a table of no columns
            "CREATE TABLE nothing (); INSERT INTO nothing DEFAULT VALUES;"
        )
    result, target = _import(fresh_source, tmp_path, "--sample", "1000")
    assert "Data integrity: PASS" in result.output, result.output
    assert "Left out 'nothing': a table of no columns" in result.output
    with hutch.open(target) as db:
        assert db.store.get_row_count("events") == 50
        assert db.store.get_row("odd", "1") == {
            "t": "a",
            "o": 42,
            "os": [1, 4294967295],
            "c": ["ab", "cd"],
            "pc": "x",
        }
        person = derived_id(["has space"])
        assert db.store.get_row("people", person) == {"source_id": "has space", "name": "Ada"}
        assert db.store.get_row("profiles", person) == {"bio": "hi"}
        assert {row["amount"] for row in db.store.get_table("payments").values()} == {"1", "2.5"}
        assert db.store.get_row("uses", "1") == {"z": "0.0"}
        (pointer,) = db.store.get_table("pointers").values()
        target_row = db.store.get_row("named", pointer["name"])
        assert target_row == {"name": "kd7f54e4fb4d97b407a45ce7ba369ec4cb70d1533", "n": 2}


def test_json_jsonb_cannot_hold_is_rejected_and_the_check_goes_on(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE x (id int PRIMARY KEY, j json);"
            """INSERT INTO x SELECT g, '{"a": 1}' FROM generate_series(1, 50) g;"""
            """INSERT INTO x VALUES (500, '{"note": "NUL \\u0000 here"}');"""
        )
    result, _ = _import(fresh_source, tmp_path, "--sample", "1000", code=1)
    assert "Data integrity: PASS" in result.output
    assert [r["row_id"] for r in _rejects(tmp_path)] == ["500"]


def test_the_check_holds_each_kind_to_the_type_and_form_it_is_stored_in(
    fresh_source: str, tmp_path: Path
) -> None:
    """A value of the right meaning in the wrong JSON type or form (a number as text, a
    numeric's scale lost, a timestamp not in UTC, a field no column holds) fails the check;
    and --check-only compares every row, not a sample."""
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE k (id int PRIMARY KEY, i int, n numeric(10,2), f float8, "
            "ts timestamptz, s text);"
            "INSERT INTO k SELECT g, g, 1.50, 1.5, '2024-01-01 08:00:00+00', 'x' "
            "FROM generate_series(1, 500) g;"
        )
    _, target = _import(fresh_source, tmp_path)
    tampered: dict[str, dict[str, Any]] = {
        "1": {"i": "1"},
        "2": {"n": "1.5"},
        "3": {"f": "1.5"},
        "4": {"ts": "2024-01-01T10:00:00+02:00"},
        "5": {"extra": True},
    }
    with hutch.open(target) as db:
        for row_id, change in tampered.items():
            db.store.set_partial_row("k", row_id, change)
        db.store.set_cell("k", "400", "s", "changed")  # (outside any small sample)
    checked = run(
        "import-sql",
        "--check-only",
        "--sample",
        "5",
        fresh_source,
        str(target),
        cwd=tmp_path,
        code=3,
    )
    assert "5 rows differ between the source and the store" not in checked.output
    assert "6 rows differ between the source and the store" in checked.output
    every = run(
        "import-sql",
        "--check-only",
        "--sample",
        "500",
        fresh_source,
        str(target),
        cwd=tmp_path,
        code=3,
    )
    for row_id, field in (("1", "i"), ("2", "n"), ("3", "f"), ("4", "ts"), ("5", "extra")):
        assert f"row {row_id!r}: {field}" in every.output, (row_id, every.output)
    both = run(
        "import-sql",
        "--check-only",
        "--dry-run",
        fresh_source,
        str(target),
        cwd=tmp_path,
        code=2,
    )
    assert "give one of the two" in both.output


def test_links_find_their_row_by_postgresqls_own_equality(
    fresh_source: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_source) as conn:
        conn.execute(
            "CREATE TABLE spans (span interval PRIMARY KEY, label text);"
            "CREATE TABLE uses (id int PRIMARY KEY, span interval REFERENCES spans);"
            "INSERT INTO spans VALUES ('1 day', 'a day'); INSERT INTO uses VALUES (1, '24 hours');"
            "CREATE DOMAIN pid AS integer NOT NULL;"
            "CREATE TABLE parents (id pid PRIMARY KEY);"
            "CREATE TABLE kids (id int PRIMARY KEY, parent int REFERENCES parents);"
            "INSERT INTO parents VALUES (1); INSERT INTO kids VALUES (1, 1), (2, NULL);"
            "CREATE TABLE big (k jsonb PRIMARY KEY, note text);"
            "INSERT INTO big VALUES ('12345678901234567890123', 'a'), ('7', 'b');"
        )
    result, target = _import(fresh_source, tmp_path, code=1)
    assert "Data integrity: PASS" in result.output
    (reject,) = _rejects(tmp_path)
    assert reject["collection"] == "big"
    assert "cannot be written as JSON" in reject["reason"]
    with hutch.open(target) as db:
        (span,) = db.store.get_row_ids("spans")
        assert db.store.get_row("uses", "1") == {"span": span}
        assert db.store.get_table("kids") == {"1": {"parent": "1"}, "2": {"parent": None}}
