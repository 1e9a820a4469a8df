"""fastapi-users over hutch: its user database and access-token database, on every backend.

Install with ``pip install 'hutch[fastapi]'``. See docs/fastapi-users.md.

Design: fastapi-users' users *are* the platform's users. :class:`HutchUserDatabase`
reads and writes the platform ``User`` (collection ``users``), so someone who
registers through FastAPI is the same user the platform's organisations,
memberships and any auth adapter see. fastapi-users' user fields map onto it:

==================  ============================================================
fastapi-users       hutch
==================  ============================================================
``id`` (``str``)    ``User.id`` (a hutch id; use :class:`HutchIDMixin` in the manager)
``email``           ``User.email``: one user per mailbox, by the email rule
                    (:mod:`hutch.plugins.platform.emails`)
``hashed_password`` ``User.password_hash`` (a user without one gets an unusable hash)
``is_verified``     ``User.email_verified is not None``; setting it to ``True``
                    records the time, ``False`` clears it
``is_superuser``    ``User.role is UserRole.ADMIN``; ``True`` makes the role
                    ``ADMIN``, ``False`` turns ``ADMIN`` into ``CUSTOMER``
``is_active``       no :class:`Deactivation` row for the user (collection
                    ``deactivated_users``); users are active by default
``oauth_accounts``  :class:`OAuthAccount` rows (collection ``oauth_accounts``)
==================  ============================================================

:class:`HutchAccessTokenDatabase` serves fastapi-users' ``DatabaseStrategy``:
each :class:`AccessToken` (collection ``access_tokens``) is stored under the
SHA-256 of the token as its id, so the store never holds a usable token.

The three models point at ``users`` with ``on_delete="cascade"``: deleting a
user deletes their OAuth accounts, tokens and deactivation in the same
transaction. Building either database registers them (:func:`register`); to
have the database know them from its open, before any user is deleted some
other way, name this domain plugin: ``hutch.open(url, plugins=["fastapi_users"])``.
The platform ``User`` brings the platform's other models with it (its
``__family__``), so their delete policies hold too.

The methods are ``async`` because fastapi-users awaits them; they call hutch
directly, which is right for reads (in-memory lookups) and for the memory
backend; with a durable backend each write blocks the event loop for as long
as the backend takes to make it durable.
"""

from __future__ import annotations

from hutch.plugins.auth import hash_token

from .models import (
    MODELS,
    AccessToken,
    Deactivation,
    OAuthAccount,
    hutch_register_models,
    register,
)
from .tokens import FastAPIAccessToken, HutchAccessTokenDatabase
from .users import FastAPIOAuthAccount, FastAPIUser, HutchIDMixin, HutchUserDatabase

__all__ = [
    "MODELS",
    "AccessToken",
    "Deactivation",
    "FastAPIAccessToken",
    "FastAPIOAuthAccount",
    "FastAPIUser",
    "HutchAccessTokenDatabase",
    "HutchIDMixin",
    "HutchUserDatabase",
    "OAuthAccount",
    "hash_token",
    "hutch_register_models",
    "register",
]
