"""Secrets stay secret: no repr, error or log line shows one; OAuth tokens are encrypted at rest.

A secret is a bearer token (session, verification, access), an OAuth token or
a password hash. Every model and view that carries one is found by its field
names, so a new one that forgets ``repr=False`` fails here; each error path
that handles one is driven with a recognisable secret that must not come out.
Then the encryption of OAuth tokens with ``secret_key``: at rest, on reopening,
with rotated keys, and against ciphertexts moved, altered or left without a key.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from fastapi_users import BaseUserManager

import hutch
import hutch.backends.file
import hutch.backends.memory
import hutch.backends.sqlite
import hutch.plugins.auth
import hutch.plugins.platform
from hutch.contrib.fastapi_users import (
    MODELS as FASTAPI_MODELS,
)
from hutch.contrib.fastapi_users import (
    AccessToken,
    FastAPIAccessToken,
    FastAPIOAuthAccount,
    FastAPIUser,
    HutchAccessTokenDatabase,
    HutchIDMixin,
    HutchUserDatabase,
    OAuthAccount,
)
from hutch.plugins.auth import MODELS as AUTH_MODELS
from hutch.plugins.auth import Account, AuthAdapter, Session, VerificationToken, hash_token
from hutch.plugins.auth.encryption import PREFIX
from hutch.plugins.platform import MODELS as PLATFORM_MODELS
from hutch.plugins.platform import User

SECRET = "s3cr3t-d0-not-l3ak-4a9f"  # what must never come out
OTHER = "0th3r-s3cr3t-n0t-3ith3r-77c1"
KEY = "a" * 32 + "-first key, long enough"
NEW_KEY = "b" * 32 + "-second key, long enough"
PLUGINS: list[object] = [hutch.backends.memory, hutch.backends.file, "platform", "auth"]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)

#: Field names that hold a secret (``token_type`` says what kind a token is, and is not one).
SECRET_NAME = re.compile(r"(^|_)(token|password|secret)(_|$)|password_hash")
NOT_SECRET = {"token_type"}


def leaks(text: str) -> bool:
    return SECRET in text or OTHER in text or hash_token(SECRET) in text


# -- repr -----------------------------------------------------------------------------------------

#: One instance of each class that carries a secret, every secret field holding SECRET.
CARRIERS: dict[type, Callable[[], object]] = {
    User: lambda: User(email="a@x.io", password_hash=SECRET),
    Account: lambda: Account(
        user_id="u",
        type="oauth",
        provider="github",
        provider_account_id="1",
        access_token=SECRET,
        refresh_token=SECRET,
        id_token=SECRET,
    ),
    Session: lambda: Session(session_token=SECRET, user_id="u", expires=WHEN),
    VerificationToken: lambda: VerificationToken(identifier="a@x.io", token=SECRET, expires=WHEN),
    OAuthAccount: lambda: oauth_account(),
    FastAPIOAuthAccount: lambda: FastAPIOAuthAccount.of(oauth_account()),
    FastAPIAccessToken: lambda: FastAPIAccessToken(
        token=SECRET, user_id="u", created_at=WHEN, record=AccessToken(id="h", user_id="u")
    ),
    FastAPIUser: lambda: FastAPIUser(
        id="u",
        email="a@x.io",
        hashed_password=SECRET,
        is_active=True,
        is_superuser=False,
        is_verified=False,
        oauth_accounts=[FastAPIOAuthAccount.of(oauth_account())],
        record=User(email="a@x.io", password_hash=SECRET),
    ),
}


def oauth_account() -> OAuthAccount:
    return OAuthAccount(
        user_id="u",
        oauth_name="github",
        access_token=SECRET,
        account_id="1",
        account_email="a@x.io",
        refresh_token=SECRET,
    )


def test_every_class_that_carries_a_secret_is_checked() -> None:
    classes: set[type] = {*PLATFORM_MODELS, *AUTH_MODELS, *FASTAPI_MODELS}
    classes |= {FastAPIOAuthAccount, FastAPIAccessToken, FastAPIUser}

    def names(kind: type) -> list[str]:  # fields, and properties standing for fields
        found = [f.name for f in attrs.fields(kind)]
        return found + [name for name, v in vars(kind).items() if isinstance(v, property)]

    carrying = {
        kind
        for kind in classes
        if any(SECRET_NAME.search(name) and name not in NOT_SECRET for name in names(kind))
    }
    assert carrying == set(CARRIERS)


@pytest.mark.parametrize("kind", list(CARRIERS), ids=lambda kind: kind.__name__)
def test_no_repr_or_str_shows_a_secret(kind: type) -> None:
    instance = CARRIERS[kind]()
    assert not leaks(repr(instance))
    assert not leaks(str(instance))
    assert not leaks(f"{instance!s} {[instance]} { ({'x': instance}) }")


# -- errors ---------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[hutch.Database]:
    with hutch.open(tmp_path / "data", plugins=PLUGINS) as opened:
        yield opened


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def adapter_user(auth: AuthAdapter) -> str:
    return auth.create_user(email="ada@example.org").id


#: Each case makes the call that must fail, given a database: a secret of the wrong type, a
#: duplicate, a bad filter, a stored row that does not fit.
ERROR_CASES: dict[str, Callable[[hutch.Database], object]] = {
    "a password hash that is not text": lambda db: db.repo(User).create(
        email="a@x.io", password_hash=SECRET.encode()
    ),
    "a password hash of a user with a bad email": lambda db: db.repo(User).create(
        email="not an address", password_hash=SECRET
    ),
    "an OAuth token that is not text": lambda db: AuthAdapter(db).link_account(
        user_id=adapter_user(AuthAdapter(db)),
        type="oauth",
        provider="github",
        provider_account_id="1",
        access_token=SECRET.encode(),  # type: ignore[arg-type]
    ),
    "a session token used twice": lambda db: [
        AuthAdapter(db).create_session(session_token=SECRET, user_id=user, expires=later())
        for user in [adapter_user(AuthAdapter(db))] * 2
    ],
    "a session token that is not text": lambda db: AuthAdapter(db).create_session(
        session_token=SECRET.encode(),  # type: ignore[arg-type]
        user_id="u",
        expires=later(),
    ),
    "a filter on a token with a value that does not fit": lambda db: db.repo(Account).find(
        access_token=SECRET.encode()
    ),
    "a startswith filter on a token that is not text": lambda db: db.repo(Account).find(
        refresh_token__startswith=SECRET.encode()
    ),
    "an access token that is not text": lambda db: asyncio.run(
        HutchAccessTokenDatabase(db).create({"token": SECRET.encode(), "user_id": "u"})
    ),
    "an OAuth account token that is not text": lambda db: asyncio.run(
        HutchUserDatabase(db).add_oauth_account(
            asyncio.run(HutchUserDatabase(db).create({"email": "a@x.io", "hashed_password": "h"})),
            {"oauth_name": "x", "access_token": SECRET.encode(), "account_id": "1"},
        )
    ),
    "a stored account that does not fit": lambda db: stored_misfit(db),
    "a session token that is not UTF-8": lambda db: AuthAdapter(db).get_session_and_user(
        SECRET + "\ud800"
    ),
    "a new session token that is not UTF-8": lambda db: AuthAdapter(db).create_session(
        session_token=SECRET + "\ud800", user_id=adapter_user(AuthAdapter(db)), expires=later()
    ),
    "an OAuth token that is not UTF-8, sealed": lambda db: AuthAdapter(
        db, secret_key=KEY
    ).link_account(
        user_id=adapter_user(AuthAdapter(db)),
        type="oauth",
        provider="github",
        provider_account_id="1",
        access_token=SECRET + "\ud800",
    ),
    "an access token that is not UTF-8": lambda db: asyncio.run(
        HutchAccessTokenDatabase(db).get_by_token(SECRET + "\ud800")
    ),
    "a unique secret its key refuses": lambda db: db.repo(Badge).create(code=SECRET),
}


def refuse_with_the_value(code: str) -> str:
    raise hutch.ValidationError(f"{code!r} is not a badge code", {"code": f"{code!r} is wrong"})


@attrs.frozen(kw_only=True)
class Badge(hutch.Model):
    """A model whose unique secret is compared through a key that quotes what it refuses."""

    __collection__ = "badges"
    __unique__ = (hutch.Unique("code", key=refuse_with_the_value),)

    code: str = attrs.field(repr=False)


def stored_misfit(db: hutch.Database) -> object:
    row = {"user_id": "u", "type": "oauth", "provider": "p", "provider_account_id": "1"}
    db.store.set_row("accounts", "a1", {**row, "access_token": SECRET, "expires_at": "soon"})
    return db.repo(Account).get("a1")


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_no_error_shows_a_secret(db: hutch.Database, case: str) -> None:
    with pytest.raises(hutch.HutchError) as raised:
        ERROR_CASES[case](db)
    chain: list[BaseException] = []
    error: BaseException | None = raised.value
    while error is not None:  # what a tool that ignores __suppress_context__ would show too
        chain.append(error)
        error = error.__cause__ or error.__context__
    for each in chain:
        assert isinstance(each, hutch.HutchError), repr(each)
        assert not leaks(str(each))
        assert not leaks(repr(each))
        assert not leaks(repr(each.args))
        assert not leaks(repr(getattr(each, "errors", None)))


def test_a_secret_field_error_still_says_which_field_and_what_it_was_given(
    db: hutch.Database,
) -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        db.repo(User).create(email="a@x.io", password_hash=SECRET.encode())
    assert raised.value.errors["password_hash"].startswith("not valid (given a value of type bytes")


class UserManager(HutchIDMixin, BaseUserManager[FastAPIUser, str]):
    reset_password_token_secret = "not used by these tests, but fastapi-users wants one"
    verification_token_secret = "not used by these tests, but fastapi-users wants one"


def test_no_log_line_shows_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mirror = tmp_path / "mirror.db"
    plugins = [*PLUGINS, hutch.backends.sqlite]
    with hutch.open(tmp_path / "data", plugins=plugins, mirrors=[f"sqlite:///{mirror}"]) as db:
        auth = AuthAdapter(db, secret_key=KEY)
        user = adapter_user(auth)
        auth.link_account(
            user_id=user, type="oauth", provider="p", provider_account_id="1", access_token=SECRET
        )
        auth.create_session(session_token=OTHER, user_id=user, expires=later())
        user_db = HutchUserDatabase(db)
        asyncio.run(
            UserManager(user_db).oauth_callback(
                "github", SECRET, "9", "ada@example.org", associate_by_email=True
            )
        )
        with sqlite3.connect(mirror) as connection:  # the mirror fails, and says so in the log
            connection.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON oauth_accounts "
                "BEGIN SELECT RAISE(ABORT, 'refused by hand'); END"
            )
        asyncio.run(
            UserManager(user_db).oauth_callback(
                "gitlab", OTHER, "10", "ada@example.org", associate_by_email=True
            )
        )
        assert db.mirrors[0].error is not None
    assert any("fell behind" in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        assert not leaks(record.getMessage())


# -- OAuth tokens encrypted at rest ---------------------------------------------------------------


def everything_on_disk(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def link(auth: AuthAdapter, user: str, account: str = "1", **tokens: Any) -> Account:
    return auth.link_account(
        user_id=user, type="oauth", provider="github", provider_account_id=account, **tokens
    )


@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_oauth_tokens_are_encrypted_at_rest(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "data"
    url = str(root) if backend == "file" else f"sqlite:///{root}/auth.db"
    root.mkdir()
    plugins = [*PLUGINS, hutch.backends.sqlite]
    with hutch.open(url, plugins=plugins) as db:
        auth = AuthAdapter(db, secret_key=KEY)
        user = adapter_user(auth)
        linked = link(auth, user, access_token=SECRET, refresh_token=OTHER, id_token=SECRET)
        assert (linked.access_token, linked.refresh_token) == (SECRET, OTHER)
        row = db.store.get_row("accounts", linked.id)
        assert row is not None
        assert all(row[f].startswith(PREFIX) for f in ("access_token", "refresh_token", "id_token"))
        assert row["access_token"] != row["id_token"]  # a fresh nonce for each value
        assert auth.get_user_by_account(provider="github", provider_account_id="1") is not None
    assert SECRET.encode() not in everything_on_disk(root)
    assert OTHER.encode() not in everything_on_disk(root)
    with hutch.open(url, plugins=plugins) as db:
        found = AuthAdapter(db, secret_key=KEY).get_account("1", "github")
        assert found is not None
        assert (found.access_token, found.refresh_token, found.id_token) == (SECRET, OTHER, SECRET)
        # Lookups never need the key; reading the tokens without it is a clear error.
        keyless = AuthAdapter(db)
        assert keyless.get_user_by_account(provider="github", provider_account_id="1") is not None
        with pytest.raises(hutch.ConfigError, match="give the secret_key"):
            keyless.get_account("1", "github")


def test_without_a_key_tokens_are_stored_as_given(db: hutch.Database) -> None:
    auth = AuthAdapter(db)
    linked = link(auth, adapter_user(auth), access_token=SECRET)
    assert db.store.get_cell("accounts", linked.id, "access_token") == SECRET
    assert auth.get_account("1", "github") == linked


def test_keys_rotate(db: hutch.Database) -> None:
    old = AuthAdapter(db, secret_key=KEY)
    user = adapter_user(old)
    before = link(old, user, "1", access_token=SECRET)
    link(old, user, "plain-before-any-key")  # no tokens at all
    AuthAdapter(db).link_account(
        user_id=user, type="oauth", provider="github", provider_account_id="2", access_token=OTHER
    )
    rotated = AuthAdapter(db, secret_key=[NEW_KEY, KEY])
    assert rotated.get_account("1", "github") == before  # old key still opens
    assert rotated.get_account("2", "github").access_token == OTHER  # type: ignore[union-attr]
    link(rotated, user, "3", access_token=SECRET)
    key_ids = {
        row["provider_account_id"]: str(row.get("access_token")).removeprefix(PREFIX)[:8]
        for row in db.store.get_table("accounts").values()
    }
    assert key_ids["3"] != key_ids["1"]  # sealed under the new key
    updated_at = db.repo(Account).get(before.id).updated_at  # type: ignore[union-attr]

    assert rotated.encrypt_tokens() == 2  # "1" under the old key, "2" in plain text
    assert rotated.encrypt_tokens() == 0
    only_new = AuthAdapter(db, secret_key=NEW_KEY)
    assert only_new.get_account("1", "github") == before
    assert only_new.get_account("2", "github").access_token == OTHER  # type: ignore[union-attr]
    assert db.repo(Account).get(before.id).updated_at == updated_at  # type: ignore[union-attr]
    with pytest.raises(hutch.ConfigError, match="not among the keys"):
        AuthAdapter(db, secret_key=KEY).get_account("1", "github")


def test_a_ciphertext_opens_only_where_it_was_sealed(db: hutch.Database) -> None:
    auth = AuthAdapter(db, secret_key=KEY)
    ada = adapter_user(auth)
    bob = auth.create_user(email="bob@example.org").id
    mine = link(auth, ada, "1", access_token=SECRET, refresh_token=OTHER)
    theirs = link(auth, bob, "2", access_token="bob's token")
    store = db.store
    sealed = store.get_row("accounts", mine.id)
    assert sealed is not None

    def refused(change: Callable[[], None], provider_account_id: str) -> None:
        change()
        with pytest.raises(hutch.CorruptData, match="does not open"):
            auth.get_account(provider_account_id, "github")

    # Moved into another user's account, into another field, altered, re-owned:
    refused(
        lambda: store.set_cell("accounts", theirs.id, "access_token", sealed["access_token"]), "2"
    )
    refused(
        lambda: store.set_cell("accounts", mine.id, "access_token", sealed["refresh_token"]), "1"
    )
    store.set_row("accounts", mine.id, sealed)
    flipped = (
        sealed["access_token"][:-2]
        + ("A" if sealed["access_token"][-2] != "A" else "B")
        + sealed["access_token"][-1]
    )
    refused(lambda: store.set_cell("accounts", mine.id, "access_token", flipped), "1")
    store.set_row("accounts", mine.id, sealed)
    refused(lambda: store.set_cell("accounts", mine.id, "user_id", bob), "1")


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        ("short", "at least 32 bytes"),
        (b"\x00" * 31, "at least 32 bytes"),
        ([], "empty list"),
        ([KEY, KEY], "key id"),
        ([KEY, 42], "at least 32 bytes"),
    ],
)
def test_a_bad_key_is_refused_clearly(db: hutch.Database, secret_key: Any, message: str) -> None:
    with pytest.raises(hutch.ConfigError, match=message) as raised:
        AuthAdapter(db, secret_key=secret_key)
    assert KEY not in str(raised.value)


def test_encrypt_tokens_needs_a_key(db: hutch.Database) -> None:
    with pytest.raises(hutch.ConfigError, match="secret_key"):
        AuthAdapter(db).encrypt_tokens()


def test_fastapi_users_oauth_tokens_are_encrypted_at_rest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with hutch.open(root, plugins=PLUGINS) as db:
        user_db = HutchUserDatabase(db, secret_key=KEY)
        manager = UserManager(user_db)

        async def sign_in_twice() -> FastAPIUser:
            await manager.oauth_callback("github", SECRET, "9", "ada@example.org")
            return await manager.oauth_callback(  # a new token for the same account
                "github", OTHER, "9", "ada@example.org", refresh_token=SECRET
            )

        user = asyncio.run(sign_in_twice())
        (account,) = user.oauth_accounts
        assert (account.access_token, account.refresh_token) == (OTHER, SECRET)
        (row,) = db.store.get_table("oauth_accounts").values()
        assert row["access_token"].startswith(PREFIX)
        assert row["refresh_token"].startswith(PREFIX)
        # Finding the user never needs the key; reading a token does.
        keyless = asyncio.run(HutchUserDatabase(db).get(user.id))
        assert keyless is not None
        with pytest.raises(hutch.ConfigError, match="give the secret_key"):
            _ = keyless.oauth_accounts[0].access_token

        # A damaged ciphertext spoils that token, not the user, and signing in again mends it.
        store = db.store
        store.set_cell("oauth_accounts", account.id, "access_token", row["refresh_token"])
        damaged = asyncio.run(user_db.get(user.id))
        assert damaged is not None
        with pytest.raises(hutch.CorruptData, match="does not open"):
            _ = damaged.oauth_accounts[0].access_token
        assert damaged.oauth_accounts[0].refresh_token == SECRET
        mended = asyncio.run(manager.oauth_callback("github", OTHER, "9", "ada@example.org"))
        assert mended.oauth_accounts[0].access_token == OTHER
        assert HutchUserDatabase(db, secret_key=[NEW_KEY, KEY]).encrypt_tokens() == 1
        again = asyncio.run(HutchUserDatabase(db, secret_key=NEW_KEY).get(user.id))
        assert again is not None
        assert again.oauth_accounts[0].access_token == OTHER
    assert SECRET.encode() not in everything_on_disk(root)
    assert OTHER.encode() not in everything_on_disk(root)


def test_a_plain_token_that_looks_sealed_is_read_as_plain(db: hutch.Database) -> None:
    plain = AuthAdapter(db)
    looks_sealed = f"{PREFIX}ya29.{SECRET}:x"
    link(plain, adapter_user(plain), access_token=looks_sealed)
    assert AuthAdapter(db, secret_key=KEY).get_account("1", "github").access_token == looks_sealed  # type: ignore[union-attr]


def test_unlinking_never_needs_the_key(db: hutch.Database) -> None:
    auth = AuthAdapter(db, secret_key=KEY)
    user = adapter_user(auth)
    link(auth, user, "1", access_token=SECRET, refresh_token=OTHER)
    link(auth, user, "2", access_token=SECRET)
    gone = AuthAdapter(db).unlink_account("github", "1")
    assert gone is not None
    assert (gone.access_token, gone.refresh_token) == (None, None)
    other_key = AuthAdapter(db, secret_key=NEW_KEY).unlink_account("github", "2")
    assert other_key is not None
    assert other_key.access_token is None
    assert db.store.get_row_count("accounts") == 0


def test_a_row_that_does_not_open_is_left_out_of_encrypt_tokens(
    db: hutch.Database, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AuthAdapter(db, secret_key=KEY)
    user = adapter_user(auth)
    lost = link(auth, user, "1", access_token=SECRET)
    AuthAdapter(db).link_account(
        user_id=user, type="oauth", provider="github", provider_account_id="2", access_token=OTHER
    )
    before = db.store.get_row("accounts", lost.id)
    new = AuthAdapter(db, secret_key=NEW_KEY)  # the old key is lost
    assert new.encrypt_tokens() == 1
    assert new.get_account("2", "github").access_token == OTHER  # type: ignore[union-attr]
    assert db.store.get_row("accounts", lost.id) == before
    assert any(lost.id in r.getMessage() and "left" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert not leaks(record.getMessage())


def test_a_ciphertext_does_not_open_in_a_new_row_of_the_same_account(db: hutch.Database) -> None:
    auth = AuthAdapter(db, secret_key=KEY)
    user = adapter_user(auth)
    old = link(auth, user, access_token=SECRET)
    sealed = db.store.get_cell("accounts", old.id, "access_token")
    auth.unlink_account("github", "1")
    new = link(auth, user, access_token=OTHER)  # the same provider account, linked again
    db.store.set_cell("accounts", new.id, "access_token", sealed)
    with pytest.raises(hutch.CorruptData, match="does not open"):
        auth.get_account("1", "github")


@pytest.mark.parametrize("secret_key", [12345, None.__class__, {"k": KEY}])
def test_a_key_of_the_wrong_type_is_a_config_error(db: hutch.Database, secret_key: Any) -> None:
    with pytest.raises(hutch.ConfigError, match="must be text, bytes, or a list"):
        AuthAdapter(db, secret_key=secret_key)


def test_an_access_token_s_id_is_never_given(db: hutch.Database) -> None:
    tokens = HutchAccessTokenDatabase(db)
    with pytest.raises(hutch.ValidationError, match="id is the hash of its token"):
        asyncio.run(tokens.create({"token": SECRET, "user_id": "u", "id": "mine"}))


def test_a_secret_key_that_is_not_utf8_is_refused_without_showing_it(db: hutch.Database) -> None:
    bad = KEY + "\ud800"
    for secret_key in (bad, [KEY + "-another one", bad]):
        with pytest.raises(hutch.ConfigError, match="valid UTF-8") as raised:
            AuthAdapter(db, secret_key=secret_key)
        error: BaseException | None = raised.value
        while error is not None:
            assert KEY not in repr(error)
            assert KEY not in repr(error.args)
            error = error.__context__


@pytest.mark.parametrize(
    "call",
    [
        lambda tokens: tokens.get_by_token(SECRET, max_age="2024-01-01"),
        lambda tokens: tokens.update(
            FastAPIAccessToken(
                token=SECRET, user_id="u", created_at=WHEN, record=AccessToken(id="h", user_id="u")
            ),
            {"token": OTHER, "id": "mine"},
        ),
    ],
)
def test_access_token_calls_refuse_bad_input_as_hutch_errors(
    db: hutch.Database, call: Callable[[HutchAccessTokenDatabase], Any]
) -> None:
    with pytest.raises(hutch.ValidationError):
        asyncio.run(call(HutchAccessTokenDatabase(db)))
    with pytest.raises(hutch.ValidationError, match="moment"):
        HutchAccessTokenDatabase(db).delete_older_than("yesterday")  # type: ignore[arg-type]


def test_an_access_token_is_stored_once(db: hutch.Database) -> None:
    tokens = HutchAccessTokenDatabase(db)
    asyncio.run(tokens.create({"token": SECRET, "user_id": adapter_user(AuthAdapter(db))}))
    with pytest.raises(hutch.IntegrityError, match="stored already") as raised:
        asyncio.run(tokens.create({"token": SECRET, "user_id": "u"}))
    assert not leaks(str(raised.value))
