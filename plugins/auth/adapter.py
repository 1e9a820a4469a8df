"""``AuthAdapter``: the Auth.js adapter contract over a hutch database, secure by default.

Every method runs in one store transaction, so each is atomic and, on a backend
shared by several processes (a folder, a database server), starts from what the
others committed: a session signed out in one worker is gone in the next request
to any other, and a verification token is redeemed exactly once. The exception
is :meth:`AuthAdapter.get_session_and_user`, which a web application calls on
every page: it takes in the others' commits (``db.refresh()``) and then reads
without a transaction; only an expired session opens one, to delete it.

Session and verification tokens are stored only as :func:`hash_token` (SHA-256,
hex): the raw token never reaches the store, the data folder or a database
file. Lookups hash the token they are given. The instances the adapter returns
carry the raw token their caller gave (``session.session_token``,
``verification_token.token``), as the Auth.js contract expects; rows read
straight from the store or through ``db.repo(Session)`` hold the hash.

Given ``secret_key``, the OAuth tokens of accounts are stored encrypted
(:mod:`~hutch.plugins.auth.encryption`); the accounts the adapter returns carry
them decrypted.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from datetime import UTC, datetime
from typing import Any

import attrs

import hutch
from hutch.ids import is_row_id, new_id
from hutch.plugins.platform import User, UserRepository

from .encryption import SealedFields, SecretKeys, TokenCipher, utf8
from .models import (
    ACCOUNT_IDENTITY,
    ACCOUNT_TOKENS,
    MODELS,
    Account,
    Authenticator,
    Session,
    VerificationToken,
)
from .repositories import AccountRepository, SessionRepository, VerificationTokenRepository


def hash_token(token: str) -> str:
    """What the store keeps for a token: the SHA-256 of its UTF-8 bytes, as 64 hex digits."""
    if not isinstance(token, str):
        raise hutch.ValidationError(
            f"a token must be text, not {type(token).__name__}", {"token": "expected text"}
        )
    return hashlib.sha256(utf8(token, "token")).hexdigest()


def _check_enabled(db: hutch.Database) -> None:
    """Refuse a database opened without the auth models: known only from the adapter on,
    their delete policies would have missed the users deleted before (their sessions live on)."""
    known = set(db.models.models())
    needed: tuple[type[hutch.Model], ...] = (User, *MODELS)
    missing = [model.__qualname__ for model in needed if model not in known]
    if missing:
        raise hutch.ConfigError(
            f"AuthAdapter needs the auth models, and {db.url} was opened without "
            f'{", ".join(missing)}: open it with hutch.open(url, plugins=["auth"]) '
            "(see docs/auth.md)"
        )


class AuthAdapter:
    """The Auth.js adapter methods over ``db``: ``auth = AuthAdapter(db)``.

    Methods return model instances, or ``None`` where nothing matches; bad
    input raises ``hutch.ValidationError`` (a field is wrong) or
    ``hutch.IntegrityError`` (an unknown user, a duplicate), having written
    nothing. Make the adapter once, outside any transaction, and share it
    between threads.

    ``secret_key`` (text or bytes, 32 bytes or more; or a list, the current
    key first) makes accounts' ``access_token``, ``refresh_token`` and
    ``id_token`` encrypted at rest. Keep it out of the data folder.
    """

    def __init__(self, db: hutch.Database, *, secret_key: SecretKeys | None = None) -> None:
        _check_enabled(db)
        cipher = None if secret_key is None else TokenCipher(secret_key)
        self._tokens = SealedFields(
            cipher, Account.__collection__, ACCOUNT_TOKENS, ACCOUNT_IDENTITY
        )
        self.db = db
        self.users = db.repo(User, UserRepository)
        self.accounts = db.repo(Account, AccountRepository)
        self.sessions = db.repo(Session, SessionRepository)
        self.verification_tokens = db.repo(VerificationToken, VerificationTokenRepository)
        self.authenticators = db.repo(Authenticator)
        self._store = db.store

    # -- users -----------------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        name: str | None = None,
        image: str | None = None,
        email_verified: datetime | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> User:
        """A new user; one per mailbox, by the email rule (``hutch.IntegrityError`` if taken).

        ``fields`` are the platform ``User``'s other fields (``password_hash``,
        ``role``, ``storage_tier``), written in the same transaction, so that a
        sign-up with a password is one call; an unknown one is a ``hutch.ValidationError``.
        """
        given: dict[str, Any] = {
            "email": email,
            "name": name,
            "image": image,
            "email_verified": email_verified,
            **fields,
        }
        if id is not None:
            given["id"] = id
        return self.users.create(**given)

    def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        if not is_row_id(id):
            return None
        with self._store.transaction():
            return self.users.get(id)

    def get_user_by_email(self, email: str) -> User | None:
        """The user with this mailbox under the email rule, or ``None`` (see docs/auth.md)."""
        if not isinstance(email, str):
            return None
        with self._store.transaction():
            return self.users.find_by_email(email)

    def get_user_by_account(self, provider: str, provider_account_id: str) -> User | None:
        """The user the provider account is linked to, or ``None``."""
        with self._store.transaction():
            account = self.accounts.find_by_provider_account(provider, provider_account_id)
            return None if account is None else self.users.get(account.user_id)

    def update_user(self, id: str, **fields: Any) -> User:
        """Change some fields of a user and return it; ``hutch.NotFound`` if there is none."""
        return self.users.update(id, **fields)

    def delete_user(self, id: str) -> User | None:
        """Delete the user with every account, session and authenticator of theirs, at once.

        Returns the deleted user, or ``None`` if there was none. Every delete
        policy applies: if a ``restrict`` relation points at the user (an
        organisation they own, on the platform), ``hutch.IntegrityError`` says
        so and nothing at all is deleted, sessions included.
        """
        if not is_row_id(id):
            return None
        with self._store.transaction():
            user = self.users.get(id)
            if user is not None:
                self.users.delete(id)
        return user

    # -- accounts --------------------------------------------------------------------------------

    def link_account(
        self,
        user_id: str,
        type: str,
        provider: str,
        provider_account_id: str,
        access_token: str | None = None,
        refresh_token: str | None = None,
        expires_at: int | None = None,
        token_type: str | None = None,
        scope: str | None = None,
        id_token: str | None = None,
        session_state: str | None = None,
    ) -> Account:
        """Link a provider account to a user; a provider account links to one user only."""
        fields: dict[str, Any] = {
            "id": new_id(),  # before sealing: the row's id is bound into each ciphertext
            "user_id": user_id,
            "type": type,
            "provider": provider,
            "provider_account_id": provider_account_id,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_at": expires_at,
            "token_type": token_type,
            "scope": scope,
            "id_token": id_token,
            "session_state": session_state,
        }
        account = self.accounts.create(**{**fields, **self._tokens.sealed(fields)})
        return attrs.evolve(account, **{field: fields[field] for field in ACCOUNT_TOKENS})

    def unlink_account(self, provider: str, provider_account_id: str) -> Account | None:
        """Delete the link of a provider account and return it, or ``None`` if there was none.

        Unlinking never needs the key: a token that does not open (no key, or
        another key) is ``None`` in the account returned.
        """
        with self._store.transaction():
            account = self.accounts.find_by_provider_account(provider, provider_account_id)
            if account is None:
                return None
            self.accounts.delete(account.id)
        return self._tokens.opened_or_none(account)

    def get_account(self, provider_account_id: str, provider: str) -> Account | None:
        """The account of this provider with this id at the provider, or ``None``."""
        with self._store.transaction():
            account = self.accounts.find_by_provider_account(provider, provider_account_id)
        return None if account is None else self._tokens.opened(account)

    def encrypt_tokens(self) -> int:
        """Store every account's tokens under the current key; how many accounts changed.

        Finishes a key rotation (tokens sealed under an older key are sealed
        again under the first) and encrypts tokens stored in plain text before
        a key was given. Without a ``secret_key``, ``hutch.ConfigError``.
        """
        return self._tokens.reseal(self.accounts)

    # -- sessions --------------------------------------------------------------------------------

    def create_session(self, session_token: str, user_id: str, expires: datetime) -> Session:
        """A new session of an existing user; the store keeps only the token's hash."""
        digest = _digest_new(session_token, "session_token")
        session = self.sessions.create(session_token=digest, user_id=user_id, expires=expires)
        return attrs.evolve(session, session_token=session_token)

    def get_session_and_user(self, session_token: str) -> tuple[Session, User] | None:
        """The session and its user; ``None`` if there is none or it expired (then deleted)."""
        digest = hash_token(session_token)
        # A web application asks this on every page: it reads without a transaction (which
        # would queue the page behind other processes' commits) once up to date.
        self.db.refresh()
        with self._store.lock:
            session = self.sessions.find_one(session_token=digest)
            user = None if session is None else self.users.get(session.user_id)
        if session is not None and _expired(session.expires, _now()):
            if self._store.read_only:
                return None
            with self._store.transaction():  # (another process may have extended it meanwhile)
                session = self.sessions.find_one(session_token=digest)
                if session is not None and _expired(session.expires, _now()):
                    self.sessions.delete(session.id)
                    return None
                user = None if session is None else self.users.get(session.user_id)
        if session is None or user is None:
            return None
        return attrs.evolve(session, session_token=session_token), user

    def update_session(self, session_token: str, **fields: Any) -> Session | None:
        """Change a session (its ``expires``, say) and return it, or ``None`` if there is none.

        The token names the session and stays as it is: to replace a token,
        create a session with the new one and delete the old.
        """
        digest = hash_token(session_token)
        with self._store.transaction():
            session = self.sessions.find_one(session_token=digest)
            if session is None:
                return None
            session = self.sessions.update(session.id, **fields)
        return attrs.evolve(session, session_token=session_token)

    def delete_session(self, session_token: str) -> Session | None:
        """Delete a session (sign out) and return it, or ``None`` if there was none."""
        digest = hash_token(session_token)
        with self._store.transaction():
            session = self.sessions.find_one(session_token=digest)
            if session is None:
                return None
            self.sessions.delete(session.id)
        return attrs.evolve(session, session_token=session_token)

    # -- verification tokens -----------------------------------------------------------------------

    def create_verification_token(
        self, identifier: str, token: str, expires: datetime
    ) -> VerificationToken:
        """A new single-use token for ``identifier``; the store keeps only the token's hash."""
        digest = _digest_new(token, "token")
        created = self.verification_tokens.create(
            identifier=identifier, token=digest, expires=expires
        )
        return attrs.evolve(created, token=token)

    def use_verification_token(self, identifier: str, token: str) -> VerificationToken | None:
        """Redeem a token: return it and delete it, or ``None`` if there is no such token.

        Exactly one caller gets the token, however many threads or processes
        redeem it at once: the lookup and the delete share one transaction,
        which on a shared backend holds its write lock and starts from the
        latest state. A token of another identifier is ``None`` (and stays).
        As in Auth.js, an expired token is still returned (and deleted): check
        ``expires`` before trusting it.
        """
        digest = hash_token(token)
        with self._store.transaction():
            found = self.verification_tokens.find_by_pair(identifier, digest)
            if found is None:
                return None
            self.verification_tokens.delete(found.id)
        return attrs.evolve(found, token=token)

    # -- authenticators ----------------------------------------------------------------------------

    def create_authenticator(
        self,
        credential_id: str,
        user_id: str,
        provider_account_id: str,
        credential_public_key: str,
        counter: int,
        credential_device_type: str,
        credential_backed_up: bool,
        transports: str | None = None,
    ) -> Authenticator:
        """A new WebAuthn credential of an existing user; ``credential_id`` is unique."""
        return self.authenticators.create(
            credential_id=credential_id,
            user_id=user_id,
            provider_account_id=provider_account_id,
            credential_public_key=credential_public_key,
            counter=counter,
            credential_device_type=credential_device_type,
            credential_backed_up=credential_backed_up,
            transports=transports,
        )

    def get_authenticator(self, credential_id: str) -> Authenticator | None:
        """The authenticator with this credential id, or ``None``."""
        with self._store.transaction():
            return self.authenticators.find_one(credential_id=credential_id)

    def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]:
        """The user's authenticators (empty for an unknown user)."""
        if not is_row_id(user_id):
            return []
        with self._store.transaction():
            return self.authenticators.find(user_id=user_id)

    def update_authenticator_counter(self, credential_id: str, counter: int) -> Authenticator:
        """Set an authenticator's signature counter; ``hutch.NotFound`` for an unknown one."""
        with self._store.transaction():
            found = self.authenticators.find_one(credential_id=credential_id)
            if found is None:
                raise hutch.NotFound(
                    f"no authenticators row has credential_id {credential_id!r}; "
                    "create_authenticator first"
                )
            return self.authenticators.update(found.id, counter=counter)

    # -- housekeeping ------------------------------------------------------------------------------

    def sweep_expired(self, now: datetime | None = None) -> int:
        """Delete expired sessions and verification tokens (``expires <= now``); how many.

        ``now`` defaults to the current time; both collections are read through
        their ``expires`` index, so only expired rows are visited.
        """
        when = _now() if now is None else now
        if when.tzinfo is None:
            raise hutch.ValidationError(
                "now must be timezone-aware; use datetime.now(UTC)", {"now": "naive datetime"}
            )
        deleted = 0
        with self._store.transaction():
            for repo in (self.sessions, self.verification_tokens):
                for row_id in _expired_ids(self.db, repo, when):
                    deleted += repo.delete(row_id)
        return deleted


def _digest_new(token: str, field: str) -> str:
    """The hash of a token about to be stored; a token must be non-empty text."""
    if not isinstance(token, str) or not token:
        raise hutch.ValidationError(
            f"{field} must be non-empty text", {field: "expected non-empty text"}
        )
    return hash_token(token)


def _now() -> datetime:
    return datetime.now(UTC)


def _expired(expires: datetime, now: datetime) -> bool:
    return expires <= now


def _expired_ids(db: hutch.Database, repo: hutch.Repository[Any], now: datetime) -> list[str]:
    """The ids of rows whose ``expires`` is at or before ``now``, from the ``expires`` index.

    Rows store ``expires`` as ISO-8601 text in UTC, all in one format, so the
    index keys sort as the instants they name: the expired ones come first.
    """
    index = repo.spec.index_id("expires")
    keys = [key for key in db.indexes.slice_ids(index) if isinstance(key, str)]
    stored_now = now.astimezone(UTC).isoformat()
    ids: list[str] = []
    for key in keys[: bisect_right(keys, stored_now)]:
        if _expired(datetime.fromisoformat(key), now):  # the order is the format's; check it
            ids.extend(db.indexes.slice_row_ids(index, key))
    return ids
