"""Attacks on the platform application served for real: uvicorn, several workers, one store.

Each test serves ``examples/platform_app`` through ``AppServer`` (a child process
group, as ``make app`` runs it) over a folder or a SQLite file in a temporary
folder, and talks to it with httpx from many threads at once, each request on a
new connection so that the workers share them at random:

- races between workers: one mailbox signed up from several browsers at once;
  one person added to an organisation or a team from several tabs at once; a
  team deleted while people are added to it; an organisation deleted while
  projects and resources are made in it; many status changes; a sign-out while
  the same session keeps asking. Afterwards the store holds no duplicate and no
  orphan, and no answer was a 5xx;
- crashes: ``kill -9`` of one worker while writes are in flight (the other goes
  on serving), then of the whole process group: every write acknowledged (303)
  before is there after a restart, and the store opens;
- start and stop: a new SQLite store that one worker opens while another sets it up;
  a graceful stop that one slow client must not hold up;
- hostile requests: HEAD and other methods on every route, redirects towards
  another host, cookies with bytes no browser sends.

Every wait is bounded (``WAIT``); every server a test starts is stopped by it.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from platform_app.security import SESSION_COOKIE as SESSION
from platform_app.server import DATA_URLS, AppServer, data_url, form_token

import hutch

BACKENDS = sorted(DATA_URLS)
PASSWORD = "correct horse battery 7"
ALERT = re.compile(r'role="alert">([^<]*)</p>')
#: The longest any one wait of these tests lasts (a request, a thread, a condition).
WAIT = 30.0
#: How long a graceful stop may take before ``AppServer`` kills the process group.
STOP_WAIT = 8.0
#: How long a test watches for something that must not happen yet.
LOOK = 2.0


# -- people, as browsers ---------------------------------------------------------------------------


def alert(response: httpx.Response) -> str:
    """The problem the page shows (``role="alert"``), or ""."""
    found = ALERT.search(response.text)
    return html.unescape(found.group(1)) if found else ""


def csrf_of(response: httpx.Response) -> str:
    found = form_token(response.text)
    assert found is not None, response.text[:300]
    return found


class Person:
    """One browser: its cookies and the CSRF token of its forms. Every request goes on a new
    connection (so either worker may serve it), and any thread may send one."""

    def __init__(self, base_url: str, cookies: Mapping[str, str], csrf: str) -> None:
        self.base_url = base_url
        self.cookies = dict(cookies)
        self.csrf = csrf

    @classmethod
    def visiting(cls, base_url: str, page: str = "/signup") -> Person:
        """A browser that has opened ``page`` (so it holds a pre-session cookie and a token)."""
        with client(base_url) as http:
            shown = http.get(page)
            return cls(base_url, dict(http.cookies), csrf_of(shown))

    @classmethod
    def signed_up(cls, base_url: str, email: str) -> Person:
        """A browser that signed up as ``email``, and so is signed in."""
        with client(base_url) as http:
            token = csrf_of(http.get("/signup"))
            fields = {"csrf": token, "email": email, "name": "", "password": PASSWORD}
            answer = http.post("/signup", data=fields)
            assert answer.status_code == 303, alert(answer)
            return cls(base_url, dict(http.cookies), csrf_of(http.get("/account")))

    def get(self, path: str, **headers: str) -> httpx.Response:
        with client(self.base_url, self.cookies) as http:
            return http.get(path, headers=headers)

    def post(self, path: str, fields: Mapping[str, str] | None = None) -> httpx.Response:
        with client(self.base_url, self.cookies) as http:
            return http.post(path, data={"csrf": self.csrf, **(fields or {})})

    def created(self, path: str, fields: Mapping[str, str]) -> str:
        """Post a form that makes something; the id of the page it leads to."""
        answer = self.post(path, fields)
        assert answer.status_code == 303, (answer.status_code, alert(answer))
        return answer.headers["location"].rsplit("/", 1)[1]


def client(base_url: str, cookies: Mapping[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, cookies=dict(cookies or {}), follow_redirects=False, timeout=WAIT
    )


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call at the same time (one thread each); their answers, in order."""
    start = threading.Barrier(len(calls), timeout=WAIT)

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def no_server_errors(answers: list[httpx.Response]) -> list[str]:
    """What each 5xx answer said (none is expected)."""
    return [f"{a.status_code} {a.url.path}: {alert(a)}" for a in answers if a.status_code >= 500]


# -- the server's processes ------------------------------------------------------------------------


def processes() -> Iterator[tuple[int, int, bytes]]:
    """Every process: its id, its parent's id and its command line (NUL-separated)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # (gone meanwhile)
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        yield int(entry), parent, command


def uvicorn_parent(server: AppServer) -> int:
    """The uvicorn supervisor serving ``server`` (found by its command line and port)."""
    port = f"--port\0{server.port}\0".encode()
    found = [pid for pid, _, command in processes() if b"platform_app.main:app" in command]
    found = [pid for pid in found if port in Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0"]
    assert len(found) == 1, found
    return found[0]


def uvicorn_workers(server: AppServer) -> list[int]:
    """The worker processes of ``server`` (not multiprocessing's resource tracker)."""
    parent = uvicorn_parent(server)
    return [
        pid
        for pid, ppid, command in processes()
        if ppid == parent and b"multiprocessing.spawn" in command
    ]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend: str = request.param
    return data_url(backend, tmp_path)


@pytest.fixture
def server(url: str, tmp_path: Path) -> Iterator[AppServer]:
    with AppServer(url, workers=2, log=tmp_path / "server.log") as served:
        yield served


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """A server per backend for the races; each test has its own people and organisations."""
    backend: str = request.param
    folder = tmp_path_factory.mktemp(backend)
    with AppServer(data_url(backend, folder), workers=2, log=folder / "server.log") as served:
        yield served


class Writers:
    """Threads that create organisations as fast as they can, each request on a new
    connection, until stopped: which were acknowledged (303) and what else happened."""

    def __init__(self, person: Person, count: int) -> None:
        self.person = person
        self.acknowledged: list[str] = []
        self.otherwise: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(n,)) for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _write(self, n: int) -> None:
        made = 0
        while not self._stopping.is_set():
            made += 1
            try:
                answer = self.person.post("/organisations", {"name": f"Writer {n}.{made}"})
            except httpx.TransportError as error:  # (a worker killed under it)
                with self._changed:
                    self.otherwise[type(error).__name__] += 1
                continue
            with self._changed:
                if answer.status_code == 303:
                    self.acknowledged.append(answer.headers["location"])
                else:
                    self.otherwise[f"{answer.status_code} {alert(answer)}"] += 1
                self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        """Return once ``count`` writes were acknowledged in all."""
        with self._changed:
            done = self._changed.wait_for(lambda: len(self.acknowledged) >= count, WAIT)
        assert done, f"{len(self.acknowledged)} of {count} writes acknowledged; {self.otherwise}"

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(WAIT * 2)
            assert not thread.is_alive(), "a writer did not stop"

    def http_statuses(self) -> Counter[str]:
        """What came back that was an answer, yet not an acknowledgement."""
        return Counter({k: v for k, v in self.otherwise.items() if k[:1].isdigit()})


def stored(url: str) -> dict[str, dict[str, dict[str, object]]]:
    """Every table of the store (opened as one more process would: the server may run)."""
    with hutch.open(url, plugins=["platform", "auth"]) as db:
        return {table: db.store.get_table(table) for table in db.store.get_table_ids()}


def orphans(tables: Mapping[str, Mapping[str, Mapping[str, object]]]) -> list[str]:
    """Rows that point at a row that does not exist, and duplicate memberships."""
    points = [
        ("teams", "organisation_id", "organisations"),
        ("projects", "organisation_id", "organisations"),
        ("resources", "project_id", "projects"),
        ("memberships", "organisation_id", "organisations"),
        ("memberships", "team_id", "teams"),
        ("memberships", "user_id", "users"),
        ("organisations", "owner_id", "users"),
        ("sessions", "user_id", "users"),
    ]
    found = []
    for table, cell, target in points:
        for row_id, row in tables.get(table, {}).items():
            pointed = row.get(cell)
            if pointed is not None and pointed not in tables.get(target, {}):
                found.append(f"{table}/{row_id}.{cell} = {pointed} (no such {target})")
    places = Counter(
        (row["user_id"], row["organisation_id"], row.get("team_id"))
        for row in tables.get("memberships", {}).values()
    )
    found += [f"membership {place} {n} times" for place, n in places.items() if n > 1]
    return found


# -- races between workers -------------------------------------------------------------------------


def test_one_mailbox_signed_up_from_many_browsers_at_once_makes_one_account(
    shared: AppServer,
) -> None:
    server = shared
    spellings = ["same@example.org", "Same@Example.org", "SAME@example.ORG", " same@example.org "]
    guests = [Person.visiting(server.url) for _ in range(8)]
    answers = at_once(
        [
            partial(guest.post, "/signup", {"email": spellings[n % 4], "password": PASSWORD})
            for n, guest in enumerate(guests)
        ]
    )
    assert statuses(answers) == {303: 1, 409: 7}, no_server_errors(answers)
    refusals = {alert(answer) for answer in answers if answer.status_code == 409}
    assert refusals == {"An account with this email exists already: sign in instead."}
    (signed_in,) = [answer for answer in answers if answer.status_code == 303]
    assert SESSION in signed_in.cookies
    users = stored(server.hutch_url)["users"].values()
    emails = [str(row["email"]) for row in users]
    same = [email for email in emails if email.strip().lower() == "same@example.org"]
    assert len(same) == 1, same


def test_races_between_workers_leave_no_duplicate_and_no_orphan(shared: AppServer) -> None:
    server = shared
    owner = Person.signed_up(server.url, "racer@example.org")
    ada, bob, cyd, dan = (f"{name}@example.org" for name in ("ada", "bob", "cyd", "dan"))
    for email in (ada, bob, cyd, dan):
        Person.signed_up(server.url, email)
    members = owner.created("/organisations", {"name": "Members"})
    everything: list[httpx.Response] = []

    # The same person added to the organisation from eight tabs: one membership.
    add_ada = partial(
        owner.post, f"/organisations/{members}/members", {"email": ada, "role": "MEMBER"}
    )
    answers = at_once([add_ada] * 8)
    everything += answers
    assert statuses(answers) == {303: 1, 409: 7}, no_server_errors(answers)

    # The same person added to a team from eight tabs: one team membership.
    team = owner.created(f"/organisations/{members}/teams", {"name": "Rockets"})
    answers = at_once([partial(owner.post, f"/teams/{team}/members", {"email": bob})] * 8)
    everything += answers
    assert statuses(answers) == {303: 1, 409: 7}, no_server_errors(answers)

    # A team deleted while four people are added to it (each from two tabs).
    doomed_team = owner.created(f"/organisations/{members}/teams", {"name": "Doomed"})
    adds = [
        partial(owner.post, f"/teams/{doomed_team}/members", {"email": email})
        for email in (ada, bob, cyd, dan) * 2
    ]
    answers = at_once([*adds[:4], partial(owner.post, f"/teams/{doomed_team}/delete"), *adds[4:]])
    everything += answers
    assert answers[4].status_code == 303, alert(answers[4])
    assert set(statuses(answers)) <= {303, 404, 409}, no_server_errors(answers)

    # An organisation deleted while projects and resources are made in it.
    doomed = owner.created("/organisations", {"name": "Doomed"})
    project = owner.created(f"/organisations/{doomed}/projects", {"name": "Bridge"})
    makes: list[Callable[[], httpx.Response]] = []
    for n in range(6):
        makes.append(partial(owner.post, f"/organisations/{doomed}/projects", {"name": f"P{n}"}))
        resource = {"name": f"R{n}", "type": "DATASET"}
        makes.append(partial(owner.post, f"/projects/{project}/resources", resource))
    delete = partial(owner.post, f"/organisations/{doomed}/delete")
    answers = at_once([*makes[:6], delete, *makes[6:]])
    everything += answers
    assert answers[6].status_code == 303, alert(answers[6])
    assert set(statuses(answers)) <= {303, 404}, no_server_errors(answers)

    # Many status changes of one resource: each acknowledged, and every worker shows the same.
    busy = owner.created("/organisations", {"name": "Busy"})
    busy_project = owner.created(f"/organisations/{busy}/projects", {"name": "Site"})
    spec = owner.created(f"/projects/{busy_project}/resources", {"name": "Spec", "type": "OTHER"})
    choices = ["ACTIVE", "FAILED", "ARCHIVED", "PROCESSING"]
    answers = at_once(
        [
            partial(owner.post, f"/resources/{spec}/status", {"status": choices[n % 4]})
            for n in range(16)
        ]
    )
    everything += answers
    assert statuses(answers) == {303: 16}, no_server_errors(answers)
    shown = {
        re.findall(r'id="resource-status">(\w+)<', owner.get(f"/resources/{spec}").text)[0]
        for _ in range(6)
    }
    assert len(shown) == 1, shown
    assert shown <= set(choices), shown

    assert no_server_errors(everything) == []
    tables = stored(server.hutch_url)
    assert orphans(tables) == []
    assert doomed not in tables["organisations"]
    users = {row["email"]: user_id for user_id, row in tables["users"].items()}
    places = [
        (row["user_id"], row.get("team_id"))
        for row in tables["memberships"].values()
        if row["organisation_id"] == members and row["user_id"] in (users[ada], users[bob])
    ]
    # Ada organisation-wide once (the doomed team's membership dropped or made hers), Bob
    # in Rockets once (and maybe organisation-wide, from the doomed team).
    assert places.count((users[ada], None)) == 1, places
    assert places.count((users[bob], team)) == 1, places


def test_a_sign_out_racing_requests_of_the_same_session(shared: AppServer) -> None:
    """Every request that starts once the sign-out was acknowledged is sent to sign in."""
    server = shared
    Person.signed_up(server.url, "leaver@example.org")
    with client(server.url) as http:  # a second session of the same person
        token = csrf_of(http.get("/signin"))
        fields = {"csrf": token, "email": "leaver@example.org", "password": PASSWORD}
        assert http.post("/signin", data=fields).status_code == 303
        tab = Person(server.url, dict(http.cookies), csrf_of(http.get("/account")))

    signed_out_at: list[float] = []
    seen: list[tuple[float, int, str]] = []
    changed = threading.Condition()
    stopping = threading.Event()

    def ask(n: int) -> None:
        while not stopping.is_set():
            began = time.monotonic()
            if n % 2:
                answer = tab.get("/organisations")
            else:
                answer = tab.post("/organisations", {"name": f"Tab {n}"})
            with changed:
                seen.append((began, answer.status_code, answer.headers.get("location", "")))
                changed.notify_all()

    def after_sign_out() -> list[tuple[float, int, str]]:
        return [one for one in seen if signed_out_at and one[0] > signed_out_at[0]]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        with changed:
            assert changed.wait_for(lambda: len(seen) >= 8, WAIT)
        answer = tab.post("/signout")
        assert answer.status_code == 303
        with changed:
            signed_out_at.append(time.monotonic())
            assert changed.wait_for(lambda: len(after_sign_out()) >= 8, WAIT)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(WAIT * 2)
    assert [s for s in seen if s[1] >= 500] == []
    assert [(status, location) for _, status, location in after_sign_out()] == [
        (303, "/signin")
    ] * len(after_sign_out())


# -- crashes ---------------------------------------------------------------------------------------


def test_acknowledged_writes_outlive_kill_9_of_a_worker_then_of_the_whole_server(
    server: AppServer,
) -> None:
    owner = Person.signed_up(server.url, "owner@example.org")
    with Writers(owner, 6) as writers:
        writers.wait_for(20)
        victim, survivor = uvicorn_workers(server)
        os.kill(victim, signal.SIGKILL)
        # The other worker (or the one uvicorn starts instead) goes on acknowledging writes.
        writers.wait_for(len(writers.acknowledged) + 20)
        assert survivor in uvicorn_workers(server)
        os.killpg(uvicorn_parent(server), signal.SIGKILL)  # the whole group, mid-load
    assert writers.http_statuses() == Counter()

    server.stop()  # (reaps the killed supervisor)
    server.start()  # the store opens again, on the same data
    # The same cookie (at the server's port, which a restart may change): the session lives on.
    owner = Person(server.url, owner.cookies, owner.csrf)
    page = owner.get("/organisations")
    assert page.status_code == 200
    missing = [made for made in writers.acknowledged if f'href="{made}"' not in page.text]
    assert missing == [], f"{len(missing)} of {len(writers.acknowledged)} acknowledged writes lost"


def test_one_slow_client_does_not_turn_a_graceful_stop_into_kill_9(
    tmp_path: Path,
) -> None:
    """A client that sent a form's headers but not yet its body (a slow upload, a stalled
    phone) must not keep the server from stopping. Without a limit on uvicorn's graceful
    shutdown (``--timeout-graceful-shutdown``: ``GRACEFUL_STOP`` in ``server.py``, and in
    ``make app``) the worker serving it waits for it forever: ``AppServer.stop`` (or systemd)
    ends it only by killing the process group, so that worker never closes its database,
    and meanwhile every new connection waits in the listening socket's queue, which the
    supervisor keeps open. (Under load, a keep-alive connection that uvicorn accepted just
    as it began to shut down holds it up the same way.)
    """
    server = AppServer(data_url("sqlite", tmp_path), workers=2, log=tmp_path / "server.log")
    server.start()
    # How the supervisor ended says how the stop went: 0 once every worker shut down, -9 if
    # ``stop`` had to kill the process group after waiting ``server.timeout``.
    supervisor = server._process
    assert supervisor is not None
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as slow:
            slow.sendall(
                b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n"
            )
            # uvicorn answers "100 Continue" once the application asks for the body.
            assert slow.recv(100).startswith(b"HTTP/1.1 100 ")
            slow.sendall(b"csrf=")
            server.timeout = STOP_WAIT
            server.stop()
        assert supervisor.returncode == 0, (
            f"the server was killed ({supervisor.returncode}) after waiting {STOP_WAIT} s "
            "for one client"
        )
    finally:
        server.stop()


# -- hostile requests ------------------------------------------------------------------------------


@dataclass
class Site:
    server: AppServer
    owner: Person
    ids: dict[str, str]

    def path(self, template: str) -> str:
        return template.format(**self.ids)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for the hostile requests, with an organisation, a team, a project and a
    resource of its owner."""
    folder = tmp_path_factory.mktemp("hostile")
    with AppServer(data_url("file", folder), workers=2, log=folder / "server.log") as served:
        owner = Person.signed_up(served.url, "owner@example.org")
        ids = {"organisation_id": owner.created("/organisations", {"name": "Acme"})}
        organisation = "/organisations/{organisation_id}".format(**ids)
        ids["team_id"] = owner.created(f"{organisation}/teams", {"name": "T"})
        ids["project_id"] = owner.created(f"{organisation}/projects", {"name": "P"})
        ids["resource_id"] = owner.created(
            "/projects/{project_id}/resources".format(**ids), {"name": "R", "type": "OTHER"}
        )
        yield Site(served, owner, ids)


PAGES = [
    "/",
    "/signin",
    "/signup",
    "/account",
    "/organisations",
    "/organisations/{organisation_id}",
    "/teams/{team_id}",
    "/projects/{project_id}",
    "/resources/{resource_id}",
]
FORMS = [
    "/signup",
    "/signin",
    "/signout",
    "/account/delete",
    "/organisations",
    "/organisations/{organisation_id}/rename",
    "/organisations/{organisation_id}/delete",
    "/organisations/{organisation_id}/members",
    "/organisations/{organisation_id}/teams",
    "/organisations/{organisation_id}/projects",
    "/teams/{team_id}/rename",
    "/teams/{team_id}/members",
    "/projects/{project_id}/status",
    "/resources/{resource_id}/status",
]


def test_head_is_answered_as_get_is(site: Site) -> None:
    """RFC 9110 (9.1): a server answers HEAD wherever it answers GET, with the same status
    and headers and no body. Uptime checks and link checkers send HEAD, and FastAPI's
    ``@router.get`` alone takes GET only (every page said 405)."""
    differ = []
    for template in PAGES:
        path = site.path(template)
        got = site.owner.get(path)
        with client(site.server.url, site.owner.cookies) as http:
            head = http.head(path)
        if (head.status_code, head.content) != (got.status_code, b""):
            differ.append(f"{path}: GET {got.status_code}, HEAD {head.status_code}")
    assert differ == []


def test_a_method_a_route_refuses_gets_a_405_that_says_which_it_allows(site: Site) -> None:
    """RFC 9110 (15.5.6): a 405 answer MUST carry ``Allow``. The handler of framework errors
    (``main.framework_refused``) draws the problem page, and must keep the headers of the
    ``HTTPException`` it was given (it dropped them, ``Allow`` among them). And no 5xx."""
    problems = []
    with client(site.server.url, site.owner.cookies) as http:
        for template in [*PAGES, *FORMS]:
            path = site.path(template)
            for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
                answer = http.request(method, path)
                if answer.status_code >= 500:
                    problems.append(f"{method} {path}: {answer.status_code}")
                elif answer.status_code == 405 and "allow" not in answer.headers:
                    problems.append(f"{method} {path}: 405 without Allow")
    assert problems == []


def test_no_answer_redirects_to_another_host(site: Site) -> None:
    """Every redirect of the application is a path on this site. Starlette's own slash
    redirect (a 307 for a URL with a trailing slash, unless ``redirect_slashes=False``) is an
    absolute URL built from the request's ``Host`` header: whoever sets that header (a
    misrouted or caching proxy) would choose the host the browser goes to next, and a 307
    makes it post the form there again."""
    own = urlsplit(site.server.url).netloc
    elsewhere = []
    with client(site.server.url, site.owner.cookies) as http:
        for template in [*PAGES, *FORMS]:
            path = site.path(template).rstrip("/") + "/"
            for method in ("GET", "POST"):
                answer = http.request(method, path, headers={"Host": "evil.example"})
                location = answer.headers.get("location", "")
                if urlsplit(location).netloc not in ("", own):
                    elsewhere.append(f"{method} {path}: {answer.status_code} -> {location}")
    assert elsewhere == []


@pytest.mark.parametrize(
    "cookie",
    [
        b"platform_session=\xff\xfe\x80",
        b"platform_session=\xc3\xa9; platform_presession=\xed\xa0\x80",
        b"platform_session=a; platform_session=b",
        b'platform_session="\\"; =; ;;',
        b"platform_presession=" + b"\x80" * 4000,
        b"platform_session=" + b"A" * 12_000,
    ],
    ids=["bytes", "utf-8 and surrogate", "twice", "quotes", "long pre-session", "12 kB"],
)
def test_cookies_with_bytes_no_browser_sends_sign_nobody_in(site: Site, cookie: bytes) -> None:
    """Cookies only a hand-made request carries (bytes that are no text, a lone surrogate,
    one cookie twice, stray quotes and semicolons, 12 kB): pages answer, nobody is signed in,
    a form is sent to sign in or refused, and nothing fails."""

    def ask(request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", site.server.port), timeout=WAIT) as raw:
            raw.sendall(request)
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        return answer.split(b"\r\n", 1)[0]

    head = b"Host: 127.0.0.1\r\nConnection: close\r\nCookie: " + cookie + b"\r\n"
    body = b"csrf=x&name=Forged"
    form = b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 18\r\n"
    assert len(body) == 18
    path = site.path("/organisations/{organisation_id}").encode()
    assert ask(b"GET /signin HTTP/1.1\r\n" + head + b"\r\n").startswith(b"HTTP/1.1 200 ")
    assert ask(b"GET " + path + b" HTTP/1.1\r\n" + head + b"\r\n").startswith(b"HTTP/1.1 303 ")
    posted = ask(b"POST /organisations HTTP/1.1\r\n" + head + form + b"\r\n" + body)
    assert posted.startswith((b"HTTP/1.1 303 ", b"HTTP/1.1 403 ")), posted
