"""The auth plugin: the Auth.js adapter contract in Python, secure by default.

``AuthAdapter(db)`` stores users (the platform ``User``), linked provider
accounts, sessions, verification tokens and WebAuthn authenticators, on any
backend (see docs/auth.md). Session and verification tokens are stored only as
SHA-256 hashes, and given ``secret_key``, OAuth tokens are encrypted
(:mod:`~hutch.plugins.auth.encryption`); users are matched by the email rule of
:mod:`hutch.plugins.platform.emails`. Installed with hutch as a domain plugin
(the ``hutch.domains`` entry-point group): named at the open, it makes the
database know these models, their indexes and their delete policies (deleting
a user deletes their accounts, sessions and authenticators) from the start; the
platform ``User`` it stores users in brings the platform's other models (its
``__family__``), whose delete policies then hold too::

    with hutch.open("memory://", plugins=["auth"]) as db:
        auth = AuthAdapter(db)
        ada = auth.create_user(email="ada@example.org")
        auth.create_session(session_token=token, user_id=ada.id, expires=tomorrow)
        session, user = auth.get_session_and_user(token)
"""

from __future__ import annotations

from collections.abc import Callable

import hutch
from hutch.plugins.platform import User

from .adapter import AuthAdapter, hash_token
from .models import MODELS, Account, Authenticator, Session, VerificationToken
from .repositories import AccountRepository, SessionRepository, VerificationTokenRepository

__all__ = [
    "MODELS",
    "Account",
    "AccountRepository",
    "AuthAdapter",
    "Authenticator",
    "Session",
    "SessionRepository",
    "User",
    "VerificationToken",
    "VerificationTokenRepository",
    "hash_token",
    "hutch_register_models",
]


@hutch.hookimpl
def hutch_register_models(register: Callable[[type[hutch.Model]], None]) -> None:
    """Register the platform ``User`` (a no-op if the platform plugin did) and the auth models."""
    register(User)
    for model in MODELS:
        register(model)
