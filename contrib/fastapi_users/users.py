"""fastapi-users' ``BaseUserDatabase`` over the platform ``User``, with OAuth accounts.

fastapi-users reads and writes users through the fields of its user
protocol; this maps them onto the platform ``User`` (see the package
docstring for the table) and hands fastapi-users a :class:`FastAPIUser`: a
snapshot of the user with those fields, the OAuth accounts linked to it and
the platform record itself (``record``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from fastapi_users import exceptions
from fastapi_users.db import BaseUserDatabase
from fastapi_users.models import OAP
from fastapi_users.password import PasswordHelper, PasswordHelperProtocol

import hutch
from hutch.ids import is_row_id, new_id
from hutch.plugins.auth.encryption import SealedFields, SecretKeys, TokenCipher
from hutch.plugins.platform import StorageTier, User, UserRepository, UserRole
from hutch.plugins.platform.email_review import (
    EmailReview,
    record_if_first,
    review_linked,
    review_once,
)

from .models import (
    OAUTH_IDENTITY,
    OAUTH_TOKENS,
    PLAIN_TOKENS,
    Deactivation,
    OAuthAccount,
    register,
)

#: The keyed value recording the email rule the OAuth accounts' links were last reviewed under.
LINKS_REVIEWED = "hutch.fastapi_users.email_rule"

#: The fastapi-users fields that are not fields of the platform ``User``, and the flags among them.
_FLAGS = ("is_active", "is_superuser", "is_verified")
_MAPPED = ("hashed_password", *_FLAGS)


@attrs.define(kw_only=True)
class FastAPIOAuthAccount:
    """An OAuth account as fastapi-users sees it (its ``OAuthAccountProtocol``).

    ``record`` is the stored :class:`~hutch.contrib.fastapi_users.models.OAuthAccount`
    (its tokens encrypted, given a key). ``access_token`` and ``refresh_token``
    decrypt them when read, so finding a user never needs the key and a token
    that does not open raises only where it is used. A snapshot: change an
    account through the user database. ``repr`` leaves the tokens out.
    """

    id: str
    user_id: str
    oauth_name: str
    expires_at: int | None
    account_id: str
    account_email: str
    record: OAuthAccount
    tokens: SealedFields = attrs.field(default=PLAIN_TOKENS, eq=False, repr=False)
    _opened: dict[str, str | None] = attrs.field(factory=dict, eq=False, repr=False, init=False)

    @classmethod
    def of(cls, record: OAuthAccount, tokens: SealedFields = PLAIN_TOKENS) -> FastAPIOAuthAccount:
        """The view of a stored account whose tokens ``tokens`` opens."""
        return cls(
            id=record.id,
            user_id=record.user_id,
            oauth_name=record.oauth_name,
            expires_at=record.expires_at,
            account_id=record.account_id,
            account_email=record.account_email,
            record=record,
            tokens=tokens,
        )

    @property
    def access_token(self) -> str:
        """The provider's access token, decrypted."""
        return str(self._token("access_token"))

    @access_token.setter
    def access_token(self, value: str) -> None:
        self._opened["access_token"] = value

    @property
    def refresh_token(self) -> str | None:
        """The provider's refresh token, decrypted, or ``None``."""
        return self._token("refresh_token")

    @refresh_token.setter
    def refresh_token(self, value: str | None) -> None:
        self._opened["refresh_token"] = value

    def _token(self, field: str) -> str | None:
        if field not in self._opened:
            self._opened[field] = getattr(self.tokens.opened(self.record, (field,)), field)
        return self._opened[field]


@attrs.define(kw_only=True)
class FastAPIUser:
    """A platform user as fastapi-users sees it (its ``UserProtocol``), with OAuth accounts.

    A snapshot: changing an attribute changes nothing stored; change a user
    through the user database (or ``record`` through the platform repository).
    The platform fields fastapi-users does not know (``name``, ``role``...) are
    here too, read from ``record``, so a ``UserRead`` schema may list them.
    ``oauth_accounts`` come in the order they were linked. ``repr`` leaves the
    password hash out (and the accounts' tokens, and the record's hash).
    """

    id: str
    email: str
    hashed_password: str = attrs.field(repr=False)
    is_active: bool
    is_superuser: bool
    is_verified: bool
    oauth_accounts: list[FastAPIOAuthAccount]
    record: User

    @property
    def name(self) -> str | None:
        """The platform user's name."""
        return self.record.name

    @property
    def image(self) -> str | None:
        """The platform user's image URL."""
        return self.record.image

    @property
    def email_verified(self) -> datetime | None:
        """When the email was verified (``is_verified`` says whether it was)."""
        return self.record.email_verified

    @property
    def role(self) -> UserRole:
        """The platform role (``is_superuser`` says whether it is ``ADMIN``)."""
        return self.record.role

    @property
    def storage_tier(self) -> StorageTier:
        """The platform storage tier."""
        return self.record.storage_tier

    @property
    def created_at(self) -> datetime:
        """When the user was created."""
        return self.record.created_at

    @property
    def updated_at(self) -> datetime:
        """When the user last changed."""
        return self.record.updated_at


class HutchIDMixin:
    """``parse_id`` for a ``BaseUserManager`` whose users have hutch ids (text).

    ``class UserManager(HutchIDMixin, BaseUserManager[FastAPIUser, str])``;
    text that could not be a row id is ``InvalidID``.
    """

    def parse_id(self, value: Any) -> str:
        """``value`` if it could be a hutch row id, else ``fastapi_users.exceptions.InvalidID``."""
        if not is_row_id(value):
            raise exceptions.InvalidID()
        assert isinstance(value, str)
        return value


class HutchUserDatabase(BaseUserDatabase[FastAPIUser, str]):
    """Users (the platform ``User``) and their OAuth accounts, for fastapi-users.

    ``password_helper`` should be the user manager's, if it has its own: a
    user without a password (one made by the platform or an auth adapter) is
    given the hash of a random secret nobody knows, made by that helper, so a
    password login fails as it would for a wrong password.

    ``secret_key`` (text or bytes, 32 bytes or more; or a list, the current key
    first) makes the OAuth accounts' tokens encrypted at rest, as
    ``AuthAdapter(db, secret_key=...)`` does for its accounts.

    Built on a store whose OAuth accounts were linked under an older email
    rule, it reviews them once: ``email_review`` lists accounts whose email the
    old rule matched to their user's and the current rule does not (``None``
    when no review was due; see docs/auth.md).

    The methods are ``async`` as fastapi-users needs, and call hutch directly:
    a read is an in-memory lookup, a write blocks the event loop while the
    backend makes it durable.
    """

    def __init__(
        self,
        db: hutch.Database,
        *,
        password_helper: PasswordHelperProtocol | None = None,
        secret_key: SecretKeys | None = None,
    ) -> None:
        register(db)
        self.db = db
        self.users = db.repo(User, UserRepository)
        self.oauth_accounts = db.repo(OAuthAccount)
        self.deactivations = db.repo(Deactivation)
        self._password_helper = password_helper
        self._unusable_hash: str | None = None
        cipher = None if secret_key is None else TokenCipher(secret_key)
        self._tokens = SealedFields(
            cipher, OAuthAccount.__collection__, OAUTH_TOKENS, OAUTH_IDENTITY
        )
        self.email_review = review_once(
            db, LINKS_REVIEWED, OAuthAccount.__collection__, self.review_links
        )

    # -- reads -------------------------------------------------------------------------------

    async def get(self, id: str) -> FastAPIUser | None:
        """The user with this id, or ``None`` (also for text that could not be an id)."""
        if not is_row_id(id):
            return None
        with self.db.store.lock:
            record = self.users.get(id)
            return None if record is None else self._view(record)

    async def get_by_email(self, email: str) -> FastAPIUser | None:
        """The user with this mailbox under the email rule, or ``None`` (see docs/auth.md)."""
        with self.db.store.lock:
            record = self.users.find_by_email(email)
            return None if record is None else self._view(record)

    async def get_by_oauth_account(self, oauth: str, account_id: str) -> FastAPIUser | None:
        """The user linked to the account ``account_id`` at the provider ``oauth``."""
        with self.db.store.lock:
            account = self.oauth_accounts.find_one(account_id=account_id, oauth_name=oauth)
            record = None if account is None else self.users.get(account.user_id)
            return None if record is None else self._view(record)

    # -- writes ------------------------------------------------------------------------------

    async def create(self, create_dict: dict[str, Any]) -> FastAPIUser:
        """Create a user from fastapi-users' fields (and any platform ``User`` field)."""
        fields = dict(create_dict)
        is_active = _flag(fields, "is_active")
        with self.db.store.transaction():
            record = self.users.create(**_platform_fields(fields, current=None))
            if is_active is False:
                self.deactivations.create(user_id=record.id)
            return self._view(record)

    async def update(self, user: FastAPIUser, update_dict: dict[str, Any]) -> FastAPIUser:
        """Change a user; ``None`` for a fastapi-users field (a flag, the password) keeps it."""
        fields = dict(update_dict)
        if "password" in fields and fields["password"] is None:
            del fields["password"]  # fastapi-users passes an explicit null password through
        is_active = _flag(fields, "is_active")
        with self.db.store.transaction():
            current = self.users.get(user.id)
            if current is None:
                raise hutch.NotFound(f"no users row {user.id!r} to update")
            changes = _platform_fields(fields, current=current)
            record = self.users.update(user.id, **changes) if changes else current
            if is_active is not None:
                self._set_active(user.id, is_active=is_active)
            return self._view(record)

    async def delete(self, user: FastAPIUser) -> None:
        """Delete the user, and with them their OAuth accounts, access tokens and memberships.

        The platform's delete policies apply: a user who owns an organisation
        is not deleted (``hutch.IntegrityError``) until its ownership moves.
        """
        self.users.delete(user.id)

    async def add_oauth_account(
        self, user: FastAPIUser, create_dict: dict[str, Any]
    ) -> FastAPIUser:
        """Link an OAuth account to the user; one already linked (to anyone) is refused."""
        fields = {"id": new_id(), **create_dict, "user_id": user.id}  # the id is sealed in
        with self.db.store.transaction():
            record_if_first(self.db.store, LINKS_REVIEWED, OAuthAccount.__collection__)
            account = self.oauth_accounts.create(**{**fields, **self._tokens.sealed(fields)})
            self._check_account(account)
            return self._refreshed(user)

    async def update_oauth_account(
        self, user: FastAPIUser, oauth_account: OAP, update_dict: dict[str, Any]
    ) -> FastAPIUser:
        """Change one of the user's OAuth accounts (new provider tokens, say)."""
        account_id = oauth_account.id
        with self.db.store.transaction():
            current = self.oauth_accounts.get(account_id) if is_row_id(account_id) else None
            if current is None or current.user_id != user.id:
                raise hutch.NotFound(
                    f"user {user.id!r} has no oauth_accounts row {account_id!r} to update"
                )
            kept = [field for field in OAUTH_TOKENS if field not in update_dict]
            plain = self._tokens.opened(current, kept)  # a token being replaced need not open
            merged = {**attrs.asdict(plain, recurse=False), **update_dict}
            changes = {**update_dict, **self._tokens.sealed(merged)}  # bound to the new identity
            account = self.oauth_accounts.update(account_id, **changes)
            self._check_account(account)
            return self._refreshed(user)

    def encrypt_tokens(self) -> int:
        """Store every OAuth account's tokens under the current key; how many changed.

        Finishes a key rotation and encrypts tokens stored in plain text before
        a key was given. Without a ``secret_key``, ``hutch.ConfigError``.
        """
        return self._tokens.reseal(self.oauth_accounts)

    def review_links(self) -> EmailReview:
        """OAuth accounts whose email the old rule matched to their user's and this one does not.

        Such an account may have been linked to the wrong person by
        ``associate_by_email``: check each, and unlink it if so. Nothing is
        changed by the review.
        """
        return review_linked(self.db.store, OAuthAccount.__collection__, "user_id", "account_email")

    # -- internals ---------------------------------------------------------------------------

    def _view(self, record: User) -> FastAPIUser:
        """What fastapi-users sees of a platform user (call it holding the store lock)."""
        return FastAPIUser(
            id=record.id,
            email=record.email,
            hashed_password=record.password_hash or self._unusable(),
            is_active=self.deactivations.find_one(user_id=record.id) is None,
            is_superuser=record.role is UserRole.ADMIN,
            is_verified=record.email_verified is not None,
            oauth_accounts=[
                FastAPIOAuthAccount.of(a, self._tokens)
                for a in self.oauth_accounts.find(user_id=record.id, order_by="created_at")
            ],
            record=record,
        )

    def _refreshed(self, user: FastAPIUser) -> FastAPIUser:
        record = self.users.get(user.id)
        if record is None:
            raise hutch.NotFound(f"no users row {user.id!r}")
        return self._view(record)

    def _set_active(self, user_id: str, *, is_active: bool) -> None:
        deactivation = self.deactivations.find_one(user_id=user_id)
        if is_active and deactivation is not None:
            self.deactivations.delete(deactivation.id)
        elif not is_active and deactivation is None:
            self.deactivations.create(user_id=user_id)

    def _check_account(self, account: OAuthAccount) -> None:
        """Refuse a second link of one provider account (inside the write's transaction)."""
        same = self.oauth_accounts.find(
            account_id=account.account_id, oauth_name=account.oauth_name
        )
        others = [other for other in same if other.id != account.id]
        if others:
            raise hutch.IntegrityError(
                f"the {account.oauth_name} account {account.account_id!r} is already linked to "
                f"user {others[0].user_id!r} (oauth_accounts {others[0].id!r}); unlink it first"
            )

    def _unusable(self) -> str:
        """A password hash no password matches: the hash of a secret that is thrown away."""
        if self._unusable_hash is None:
            helper = self._password_helper or PasswordHelper()
            self._unusable_hash = helper.hash(secrets.token_urlsafe(32))
        return self._unusable_hash


def _platform_fields(fields: Mapping[str, Any], *, current: User | None) -> dict[str, Any]:
    """fastapi-users' fields as platform ``User`` fields; the others pass through unchanged.

    ``hashed_password`` is ``password_hash``; ``is_verified`` sets
    ``email_verified`` (now, unless it is set already) or clears it;
    ``is_superuser`` makes the role ``ADMIN`` or, from ``ADMIN``, ``CUSTOMER``.
    ``None`` for one of these means "leave it as it is".
    """
    fields = dict(fields)
    is_verified, is_superuser = _flag(fields, "is_verified"), _flag(fields, "is_superuser")
    out = {key: value for key, value in fields.items() if key not in _MAPPED}
    if fields.get("hashed_password") is not None:
        out["password_hash"] = fields["hashed_password"]
    if is_verified is not None:
        already = current.email_verified if current is not None else None
        out["email_verified"] = (already or datetime.now(UTC)) if is_verified else None
    if is_superuser is not None:
        role = out.get("role", current.role if current is not None else UserRole.CUSTOMER)
        if is_superuser:
            out["role"] = UserRole.ADMIN
        elif role in (UserRole.ADMIN, UserRole.ADMIN.value):
            out["role"] = UserRole.CUSTOMER
    return out


def _flag(fields: dict[str, Any], name: str) -> bool | None:
    """Take the flag ``name`` out of ``fields``: ``True``, ``False`` or ``None`` (leave it)."""
    value = fields.pop(name, None)
    if value is not None and not isinstance(value, bool):
        raise hutch.ValidationError(
            f"invalid FastAPIUser: {name}: expected true, false or None, not {value!r}",
            {name: "expected true, false or None"},
        )
    return value
