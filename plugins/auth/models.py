"""The Auth.js entities besides the platform ``User``: accounts, sessions, tokens, authenticators.

Each points at its user (``users``) with ``on_delete="cascade"``, so deleting a
user deletes their accounts, sessions and authenticators in the same
transaction (unless a ``restrict`` relation, such as an organisation they own,
refuses the delete, in which case nothing is deleted). Registering any of them
registers them all, and the platform ``User`` with its own family (``__family__``).

=================================  ===========================================================
field                              holds
=================================  ===========================================================
``sessions.session_token``         SHA-256 of the session token, 64 hex digits (never the token)
``verification_tokens.token``      SHA-256 of the verification token, 64 hex digits
``accounts.access_token`` and co.  the provider's tokens: encrypted given a key, else as given
=================================  ===========================================================

Rules a single field cannot declare live in the repositories and are checked
in the write's own transaction: an account's ``(provider, provider_account_id)``
and a verification token's ``(identifier, token)`` are unique, and a stored
session or verification token is a SHA-256 hex digest. Tokens are left out of
the models' ``repr``, so logging an instance leaks none. Every lookup the
adapter makes is an index lookup: the unique and foreign-key fields are
indexed, and so are ``accounts.provider_account_id``,
``verification_tokens.token`` and both ``expires`` fields (for the sweep).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

import hutch
from hutch.plugins.platform import User

from . import repositories


def _not_blank(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be blank")


def _auth() -> tuple[type[hutch.Model], ...]:
    """The family each auth model registers with it: the platform ``User`` (which brings the
    platform's other models) and the auth models."""
    return (User, *MODELS)


@attrs.frozen(kw_only=True)
class Account(hutch.Model):
    """A provider account (OAuth, OIDC, email, WebAuthn) linked to a user.

    ``type`` is what Auth.js calls the account type (``"oauth"``, ``"oidc"``,
    ``"email"``, ``"webauthn"``); ``expires_at`` is the access token's expiry in
    seconds since 1970, as providers report it.
    """

    __collection__ = "accounts"
    __family__ = _auth
    __repository__ = repositories.AccountRepository
    __indexed__ = ("provider_account_id",)
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    user_id: str
    type: str = attrs.field(validator=_not_blank)
    provider: str = attrs.field(validator=_not_blank)
    provider_account_id: str = attrs.field(validator=_not_blank)
    access_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expires_at: int | None = None
    token_type: str | None = None
    scope: str | None = None
    id_token: str | None = attrs.field(default=None, repr=False)
    session_state: str | None = None


@attrs.frozen(kw_only=True)
class Session(hutch.Model):
    """A database session: a token in the browser's cookie, a user, an expiry (aware, UTC).

    Stored rows hold ``hash_token(token)`` in ``session_token``; the instances
    the adapter returns carry the token their caller gave instead.
    """

    __collection__ = "sessions"
    __family__ = _auth
    __repository__ = repositories.SessionRepository
    __unique__ = ("session_token",)
    __indexed__ = ("expires",)
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    session_token: str = attrs.field(repr=False)
    user_id: str
    expires: datetime


@attrs.frozen(kw_only=True)
class VerificationToken(hutch.Model):
    """A single-use token (a sign-in link, say) for an identifier, usually an email address.

    Stored rows hold ``hash_token(token)`` in ``token``; the instances the
    adapter returns carry the token their caller gave instead.
    """

    __collection__ = "verification_tokens"
    __family__ = _auth
    __repository__ = repositories.VerificationTokenRepository
    __indexed__ = ("token", "expires")

    identifier: str = attrs.field(validator=_not_blank)
    token: str = attrs.field(repr=False)
    expires: datetime


@attrs.frozen(kw_only=True)
class Authenticator(hutch.Model):
    """A WebAuthn credential (a passkey) of a user; ``counter`` is its signature counter."""

    __collection__ = "authenticators"
    __family__ = _auth
    __unique__ = ("credential_id",)
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    credential_id: str = attrs.field(validator=_not_blank)
    user_id: str
    provider_account_id: str
    credential_public_key: str
    counter: int = attrs.field(validator=attrs.validators.ge(0))
    credential_device_type: str
    credential_backed_up: bool
    transports: str | None = None


#: The fields of an account that hold the provider's tokens (encrypted at rest, given a key),
#: and those whose values bind each ciphertext to its account.
ACCOUNT_TOKENS = ("access_token", "refresh_token", "id_token")
ACCOUNT_IDENTITY = ("id", "user_id", "provider", "provider_account_id")

#: The models this plugin adds (it registers the platform ``User`` too).
MODELS: tuple[type[hutch.Model], ...] = (Account, Session, VerificationToken, Authenticator)
