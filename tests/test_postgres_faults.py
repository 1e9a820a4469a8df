"""Faults on ``postgresql://``: a network cut, a node killed mid-transaction, the server
restarted or crashed under load.

Each must fail what was in flight with a clear ``hutch.StorageError`` (never a hang,
never another exception), lose nothing that was acknowledged, and let the next call go
on. A network cut is played by :class:`Proxy`, a forwarder between nodes and the cluster
that stops reading and forwarding while every socket stays open, as a network that drops
packets leaves them: the kernel notices nothing, so hutch's own bound on a silent server
must. Restarts use a cluster of the test's own, so the run's shared one goes on
undisturbed. Every test skips, saying why, where no cluster can be started.
"""

from __future__ import annotations

import itertools
import re
import selectors
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from children import WAIT, Child
from pgcluster import Cluster, running_or_skip

import hutch
from hutch.backends.postgres.testing import fresh_url

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install 'hutch[postgres]'"
)


class Proxy:
    """Forwards ``127.0.0.1:port`` to a server's port until :meth:`cut`, then reads and
    forwards nothing (connections opened meanwhile wait unanswered) until :meth:`heal`.
    A node that closes its side closes the server's too, as its kernel would."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._wake, self._waker = socket.socketpair()
        self._lock = threading.Lock()  # held while a chunk is read and forwarded
        self._flowing = True
        self._closing = False
        self._trap: tuple[re.Pattern[bytes], str, threading.Event] | None = None
        self._peers: dict[socket.socket, socket.socket] = {}
        self._nodes: set[socket.socket] = set()  # the nodes' ends (the others: the server's)
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)
        self._thread.start()

    def url(self, url: str, port: int) -> str:
        """``url`` (of the server on ``port``) through this proxy."""
        return url.replace(f"@127.0.0.1:{port}/", f"@127.0.0.1:{self.port}/", 1)

    def cut(self) -> None:
        """From now on, nothing passes (in flight: as good as lost)."""
        with self._lock:
            self._flowing = False
        self._waker.send(b".")

    def heal(self) -> None:
        with self._lock:
            self._flowing = True
        self._waker.send(b".")

    def sent(self, marker: bytes, then: Literal["pass", "cut", "drop"]) -> threading.Event:
        """An event set when a node next sends what matches ``marker``, which then passes,
        passes and cuts the network behind it, or is lost in the cut."""
        seen = threading.Event()
        with self._lock:
            self._trap = (re.compile(marker), then, seen)
        return seen

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._waker.send(b".")
        self._thread.join(WAIT)
        for end in (self._listener, self._wake, self._waker, *self._peers):
            end.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake, selectors.EVENT_READ)
            while True:
                with self._lock:
                    if self._closing:
                        return
                    watched = {self._listener, *self._peers} if self._flowing else set()
                for registered in set(selector.get_map().values()):
                    if registered.fileobj is not self._wake and registered.fileobj not in watched:
                        selector.unregister(registered.fileobj)
                for end in watched - {key.fileobj for key in selector.get_map().values()}:
                    selector.register(end, selectors.EVENT_READ)
                for key, _ in selector.select():
                    if key.fileobj is self._wake:
                        self._wake.recv(4096)
                    elif key.fileobj is self._listener:
                        self._accept()
                    else:
                        assert isinstance(key.fileobj, socket.socket)
                        self._forward(key.fileobj, selector)

    def _accept(self) -> None:
        node, _ = self._listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", self._target), timeout=WAIT)
        except OSError:
            node.close()
            return
        self._peers[node], self._peers[server] = server, node
        self._nodes.add(node)

    def _forward(self, end: socket.socket, selector: selectors.BaseSelector) -> None:
        with self._lock:
            if not self._flowing or end not in self._peers:  # cut since select() returned
                return
            other = self._peers[end]
            try:
                chunk = end.recv(1 << 16)
                if chunk and self._trapped(end, chunk):
                    return
                if chunk:
                    other.sendall(chunk)
                    return
            except OSError:
                pass
            for gone in (end, other):  # one side closed: so does the other
                if gone in selector.get_map():
                    selector.unregister(gone)
                del self._peers[gone]
                self._nodes.discard(gone)
                gone.close()

    def _trapped(self, end: socket.socket, chunk: bytes) -> bool:
        """Whether the trap caught ``chunk`` (then forwarded as it says, and the network cut)."""
        if self._trap is None or end not in self._nodes or not self._trap[0].search(chunk):
            return False
        _, then, seen = self._trap
        self._trap = None
        if then != "drop":
            self._peers[end].sendall(chunk)
        self._flowing = then == "pass"
        seen.set()
        return True


@pytest.fixture
def proxy(pg_cluster: Cluster) -> Iterator[Proxy]:
    forwarder = Proxy(pg_cluster.port)
    try:
        yield forwarder
    finally:
        forwarder.close()


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of the test's own, which it may restart or crash."""
    with running_or_skip() as cluster:
        yield cluster


def _connection(db: hutch.Database) -> Any:
    """The connection of a database's backend (whose socket and session a test looks at)."""
    persister: Any = db.store._persister
    return persister._conn


def _ids(url: str, table: str) -> set[str]:
    """The row ids of a collection's table, read with plain SQL."""
    with psycopg.connect(url) as sql:
        return {row_id for (row_id,) in sql.execute(f"SELECT id FROM {table}")}


def _names_the_store(error: hutch.StorageError, cluster: Cluster) -> None:
    """The message names the store by its URL, password hidden."""
    message = str(error)
    assert "postgresql://hutch:***@127.0.0.1:" in message
    assert cluster.password not in message


# -- the TCP settings --------------------------------------------------------------------------

TCP_OPTIONS = ("SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")
SERVER_SIDE = (
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_keepalives_count",
    "tcp_user_timeout",
    "client_connection_check_interval",
)


@pytest.mark.parametrize(
    ("query", "client", "server"),
    [
        ("", [1, 10, 5, 3, 30000], ["10", "5", "3", "30000", "5000"]),
        (
            "&keepalives_idle=7&keepalives_interval=2&keepalives_count=4&tcp_user_timeout=1234",
            [1, 7, 2, 4, 1234],
            ["7", "2", "4", "1234", "2000"],
        ),
    ],
    ids=["hutch's", "the URL's"],
)
def test_both_ends_of_a_connection_notice_a_peer_that_is_gone(
    pg_url: str, query: str, client: list[int], server: list[str]
) -> None:
    """Keepalives and tcp_user_timeout on the node's socket, the same on the server's side."""
    with hutch.open(pg_url + query, follow=False) as db:
        conn = _connection(db)
        with socket.socket(fileno=conn.pgconn.socket) as end:
            try:
                levels = [socket.SOL_SOCKET] + [socket.IPPROTO_TCP] * 4
                found = [
                    end.getsockopt(level, getattr(socket, name))
                    for level, name in zip(levels, TCP_OPTIONS, strict=True)
                ]
            finally:
                end.detach()  # (the connection's own)
        assert found == client
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SERVER_SIDE),)
            ).fetchall()
        )
        assert [settings[name] for name in SERVER_SIDE] == server


@pytest.mark.parametrize("value", [0, -1, "soon", True, float("nan")])
def test_a_response_timeout_that_is_not_a_positive_number_is_refused(
    pg_url: str, value: Any
) -> None:
    with pytest.raises(hutch.ConfigError, match="response_timeout takes a number of seconds"):
        hutch.open(pg_url, response_timeout=value)


# -- a network cut -----------------------------------------------------------------------------


def test_a_network_cut_is_an_error_in_bounded_time_and_the_next_call_reconnects(
    pg_url: str, pg_cluster: Cluster, proxy: Proxy
) -> None:
    """A commit on a connection that hears nothing back fails after lock_timeout +
    response_timeout, and a refresh too (connecting again waits connect_timeout at most);
    memory rolls back; once the network is back, the next write connects and goes through.
    The commit went with its rows, in one message, so it may have reached the server once
    the network was back: the error says so, and the node then takes it in."""
    url = proxy.url(pg_url, pg_cluster.port) + "&connect_timeout=2"
    with hutch.open(url, lock_timeout=2, response_timeout=1, follow=False) as db:
        db.store.set_row("users", "u1", {"n": 1})

        def write_as_the_network_is_cut() -> None:
            with db.store.transaction():
                db.store.set_row("users", "u1", {"n": 2})
                db.store.set_row("users", "u2", {"n": 2})
                proxy.cut()

        with pytest.raises(hutch.StorageError) as caught:
            write_as_the_network_is_cut()
        _names_the_store(caught.value, pg_cluster)
        assert "the server sent nothing for 3 s" in str(caught.value)
        assert "may or may not have happened" in str(caught.value)
        assert "larger response_timeout" in str(caught.value)
        assert "next call connects again" in str(caught.value)
        assert db.store.get_table("users") == {"u1": {"n": 1}}
        with pytest.raises(hutch.StorageError) as caught:
            db.refresh()
        _names_the_store(caught.value, pg_cluster)
        proxy.heal()
        db.store.set_row("users", "u1", {"n": 3})
        happened = db.store.has_row("users", "u2")
        assert db.store.get_table("users") == {"u1": {"n": 3}} | (
            {"u2": {"n": 2}} if happened else {}
        )
    assert _ids(pg_url, "users") == {"u1"} | ({"u2"} if happened else set())


@pytest.mark.parametrize("then", ["cut", "drop"], ids=["it-reached-the-server", "it-was-lost"])
def test_a_commit_cut_off_in_flight_may_have_happened_and_the_node_takes_it_in(
    pg_url: str, pg_cluster: Cluster, proxy: Proxy, then: Literal["cut", "drop"]
) -> None:
    """The error says that the commit may or may not have happened; memory rolls back, and
    the node's next transaction reads its own commit from the change log if it did."""
    url = proxy.url(pg_url, pg_cluster.port)
    with hutch.open(url, lock_timeout=2, response_timeout=1, follow=False) as db:
        db.store.set_row("users", "u1", {"n": 1})
        heard: list[object] = []
        db.store.add_listener(lambda changes: heard.append(changes.tables))
        committing = proxy.sent(rb"\bCOMMIT\b", then=then)
        with pytest.raises(hutch.StorageError, match="may or may not have happened") as caught:
            db.store.set_row("users", "u2", {"n": 2})
        assert committing.is_set()
        _names_the_store(caught.value, pg_cluster)
        assert db.store.get_table("users") == {"u1": {"n": 1}}
        proxy.heal()
        db.store.set_row("users", "u3", {"n": 3})
        happened = then == "cut"
        took_in = [{"users": {"u2": {"n": 2}}}] if happened else []
        assert heard == [*took_in, {"users": {"u3": {"n": 3}}}]
        assert set(db.store.get_row_ids("users")) == {"u1", "u3"} | ({"u2"} if happened else set())
    assert _ids(pg_url, "users") == {"u1", "u3"} | ({"u2"} if happened else set())


# -- a node killed mid-transaction -------------------------------------------------------------

DOOMED = """
import sys
import hutch

url, when = sys.argv[1], sys.argv[2]
db = hutch.open(url)
with db.store.transaction():
    db.store.set_row("users", "doomed", {"n": 1})
    db.store.set_row("users", "doomed-too", {"n": 1})
    print("holding the lock", flush=True)
    if when == "in-its-body":
        sys.stdin.readline()  # killed while it waits here
print("committed", flush=True)  # (killed before: in the body, or in its write)
"""
#: A person's trigger that holds the write of row 'doomed' until the test lets it go.
HOLD = """CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    PERFORM pg_advisory_xact_lock(4242);
    RETURN NEW;
END $$"""


@pytest.mark.parametrize("when", ["in-its-body", "in-its-write"])
def test_a_node_killed_mid_transaction_loses_nothing_and_blocks_nobody(
    pg_url: str, pg_cluster: Cluster, proxy: Proxy, tmp_path: Path, when: str
) -> None:
    """A node is killed holding the write lock: between statements (the server hears its
    socket close at once) or while its write waits inside the server (the server looks for
    the node every keepalives_interval). Its session ends, the lock is free for the next
    transaction, nothing of it is written, and nothing committed before is lost."""
    with (
        hutch.open(pg_url, lock_timeout=20, follow=False) as db,
        psycopg.connect(pg_url, autocommit=True) as sql,
    ):
        db.store.set_row("users", "kept", {"n": 1})
        sql.execute(HOLD)
        sql.execute(
            "CREATE TRIGGER hold BEFORE INSERT OR UPDATE ON users FOR EACH ROW "
            "WHEN (NEW.id = 'doomed') EXECUTE FUNCTION hold()"
        )
        sql.execute("SELECT pg_advisory_lock(4242)")
        writing = proxy.sent(rb'INSERT INTO "[^"]+"\."users"', then="pass")
        url = proxy.url(pg_url, pg_cluster.port) + "&keepalives_interval=1"
        command = [sys.executable, "-c", DOOMED, url, when]
        child = Child("the doomed node", command, tmp_path / "doomed.err")
        try:
            child.expect("holding the lock")
            if when == "in-its-write":
                assert writing.wait(WAIT), "the doomed node's write never reached the server"
            child.process.kill()
            child.process.wait(WAIT)
        finally:
            child.end()
        db.store.set_row("users", "after", {"n": 2})  # waits for the lock: the test holds 4242
        sql.execute("SELECT pg_advisory_unlock(4242)")
        assert db.store.get_table("users") == {"kept": {"n": 1}, "after": {"n": 2}}
    assert _ids(pg_url, "users") == {"kept", "after"}
    with hutch.open(pg_url) as again:
        assert again.store.get_table("users") == {"kept": {"n": 1}, "after": {"n": 2}}


# -- the server restarted under load -----------------------------------------------------------


class Node:
    """A database committing a new row after another on a thread of its own, noting what
    became of each: acknowledged, failed, or perhaps committed (the error says which)."""

    def __init__(self, url: str, name: str, progress: threading.Condition) -> None:
        self.db = hutch.open(url, lock_timeout=10)
        self.name = name
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.unknown: list[str] = []
        self.unexpected: list[BaseException] = []
        self._progress = progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()

    def _run(self) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            row_id = f"{self.name}-{n}"
            try:
                self.db.store.set_row("acks", row_id, {"n": n})
            except hutch.StorageError as error:
                if "may or may not have happened" in str(error):
                    self.unknown.append(row_id)
                else:
                    self.failed.append(row_id)
                self._stop.wait(0.02)  # as an application retries: a moment later
            except BaseException as error:
                self.unexpected.append(error)
                return
            else:
                self.acked.append(row_id)
            finally:
                with self._progress:
                    self._progress.notify_all()

    def done(self, acked: int) -> bool:
        return len(self.acked) >= acked or bool(self.unexpected)

    def halt(self) -> None:
        """Stop committing, waiting for the call in flight (at most ``WAIT``: see hangs)."""
        self._stop.set()
        self._thread.join(WAIT)

    @property
    def hangs(self) -> bool:
        return self._thread.is_alive()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_server_restarted_under_load_loses_nothing_acknowledged(
    own_cluster: Cluster, mode: str, several_opens: None
) -> None:
    """Three nodes commit while the server restarts (``immediate``: crashes). What was in
    flight fails with a StorageError and nothing else, later commits go through on new
    connections, every acknowledged commit is there afterwards, no failed one is, and every
    node's memory agrees with the server's."""
    url = fresh_url(own_cluster.database("faults"), f"restart_{mode}")
    hutch.open(url).close()  # the store exists before the nodes open it
    progress = threading.Condition()
    nodes: list[Node] = []
    try:
        for n in range(3):
            nodes.append(Node(url, f"node{n}", progress))
        with progress:
            assert progress.wait_for(lambda: all(node.done(5) for node in nodes), WAIT)
        own_cluster.restart(mode)
        before = [len(node.acked) for node in nodes]
        with progress:
            assert progress.wait_for(
                lambda: all(node.done(n + 5) for node, n in zip(nodes, before, strict=True)), WAIT
            )
        for node in nodes:
            node.halt()
        assert [node.name for node in nodes if node.hangs] == []
        assert [node.unexpected for node in nodes] == [[], [], []]
        acked = {row_id for node in nodes for row_id in node.acked}
        failed = {row_id for node in nodes for row_id in node.failed}
        unknown = {row_id for node in nodes for row_id in node.unknown}
        assert failed | unknown, "the restart met no transaction in flight"
        present = _ids(url, "acks")
        assert acked <= present
        assert present <= acked | unknown
        with hutch.open(url) as fresh:
            assert set(fresh.store.get_row_ids("acks")) == present
        for node in nodes:
            node.db.refresh()
            assert set(node.db.store.get_row_ids("acks")) == present
    finally:
        for node in nodes:
            node.halt()
            node.db.close()
