"""The auth models' repositories: rules a field cannot declare, and lookups by them.

An account's ``(provider, provider_account_id)`` and a verification token's
``(identifier, token)`` are unique. The core declares unique single fields
only, so these repositories check the pairs in ``check``, which every write
(``create``, each item of ``create_many``, ``update``) calls in its own
transaction, as the platform's ``MembershipRepository`` does: a refused write
raises ``hutch.IntegrityError`` and changes nothing. Lookups start from an
index on the pair's more selective field.

Sessions and verification tokens keep a token's SHA-256 (64 hex digits), never
the token: their repositories refuse to store anything else, so a raw token
written through ``db.repo(Session)`` by mistake is refused rather than kept
(unless it happens to be 64 hex digits itself, which no check can tell apart).
"""

from __future__ import annotations

import re

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

    def check(self, instance: models.Session, previous: models.Session | None = None) -> None:
        """On every write, ``session_token`` is a hash."""
        super().check(instance, previous)
        _check_hashed(instance.session_token, "session_token")

    def find_by_user(self, user_id: str) -> list[models.Session]:
        """The user's sessions."""
        return self.find(user_id=user_id)


class AccountRepository(hutch.Repository["models.Account"]):
    """Accounts, unique by ``(provider, provider_account_id)``."""

    def check(self, instance: models.Account, previous: models.Account | None = None) -> None:
        """On every write, refuse a second link of the same provider account."""
        super().check(instance, previous)
        found = self.find(
            provider_account_id=instance.provider_account_id, provider=instance.provider
        )
        others = [other for other in found if other.id != instance.id]
        if others:
            raise hutch.IntegrityError(
                f"accounts: provider {instance.provider!r} account "
                f"{instance.provider_account_id!r} is already linked (account {others[0].id!r} "
                f"of user {others[0].user_id!r}); unlink it first",
                row_id=others[0].id,
            )

    def find_by_provider_account(
        self, provider: str, provider_account_id: str
    ) -> models.Account | None:
        """The account of this provider with this id at the provider, or ``None``."""
        return self.find_one(provider_account_id=provider_account_id, provider=provider)

    def find_by_user(self, user_id: str) -> list[models.Account]:
        """The user's accounts."""
        return self.find(user_id=user_id)


class VerificationTokenRepository(hutch.Repository["models.VerificationToken"]):
    """Verification tokens, unique by ``(identifier, token)``; ``token`` holds a hash."""

    def check(
        self, instance: models.VerificationToken, previous: models.VerificationToken | None = None
    ) -> None:
        """On every write, ``token`` is a hash that its identifier has no other token with."""
        super().check(instance, previous)
        _check_hashed(instance.token, "token")
        found = self.find(token=instance.token)
        others = [t for t in found if t.identifier == instance.identifier and t.id != instance.id]
        if others:
            raise hutch.IntegrityError(
                f"verification_tokens: identifier {instance.identifier!r} already has this "
                "token; use it or make another",
                row_id=others[0].id,
            )

    def find_by_pair(self, identifier: str, token: str) -> models.VerificationToken | None:
        """The token with this identifier and this (stored, hashed) token, or ``None``."""
        return self.find_one(token=token, identifier=identifier)
