"""Writes tests/data/email_rule_1: a folder written by hutch under email rule 1 (NFKC + casefold).

Run with the hutch of commit 856b602 first on the path (its last commit under rule 1):
    PYTHONPATH=<tree of that commit laid out as `hutch`> python make.py <folder>
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from fastapi_users import BaseUserManager

import hutch
from hutch.contrib.fastapi_users import FastAPIUser, HutchIDMixin, HutchUserDatabase
from hutch.plugins.auth import AuthAdapter

SECRET = "a secret for the fixture's user manager, not used"
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class UserManager(HutchIDMixin, BaseUserManager[FastAPIUser, str]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def main(folder: str) -> None:
    with hutch.open(folder) as db:
        auth = AuthAdapter(db)
        user_db = HutchUserDatabase(db)
        manager = UserManager(user_db)
        stamp = {"created_at": WHEN, "updated_at": WHEN}
        ceo = await user_db.create({"email": "ceo@straße.de", "hashed_password": "x", **stamp})
        # Someone else's GitHub account, whose verified email is at another domain, signs in:
        # under rule 1 its address matched the user above, so it was linked to that user.
        await manager.oauth_callback(
            "github", "gho_not_a_real_token", "9001", "ceo@strasse.de", associate_by_email=True
        )
        ada = auth.create_user(email="Ada@Example.org", name="Ada", id="ada")
        await manager.oauth_callback(
            "github", "gho_ada_token", "1815", "ada@example.org", associate_by_email=True
        )
        auth.link_account(user_id=ada.id, type="oauth", provider="google", provider_account_id="7")
        auth.create_session(session_token="s" * 43, user_id=ada.id, expires=WHEN + timedelta(1))
        # Two users rule 1 kept apart and rule 2 takes for one mailbox each:
        auth.create_user(email="bob@example.org", id="bob")
        auth.create_user(email="bob@example.org.", id="bob-dot")
        auth.create_user(email="eve@bücher.example", id="eve")
        auth.create_user(email="eve@xn--bcher-kva.example", id="eve-a-label")
        # Addresses rule 1 took and rule 2 refuses:
        auth.create_user(email="zoe\u200b@example.org", id="zoe")
        auth.create_user(email='"quoted"@example.org', id="quoted")
        # Two users rule 1 took for one mailbox, written straight to the store:
        for row_id, email in (("raw-1", "straße@raw.example"), ("raw-2", "STRASSE@raw.example")):
            db.store.set_row("users", row_id, {"email": email, "created_at": WHEN.isoformat()})
        assert ceo.id


asyncio.run(main(sys.argv[1]))
