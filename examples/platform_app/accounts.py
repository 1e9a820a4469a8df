"""Sign-up, sign-in, sign-out and the account page: who is at the keyboard.

A sign-up creates the user and their first session in one transaction. A
sign-in makes a new session (a token the browser never had before); a
sign-out deletes it, in every worker at once, since sessions live in the store.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

import hutch
from hutch.plugins.platform import User

from . import security
from .web import (
    MAX_TEXT,
    PAGE,
    Failure,
    Platform,
    Posted,
    SignedIn,
    Site,
    act,
    field,
    render,
    see,
    set_cookie,
)

router = APIRouter()


@router.api_route("/", methods=PAGE)
def home(request: Request) -> Response:
    """Signed in: your organisations; else the sign-in page."""
    signed_in = request.cookies.get(security.SESSION_COOKIE)
    return see("/organisations" if signed_in else "/signin")


@router.api_route("/signup", methods=PAGE)
def signup_page(request: Request) -> Response:
    return render(request, "signup.html", email="", name="")


@router.post("/signup")
def signup(request: Request, data: Posted, p: Site) -> Response:
    password = data.get("password", "")

    def failed(message: str, status: int) -> Response:
        email, name = data.get("email", "")[:MAX_TEXT], data.get("name", "")[:MAX_TEXT]
        return render(request, "signup.html", error=message, status=status, email=email, name=name)

    if not security.MIN_PASSWORD <= len(password) <= security.MAX_PASSWORD:
        return failed(
            f"Choose a password of {security.MIN_PASSWORD} to {security.MAX_PASSWORD} characters.",
            400,
        )
    password_hash = security.hash_password(password)  # (slow on purpose: outside the lock)

    def create() -> User:
        email, name = field(data, "email"), field(data, "name")
        if p.repos.users.find_by_email(email) is not None:
            raise hutch.IntegrityError(
                "An account with this email exists already: sign in instead."
            )
        return p.auth.create_user(email, name=name or None, password_hash=password_hash)

    return open_session(request, p, create, failed)


@router.api_route("/signin", methods=PAGE)
def signin_page(request: Request) -> Response:
    return render(request, "signin.html", email="")


@router.post("/signin")
def signin(request: Request, data: Posted, p: Site) -> Response:
    email = data.get("email", "").strip()
    user = p.repos.users.find_by_email(email) if len(email) <= MAX_TEXT else None

    def failed(message: str, status: int) -> Response:
        return render(request, "signin.html", error=message, status=status, email=email[:MAX_TEXT])

    stored = None if user is None else user.password_hash
    if not security.password_matches(data.get("password", ""), stored) or user is None:
        return failed("Wrong email or password.", 401)
    return open_session(request, p, lambda: user, failed)


@router.post("/signout")
def signout(request: Request, _: Posted, p: Site) -> Response:
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        p.auth.delete_session(token)
    response = see("/signin")
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


@router.api_route("/account", methods=PAGE)
def account_page(request: Request, user: SignedIn, p: Site) -> Response:
    return show_account(request, p, user)


@router.post("/account/delete")
def delete_account(
    request: Request,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def delete() -> str:
        owned = p.repos.organisations.find_by_owner(user.id)
        if owned:  # (the platform's restrict policy refuses it too, in its own words)
            names = ", ".join(organisation.name for organisation in owned)
            them = "it" if len(owned) == 1 else "them"
            raise hutch.IntegrityError(f"You own {names}: delete {them} first, then your account.")
        p.auth.delete_user(user.id)  # its sessions and memberships go with it
        return "/signin"

    def failed(message: str, status: int) -> Response:
        return show_account(request, p, user, error=message, status=status)

    response = act(p, delete, failed)
    if response.status_code == 303:
        response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


def show_account(
    request: Request, p: Platform, user: User, *, error: str | None = None, status: int = 200
) -> Response:
    owned = p.repos.organisations.find_by_owner(user.id)
    return render(request, "account.html", user=user, owned=owned, error=error, status=status)


def open_session(
    request: Request, p: Platform, user_of: Callable[[], User], failed: Failure
) -> Response:
    """Find or create the user (``user_of``) and give them a new session, in one transaction.

    The browser's previous session, if it had one, ends in the same transaction, so that a
    sign-in never leaves an old token alive; the new token goes into the cookie.
    """
    token, previous = security.new_token(), request.cookies.get(security.SESSION_COOKIE)

    def start() -> str:
        user = user_of()
        if previous:
            p.auth.delete_session(previous)
        p.auth.create_session(token, user.id, security.session_expiry())
        return "/organisations"

    response = act(p, start, failed)
    if response.status_code == 303:
        max_age = security.SESSION_DAYS * 24 * 3600
        set_cookie(request, response, security.SESSION_COOKIE, token, max_age=max_age)
        response.delete_cookie(security.PRESESSION_COOKIE, path="/")
    return response
