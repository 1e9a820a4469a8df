"""fastapi-users' ``AccessTokenDatabase`` over hutch, keeping only hashes of the tokens.

fastapi-users' ``DatabaseStrategy`` makes a random token at login, stores it,
looks it up on every request and deletes it at logout. Here the store keeps
an :class:`~hutch.contrib.fastapi_users.models.AccessToken` whose id is the
SHA-256 of the token: the token itself lives only in the client and in the
:class:`FastAPIAccessToken` handed back to fastapi-users, which carries it
because the caller gave it (``get_by_token``) or it was just made (``create``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from fastapi_users.authentication.strategy.db import AccessTokenDatabase

import hutch
from hutch.plugins.auth import hash_token

from .models import AccessToken, register


@attrs.define(kw_only=True)
class FastAPIAccessToken:
    """An access token as fastapi-users sees it (its ``AccessTokenProtocol``).

    ``record`` is what the store holds: the hash (its id), the user and when
    it was made. A snapshot: change a token through the access-token database.
    ``repr`` leaves the token out.
    """

    token: str = attrs.field(repr=False)
    user_id: str
    created_at: datetime
    record: AccessToken


class HutchAccessTokenDatabase(AccessTokenDatabase[FastAPIAccessToken]):
    """Access tokens for fastapi-users' ``DatabaseStrategy``, stored as SHA-256 hashes.

    The methods are ``async`` as fastapi-users needs, and call hutch directly:
    a lookup is an in-memory read, a write blocks the event loop while the
    backend makes it durable.
    """

    def __init__(self, db: hutch.Database) -> None:
        register(db)
        self.db = db
        self.tokens = db.repo(AccessToken)

    async def get_by_token(
        self, token: str, max_age: datetime | None = None
    ) -> FastAPIAccessToken | None:
        """The access token, or ``None`` if it is unknown or was made before ``max_age``."""
        oldest = None if max_age is None else _aware(max_age, "max_age")
        record = self.tokens.get(hash_token(token))
        if record is None or (oldest is not None and record.created_at < oldest):
            return None
        return _view(token, record)

    async def create(self, create_dict: dict[str, Any]) -> FastAPIAccessToken:
        """Store a new token (``token``, ``user_id`` and optionally ``created_at``) by its hash."""
        fields = _fields(create_dict)
        token = _token(fields.pop("token", None))
        token_id = hash_token(token)
        with self.db.store.transaction():
            if self.tokens.exists(token_id):
                raise hutch.IntegrityError("this access token is stored already; make a new one")
            record = self.tokens.create(id=token_id, **fields)
        return _view(token, record)

    async def update(
        self, access_token: FastAPIAccessToken, update_dict: dict[str, Any]
    ) -> FastAPIAccessToken:
        """Change a token's user or creation time; a new ``token`` moves it to the new hash."""
        fields = _fields(update_dict)
        token = _token(fields.pop("token", access_token.token))
        old_id, new_id = hash_token(access_token.token), hash_token(token)
        with self.db.store.transaction():
            current = self.tokens.get(old_id)
            if current is None:
                raise hutch.NotFound("no such access token to update (it was deleted or expired)")
            if new_id == old_id:
                record = self.tokens.update(old_id, **fields) if fields else current
            else:
                kept = {"user_id": current.user_id, "created_at": current.created_at}
                self.tokens.delete(old_id)
                record = self.tokens.create(id=new_id, **{**kept, **fields})
        return _view(token, record)

    async def delete(self, access_token: FastAPIAccessToken) -> None:
        """Forget the token (logging out); an unknown token is a no-op."""
        self.tokens.delete(hash_token(access_token.token))

    def delete_older_than(self, moment: datetime) -> int:
        """Delete every token made before ``moment`` (expired ones, say) and return how many."""
        moment = _aware(moment, "moment")
        with self.db.store.transaction():
            old = self.tokens.find(created_at__lt=moment)
            for record in old:
                self.tokens.delete(record.id)
        return len(old)


def _view(token: str, record: AccessToken) -> FastAPIAccessToken:
    return FastAPIAccessToken(
        token=token, user_id=record.user_id, created_at=record.created_at, record=record
    )


def _token(value: object) -> str:
    if not isinstance(value, str) or not value:
        given = "empty text" if value == "" else f"a value of type {type(value).__name__}"
        raise hutch.ValidationError(
            f"invalid access token: token: expected non-empty text, not {given}",
            {"token": "expected non-empty text"},
        )
    return value


def _fields(given: dict[str, Any]) -> dict[str, Any]:
    """The fields of a create or update, which never name the id: it is the token's hash."""
    if "id" in given:
        raise hutch.ValidationError(
            "invalid access token: id: an access token's id is the hash of its token; leave it out",
            {"id": "given, but made from the token"},
        )
    return dict(given)


def _aware(moment: object, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise hutch.ValidationError(
            f"{name} must be a timezone-aware datetime, not a {type(moment).__name__} value",
            {name: "expected a datetime"},
        )
    if moment.tzinfo is None:
        raise hutch.ValidationError(
            f"{name} must be timezone-aware; use datetime.now(UTC)", {name: "naive datetime"}
        )
    return moment
