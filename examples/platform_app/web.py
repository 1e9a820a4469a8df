"""What every page shares: the open database, the signed-in user, checked forms, rendering.

A page module's handlers are plain (synchronous) functions, so FastAPI runs them
in its thread pool, where a hutch call may wait for another worker's commit
without holding up the event loop. A form's handler hands its work to
:func:`act`: one transaction, then a redirect to the page it names, or the
form's page again with the problem written on it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import hutch
from hutch.ids import is_row_id
from hutch.plugins.auth import AuthAdapter
from hutch.plugins.platform import (
    MembershipRole,
    Organisation,
    PlatformRepositories,
    User,
)

from . import security

#: The methods a page answers: HEAD as GET (the server leaves the body out).
PAGE = ["GET", "HEAD"]
#: The longest text a form field may hold (names, emails).
MAX_TEXT = 200
Choice = TypeVar("Choice", bound=Enum)
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
#: Headers of every page: no framing by other sites, no scripts or styles from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Platform:
    """One worker's database, its auth adapter and the platform's repositories."""

    db: hutch.Database
    auth: AuthAdapter
    repos: PlatformRepositories

    @classmethod
    def open(cls, url: str | None) -> Platform:
        """Open ``url`` (``None``: ``$HUTCH_URL``, else ``./data``) with the platform's models."""
        db = hutch.open(url, plugins=["platform", "auth"])
        return cls(db=db, auth=AuthAdapter(db), repos=PlatformRepositories.of(db))


class SignInRequired(Exception):
    """The page needs a signed-in user and the request has none: go to the sign-in page."""


class PageNotFound(Exception):
    """What the page names does not exist, or the signed-in user may not see it."""


class NotAllowed(hutch.HutchError):
    """The signed-in user's role in the organisation does not allow what they asked."""


class FormRefused(Exception):
    """A form came without the CSRF token of this browser's cookie."""


def platform_of(app: FastAPI) -> Platform:
    """The worker's :class:`Platform` (opened at start-up)."""
    found: Platform = app.state.platform
    return found


def platform(request: Request) -> Platform:
    """The :class:`Platform` of the application serving ``request``."""
    return platform_of(request.app)


#: What a handler asks for: ``p: Site`` (the worker's platform), ``user: SignedIn``,
#: ``data: Posted`` (the checked form).
Site = Annotated[Platform, Depends(platform)]


def session_secret(request: Request) -> str | None:
    """The browser's secret cookie: its session token, else its pre-session token."""
    return request.cookies.get(security.SESSION_COOKIE) or request.cookies.get(
        security.PRESESSION_COOKIE
    )


def session_user(request: Request, p: Platform) -> User | None:
    """The user of the browser's session cookie, or ``None`` (no cookie, no such session)."""
    token = request.cookies.get(security.SESSION_COOKIE)
    found = p.auth.get_session_and_user(token) if token else None
    return None if found is None else found[1]


def viewer(request: Request, p: Site) -> User:
    """The signed-in user, from the session cookie; else :class:`SignInRequired`."""
    user = session_user(request, p)
    if user is None:
        raise SignInRequired()
    return user


async def form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked (else :class:`FormRefused`)."""
    data = await request.form()
    if not security.csrf_matches(session_secret(request), data.get("csrf")):
        raise FormRefused()
    return {name: value for name, value in data.items() if isinstance(value, str)}


SignedIn = Annotated[User, Depends(viewer)]
Posted = Annotated[dict[str, str], Depends(form)]


def render(
    request: Request,
    template: str,
    *,
    user: User | None = None,
    error: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` with ``context``, the user, a problem to show and a CSRF token.

    A browser without a secret cookie gets a pre-session one here, so that the
    forms of the page it is shown (sign-in, sign-up) can be checked.
    """
    secret = session_secret(request)
    fresh = None
    if secret is None:
        secret = fresh = security.new_token()
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"user": user, "error": error, "csrf": security.csrf_token(secret), **context},
        status_code=status,
        headers=PAGE_HEADERS,
    )
    if fresh is not None:
        set_cookie(request, response, security.PRESESSION_COOKIE, fresh, max_age=None)
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    """Set a secret cookie: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def see(url: str) -> RedirectResponse:
    """After a form: show ``url`` (303, so the browser asks for it with GET)."""
    return RedirectResponse(url, status_code=303)


def problem(error: hutch.HutchError) -> tuple[str, int]:
    """What to tell the user about ``error``, and the status of the page that says it."""
    if isinstance(error, hutch.ValidationError | hutch.InvalidValue | hutch.InvalidId):
        return str(error), 400
    if isinstance(error, NotAllowed):
        return str(error), 403
    if isinstance(error, hutch.IntegrityError):
        return str(error), 409
    if isinstance(error, hutch.NotFound):
        return str(error), 404
    if isinstance(error, hutch.LockTimeout):
        return "The data is busy: try again in a moment.", 503
    return f"That could not be done ({type(error).__name__}): try again in a moment.", 503


#: Shows a form's page again with a problem: ``failed(message, status)``.
Failure = Callable[[str, int], Response]


def act(p: Platform, action: Callable[[], str], failed: Failure) -> Response:
    """Run a form's ``action`` in one transaction and show the page it returns; if hutch
    refuses it, nothing is written and ``failed(message, status)`` shows the problem."""
    try:
        with p.db.store.transaction():
            target = action()
    except hutch.HutchError as error:
        return failed(*problem(error))
    return see(target)


def checked_id(row_id: str) -> str:
    """A row id from a URL, or :class:`PageNotFound` if it cannot be one."""
    if not is_row_id(row_id):
        raise PageNotFound()
    return row_id


#: What an action asks of the user's role in the organisation; seeing asks only membership.
WORK = (MembershipRole.OWNER, MembershipRole.ADMIN, MembershipRole.MEMBER)  # projects, resources
MANAGE = (MembershipRole.OWNER, MembershipRole.ADMIN)  # members, teams, the organisation's name
SEE = tuple(MembershipRole)


def membership_role(p: Platform, user: User, organisation_id: str) -> MembershipRole | None:
    """The user's role in the organisation: that of their organisation-wide membership (the
    highest, if several), ``MEMBER`` for someone only in its teams (as another program may
    leave them), ``None`` for someone in neither. Team memberships carry no role of their own."""
    memberships = p.repos.memberships.find(user_id=user.id, organisation_id=organisation_id)
    roles = {membership.role for membership in memberships if membership.team_id is None}
    if not roles:
        return MembershipRole.MEMBER if memberships else None
    return next(role for role in MembershipRole if role in roles)


def organisation_for(
    p: Platform, user: User, organisation_id: str, may: tuple[MembershipRole, ...] = SEE
) -> Organisation:
    """The organisation, if the user is a member with one of the roles ``may``.

    Not a member: :class:`PageNotFound` (whether it exists is not theirs to know).
    A member whose role is not enough: :class:`NotAllowed`.
    """
    organisation = p.repos.organisations.get(checked_id(organisation_id))
    role = None if organisation is None else membership_role(p, user, organisation.id)
    if organisation is None or role is None:
        raise PageNotFound()
    if role not in may:
        raise NotAllowed(
            f"As {role.value.lower()} of {organisation.name} you may not do that: "
            "ask one of its owners or admins."
        )
    return organisation


def field(data: Mapping[str, str], name: str) -> str:
    """A form field's text, stripped: "" if the form lacks it or it shows nothing (only
    spaces and invisible characters), refused if too long or holding control characters."""
    value = data.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise hutch.ValidationError(
            f"The {name} is too long: at most {MAX_TEXT} characters.", {name: "too long"}
        )
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise hutch.ValidationError(
            f"The {name} holds control characters: type it again.", {name: "control characters"}
        )
    if not any(character.isprintable() and not character.isspace() for character in value):
        return ""
    return value


def choice(data: Mapping[str, str], name: str, options: type[Choice]) -> Choice:
    """A form field naming one of ``options`` (an enum of the platform), or refused."""
    value = data.get(name, "")
    for option in options:
        if option.value == value:
            return option
    named = ", ".join(option.value for option in options)
    raise hutch.ValidationError(f"Choose the {name} among {named}.", {name: "not a choice"})
