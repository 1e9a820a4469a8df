"""The email rule: one mailbox is one user and two mailboxes are two, through every front door.

The rule (docs/auth.md): the domain compared by its IDNA2008 A-label, the
local part's ASCII letters lower-cased and the rest compared exactly (NFC),
and text that is not one mailbox refused. The same table of pairs runs
against the three ways an application signs people in: the auth adapter, the
platform's repository and fastapi-users' user database, on memory and on a
folder. Then the account takeover the old rule allowed, end to end through
fastapi-users' ``oauth_callback(associate_by_email=True)``, and the review
of a folder written by hutch under the old rule.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson
import pytest
from fastapi_users import BaseUserManager
from hypothesis import given
from hypothesis import strategies as st

import hutch
import hutch.backends.file
import hutch.backends.memory
import hutch.contrib.fastapi_users
import hutch.plugins.auth
import hutch.plugins.platform
from hutch.contrib.fastapi_users import FastAPIUser, HutchIDMixin, HutchUserDatabase
from hutch.plugins.auth import AuthAdapter
from hutch.plugins.platform import (
    EmailClash,
    PlatformRepositories,
    User,
    UserRepository,
    email_key,
    normalise_email,
)
from hutch.plugins.platform.email_review import USERS_REVIEWED, Address
from hutch.plugins.platform.emails import (
    _PLAIN_ADDRESS,
    _PLAIN_DOMAIN,
    EMAIL_RULE,
    _a_label,
    _key,
    legacy_email_key,
)

FIXTURE = Path(__file__).parent / "data" / "email_rule_1"

#: Pairs that are one mailbox: either finds the user made with the other, and takes its place.
SAME = [
    ("ada@example.org", "ADA@EXAMPLE.ORG"),
    ("ada@example.org", "  Ada@Example.org\n"),
    ("ada@example.org", "ada@example.org."),  # the root's dot
    ("ada@example.org", "ada@example\u3002org"),  # an ideographic full stop between labels
    ("ada@example.org", "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org"),  # full-width domain
    ("ceo@straße.de", "ceo@xn--strae-oqa.de"),  # U-label and A-label of one domain
    ("ceo@straße.de", "ceo@XN--STRAE-OQA.DE"),
    ("ceo@straße.de", "ceo@STRAẞE.DE"),  # UTS 46 maps the capital sharp s to ß, not ss
    ("eve@bücher.example", "eve@BÜCHER.example"),
    ("eve@bücher.example", "eve@bu\u0308cher.example"),  # decomposed ü
    ("josé@example.org", "jose\u0301@example.org"),  # NFC: one text in two encodings
    ("JOSÉ@example.org", "josÉ@example.org"),  # ASCII letters fold, É stays É
    ("ada@example.org", "\u3000ada@example.org\u00a0"),  # spaces around, of any kind
]

#: Pairs that are two mailboxes: neither finds the other, and both can sign up.
DIFFERENT = [
    ("ceo@straße.de", "ceo@strasse.de"),  # two domains, registered separately
    ("ceo@\u03b1\u03c2.gr", "ceo@\u03b1\u03c3.gr"),  # final sigma is not sigma in a domain
    ("straße@example.org", "strasse@example.org"),  # nor is ß ss before the @
    ("äda@example.org", "ÄDA@example.org"),  # only ASCII letters fold
    ("\uff21da@example.org", "ada@example.org"),  # a full-width A is not an A
    ("o\ufb03ce@example.org", "office@example.org"),  # nor a ligature its letters
    ("ada@example.org", "ada@example.com"),
    ("a.da@example.org", "ada@example.org"),  # what a provider ignores is its own rule
    ("ada+news@example.org", "ada@example.org"),
    ("ceo@xn--strae-oqa.de", "ceo@strasse.de"),
]

#: Text that is not one mailbox, refused everywhere.
REFUSED = [
    "ada\u200b@example.org",  # zero-width space
    "ada\u200d@example.org",  # zero-width joiner
    "ada@exam\u00adple.org",  # soft hyphen, which IDNA would silently drop
    "\ufeffada@example.org",  # byte-order mark
    "ada\u202e@example.org",  # right-to-left override
    "ada\u2060@example.org",  # word joiner
    "ada\ufe0f@example.org",  # variation selector
    "ada\u3164@example.org",  # Hangul filler
    "ada\U000e0041@example.org",  # a tag character
    "ada\x00@example.org",
    "\x1cada@example.org",  # a control character is refused even where spaces are trimmed
    "ada@example.org\x85",
    "ada@example.org\u2028",  # a line separator
    "ada@0x7f.0x1",  # read as an IPv4 address by URL parsers
    "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".org",  # 310 characters: past RFC 5321's 254
    "ad a@example.org",
    "ada\u3000x@example.org",  # an ideographic space inside
    '"ada"@example.org',
    '"a@b"@example.org',
    "ada@b@example.org",
    "ada(comment)@example.org",
    ".ada@example.org",
    "ada.@example.org",
    "a..da@example.org",
    "ada@[192.0.2.1]",
    "ada@192.0.2.1",
    "ada@-example.org",
    "ada@exa_mple.org",
    "ada@example..org",
    "ada@xn--zz.org",  # an A-label that decodes to nothing valid
    "ada@" + "x" * 64 + ".org",  # a label longer than 63
    "x" * 65 + "@example.org",
    "@example.org",
    "ada@",
    "ada",
    "",
]


# -- the rule itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), SAME)
def test_one_mailbox_has_one_key(first: str, second: str) -> None:
    assert email_key(first) == email_key(second)


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_two_mailboxes_have_two_keys(first: str, second: str) -> None:
    assert email_key(first) != email_key(second)


@pytest.mark.parametrize("text", REFUSED)
def test_what_is_not_one_mailbox_is_refused(text: str) -> None:
    with pytest.raises(hutch.ValidationError, match="invalid email") as raised:
        email_key(text)
    assert raised.value.errors["email"]


def test_the_old_rule_took_two_domains_for_one() -> None:
    assert legacy_email_key("ceo@straße.de") == legacy_email_key("ceo@strasse.de")
    assert email_key("ceo@straße.de") == "ceo@xn--strae-oqa.de"


def test_a_key_is_its_own_key() -> None:
    for first, second in SAME + DIFFERENT:
        for text in (first, second):
            key = email_key(text)
            assert email_key(key) == key


LDH = string.ascii_letters + string.digits + "-"
ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"


@given(st.text(alphabet=LDH + ".", min_size=1, max_size=80))
def test_the_plain_domain_shortcut_agrees_with_idna(domain: str) -> None:
    """Lower-case LDH domains skip the IDNA library; both paths must give one answer."""
    if not _PLAIN_DOMAIN(domain.lower()):
        return
    assert _a_label(domain).removesuffix(".") == domain.lower()  # idna accepts it, unchanged


@given(
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=70),
    st.text(alphabet=LDH + ".", min_size=1, max_size=260),
)
def test_the_plain_address_shortcut_agrees_with_the_full_rule(local: str, domain: str) -> None:
    """An address one regular expression passes has the key the rule, checked in full, gives."""
    address = f"{local}@{domain}"
    try:
        key = _key(address)
    except hutch.ValidationError:
        assert not _PLAIN_ADDRESS(address)
        return
    if _PLAIN_ADDRESS(address):
        assert key == address.lower()


# -- three front doors ----------------------------------------------------------------------------


class Door(Protocol):
    """One way an application registers and finds people by email."""

    def create(self, email: str) -> str: ...
    def find(self, email: str) -> str | None: ...


class AdapterDoor:
    def __init__(self, db: hutch.Database) -> None:
        self.auth = AuthAdapter(db)

    def create(self, email: str) -> str:
        return self.auth.create_user(email=email).id

    def find(self, email: str) -> str | None:
        user = self.auth.get_user_by_email(email)
        return None if user is None else user.id


class PlatformDoor:
    def __init__(self, db: hutch.Database) -> None:
        self.users = PlatformRepositories.of(db).users

    def create(self, email: str) -> str:
        return self.users.create(email=email).id

    def find(self, email: str) -> str | None:
        user = self.users.find_by_email(email)
        return None if user is None else user.id


class FastAPIUsersDoor:
    def __init__(self, db: hutch.Database) -> None:
        self.users = HutchUserDatabase(db)

    def create(self, email: str) -> str:
        return asyncio.run(self.users.create({"email": email, "hashed_password": "h"})).id

    def find(self, email: str) -> str | None:
        user = asyncio.run(self.users.get_by_email(email))
        return None if user is None else user.id


DOORS: dict[str, Callable[[hutch.Database], Door]] = {
    "adapter": AdapterDoor,
    "platform": PlatformDoor,
    "fastapi-users": FastAPIUsersDoor,
}
PLUGINS: list[object] = [hutch.backends.memory, hutch.backends.file, "platform", "auth"]


@pytest.fixture(params=["memory", "file"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[hutch.Database]:
    url = "memory://" if request.param == "memory" else str(tmp_path / "data")
    with hutch.open(url, plugins=PLUGINS) as opened:
        yield opened


@pytest.fixture(params=list(DOORS))
def door(request: pytest.FixtureRequest, db: hutch.Database) -> Door:
    return DOORS[request.param](db)


@pytest.mark.parametrize(("first", "second"), SAME)
def test_one_mailbox_is_one_user(door: Door, db: hutch.Database, first: str, second: str) -> None:
    user_id = door.create(first)
    assert door.find(second) == user_id
    assert door.find(first) == user_id
    with pytest.raises(hutch.IntegrityError, match="must be unique"):
        door.create(second)
    assert db.store.get_row_ids("users") == [user_id]


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_two_mailboxes_are_two_users(
    door: Door, db: hutch.Database, first: str, second: str
) -> None:
    first_id = door.create(first)
    assert door.find(second) is None
    second_id = door.create(second)
    assert first_id != second_id
    assert (door.find(first), door.find(second)) == (first_id, second_id)


@pytest.mark.parametrize("text", REFUSED)
def test_an_address_that_is_not_one_mailbox_is_refused(
    door: Door, db: hutch.Database, text: str
) -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        door.create(text)
    assert "email" in raised.value.errors or "*" in raised.value.errors  # "*": not even a@b
    assert door.find(text) is None
    assert not db.store.has_table("users")


def test_an_address_is_stored_as_given_trimmed_and_nfc(door: Door, db: hutch.Database) -> None:
    user_id = door.create("  Jose\u0301@Bücher.Example ")
    assert db.store.get_cell("users", user_id, "email") == "José@Bücher.Example"


def test_changing_an_address_follows_the_rule(db: hutch.Database) -> None:
    users = PlatformRepositories.of(db).users
    ada = users.create(email="ada@example.org")
    users.create(email="ceo@straße.de")
    assert users.update(ada.id, email="ADA@example.org.").email == "ADA@example.org."
    with pytest.raises(hutch.IntegrityError, match="must be unique"):
        users.update(ada.id, email="ceo@xn--strae-oqa.de")
    with pytest.raises(hutch.ValidationError, match="invisible"):
        users.update(ada.id, email="ada\u200b@example.org")
    assert users.update(ada.id, email="ceo@strasse.de").email == "ceo@strasse.de"


# -- the takeover, end to end ---------------------------------------------------------------------


class UserManager(HutchIDMixin, BaseUserManager[FastAPIUser, str]):
    reset_password_token_secret = "not used by these tests, but fastapi-users wants one"
    verification_token_secret = "not used by these tests, but fastapi-users wants one"


def test_an_oauth_account_at_another_domain_is_not_linked_by_email(db: hutch.Database) -> None:
    """The attack: a GitHub account verified for ceo@strasse.de signs in, associate_by_email on."""
    user_db = HutchUserDatabase(db)
    manager = UserManager(user_db)

    async def scenario() -> tuple[FastAPIUser, FastAPIUser, FastAPIUser]:
        victim = await user_db.create({"email": "ceo@straße.de", "hashed_password": "h"})
        attacker = await manager.oauth_callback(
            "github", "gho_attacker", "9001", "ceo@strasse.de", associate_by_email=True
        )
        owner = await manager.oauth_callback(  # the victim's own account does link
            "github", "gho_victim", "1", "CEO@STRAẞE.DE", associate_by_email=True
        )
        return victim, attacker, owner

    victim, attacker, owner = asyncio.run(scenario())
    assert attacker.id != victim.id
    assert attacker.email == "ceo@strasse.de"
    assert [a.account_id for a in attacker.oauth_accounts] == ["9001"]
    assert owner.id == victim.id
    assert [a.account_id for a in owner.oauth_accounts] == ["1"]


# -- a store written under the old rule -----------------------------------------------------------


def read_tables(root: Path) -> dict[str, dict[str, Any]]:
    """Every record of a folder, read straight from its files (not through hutch)."""
    return {
        folder.name: {p.stem: orjson.loads(p.read_bytes()) for p in folder.glob("*.json")}
        for folder in root.iterdir()
        if folder.is_dir() and not folder.name.startswith("_")
    }


@pytest.fixture
def old_folder(tmp_path: Path) -> Path:
    """A copy of a folder hutch wrote under email rule 1 (see tests/data/email_rule_1.py)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "data"))


def victim_id(db: hutch.Database) -> str:
    (found,) = [
        i for i, row in db.store.get_table("users").items() if row["email"] == "ceo@straße.de"
    ]
    return found


def test_a_store_of_the_old_rule_is_reviewed_once_and_nothing_is_changed(
    old_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = read_tables(old_folder)
    caplog.set_level(logging.INFO, logger="hutch.platform")
    with hutch.open(old_folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        assert db.store.get_value(USERS_REVIEWED) is None
        review = AuthAdapter(db).users.email_review
        assert review is not None
        assert db.store.get_value(USERS_REVIEWED) == EMAIL_RULE

        def address(row_id: str) -> Address:
            return Address("users", row_id, db.store.get_cell("users", row_id, "email"))

        assert set(review.clashes) == {
            EmailClash((address("bob"), address("bob-dot")), "current"),
            EmailClash((address("eve"), address("eve-a-label")), "current"),
            EmailClash((address("raw-1"), address("raw-2")), "legacy", mailboxes=2),
        }
        invalid = {found.address.row_id: found.reason for found in review.invalid}
        assert invalid.keys() == {"zoe", "quoted"}
        assert invalid["zoe"].startswith("it holds an invisible character (U+200B")
        assert invalid["quoted"].startswith("a quoted local part")
        links = HutchUserDatabase(db).email_review
        assert links is not None
        ((link,),) = [links.clashes]
        victim = victim_id(db)
        user, account = link.addresses
        assert (user, link.rule) == (Address("users", victim, "ceo@straße.de"), "legacy")
        assert (account.collection, account.email) == ("oauth_accounts", "ceo@strasse.de")

        # Until a person decides, ambiguous addresses sign nobody in; others work as before.
        users = PlatformRepositories.of(db).users
        with pytest.raises(hutch.IntegrityError, match="share the mailbox"):
            users.find_by_email("bob@example.org")
        assert users.find_by_email("ceo@strasse.de") is None
        assert users.find_by_email("CEO@straße.de") == users.get(victim)
        assert users.get("zoe") is not None  # refused for new writes, still readable...
        assert users.update("zoe", name="Zoe").name == "Zoe"  # ...and changeable
        # The owner of the other domain can sign up at last.
        assert users.create(email="ceo@strasse.de").email == "ceo@strasse.de"

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for found in ("'bob-dot'", "'ceo@strasse.de'", "'zoe\\u200b@example.org'"):
        assert found in logged
    assert "nothing was merged, deleted or changed" in logged
    after = read_tables(old_folder)
    assert set(after.pop("users")) - set(before["users"]) == {after_user(old_folder)}
    assert after == {name: rows for name, rows in before.items() if name != "users"}

    caplog.clear()
    with hutch.open(old_folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        assert AuthAdapter(db).users.email_review is None
        assert HutchUserDatabase(db).email_review is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def after_user(root: Path) -> str:
    """The one user the test above created: the owner of ceo@strasse.de."""
    (found,) = [
        p.stem
        for p in (root / "users").glob("*.json")
        if orjson.loads(p.read_bytes())["email"] == "ceo@strasse.de"
    ]
    return found


def test_users_stay_as_they_were_apart_from_the_test_s_own_writes(old_folder: Path) -> None:
    before = read_tables(old_folder)["users"]
    with hutch.open(old_folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        assert PlatformRepositories.of(db).users.email_review
    assert read_tables(old_folder)["users"] == before


def test_a_new_store_is_recorded_under_the_rule_by_its_first_user(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with hutch.open(folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        user_db = HutchUserDatabase(db)
        assert db.store.get_value(USERS_REVIEWED) is None

        async def sign_up() -> None:
            ada = await user_db.create({"email": "ada@example.org", "hashed_password": "h"})
            link = {"oauth_name": "github", "access_token": "t", "account_id": "1"}
            await user_db.add_oauth_account(ada, {**link, "account_email": "ada@example.org"})

        asyncio.run(sign_up())
        assert db.store.get_value(USERS_REVIEWED) == EMAIL_RULE
    with hutch.open(folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        assert PlatformRepositories.of(db).users.email_review is None
        assert HutchUserDatabase(db).email_review is None


def test_a_newer_rule_recorded_in_the_store_is_not_undone(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with hutch.open(folder, plugins=[hutch.backends.file, *PLUGINS[2:]]) as db:
        db.store.set_row("users", "u1", {"email": "ada@example.org"})
        db.store.set_value(USERS_REVIEWED, EMAIL_RULE + 1)
        assert db.repo(User).get("u1") is not None
        assert db.store.get_value(USERS_REVIEWED) == EMAIL_RULE + 1


@pytest.mark.parametrize("recorded", [None, "2", 1, 2.0, [2]])
def test_a_missing_or_garbled_record_means_a_review(recorded: object) -> None:
    with hutch.open("memory://", plugins=PLUGINS) as db:
        db.store.set_row("users", "u1", {"email": "ada@example.org"})
        db.store.set_row("users", "u2", {"email": "ADA@example.org."})
        if recorded is not None:
            db.store.set_value(USERS_REVIEWED, recorded)
        review = db.repo(User, UserRepository).email_review
        assert review is not None
        assert [([a.row_id for a in c.addresses], c.rule) for c in review.clashes] == [
            (["u1", "u2"], "current")
        ]
        assert db.store.get_value(USERS_REVIEWED) == EMAIL_RULE


def test_a_group_sharing_a_mailbox_is_one_finding_with_every_member() -> None:
    with hutch.open("memory://", plugins=PLUGINS) as db:
        for row_id, email in [
            ("u1", "ss@x.de"),
            ("u2", "ß@x.de"),
            ("u3", "SS@x.de"),
            ("u4", "ẞ@x.de"),
        ]:
            db.store.set_row("users", row_id, {"email": email})
        review = db.repo(User, UserRepository).email_review
        assert review is not None
        found = {
            (tuple(a.row_id for a in c.addresses), c.rule, c.mailboxes) for c in review.clashes
        }
        assert found == {
            (("u1", "u3"), "current", 1),
            (("u1", "u2", "u3", "u4"), "legacy", 3),  # ss and SS are one of the three
        }
        assert "are 3 under the current one" in str(review.clashes[1])


def test_a_repository_made_inside_a_transaction_leaves_the_review_to_the_next_open(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    plugins = [hutch.backends.file, *PLUGINS[2:]]
    with hutch.open(folder, plugins=plugins) as db:
        db.store.set_row("users", "u1", {"email": "ada@example.org"})
        db.store.set_row("users", "u2", {"email": "ada@example.org."})
    with hutch.open(folder, plugins=plugins) as db:

        def made_in_a_transaction_that_rolls_back() -> None:
            with db.store.transaction():
                assert db.repo(User, UserRepository).email_review is None  # not now...
                raise RuntimeError("the application's transaction rolls back")

        with pytest.raises(RuntimeError):
            made_in_a_transaction_that_rolls_back()
        assert db.store.get_value(USERS_REVIEWED) is None
    with hutch.open(folder, plugins=plugins) as db:
        review = db.repo(User, UserRepository).email_review  # ...but at the next open
        assert review is not None
        assert len(review.clashes) == 1


def test_a_refused_address_is_quoted_shortened() -> None:
    with pytest.raises(hutch.ValidationError) as raised:
        email_key("\u200b" + "a" * 100_000 + "@example.org")
    assert len(str(raised.value)) < 300


def test_the_review_reports_rows_whose_email_is_not_text_and_lists_big_groups_briefly() -> None:
    with hutch.open("memory://", plugins=PLUGINS) as db:
        db.store.set_row("users", "n1", {"email": 42})
        db.store.set_row("users", "n2", {"name": "no email"})
        for number in range(25):
            db.store.set_row(
                "users", f"u{number:02}", {"email": "ada@example.org" + "." * (number % 2)}
            )
        review = db.repo(User, UserRepository).email_review
        assert review is not None
        assert [(i.address.row_id, i.reason) for i in review.invalid] == [
            ("n1", "the email is a value of type int, not text"),
            ("n2", "there is no email"),
        ]
        (clash,) = review.clashes
        assert len(clash.addresses) == 25
        assert str(clash).count("users 'u") == 10
        assert "and 15 more are one mailbox" in str(clash)
        with pytest.raises(hutch.IntegrityError, match="'u00', 'u01', 'u02' and 22 more"):
            db.repo(User, UserRepository).find_by_email("ada@example.org")


@pytest.mark.parametrize("given", [5, None, b"ada@example.org"])
def test_normalising_something_that_is_not_text_is_a_validation_error(given: object) -> None:
    with pytest.raises(hutch.ValidationError, match="expected text"):
        normalise_email(given)  # type: ignore[arg-type]
