"""The hutch models the fastapi-users integration adds beside the platform ``User``.

The platform ``User`` (collection ``users``) already holds a user's email,
password hash, verification time and role; these three models hold what
fastapi-users needs and ``User`` lacks. Each points at its user with
``on_delete="cascade"``, so deleting a user (through fastapi-users or any
repository) takes their OAuth accounts, access tokens and deactivation with
it, in the same transaction.

===================  ===================  ==================================================
model                collection           holds
===================  ===================  ==================================================
``OAuthAccount``     ``oauth_accounts``   an account at an OAuth provider linked to a user
``AccessToken``      ``access_tokens``    an access token, by the SHA-256 of the token (its id)
``Deactivation``     ``deactivated_users`` that a user is not active (``is_active = False``)
===================  ===================  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

import hutch
from hutch.plugins.auth.encryption import SealedFields
from hutch.plugins.platform import User


def _family() -> tuple[type[hutch.Model], ...]:
    """The family each of these models registers with it: the platform ``User`` (which brings
    the platform's other models) and the integration's models."""
    return _WITH_USER


@attrs.frozen(kw_only=True)
class OAuthAccount(hutch.Model):
    """An account at an OAuth provider (``oauth_name``) linked to a user.

    ``(oauth_name, account_id)`` names one account: the user database refuses
    to link it twice. The provider's tokens stay usable, because the
    application needs them to call the provider: encrypted when the user
    database has a secret key, as given otherwise; ``repr`` leaves them out.
    """

    __collection__ = "oauth_accounts"
    __family__ = _family
    __indexed__ = ("account_id",)
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    user_id: str
    oauth_name: str
    access_token: str = attrs.field(repr=False)
    account_id: str
    account_email: str
    expires_at: int | None = None
    refresh_token: str | None = attrs.field(default=None, repr=False)


#: The fields of an OAuth account holding the provider's tokens, and those naming the account.
OAUTH_TOKENS = ("access_token", "refresh_token")
OAUTH_IDENTITY = ("id", "user_id", "oauth_name", "account_id")
#: How the tokens are stored without a key: as given (a user database with a key has its own).
PLAIN_TOKENS = SealedFields(None, "oauth_accounts", OAUTH_TOKENS, OAUTH_IDENTITY)


@attrs.frozen(kw_only=True)
class AccessToken(hutch.Model):
    """An access token of fastapi-users' database strategy, stored only as a hash.

    The id is :func:`hutch.plugins.auth.hash_token` of the token, so finding a token is one
    lookup by id, and the store (a data folder, a backup) never holds a token
    that could be presented.
    """

    __collection__ = "access_tokens"
    __family__ = _family
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    user_id: str


@attrs.frozen(kw_only=True)
class Deactivation(hutch.Model):
    """That a user is deactivated (fastapi-users' ``is_active = False``).

    Users are active unless a row here says otherwise, so users created
    elsewhere (the platform, an auth adapter) are active without one.
    """

    __collection__ = "deactivated_users"
    __family__ = _family
    __unique__ = ("user_id",)
    __relations__ = (hutch.Relation("user_id", User, on_delete="cascade"),)

    user_id: str


#: The models the integration adds (the platform ``User`` is the platform plugin's).
MODELS: tuple[type[hutch.Model], ...] = (OAuthAccount, AccessToken, Deactivation)
_WITH_USER: tuple[type[hutch.Model], ...] = (User, *MODELS)


def register(db: hutch.Database) -> None:
    """Make ``db`` know the platform ``User`` and the integration's models (idempotent).

    Their delete policies then apply to every delete on ``db``, so call this
    (or build a user or access-token database, which calls it) before deleting
    users some other way.
    """
    for model in _WITH_USER:
        db.repo(model)


@hutch.hookimpl
def hutch_register_models(register: Callable[[type[hutch.Model]], None]) -> None:
    """Register ``User`` and the integration's models, for ``plugins=["fastapi_users"]``."""
    for model in _WITH_USER:
        register(model)
