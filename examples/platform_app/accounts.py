"""Sign-up, sign-in, sign-out and the account page: who is at the keyboard.

A sign-up creates the user and their first session in one transaction. A
sign-in makes a new session (a token the browser never had before); a
sign-out deletes it, in every worker at once, since sessions live in the store.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

import hutch
from hutch.plugins.platform import User

from . import security
from .web import (
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


@router.get("/")
def home(request: Request) -> Response:
    """Signed in: your organisations; else the sign-in page."""
    signed_in = request.cookies.get(security.SESSION_COOKIE)
    return see("/organisations" if signed_in else "/signin")


@router.get("/signup")
def signup_page(request: Request) -> Response:
    return render(request, "signup.html", email="", name="")


@router.post("/signup")
def signup(request: Request, data: Posted, p: Site) -> Response:
    email, name, password = field(data, "email"), field(data, "name"), data.get("password", "")
    token = security.new_token()

    def failed(message: str, status: int) -> Response:
        return render(request, "signup.html", error=message, status=status, email=email, name=name)

    if not security.MIN_PASSWORD <= len(password) <= security.MAX_PASSWORD:
        return failed(
            f"Choose a password of {security.MIN_PASSWORD} to {security.MAX_PASSWORD} characters.",
            400,
        )
    password_hash = security.hash_password(password)  # (slow on purpose: outside the lock)

    def create() -> str:
        if p.repos.users.find_by_email(email) is not None:
            raise hutch.IntegrityError(
                "An account with this email exists already: sign in instead."
            )
        user = p.auth.create_user(email, name=name or None, password_hash=password_hash)
        p.auth.create_session(token, user.id, security.session_expiry())
        return "/organisations"

    response = act(p, create, failed)
    if response.status_code == 303:
        start_session(request, response, token)
    return response


@router.get("/signin")
def signin_page(request: Request) -> Response:
    return render(request, "signin.html", email="")


@router.post("/signin")
def signin(request: Request, data: Posted, p: Site) -> Response:
    email = field(data, "email")
    user = p.repos.users.find_by_email(email)
    if not security.password_matches(
        data.get("password", ""), user.password_hash if user else None
    ):
        return render(
            request, "signin.html", error="Wrong email or password.", status=401, email=email
        )
    assert user is not None
    token = security.new_token()

    def failed(message: str, status: int) -> Response:
        return render(request, "signin.html", error=message, status=status, email=email)

    def create() -> str:
        p.auth.create_session(token, user.id, security.session_expiry())
        return "/organisations"

    response = act(p, create, failed)
    if response.status_code == 303:
        start_session(request, response, token)
    return response


@router.post("/signout")
def signout(request: Request, _: Posted, p: Site) -> Response:
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        p.auth.delete_session(token)
    response = see("/signin")
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


@router.get("/account")
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


def start_session(request: Request, response: Response, token: str) -> None:
    """Give the browser its new session cookie."""
    max_age = security.SESSION_DAYS * 24 * 3600
    set_cookie(request, response, security.SESSION_COOKIE, token, max_age=max_age)
    response.delete_cookie(security.PRESESSION_COOKIE, path="/")
