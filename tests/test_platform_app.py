"""The example platform application (``examples/platform_app``), in process, on real backends.

Each test drives ``create_app(url)`` through ``TestClient`` as browsers would
(one client, one cookie jar, per person; redirects not followed, so every
response is the application's own) over a folder or a SQLite file in
``tmp_path``, and reads the store to see what was really written:

- the session cookie's flags; sign-out; the store holds an Argon2 hash and the
  SHA-256 of each session token, never a password or a cookie;
- CSRF: every form, sign-in and sign-up included, refuses a post without this
  browser's token and writes nothing;
- who sees what: an outsider gets 404 for every page and form of another's
  organisation; members, admins and the owner may do what their role allows;
- every mistake a user can make is a 4xx page that says what went wrong
  (``role="alert"``), never a 500, and writes nothing; hostile ids and fields too;
- two workers on one store agree at once (sign-out, new organisations), and
  an expired session sends the browser to the sign-in page.

Password hashing is Argon2 with its lightest settings in most tests (same
format, milliseconds instead of a quarter of a second); the tests of what is
stored use the application's own settings.
"""

from __future__ import annotations

import html
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from platform_app import security
from platform_app.main import PAGE_MODULES, create_app
from platform_app.server import data_url, form_token
from platform_app.web import platform_of
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

import hutch
from hutch.plugins.auth import AuthAdapter, Session, hash_token

with warnings.catch_warnings():
    # Starlette's test client says, once, on import, that it would rather run on httpx2.
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

SESSION, PRESESSION = security.SESSION_COOKIE, security.PRESESSION_COOKIE
PASSWORD = "correct horse battery 7"
OWNER, MEMBER, OUTSIDER = "owner@example.org", "member@example.org", "outsider@example.org"
NEWCOMER = "newcomer@example.org"  # signed up, in no organisation: whom forms add
ALERT = re.compile(r'role="alert">([^<]*)</p>')
NOT_FOUND = "There is no such page, or it is not yours to see."
FORM_REFUSED = "This form has expired or came from another site"
NOT_ALLOWED = "you may not do that"
OWNER_ONLY = "Only the organisation's owner may delete it."
BACKENDS = ["file", "sqlite"]
#: Where storage decides the outcome: the backends above, and PostgreSQL (a throw-away
#: cluster; skipped, saying why, where none can start).
EVERY_BACKEND = [*BACKENDS, "postgresql"]
#: Argon2id at its lightest: hashes in the stored format, in milliseconds.
LIGHT = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))

#: Every form that acts on an organisation or what it holds, with fields that would work.
#: ``{membership_id}`` is the member's organisation-wide membership under /organisations,
#: their team membership under /teams.
ORGANISATION_FORMS: list[tuple[str, dict[str, str]]] = [
    ("/organisations/{organisation_id}/rename", {"name": "Renamed"}),
    ("/organisations/{organisation_id}/delete", {}),
    ("/organisations/{organisation_id}/members", {"email": NEWCOMER, "role": "ADMIN"}),
    ("/organisations/{organisation_id}/members/{membership_id}/remove", {}),
    ("/organisations/{organisation_id}/teams", {"name": "Second team"}),
    ("/organisations/{organisation_id}/projects", {"name": "Second project"}),
    ("/teams/{team_id}/rename", {"name": "Renamed team"}),
    ("/teams/{team_id}/delete", {}),
    ("/teams/{team_id}/members", {"email": NEWCOMER}),
    ("/teams/{team_id}/members/{membership_id}/remove", {}),
    ("/projects/{project_id}/status", {"status": "PAUSED"}),
    ("/projects/{project_id}/delete", {}),
    ("/projects/{project_id}/resources", {"name": "Second resource", "type": "DATASET"}),
    ("/resources/{resource_id}/status", {"status": "ARCHIVED"}),
    ("/resources/{resource_id}/delete", {}),
]
#: The other forms: who posts them in the tests, and fields that would work.
OTHER_FORMS: list[tuple[str, str, dict[str, str]]] = [
    ("/signup", "guest", {"email": "new@example.org", "password": PASSWORD}),
    ("/signin", "guest", {"email": OWNER, "password": PASSWORD}),
    ("/signout", "outsider", {}),
    ("/organisations", "owner", {"name": "Another organisation"}),
    ("/account/delete", "outsider", {}),
]
PAGES = ["/organisations/{organisation_id}", "/teams/{team_id}", "/projects/{project_id}"]
PAGES += ["/resources/{resource_id}"]
#: The forms of the organisation's owners and admins (its name, members and teams), and those
#: of every member but viewers (projects and resources). Deleting it is the owner's alone.
MANAGING = {path for path, _ in ORGANISATION_FORMS if "/members" in path or "/teams" in path}
MANAGING.add("/organisations/{organisation_id}/rename")
WORKING = {path for path, _ in ORGANISATION_FORMS if "/projects" in path or "/resources" in path}


# -- helpers -------------------------------------------------------------------------------------


def alert(response: httpx.Response) -> str:
    """The problem the page shows (``role="alert"``), or ""."""
    found = ALERT.search(response.text)
    return html.unescape(found.group(1)) if found else ""


def refused(response: httpx.Response, status: int, message: str) -> None:
    """The response is a page of ``status`` whose alert says ``message``."""
    shown = alert(response) or response.text[:300]
    assert (response.status_code, message in alert(response)) == (status, True), shown


def contents(app: FastAPI) -> bytes:
    """Everything the application's store holds: its tables and keyed values."""
    store = platform_of(app).db.store
    whole = {
        "tables": {table: store.get_table(table) for table in store.get_table_ids()},
        "values": store.get_values(),
    }
    return orjson.dumps(whole, option=orjson.OPT_SORT_KEYS)


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """The response's ``Set-Cookie`` headers: name -> attributes (lower-case names; ``value``)."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = header.split(";")
        name, _, value = first.strip().partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, setting = attribute.strip().partition("=")
            parsed[key.lower()] = setting
        found[name] = parsed
    return found


class Visitor:
    """One person's browser: its own cookies; it reads the CSRF token from a page, as forms do."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._tokens: dict[tuple[str | None, str | None], str] = {}

    @classmethod
    def on(cls, app: FastAPI, base_url: str = "http://testserver") -> Visitor:
        """A browser on an application whose lifespan another client runs."""
        return cls(client(app, base_url))

    def get(self, path: str) -> httpx.Response:
        response: httpx.Response = self.client.get(path)
        return response

    def token(self) -> str:
        """The CSRF token of this browser's forms, as the sign-in page shows it (to anybody),
        read again whenever the browser's cookies changed."""
        cookies = self.client.cookies
        secrets = (cookies.get(SESSION), cookies.get(PRESESSION))
        if secrets not in self._tokens:
            found = form_token(self.get("/signin").text)
            assert found is not None
            secrets = (cookies.get(SESSION), cookies.get(PRESESSION))  # (a first visit's new)
            self._tokens[secrets] = found
        return self._tokens[secrets]

    def post(
        self, path: str, fields: Mapping[str, str] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        """Post a form with this browser's CSRF token (or ``token``)."""
        return self.send(path, {"csrf": self.token() if token is None else token, **(fields or {})})

    def send(self, path: str, fields: Mapping[str, str]) -> httpx.Response:
        """Post exactly ``fields``."""
        response: httpx.Response = self.client.post(path, data=dict(fields))
        return response

    def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/signup", {"email": email, "name": "", "password": password})
        assert response.status_code == 303, alert(response)
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/signin", {"email": email, "password": password})
        assert response.status_code == 303, alert(response)
        return response

    @property
    def session(self) -> str:
        cookie: str | None = self.client.cookies.get(SESSION)
        assert cookie, "this browser is not signed in"
        return cookie

    def copy_to(self, other: TestClient) -> Visitor:
        """The same browser (its cookies) talking to another client's application."""
        for cookie in self.client.cookies.jar:
            other.cookies.jar.set_cookie(cookie)
        return Visitor(other)

    def created(self, path: str, fields: Mapping[str, str]) -> str:
        """Post a form that creates something; the id of the page it leads to."""
        response = self.post(path, fields)
        assert response.status_code == 303, alert(response)
        return response.headers["location"].rsplit("/", 1)[1]


def client(app: FastAPI, base_url: str = "http://testserver") -> TestClient:
    return TestClient(app, base_url=base_url, follow_redirects=False, raise_server_exceptions=False)


def user_id(app: FastAPI, email: str) -> str:
    user = platform_of(app).repos.users.find_by_email(email)
    assert user is not None
    return user.id


def sessions_of(app: FastAPI, token: str) -> list[Session]:
    """The stored sessions of a cookie (found by the token's hash, as the store keeps it)."""
    return platform_of(app).auth.sessions.find(session_token=hash_token(token))


@pytest.fixture
def light_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its lightest for this test's passwords (the unknown-email decoy too)."""
    monkeypatch.setattr(security, "_hasher", LIGHT)
    monkeypatch.setattr(security, "_DECOY", LIGHT.hash("decoy password"))


@dataclass
class World:
    """An organisation of the owner, with a team, a project and a resource; a member in it
    (organisation-wide and in the team); an outsider signed up and in none of it."""

    app: FastAPI
    owner: Visitor
    member: Visitor
    outsider: Visitor
    ids: dict[str, str]

    def path(self, template: str, **instead: str) -> str:
        """``template`` with this world's ids, or those given ``instead``
        (``{membership_id}``: the member's membership, in the team under /teams)."""
        kind = "team_membership" if template.startswith("/teams/") else "member_membership"
        return template.format(**{**self.ids, "membership_id": self.ids[kind], **instead})

    def browser(self, who: str) -> Visitor:
        if who == "guest":
            return Visitor.on(self.app)
        found: Visitor = getattr(self, who)
        return found


@dataclass
class Seed:
    """A world built once through the forms, then closed: its folder, each person's cookies."""

    folder: Path
    cookies: dict[str, list[Cookie]]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    folder = tmp_path_factory.mktemp("seed") / "data"
    app = create_app(str(folder))
    with pytest.MonkeyPatch.context() as patch, client(app) as first:
        patch.setattr(security, "_hasher", LIGHT)
        owner, member, outsider = Visitor(first), Visitor.on(app), Visitor.on(app)
        owner.sign_up(OWNER)
        member.sign_up(MEMBER)
        outsider.sign_up(OUTSIDER)
        Visitor.on(app).sign_up(NEWCOMER)
        ids = {"organisation_id": owner.created("/organisations", {"name": "Acme"})}
        organisation = f"/organisations/{ids['organisation_id']}"
        fields = {"email": MEMBER, "role": "MEMBER"}
        assert owner.post(f"{organisation}/members", fields).status_code == 303
        ids["team_id"] = owner.created(f"{organisation}/teams", {"name": "Builders"})
        assert owner.post(f"/teams/{ids['team_id']}/members", {"email": MEMBER}).status_code == 303
        ids["project_id"] = owner.created(f"{organisation}/projects", {"name": "Bridge"})
        resource = {"name": "Plans", "type": "DOCUMENT"}
        ids["resource_id"] = owner.created(f"/projects/{ids['project_id']}/resources", resource)
        repos = platform_of(app).repos
        member_id = user_id(app, MEMBER)
        for membership in repos.memberships.find_by_organisation(ids["organisation_id"]):
            if membership.user_id == member_id:
                kind = "member_membership" if membership.team_id is None else "team_membership"
            else:
                kind = "owner_membership"
            ids[kind] = membership.id
        assert len(ids) == 7
        people = {"owner": owner, "member": member, "outsider": outsider}
        cookies = {who: list(browser.client.cookies.jar) for who, browser in people.items()}
    return Seed(folder, cookies, ids)


@pytest.fixture
def world(seed: Seed, tmp_path: Path, light_hashes: None) -> Iterator[World]:
    """A copy of the seed's folder (a closed store may be copied with ordinary tools), served
    by a new application; each person's browser holds their cookies from the seed."""
    shutil.copytree(seed.folder, tmp_path / "data")
    app = create_app(str(tmp_path / "data"))
    with client(app) as first:
        people = {"owner": Visitor(first), "member": Visitor.on(app), "outsider": Visitor.on(app)}
        for who, browser in people.items():
            for cookie in seed.cookies[who]:
                browser.client.cookies.jar.set_cookie(cookie)
        yield World(app, ids=dict(seed.ids), **people)


# -- cookies, passwords and sessions ---------------------------------------------------------------


def test_sign_up_and_sign_in_set_an_http_only_lax_session_cookie(
    tmp_path: Path, light_hashes: None
) -> None:
    with client(create_app(str(tmp_path / "data"))) as http:
        browser = Visitor(http)
        pre = set_cookies(browser.get("/signup"))[PRESESSION]
        assert {key: pre.get(key) for key in ("httponly", "samesite", "path")} == {
            "httponly": "",
            "samesite": "lax",
            "path": "/",
        }
        assert "secure" not in pre
        assert "max-age" not in pre  # gone when the browser closes

        signed_up = browser.sign_up(OWNER)
        # The pre-session cookie goes once signed in.
        assert set_cookies(signed_up)[PRESESSION]["max-age"] == "0"
        assert http.cookies.get(PRESESSION) is None
        signed_in = browser.sign_in(OWNER)
        assert signed_in.headers["location"] == signed_up.headers["location"] == "/organisations"
        for response in (signed_up, signed_in):
            session = set_cookies(response)[SESSION]
            assert "httponly" in session
            assert session["samesite"] == "lax"
            assert session["path"] == "/"
            assert session["max-age"] == str(30 * 24 * 3600)
            assert "secure" not in session  # plain http: a Secure cookie would never come back
        # A sign-in is a new session: a new token, the one the browser now holds.
        new, old = (
            set_cookies(signed_in)[SESSION]["value"],
            set_cookies(signed_up)[SESSION]["value"],
        )
        assert new == browser.session != old


def test_over_https_every_secret_cookie_is_secure(tmp_path: Path, light_hashes: None) -> None:
    with client(create_app(str(tmp_path / "data")), "https://testserver") as https:
        browser = Visitor(https)
        pre = set_cookies(browser.get("/signin"))[PRESESSION]
        assert "secure" in pre
        assert "httponly" in pre
        for sign in (Visitor.sign_up, Visitor.sign_in):
            session = set_cookies(sign(browser, OWNER))[SESSION]
            assert "secure" in session
            assert "httponly" in session
            assert session["samesite"] == "lax"
        assert browser.get("/organisations").status_code == 200


def test_sign_out_deletes_the_session_and_clears_the_cookie(
    tmp_path: Path, light_hashes: None
) -> None:
    app = create_app(str(tmp_path / "data"))
    with client(app) as http:
        browser, other_tab = Visitor(http), Visitor.on(app)
        browser.sign_up(OWNER)
        other_tab.sign_in(OWNER)
        token = browser.session
        assert len(sessions_of(app, token)) == 1

        response = browser.post("/signout")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"
        cleared = set_cookies(response)[SESSION]
        assert (cleared["value"], cleared["max-age"], cleared["path"]) == ('""', "0", "/")
        assert http.cookies.get(SESSION) is None
        assert sessions_of(app, token) == []

        # The old cookie, sent again (kept by someone, say), signs nobody in.
        replayed = Visitor.on(app)
        replayed.client.cookies.set(SESSION, token)
        response = replayed.get("/organisations")
        assert (response.status_code, response.headers["location"]) == (303, "/signin")
        # The user's other session lives on.
        assert other_tab.get("/organisations").status_code == 200


def test_signing_in_again_ends_the_browsers_previous_session(
    tmp_path: Path, light_hashes: None
) -> None:
    app = create_app(str(tmp_path / "data"))
    with client(app) as http:
        browser = Visitor(http)
        browser.sign_up(OWNER)
        first = browser.session
        browser.sign_in(OWNER)
        assert browser.session != first
        assert sessions_of(app, first) == []
        assert len(sessions_of(app, browser.session)) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_store_keeps_an_argon2_hash_and_token_digests_only(
    tmp_path: Path, backend: str
) -> None:
    """With the application's own hashing: what lands on disk, byte for byte."""
    app = create_app(data_url(backend, tmp_path))
    tokens: list[str] = []
    with client(app) as http:
        browser, laptop = Visitor(http), Visitor.on(app)
        browser.get("/signup")
        tokens.append(http.cookies[PRESESSION])
        browser.sign_up(OWNER)
        signed_out = browser.session
        browser.post("/signout")
        browser.sign_in(OWNER)
        laptop.sign_in(OWNER)
        live = [browser.session, laptop.session]
        tokens += [signed_out, *live]
        user = platform_of(app).repos.users.find_by_email(OWNER)
        assert user is not None
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PasswordHash.recommended().verify(PASSWORD, user.password_hash)
        stored = {session.session_token for session in platform_of(app).auth.sessions.all()}
        assert stored == {hash_token(token) for token in live}

    if backend == "file":
        files = [path for path in (tmp_path / "data").rglob("*") if path.is_file()]
    else:
        files = list(tmp_path.glob("app.db*"))
    assert files
    on_disk = b"".join(path.read_bytes() for path in files)
    assert b"$argon2id$" in on_disk
    assert PASSWORD.encode() not in on_disk
    for token in tokens:
        assert token.encode() not in on_disk
    for token in live:  # (the search finds what is there)
        assert hash_token(token).encode() in on_disk


# -- CSRF ----------------------------------------------------------------------------------------


def test_every_form_of_the_application_is_tested_here() -> None:
    routes = [route for module in PAGE_MODULES for route in module.router.routes]
    posted = {
        route.path
        for route in routes
        if isinstance(route, APIRoute) and "POST" in (route.methods or ())
    }
    listed = {path for path, _ in ORGANISATION_FORMS} | {path for path, _, _ in OTHER_FORMS}
    assert posted == listed


def form_cases() -> list[tuple[str, str, dict[str, str]]]:
    cases = [(path, "owner", fields) for path, fields in ORGANISATION_FORMS]
    return cases + OTHER_FORMS


@pytest.mark.parametrize(("template", "who", "fields"), form_cases(), ids=lambda v: str(v))
def test_a_form_without_this_browsers_csrf_token_is_refused(
    world: World, template: str, who: str, fields: dict[str, str]
) -> None:
    path = world.path(template)
    browser = world.browser(who)
    someone_else = {"guest": Visitor.on(world.app), "owner": world.outsider}.get(who, world.owner)
    theirs = someone_else.token()
    mine = browser.token()
    assert theirs != mine
    wrong = mine[:-1] + ("0" if mine[-1] != "0" else "1")
    before = contents(world.app)
    attempts = {
        "no token": dict(fields),
        "an empty token": {**fields, "csrf": ""},
        "a wrong token": {**fields, "csrf": wrong},
        "another browser's token": {**fields, "csrf": theirs},
    }
    for what, sent in attempts.items():
        refused(browser.send(path, sent), 403, FORM_REFUSED)
        assert contents(world.app) == before, f"{path} with {what} wrote something"
    # With its own token, the same form goes through (or meets its own rule).
    response = browser.post(path, fields)
    assert response.status_code in (303, 409), alert(response)
    assert response.status_code == 409 or contents(world.app) != before


def test_a_browser_without_cookies_cannot_post_a_token_it_was_given(
    tmp_path: Path, light_hashes: None
) -> None:
    """Another site may load the sign-in page and read a token; without the browser's
    cookie the token is worth nothing (a forged sign-in or sign-up)."""
    app = create_app(str(tmp_path / "data"))
    with client(app) as http:
        Visitor(http).sign_up(OWNER)
        before = contents(app)
        token = Visitor.on(app).token()
        cookieless = Visitor.on(app)
        fields = {"csrf": token, "email": OWNER, "password": PASSWORD}
        refused(cookieless.send("/signin", fields), 403, FORM_REFUSED)
        refused(cookieless.send("/signup", {**fields, "email": "x@example.org"}), 403, FORM_REFUSED)
        assert cookieless.client.cookies.get(SESSION) is None
        assert contents(app) == before


# -- who sees what -------------------------------------------------------------------------------


def test_an_outsider_sees_none_of_another_organisation(world: World) -> None:
    listed = world.outsider.get("/organisations")
    assert listed.status_code == 200
    assert "Acme" not in listed.text
    assert "Acme" in world.member.get("/organisations").text
    for template in PAGES:
        path = world.path(template)
        refused(world.outsider.get(path), 404, NOT_FOUND)
        assert world.member.get(path).status_code == 200, path
        assert world.owner.get(path).status_code == 200, path


@pytest.mark.parametrize(("template", "fields"), ORGANISATION_FORMS, ids=lambda v: str(v))
def test_an_outsider_gets_404_for_every_form_and_changes_nothing(
    world: World, template: str, fields: dict[str, str]
) -> None:
    path = world.path(template)
    before = contents(world.app)
    refused(world.outsider.post(path, fields), 404, NOT_FOUND)
    assert contents(world.app) == before
    # The owner's same form goes through: the 404 was about who asked.
    response = world.owner.post(path, fields)
    if template == "/organisations/{organisation_id}/delete":
        refused(response, 409, "still has teams")
    else:
        assert response.status_code == 303, alert(response)
        assert contents(world.app) != before


@pytest.mark.parametrize("role", ["ADMIN", "MEMBER", "VIEWER"])
@pytest.mark.parametrize(("template", "fields"), ORGANISATION_FORMS, ids=lambda v: str(v))
def test_what_each_role_may_do(
    world: World, role: str, template: str, fields: dict[str, str]
) -> None:
    """Admins manage; members work on projects and resources; viewers only look; only
    the owner deletes. A refusal is a 4xx page that says so, and writes nothing."""
    organisation = world.path("/organisations/{organisation_id}")
    joined = world.owner.post(f"{organisation}/members", {"email": OUTSIDER, "role": role})
    assert joined.status_code == 303
    someone = world.outsider
    for page in PAGES:  # every member sees every page
        assert someone.get(world.path(page)).status_code == 200
    before = contents(world.app)
    response = someone.post(world.path(template), fields)
    if template == "/organisations/{organisation_id}/delete":
        refused(response, 403, OWNER_ONLY)
    elif role == "ADMIN" or (role == "MEMBER" and template in WORKING):
        assert response.status_code == 303, alert(response)
        assert contents(world.app) != before
        return
    else:
        assert template in MANAGING | WORKING
        refused(response, 403, NOT_ALLOWED)
    assert contents(world.app) == before


def test_the_role_lists_cover_every_form() -> None:
    forms = {path for path, _ in ORGANISATION_FORMS}
    assert forms - MANAGING - WORKING == {"/organisations/{organisation_id}/delete"}
    assert not MANAGING & WORKING


def test_only_the_owner_makes_an_owner(world: World) -> None:
    organisation = world.path("/organisations/{organisation_id}")
    fields = {"email": OUTSIDER, "role": "ADMIN"}
    assert world.owner.post(f"{organisation}/members", fields).status_code == 303
    before = contents(world.app)
    response = world.outsider.post(f"{organisation}/members", {"email": NEWCOMER, "role": "OWNER"})
    refused(response, 403, "Only the organisation's owner makes someone else an owner.")
    assert contents(world.app) == before
    response = world.owner.post(f"{organisation}/members", {"email": NEWCOMER, "role": "OWNER"})
    assert response.status_code == 303


def test_team_membership_is_managed_like_organisation_membership(world: World) -> None:
    """Adding someone to a team lets them into the organisation: a member (not a manager)
    can neither add one, which would let the newcomer see the organisation, nor remove one.
    Leaving the team keeps them in the organisation; leaving it takes them out of its teams."""
    organisation = world.path("/organisations/{organisation_id}")
    team = world.path("/teams/{team_id}")
    newcomer = Visitor.on(world.app)
    newcomer.sign_in(NEWCOMER)
    before = contents(world.app)
    refused(world.member.post(f"{team}/members", {"email": NEWCOMER}), 403, NOT_ALLOWED)
    assert contents(world.app) == before
    refused(newcomer.get(organisation), 404, NOT_FOUND)
    # The owner may, and then the newcomer sees the organisation.
    assert world.owner.post(f"{team}/members", {"email": NEWCOMER}).status_code == 303
    assert newcomer.get(organisation).status_code == 200
    (added,) = [
        membership
        for membership in platform_of(world.app).repos.memberships.find_by_team(
            world.ids["team_id"]
        )
        if membership.id != world.ids["team_membership"]
    ]
    before = contents(world.app)
    refused(world.member.post(f"{team}/members/{added.id}/remove"), 403, NOT_ALLOWED)
    assert contents(world.app) == before
    assert world.owner.post(f"{team}/members/{added.id}/remove").status_code == 303
    assert newcomer.get(organisation).status_code == 200
    repos = platform_of(world.app).repos
    (joined,) = repos.memberships.find_by_user(user_id(world.app, NEWCOMER))
    assert (joined.team_id, joined.role.value) == (None, "MEMBER")
    assert world.owner.post(f"{team}/members", {"email": NEWCOMER}).status_code == 303
    assert world.owner.post(f"{organisation}/members/{joined.id}/remove").status_code == 303
    assert repos.memberships.find_by_user(user_id(world.app, NEWCOMER)) == []
    refused(newcomer.get(organisation), 404, NOT_FOUND)


def test_someone_removed_from_the_organisation_keeps_no_role_through_a_team(world: World) -> None:
    organisation = world.path("/organisations/{organisation_id}")
    fields = {"email": OUTSIDER, "role": "ADMIN"}
    assert world.owner.post(f"{organisation}/members", fields).status_code == 303
    assert (
        world.owner.post(world.path("/teams/{team_id}/members"), {"email": OUTSIDER}).status_code
        == 303
    )
    repos = platform_of(world.app).repos
    (admin,) = [
        m for m in repos.memberships.find_by_user(user_id(world.app, OUTSIDER)) if m.team_id is None
    ]
    assert world.owner.post(f"{organisation}/members/{admin.id}/remove").status_code == 303
    assert repos.memberships.find_by_user(user_id(world.app, OUTSIDER)) == []
    before = contents(world.app)
    refused(world.outsider.post(f"{organisation}/rename", {"name": "Mine"}), 404, NOT_FOUND)
    assert contents(world.app) == before


def test_deleting_a_team_leaves_each_member_once_in_the_organisation(world: World) -> None:
    # The member belongs to the organisation twice over (organisation-wide, and in the
    # team); the platform's set_null would leave two organisation-wide memberships.
    organisation = world.path("/organisations/{organisation_id}")
    assert world.owner.post(world.path("/teams/{team_id}/delete")).status_code == 303
    repos = platform_of(world.app).repos
    memberships = repos.memberships.find_by_user(user_id(world.app, MEMBER))
    assert [(m.organisation_id, m.team_id) for m in memberships] == [
        (world.ids["organisation_id"], None)
    ]
    (membership,) = memberships
    assert world.owner.post(f"{organisation}/members/{membership.id}/remove").status_code == 303
    refused(world.member.get(organisation), 404, NOT_FOUND)


def test_a_viewer_put_in_a_team_is_still_a_viewer(world: World) -> None:
    # A team membership carries the member's role in the organisation, not MEMBER.
    organisation = world.path("/organisations/{organisation_id}")
    fields = {"email": OUTSIDER, "role": "VIEWER"}
    assert world.owner.post(f"{organisation}/members", fields).status_code == 303
    project = {"name": "By a viewer"}
    refused(world.outsider.post(f"{organisation}/projects", project), 403, NOT_ALLOWED)
    team = world.path("/teams/{team_id}/members")
    assert world.owner.post(team, {"email": OUTSIDER}).status_code == 303
    before = contents(world.app)
    refused(world.outsider.post(f"{organisation}/projects", project), 403, NOT_ALLOWED)
    assert contents(world.app) == before


def test_only_the_owner_deletes_the_organisation(world: World) -> None:
    organisation = world.path("/organisations/{organisation_id}")
    fields = {"email": OUTSIDER, "role": "ADMIN"}
    assert world.owner.post(f"{organisation}/members", fields).status_code == 303
    admin = world.outsider
    assert world.owner.post(world.path("/teams/{team_id}/delete")).status_code == 303

    before = contents(world.app)
    for someone in (admin, world.member):
        refused(someone.post(f"{organisation}/delete"), 403, OWNER_ONLY)
        assert contents(world.app) == before
    # An admin manages members, though: the refusal was about ownership.
    remove_member = world.path("/organisations/{organisation_id}/members/{membership_id}/remove")
    assert admin.post(remove_member).status_code == 303

    response = world.owner.post(f"{organisation}/delete")
    assert (response.status_code, response.headers["location"]) == (303, "/organisations")
    refused(world.owner.get(organisation), 404, NOT_FOUND)
    assert platform_of(world.app).repos.organisations.all() == []


def test_the_owners_organisation_wide_membership_cannot_be_removed(world: World) -> None:
    organisation = world.path("/organisations/{organisation_id}")
    fields = {"email": OUTSIDER, "role": "ADMIN"}
    assert world.owner.post(f"{organisation}/members", fields).status_code == 303
    remove = f"{organisation}/members/{world.ids['owner_membership']}/remove"
    before = contents(world.app)
    for someone in (world.owner, world.outsider):  # the owner, an admin
        refused(someone.post(remove), 409, "The owner stays a member of their organisation.")
        assert contents(world.app) == before
    assert world.owner.get(organisation).status_code == 200


# -- mistakes users make -------------------------------------------------------------------------

#: (who, form, fields, status, what the page says)
MISTAKES: dict[str, tuple[str, str, dict[str, str], int, str]] = {
    "email taken": (
        "guest",
        "/signup",
        {"email": " OWNER@Example.ORG ", "password": PASSWORD},
        409,
        "An account with this email exists already",
    ),
    "short password": (
        "guest",
        "/signup",
        {"email": "new@example.org", "password": "short"},
        400,
        "Choose a password of 8 to 1024 characters.",
    ),
    "not an email": (
        "guest",
        "/signup",
        {"email": "not-an-email", "password": PASSWORD},
        400,
        "is not an email address",
    ),
    "empty sign-up": ("guest", "/signup", {}, 400, "Choose a password of 8 to 1024 characters."),
    "wrong password": (
        "guest",
        "/signin",
        {"email": OWNER, "password": "not the password"},
        401,
        "Wrong email or password.",
    ),
    "unknown email": (
        "guest",
        "/signin",
        {"email": "nobody@example.org", "password": PASSWORD},
        401,
        "Wrong email or password.",
    ),
    "empty sign-in": ("guest", "/signin", {}, 401, "Wrong email or password."),
    "organisation with teams": (
        "owner",
        "/organisations/{organisation_id}/delete",
        {},
        409,
        "Acme still has teams (Builders): delete them first.",
    ),
    "account owning an organisation": (
        "owner",
        "/account/delete",
        {},
        409,
        "You own Acme: delete it first",
    ),
    "blank organisation": ("owner", "/organisations", {"name": "  "}, 400, "must not be blank"),
    "no organisation name": ("owner", "/organisations", {}, 400, "must not be blank"),
    "blank rename": (
        "owner",
        "/organisations/{organisation_id}/rename",
        {"name": "\t"},
        400,
        "must not be blank",
    ),
    "blank team": (
        "owner",
        "/organisations/{organisation_id}/teams",
        {"name": " "},
        400,
        "must not be blank",
    ),
    "blank team rename": ("owner", "/teams/{team_id}/rename", {}, 400, "must not be blank"),
    "blank project": (
        "member",
        "/organisations/{organisation_id}/projects",
        {"name": ""},
        400,
        "must not be blank",
    ),
    "blank resource": (
        "member",
        "/projects/{project_id}/resources",
        {"name": " ", "type": "DATASET"},
        400,
        "must not be blank",
    ),
    "unknown member": (
        "owner",
        "/organisations/{organisation_id}/members",
        {"email": "nobody@example.org", "role": "MEMBER"},
        404,
        "Nobody has signed up as 'nobody@example.org'",
    ),
    "member without email": (
        "owner",
        "/organisations/{organisation_id}/members",
        {"role": "MEMBER"},
        404,
        "Nobody has signed up as ''",
    ),
    "unknown team member": (
        "owner",
        "/teams/{team_id}/members",
        {"email": "nobody@example.org"},
        404,
        "Nobody has signed up",
    ),
    "role not a role": (
        "owner",
        "/organisations/{organisation_id}/members",
        {"email": OUTSIDER, "role": "OWNER; drop table users"},
        400,
        "Choose the role among OWNER, ADMIN, MEMBER, VIEWER.",
    ),
    "no role": (
        "owner",
        "/organisations/{organisation_id}/members",
        {"email": OUTSIDER},
        400,
        "Choose the role among OWNER, ADMIN, MEMBER, VIEWER.",
    ),
    "already a member": (
        "owner",
        "/organisations/{organisation_id}/members",
        {"email": MEMBER, "role": "ADMIN"},
        409,
        f"{MEMBER} is a member of Acme already.",
    ),
    "already in the team": (
        "owner",
        "/teams/{team_id}/members",
        {"email": f" {MEMBER.upper()}"},
        409,
        f"{MEMBER} is in Builders already.",
    ),
    "status not a status": (
        "member",
        "/projects/{project_id}/status",
        {"status": "DONE'); --"},
        400,
        "Choose the status among ACTIVE, PAUSED",
    ),
    "no project status": (
        "member",
        "/projects/{project_id}/status",
        {},
        400,
        "Choose the status among ACTIVE, PAUSED",
    ),
    "type not a type": (
        "member",
        "/projects/{project_id}/resources",
        {"name": "Spec", "type": "EXE"},
        400,
        "Choose the type among DOCUMENT",
    ),
    "no resource type": (
        "member",
        "/projects/{project_id}/resources",
        {"name": "Spec"},
        400,
        "Choose the type among DOCUMENT",
    ),
    "resource status lower-case": (
        "member",
        "/resources/{resource_id}/status",
        {"status": "active"},
        400,
        "Choose the status among ACTIVE, PROCESSING",
    ),
    "unknown membership": (
        "owner",
        "/organisations/{organisation_id}/members/01aaaaaaaaaaaaaaaaaaaaaaaa/remove",
        {},
        404,
        NOT_FOUND,
    ),
    "membership of another team": (
        "owner",
        "/teams/{team_id}/members/{owner_membership}/remove",
        {},
        404,
        NOT_FOUND,
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_is_shown_on_the_page_and_writes_nothing(world: World, mistake: str) -> None:
    who, template, fields, status, message = MISTAKES[mistake]
    browser = world.browser(who)
    before = contents(world.app)
    refused(browser.post(world.path(template), fields), status, message)
    assert contents(world.app) == before
    if who != "guest":  # still signed in, the page as it was
        assert browser.get("/organisations").status_code == 200


HOSTILE_IDS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%00",
    "a%00b",
    "x" * 10_000,
    "a" * 129,
    ".hidden",
    "-dash",
    "a%20b",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "%C3%A9t%C3%A9",
    "hutch.json",
    "01aaaaaaaaaaaaaaaaaaaaaaaa",  # well-formed, unknown
]


def test_hostile_ids_in_urls_are_not_found_and_change_nothing(world: World) -> None:
    templates = [*PAGES, *(path for path, _ in ORGANISATION_FORMS)]
    before = contents(world.app)
    problems: list[str] = []
    for bad in HOSTILE_IDS:
        for template in templates:
            names = re.findall(r"\{(\w+)\}", template)
            for name in names:  # one hostile id at a time, the others real
                path = world.path(template, **{name: bad})
                if template in PAGES:
                    response = world.owner.get(path)
                else:
                    response = world.owner.post(path, dict(ORGANISATION_FORMS)[template])
                if response.status_code != 404:
                    problems.append(f"{response.status_code} {path[:80]}")
    assert problems == []
    assert contents(world.app) == before


BIG = "x" * 1_000_000  # 1 MB: just under Starlette's limit on one field
HUGE = "y" * (2 * 1024 * 1024)
SCRIPT = "<script>alert(1)</script>"
HOSTILE_VALUES = [BIG, HUGE, "a\x00b", "a NUL \x00 inside", SCRIPT, "OWNER; drop table users"]
HOSTILE_VALUES += ["\u202eevil", "\ufeff\u200b", "\U0001f600" * 20]
HOSTILE_FIELDS: list[tuple[str, str, str, dict[str, str]]] = [
    ("owner", "/organisations", "name", {}),
    ("owner", "/organisations/{organisation_id}/rename", "name", {}),
    ("owner", "/organisations/{organisation_id}/members", "email", {"role": "MEMBER"}),
    ("owner", "/organisations/{organisation_id}/members", "role", {"email": OUTSIDER}),
    ("owner", "/organisations/{organisation_id}/teams", "name", {}),
    ("owner", "/teams/{team_id}/rename", "name", {}),
    ("owner", "/teams/{team_id}/members", "email", {}),
    ("owner", "/organisations/{organisation_id}/projects", "name", {}),
    ("owner", "/projects/{project_id}/status", "status", {}),
    ("owner", "/projects/{project_id}/resources", "name", {"type": "LINK"}),
    ("owner", "/projects/{project_id}/resources", "type", {"name": "Spec"}),
    ("owner", "/resources/{resource_id}/status", "status", {}),
    ("guest", "/signup", "email", {"password": PASSWORD}),
    ("guest", "/signup", "name", {"password": PASSWORD}),
    ("guest", "/signup", "password", {}),
    ("guest", "/signin", "email", {"password": PASSWORD}),
    ("guest", "/signin", "password", {"email": OWNER}),
]


def test_hostile_form_fields_never_fail_the_server(world: World) -> None:
    problems: list[str] = []
    statuses: set[int] = set()
    for n, (who, template, name, others) in enumerate(HOSTILE_FIELDS):
        for m, value in enumerate(HOSTILE_VALUES):
            browser = world.browser(who)
            fields = dict(others)
            if template == "/signup" and name != "email":
                fields["email"] = f"hostile{n}-{m}@example.org"
            fields[name] = value
            before = contents(world.app)
            response = browser.post(world.path(template), fields)
            statuses.add(response.status_code)
            where = f"{template} {name}={value[:12]!r}…"
            if response.status_code == 303:
                shown = browser.get(response.headers["location"])
                if shown.status_code != 200 or SCRIPT in shown.text:
                    problems.append(f"{where}: then {shown.status_code}")
            elif not 400 <= response.status_code < 500:
                problems.append(f"{where}: {response.status_code}")
            elif contents(world.app) != before:
                problems.append(f"{where}: refused ({response.status_code}) yet written")
    assert problems == []
    # Each form was taken as a form (its token checked), and some were stored...
    assert 403 not in statuses
    assert {303, 400, 401} <= statuses
    # ... a name with markup among them, shown as text.
    (scripted, *_) = platform_of(world.app).repos.organisations.find_by_name(SCRIPT)
    page = world.owner.get(f"/organisations/{scripted.id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT not in page


def test_raw_bytes_files_and_odd_bodies_are_refused_or_stored_safely(world: World) -> None:
    owner, token = world.owner, world.owner.token()
    form = {"content-type": "application/x-www-form-urlencoded"}
    before = contents(world.app)
    # Not a form, a form whose token is a file, and one with too many fields: refused.
    refused(
        owner.client.post("/organisations", json={"csrf": token, "name": "J"}), 403, FORM_REFUSED
    )
    sent = owner.client.post("/organisations", files={"csrf": ("t.txt", token.encode())})
    refused(sent, 403, FORM_REFUSED)
    crowd = {"csrf": token, "name": "Crowd", **{f"f{i}": "" for i in range(1001)}}
    assert owner.send("/organisations", crowd).status_code == 400
    csrf = b"csrf=" + token.encode()
    for kind, body in [
        ("text/plain", csrf + b"&name=Plain"),
        ("multipart/form-data", csrf + b"&name=No boundary"),
        ("multipart/form-data; boundary=b", b"\x00\xff not multipart"),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
        ),
    ]:
        sent = owner.client.post("/organisations", content=body, headers={"content-type": kind})
        assert sent.status_code in (400, 403), kind
    # A name sent as a file is no name.
    sent = owner.client.post(
        "/organisations", data={"csrf": token}, files={"name": ("n.txt", b"Acme 2")}
    )
    refused(sent, 400, "must not be blank")
    assert contents(world.app) == before

    # Bytes that are not UTF-8 (an encoded lone surrogate, a bare 0xFF): stored as some text.
    for body in (b"&name=%ED%A0%80", b"&name=caf\xe9\xff"):
        sent = owner.client.post(
            "/organisations", content=b"csrf=" + token.encode() + body, headers=form
        )
        assert sent.status_code == 303, alert(sent)
        assert owner.get(sent.headers["location"]).status_code == 200


@pytest.mark.parametrize(
    "cookie", ["x" * 10_000, "..%2F..%2Fetc", "%00", "'; drop table sessions", "a" * 64]
)
def test_a_forged_session_cookie_signs_nobody_in(world: World, cookie: str) -> None:
    browser = Visitor.on(world.app)
    browser.client.cookies.set(SESSION, cookie)
    before = contents(world.app)
    for response in (
        browser.get("/organisations"),
        browser.get(world.path("/organisations/{organisation_id}")),
        browser.post("/organisations", {"name": "Forged"}),
        browser.post(world.path("/organisations/{organisation_id}/delete")),
    ):
        assert (response.status_code, response.headers.get("location")) == (303, "/signin")
        assert set_cookies(response)[SESSION]["max-age"] == "0"
    assert contents(world.app) == before


def test_a_user_without_an_organisation_deletes_their_account(world: World) -> None:
    auth = platform_of(world.app).auth
    member_id = user_id(world.app, MEMBER)
    token = world.member.session
    assert platform_of(world.app).repos.memberships.find_by_user(member_id) != []
    response = world.member.post("/account/delete")
    assert (response.status_code, response.headers["location"]) == (303, "/signin")
    assert set_cookies(response)[SESSION]["max-age"] == "0"
    assert auth.get_user_by_email(MEMBER) is None
    assert auth.sessions.find(user_id=member_id) == []
    assert platform_of(world.app).repos.memberships.find_by_user(member_id) == []
    assert sessions_of(world.app, token) == []
    assert world.owner.get(world.path("/organisations/{organisation_id}")).status_code == 200


# -- several workers, and time ---------------------------------------------------------------------


def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The application's ``HUTCH_URL`` on ``backend``: a fresh schema for ``postgresql``."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return data_url(backend, tmp_path)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_two_workers_on_one_store_agree_at_once(
    tmp_path: Path,
    backend: str,
    light_hashes: None,
    several_opens: None,
    request: pytest.FixtureRequest,
) -> None:
    url = store_url(backend, tmp_path, request)
    first_app, second_app = create_app(url), create_app(url)
    with client(first_app) as first, client(second_app) as second:
        assert platform_of(first_app).db is not platform_of(second_app).db
        browser = Visitor(first)
        browser.sign_up(OWNER)
        elsewhere = browser.copy_to(second)  # the same browser, its next request on worker 2
        assert elsewhere.get("/organisations").status_code == 200

        made_on_first = browser.created("/organisations", {"name": "Made on one"})
        page = elsewhere.get("/organisations")
        assert "Made on one" in page.text
        assert elsewhere.get(f"/organisations/{made_on_first}").status_code == 200
        made_on_second = elsewhere.created("/organisations", {"name": "Made on two"})
        assert browser.get(f"/organisations/{made_on_second}").status_code == 200

        token = browser.session
        assert browser.post("/signout").status_code == 303
        response = elsewhere.get("/organisations")
        assert (response.status_code, response.headers["location"]) == (303, "/signin")
        assert sessions_of(second_app, token) == []


def test_an_expired_session_sends_the_browser_to_sign_in(
    tmp_path: Path, light_hashes: None
) -> None:
    app = create_app(str(tmp_path / "data"))
    with client(app) as http:
        browser = Visitor(http)
        browser.sign_up(OWNER)
        assert browser.get("/account").status_code == 200
        token = browser.session
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert platform_of(app).auth.update_session(token, expires=past) is not None
        response = browser.get("/account")
        assert (response.status_code, response.headers["location"]) == (303, "/signin")
        assert set_cookies(response)[SESSION]["max-age"] == "0"
        assert sessions_of(app, token) == []  # and it is gone from the store


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_session_that_expired_while_the_app_was_stopped(
    tmp_path: Path, backend: str, light_hashes: None, request: pytest.FixtureRequest
) -> None:
    url = store_url(backend, tmp_path, request)
    with client(create_app(url)) as http:
        browser = Visitor(http)
        browser.sign_up(OWNER)
    token = browser.session

    # Sessions outlive the application: started again, it knows the cookie.
    with client(create_app(url)) as http:
        assert browser.copy_to(http).get("/organisations").status_code == 200

    with hutch.open(url, plugins=["platform", "auth"]) as db:
        past = datetime.now(UTC) - timedelta(minutes=5)
        assert AuthAdapter(db).update_session(token, expires=past) is not None

    app = create_app(url)
    with client(app) as http:
        response = browser.copy_to(http).get("/organisations")
        assert (response.status_code, response.headers["location"]) == (303, "/signin")
        assert sessions_of(app, token) == []
