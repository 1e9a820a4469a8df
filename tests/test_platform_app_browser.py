"""The platform application in a real browser, on the file and the SQLite backend.

Each test serves ``examples/platform_app`` with two workers, as ``make app`` does,
and clicks through it as people would: accounts and sessions; organisations,
their teams and members; projects and resources with their statuses; a restart
of the server in the middle; and the two workers agreeing on what was just
written. Every check reads what the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from browser import CHROMIUM, NO_CHROMIUM, Browsing, launch
from platform_app.security import SESSION_COOKIE
from platform_app.server import DATA_URLS, AppServer, data_url
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    expect,
    sync_playwright,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

#: Where each backend keeps the data under a test's folder. ``tmp_path`` is absolute, so
#: the SQLite URL has four slashes: ``sqlite:////tmp/.../app.db``.
BACKENDS = sorted(DATA_URLS)
PLACES = {"file": "data", "sqlite": "app.db"}
NOT_YOURS = "There is no such page, or it is not yours to see."
#: How many pages in a row must show a write (each on a new connection, so either worker).
READS_AFTER_A_WRITE = 10


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    password: str


ADA = Person("ada@example.org", "Ada", "correct horse battery")
BOB = Person("bob@example.org", "Bob", "tr0ub4dor&3 staple")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[AppServer]:
    with AppServer(data_url(backend, tmp_path), workers=2, log=tmp_path / "server.log") as app:
        yield app


@pytest.fixture
def web(browser: Browser, server: AppServer, tmp_path: Path) -> Iterator[Browsing]:
    browsing = Browsing(browser, server.url, tmp_path, logs=[server.log])
    try:
        yield browsing
    finally:
        browsing.close()


# What people do, in the words of the pages.


def at(path: str) -> re.Pattern[str]:
    """A page's URL ends with ``path`` (``*`` stands for one row id)."""
    return re.compile(re.escape(path).replace(r"\*", "[^/?#]+") + "$")


def visit(page: Page, path: str) -> int:
    """Open ``path``; the status of the page shown (after redirects)."""
    answer = page.goto(path)
    assert answer is not None
    return answer.status


def submit(page: Page, button: str) -> int:
    """Press a form's button and wait for the page it leads to; the status of the form's
    answer: 303 when it was done, else the status of the page that shows the problem."""
    with (
        page.expect_event("load"),
        page.expect_response(lambda answer: answer.request.method == "POST") as posted,
    ):
        # A tab behind another of its context gets no animation frames, and a click waits
        # for some: bring it forward first.
        page.bring_to_front()
        page.get_by_role("button", name=button, exact=True).click()
    return posted.value.status


def alert(page: Page) -> Locator:
    """The problem written on the page."""
    return page.get_by_role("alert")


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def sign_up(page: Page, person: Person, *, email: str | None = None) -> int:
    visit(page, "/signup")
    page.get_by_label("Email").fill(email or person.email)
    page.get_by_label("Name").fill(person.name)
    page.get_by_label("Password").fill(person.password)
    return submit(page, "Create account")


def signed_up(page: Page, person: Person) -> None:
    assert sign_up(page, person) == 303
    expect(page).to_have_url(at("/organisations"))
    expect(page.locator("header .who")).to_have_text(person.name)


def sign_in(page: Page, email: str, password: str) -> int:
    visit(page, "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    return submit(page, "Sign in")


def sign_out(page: Page) -> None:
    assert submit(page, "Sign out") == 303
    expect(page).to_have_url(at("/signin"))
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def session_of(context: BrowserContext) -> str:
    """The value of the context's session cookie."""
    values = [cookie["value"] for cookie in context.cookies() if cookie["name"] == SESSION_COOKIE]
    assert len(values) == 1, context.cookies()
    return values[0]


def organisations(page: Page) -> list[str]:
    """The names on the list of the user's organisations."""
    visit(page, "/organisations")
    expect(heading(page)).to_have_text("Your organisations")
    return sorted(page.locator("#organisations li").all_inner_texts())


def rows(page: Page, table: str, columns: int) -> list[list[str]]:
    """The first ``columns`` cells of each row of the page's table ``#table``, sorted."""
    found = page.locator(f"#{table} tr:has(td)").all()
    return sorted(row.locator("td").all_inner_texts()[:columns] for row in found)


def fill_and_submit(page: Page, fields: dict[str, str], button: str) -> int:
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    return submit(page, button)


def create_organisation(page: Page, name: str) -> str:
    """Create the organisation; the URL of its page."""
    visit(page, "/organisations")
    assert fill_and_submit(page, {"Name": name}, "Create organisation") == 303
    expect(page).to_have_url(at("/organisations/*"))
    expect(heading(page)).to_have_text(name)
    return page.url


def create_team(page: Page, organisation: str, name: str) -> str:
    visit(page, organisation)
    assert fill_and_submit(page, {"Team name": name}, "Create team") == 303
    expect(page).to_have_url(at("/teams/*"))
    expect(heading(page)).to_have_text(name)
    return page.url


def create_project(page: Page, organisation: str, name: str) -> str:
    visit(page, organisation)
    assert fill_and_submit(page, {"Project name": name}, "Create project") == 303
    expect(page).to_have_url(at("/projects/*"))
    expect(heading(page)).to_have_text(name)
    expect(page.locator("#project-status")).to_have_text("ACTIVE")
    return page.url


def provision(page: Page, project: str, name: str, kind: str) -> str:
    """Provision a resource in the project; the URL of its page, which shows it PROCESSING."""
    visit(page, project)
    page.get_by_label("Resource name").fill(name)
    page.get_by_label("Type").select_option(kind)
    assert submit(page, "Provision resource") == 303
    expect(page).to_have_url(at("/resources/*"))
    expect(heading(page)).to_have_text(name)
    expect(page.locator("#resource-status")).to_have_text("PROCESSING")
    return page.url


def change_status(page: Page, shown: str, status: str) -> None:
    """On a project's or a resource's page, choose ``status``; the page then shows it."""
    page.get_by_label("Status").select_option(status)
    assert submit(page, "Change status") == 303
    expect(page.locator(shown)).to_have_text(status)


def add_member(page: Page, organisation: str, email: str, role: str = "MEMBER") -> int:
    visit(page, organisation)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Role").select_option(role)
    return submit(page, "Add member")


def add_to_team(page: Page, team: str, email: str) -> int:
    visit(page, team)
    return fill_and_submit(page, {"Email": email}, "Add to team")


def nobody(email: str) -> str:
    return f"Nobody has signed up as {email!r}: they sign up first."


# The plan.


def test_accounts_and_sessions(web: Browsing) -> None:
    """Sign-up, sign-out, sign-in; wrong passwords and second accounts are refused on the
    page; a session is the browser's until it signs out, in every tab."""
    context = web.context()
    page = web.page(context)
    with web.recorded():
        visit(page, "/organisations")
        expect(page).to_have_url(at("/signin"))

        signed_up(page, ADA)
        expect(page.get_by_text("You are not in any organisation yet.")).to_be_visible()
        first = session_of(context)

        tab = web.page(context)
        assert visit(tab, "/account") == 200
        expect(heading(tab)).to_have_text("Your account")
        expect(tab.get_by_role("cell", name=ADA.email)).to_be_visible()

        sign_out(page)
        tab.reload()
        expect(tab).to_have_url(at("/signin"))
        new_tab = web.page(context)
        visit(new_tab, "/account")
        expect(new_tab).to_have_url(at("/signin"))
        assert SESSION_COOKIE not in {cookie["name"] for cookie in context.cookies()}

        # The token of a session that ended signs nobody in, whoever presents it.
        thief = web.context()
        thief.add_cookies([{"name": SESSION_COOKIE, "value": first, "url": web.base_url}])
        stolen = web.page(thief)
        visit(stolen, "/organisations")
        expect(stolen).to_have_url(at("/signin"))

        for email, password in [(ADA.email, "wrong password"), ("eve@example.org", ADA.password)]:
            assert sign_in(page, email, password) == 401
            expect(alert(page)).to_have_text("Wrong email or password.")
            expect(page.get_by_label("Email")).to_have_value(email)
            expect(page).to_have_url(at("/signin"))

        assert sign_in(page, ADA.email, ADA.password) == 303
        expect(page).to_have_url(at("/organisations"))
        expect(page.locator("header .who")).to_have_text(ADA.name)
        assert session_of(context) != first

        # The same mailbox in other letters is the same account.
        stranger = web.page()
        assert sign_up(stranger, ADA, email="ADA@Example.org") == 409
        expect(alert(stranger)).to_have_text(
            "An account with this email exists already: sign in instead."
        )
        expect(stranger.get_by_label("Email")).to_have_value("ADA@Example.org")
        assert sign_in(stranger, "ADA@EXAMPLE.ORG", ADA.password) == 303
        expect(stranger.locator("header .who")).to_have_text(ADA.name)

        # Both browsers hold a session of their own: one signing out leaves the other in.
        sign_out(stranger)
        visit(page, "/account")
        expect(heading(page)).to_have_text("Your account")


def test_members_of_organisations_and_teams(web: Browsing) -> None:
    """An owner adds a person to the organisation and a team by email and removes them;
    the person sees the organisation exactly while they are a member."""
    ada = web.page()
    bob = web.page()
    with web.recorded():
        signed_up(ada, ADA)
        signed_up(bob, BOB)
        acme = create_organisation(ada, "Acme")
        rockets = create_team(ada, acme, "Rockets")
        assert visit(bob, acme) == 404
        expect(alert(bob)).to_have_text(NOT_YOURS)

        assert add_member(ada, acme, "nobody@example.org") == 404
        expect(alert(ada)).to_have_text(nobody("nobody@example.org"))
        assert add_member(ada, acme, BOB.email, "MEMBER") == 303
        expect(ada).to_have_url(at("/organisations/*"))
        expect(ada.locator("#members tr", has_text=BOB.email)).to_have_count(1)
        assert rows(ada, "members", 3) == [
            [ADA.email, "OWNER", "(whole organisation)"],
            [BOB.email, "MEMBER", "(whole organisation)"],
        ]

        assert add_to_team(ada, rockets, "nobody@example.org") == 404
        expect(alert(ada)).to_have_text(nobody("nobody@example.org"))
        assert add_to_team(ada, rockets, BOB.email) == 303
        expect(ada.locator("#members tr", has_text=BOB.email)).to_have_count(1)
        assert rows(ada, "members", 1) == [[BOB.email]]
        visit(ada, acme)
        assert [row[::2] for row in rows(ada, "members", 3)] == [
            [ADA.email, "(whole organisation)"],
            [BOB.email, "(whole organisation)"],
            [BOB.email, "Rockets"],
        ]

        assert organisations(bob) == ["Acme"]
        assert visit(bob, rockets) == 200
        expect(heading(bob)).to_have_text("Rockets")
        expect(bob.locator("#members")).to_contain_text(BOB.email)

        visit(ada, rockets)
        assert submit(ada, f"Remove {BOB.email}") == 303
        expect(ada.get_by_text("No members yet.")).to_be_visible()
        visit(ada, acme)
        assert rows(ada, "members", 3) == [
            [ADA.email, "OWNER", "(whole organisation)"],
            [BOB.email, "MEMBER", "(whole organisation)"],
        ]
        assert organisations(bob) == ["Acme"]

        assert submit(ada, f"Remove {ADA.email}") == 409
        expect(alert(ada)).to_have_text("The owner stays a member of their organisation.")
        assert submit(ada, f"Remove {BOB.email}") == 303
        expect(ada.locator("#members tr", has_text=BOB.email)).to_have_count(0)
        assert rows(ada, "members", 1) == [[ADA.email]]

        assert organisations(bob) == []
        expect(bob.get_by_text("You are not in any organisation yet.")).to_be_visible()
        for path in (acme, rockets):
            assert visit(bob, path) == 404
            expect(alert(bob)).to_have_text(NOT_YOURS)
            expect(bob.get_by_role("heading", name="Rockets")).to_have_count(0)

        # Bob owns nothing, so he may leave; his password then opens nothing.
        visit(bob, "/account")
        assert submit(bob, "Delete my account") == 303
        expect(bob).to_have_url(at("/signin"))
        assert sign_in(bob, BOB.email, BOB.password) == 401
        expect(alert(bob)).to_have_text("Wrong email or password.")


def test_the_platform_through_a_restart(
    web: Browsing, server: AppServer, backend: str, tmp_path: Path
) -> None:
    """Organisations, members, projects and resources made before a restart are all there
    after it, both people still signed in with the same cookies; and every page read right
    after a write shows it, whichever worker serves it."""
    ada_context, bob_context = web.context(), web.context()
    ada, bob = web.page(ada_context), web.page(bob_context)
    with web.recorded():
        signed_up(ada, ADA)
        signed_up(bob, BOB)

        acme = create_organisation(ada, "Acme")
        globex = create_organisation(ada, "Globex")
        assert organisations(ada) == ["Acme", "Globex"]
        visit(ada, globex)
        assert fill_and_submit(ada, {"Name": "Globex Corporation"}, "Rename") == 303
        expect(heading(ada)).to_have_text("Globex Corporation")
        assert organisations(ada) == ["Acme", "Globex Corporation"]

        rockets = create_team(ada, acme, "Rockets")
        visit(ada, acme)
        assert submit(ada, "Delete organisation") == 409
        expect(alert(ada)).to_have_text("Acme still has teams (Rockets): delete them first.")
        visit(ada, globex)
        assert submit(ada, "Delete organisation") == 303
        expect(ada).to_have_url(at("/organisations"))
        assert organisations(ada) == ["Acme"]
        assert visit(ada, globex) == 404

        visit(ada, "/account")
        assert submit(ada, "Delete my account") == 409
        expect(alert(ada)).to_have_text("You own Acme: delete it first, then your account.")

        assert add_member(ada, acme, BOB.email, "ADMIN") == 303
        assert add_to_team(ada, rockets, BOB.email) == 303

        website = create_project(ada, acme, "Website")
        create_project(ada, acme, "Intranet")
        spec = provision(ada, website, "Spec", "DOCUMENT")
        draft = provision(ada, website, "Draft", "DATASET")
        visit(ada, website)
        assert rows(ada, "resources", 3) == [
            ["Draft", "DATASET", "PROCESSING"],
            ["Spec", "DOCUMENT", "PROCESSING"],
        ]
        visit(ada, spec)
        change_status(ada, "#resource-status", "ACTIVE")
        visit(ada, draft)
        assert submit(ada, "Delete resource") == 303
        expect(ada).to_have_url(website)
        expect(ada.locator("#resources tr", has_text="Draft")).to_have_count(0)
        assert rows(ada, "resources", 3) == [["Spec", "DOCUMENT", "ACTIVE"]]
        assert visit(ada, draft) == 404

        for status in ("PAUSED", "COMPLETED"):
            visit(ada, website)
            change_status(ada, "#project-status", status)
            visit(ada, acme)
            assert rows(ada, "projects", 2) == [["Intranet", "ACTIVE"], ["Website", status]]

        places = {"acme": acme, "rockets": rockets, "website": website, "spec": spec}
        expected = {
            "signed in as": "Ada",
            "organisations": ["Acme"],
            "members": [
                [ADA.email, "OWNER", "(whole organisation)"],
                [BOB.email, "ADMIN", "(whole organisation)"],
                [BOB.email, "MEMBER", "Rockets"],
            ],
            "teams": ["Rockets"],
            "projects": [["Intranet", "ACTIVE"], ["Website", "COMPLETED"]],
            "team members": [[BOB.email]],
            "project status": "COMPLETED",
            "resources": [["Spec", "DOCUMENT", "ACTIVE"]],
            "resource status": "ACTIVE",
        }
        assert everything(ada, places) == expected
        sessions = session_of(ada_context), session_of(bob_context)

        server.restart()

        assert everything(ada, places) == expected
        assert (session_of(ada_context), session_of(bob_context)) == sessions
        assert organisations(bob) == ["Acme"]
        expect(bob.locator("header .who")).to_have_text(BOB.name)
        assert (tmp_path / PLACES[backend]).exists()  # the data is where the URL says

        # Work goes on after the restart. Each write shows on every page read right after
        # it, the writer's and another person's, each request on a new connection, so that
        # both workers take writes and reads.
        report = provision(ada, website, "Report", "LINK")
        ada_anywhere = web.page(web.context(like=ada_context, new_connections=True))
        bob_anywhere = web.page(web.context(like=bob_context, new_connections=True))
        for status in ("FAILED", "ACTIVE", "ARCHIVED"):
            visit(ada_anywhere, report)
            change_status(ada_anywhere, "#resource-status", status)
            for _ in range(READS_AFTER_A_WRITE // 2):
                assert visit(ada_anywhere, report) == 200
                expect(ada_anywhere.locator("#resource-status")).to_have_text(status)
                assert visit(bob_anywhere, website) == 200
                assert rows(bob_anywhere, "resources", 3) == [
                    ["Report", "LINK", status],
                    ["Spec", "DOCUMENT", "ACTIVE"],
                ]


def everything(page: Page, places: dict[str, str]) -> dict[str, object]:
    """What the pages of the restart test show of what was made before it."""
    seen: dict[str, object] = {"organisations": organisations(page)}
    seen["signed in as"] = page.locator("header .who").inner_text()
    visit(page, places["acme"])
    seen["members"] = rows(page, "members", 3)
    seen["teams"] = sorted(page.locator("#teams li").all_inner_texts())
    seen["projects"] = rows(page, "projects", 2)
    visit(page, places["rockets"])
    seen["team members"] = rows(page, "members", 1)
    visit(page, places["website"])
    seen["project status"] = page.locator("#project-status").inner_text()
    seen["resources"] = rows(page, "resources", 3)
    visit(page, places["spec"])
    seen["resource status"] = page.locator("#resource-status").inner_text()
    return seen
