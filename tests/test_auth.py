"""The auth plugin: the Auth.js adapter contract, on every available backend, secure by default.

The first part follows the Auth.js adapter test sequence (create, get, get by
email, sessions, update, link, get by account, delete session, verification
tokens, unlink, cascading delete, accounts, authenticators), reading the store
directly after each step to see what was really written. The rest covers what
goes beyond Auth.js: case-insensitive emails, cascades over many rows, expired
sessions and the sweep, refused input that writes nothing, single-use tokens
under concurrent redemption (threads, and real processes on one folder), and
the absence of raw tokens at rest.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import orjson
import pytest
from children import WAIT, Child

import hutch
import hutch.backends.file
import hutch.backends.memory
import hutch.plugins.auth
import hutch.plugins.platform
from hutch.plugins.auth import (
    Account,
    AccountRepository,
    AuthAdapter,
    Authenticator,
    Session,
    VerificationToken,
    hash_token,
)
from hutch.plugins.platform import MODELS as PLATFORM_MODELS
from hutch.plugins.platform import Organisation, User

AUTH_COLLECTIONS = ("accounts", "sessions", "verification_tokens", "authenticators")
COLLECTIONS = ("users", *AUTH_COLLECTIONS)

# -- backends -------------------------------------------------------------------------------------


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


#: Backends the tests know how to open: (plugin module, URL for a folder of the test's own).
KNOWN_BACKENDS: dict[str, tuple[str, Callable[[Path], str]]] = {
    "memory": ("hutch.backends.memory", lambda root: "memory://"),
    "file": ("hutch.backends.file", lambda root: str(root)),
    "sqlite": ("hutch.backends.sqlite", lambda root: f"sqlite:///{root}/auth.db"),
}
BACKENDS = [name for name, (module, _) in KNOWN_BACKENDS.items() if _importable(module)]
PERSISTENT = [name for name in BACKENDS if name != "memory"]


def sha256(text: str) -> str:
    """The hash the store should hold, computed apart from the plugin's own ``hash_token``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Env:
    """A database on one backend, its adapter, and a way to reopen it (a no-op for memory)."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        module, url = KNOWN_BACKENDS[backend]
        self.url = url(root)
        self.plugins: list[ModuleType | str] = [importlib.import_module(module), "platform", "auth"]
        self.db = self.open()
        self.auth = AuthAdapter(self.db)

    def open(self) -> hutch.Database:
        """Another database on the same store (for memory, a new, empty one)."""
        return hutch.open(self.url, plugins=self.plugins)

    @property
    def store(self) -> hutch.Store:
        return self.db.store

    def reopen(self) -> None:
        """Close and open again, so what follows reads what the backend kept."""
        if self.backend != "memory":
            self.db.close()
            self.db = self.open()
            self.auth = AuthAdapter(self.db)

    def counts(self) -> dict[str, int]:
        return {c: self.store.get_row_count(c) for c in COLLECTIONS}

    def contents(self) -> bytes:
        """Everything the store holds, as canonical JSON."""
        store = self.store
        return orjson.dumps(
            {
                "tables": {t: store.get_table(t) for t in store.get_table_ids()},
                "values": store.get_values(),
            },
            option=orjson.OPT_SORT_KEYS,
        )


@pytest.fixture(autouse=True)
def _only_the_plugins_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open databases with the plugins each test names, not whatever else is installed."""
    monkeypatch.setenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    opened = Env(request.param, tmp_path / "data")
    yield opened
    opened.db.close()


@pytest.fixture(params=PERSISTENT)
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """A backend that other databases and processes can open too."""
    opened = Env(request.param, tmp_path / "data")
    if not opened.db.capabilities.multi_process:
        opened.db.close()
        pytest.skip(f"the {request.param} backend is for one process")
    yield opened
    opened.db.close()


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def earlier(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def stored_time(value: datetime) -> str:
    """How a row stores a datetime: ISO-8601 text in UTC."""
    return value.astimezone(UTC).isoformat()


def new_token() -> str:
    """A token as Auth.js makes them, with a prefix no hash or id could contain."""
    return f"RAW-{secrets.token_hex(32)}"


def make_user(auth: AuthAdapter, email: str = "ada@example.org") -> User:
    return auth.create_user(email=email, name="Ada")


# -- the Auth.js sequence -------------------------------------------------------------------------


def test_create_user(env: Env) -> None:
    verified = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    user = env.auth.create_user(
        email="Ada@Example.org",
        name="Ada Lovelace",
        image="https://example.org/ada.png",
        email_verified=verified,
        id="3b241101-e2bb-4255-8caf-4136c566a962",  # Auth.js hands the adapter a UUID
    )
    assert isinstance(user, User)
    assert user.id == "3b241101-e2bb-4255-8caf-4136c566a962"
    assert (user.email, user.name, user.image) == (
        "Ada@Example.org",
        "Ada Lovelace",
        "https://example.org/ada.png",
    )
    assert user.email_verified == verified
    row = env.store.get_row("users", user.id)
    assert row is not None
    assert row["email"] == "Ada@Example.org"
    assert row["name"] == "Ada Lovelace"
    assert row["image"] == "https://example.org/ada.png"
    assert row["email_verified"] == stored_time(verified)
    generated = env.auth.create_user(email="bob@example.org")
    assert env.store.get_row_ids("users") == sorted([user.id, generated.id])
    assert generated.name is None
    assert generated.email_verified is None


def test_get_user(env: Env) -> None:
    user = make_user(env.auth)
    env.reopen()
    assert env.auth.get_user(user.id) == user
    assert env.auth.get_user("no-such-user") is None
    assert env.auth.get_user("") is None  # not even an id: nothing matches
    assert env.auth.get_user("../etc/passwd") is None


def test_get_user_by_email(env: Env) -> None:
    user = make_user(env.auth, "Ada@Example.org")
    env.reopen()
    assert env.auth.get_user_by_email("Ada@Example.org") == user
    assert env.auth.get_user_by_email("ada@example.org") == user
    assert env.auth.get_user_by_email("nobody@example.org") is None


def test_create_session(env: Env) -> None:
    user = make_user(env.auth)
    token, expires = new_token(), later(days=30)
    session = env.auth.create_session(session_token=token, user_id=user.id, expires=expires)
    assert isinstance(session, Session)
    assert (session.session_token, session.user_id, session.expires) == (token, user.id, expires)
    row = env.store.get_row("sessions", session.id)
    assert row is not None
    assert row["session_token"] == sha256(token)
    assert row["user_id"] == user.id
    assert row["expires"] == stored_time(expires)
    assert token not in repr(session)


def test_get_session_and_user(env: Env) -> None:
    user = make_user(env.auth)
    token, expires = new_token(), later(days=30)
    created = env.auth.create_session(session_token=token, user_id=user.id, expires=expires)
    env.reopen()
    found = env.auth.get_session_and_user(token)
    assert found is not None
    session, session_user = found
    assert session == created
    assert session.session_token == token
    assert session_user == user
    assert env.auth.get_session_and_user(new_token()) is None
    assert env.auth.get_session_and_user(sha256(token)) is None  # the stored hash opens nothing
    assert env.store.get_row_count("sessions") == 1


def test_update_user(env: Env) -> None:
    user = make_user(env.auth)
    verified = datetime(2024, 6, 1, tzinfo=UTC)
    updated = env.auth.update_user(user.id, name="Ada L.", email_verified=verified)
    assert isinstance(updated, User)
    assert (updated.id, updated.email, updated.name) == (user.id, user.email, "Ada L.")
    assert updated.email_verified == verified
    row = env.store.get_row("users", user.id)
    assert row is not None
    assert (row["name"], row["email_verified"]) == ("Ada L.", stored_time(verified))
    env.reopen()
    assert env.auth.get_user(user.id) == updated
    with pytest.raises(hutch.NotFound):
        env.auth.update_user("no-such-user", name="x")


def test_update_session(env: Env) -> None:
    user = make_user(env.auth)
    token = new_token()
    created = env.auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    expires = later(days=60)
    updated = env.auth.update_session(token, expires=expires)
    assert updated is not None
    assert (updated.id, updated.session_token, updated.expires) == (created.id, token, expires)
    assert env.store.get_cell("sessions", created.id, "expires") == stored_time(expires)
    assert env.store.get_cell("sessions", created.id, "session_token") == sha256(token)
    assert env.auth.update_session(new_token(), expires=expires) is None
    env.reopen()
    found = env.auth.get_session_and_user(token)
    assert found is not None
    assert found[0] == updated


def test_link_account(env: Env) -> None:
    user = make_user(env.auth)
    account = env.auth.link_account(
        user_id=user.id,
        type="oauth",
        provider="github",
        provider_account_id="1234",
        access_token="gho_access",
        refresh_token="ghr_refresh",
        expires_at=1_900_000_000,
        token_type="bearer",
        scope="read:user user:email",
        id_token="eyJ.id.token",
        session_state="state",
    )
    assert isinstance(account, Account)
    row = env.store.get_row("accounts", account.id)
    assert row is not None
    assert {k: v for k, v in row.items() if k not in ("created_at", "updated_at")} == {
        "user_id": user.id,
        "type": "oauth",
        "provider": "github",
        "provider_account_id": "1234",
        "access_token": "gho_access",
        "refresh_token": "ghr_refresh",
        "expires_at": 1_900_000_000,
        "token_type": "bearer",
        "scope": "read:user user:email",
        "id_token": "eyJ.id.token",
        "session_state": "state",
    }
    assert "gho_access" not in repr(account)


def test_get_user_by_account(env: Env) -> None:
    user = make_user(env.auth)
    env.auth.link_account(user_id=user.id, type="oidc", provider="google", provider_account_id="g1")
    env.reopen()
    assert env.auth.get_user_by_account(provider="google", provider_account_id="g1") == user
    assert env.auth.get_user_by_account(provider="github", provider_account_id="g1") is None
    assert env.auth.get_user_by_account(provider="google", provider_account_id="g2") is None


def test_delete_session(env: Env) -> None:
    user = make_user(env.auth)
    token, other = new_token(), new_token()
    session = env.auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    kept = env.auth.create_session(session_token=other, user_id=user.id, expires=later(days=1))
    deleted = env.auth.delete_session(token)
    assert deleted is not None
    assert (deleted.id, deleted.session_token) == (session.id, token)
    assert not env.store.has_row("sessions", session.id)
    assert env.store.get_row_ids("sessions") == [kept.id]
    assert env.auth.get_session_and_user(token) is None
    assert env.auth.delete_session(token) is None
    env.reopen()
    assert env.auth.get_session_and_user(token) is None
    assert env.auth.get_session_and_user(other) is not None


def test_verification_tokens_are_single_use(env: Env) -> None:
    token, expires = new_token(), later(hours=24)
    created = env.auth.create_verification_token(
        identifier="ada@example.org", token=token, expires=expires
    )
    assert isinstance(created, VerificationToken)
    assert (created.identifier, created.token, created.expires) == (
        "ada@example.org",
        token,
        expires,
    )
    assert env.store.get_row("verification_tokens", created.id) == {
        "identifier": "ada@example.org",
        "token": sha256(token),
        "expires": stored_time(expires),
        "created_at": stored_time(created.created_at),
        "updated_at": stored_time(created.updated_at),
    }
    env.reopen()
    # Another identifier's redemption finds nothing, and leaves the token where it was.
    assert env.auth.use_verification_token(identifier="eve@example.org", token=token) is None
    assert env.store.has_row("verification_tokens", created.id)
    used = env.auth.use_verification_token(identifier="ada@example.org", token=token)
    assert used is not None
    assert (used.id, used.identifier, used.token, used.expires) == (
        created.id,
        "ada@example.org",
        token,
        expires,
    )
    assert env.store.get_row_count("verification_tokens") == 0
    assert env.auth.use_verification_token(identifier="ada@example.org", token=token) is None
    env.reopen()
    assert env.auth.use_verification_token(identifier="ada@example.org", token=token) is None


def test_unlink_account(env: Env) -> None:
    user = make_user(env.auth)
    account = env.auth.link_account(
        user_id=user.id, type="oauth", provider="github", provider_account_id="1"
    )
    kept = env.auth.link_account(
        user_id=user.id, type="oauth", provider="gitlab", provider_account_id="1"
    )
    unlinked = env.auth.unlink_account(provider="github", provider_account_id="1")
    assert unlinked == account
    assert env.store.get_row_ids("accounts") == [kept.id]
    assert env.auth.get_user_by_account(provider="github", provider_account_id="1") is None
    assert env.auth.get_user_by_account(provider="gitlab", provider_account_id="1") == user
    assert env.auth.unlink_account(provider="github", provider_account_id="1") is None
    # Unlinked, the provider account may be linked again (to anyone).
    bob = make_user(env.auth, "bob@example.org")
    env.auth.link_account(user_id=bob.id, type="oauth", provider="github", provider_account_id="1")
    assert env.auth.get_user_by_account(provider="github", provider_account_id="1") == bob


def test_delete_user_cascades(env: Env) -> None:
    ada, bob = make_user(env.auth), make_user(env.auth, "bob@example.org")
    for user in (ada, bob):
        env.auth.link_account(
            user_id=user.id, type="oauth", provider="github", provider_account_id=user.id
        )
        env.auth.create_session(session_token=new_token(), user_id=user.id, expires=later(days=1))
        env.auth.create_authenticator(
            credential_id=f"cred-{user.id}",
            user_id=user.id,
            provider_account_id=user.id,
            credential_public_key="pQECAyYgASFYIA",
            counter=0,
            credential_device_type="singleDevice",
            credential_backed_up=False,
        )
    token = new_token()
    env.auth.create_session(session_token=token, user_id=ada.id, expires=later(days=1))
    assert env.auth.delete_user(ada.id) == ada
    assert env.counts() == {c: 1 for c in ("users", "accounts", "sessions", "authenticators")} | {
        "verification_tokens": 0
    }
    for collection in AUTH_COLLECTIONS:
        assert all(row["user_id"] == bob.id for row in env.store.get_table(collection).values())
    assert env.auth.get_user(ada.id) is None
    assert env.auth.get_session_and_user(token) is None
    assert env.auth.delete_user(ada.id) is None
    env.reopen()
    assert env.counts()["users"] == 1
    assert env.auth.get_user_by_account(provider="github", provider_account_id=ada.id) is None
    assert env.auth.get_user_by_account(provider="github", provider_account_id=bob.id) == bob


def test_get_account(env: Env) -> None:
    user = make_user(env.auth)
    account = env.auth.link_account(
        user_id=user.id,
        type="oauth",
        provider="github",
        provider_account_id="42",
        access_token="gho_x",
        expires_at=1_700_000_000,
    )
    env.reopen()
    found = env.auth.get_account(provider_account_id="42", provider="github")
    assert found == account
    assert found is not None
    assert (found.access_token, found.expires_at) == ("gho_x", 1_700_000_000)
    assert env.auth.get_account(provider_account_id="42", provider="gitlab") is None
    assert env.auth.get_account(provider_account_id="43", provider="github") is None


def test_authenticators(env: Env) -> None:
    user = make_user(env.auth)
    first = env.auth.create_authenticator(
        credential_id="Y3JlZC0x",
        user_id=user.id,
        provider_account_id="Y3JlZC0x",
        credential_public_key="pQECAyYgASFYIA",
        counter=1,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )
    second = env.auth.create_authenticator(
        credential_id="Y3JlZC0y",
        user_id=user.id,
        provider_account_id="Y3JlZC0y",
        credential_public_key="pQECAyYgASFYIB",
        counter=0,
        credential_device_type="multiDevice",
        credential_backed_up=True,
        transports="internal,hybrid",
    )
    assert isinstance(first, Authenticator)
    row = env.store.get_row("authenticators", second.id)
    assert row is not None
    assert (row["credential_id"], row["counter"], row["credential_backed_up"]) == (
        "Y3JlZC0y",
        0,
        True,
    )
    assert row["transports"] == "internal,hybrid"
    env.reopen()
    assert env.auth.get_authenticator("Y3JlZC0x") == first
    assert env.auth.get_authenticator("nope") is None
    # In id order, which is creation order only to the millisecond.
    assert env.auth.list_authenticators_by_user_id(user.id) == sorted(
        [first, second], key=lambda a: a.id
    )
    assert env.auth.list_authenticators_by_user_id("nobody") == []
    bumped = env.auth.update_authenticator_counter(credential_id="Y3JlZC0x", counter=5)
    assert (bumped.id, bumped.counter) == (first.id, 5)
    assert env.store.get_cell("authenticators", first.id, "counter") == 5
    with pytest.raises(hutch.NotFound, match="nope"):
        env.auth.update_authenticator_counter(credential_id="nope", counter=1)
    with pytest.raises(hutch.IntegrityError, match="credential_id"):
        env.auth.create_authenticator(
            credential_id="Y3JlZC0x",
            user_id=user.id,
            provider_account_id="x",
            credential_public_key="k",
            counter=0,
            credential_device_type="singleDevice",
            credential_backed_up=False,
        )


# -- the plugin -----------------------------------------------------------------------------------


def test_the_plugin_named_at_the_open_registers_the_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD")
    with hutch.open("memory://", plugins=["auth"]) as db:
        assert "auth" in [name for name, _ in db.plugins.list_name_plugin()]
        assert set(db.models.models()) == {
            *PLATFORM_MODELS,
            Account,
            Session,
            VerificationToken,
            Authenticator,
        }
        assert isinstance(AuthAdapter(db).accounts, AccountRepository)


@pytest.mark.parametrize("plugins", [[], ["platform"]])
def test_the_adapter_refuses_a_database_opened_without_the_auth_models(
    monkeypatch: pytest.MonkeyPatch, plugins: list[str]
) -> None:
    """Known only from the adapter on, the models' delete policies would miss earlier deletes."""
    monkeypatch.delenv("HUTCH_DISABLE_PLUGIN_AUTOLOAD")
    with hutch.open("memory://", plugins=plugins) as db:
        with pytest.raises(hutch.ConfigError, match=r"hutch\.open\(url, plugins=\[\"auth\"\]\)"):
            AuthAdapter(db)
        assert Session not in db.models.models()


def test_the_plugin_works_without_the_platform_plugin() -> None:
    with hutch.open("memory://", plugins=[hutch.backends.memory, hutch.plugins.auth]) as db:
        assert set(db.models.models()) == {
            *PLATFORM_MODELS,
            Account,
            Session,
            VerificationToken,
            Authenticator,
        }
        auth = AuthAdapter(db)
        user = make_user(auth)
        auth.create_session(session_token="t", user_id=user.id, expires=later(days=1))
        assert auth.delete_user(user.id) == user
        assert db.store.get_row_count("sessions") == 0


def test_every_lookup_is_indexed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    indexes = set(env.db.indexes.index_ids())
    assert {
        "users.email.key",
        "accounts.provider_account_id",
        "accounts.user_id",
        "sessions.session_token",
        "sessions.user_id",
        "sessions.expires",
        "verification_tokens.token",
        "verification_tokens.expires",
        "authenticators.credential_id",
        "authenticators.user_id",
    } <= indexes
    auth = env.auth
    user = make_user(auth)
    token, code = new_token(), new_token()
    auth.link_account(user_id=user.id, type="oauth", provider="github", provider_account_id="1")
    auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    auth.create_verification_token(identifier="ada@example.org", token=code, expires=later(days=1))
    auth.create_authenticator(
        credential_id="c1",
        user_id=user.id,
        provider_account_id="1",
        credential_public_key="k",
        counter=0,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )
    store = env.store
    scan = store.get_row_ids

    def refuse_scans(table_id: str) -> list[str]:  # a spy: it still answers
        assert table_id not in COLLECTIONS, f"the adapter scanned {table_id}"
        return scan(table_id)

    monkeypatch.setattr(store, "get_row_ids", refuse_scans)
    assert auth.get_user_by_email("ADA@example.org") is not None
    assert auth.get_user_by_account(provider="github", provider_account_id="1") is not None
    assert auth.get_account(provider_account_id="1", provider="github") is not None
    assert auth.get_session_and_user(token) is not None
    assert auth.update_session(token, expires=later(days=2)) is not None
    assert auth.get_authenticator("c1") is not None
    assert auth.list_authenticators_by_user_id(user.id)
    assert auth.update_authenticator_counter(credential_id="c1", counter=1).counter == 1
    assert auth.sweep_expired() == 0
    assert auth.use_verification_token(identifier="ada@example.org", token=code) is not None
    assert auth.delete_session(token) is not None
    assert auth.unlink_account(provider="github", provider_account_id="1") is not None
    assert auth.delete_user(user.id) is not None


# -- refused input writes nothing -----------------------------------------------------------------


#: Each case prepares what it needs and returns the one call that must be refused.
Attempt = Callable[[], object]


def _session_of_nobody(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_session(
        session_token=new_token(), user_id="nobody", expires=later(days=1)
    )


def _session_of_no_id(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_session(
        session_token=new_token(), user_id="../nobody", expires=later(days=1)
    )


def _account_of_nobody(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.link_account(
        user_id="nobody", type="oauth", provider="github", provider_account_id="9"
    )


def _account_linked_twice(auth: AuthAdapter, user: User) -> Attempt:
    bob = auth.create_user(email="bob@example.org")
    return lambda: auth.link_account(
        user_id=bob.id, type="oauth", provider="github", provider_account_id="1"
    )


def _account_moved_onto_another(auth: AuthAdapter, user: User) -> Attempt:
    other = auth.link_account(
        user_id=user.id, type="oauth", provider="gitlab", provider_account_id="1"
    )
    return lambda: auth.accounts.update(other.id, provider="github")


def _authenticator_of_nobody(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_authenticator(
        credential_id="c9",
        user_id="nobody",
        provider_account_id="9",
        credential_public_key="k",
        counter=0,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )


def _malformed_email(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_user(email="not an email")


def _email_without_a_domain(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_user(email="ada@")


def _update_to_a_malformed_email(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.update_user(user.id, email="nope")


def _naive_expiry(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_session(
        session_token=new_token(), user_id=user.id, expires=datetime(2030, 1, 1)
    )


def _empty_session_token(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_session(session_token="", user_id=user.id, expires=later(days=1))


def _session_token_twice(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_session(
        session_token="existing", user_id=user.id, expires=later(days=1)
    )


def _verification_token_twice(auth: AuthAdapter, user: User) -> Attempt:
    auth.create_verification_token(identifier="a@x.io", token="same", expires=later(days=1))
    return lambda: auth.create_verification_token(
        identifier="a@x.io", token="same", expires=later(days=1)
    )


def _session_moved_to_nobody(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.update_session("existing", user_id="nobody")


def _session_with_an_unknown_field(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.update_session("existing", colour="red")


def _negative_counter(auth: AuthAdapter, user: User) -> Attempt:
    return lambda: auth.create_authenticator(
        credential_id="c9",
        user_id=user.id,
        provider_account_id="9",
        credential_public_key="k",
        counter=-1,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )


REFUSED: list[tuple[Callable[[AuthAdapter, User], Attempt], type[hutch.HutchError], str]] = [
    (_session_of_nobody, hutch.IntegrityError, "create it first"),
    (_session_of_no_id, hutch.IntegrityError, "create it first"),
    (_account_of_nobody, hutch.IntegrityError, "create it first"),
    (_account_linked_twice, hutch.IntegrityError, "already linked"),
    (_account_moved_onto_another, hutch.IntegrityError, "already linked"),
    (_authenticator_of_nobody, hutch.IntegrityError, "create it first"),
    (_malformed_email, hutch.ValidationError, "email"),
    (_email_without_a_domain, hutch.ValidationError, "email"),
    (_update_to_a_malformed_email, hutch.ValidationError, "email"),
    (_naive_expiry, hutch.ValidationError, "expires"),
    (_empty_session_token, hutch.ValidationError, "session_token"),
    (_session_token_twice, hutch.IntegrityError, "session_token must be unique"),
    (_verification_token_twice, hutch.IntegrityError, "already has this token"),
    (_session_moved_to_nobody, hutch.IntegrityError, "create it first"),
    (_session_with_an_unknown_field, hutch.ValidationError, "colour"),
    (_negative_counter, hutch.ValidationError, "counter"),
]


@pytest.mark.parametrize(
    ("prepare", "error", "message"), REFUSED, ids=[r[0].__name__.strip("_") for r in REFUSED]
)
def test_refused_input_raises_a_clear_error_and_writes_nothing(
    env: Env,
    prepare: Callable[[AuthAdapter, User], Attempt],
    error: type[hutch.HutchError],
    message: str,
) -> None:
    user = make_user(env.auth)
    env.auth.link_account(user_id=user.id, type="oauth", provider="github", provider_account_id="1")
    env.auth.create_session(session_token="existing", user_id=user.id, expires=later(days=1))
    attempt = prepare(env.auth, user)
    before = env.contents()
    with pytest.raises(error, match=message):
        attempt()
    assert env.contents() == before
    env.reopen()
    assert env.contents() == before


def test_messages_never_echo_a_token(env: Env) -> None:
    user = make_user(env.auth)
    token = new_token()
    env.auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    with pytest.raises(hutch.IntegrityError) as raised:
        env.auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    assert token not in str(raised.value)
    with pytest.raises(hutch.ValidationError) as invalid:
        env.auth.create_session(session_token=token, user_id=user.id, expires=datetime(2030, 1, 1))
    assert token not in str(invalid.value)


# -- cascades -------------------------------------------------------------------------------------


def populate(auth: AuthAdapter, user: User, sessions: int, accounts: int) -> list[str]:
    """Give a user sessions, accounts and an authenticator per account; their session tokens."""
    tokens = [new_token() for _ in range(sessions)]
    for token in tokens:
        auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    for n in range(accounts):
        auth.link_account(
            user_id=user.id, type="oauth", provider=f"p{n}", provider_account_id=user.id
        )
        auth.create_authenticator(
            credential_id=f"{user.id}-{n}",
            user_id=user.id,
            provider_account_id=user.id,
            credential_public_key="k",
            counter=n,
            credential_device_type="singleDevice",
            credential_backed_up=False,
        )
    return tokens


def test_deleting_a_user_deletes_all_theirs_and_only_theirs(env: Env) -> None:
    ada, bob = make_user(env.auth), make_user(env.auth, "bob@example.org")
    ada_tokens = populate(env.auth, ada, sessions=60, accounts=15)
    bob_tokens = populate(env.auth, bob, sessions=20, accounts=5)
    heard: list[hutch.Changes] = []
    env.store.add_listener(heard.append)
    env.auth.delete_user(ada.id)
    assert len(heard) == 1, "one transaction, so one commit"
    assert {t: len(rows) for t, rows in heard[0].tables.items()} == {
        "users": 1,
        "sessions": 60,
        "accounts": 15,
        "authenticators": 15,
    }
    assert env.counts() == {
        "users": 1,
        "accounts": 5,
        "sessions": 20,
        "verification_tokens": 0,
        "authenticators": 5,
    }
    env.reopen()
    assert all(env.auth.get_session_and_user(t) is None for t in ada_tokens)
    assert all(env.auth.get_session_and_user(t) is not None for t in bob_tokens)
    assert env.auth.list_authenticators_by_user_id(ada.id) == []
    assert len(env.auth.list_authenticators_by_user_id(bob.id)) == 5


def test_an_organisation_owner_cannot_be_deleted_and_keeps_everything(env: Env) -> None:
    ada = make_user(env.auth)
    tokens = populate(env.auth, ada, sessions=5, accounts=2)
    acme = env.db.repo(Organisation).create(name="Acme", owner_id=ada.id)
    before = env.contents()
    with pytest.raises(hutch.IntegrityError, match="restrict"):
        env.auth.delete_user(ada.id)
    assert env.contents() == before
    assert all(env.auth.get_session_and_user(t) is not None for t in tokens)
    env.db.repo(Organisation).delete(acme.id)
    assert env.auth.delete_user(ada.id) == ada
    assert env.counts() == dict.fromkeys(COLLECTIONS, 0)


# -- expiry ---------------------------------------------------------------------------------------


def test_an_expired_session_is_none_and_deleted(env: Env) -> None:
    user = make_user(env.auth)
    stale, fresh = new_token(), new_token()
    expired = env.auth.create_session(
        session_token=stale, user_id=user.id, expires=earlier(seconds=1)
    )
    env.auth.create_session(session_token=fresh, user_id=user.id, expires=later(days=1))
    assert env.store.has_row("sessions", expired.id)
    assert env.auth.get_session_and_user(stale) is None
    assert not env.store.has_row("sessions", expired.id)
    env.reopen()
    assert env.store.get_row_count("sessions") == 1
    assert env.auth.get_session_and_user(fresh) is not None


def test_an_expired_session_found_in_a_callers_transaction_goes_with_it(env: Env) -> None:
    user = make_user(env.auth)
    expired = env.auth.create_session(
        session_token="stale", user_id=user.id, expires=earlier(seconds=1)
    )
    seen: list[object] = []

    def look_then_change_mind() -> None:
        with env.store.transaction():
            seen.append(env.auth.get_session_and_user("stale"))
            seen.append(env.store.has_row("sessions", expired.id))
            raise RuntimeError("the caller changes its mind")

    with pytest.raises(RuntimeError):
        look_then_change_mind()
    assert seen == [None, False]  # gone inside the transaction...
    assert env.store.has_row("sessions", expired.id)  # ...and back with the rest


@pytest.mark.usefixtures("several_opens")
def test_a_read_only_database_does_not_return_an_expired_session(shared: Env) -> None:
    user = make_user(shared.auth)
    expired = shared.auth.create_session(
        session_token="stale", user_id=user.id, expires=earlier(seconds=1)
    )
    shared.auth.create_session(session_token="live", user_id=user.id, expires=later(days=1))
    with hutch.open(shared.url, plugins=shared.plugins, read_only=True) as looking:
        auth = AuthAdapter(looking)
        assert auth.get_session_and_user("stale") is None
        found = auth.get_session_and_user("live")
        assert found is not None
        assert found[1] == user
    assert shared.store.has_row("sessions", expired.id)


@pytest.mark.usefixtures("several_opens")
def test_a_session_extended_elsewhere_is_not_taken_for_expired(shared: Env) -> None:
    user = make_user(shared.auth)
    shared.auth.create_session(session_token="t", user_id=user.id, expires=earlier(seconds=1))
    with shared.open() as other:
        AuthAdapter(other).update_session("t", expires=later(days=1))
        found = shared.auth.get_session_and_user("t")  # without db.refresh() first
    assert found is not None
    assert found[1] == user
    assert shared.store.get_row_count("sessions") == 1


def test_a_session_that_expires_now_has_expired(env: Env) -> None:
    user = make_user(env.auth)
    moment = datetime.now(UTC)
    env.auth.create_session(session_token="t", user_id=user.id, expires=moment)
    assert env.auth.sweep_expired(now=moment) == 1


def test_sweep_deletes_what_expired_and_counts_it(env: Env) -> None:
    user = make_user(env.auth)
    now = datetime.now(UTC)
    for n in range(7):
        env.auth.create_session(
            session_token=f"old-{n}", user_id=user.id, expires=now - timedelta(minutes=n + 1)
        )
    for n in range(4):
        env.auth.create_session(
            session_token=f"new-{n}", user_id=user.id, expires=now + timedelta(minutes=n + 1)
        )
    for n in range(3):
        env.auth.create_verification_token(
            identifier="a@x.io", token=f"old-{n}", expires=now - timedelta(hours=n + 1)
        )
    env.auth.create_verification_token(identifier="a@x.io", token="new", expires=later(hours=1))
    # A whole second and microseconds: ISO text of both shapes, in one index.
    env.auth.create_session(
        session_token="old-whole", user_id=user.id, expires=now.replace(microsecond=0)
    )
    assert env.auth.sweep_expired(now=now) == 7 + 3 + 1
    assert env.auth.sweep_expired(now=now) == 0
    assert sorted(row["expires"] for row in env.store.get_table("sessions").values()) == [
        stored_time(now + timedelta(minutes=n + 1)) for n in range(4)
    ]
    assert env.store.get_row_count("verification_tokens") == 1
    assert env.auth.use_verification_token(identifier="a@x.io", token="old-0") is None
    assert env.auth.sweep_expired(now=now + timedelta(days=1)) == 4 + 1
    assert env.counts() == {**dict.fromkeys(COLLECTIONS, 0), "users": 1}
    with pytest.raises(hutch.ValidationError, match="timezone-aware"):
        env.auth.sweep_expired(now=datetime(2030, 1, 1))


def test_an_expired_verification_token_is_still_returned_once(env: Env) -> None:
    """As in Auth.js: the caller (Auth.js core) tells "expired" from "invalid" by ``expires``."""
    expires = earlier(minutes=5)
    env.auth.create_verification_token(identifier="a@x.io", token="t", expires=expires)
    used = env.auth.use_verification_token(identifier="a@x.io", token="t")
    assert used is not None
    assert used.expires == expires < datetime.now(UTC)
    assert env.auth.use_verification_token(identifier="a@x.io", token="t") is None


# -- one winner -----------------------------------------------------------------------------------

THREADS = 8
ROUNDS = 10  # tokens raced for by the processes
THREAD_ROUNDS = 50  # tokens raced for by the threads


def test_threads_redeeming_one_token_have_exactly_one_winner(env: Env) -> None:
    tokens = [new_token() for _ in range(THREAD_ROUNDS)]
    for token in tokens:
        env.auth.create_verification_token(identifier="a@x.io", token=token, expires=later(hours=1))
    barrier = threading.Barrier(THREADS, timeout=WAIT)
    wins: list[list[str]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def redeem(me: int) -> None:
        try:
            for token in tokens:
                barrier.wait()  # every round starts with every thread at the line
                if env.auth.use_verification_token(identifier="a@x.io", token=token) is not None:
                    wins[me].append(token)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=redeem, args=(me,)) for me in range(THREADS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    won = sorted(token for mine in wins for token in mine)
    assert won == sorted(tokens), "each token redeemed exactly once"
    assert env.store.get_row_count("verification_tokens") == 0


#: A worker: open the folder, say "ready", wait for "go", redeem every token, report the wins.
WORKER = """\
import json, os, sys
import hutch
from hutch.plugins.auth import AuthAdapter

backend, url, me, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
plugins = [__import__(backend, fromlist=["_"]), "platform", "auth"]
db = hutch.open(url, plugins=plugins)
auth = AuthAdapter(db)
os.write(1, b"ready\\n")
if sys.stdin.readline().strip() != "go":
    sys.exit("expected go")
order = tokens[me:] + tokens[:me]  # each worker starts the race at another token
won = [t for t in order if auth.use_verification_token(identifier="a@x.io", token=t) is not None]
os.write(1, (json.dumps(won) + "\\n").encode())
db.close()
"""

PROCESSES = 4


def start_worker(script: Path, env: Env, me: int, tokens: list[str], err: Path) -> Child:
    """A child process redeeming tokens, started and finished through its pipes."""
    command = [sys.executable, str(script), KNOWN_BACKENDS[env.backend][0], env.url, str(me)]
    return Child(
        f"worker {me}",
        [*command, *tokens],
        err,
        env={**os.environ, "HUTCH_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


def test_processes_redeeming_one_token_have_exactly_one_winner(shared: Env, tmp_path: Path) -> None:
    tokens = [new_token() for _ in range(ROUNDS)]
    for token in tokens:
        shared.auth.create_verification_token(
            identifier="a@x.io", token=token, expires=later(hours=1)
        )
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    workers: list[Child] = []
    try:
        for me in range(PROCESSES):
            workers.append(start_worker(script, shared, me, tokens, tmp_path / f"worker{me}.err"))
        for worker in workers:
            assert worker.read() == "ready"
        for worker in workers:
            worker.send("go")
        wins = [json.loads(worker.read()) for worker in workers]
        for worker in workers:
            assert worker.process.wait(WAIT) == 0, worker.err.read_text()
    finally:
        for worker in workers:
            worker.end()
    won = sorted(token for mine in wins for token in mine)
    assert won == sorted(tokens), f"each token redeemed exactly once; wins by worker: {wins}"
    # This database sees the others' deletes from its next transaction on.
    assert all(
        shared.auth.use_verification_token(identifier="a@x.io", token=t) is None for t in tokens
    )
    shared.db.refresh()
    assert shared.store.get_row_count("verification_tokens") == 0


@pytest.mark.usefixtures("several_opens")
def test_a_sign_out_elsewhere_ends_the_session_here_at_once(shared: Env) -> None:
    user = make_user(shared.auth)
    token = new_token()
    shared.auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    with shared.open() as other:
        elsewhere = AuthAdapter(other)
        assert shared.auth.get_session_and_user(token) is not None
        assert elsewhere.get_session_and_user(token) is not None
        assert elsewhere.delete_session(token) is not None
        assert shared.auth.get_session_and_user(token) is None  # no refresh() needed
        assert elsewhere.delete_user(user.id) == user
        assert shared.auth.get_user(user.id) is None


# -- nothing raw at rest --------------------------------------------------------------------------


def files_holding(root: Path, secret: bytes) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``secret``."""
    return [
        path for path in sorted(root.rglob("*")) if path.is_file() and secret in path.read_bytes()
    ]


def test_no_raw_token_is_ever_at_rest(env: Env) -> None:
    auth = env.auth
    user = make_user(auth)
    kept, signed_out, stale, link, used, wrong = (new_token() for _ in range(6))
    for token in (kept, signed_out):
        auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    auth.create_session(session_token=stale, user_id=user.id, expires=earlier(days=1))
    auth.update_session(kept, expires=later(days=2))
    auth.delete_session(signed_out)
    assert auth.get_session_and_user(stale) is None
    assert auth.get_session_and_user(kept) is not None
    for token in (link, used):
        auth.create_verification_token(identifier=user.email, token=token, expires=later(hours=1))
    auth.use_verification_token(identifier=user.email, token=used)
    auth.use_verification_token(identifier="eve@example.org", token=link)
    auth.use_verification_token(identifier=user.email, token=wrong)
    auth.sweep_expired()
    raw = [kept, signed_out, stale, link, used, wrong]

    def check() -> None:
        contents = env.contents()
        for token in raw:
            assert token.encode() not in contents, "a raw token is in the store"
            assert files_holding(env.root, token.encode()) == [], "a raw token is on disk"
        assert sha256(kept).encode() in contents  # what is there instead: its hash

    check()  # open: the log, if the backend keeps one, holds every write so far
    if env.backend != "memory":
        env.db.close()  # a checkpoint: record files and indices are written
        assert files_holding(env.root, sha256(kept).encode()), "the hash should be on disk"
        env.reopen()
    check()
    assert env.auth.get_session_and_user(kept) is not None
    assert env.auth.use_verification_token(identifier=user.email, token=link) is not None


def test_the_repositories_refuse_to_store_a_raw_token(env: Env) -> None:
    user = make_user(env.auth)
    session = env.auth.create_session(session_token="t1", user_id=user.id, expires=later(days=1))
    sessions, tokens = env.db.repo(Session), env.db.repo(VerificationToken)
    before = env.contents()
    with pytest.raises(hutch.ValidationError, match="SHA-256"):
        sessions.create(session_token="t2", user_id=user.id, expires=later(days=1))
    with pytest.raises(hutch.ValidationError, match="SHA-256"):
        sessions.update(session.id, session_token=session.session_token)  # the raw "t1"
    with pytest.raises(hutch.ValidationError, match="SHA-256"):
        tokens.create(identifier="a@x.io", token="t3", expires=later(days=1))
    assert env.contents() == before
    # Written as a hash, through the repository, a session is the adapter's as any other.
    sessions.create(session_token=hash_token("t4"), user_id=user.id, expires=later(days=1))
    found = env.auth.get_session_and_user("t4")
    assert found is not None
    assert found[1] == user


def test_hash_token_is_the_sha256_of_the_token() -> None:
    assert hash_token("abc") == sha256("abc")
    assert hash_token("\u00e9") == sha256("\u00e9")
    with pytest.raises(hutch.ValidationError):
        hash_token(b"abc")  # type: ignore[arg-type]


def test_repr_shows_no_token(env: Env) -> None:
    user = make_user(env.auth)
    session = env.auth.create_session(
        session_token="s3cr3t", user_id=user.id, expires=later(seconds=9)
    )
    token = env.auth.create_verification_token(
        identifier="a@x.io", token="s3cr3t", expires=later(seconds=9)
    )
    account = env.auth.link_account(
        user_id=user.id,
        type="oauth",
        provider="github",
        provider_account_id="1",
        access_token="s3cr3t",
        refresh_token="s3cr3t",
        id_token="s3cr3t",
    )
    for instance in (session, token, account):
        assert "s3cr3t" not in repr(instance)
