"""The application: its pages, its database (one per worker) and what it does on errors.

Each worker process opens the database at start-up and closes it at shutdown.
``FreshASGI`` starts every request from what the other workers committed before
it began, so a form posted to one worker and the page it redirects to, served by
another, agree. Errors a user can cause are shown on the page they came from
(``web.act``); the handlers here cover the rest: a page that does not exist, a
form without its CSRF token, a visitor who must sign in first, data that is busy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

import hutch
from hutch.contrib.fresh import FreshASGI

from . import accounts, organisations, projects, resources, security, teams
from .web import (
    FormRefused,
    PageNotFound,
    Platform,
    SignInRequired,
    platform_of,
    problem,
    render,
    see,
    session_user,
)

#: The modules of pages, each with its ``router``.
PAGE_MODULES = (accounts, organisations, teams, projects, resources)


def create_app(url: str | None = None) -> FastAPI:
    """The application over ``url`` (``None``: ``$HUTCH_URL``, else ``./data``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.platform = Platform.open(url)
        try:
            yield
        finally:
            app.state.platform.db.close()

    # No redirects to add or drop a trailing slash: built from the Host header, they could
    # send a browser to another site.
    app = FastAPI(
        title="platform",
        lifespan=lifespan,
        openapi_url=None,  # (pages, not an API)
        redirect_slashes=False,
    )
    for module in PAGE_MODULES:
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    def sign_in_first(_request: Request, _: Exception) -> Response:
        response = see("/signin")
        response.delete_cookie(security.SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(PageNotFound)
    def not_found(request: Request, _: Exception) -> Response:
        message = "There is no such page, or it is not yours to see."
        return show_problem(request, message, 404)

    @app.exception_handler(FormRefused)
    def form_refused(request: Request, _: Exception) -> Response:
        message = "This form has expired or came from another site: reload the page and try again."
        return show_problem(request, message, 403)

    @app.exception_handler(HTTPException)
    def framework_refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)  # (an unknown page, a form that does not parse)
        response = show_problem(request, f"{error.detail}.", error.status_code)
        response.headers.update(error.headers or {})  # (a 405 says what is allowed)
        return response

    @app.exception_handler(hutch.HutchError)
    def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, hutch.HutchError)
        return show_problem(request, *problem(error))

    app.add_middleware(FreshASGI, db=lambda: platform_of(app).db)
    return app


def show_problem(request: Request, message: str, status: int) -> Response:
    """The page that says what went wrong, with the signed-in user's header if there is one."""
    try:
        user = session_user(request, platform_of(request.app))
    except hutch.HutchError:  # (the data may be what went wrong)
        user = None
    return render(request, "problem.html", user=user, error=message, status=status)


app = create_app()
