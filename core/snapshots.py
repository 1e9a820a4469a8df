"""Whole stores as values: read one at a single commit point, hash it, write it into another.

What ``hutch copy``, ``export``, ``backup``, ``restore`` and ``verify`` share.
A store is read through a read-only open where the backend has one: its load
is one commit point (the backend makes sure of that while writers go on), and
with nothing following other processes' commits nothing changes after it.

A collection goes with the keyed values that record its schema version
(:func:`hutch.migrations.schema_keys`): a snapshot of some collections holds
them, and writing a collection replaces the target's record of it, so that its
rows are never taken for rows of another version (and migrated twice).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from hutch.cells import Row
from hutch.config import parse_url
from hutch.database import Database, capabilities_of
from hutch.database import open as open_database
from hutch.errors import HutchError
from hutch.ids import check_table_id
from hutch.migrations import is_schema_key, schema_keys
from hutch.persister import Snapshot

#: The name of the keyed values wherever a snapshot's parts are listed beside collections.
VALUES = "_values"


def open_reading(url: str | os.PathLike[str] | None, *, plugins: Iterable[object] = ()) -> Database:
    """Open ``url`` to read a snapshot: read-only where the backend can (it writes nothing,
    and its load is one commit point), else as usual; never following later commits."""
    read_only = capabilities_of(parse_url(url), plugins).read_only
    return open_database(url, read_only=read_only, follow=False, plugins=plugins)


def check_collections(names: Iterable[str]) -> list[str]:
    """Collection names a user gave (``--collections``), checked, in the order given."""
    return list(dict.fromkeys(check_table_id(name.strip()) for name in names))


def scope_of(snapshot: Snapshot) -> list[str]:
    """The part of a store ``snapshot`` covers, as :func:`write` takes it: its collections,
    and :data:`VALUES` if it holds values besides their schema records."""
    own = {key for name in snapshot.tables for key in schema_keys(name)}
    with_values = any(key not in own for key in snapshot.values)
    return [*snapshot.tables, *([VALUES] if with_values else [])]


def snapshot_of(db: Database, collections: Sequence[str] | None = None) -> Snapshot:
    """Everything ``db`` holds; only the named ``collections`` (with the values that record
    their schemas, and every value if :data:`VALUES` is among them), if they are named."""
    store = db.store
    with store.lock:  # one moment of the store, whatever else this process does
        names = store.get_table_ids() if collections is None else collections
        tables = {name: store.get_table(name) for name in names if store.has_table(name)}
        if collections is None or VALUES in collections:
            values = store.get_values()
        else:
            found = ((key, store.get_value(key, _ABSENT)) for n in tables for key in schema_keys(n))
            values = {key: value for key, value in found if value is not _ABSENT}
    return Snapshot(tables=tables, values=values)


_ABSENT: Any = object()


def row_count(snapshot: Snapshot) -> int:
    return sum(len(rows) for rows in snapshot.tables.values())


def collection_hash(rows: Mapping[str, Row]) -> str:
    """The SHA-256 of a collection in canonical form: one ``[id, row]`` JSON line per row,
    by id, keys sorted. Equal on every backend that holds equal rows."""
    digest = hashlib.sha256()
    for row_id in sorted(rows):
        digest.update(orjson.dumps([row_id, rows[row_id]], option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return digest.hexdigest()


def values_hash(values: Mapping[str, Any]) -> str:
    """The SHA-256 of the keyed values, in the canonical form of :func:`collection_hash`."""
    return collection_hash({key: {"value": value} for key, value in values.items()})


def hashes(snapshot: Snapshot) -> dict[str, str]:
    """The hash of each collection, and of the values under :data:`VALUES`."""
    found = {name: collection_hash(rows) for name, rows in sorted(snapshot.tables.items())}
    found[VALUES] = values_hash(snapshot.values)
    return found


def held(db: Database, scope: Sequence[str] | None = None) -> int:
    """How many rows and values ``db`` holds in ``scope`` (see :func:`write`); a record of a
    collection's schema is no value here (it goes with the collection's rows, if any)."""
    store = db.store
    names = store.get_table_ids() if scope is None else [n for n in scope if n != VALUES]
    count = sum(store.get_row_count(name) for name in names if store.has_table(name))
    if scope is None or VALUES in scope:
        count += sum(not is_schema_key(key) for key in store.get_values())
    return count


class NotEmpty(HutchError):
    """The target of :func:`write` holds something where the snapshot would go."""

    def __init__(self, url: str, held: int, scope: Sequence[str] | None) -> None:
        where = "it" if scope is None else ", ".join(scope)
        super().__init__(
            f"{url} is not empty ({held} rows and values in {where}); write into an empty "
            "store, or replace what it holds there"
        )
        self.held = held


def write(
    db: Database,
    snapshot: Snapshot,
    *,
    scope: Sequence[str] | None = None,
    replace: bool = False,
) -> None:
    """Write ``snapshot`` into ``db`` in one transaction: all of it, or nothing.

    ``scope`` is the part of ``db`` the snapshot stands for: all of it (``None``),
    or the collections named, and the keyed values if :data:`VALUES` is among
    them. The target must hold nothing there (else :class:`NotEmpty`; a record
    of a collection's schema alone is nothing) unless ``replace``: then what it
    held there is deleted first, so it ends holding exactly the snapshot there,
    and everything else as it was. Either way, the snapshot's records of its
    collections' schemas replace the target's.
    """
    store = db.store
    with store.transaction():  # (what it holds is counted under the write lock)
        target = held(db, scope)
        if target and not replace:
            raise NotEmpty(db.url, target, scope)
        names = store.get_table_ids() if scope is None else [n for n in scope if n != VALUES]
        if replace:
            for name in names:
                store.del_table(name)
            if scope is None or VALUES in scope:  # the values; the schema records: below
                for key in store.get_values():
                    if not is_schema_key(key):
                        store.del_value(key)
        if scope is None:  # what records each collection's schema is the snapshot's
            records = {key for key in store.get_values() if is_schema_key(key)}
            ours = None
        else:  # only the records of the collections written: others keep theirs
            ours = {key for name in {*names, *snapshot.tables} for key in schema_keys(name)}
            records = ours
        for key in records:
            store.del_value(key)
        for name, rows in snapshot.tables.items():
            for row_id, row in rows.items():
                store.set_row(name, row_id, row)
        for key, value in snapshot.values.items():
            if ours is None or not is_schema_key(key) or key in ours:
                store.set_value(key, value)
