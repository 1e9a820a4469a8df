"""A real browser for end-to-end tests: Debian's Chromium driven by Playwright.

The tests never download a browser; they use the system's Chromium, or skip.
:class:`Browsing` keeps every context and page a test opens and every status
the server answered, so that :meth:`Browsing.recorded` can show what the pages
looked like when the test failed and refuse any answer of the 5xx kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response, expect
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    "Debian's chromium is not installed: apt-get install chromium "
    "(the tests never download a browser)"
)
#: Headless, and quiet: no sandbox (tests may run as root), no GPU, no calls home.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Generous waits (milliseconds): a loaded two-core machine serves pages slowly.
EXPECT_TIMEOUT = 15_000
ACTION_TIMEOUT = 20_000
NAVIGATION_TIMEOUT = 30_000


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with waits long enough for a busy machine."""
    expect.set_options(timeout=EXPECT_TIMEOUT)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


class Browsing:
    """The contexts (separate cookie jars) and pages of one test, on one site.

    Every answer any of its pages got is kept as ``(status, method, url)``.
    """

    def __init__(self, browser: Browser, base_url: str, folder: Path, logs: Sequence[Path] = ()):
        self.browser = browser
        self.base_url = base_url
        self.folder = folder
        self.logs = list(logs)
        self.contexts: list[BrowserContext] = []
        self.answers: list[tuple[int, str, str]] = []

    def context(
        self, *, like: BrowserContext | None = None, new_connections: bool = False
    ) -> BrowserContext:
        """A new cookie jar, with connections of its own; ``like``: with that context's
        cookies. ``new_connections``: each request on a connection of its own, so that any
        process of a server with several may answer it (a kept-alive one stays with one)."""
        state = like.storage_state() if like is not None else None
        context = self.browser.new_context(base_url=self.base_url, storage_state=state)
        if new_connections:
            context.set_extra_http_headers({"Connection": "close"})
        context.set_default_timeout(ACTION_TIMEOUT)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT)
        context.on("response", self._answered)
        self.contexts.append(context)
        return context

    def page(self, context: BrowserContext | None = None) -> Page:
        """A new tab in ``context`` (else in a new context)."""
        return (context or self.context()).new_page()

    def pages(self) -> list[Page]:
        """Every page still open, in the order they were opened."""
        return [page for context in self.contexts for page in context.pages if not page.is_closed()]

    def server_errors(self) -> list[tuple[int, str, str]]:
        return [answer for answer in self.answers if answer[0] >= 500]

    def close(self) -> None:
        """Close every context (and so its pages)."""
        contexts, self.contexts = self.contexts, []
        for context in contexts:
            with suppress(PlaywrightError):  # (already gone with the browser)
                context.close()

    @contextmanager
    def recorded(self) -> Iterator[None]:
        """Run a test's steps; then no answer may have been a server error. On failure the
        error says where the screenshot and HTML of every open page were saved."""
        steps_done = False
        try:
            yield
            steps_done = True
            failed = self.server_errors()
            assert not failed, f"the server failed these requests: {failed}"
        except (Exception, pytest.fail.Exception) as error:
            try:
                error.add_note(self.save_pages())
            except Exception as problem:  # (the test's own failure matters more)
                error.add_note(f"the open pages could not be saved: {problem!r}")
            if not steps_done and (failed := self.server_errors()):
                error.add_note(f"the server failed these requests: {failed}")
            for log in self.logs:
                error.add_note(f"the server's output is in {log}")
            raise

    def save_pages(self) -> str:
        """Save a screenshot and the HTML of each open page under ``folder``; say where
        (or why a page could not be saved)."""
        target = self.folder / "pages"
        target.mkdir(parents=True, exist_ok=True)
        lines = [f"the open pages as the test left them (screenshot, HTML) are in {target}:"]
        for number, page in enumerate(self.pages(), 1):
            stem = target / f"page-{number}-{slug(page.url)}"
            try:
                page.screenshot(path=stem.with_suffix(".png"), full_page=True, timeout=10_000)
                stem.with_suffix(".html").write_text(page.content(), encoding="utf-8")
            except PlaywrightError as problem:
                lines.append(f"  {stem.name}: not saved ({problem.message.splitlines()[0]})")
            else:
                lines.append(f"  {stem.name}.png, .html: {page.url}")
        return "\n".join(lines)

    def _answered(self, response: Response) -> None:
        self.answers.append((response.status, response.request.method, response.url))


def slug(url: str) -> str:
    """A file name's worth of a page's URL."""
    path = url.split("://", 1)[-1].partition("/")[2]
    return re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")[:60] or "home"
