"""The auth models' repositories: rules a field cannot declare, and lookups by them.

An account's ``(provider, provider_account_id)`` and a verification token's
``(identifier, token)`` are unique. The core declares unique single fields
only, so these repositories check the pairs in the write's own transaction
(as the platform's ``MembershipRepository`` does): a refused write raises
``hutch.IntegrityError`` and changes nothing. Lookups start from an index on
the pair's more selective field.

Sessions and verification tokens keep a token's SHA-256 (64 hex digits), never
the token: their repositories refuse to store anything else, so a raw token
written through ``db.repo(Session)`` by mistake is refused rather than kept
(unless it happens to be 64 hex digits itself, which no check can tell apart).
"""

from __future__ import annotations

import re
from typing import Any

import hutch

from . import models

_SHA256_HEX = re.compile(r"[0-9a-f]{64}").fullmatch


def _check_hashed(value: str, field: str) -> None:
    if not _SHA256_HEX(value):
        raise hutch.ValidationError(
            f"{field} must hold the SHA-256 of a token (64 hex digits), never the token: "
            "use AuthAdapter, or hutch.plugins.auth.hash_token(token)",
            {field: "expected a SHA-256 hex digest"},
        )


class SessionRepository(hutch.Repository["models.Session"]):
    """Sessions; ``session_token`` holds a token's hash, and nothing else is stored there."""

    def create(self, **fields: Any) -> models.Session:
        """Store a new session whose ``session_token`` is a hash."""
        with self.db.store.transaction():
            session = super().create(**fields)
            _check_hashed(session.session_token, "session_token")
        return session

    def update(self, id: str, /, **changes: Any) -> models.Session:
        """Change a session, under the rule of :meth:`create`."""
        with self.db.store.transaction():
            session = super().update(id, **changes)
            _check_hashed(session.session_token, "session_token")
        return session

    def find_by_user(self, user_id: str) -> list[models.Session]:
        """The user's sessions."""
        return self.find(user_id=user_id)


class AccountRepository(hutch.Repository["models.Account"]):
    """Accounts, unique by ``(provider, provider_account_id)``."""

    def create(self, **fields: Any) -> models.Account:
        """Link a new account, refusing a second link of the same provider account."""
        with self.db.store.transaction():
            account = super().create(**fields)
            self._check_pair(account)
        return account

    def update(self, id: str, /, **changes: Any) -> models.Account:
        """Change an account, under the rule of :meth:`create`."""
        with self.db.store.transaction():
            account = super().update(id, **changes)
            self._check_pair(account)
        return account

    def find_by_provider_account(
        self, provider: str, provider_account_id: str
    ) -> models.Account | None:
        """The account of this provider with this id at the provider, or ``None``."""
        return self.find_one(provider_account_id=provider_account_id, provider=provider)

    def find_by_user(self, user_id: str) -> list[models.Account]:
        """The user's accounts."""
        return self.find(user_id=user_id)

    def _check_pair(self, account: models.Account) -> None:
        found = self.find(
            provider_account_id=account.provider_account_id, provider=account.provider
        )
        others = [other for other in found if other.id != account.id]
        if others:
            raise hutch.IntegrityError(
                f"accounts: provider {account.provider!r} account "
                f"{account.provider_account_id!r} is already linked (account {others[0].id!r} "
                f"of user {others[0].user_id!r}); unlink it first"
            )


class VerificationTokenRepository(hutch.Repository["models.VerificationToken"]):
    """Verification tokens, unique by ``(identifier, token)``; ``token`` holds a hash."""

    def create(self, **fields: Any) -> models.VerificationToken:
        """Store a new token (a hash), refusing one its identifier already has."""
        with self.db.store.transaction():
            token = super().create(**fields)
            _check_hashed(token.token, "token")
            self._check_pair(token)
        return token

    def update(self, id: str, /, **changes: Any) -> models.VerificationToken:
        """Change a token, under the rules of :meth:`create`."""
        with self.db.store.transaction():
            token = super().update(id, **changes)
            _check_hashed(token.token, "token")
            self._check_pair(token)
        return token

    def find_by_pair(self, identifier: str, token: str) -> models.VerificationToken | None:
        """The token with this identifier and this (stored, hashed) token, or ``None``."""
        return self.find_one(token=token, identifier=identifier)

    def _check_pair(self, token: models.VerificationToken) -> None:
        others = [t for t in self.find(token=token.token) if t.identifier == token.identifier]
        if any(other.id != token.id for other in others):
            raise hutch.IntegrityError(
                f"verification_tokens: identifier {token.identifier!r} already has this token; "
                "use it or make another"
            )
