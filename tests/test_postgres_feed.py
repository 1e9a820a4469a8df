"""The change feed of ``postgresql://``: how nodes hear each other, and the change log's pruning.

Against a real, throw-away cluster (tests/pgcluster.py): a listener on node B hears
node A's commits, also across processes and from plain SQL, reading only the rows
that changed; a notification that is missed (its session ended, or deaf) costs
latency, not the change; a node whose position was pruned from the log, or that
finds the log restarted, reads everything again, counted; a forked child leaves its
parent's sessions alone. Every wait is bounded (``WAIT``); nothing is timed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import WAIT, Child

import hutch

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install 'hutch[postgres]'"
)

from hutch.backends.postgres import PostgresPersister, forks  # noqa: E402 (needs psycopg)


def _backend(db: hutch.Database) -> PostgresPersister:
    backend = db.backend
    assert isinstance(backend, PostgresPersister)
    return backend


def _hears(db: hutch.Database, table: str | None = None, row: str | None = None) -> threading.Event:
    """An event set once ``db``'s listeners hear a change (of that table, of that row)."""
    heard = threading.Event()
    db.store.add_listener(lambda changes: heard.set(), table=table, row=row)
    return heard


def _wait(event: threading.Event, what: str) -> None:
    assert event.wait(WAIT), f"{what}: not heard within {WAIT} s"


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Look again, a little later each time, until ``condition()`` holds (at most WAIT s)."""
    deadline = time.monotonic() + WAIT
    pause = threading.Event()
    delay = 0.01
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not seen within {WAIT} s"
        pause.wait(delay)
        delay = min(delay * 2, 0.5)


def _contents(db: hutch.Database) -> Any:
    tables = {table: db.store.get_table(table) for table in db.store.get_table_ids()}
    return orjson.dumps([tables, db.store.get_values()], option=orjson.OPT_SORT_KEYS)


@pytest.fixture
def nodes(pg_url: str, several_opens: None) -> Iterator[Callable[..., hutch.Database]]:
    """Open nodes on the test's store (``hutch.open`` options as keywords), each closed at
    the end."""
    with contextlib.ExitStack() as opened:

        def node(**options: Any) -> hutch.Database:
            return opened.enter_context(hutch.open(pg_url, **options))

        yield node


def _listening_sessions(url: str) -> list[int]:
    """The server processes of the sessions that listen on the channel of the store at
    ``url`` (docs/postgres-format.md: ``hutch_<schema oid>``)."""
    with psycopg.connect(url, autocommit=True) as sql:
        found = sql.execute(
            "SELECT pid FROM pg_stat_activity WHERE query = "
            """'LISTEN "hutch_' || current_schema()::regnamespace::oid || '"'"""
        ).fetchall()
    return [pid for (pid,) in found]


# -- hearing other nodes -----------------------------------------------------------------------


def test_node_b_hears_node_a_without_writing_or_refreshing(
    nodes: Callable[..., hutch.Database],
) -> None:
    a, b = nodes(), nodes()
    heard = _hears(b, "users", "u1")
    a.store.set_row("users", "u1", {"email": "a@x.io"})
    _wait(heard, "node A's insert")
    assert b.store.get_row("users", "u1") == {"email": "a@x.io"}
    heard = _hears(b, "users", "u1")
    a.store.del_row("users", "u1")
    _wait(heard, "node A's delete")
    assert not b.store.has_row("users", "u1")


NODE = """
import sys
import orjson
import hutch

with hutch.open(sys.argv[1]) as db:
    db.store.add_listener(
        lambda changes: print(orjson.dumps(changes.tables).decode(), flush=True),
        table="users",
        row="from-parent",
    )
    print("open", flush=True)
    sys.stdin.readline()
    db.store.set_row("users", "from-child", {"n": 2})
    sys.stdin.readline()
print("closed", flush=True)
"""


def test_a_node_in_another_process_hears_and_is_heard(pg_url: str, tmp_path: Path) -> None:
    with hutch.open(pg_url) as db:
        db.store.set_row("users", "seed", {"n": 0})
        child = Child("node B", [sys.executable, "-c", NODE, pg_url], tmp_path / "err")
        try:
            child.expect("open")
            heard = _hears(db, "users", "from-child")
            db.store.set_row("users", "from-parent", {"n": 1})
            child.expect('{"users":{"from-parent":{"n":1}}}')  # its listener, unasked
            child.send("write")
            _wait(heard, "the child's commit")
            assert db.store.get_row("users", "from-child") == {"n": 2}
            child.send("close")
            child.expect("closed")
            assert child.process.wait(WAIT) == 0
        finally:
            child.end()


def test_a_remote_change_reads_only_the_rows_it_names(
    nodes: Callable[..., hutch.Database],
) -> None:
    a = nodes()
    with a.store.transaction():
        for n in range(10_000):
            a.store.set_row("items", f"i{n}", {"n": n})
    b = nodes()
    backend = _backend(b)
    assert backend.rows_read == 10_000  # the open reads everything, once
    changes: list[Callable[[], None]] = [
        lambda: a.store.set_cell("items", "i42", "n", -1),
        lambda: a.store.set_row("items", "new", {"n": 1}),
        lambda: a.store.set_value("k", 1),
    ]
    for change in changes:
        read = backend.rows_read
        heard = _hears(b)
        change()
        _wait(heard, "node A's change")
        assert backend.rows_read - read == 1
    assert b.store.get_cell("items", "i42", "n") == -1
    assert backend.reloads == 0


def test_a_row_changed_with_plain_sql_reaches_every_open_node(
    nodes: Callable[..., hutch.Database], pg_url: str
) -> None:
    first = nodes()
    first.store.set_row("users", "u1", {"email": "a@x.io"})
    others = [nodes() for _ in range(2)]
    heard = [_hears(db, "users", "u1") for db in (first, *others)]
    with psycopg.connect(pg_url, autocommit=True) as sql:
        sql.execute("""UPDATE users SET row = '{"email": "b@x.io"}' WHERE id = 'u1'""")
    for n, event in enumerate(heard):
        _wait(event, f"node {n}")
    for db in (first, *others):
        assert db.store.get_row("users", "u1") == {"email": "b@x.io"}


# -- notifications that do not arrive ----------------------------------------------------------


def test_a_missed_notification_costs_latency_not_the_change(
    nodes: Callable[..., hutch.Database], pg_url: str
) -> None:
    """B's listening session is ended, and a commit goes by meanwhile: B takes it in all the
    same, and listens again."""
    a, b = nodes(), nodes()
    a.store.set_row("users", "u1", {"n": 0})
    _wait_for(lambda: len(_listening_sessions(pg_url)) == 2, "both nodes listening")
    before = set(_listening_sessions(pg_url))
    heard = _hears(b, "users", "u1")
    with psycopg.connect(pg_url) as sql:  # one transaction: the session ends, then the commit
        sql.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
            (list(before),),
        )
        sql.execute("""UPDATE users SET row = '{"n": 1}' WHERE id = 'u1'""")
    _wait(heard, "the commit made while B's session was ended")
    assert b.store.get_row("users", "u1") == {"n": 1}
    _wait_for(lambda: len(set(_listening_sessions(pg_url)) - before) == 2, "both listening again")
    heard = _hears(b, "users", "u1")
    a.store.set_row("users", "u1", {"n": 2})
    _wait(heard, "a commit once B listens again")


def test_a_deaf_listening_session_costs_latency_not_the_change(
    nodes: Callable[..., hutch.Database], pg_url: str
) -> None:
    """B's listening session stays open and hears nothing (its server process stopped, as a
    pooler that drops notifications would leave it): B's look at the log, once a second,
    takes the commit in; ``refresh()`` asks the log, so it never waits for a notification."""
    a = nodes()
    a.store.set_row("users", "u1", {"n": 0})
    b = nodes()
    _wait_for(lambda: len(_listening_sessions(pg_url)) == 2, "both nodes listening")
    heard = _hears(b, "users", "u1")
    stopped: list[int] = []
    try:
        for pid in _listening_sessions(pg_url):  # (a's too: it commits all the same)
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        a.store.set_row("users", "u1", {"n": 1})
        _wait(heard, "a commit while B's session was deaf")
        assert b.store.get_row("users", "u1") == {"n": 1}
        a.store.set_row("users", "u1", {"n": 2})
        b.refresh()
        assert b.store.get_row("users", "u1") == {"n": 2}
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


# -- pruning the change log --------------------------------------------------------------------


def test_a_node_whose_position_was_pruned_reads_everything_again(
    nodes: Callable[..., hutch.Database], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = nodes()
    for n in range(3):
        a.store.set_row("users", f"u{n}", {"n": n})
    a.store.set_value("k", "old")
    behind = nodes(follow=False)  # takes nothing in until it is asked
    a.store.del_row("users", "u0")
    a.store.set_row("users", "u3", {"n": 3})
    a.store.set_value("k", "new")
    pruner = nodes(log_keep_seconds=0, log_keep_rows=0)
    pruner.store.set_row("users", "p", {"n": 4})  # its first commit prunes, under the lock
    with psycopg.connect(pg_url) as sql:
        through = sql.execute("SELECT value FROM _hutch WHERE key = 'pruned_through'").fetchone()
        first = sql.execute("SELECT min(seq) FROM _hutch_changes").fetchone()
    assert through is not None
    assert first is not None
    assert first[0] > int(through[0])  # every line up to it went
    with caplog.at_level(logging.WARNING, logger="hutch.backends.postgres"):
        behind.refresh()
    assert _backend(behind).reloads == 1
    assert "was pruned through line" in caplog.text
    a.refresh()
    assert _contents(behind) == _contents(a) == _contents(pruner)
    assert sorted(behind.store.get_row_ids("users")) == ["p", "u1", "u2", "u3"]
    a.store.set_row("users", "u5", {"n": 5})  # what follows reads as usual
    read = _backend(behind).rows_read
    behind.refresh()
    assert behind.store.get_row("users", "u5") == {"n": 5}
    assert (_backend(behind).reloads, _backend(behind).rows_read - read) == (1, 1)
    assert _backend(a).reloads == 0  # it was never behind the pruning


@pytest.mark.parametrize(
    ("aged", "options", "left"),
    [
        ((), {"log_keep_seconds": 0, "log_keep_rows": 0}, ["u4", "p"]),  # the newest stays
        ((), {"log_keep_seconds": 0, "log_keep_rows": 3}, ["u2", "u3", "u4", "p"]),
        ((), {"log_keep_seconds": 3600, "log_keep_rows": 0}, ["u0", "u1", "u2", "u3", "u4", "p"]),
        ((0, 1, 2), {"log_keep_seconds": 3600, "log_keep_rows": 0}, ["u3", "u4", "p"]),
        ((0, 1, 2), {"log_keep_seconds": 3600, "log_keep_rows": 4}, ["u1", "u2", "u3", "u4", "p"]),
        ((0, 1, 3), {"log_keep_seconds": 3600, "log_keep_rows": 0}, ["u2", "u3", "u4", "p"]),
    ],
    ids=["nothing-kept", "newest-3", "all-young", "old-go", "old-but-newest", "oldest-end-only"],
)
def test_pruning_cuts_the_log_from_its_oldest_end_by_age_and_size(
    nodes: Callable[..., hutch.Database],
    pg_url: str,
    aged: tuple[int, ...],
    options: dict[str, Any],
    left: list[str],
) -> None:
    """Lines u0..u4, some of them made two hours old by hand, then a node with the options
    writes p: its first commit prunes what was committed before it."""
    writer = nodes()
    for n in range(5):
        writer.store.set_row("users", f"u{n}", {"n": n})
    with psycopg.connect(pg_url) as sql:
        sql.execute(
            "UPDATE _hutch_changes SET at = at - interval '2 hours' WHERE row_id = ANY(%s)",
            ([f"u{n}" for n in aged],),
        )
    nodes(**options).store.set_row("users", "p", {"n": 5})
    with psycopg.connect(pg_url) as sql:
        lines = sql.execute("SELECT row_id FROM _hutch_changes ORDER BY seq").fetchall()
    assert [row_id for (row_id,) in lines] == left


def test_the_defaults_keep_the_log(nodes: Callable[..., hutch.Database], pg_url: str) -> None:
    db = nodes()
    for n in range(3):
        db.store.set_row("users", f"u{n}", {"n": n})
    with psycopg.connect(pg_url) as sql:
        assert sql.execute("SELECT count(*) FROM _hutch_changes").fetchone() == (3,)
        assert sql.execute("SELECT * FROM _hutch WHERE key = 'pruned_through'").fetchone() is None


@pytest.mark.parametrize("follow", [False, True], ids=["refresh", "follower"])
def test_a_node_that_finds_the_log_restarted_reads_everything_again(
    nodes: Callable[..., hutch.Database],
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
    follow: bool,
) -> None:
    """The log emptied and its numbers restarted, as a restore of an older copy would leave
    it: the commit that follows is numbered below B's position, and B reads everything."""
    a = nodes()
    for n in range(5):
        a.store.set_row("users", f"u{n}", {"n": n})
    b = nodes(follow=follow)
    heard = _hears(b, "users", "u1")
    with caplog.at_level(logging.WARNING, logger="hutch.backends.postgres"):
        with psycopg.connect(pg_url) as sql:
            sql.execute("TRUNCATE _hutch_changes")
            sql.execute("ALTER SEQUENCE _hutch_seq RESTART")
            sql.execute("""UPDATE users SET row = '{"n": 10}' WHERE id = 'u1'""")
        if follow:
            _wait(heard, "the commit numbered below B's position")
        else:
            b.refresh()
    assert _backend(b).reloads == 1
    assert "before this node's position" in caplog.text
    assert b.store.get_row("users", "u1") == {"n": 10}


def test_a_pruning_after_the_log_restarted_is_still_noticed(
    nodes: Callable[..., hutch.Database], pg_url: str
) -> None:
    """The mark of what pruning deleted, from before the log was emptied and its numbers
    restarted, gives way to the next pruning's: a node whose position that pruning passes
    reads everything again, rather than missing the lines that went."""
    a = nodes()
    for n in range(20):  # the mark goes beyond where the restarted log gets to
        a.store.set_row("users", f"u{n}", {"n": n})
    nodes(log_keep_seconds=0, log_keep_rows=0).store.set_row("users", "p", {"n": 5})
    with psycopg.connect(pg_url) as sql:
        sql.execute("TRUNCATE _hutch_changes")
        sql.execute("ALTER SEQUENCE _hutch_seq RESTART")
    a.refresh()
    behind = nodes(follow=False)
    a.store.set_row("users", "u1", {"n": 10})
    a.store.del_row("users", "u2")
    nodes(log_keep_seconds=0, log_keep_rows=0).store.set_row("users", "q", {"n": 6})
    behind.refresh()
    assert _backend(behind).reloads == 1
    a.refresh()
    assert _contents(behind) == _contents(a)
    assert behind.store.get_row("users", "u1") == {"n": 10}


def test_a_pruning_the_role_may_not_do_leaves_the_commit_alone(
    nodes: Callable[..., hutch.Database], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may write rows but not delete lines of the log: its commit that prunes
    goes through, saying in the log that the pruning did not."""
    nodes().store.set_row("users", "u1", {"n": 1})  # the store, made by its owner
    role = f"app_{os.getpid()}"
    url = re.sub(r"//[^@]*@", f"//{role}:app-secret@", pg_url, count=1)
    with psycopg.connect(pg_url, autocommit=True) as sql:
        sql.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-secret'")
        try:
            for grant in (
                "USAGE ON SCHEMA {schema}",
                "SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema}",
                "USAGE ON ALL SEQUENCES IN SCHEMA {schema}",
            ):
                sql.execute(f"GRANT {grant.format(schema=_schema(sql))} TO {role}")
            sql.execute(f"REVOKE DELETE ON _hutch_changes FROM {role}")
            with (
                caplog.at_level(logging.WARNING, logger="hutch.backends.postgres"),
                hutch.open(url, log_keep_seconds=0, log_keep_rows=0) as db,
            ):
                db.store.set_row("users", "u2", {"n": 2})  # its first commit prunes
            assert "pruning the change log" in caplog.text
            assert "permission denied" in caplog.text
        finally:
            sql.execute(f"DROP OWNED BY {role}")
            sql.execute(f"DROP ROLE {role}")
    with hutch.open(pg_url) as again:
        assert again.store.get_row("users", "u2") == {"n": 2}


def _schema(sql: Any) -> str:
    (name,) = sql.execute("SELECT current_schema()").fetchone()
    return f'"{name}"'


def test_a_pruned_through_that_is_no_number_is_corrupt_data_saying_what_to_do(
    nodes: Callable[..., hutch.Database], pg_url: str
) -> None:
    a = nodes()
    a.store.set_row("users", "u1", {"n": 1})
    b = nodes(follow=False)
    a.store.set_row("users", "u2", {"n": 2})
    with psycopg.connect(pg_url) as sql:
        sql.execute("INSERT INTO _hutch (key, value) VALUES ('pruned_through', 'soon')")
    with pytest.raises(hutch.CorruptData, match=r"pruned_through is 'soon'.*UPDATE _hutch"):
        b.refresh()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"log_keep_seconds": -1}, "log_keep_seconds takes a number of seconds"),
        ({"log_keep_seconds": "1 day"}, "log_keep_seconds takes a number of seconds"),
        ({"log_keep_rows": 1.5}, "log_keep_rows takes a whole number"),
        ({"log_keep_rows": True}, "log_keep_rows takes a whole number"),
        ({"log_keep": 1}, "takes: .*log_keep_seconds, log_keep_rows"),
    ],
)
def test_the_pruning_options_are_checked_before_connecting(
    options: dict[str, Any], says: str
) -> None:
    with pytest.raises(hutch.ConfigError, match=says) as caught:
        hutch.open("postgresql://app:secret@127.0.0.1:1/app", **options)
    assert "secret" not in str(caught.value)


# -- forks -------------------------------------------------------------------------------------


def _child_closes_what_it_inherited(conn: Any, db: hutch.Database, url: str) -> None:
    """In a forked child: the inherited connection is closed already; closing the inherited
    database (as a worker's cleanup might) touches nothing of the parent's; a database of
    the child's own works."""
    if not conn.closed:
        os._exit(3)
    conn.close()
    db.close()
    del db
    gc.collect()
    with hutch.open(url) as own:
        own.store.set_row("users", "from-child", {"n": 2})


def test_a_forked_child_leaves_the_parents_sessions_alone(pg_url: str) -> None:
    fork = multiprocessing.get_context("fork")
    with (
        hutch.open(pg_url) as db,
        forks.track(psycopg.connect(pg_url, autocommit=True)) as conn,
    ):
        db.store.set_row("users", "u1", {"n": 1})
        sessions = {conn.info.backend_pid, *_listening_sessions(pg_url)}
        heard = _hears(db, "users", "from-child")
        child = fork.Process(target=_child_closes_what_it_inherited, args=(conn, db, pg_url))
        child.start()
        try:
            child.join(WAIT)
            assert child.exitcode == 0
        finally:
            if child.is_alive():
                child.kill()
                child.join(WAIT)
        assert conn.execute("SELECT pg_backend_pid()").fetchone() == (conn.info.backend_pid,)
        db.store.set_row("users", "u2", {"n": 2})  # the parent's sessions go on
        _wait(heard, "the child's commit")
        with psycopg.connect(pg_url) as sql:
            alive = {pid for (pid,) in sql.execute("SELECT pid FROM pg_stat_activity")}
        assert sessions <= alive
