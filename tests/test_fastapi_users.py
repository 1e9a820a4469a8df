"""fastapi-users over hutch: the user and access-token databases, and an app through httpx."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users.exceptions import InvalidID
from fastapi_users.password import PasswordHelper

import hutch
import hutch.backends.file
import hutch.backends.memory
import hutch.contrib.fastapi_users
import hutch.plugins.platform
from hutch.contrib.fastapi_users import (
    AccessToken,
    Deactivation,
    FastAPIAccessToken,
    FastAPIUser,
    HutchAccessTokenDatabase,
    HutchIDMixin,
    HutchUserDatabase,
    OAuthAccount,
    hash_token,
)
from hutch.plugins.platform import MODELS as PLATFORM_MODELS
from hutch.plugins.platform import Organisation, PlatformRepositories, User, UserRole

pytestmark = pytest.mark.anyio

BACKENDS = ["memory", "file"]
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"  # the database does not check


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Env:
    """A database on one backend, with only the backends and the platform plugin loaded.

    The integration's models are left out, so the databases under test must
    register them themselves.
    """

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.db = self.open()

    def open(self, *plugins: object) -> hutch.Database:
        url = "memory://" if self.backend == "memory" else self.root
        return hutch.open(
            url,
            plugins=[hutch.backends.memory, hutch.backends.file, "platform", *plugins],
        )

    def reopen(self) -> None:
        """Close and open again (files only), so what follows reads what the backend kept."""
        if self.backend == "file":
            self.db.close()
            self.db = self.open()

    def files(self) -> dict[Path, bytes]:
        """Every file under the data folder (nothing for memory)."""
        if self.backend == "memory":
            return {}
        return {path: path.read_bytes() for path in self.root.rglob("*") if path.is_file()}


@pytest.fixture(params=BACKENDS)
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    environment = Env(request.param, tmp_path / "data")
    yield environment
    environment.db.close()


def store_text(db: hutch.Database) -> str:
    """Everything the store holds, as text."""
    store = db.store
    return repr({table: store.get_table(table) for table in store.get_table_ids()})


# -- the user database --------------------------------------------------------------------------


async def test_create_maps_fastapi_users_fields_onto_the_platform_user(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    ada = await users.create(
        {"email": " Ada@Example.org", "hashed_password": PASSWORD_HASH, "name": "Ada"}
    )
    assert isinstance(ada, FastAPIUser)
    assert (ada.email, ada.hashed_password, ada.name) == ("Ada@Example.org", PASSWORD_HASH, "Ada")
    assert (ada.is_active, ada.is_superuser, ada.is_verified) == (True, False, False)
    assert ada.oauth_accounts == []
    record = env.db.repo(User).get(ada.id)
    assert record == ada.record
    assert record is not None
    assert (record.password_hash, record.email_verified, record.role) == (
        PASSWORD_HASH,
        None,
        UserRole.CUSTOMER,
    )
    assert env.db.store.get_row_count("deactivated_users") == 0

    env.reopen()
    users = HutchUserDatabase(env.db)
    assert await users.get(ada.id) == ada
    assert await users.get_by_email("ADA@example.ORG  ") == ada
    assert await users.get_by_email("bob@example.org") is None
    assert await users.get("nobody") is None
    assert await users.get("../not an id") is None


async def test_create_with_every_flag(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    before = datetime.now(UTC)
    root = await users.create(
        {
            "email": "root@example.org",
            "hashed_password": PASSWORD_HASH,
            "is_active": False,
            "is_superuser": True,
            "is_verified": True,
        }
    )
    assert (root.is_active, root.is_superuser, root.is_verified) == (False, True, True)
    assert root.role is UserRole.ADMIN
    assert root.email_verified is not None
    assert root.email_verified >= before
    assert [d.user_id for d in env.db.repo(Deactivation).all()] == [root.id]
    env.reopen()
    assert await HutchUserDatabase(env.db).get(root.id) == root


async def test_update_maps_and_none_keeps(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    ada = await users.create({"email": "ada@example.org", "hashed_password": PASSWORD_HASH})

    ada = await users.update(ada, {"is_verified": True, "is_superuser": True, "is_active": False})
    assert (ada.is_active, ada.is_superuser, ada.is_verified) == (False, True, True)
    verified_at = ada.email_verified
    assert verified_at is not None

    # None for a fastapi-users field means "leave it"; so does an explicit null password
    ada = await users.update(
        ada,
        {
            "is_verified": None,
            "is_superuser": None,
            "is_active": None,
            "hashed_password": None,
            "password": None,
        },
    )
    assert (ada.is_active, ada.is_superuser, ada.is_verified) == (False, True, True)
    assert ada.hashed_password == PASSWORD_HASH

    ada = await users.update(ada, {"is_verified": True, "is_active": True})  # already verified
    assert ada.email_verified == verified_at
    assert ada.is_active
    assert env.db.store.get_row_count("deactivated_users") == 0

    ada = await users.update(
        ada,
        {
            "email": "ada@lovelace.org",
            "hashed_password": "new-hash",
            "is_verified": False,
            "is_superuser": False,
            "name": "Ada",
        },
    )
    assert (ada.email, ada.hashed_password, ada.name) == ("ada@lovelace.org", "new-hash", "Ada")
    assert (ada.is_superuser, ada.is_verified, ada.email_verified) == (False, False, None)
    assert ada.role is UserRole.CUSTOMER
    env.reopen()
    users = HutchUserDatabase(env.db)
    assert await users.get_by_email("ada@lovelace.org") == ada
    assert await users.get_by_email("ada@example.org") is None


async def test_is_superuser_false_keeps_a_role_that_is_not_admin(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    guest = await users.create(
        {"email": "g@example.org", "hashed_password": PASSWORD_HASH, "role": "GUEST"}
    )
    guest = await users.update(guest, {"is_superuser": False})
    assert guest.role is UserRole.GUEST


async def test_bad_writes_raise_and_write_nothing(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    ada = await users.create({"email": "ada@example.org", "hashed_password": PASSWORD_HASH})
    before = store_text(env.db)
    with pytest.raises(hutch.IntegrityError, match="unique"):
        await users.create({"email": "ADA@example.org", "hashed_password": PASSWORD_HASH})
    with pytest.raises(hutch.ValidationError, match="unknown field"):
        await users.create({"email": "bob@example.org", "is_active": False, "shoe_size": 44})
    with pytest.raises(hutch.ValidationError, match="not an email"):
        await users.update(ada, {"email": "not an email", "is_active": False})
    with pytest.raises(hutch.ValidationError, match="is_superuser"):
        await users.update(ada, {"is_superuser": "yes", "is_active": False})
    with pytest.raises(hutch.ValidationError, match="password"):  # hashing is the manager's
        await users.update(ada, {"password": "plain text"})
    assert store_text(env.db) == before


async def test_a_user_without_a_password_cannot_log_in_with_one(env: Env) -> None:
    record = PlatformRepositories.of(env.db).users.create(email="magic@example.org")
    helper = PasswordHelper()
    users = HutchUserDatabase(env.db, password_helper=helper)
    user = await users.get_by_email("magic@example.org")
    assert user is not None
    assert user.record == record
    assert user.hashed_password.startswith("$argon2")
    assert helper.verify_and_update("", user.hashed_password) == (False, None)
    assert (user.is_active, user.is_verified) == (True, False)
    assert record.password_hash is None  # nothing was written


async def test_oauth_accounts(env: Env) -> None:
    users = HutchUserDatabase(env.db)
    ada = await users.create({"email": "ada@example.org", "hashed_password": PASSWORD_HASH})
    bob = await users.create({"email": "bob@example.org", "hashed_password": PASSWORD_HASH})
    github = {
        "oauth_name": "github",
        "access_token": "gho_1",
        "account_id": "1815",
        "account_email": "ada@example.org",
    }
    ada = await users.add_oauth_account(ada, github)
    ada = await users.add_oauth_account(
        ada, {**github, "oauth_name": "google", "expires_at": 1_700_000_000}
    )
    assert [(a.oauth_name, a.account_id, a.user_id) for a in ada.oauth_accounts] == [
        ("github", "1815", ada.id),
        ("google", "1815", ada.id),
    ]
    stored = env.db.repo(OAuthAccount).find(user_id=ada.id, order_by="created_at")
    assert stored == [a.record for a in ada.oauth_accounts]
    assert await users.get_by_oauth_account("github", "1815") == ada
    assert await users.get_by_oauth_account("github", "1816") is None
    assert await users.get_by_oauth_account("gitlab", "1815") is None

    before = store_text(env.db)
    with pytest.raises(hutch.IntegrityError, match="already linked"):
        await users.add_oauth_account(bob, github)
    with pytest.raises(hutch.NotFound):
        await users.update_oauth_account(bob, ada.oauth_accounts[0], {"access_token": "x"})
    with pytest.raises(hutch.IntegrityError, match="already linked"):
        await users.update_oauth_account(ada, ada.oauth_accounts[1], {"oauth_name": "github"})
    assert store_text(env.db) == before

    ada = await users.update_oauth_account(
        ada, ada.oauth_accounts[0], {"access_token": "gho_2", "refresh_token": "ghr_2"}
    )
    assert (ada.oauth_accounts[0].access_token, ada.oauth_accounts[0].refresh_token) == (
        "gho_2",
        "ghr_2",
    )
    env.reopen()
    users = HutchUserDatabase(env.db)
    assert await users.get_by_oauth_account("github", "1815") == ada


async def test_delete_cascades_and_follows_the_platform_policies(env: Env) -> None:
    users, tokens = HutchUserDatabase(env.db), HutchAccessTokenDatabase(env.db)
    ada = await users.create(
        {"email": "ada@example.org", "hashed_password": PASSWORD_HASH, "is_active": False}
    )
    bob = await users.create({"email": "bob@example.org", "hashed_password": PASSWORD_HASH})
    ada = await users.add_oauth_account(
        ada,
        {"oauth_name": "github", "access_token": "t", "account_id": "1", "account_email": "a@x"},
    )
    await tokens.create({"token": "ada-token", "user_id": ada.id})
    await tokens.create({"token": "bob-token", "user_id": bob.id})
    acme = env.db.repo(Organisation).create(name="Acme", owner_id=ada.id)

    with pytest.raises(hutch.IntegrityError, match="restrict"):
        await users.delete(ada)  # she owns Acme
    assert await users.get(ada.id) == ada

    env.db.repo(Organisation).update(acme.id, owner_id=bob.id)
    await users.delete(ada)
    assert await users.get(ada.id) is None
    assert await tokens.get_by_token("ada-token") is None
    assert await tokens.get_by_token("bob-token") is not None
    for model in (OAuthAccount, Deactivation):
        assert env.db.repo(model).count() == 0
    env.reopen()
    assert env.db.repo(User).count() == 1
    assert env.db.repo(AccessToken).count() == 1


async def test_the_module_is_a_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    env = Env("file", tmp_path / "data")
    ada = await HutchUserDatabase(env.db).create(
        {"email": "ada@example.org", "hashed_password": PASSWORD_HASH}
    )
    await HutchAccessTokenDatabase(env.db).create({"token": "t", "user_id": ada.id})
    env.db.close()
    with env.open(hutch.contrib.fastapi_users) as db:  # registered on open, before any use
        assert {OAuthAccount, AccessToken, Deactivation} <= set(db.models.models())
    with env.open("fastapi_users") as db:  # or by its installed name
        assert {OAuthAccount, AccessToken, Deactivation} <= set(db.models.models())
        assert db.repo(User).delete(ada.id)
        assert db.store.get_row_count("access_tokens") == 0


async def test_the_databases_bring_their_models_and_the_platforms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They store their users in the platform's ``User``, which brings the platform's other
    models and their delete policies."""
    monkeypatch.delenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    with hutch.open("memory://") as db:
        HutchUserDatabase(db)
        HutchAccessTokenDatabase(db)
        assert set(db.models.models()) == {
            *PLATFORM_MODELS,
            OAuthAccount,
            AccessToken,
            Deactivation,
        }
    with hutch.open("memory://", plugins=["fastapi_users"]) as db:
        assert set(db.models.models()) == {
            *PLATFORM_MODELS,
            OAuthAccount,
            AccessToken,
            Deactivation,
        }


def test_parse_id() -> None:
    class Manager(HutchIDMixin):
        pass

    assert Manager().parse_id("01j0abc") == "01j0abc"
    for bad in ("", "../x", 3, None, "a" * 200):
        with pytest.raises(InvalidID):
            Manager().parse_id(bad)


# -- the access-token database ------------------------------------------------------------------


async def test_access_tokens_are_stored_by_their_hash(env: Env) -> None:
    ada = PlatformRepositories.of(env.db).users.create(email="ada@example.org")
    tokens = HutchAccessTokenDatabase(env.db)
    token = await tokens.create({"token": "s3cret-token", "user_id": ada.id})
    assert isinstance(token, FastAPIAccessToken)
    assert (token.token, token.user_id) == ("s3cret-token", ada.id)
    digest = hashlib.sha256(b"s3cret-token").hexdigest()
    assert hash_token("s3cret-token") == digest == token.record.id
    assert env.db.store.get_row_ids("access_tokens") == [digest]
    assert "s3cret-token" not in store_text(env.db)

    env.reopen()
    tokens = HutchAccessTokenDatabase(env.db)
    assert not any(b"s3cret-token" in data for data in env.files().values())
    found = await tokens.get_by_token("s3cret-token")
    assert found == token
    assert await tokens.get_by_token("s3cret-tokem") is None
    assert await tokens.get_by_token(digest) is None  # the hash is not a token

    later = token.created_at + timedelta(seconds=1)
    assert await tokens.get_by_token("s3cret-token", max_age=token.created_at) == token
    assert await tokens.get_by_token("s3cret-token", max_age=later) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        await tokens.get_by_token("s3cret-token", max_age=later.replace(tzinfo=None))

    await tokens.delete(token)
    assert await tokens.get_by_token("s3cret-token") is None
    await tokens.delete(token)  # a no-op
    env.reopen()
    assert env.db.store.get_row_count("access_tokens") == 0


async def test_access_token_update(env: Env) -> None:
    ada = PlatformRepositories.of(env.db).users.create(email="ada@example.org")
    tokens = HutchAccessTokenDatabase(env.db)
    token = await tokens.create({"token": "one", "user_id": ada.id})
    earlier = token.created_at - timedelta(days=1)
    token = await tokens.update(token, {"created_at": earlier})
    assert token.created_at == earlier
    assert await tokens.get_by_token("one") == token

    moved = await tokens.update(token, {"token": "two"})
    assert (moved.token, moved.user_id, moved.created_at) == ("two", ada.id, earlier)
    assert await tokens.get_by_token("one") is None
    assert await tokens.get_by_token("two") == moved
    assert env.db.store.get_row_ids("access_tokens") == [hash_token("two")]
    with pytest.raises(hutch.NotFound):
        await tokens.update(token, {"created_at": earlier})  # "one" is gone


async def test_access_token_bad_writes(env: Env) -> None:
    tokens = HutchAccessTokenDatabase(env.db)
    with pytest.raises(hutch.IntegrityError, match="create it first"):
        await tokens.create({"token": "t", "user_id": "nobody"})
    with pytest.raises(hutch.ValidationError, match="token"):
        await tokens.create({"user_id": "nobody"})
    with pytest.raises(hutch.ValidationError, match="token"):
        await tokens.create({"token": "", "user_id": "nobody"})
    assert env.db.store.get_row_count("access_tokens") == 0


async def test_delete_older_than(env: Env) -> None:
    ada = PlatformRepositories.of(env.db).users.create(email="ada@example.org")
    tokens = HutchAccessTokenDatabase(env.db)
    now = datetime.now(UTC)
    for day in range(5):
        await tokens.create(
            {"token": f"t{day}", "user_id": ada.id, "created_at": now - timedelta(days=day)}
        )
    assert tokens.delete_older_than(now - timedelta(days=2, hours=1)) == 2
    assert tokens.delete_older_than(now - timedelta(days=2, hours=1)) == 0
    assert [await tokens.get_by_token(f"t{day}") is not None for day in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]


# -- a FastAPI application, through httpx -------------------------------------------------------

SECRET = "test-secret-for-reset-and-verification-tokens"


class UserRead(schemas.BaseUser[str]):
    name: str | None = None


class UserCreate(schemas.BaseUserCreate):
    name: str | None = None


class UserUpdate(schemas.BaseUserUpdate):
    name: str | None = None


class UserManager(HutchIDMixin, BaseUserManager[FastAPIUser, str]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


def make_app(db: hutch.Database) -> FastAPI:
    """An application as the fastapi-users documentation builds one, over hutch."""
    user_db = HutchUserDatabase(db)
    token_db = HutchAccessTokenDatabase(db)

    async def get_user_manager() -> AsyncIterator[UserManager]:
        yield UserManager(user_db)

    def get_strategy() -> DatabaseStrategy[FastAPIUser, str, FastAPIAccessToken]:
        return DatabaseStrategy(token_db, lifetime_seconds=3600)

    backend = AuthenticationBackend[FastAPIUser, str](
        name="hutch",
        transport=BearerTransport(tokenUrl="auth/login"),
        get_strategy=get_strategy,
    )
    users = FastAPIUsers[FastAPIUser, str](get_user_manager, [backend])
    app = FastAPI()
    app.include_router(users.get_auth_router(backend), prefix="/auth")
    app.include_router(users.get_register_router(UserRead, UserCreate), prefix="/auth")
    app.include_router(users.get_users_router(UserRead, UserUpdate), prefix="/users")
    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> str:
    response = await client.post("/auth/login", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


async def test_register_log_in_read_log_out_delete(env: Env) -> None:
    app = make_app(env.db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hutch.test") as client:
        # register
        response = await client.post(
            "/auth/register",
            json={"email": "ada@example.org", "password": "correct horse", "name": "Ada"},
        )
        assert response.status_code == 201, response.text
        ada = response.json()
        assert ada["email"] == "ada@example.org"
        assert (ada["is_active"], ada["is_superuser"], ada["is_verified"]) == (True, False, False)
        record = env.db.repo(User).get(ada["id"])
        assert record is not None
        assert record.name == "Ada"
        assert record.password_hash is not None
        assert "correct horse" not in record.password_hash
        response = await client.post(
            "/auth/register", json={"email": "ADA@example.org", "password": "another one"}
        )
        assert response.json()["detail"] == "REGISTER_USER_ALREADY_EXISTS"

        # log in
        response = await client.post(
            "/auth/login", data={"username": "ada@example.org", "password": "wrong"}
        )
        assert response.json()["detail"] == "LOGIN_BAD_CREDENTIALS"
        token = await log_in(client, "Ada@Example.org", "correct horse")

        # no raw token at rest: only its hash, as the row id
        files = env.files()
        assert not any(token.encode() in data for data in files.values())
        assert token not in store_text(env.db)
        if env.backend == "file":  # in the write-ahead log or a record file, as it may be
            assert any(hash_token(token).encode() in data for data in files.values())

        # read (and change) the current user
        response = await client.get("/users/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == ada
        assert (await client.get("/users/me")).status_code == 401
        response = await client.patch("/users/me", json={"name": "Ada L."}, headers=bearer(token))
        assert response.json()["name"] == "Ada L."

        # log out: the token no longer works
        response = await client.post("/auth/logout", headers=bearer(token))
        assert response.status_code == 204, response.text
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 401
        assert env.db.store.get_row_count("access_tokens") == 0

        # an administrator (a platform role) deactivates, then deletes her
        token = await log_in(client, "ada@example.org", "correct horse")
        await client.post(
            "/auth/register", json={"email": "root@example.org", "password": "root password"}
        )
        root = PlatformRepositories.of(env.db).users.find_by_email("root@example.org")
        assert root is not None
        PlatformRepositories.of(env.db).users.update(root.id, role=UserRole.ADMIN)
        root_token = await log_in(client, "root@example.org", "root password")
        response = await client.get("/users/me", headers=bearer(root_token))
        assert response.json()["is_superuser"] is True

        response = await client.patch(
            f"/users/{ada['id']}", json={"is_active": False}, headers=bearer(root_token)
        )
        assert response.json()["is_active"] is False
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 401
        response = await client.post(
            "/auth/login", data={"username": "ada@example.org", "password": "correct horse"}
        )
        assert response.json()["detail"] == "LOGIN_BAD_CREDENTIALS"

        response = await client.delete(f"/users/{ada['id']}", headers=bearer(root_token))
        assert response.status_code == 204, response.text
        response = await client.get(f"/users/{ada['id']}", headers=bearer(root_token))
        assert response.status_code == 404
        response = await client.get("/users/not..an..id", headers=bearer(root_token))
        assert response.status_code == 404

    env.reopen()
    assert not any(root_token.encode() in data for data in env.files().values())
    assert [u.email for u in env.db.repo(User).all()] == ["root@example.org"]
    assert env.db.store.get_row_ids("access_tokens") == [hash_token(root_token)]
    assert env.db.store.get_row_count("deactivated_users") == 0
