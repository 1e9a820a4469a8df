"""Reviewing a store's addresses under the email rule, once, when the rule changed.

Version 1 of the rule compared NFKC + ``casefold()`` of the whole address,
which took ``ceo@straße.de`` and ``ceo@strasse.de`` (two domains) for one
mailbox; version 2 is :func:`~hutch.plugins.platform.emails.email_key`.
Indexes are rebuilt at every open, so lookups follow the current rule at once;
what the data itself may hold from the old rule is for people to judge:

- users the current rule takes for one mailbox (``a@x.org`` and ``a@x.org.``;
  a domain written as U-label and as A-label): the store cannot tell which one
  signs in, so ``find_by_email`` refuses to choose;
- users the old rule took for one mailbox (written straight to the store);
- an address linked to a user (an OAuth account's email) that the old rule
  matched to the user's own and the current rule does not: a link made by
  matching emails may have given one person's account to someone else;
- an address the current rule refuses (an invisible character, a quoted local part).

Each group of addresses that a rule takes for one mailbox is one
:class:`EmailClash`, which names them all: under the current rule, a group of
users sign-in cannot tell apart; under the old one, a group the current rule
splits into several mailboxes. The
review reports each finding (a warning on the ``hutch.platform`` logger and an
:class:`EmailReview`) and never merges, deletes or changes a row. A keyed
value records the rule the collection was reviewed under, so the review runs
once per store (in one transaction, which on a shared folder also makes it
once across processes); a collection first written under the current rule is
recorded as such by its first write and never reviewed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs

import hutch

from .emails import EMAIL_RULE, email_key, legacy_email_key

log = logging.getLogger("hutch.platform")

#: The keyed value recording the email rule ``users`` was last reviewed under.
USERS_REVIEWED = "hutch.platform.email_rule"
#: How many addresses of one clash a report line names.
_LISTED = 10


@attrs.frozen
class Address:
    """An email address found in a row (``""`` where the row holds no text there)."""

    collection: str
    row_id: str
    email: str

    def __str__(self) -> str:
        where = f"{self.collection} {self.row_id!r}"
        return f"{where} ({self.email!r})" if self.email else where  # repr shows invisibles


@attrs.frozen
class EmailClash:
    """Addresses (two or more) that ``rule`` takes for one mailbox.

    ``rule`` is ``"current"`` (sign-in by email can tell none of them apart) or
    ``"legacy"`` (the old rule, NFKC + casefold, took them for one; the current
    one sees ``mailboxes`` among them, more than one).
    """

    addresses: tuple[Address, ...]
    rule: Literal["current", "legacy"]
    mailboxes: int = 1

    def __str__(self) -> str:
        shown = [str(address) for address in self.addresses[:_LISTED]]
        if len(self.addresses) > _LISTED:
            shown.append(f"{len(self.addresses) - _LISTED} more")
        listed = f"{', '.join(shown[:-1])} and {shown[-1]}"
        if self.rule == "current":
            return (
                f"{listed} are one mailbox under the email rule: sign-in by email finds none "
                "of them until all but one address change"
            )
        return (
            f"{listed} were one mailbox under the old email rule (NFKC + casefold) and are "
            f"{self.mailboxes} under the current one: if they were matched by email, check "
            "that they are one person"
        )


@attrs.frozen
class InvalidAddress:
    """An address the email rule refuses, and why."""

    address: Address
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.address} is not a valid email under the email rule ({self.reason}): "
            "the user cannot be found by email until it changes"
        )


@attrs.frozen
class EmailReview:
    """What a review found; nothing was changed because of it."""

    clashes: tuple[EmailClash, ...] = ()
    invalid: tuple[InvalidAddress, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.clashes or self.invalid)

    def lines(self) -> list[str]:
        """One line a person can act on per finding."""
        return [str(finding) for finding in (*self.clashes, *self.invalid)]


def review_users(store: hutch.Store, collection: str = "users") -> EmailReview:
    """Users sharing a mailbox under either rule, and addresses the current rule refuses."""
    current: dict[str, list[Address]] = defaultdict(list)
    legacy: dict[str, list[Address]] = defaultdict(list)
    keys: dict[Address, str] = {}
    invalid = []
    for row_id, value in _values(store, collection, "email"):
        if not isinstance(value, str):
            invalid.append(InvalidAddress(Address(collection, row_id, ""), _not_text(value)))
            continue
        address = Address(collection, row_id, value)
        try:
            keys[address] = email_key(address.email)
            current[keys[address]].append(address)
        except hutch.ValidationError as error:
            invalid.append(InvalidAddress(address, error.errors["email"]))
        legacy[legacy_email_key(address.email)].append(address)
    clashes = [EmailClash(tuple(group), "current") for group in current.values() if group[1:]]
    for group in legacy.values():
        mailboxes = len({keys.get(address, address) for address in group})  # refused: one each
        if mailboxes > 1:
            clashes.append(EmailClash(tuple(group), "legacy", mailboxes))
    return EmailReview(tuple(clashes), tuple(invalid))


def review_linked(
    store: hutch.Store,
    collection: str,
    user_field: str,
    email_field: str,
    users: str = "users",
) -> EmailReview:
    """Addresses linked to a user that the old rule matched to the user's own, and this does not."""
    user_rows = store.get_table(users)
    clashes = []
    for row_id, email in _values(store, collection, email_field):
        if not isinstance(email, str):
            continue
        linked = Address(collection, row_id, email)
        user_id = store.get_cell(collection, row_id, user_field)
        user_email = user_rows.get(user_id, {}).get("email") if isinstance(user_id, str) else None
        if not isinstance(user_email, str):
            continue
        if legacy_email_key(linked.email) == legacy_email_key(user_email) and not _one_mailbox(
            linked.email, user_email
        ):
            clashes.append(EmailClash((Address(users, user_id, user_email), linked), "legacy", 2))
    return EmailReview(tuple(clashes))


def review_once(
    db: hutch.Database, recorded_as: str, collection: str, review: Callable[[], EmailReview]
) -> EmailReview | None:
    """Run ``review`` unless the value ``recorded_as`` says ``collection`` was; record and log it.

    Returns the review, or ``None`` if none was due. If the store cannot record
    it (a read-only file system, say), the review is still logged, and runs again
    at the next open. Called inside a transaction (the first repository made in
    one), it waits for the next open: the review must commit on its own, not
    with writes that may roll back.
    """
    store = db.store
    if store.owns_transaction() or _recorded(store, recorded_as):
        return None
    if not store.has_table(collection):
        return None
    found = None
    try:
        with store.transaction():  # starts from what other processes committed
            if _recorded(store, recorded_as) or not store.has_table(collection):
                return None
            found = review()
            store.set_value(recorded_as, EMAIL_RULE)
    except hutch.StorageError as error:
        log.warning(
            "could not record in %s that %s was reviewed under email rule %d (%s); "
            "the review runs again at the next open",
            db.url,
            collection,
            EMAIL_RULE,
            error,
        )
    if found is not None:
        _report(db, collection, found)
    return found


def record_if_first(store: hutch.Store, recorded_as: str, collection: str) -> None:
    """Inside the transaction of a collection's first write: its rows follow the current rule."""
    if not store.has_table(collection) and not _recorded(store, recorded_as):
        store.set_value(recorded_as, EMAIL_RULE)


def _recorded(store: hutch.Store, recorded_as: str) -> bool:
    rule = store.get_value(recorded_as)
    return type(rule) is int and rule >= EMAIL_RULE


def _report(db: hutch.Database, collection: str, review: EmailReview) -> None:
    if not review:
        log.info("%s: every address of %s follows email rule %d", db.url, collection, EMAIL_RULE)
        return
    for line in review.lines():
        log.warning("email review of %s: %s", db.url, line)
    log.warning(
        "email review of %s: %d finding(s) in %s under email rule %d; nothing was merged, "
        "deleted or changed (see docs/auth.md, 'Stores written under the old rule')",
        db.url,
        len(review.clashes) + len(review.invalid),
        collection,
        EMAIL_RULE,
    )


def _values(store: hutch.Store, collection: str, field: str) -> Iterator[tuple[str, Any]]:
    """Each row id of ``collection`` with its ``field`` (``None`` if missing), in id order."""
    if not store.has_table(collection):
        return
    for row_id, row in sorted(store.get_table(collection).items()):
        yield row_id, row.get(field)


def _not_text(value: object) -> str:
    if value is None:
        return "there is no email"
    return f"the email is a value of type {type(value).__name__}, not text"


def _one_mailbox(first: str, second: str) -> bool:
    try:
        return email_key(first) == email_key(second)
    except hutch.ValidationError:
        return False
