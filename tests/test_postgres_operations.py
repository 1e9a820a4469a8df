"""Looking after a ``postgresql://`` store, against a real, throw-away cluster (tests/pgcluster.py).

One ``Database`` per store in a process; ``stats()``, ``verify()`` finding what a person's SQL
broke, ``reindex()`` and the indexes of ``indexed`` fields, ``compact()``, relationships
described in table comments; and the ``hutch`` command on ``postgresql://`` URLs: stats,
verify (``--against`` too), copy to and from a folder, export and import, backup and restore,
reindex and compact. Every test skips, saying why, where no cluster can be started.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from children import WAIT
from pgcluster import Cluster
from test_cli import fill, hashes_of, hutch_process, run
from test_postgres_backend import TAKE_THE_LOCK

import hutch

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install 'hutch[postgres]'"
)
upkeep = pytest.importorskip("hutch.backends.postgres.upkeep")  # (it imports psycopg)


@pytest.fixture
def other_url(pg_cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A second fresh store (a schema of its own) beside ``pg_url``'s."""
    from hutch.backends.postgres.testing import fresh_url

    return fresh_url(pg_cluster.database("tests"), f"other_{request.node.name}")


def _sql(url: str, *statements: str) -> list[Any]:
    """Run ``statements`` as a person would, in psql; the rows of the last."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[Any] = []
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def _seed(url: str) -> None:
    with hutch.open(url) as db, db.store.transaction():
        db.store.set_row("users", "u1", {"email": "a@x.io", "org": "o1"})
        db.store.set_row("users", "u2", {"email": "b@x.io", "org": "o1"})
        db.store.set_row("orgs", "o1", {"name": "One"})
        db.store.set_value("version", 3)


# -- one Database per store in a process -------------------------------------------------------


def test_a_store_opens_once_per_process_however_its_url_is_spelt(pg_url: str) -> None:
    with hutch.open(pg_url):
        for spelt in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
            with pytest.raises(hutch.ConfigError, match="open already in this process") as caught:
                hutch.open(f"{spelt}&application_name=another")
            assert "***" in str(caught.value)
    with hutch.open(pg_url) as again:  # closed: it opens again
        again.store.set_row("t", "r", {"n": 1})


def test_two_stores_of_one_database_open_side_by_side(pg_url: str, other_url: str) -> None:
    with hutch.open(pg_url) as first, hutch.open(other_url) as second:
        first.store.set_row("t", "r", {"n": 1})
        assert second.store.get_table_ids() == []


# -- stats -------------------------------------------------------------------------------------


def test_stats_give_sizes_rows_and_the_change_log(pg_url: str) -> None:
    with hutch.open(pg_url, read_only=True) as db:
        assert db.backend.stats() == {}  # no writer made the store yet
    _seed(pg_url)
    with hutch.open(pg_url) as db:
        db.store.del_row("users", "u2")
        found = db.backend.stats()
    assert found["collections"]["users"]["rows"] == 1
    assert found["collections"]["orgs"]["rows"] == 1
    for part in found["collections"].values():
        assert part["bytes"] >= part["index_bytes"] > 0
        assert part["indexes"] == 1  # the primary key
    assert found["bytes"] > found["log_bytes"] > 0
    assert found["values_bytes"] > 0
    assert (found["log_lines"], found["log_first"], found["log_last"]) == (5, 1, 5)
    assert re.match(r"\d{4}-\d\d-\d\dT", found["log_oldest_at"])
    assert found["lock_waiters"] == 0
    json.dumps(found)  # what `hutch stats --json` prints


def test_stats_count_the_sessions_waiting_for_the_write_lock(pg_url: str) -> None:
    _seed(pg_url)
    with (
        hutch.open(pg_url, follow=False) as db,
        psycopg.connect(pg_url) as holder,
        psycopg.connect(pg_url, autocommit=True) as waiter,
    ):
        holder.execute(TAKE_THE_LOCK)  # (psycopg opened a transaction)
        writer = threading.Thread(target=waiter.execute, args=("DELETE FROM orgs",))
        writer.start()
        deadline = time.monotonic() + WAIT
        try:
            while db.backend.stats()["lock_waiters"] != 1:  # each look is a round trip
                assert writer.is_alive()
                assert time.monotonic() < deadline, "no session waits for the lock"
        finally:
            holder.rollback()
            writer.join()
        assert db.backend.stats()["lock_waiters"] == 0


# -- verify ------------------------------------------------------------------------------------


def test_verify_finds_what_a_persons_sql_broke(pg_url: str) -> None:
    settings = {"users": {"indexed": ["email"]}}
    _seed(pg_url)
    with hutch.open(pg_url, collections=settings, follow=False) as db:
        assert db.backend.verify() == []
        _sql(
            pg_url,
            "ALTER TABLE users DISABLE TRIGGER _hutch_log_insert",
            "INSERT INTO users (id, row) VALUES ('not an id', '{}'), ('u3', '[1]')",
            "ALTER TABLE orgs DROP CONSTRAINT orgs_pkey",
            """INSERT INTO orgs (id, row) VALUES ('o1', '{"name": "Again"}')""",
            "DROP TRIGGER _hutch_log_delete ON orgs",
            "DROP TRIGGER _hutch_log_update ON orgs",
            "CREATE TRIGGER _hutch_log_update AFTER UPDATE ON orgs FOR EACH ROW "
            "EXECUTE FUNCTION _hutch_number()",
            "CREATE OR REPLACE FUNCTION _hutch_lock() RETURNS trigger LANGUAGE plpgsql "
            "AS $$BEGIN RETURN NULL; END$$",
            f'DROP INDEX "{upkeep.index_name("users", "email")}"',
            "ALTER TABLE _hutch_values ALTER COLUMN value TYPE jsonb",
            "SELECT setval('_hutch_seq', 1)",
        )
        found = db.backend.verify()
    expected = [
        r"table 'users': the row\(s\) 'not an id' hold an id that breaks hutch's rules",
        r"table 'users': the row\(s\) 'u3' hold a row that is no JSON object",
        r"table 'users': the row\(s\) 'not an id', 'u3' were written with no line in the change",
        r"table 'users': hutch's trigger _hutch_log_insert is disabled.*ENABLE TRIGGER",
        r"table 'orgs' has no primary key on id.*ADD PRIMARY KEY",
        r"table 'orgs': the row\(s\) 'o1' are each held by several rows",
        r"table 'orgs': hutch's trigger _hutch_log_delete is missing",
        r"table 'orgs': hutch's trigger _hutch_log_update was changed.*DROP TRIGGER",
        r"function _hutch_lock\(\) was changed",
        r"table 'users': the indexed field 'email' has no index",
        r"keyed values: the column 'value' is of type jsonb",
        r"the sequence _hutch_seq stands at 1, below the number 7 in use.*setval",
    ]
    for problem in expected:
        assert sum(bool(re.search(problem, line)) for line in found) == 1, (problem, found)
    assert len(found) == len(expected), found
    assert all("***" in line for line in found)  # each names the store, its password hidden


def test_a_writing_open_puts_back_what_verify_says_it_does(pg_url: str) -> None:
    _seed(pg_url)
    _sql(
        pg_url,
        "ALTER TABLE users DISABLE TRIGGER _hutch_log_update",
        "DROP TRIGGER _hutch_lock ON _hutch_values",
        "CREATE OR REPLACE FUNCTION _hutch_number() RETURNS trigger LANGUAGE plpgsql "
        "AS $$BEGIN NEW.seq := 0; RETURN NEW; END$$",
    )
    with hutch.open(pg_url, read_only=True) as db:
        assert len(db.backend.verify()) == 3
    result = run("verify", pg_url, code=3)
    assert "Data integrity: FAIL" in result.output
    assert "_hutch_log_update is disabled" in result.output
    with hutch.open(pg_url):
        pass
    assert "Data integrity: PASS" in run("verify", pg_url).output


def test_verify_fails_on_a_row_hutch_cannot_read(pg_url: str) -> None:
    _seed(pg_url)
    _sql(pg_url, "UPDATE users SET row = '\"text\"' WHERE id = 'u2'")
    result = run("verify", pg_url, code=3)
    assert "table 'users', row id 'u2'" in result.output
    assert "Data integrity: FAIL" in result.output


# -- indexes and reindex -----------------------------------------------------------------------


def _indexes(url: str) -> dict[str, int]:
    """The schema's indexes, each with its file (``relfilenode``: a rebuild gives a new one)."""
    return dict(
        _sql(
            url,
            "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'i' "
            "AND relnamespace = current_schema()::regnamespace",
        )
    )


def test_indexed_fields_get_expression_indexes_that_reindex_rebuilds(pg_url: str) -> None:
    settings = {"users": {"indexed": ["email", "it's"]}, "later": {"indexed": ["n"]}}
    with hutch.open(pg_url, collections=settings) as db:
        db.store.set_row("users", "u1", {"email": "a@x.io", "it's": 1})
        made = {upkeep.index_name("users", "email"), upkeep.index_name("users", "it's")}
        assert made <= _indexes(pg_url).keys()
        db.store.set_row("later", "r", {"n": 1})  # a collection's table made later has its own
        assert upkeep.index_name("later", "n") in _indexes(pg_url)
        plan = _sql(
            pg_url,
            "SET enable_seqscan = off",
            "EXPLAIN SELECT id FROM users WHERE row->>'email' = 'a@x.io'",
        )
        assert upkeep.index_name("users", "email") in str(plan)  # what a person's SQL uses
        _sql(pg_url, f'DROP INDEX "{upkeep.index_name("users", "email")}"')
        before = _indexes(pg_url)
        db.reindex()
        after = _indexes(pg_url)
        assert upkeep.index_name("users", "email") in after
        assert all(after[name] != node for name, node in before.items())  # every one rebuilt
        assert db.backend.verify() == []
    assert "Rebuilt the indexes" in run("reindex", pg_url).output


def test_index_names_fit_postgres_and_stay_apart() -> None:
    long = upkeep.index_name("a" * 63, "é" * 40)
    assert len(long.encode()) <= 63
    assert upkeep.index_name("a_b", "c") != upkeep.index_name("a", "b_c")
    assert upkeep.index_name("users", "email").startswith("_hutch_ix_users_email_")


# -- compact -----------------------------------------------------------------------------------


def _files(url: str) -> dict[str, int]:
    return dict(
        _sql(
            url,
            "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = current_schema()::regnamespace",
        )
    )


def test_compact_rewrites_every_table(pg_url: str) -> None:
    _seed(pg_url)
    with hutch.open(pg_url) as db:
        db.store.del_row("users", "u2")
        before = _files(pg_url)
        db.compact()
        after = _files(pg_url)
        assert before.keys() == after.keys()
        assert all(after[name] != node for name, node in before.items())
        db.store.set_row("users", "u3", {"email": "c@x.io"})  # it writes on
    with hutch.open(pg_url) as again:
        assert again.store.get_row_ids("users") == ["u1", "u3"]
    assert "Compacted" in run("compact", pg_url).output


def test_compact_prunes_the_change_log_as_far_as_its_policy_allows(pg_url: str) -> None:
    with hutch.open(pg_url, log_keep_seconds=0, log_keep_rows=2) as db:
        for n in range(5):
            db.store.set_value("n", n)
        before = db.backend.stats()
        db.compact()
        after = db.backend.stats()
    assert before["log_lines"] > 2
    assert (after["log_lines"], after["log_last"]) == (2, before["log_last"])


def test_compact_waits_for_a_table_at_most_lock_timeout(pg_url: str) -> None:
    """Else a session holding a table would queue every node's reads of it behind the rewrite."""
    _seed(pg_url)
    with hutch.open(pg_url, lock_timeout=0.5) as db, psycopg.connect(pg_url) as person:
        person.execute("SELECT count(*) FROM users")  # idle in transaction, holding the table
        with pytest.raises(hutch.LockTimeout, match="lock_timeout"):
            db.compact()
        db.store.set_row("users", "u3", {"email": "c@x.io"})  # nobody waits for it any more
        person.rollback()
        db.compact()


# -- relationships -----------------------------------------------------------------------------


def _comments(url: str) -> dict[str, str]:
    return dict(
        _sql(
            url,
            "SELECT relname, obj_description(oid, 'pg_class') FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = current_schema()::regnamespace "
            "AND obj_description(oid, 'pg_class') IS NOT NULL",
        )
    )


def test_relationships_are_described_in_table_comments_never_enforced(pg_url: str) -> None:
    user_org = """hutch relationship "user_org": row->>'org' = "orgs".id"""
    user_org += " (described, never enforced)"
    _seed(pg_url)
    _sql(pg_url, "COMMENT ON TABLE users IS 'People who sign in.'")  # a person's own
    with hutch.open(pg_url) as db:
        db.relationships.define("user_org", "users", "orgs", "org")
        db.relationships.define("team_org", "teams", "orgs", "org")  # no table yet: one is made
        assert _comments(pg_url) == {
            "users": f"People who sign in.\n{user_org}",
            "teams": user_org.replace("user_org", "team_org"),
        }
        db.relationships.define("user_org", "teams", "orgs", "owner")  # replaced, elsewhere
        comments = _comments(pg_url)
        assert comments["users"] == "People who sign in."
        assert comments["teams"].splitlines()[1] == user_org.replace("'org'", "'owner'")
        db.store.set_row("users", "u9", {"org": "nowhere"})  # described, never enforced
        assert _sql(pg_url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]
        joined = _sql(
            pg_url, "SELECT u.id FROM users u JOIN orgs o ON o.id = u.row->>'org' ORDER BY 1"
        )
        assert joined == [("u1",), ("u2",)]  # as the comment tells a person to join
    with hutch.open(pg_url, read_only=True) as db:
        db.relationships.define("user_org", "users", "orgs", "org")
    assert _comments(pg_url) == comments


def test_a_role_that_owns_no_table_writes_but_neither_comments_nor_compacts(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The role of an application that a migration role made the tables for."""
    _seed(pg_url)
    [(role, schema)] = _sql(pg_url, "SELECT 'writer_' || current_schema()::regnamespace::oid, "
                                    "current_schema()")  # fmt: skip
    _sql(
        pg_url,
        f"CREATE ROLE {role} LOGIN PASSWORD 'its-password'",
        f'GRANT USAGE ON SCHEMA "{schema}" TO {role}',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}',
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}',
    )
    url = re.sub(r"//[^@]*@", f"//{role}:{quote('its-password')}@", pg_url, count=1)
    try:
        with hutch.open(url) as db:
            db.store.set_row("users", "u3", {"org": "o1"})
            with caplog.at_level(logging.WARNING, logger="hutch.backends.postgres"):
                db.relationships.define("user_org", "users", "orgs", "org")
            assert "only a table's owner may comment on it" in caplog.text
            assert db.relationships.remote_row_id("user_org", "u3") == "o1"
            with pytest.raises(hutch.StoragePermissionError, match=r"does not own the table"):
                db.compact()
    finally:
        _sql(pg_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


# -- the hutch command -------------------------------------------------------------------------


def test_copy_a_folder_to_postgres_and_back_verifying_each_step(
    tmp_path: Path, pg_url: str, pg_cluster: Cluster
) -> None:
    folder = str(tmp_path / "data")
    expected = fill(folder)
    hutch.open(folder, collections={"people": {"indexed": ["name"]}}).close()  # in hutch.json
    copied = run("copy", folder, pg_url).output
    assert "Copied 31 rows in 2 collections and 1 values" in copied
    assert pg_cluster.password not in copied
    assert "Data integrity: PASS" in run("verify", pg_url, "--against", folder).output
    assert upkeep.index_name("people", "name") in _indexes(pg_url)  # hutch.json came along
    back = str(tmp_path / "back")
    run("copy", pg_url, back)
    assert hashes_of(back) == hashes_of(pg_url) == expected
    assert "Data integrity: PASS" in run("verify", back, "--against", pg_url).output
    alias = pg_url.replace("postgresql://", "postgres://", 1)
    refused = run("copy", pg_url, alias, "--replace", code=1).output
    assert "is the store this command reads" in refused


def test_export_import_backup_and_restore(tmp_path: Path, pg_url: str, other_url: str) -> None:
    expected = fill(pg_url)
    run("export", pg_url, str(tmp_path / "export"))
    run("import", str(tmp_path / "export"), other_url)
    assert hashes_of(other_url) == expected
    run("backup", pg_url, str(tmp_path / "backups"))
    [archive] = (tmp_path / "backups").glob("hutch-backup-*.tar.gz")
    with hutch.open(pg_url) as db:
        db.store.set_row("people", "p00", {"changed": True})
    restored = run("restore", str(archive), other_url, "--force").output
    assert "Data integrity: PASS" in restored
    assert hashes_of(other_url) == expected


def test_a_pg_dump_restores_into_a_store_that_a_writing_open_brings_up_to_date(
    tmp_path: Path, pg_url: str, pg_cluster: Cluster
) -> None:
    """As docs/operations.md says: the restored schema's oid is new, and with it the key of the
    write lock that hutch's functions take; hutch verify says so until a writing open."""
    _seed(pg_url)
    [(schema,)] = _sql(pg_url, "SELECT current_schema()")
    dump, database = str(tmp_path / "store.dump"), pg_url.split("?")[0]
    for program, *arguments in (
        ("pg_dump", f"--schema={schema}", "--format=custom", f"--file={dump}", database),
        ("pg_restore", f"--dbname={pg_cluster.database('restored')}", dump),
    ):
        subprocess.run(
            [pg_cluster.bin / program, *arguments], check=True, capture_output=True, timeout=WAIT
        )
    restored = pg_cluster.database("restored") + "?options=" + quote(f"-csearch_path={schema}")
    assert hashes_of(restored) == hashes_of(pg_url)
    with hutch.open(restored, read_only=True) as db:
        found = db.backend.verify()
    assert [re.sub(r".*function (\w+)\(\) was changed.*", r"\1", line) for line in found] == [
        "_hutch_lock",
        "_hutch_log",
    ]
    with hutch.open(restored) as db:
        db.store.set_row("users", "u3", {"email": "c@x.io"})
        assert db.backend.verify() == []
        assert db.backend.stats()["log_last"] == 5


def test_stats_through_the_console_script(tmp_path: Path, pg_url: str, pg_cluster: Cluster) -> None:
    fill(pg_url)
    done = hutch_process("stats", "--json", pg_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert pg_cluster.password not in done.stdout + done.stderr
    found = json.loads(done.stdout)
    assert found["backend"] == "postgresql"
    assert found["collections"] == {"people": 30, "places": 1}
    assert found["storage"]["collections"]["people"]["rows"] == 30
    assert found["storage"]["log_lines"] == 32
    text = run("stats", pg_url).output
    assert re.search(r"people\s+30\s+\d+", text)
    assert "log_lines: 32" in text
