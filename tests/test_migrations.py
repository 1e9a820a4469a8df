"""Changing a model over the years: rows read and updated across versions of a model, migrations
that run once per store (however many processes open it at once) and roll back whole, and code
older than the store kept from writing to it during a rolling deploy.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from children import WAIT, Child, run_in_step

import hutch
from hutch.backends import memory as memory_backend
from hutch.models import spec_of

DURABLE = ["file", "jsonl", "sqlite"]
BACKENDS = ["memory", *DURABLE]
STAMP = "2024-05-01T12:00:00+00:00"
ROOT = Path(__file__).resolve().parent.parent


def url_of(backend: str, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return f"{backend}://{tmp_path / 'data'}"


def stored(**cells: Any) -> dict[str, Any]:
    """A row as an earlier version of the application stored it (timestamps included)."""
    return {"created_at": STAMP, "updated_at": STAMP, **cells}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reopen(backend: str, tmp_path: Path) -> Iterator[Callable[..., hutch.Database]]:
    """Open the test's store (again): the same memory database each time, or the folder/file."""
    opened: list[hutch.Database] = []
    kept: list[hutch.Database] = []

    def open_again(**options: Any) -> hutch.Database:
        if backend == "memory":
            if not kept:
                kept.append(hutch.open("memory://", plugins=[memory_backend], **options))
            return kept[0]
        for db in opened:
            db.close()
        opened.append(hutch.open(url_of(backend, tmp_path), **options))
        return opened[-1]

    yield open_again
    for db in opened + kept:
        db.close()


# -- models: one collection as several versions of an application describe it -----------------


@attrs.frozen
class Address:
    street: str
    city: str = ""


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    """Version 1: a colour, spelt the British way."""

    __collection__ = "paints"

    name: str
    colour: str = ""


@attrs.frozen(kw_only=True)
class PaintNoColour(hutch.Model):
    """Version 1 with the colour dropped and a size added: no migration needed."""

    __collection__ = "paints"

    name: str
    size: int = 0
    shop: Address | None = None


@attrs.frozen(kw_only=True)
class PaintStrict(hutch.Model):
    """A field with no default, which rows written before it lack."""

    __collection__ = "paints"

    name: str
    litres: int


def rename_colour(row: dict[str, Any]) -> dict[str, Any]:
    if "colour" in row:  # (a row already renamed stays as it is)
        row["color"] = row.pop("colour")
    return row


@attrs.frozen(kw_only=True)
class PaintV2(hutch.Model):
    """Version 2: the colour renamed, by a migration."""

    __collection__ = "paints"
    __migrations__ = (hutch.Migration(2, "rename colour to color", rename_colour),)

    name: str
    color: str = ""


# -- reading and updating rows another version wrote ------------------------------------------


def test_a_stored_field_the_model_no_longer_has_is_ignored_on_read(
    reopen: Callable[..., hutch.Database],
) -> None:
    db = reopen()
    db.store.set_row("paints", "p1", stored(name="red", colour="red", size=3))
    db = reopen()
    paints = db.repo(PaintNoColour)
    paint = paints.get("p1")
    assert paint is not None
    assert (paint.name, paint.size, paint.shop) == ("red", 3, None)
    assert [p.id for p in paints.find(size=3)] == ["p1"]
    assert paints.count_by("size") == {3: 1}


def test_an_update_keeps_the_cells_the_model_does_not_have(
    reopen: Callable[..., hutch.Database],
) -> None:
    db = reopen()
    shop = {"street": "1 High St", "city": "Leeds", "country": "UK"}  # country: a newer field
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson", shop=shop))
    paints = reopen().repo(PaintNoColour)
    updated = paints.update("p1", name="scarlet", size=2)
    assert updated.name == "scarlet"
    row = reopen().store.get_row("paints", "p1")
    assert row is not None
    assert row["colour"] == "crimson"  # a field only another version knows: kept
    assert row["shop"] == shop  # a nested field the model does not know, in a cell left alone
    assert (row["name"], row["size"]) == ("scarlet", 2)
    assert row["updated_at"] != STAMP


def test_create_writes_only_the_models_fields(reopen: Callable[..., hutch.Database]) -> None:
    paint = reopen().repo(PaintNoColour).create(name="blue")
    row = reopen().store.get_row("paints", paint.id)
    assert row is not None
    assert sorted(row) == ["created_at", "name", "shop", "size", "updated_at"]


def test_a_new_field_takes_its_default_and_an_update_stores_it(
    reopen: Callable[..., hutch.Database],
) -> None:
    db = reopen()
    db.store.set_row("paints", "p1", stored(name="red"))
    paints = reopen().repo(PaintNoColour)
    assert paints.get("p1").size == 0  # type: ignore[union-attr]
    paints.update("p1", name="scarlet")
    row = reopen().store.get_row("paints", "p1")
    assert row is not None
    assert (row["size"], row["shop"]) == (0, None)  # the defaults read, now stored


def test_a_field_without_default_missing_from_a_row_says_how_to_fix_it(
    db: hutch.Database,
) -> None:
    db.store.set_row("paints", "p1", stored(name="red"))
    with pytest.raises(hutch.ValidationError) as caught:
        db.repo(PaintStrict).get("p1")
    assert caught.value.errors == {"litres": "required field missing"}
    message = str(caught.value)
    for part in ("paints", "'p1'", "litres", "default", "migration", "docs/models.md#migrations"):
        assert part in message


def test_a_value_that_does_not_fit_a_retyped_field_says_how_to_fix_it(
    db: hutch.Database,
) -> None:
    db.store.set_row("paints", "p1", stored(name="red", litres="two"))
    with pytest.raises(hutch.ValidationError) as caught:
        db.repo(PaintStrict).get("p1")
    assert list(caught.value.errors) == ["litres"]
    message = str(caught.value)
    for part in ("paints", "'p1'", "litres", "migration", "docs/models.md#migrations"):
        assert part in message


def test_two_versions_updating_one_row_keep_each_others_fields(
    tmp_path: Path, several_opens: None
) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as older, hutch.open(url) as newer:
        old, new = older.repo(Paint), newer.repo(PaintNoColour)
        paint = old.create(name="red", colour="crimson")
        new.update(paint.id, size=5)
        old.update(paint.id, name="scarlet")
        new.update(paint.id, shop=Address(street="1 High St"))
        assert old.get(paint.id).colour == "crimson"  # type: ignore[union-attr]
        assert new.get(paint.id).size == 5  # type: ignore[union-attr]
    with hutch.open(url) as db:
        row = db.store.get_row("paints", paint.id)
    assert row is not None
    assert (row["name"], row["colour"], row["size"]) == ("scarlet", "crimson", 5)


# -- declaring migrations -----------------------------------------------------------------------


def keep(row: dict[str, Any]) -> dict[str, Any]:
    return row


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: hutch.Migration(1, "first", keep), "version 1 is the model as first written"),
        (lambda: hutch.Migration(0, "zero", keep), "whole number above 1"),
        (lambda: hutch.Migration(True, "a bool", keep), "whole number"),
        (lambda: hutch.Migration("2", "text", keep), "whole number"),  # type: ignore[arg-type]
        (lambda: hutch.Migration(2, " ", keep), "description"),
        (lambda: hutch.Migration(2, "neither"), "one of them"),
        (lambda: hutch.Migration(2, "both", keep, run=print), "not both"),
        (lambda: hutch.Migration(2, "not callable", "rename"), "must be a function"),  # type: ignore[arg-type]
    ],
)
def test_a_wrong_migration_is_a_definition_error(make: Callable[[], object], says: str) -> None:
    with pytest.raises(hutch.DefinitionError, match=says):
        make()


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ((hutch.Migration(3, "b", keep), hutch.Migration(2, "a", keep)), "oldest first"),
        ((hutch.Migration(2, "a", keep), hutch.Migration(2, "again", keep)), "each version once"),
        ((keep,), "tuple of hutch.Migration"),
        (hutch.Migration(2, "a", keep), "tuple of hutch.Migration"),
    ],
)
def test_migrations_must_be_listed_oldest_first(declared: object, says: str) -> None:
    @attrs.frozen(kw_only=True)
    class Wrong(hutch.Model):
        __collection__ = "wrong"
        __migrations__ = declared  # type: ignore[assignment]

    with pytest.raises(hutch.DefinitionError, match=says):
        spec_of(Wrong)


def test_a_models_schema_version_is_that_of_its_last_migration(db: hutch.Database) -> None:
    assert spec_of(Paint).version == 1
    assert spec_of(PaintV2).version == 2
    db.store.set_row("paints", "p1", stored(name="red"))
    assert db.schema_version("paints") == 1
    db.repo(PaintV2)
    assert db.schema_version("paints") == 2
    with pytest.raises(hutch.InvalidId):
        db.schema_version("no such/collection")


def test_a_new_store_gets_nothing_written_by_models_at_version_1(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.repo(Paint)
        assert db.store.get_values() == {}
        assert db.schema_version("paints") == 1


def test_a_model_records_its_version_as_it_registers_even_with_no_rows(
    tmp_path: Path, several_opens: None
) -> None:
    """Else, during a rolling deploy, old workers would go on writing rows of the old shape,
    which the new ones cannot read."""
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("other", "x", {"a": 1})  # a store, with nothing in paints
    with hutch.open(url, plugins=[PaintsPlugin()]) as new:
        assert new.schema_version("paints") == 2
        applied = new.store.get_value("hutch.migrations.paints")
        assert [a["version"] for a in applied] == [2]
        with (
            hutch.open(url) as old,
            pytest.raises(hutch.SchemaMismatch, match="migrated to schema version 2"),
        ):
            old.repo(Paint).create(id="red", name="red", colour="crimson")
        assert new.repo(PaintV2).all() == []
    with hutch.open(url) as db:
        assert db.store.get_value("hutch.schema.paints") == 2


def test_a_store_step_runs_as_its_model_registers_even_with_no_rows_yet(
    db: hutch.Database,
) -> None:
    def adopt_legacy(db: hutch.Database) -> None:
        for row_id, row in db.store.get_table("legacy_paints").items():
            db.store.set_row("paints", row_id, row)
        db.store.del_table("legacy_paints")

    @attrs.frozen(kw_only=True)
    class Adopting(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (hutch.Migration(2, "adopt the legacy paints", run=adopt_legacy),)

        name: str

    db.store.set_row("legacy_paints", "p1", stored(name="red"))
    assert [p.name for p in db.repo(Adopting).all()] == ["red"]
    assert not db.store.has_table("legacy_paints")
    assert db.schema_version("paints") == 2


@attrs.frozen(kw_only=True)
class PaintSquashed(hutch.Model):
    """PaintV2 some releases later: the rename removed from the list, its version kept."""

    __collection__ = "paints"
    __schema_version__ = 2

    name: str
    color: str = ""


@attrs.frozen(kw_only=True)
class PaintSquashedLater(hutch.Model):
    """Version 3 of PaintSquashed: migrations kept from version 3 on."""

    __collection__ = "paints"
    __schema_version__ = 3
    __migrations__ = (hutch.Migration(3, "upper-case names", lambda row: {**row, "name": "X"}),)

    name: str
    color: str = ""


def test_a_model_may_declare_its_version_once_older_migrations_are_removed(
    tmp_path: Path,
) -> None:
    assert spec_of(PaintSquashed).version == 2
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
        db.repo(PaintV2)  # the release that still had the rename
    with hutch.open(url) as db:
        squashed = db.repo(PaintSquashed)  # a later one, at the same version: nothing to run
        assert db.schema_version("paints") == 2
        squashed.create(id="p2", name="blue", color="navy")
        assert [p.color for p in squashed.all()] == ["crimson", "navy"]


def test_rows_older_than_the_migrations_a_model_keeps_are_refused(tmp_path: Path) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    with hutch.open(url) as db:
        with pytest.raises(hutch.MigrationError) as caught:
            db.repo(PaintSquashedLater)
        for part in ("at schema version 1", "start from version 2", "a release that still"):
            assert part in str(caught.value)
        with pytest.raises(hutch.MigrationError, match="start from version 2"):
            db.migrate(PaintSquashedLater, dry_run=True)
        assert db.store.get_row("paints", "p1") == stored(name="red", colour="crimson")
        assert db.schema_version("paints") == 1
    with hutch.open(url) as db:
        db.repo(PaintV2)  # the older release migrates to 2; from there, the later one goes on
    with hutch.open(url, migrate=False) as db:
        assert db.migrate(PaintSquashedLater) == [hutch.Migrated("paints", 3, "upper-case names")]
        assert db.store.get_row("paints", "p1") == stored(name="X", color="crimson")


def test_a_collection_without_rows_takes_the_version_a_model_declares(
    db: hutch.Database,
) -> None:
    db.repo(PaintSquashed)
    assert db.schema_version("paints") == 2


@pytest.mark.parametrize("declared", ["2", 1, 2.0])
def test_a_declared_version_is_a_whole_number_no_older_than_the_last_migration(
    declared: object,
) -> None:
    @attrs.frozen(kw_only=True)
    class Wrong(hutch.Model):
        __collection__ = "paints"
        __schema_version__ = declared  # type: ignore[assignment]
        __migrations__ = PaintV2.__migrations__

    with pytest.raises(hutch.DefinitionError, match=r"__schema_version__ is .*at least .*\(2\)"):
        spec_of(Wrong)


# -- running them -------------------------------------------------------------------------------


def counted(calls: list[str], step: Callable[[dict[str, Any]], Any]) -> Any:
    def counting(row: dict[str, Any]) -> Any:
        calls.append(row.get("name", "?"))
        return step(row)

    return counting


def test_migrations_run_once_as_the_model_registers_and_are_recorded(
    reopen: Callable[..., hutch.Database],
) -> None:
    calls: list[str] = []

    @attrs.frozen(kw_only=True)
    class Counted(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (
            hutch.Migration(2, "rename colour to color", counted(calls, rename_colour)),
        )

        name: str
        color: str = ""

    db = reopen()
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    db.store.set_row("paints", "p2", stored(name="blue", colour="navy"))
    paints = reopen().repo(Counted)
    assert calls == ["red", "blue"]
    assert [p.color for p in paints.all()] == ["crimson", "navy"]
    db = reopen()
    assert db.store.get_row("paints", "p1") == stored(name="red", color="crimson")
    assert db.store.get_value("hutch.schema.paints") == 2
    applied = db.store.get_value("hutch.migrations.paints")
    assert [(a["version"], a["description"]) for a in applied] == [(2, "rename colour to color")]
    db.repo(Counted)
    assert db.migrate(Counted) == []
    assert calls == ["red", "blue"]  # never again, in this process or another open


def test_a_step_returning_none_deletes_the_row(db: hutch.Database) -> None:
    @attrs.frozen(kw_only=True)
    class Named(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (
            hutch.Migration(2, "drop the unnamed", lambda row: row if row.get("name") else None),
        )

        name: str

    db.store.set_row("paints", "p1", stored(name="red"))
    db.store.set_row("paints", "p2", stored(name=""))
    assert [p.id for p in db.repo(Named).all()] == ["p1"]


def test_a_migration_writes_only_the_rows_it_changes(db: hutch.Database) -> None:
    heard: list[hutch.Changes] = []
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    db.store.set_row("paints", "p2", stored(name="blue", color="navy"))  # already the new shape
    db.store.add_listener(heard.append)

    db.repo(PaintV2)
    assert len(heard) == 1
    assert sorted(heard[0].tables["paints"]) == ["p1"]
    assert sorted(heard[0].values) == ["hutch.migrations.paints", "hutch.schema.paints"]


def boom_on_blue(row: dict[str, Any]) -> dict[str, Any]:
    if row["name"] == "blue":
        raise KeyError("shade")
    return rename_colour(row)


@attrs.frozen(kw_only=True)
class PaintBroken(hutch.Model):
    __collection__ = "paints"
    __migrations__ = (
        hutch.Migration(2, "rename colour to color", rename_colour),
        hutch.Migration(3, "add a shade", boom_on_blue),
    )

    name: str
    color: str = ""


def test_a_failing_step_rolls_every_step_back_and_names_itself(
    reopen: Callable[..., hutch.Database],
) -> None:
    db = reopen()
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    db.store.set_row("paints", "p2", stored(name="blue", colour="navy"))
    before = db.store.get_table("paints")
    db = reopen()
    with pytest.raises(hutch.MigrationError) as caught:
        db.repo(PaintBroken)
    message = str(caught.value)
    for part in ("paints", "version 3", "'add a shade'", "row 'p2'", "KeyError", "rolled back"):
        assert part in message
    assert isinstance(caught.value.__cause__, KeyError)
    assert db.store.get_table("paints") == before  # version 2's rename too
    assert db.schema_version("paints") == 1
    with pytest.raises(hutch.MigrationError, match="version 3"):
        db.repo(PaintBroken).create(name="green")  # still pending: tried again, refused again
    db = reopen()
    assert db.store.get_table("paints") == before
    assert db.store.get_values() == {}


def test_a_step_must_return_a_row_or_none(db: hutch.Database) -> None:
    @attrs.frozen(kw_only=True)
    class Listed(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (hutch.Migration(2, "make a list", list),)  # type: ignore[arg-type]

        name: str

    db.store.set_row("paints", "p1", stored(name="red"))
    with pytest.raises(hutch.MigrationError, match="returned a list"):
        db.repo(Listed)
    assert db.store.get_row("paints", "p1") == stored(name="red")


def test_rows_a_migration_leaves_unreadable_roll_it_back(db: hutch.Database) -> None:
    @attrs.frozen(kw_only=True)
    class Litres(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (
            hutch.Migration(2, "litres as text", lambda row: {**row, "litres": str(row["litres"])}),
        )

        name: str
        litres: int

    db.store.set_row("paints", "p1", stored(name="red", litres=2))
    with pytest.raises(hutch.MigrationError) as caught:
        db.repo(Litres)
    message = str(caught.value)
    for part in ("paints", "version 2", "'litres as text'", "'p1'", "litres", "rolled back"):
        assert part in message
    assert db.store.get_row("paints", "p1") == stored(name="red", litres=2)


def split_addresses(db: hutch.Database) -> None:
    store = db.store
    for row_id in store.get_row_ids("people"):
        row = store.get_row("people", row_id)
        assert row is not None
        street = row.pop("street")
        store.set_row("addresses", f"a-{row_id}", stored(person_id=row_id, street=street))
        store.set_row("people", row_id, row)


def test_a_run_step_splits_a_collection_in_the_same_transaction(
    reopen: Callable[..., hutch.Database],
) -> None:
    @attrs.frozen(kw_only=True)
    class Person(hutch.Model):
        __collection__ = "people"
        __migrations__ = (hutch.Migration(2, "addresses apart", run=split_addresses),)

        name: str

    @attrs.frozen(kw_only=True)
    class PersonBroken(hutch.Model):
        __collection__ = "people"
        __migrations__ = (
            *Person.__migrations__,
            hutch.Migration(3, "fails", lambda row: {**row, "share": 1 / 0}),
        )

        name: str

    db = reopen()
    db.store.set_row("people", "ada", stored(name="Ada", street="1 High St"))
    db = reopen()
    with pytest.raises(hutch.MigrationError, match="ZeroDivisionError"):
        db.repo(PersonBroken)
    assert not db.store.has_table("addresses")  # the split of version 2 rolled back with 3
    db = reopen()
    assert [p.name for p in db.repo(Person).all()] == ["Ada"]
    assert db.store.get_row("people", "ada") == stored(name="Ada")
    assert db.store.get_row("addresses", "a-ada") == stored(person_id="ada", street="1 High St")


def test_migrate_false_leaves_them_to_db_migrate(reopen: Callable[..., hutch.Database]) -> None:
    db = reopen(migrate=False)
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    db = reopen(migrate=False)
    paints = db.repo(PaintV2)
    assert db.schema_version("paints") == 1
    with pytest.raises(hutch.SchemaMismatch, match=r"pending migrations: 2\): run db\.migrate"):
        paints.create(name="blue")
    would = db.migrate(dry_run=True)
    assert would == [hutch.Migrated("paints", 2, "rename colour to color")]
    assert db.store.get_row("paints", "p1") == stored(name="red", colour="crimson")
    assert db.migrate() == would
    assert str(would[0]) == "paints to version 2: rename colour to color"
    assert db.migrate() == []
    assert paints.get("p1").color == "crimson"  # type: ignore[union-attr]
    paints.create(name="blue")


def test_with_hutch_open_migrate_must_be_a_flag() -> None:
    with pytest.raises(hutch.ConfigError, match="migrate must be True or False"):
        hutch.open("memory://", migrate="no")  # type: ignore[arg-type]


def test_a_read_only_store_runs_no_migration_but_says_what_would_run(
    tmp_path: Path,
) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    with hutch.open(url, read_only=True) as db:
        paints = db.repo(PaintV2)
        assert paints.get("p1").color == ""  # type: ignore[union-attr]
        assert db.migrate(dry_run=True) == [hutch.Migrated("paints", 2, "rename colour to color")]
        with pytest.raises(hutch.ReadOnlyStorage, match="migrate"):
            db.migrate()
    with hutch.open(url) as db:
        assert db.store.get_values() == {}


def test_a_model_registered_in_a_transaction_that_rolls_back_migrates_at_its_first_write(
    db: hutch.Database,
) -> None:
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))

    def register_then_fail() -> None:
        with db.store.transaction():
            db.repo(PaintV2)
            raise RuntimeError("the caller's own failure")

    with pytest.raises(RuntimeError):
        register_then_fail()
    assert db.schema_version("paints") == 1
    db.repo(PaintV2).create(name="blue")
    assert db.schema_version("paints") == 2
    assert db.repo(PaintV2).get("p1").color == "crimson"  # type: ignore[union-attr]


class PaintsPlugin:
    @hutch.hookimpl
    def hutch_register_models(self, register: Callable[[type[hutch.Model]], None]) -> None:
        register(PaintV2)


def test_a_plugins_models_migrate_as_the_database_opens(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    with hutch.open(url, plugins=[PaintsPlugin()]) as db:
        assert db.store.get_row("paints", "p1") == stored(name="red", color="crimson")
        assert db.schema_version("paints") == 2


@pytest.mark.parametrize("junk", ["2", 2.0, True, 0, {"version": 2}, None])
def test_a_damaged_schema_version_is_corrupt_data(db: hutch.Database, junk: object) -> None:
    db.store.set_value("hutch.schema.paints", junk)
    with pytest.raises(hutch.CorruptData, match=r"'hutch\.schema\.paints'.*set it to the version"):
        db.repo(PaintV2)
    with pytest.raises(hutch.CorruptData, match="schema version of paints"):
        db.repo(Paint).create(name="red")
    with pytest.raises(hutch.CorruptData, match="schema version of paints"):
        db.schema_version("paints")
    assert not db.store.has_table("paints")


def test_a_damaged_migration_history_is_corrupt_data(db: hutch.Database) -> None:
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    db.store.set_value("hutch.migrations.paints", {"2": "done"})
    with pytest.raises(hutch.CorruptData, match=r"'hutch\.migrations\.paints'.*set it to \[\]"):
        db.repo(PaintV2)
    assert db.store.get_row("paints", "p1") == stored(name="red", colour="crimson")
    assert db.schema_version("paints") == 1


# -- rolling deploys ----------------------------------------------------------------------------


def test_code_older_than_the_store_reads_but_may_not_write(
    tmp_path: Path, several_opens: None
) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as older:
        old = older.repo(Paint)
        red = old.create(name="red", colour="crimson")
        with hutch.open(url) as newer:
            new = newer.repo(PaintV2)  # migrates
            blue = new.create(name="blue", color="navy")
        before = older.store.get_table("paints")
        older.refresh()
        assert [p.name for p in old.all()] == ["red", "blue"]  # reads work; colour: the default
        assert older.store.get_row("paints", red.id) == {
            **{k: v for k, v in before[red.id].items() if k != "colour"},
            "color": "crimson",
        }
        for write in (
            lambda: old.create(name="green"),
            lambda: old.update(red.id, colour="ruby"),
            lambda: old.delete(blue.id),
        ):
            with pytest.raises(hutch.SchemaMismatch) as caught:
                write()
            message = str(caught.value)
            for part in ("paints", "version 2", "Paint knows version 1", "deploy the newer"):
                assert part in message
        assert [p.name for p in old.all()] == ["red", "blue"]
    with hutch.open(url) as db:
        assert [p.color for p in db.repo(PaintV2).all()] == ["crimson", "navy"]


@attrs.frozen(kw_only=True)
class Shop(hutch.Model):
    __collection__ = "shops"
    name: str


@attrs.frozen(kw_only=True)
class Stock(hutch.Model):
    __collection__ = "stock"
    __relations__ = (hutch.Relation("shop_id", "shops", on_delete="cascade"),)
    shop_id: str


@attrs.frozen(kw_only=True)
class StockV2(hutch.Model):
    __collection__ = "stock"
    __relations__ = (hutch.Relation("shop_id", "shops", on_delete="cascade"),)
    __migrations__ = (hutch.Migration(2, "count the stock", lambda row: {**row, "count": 0}),)
    shop_id: str
    count: int


def test_older_code_may_not_cascade_into_a_newer_collection(
    tmp_path: Path, several_opens: None
) -> None:
    url = url_of("file", tmp_path)
    with hutch.open(url) as older:
        shops = older.repo(Shop)
        shop = shops.create(name="corner")
        older.repo(Stock).create(shop_id=shop.id)
        with hutch.open(url) as newer:
            newer.repo(Shop)
            newer.repo(StockV2)  # migrates stock, not shops
        with pytest.raises(hutch.SchemaMismatch, match="stock was migrated to schema version 2"):
            shops.delete(shop.id)
        assert shops.exists(shop.id)
        assert older.store.get_row_count("stock") == 1


OLD_WORKER = """\
import os, sys
import attrs
import hutch


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    __collection__ = "paints"
    name: str
    colour: str = ""


def say(text):
    os.write(1, (text + "\\n").encode())


db = hutch.open(sys.argv[1])
paints = db.repo(Paint)
say("ready")
for line in sys.stdin:
    command, *args = line.split()
    try:
        if command == "create":
            paints.create(id=args[0], name=args[1], colour=args[2])
        elif command == "update":
            paints.update(args[0], name=args[1])
        elif command == "read":
            db.refresh()  # (the follower takes others' commits in within 50 ms; now, here)
            say(" ".join(f"{p.id}={p.name}/{p.colour or '-'}" for p in paints.all()))
            continue
        elif command == "close":
            db.close()
            say("closed")
            break
        say("ok")
    except hutch.SchemaMismatch as error:
        say(f"refused: {error}")
"""

NEW_WORKER = """\
import os, sys
import attrs
import hutch


def rename(row):
    if "colour" in row:  # (a row already renamed stays as it is)
        row["color"] = row.pop("colour")
    return row


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    __collection__ = "paints"
    __migrations__ = (hutch.Migration(2, "rename colour to color", rename),)
    name: str
    color: str = ""


db = hutch.open(sys.argv[1])
paints = db.repo(Paint)
os.write(1, f"ready {db.schema_version('paints')}\\n".encode())
paints.create(id="n1", name="new", color="teal")
paints.update("o1", name="renamed")
db.close()
os.write(1, b"done\\n")
"""


@pytest.mark.parametrize("backend", DURABLE)
def test_an_old_and_a_new_worker_on_one_store(backend: str, tmp_path: Path) -> None:
    url = url_of(backend, tmp_path)
    (tmp_path / "old.py").write_text(OLD_WORKER, encoding="utf-8")
    (tmp_path / "new.py").write_text(NEW_WORKER, encoding="utf-8")
    old = Child("old", [sys.executable, str(tmp_path / "old.py"), url], tmp_path / "old.err")
    try:
        old.expect("ready")
        for command in ("create o1 first red", "create o2 second blue"):
            old.send(command)
            old.expect("ok")
        new = Child("new", [sys.executable, str(tmp_path / "new.py"), url], tmp_path / "new.err")
        try:
            new.expect("ready 2")  # it migrated as it opened, while the old worker runs
            new.expect("done")
        finally:
            new.end()
        old.send("read")  # reads go on: what the new worker wrote, and renamed, included
        old.expect("n1=new/- o1=renamed/- o2=second/-")
        for command in ("create o3 third green", "update o2 again"):
            old.send(command)
            said = old.read()
            assert said.startswith("refused: paints was migrated to schema version 2"), said
            assert "deploy the newer version" in said
        old.send("close")
        old.expect("closed")
    finally:
        old.end()
    with hutch.open(url) as db:
        rows = db.store.get_table("paints")
    assert {row_id: (row["name"], row["color"]) for row_id, row in rows.items()} == {
        "n1": ("new", "teal"),
        "o1": ("renamed", "red"),
        "o2": ("second", "blue"),
    }
    assert all("colour" not in row for row in rows.values())


OPENER = """\
import os, sys
import attrs
import hutch


def bump(row):
    row["n"] += 1
    return row


def note(db):
    db.store.set_row("runs", f"r{os.getpid()}", {"pid": os.getpid()})


@attrs.frozen(kw_only=True)
class Counter(hutch.Model):
    __collection__ = "counters"
    __migrations__ = (
        hutch.Migration(2, "count one more", bump),
        hutch.Migration(3, "note who ran it", run=note),
    )
    n: int


os.write(1, b"ready\\n")
sys.stdin.readline()
with hutch.open(sys.argv[1]) as db:
    db.repo(Counter)
os.write(1, b"done\\n")
"""


@pytest.mark.parametrize("backend", DURABLE)
def test_processes_opening_a_store_at_once_run_each_migration_once(
    backend: str, tmp_path: Path
) -> None:
    url = url_of(backend, tmp_path)
    with hutch.open(url) as db, db.store.transaction():
        for i in range(20):
            db.store.set_row("counters", f"c{i}", stored(n=i))
    script = tmp_path / "opener.py"
    script.write_text(OPENER, encoding="utf-8")
    run_in_step([[sys.executable, str(script), url] for _ in range(4)])
    with hutch.open(url) as db:
        assert {r: row["n"] for r, row in db.store.get_table("counters").items()} == {
            f"c{i}": i + 1 for i in range(20)
        }
        assert db.store.get_row_count("runs") == 1
        assert db.schema_version("counters") == 3
        applied = db.store.get_value("hutch.migrations.counters")
    assert [a["version"] for a in applied] == [2, 3]


# -- the command --------------------------------------------------------------------------------


PLUGIN = """\
import attrs
import hutch


def rename(row):
    if "colour" in row:  # (a row already renamed stays as it is)
        row["color"] = row.pop("colour")
    return row


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    __collection__ = "paints"
    __migrations__ = (hutch.Migration(2, "rename colour to color", rename),)
    name: str
    color: str = ""


@hutch.hookimpl
def hutch_register_models(register):
    register(Paint)
"""


@pytest.fixture
def paints_plugin(tmp_path: Path) -> dict[str, str]:
    """A distribution on PYTHONPATH whose ``paints`` plugin registers a model with a migration."""
    site = tmp_path / "site"
    info = site / "hutch_paints-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hutch-paints\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("[hutch]\npaints = hutch_paints\n", encoding="utf-8")
    (site / "hutch_paints.py").write_text(PLUGIN, encoding="utf-8")
    return {**os.environ, "PYTHONPATH": str(site)}


def hutch_command(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    import subprocess

    done = subprocess.run(
        [str(Path(sys.executable).with_name("hutch")), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_hutch_migrate_says_what_would_run_then_runs_it(
    tmp_path: Path, paints_plugin: dict[str, str]
) -> None:
    url = url_of("sqlite", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    code, out, err = hutch_command(
        "--plugin", "paints", "migrate", "--dry-run", url, env=paints_plugin, cwd=tmp_path
    )
    assert code == 0, err
    assert "would run" in out
    assert "paints to version 2: rename colour to color" in out
    with hutch.open(url) as db:
        assert db.store.get_row("paints", "p1") == stored(name="red", colour="crimson")
    code, out, err = hutch_command(
        "--plugin", "paints", "migrate", "--json", url, env=paints_plugin, cwd=tmp_path
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["ran"] == [
        {"collection": "paints", "version": 2, "description": "rename colour to color"}
    ]
    assert data["collections"] == {"paints": {"store": 2, "model": 2}}
    code, out, err = hutch_command(
        "--plugin", "paints", "migrate", url, env=paints_plugin, cwd=tmp_path
    )
    assert code == 0, err
    assert "Nothing to migrate" in out
    with hutch.open(url) as db:
        assert db.store.get_row("paints", "p1") == stored(name="red", color="crimson")


def test_hutch_migrate_with_no_models_says_how_to_name_them(tmp_path: Path) -> None:
    url = url_of("sqlite", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red"))
    code, _, err = hutch_command("migrate", url, env=dict(os.environ), cwd=tmp_path)
    assert code == 1
    assert "--plugin" in err


def test_the_example_shows_migrations_at_work(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "migrations.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    assert "refused" in done.stdout
    assert "paints to version 2" in done.stdout
    assert textwrap.dedent(done.stdout).strip()


# -- threads ------------------------------------------------------------------------------------


def to_pence(row: dict[str, Any]) -> dict[str, Any]:
    row["price"] = round(row.get("price", 0) * 100)
    return row


@attrs.frozen(kw_only=True)
class PricedV1(hutch.Model):
    __collection__ = "priced"
    name: str
    price: float = 0.0


@attrs.frozen(kw_only=True)
class PricedV2(hutch.Model):
    __collection__ = "priced"
    __migrations__ = (hutch.Migration(2, "prices in pence", to_pence),)
    name: str
    price: int = 0


@pytest.mark.parametrize("migrate", [False, True], ids=["deploy step", "automatic"])
def test_a_write_while_another_thread_waits_to_migrate_is_checked(
    tmp_path: Path, migrate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the thread that runs a migration, inside its transaction, writes unchecked."""

    url = url_of("file", tmp_path)
    with hutch.open(url) as db:
        db.repo(PricedV1).create(id="red", name="red", price=4.5)
    with hutch.open(url, migrate=migrate) as db:
        if migrate:  # registered, its migration rolled back with the caller's transaction
            with contextlib.suppress(RuntimeError), db.store.transaction():
                db.repo(PricedV2)
                raise RuntimeError
        repo = db.repo(PricedV2)
        assert db.schema_version("priced") == 1
        store = db.store
        waiting = threading.Event()
        take_locks = store._take_locks

        def take_locks_said() -> None:
            waiting.set()  # the migrating thread is at the write lock, which the test holds
            take_locks()

        monkeypatch.setattr(store, "_take_locks", take_locks_said)
        ran: list[list[hutch.Migrated]] = []
        migrating = threading.Thread(target=lambda: ran.append(db.migrate()))
        with store.transaction():
            migrating.start()
            assert waiting.wait(WAIT)
            if migrate:  # this write runs the migrations itself, then writes
                repo.create(id="blue", name="blue", price=300)
            else:
                with pytest.raises(hutch.SchemaMismatch, match="pending migrations: 2"):
                    repo.create(id="blue", name="blue", price=300)
        migrating.join(WAIT)
        assert ran == [[]] if migrate else [[hutch.Migrated("priced", 2, "prices in pence")]]
        assert repo.get("red").price == 450  # type: ignore[union-attr]
        if migrate:
            assert repo.get("blue").price == 300  # type: ignore[union-attr]
        else:
            assert not repo.exists("blue")


# -- what a migration must leave ----------------------------------------------------------------


def test_a_migration_must_leave_every_row_readable_not_only_those_it_wrote(
    db: hutch.Database,
) -> None:
    @attrs.frozen(kw_only=True)
    class Sized(hutch.Model):
        __collection__ = "paints"
        __migrations__ = (hutch.Migration(2, "add a size (but forget to)", keep),)

        name: str
        size: int

    db.store.set_row("paints", "p1", stored(name="red"))
    with pytest.raises(hutch.MigrationError) as caught:
        db.repo(Sized)
    message = str(caught.value)
    for part in ("'add a size (but forget to)'", "'p1'", "size: required field", "rolled back"):
        assert part in message
    assert db.schema_version("paints") == 1
    assert db.models.models() == []


def test_a_store_step_must_leave_the_rows_it_writes_elsewhere_readable(
    db: hutch.Database,
) -> None:
    def spoil_the_shops(db: hutch.Database) -> None:
        db.store.set_cell("shops", "s1", "name", 5)

    @attrs.frozen(kw_only=True)
    class Audit(hutch.Model):
        __collection__ = "audits"
        __migrations__ = (hutch.Migration(2, "spoil the shops", run=spoil_the_shops),)

    db.repo(Shop).create(id="s1", name="corner")
    with pytest.raises(hutch.MigrationError, match=r"'s1' of shops, which Shop cannot read"):
        db.repo(Audit)
    assert db.repo(Shop).get("s1").name == "corner"  # type: ignore[union-attr]
    assert db.schema_version("audits") == 1


def test_a_store_step_may_write_through_its_own_models_repository(db: hutch.Database) -> None:
    def seed(db: hutch.Database) -> None:
        db.repo(Seeded).create(id="first", name="first")

    @attrs.frozen(kw_only=True)
    class Seeded(hutch.Model):
        __collection__ = "seeded"
        __unique__ = ("name",)
        __migrations__ = (hutch.Migration(2, "seed", run=seed),)

        name: str

    assert [s.id for s in db.repo(Seeded).all()] == ["first"]
    assert db.schema_version("seeded") == 2
    with pytest.raises(hutch.IntegrityError, match="unique"):
        db.repo(Seeded).create(name="first")


def test_a_failing_store_step_leaves_the_models_it_registered_unknown(
    db: hutch.Database,
) -> None:
    def seed_then_fail(db: hutch.Database) -> None:
        db.repo(Seeding).create(id="first", name="first")
        raise ValueError("out of seeds")

    @attrs.frozen(kw_only=True)
    class Seeding(hutch.Model):
        __collection__ = "seeding"
        __migrations__ = (hutch.Migration(2, "seed", run=seed_then_fail),)

        name: str

    with pytest.raises(hutch.MigrationError, match="out of seeds"):
        db.repo(Seeding)
    assert db.models.models() == []
    assert not db.store.has_table("seeding")


def test_the_error_of_a_migration_run_by_another_is_raised_as_it_is(db: hutch.Database) -> None:
    def fail(db: hutch.Database) -> None:
        raise ValueError("no")

    @attrs.frozen(kw_only=True)
    class Broken(hutch.Model):
        __collection__ = "broken"
        __migrations__ = (hutch.Migration(2, "fails", run=fail),)

    def use_broken(db: hutch.Database) -> None:
        db.repo(Broken)

    @attrs.frozen(kw_only=True)
    class Using(hutch.Model):
        __collection__ = "using"
        __migrations__ = (hutch.Migration(2, "uses broken", run=use_broken),)

    with pytest.raises(hutch.MigrationError) as caught:
        db.repo(Using)
    assert isinstance(caught.value.__cause__, ValueError)
    assert str(caught.value).count("failed") == 1
    assert "broken to version 2" in str(caught.value)
    assert db.models.models() == []


def test_a_dry_run_registers_nothing(db: hutch.Database) -> None:
    db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
    assert db.migrate(PaintV2, dry_run=True) == [
        hutch.Migrated("paints", 2, "rename colour to color")
    ]
    assert db.models.models() == []
    assert db.repo(PaintV2).get("p1").color == "crimson"  # type: ignore[union-attr]
    assert db.schema_version("paints") == 2


def test_a_cascade_into_a_collection_whose_migrations_are_pending_runs_them_first(
    db: hutch.Database,
) -> None:
    shops = db.repo(Shop)
    shop = shops.create(name="corner")
    db.repo(StockV2)
    with db.store.transaction():  # as a restore of an older backup, by another process, would
        db.store.set_row("stock", "st1", stored(shop_id=shop.id))
        db.store.del_value("hutch.schema.stock")
    assert shops.delete(shop.id)
    assert db.store.get_row_count("stock") == 0
    assert db.schema_version("stock") == 2


# -- the record travels with the collection ---------------------------------------------------


def cli_run(*args: str, code: int = 0) -> str:
    from click.testing import CliRunner

    from hutch.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def priced_store(url: str) -> None:
    """A store whose ``priced`` collection was migrated to version 2 (4.50 became 450)."""
    with hutch.open(url) as db:
        db.repo(PricedV1).create(id="red", name="red", price=4.5)
        db.store.set_value("setting", 1)
    with hutch.open(url) as db:
        assert db.repo(PricedV2).get("red").price == 450  # type: ignore[union-attr]


def assert_migrated_once(url: str) -> None:
    with hutch.open(url) as db:
        assert db.schema_version("priced") == 2
        assert db.repo(PricedV2).get("red").price == 450  # type: ignore[union-attr]
        assert "setting" not in db.store.get_values()


def test_a_copy_of_some_collections_carries_their_schema_record(tmp_path: Path) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    priced_store(src)
    cli_run("copy", "--collections", "priced", src, dst)
    assert_migrated_once(dst)


def test_an_export_of_some_collections_carries_their_schema_record(tmp_path: Path) -> None:
    src, dst, out = str(tmp_path / "src"), str(tmp_path / "dst"), str(tmp_path / "out")
    priced_store(src)
    cli_run("export", src, out, "--collections", "priced")
    cli_run("import", out, dst)
    assert_migrated_once(dst)
    with hutch.open(dst) as db:
        db.store.set_value("kept", 1)
    cli_run("import", out, dst, "--replace")
    assert_migrated_once(dst)
    with hutch.open(dst) as db:
        assert db.store.get_value("kept") == 1  # the export's collections alone were replaced


def test_a_collection_written_over_takes_the_schema_record_of_what_is_written(
    tmp_path: Path,
) -> None:
    """A store holding nothing but a version record takes a copy, and the rows copied keep the
    version they are at: here 1, so they migrate at the next open."""
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    with hutch.open(src) as db:
        db.repo(PricedV1).create(id="red", name="red", price=4.5)
    with hutch.open(dst) as db:
        db.repo(PricedV2)
        assert db.schema_version("priced") == 2  # and no row
    cli_run("copy", "--collections", "priced", src, dst)
    with hutch.open(dst) as db:
        assert db.schema_version("priced") == 1  # as the rows copied are
        assert db.repo(PricedV2).get("red").price == 450  # type: ignore[union-attr]
        assert db.schema_version("priced") == 2


# -- the command, for an application's own models ------------------------------------------------


SHOP_MODELS = """\
import attrs
import hutch


def rename(row):
    if "colour" in row:  # (a row already renamed stays as it is)
        row["color"] = row.pop("colour")
    return row


@attrs.frozen(kw_only=True)
class Paint(hutch.Model):
    __collection__ = "paints"
    __migrations__ = (hutch.Migration(2, "rename colour to color", rename),)
    name: str
    color: str = ""


@attrs.frozen(kw_only=True)
class Brush(hutch.Model):
    __collection__ = "brushes"
    size: int


MODELS = [Paint]
Imported = hutch.Model  # not defined here: not one of its models
"""


@pytest.fixture
def shop_models(tmp_path: Path) -> str:
    """A store, and beside it (in the working folder) a module of an application's models."""
    (tmp_path / "shop_models.py").write_text(SHOP_MODELS, encoding="utf-8")
    url = url_of("sqlite", tmp_path)
    with hutch.open(url) as db:
        db.store.set_row("paints", "p1", stored(name="red", colour="crimson"))
        db.store.set_row("brushes", "b1", stored(size="big"))
    return url


@pytest.mark.parametrize("given", ["shop_models", "shop_models:Paint", "shop_models:MODELS"])
def test_hutch_migrate_takes_an_applications_own_models(
    tmp_path: Path, shop_models: str, given: str
) -> None:
    env = dict(os.environ)
    code, out, err = hutch_command("--models", given, "migrate", shop_models, env=env, cwd=tmp_path)
    assert code == 0, err
    assert "paints to version 2: rename colour to color" in out
    with hutch.open(shop_models) as db:
        assert db.store.get_row("paints", "p1") == stored(name="red", color="crimson")
    code, out, err = hutch_command("--models", given, "verify", shop_models, env=env, cwd=tmp_path)
    if given == "shop_models":  # Brush too, whose row does not fit
        assert code == 3, out
        assert "b1" in out
    else:
        assert code == 0, out


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("no_such_module", "cannot import no_such_module"),
        ("shop_models:Missing", "shop_models has no Missing"),
        ("shop_models:rename", "not a hutch.Model"),
        ("shop_models:", "module[:name]"),
    ],
)
def test_hutch_models_says_what_is_wrong(
    tmp_path: Path, shop_models: str, given: str, says: str
) -> None:
    code, _, err = hutch_command(
        "--models", given, "migrate", shop_models, env=dict(os.environ), cwd=tmp_path
    )
    assert code == 1
    assert says in err


def test_hutch_migrate_does_not_say_all_is_at_its_version_when_the_store_is_newer(
    tmp_path: Path, shop_models: str
) -> None:
    with hutch.open(shop_models) as db:
        db.store.set_value("hutch.schema.paints", 3)
    code, out, err = hutch_command(
        "--models", "shop_models:Paint", "migrate", shop_models, env=dict(os.environ), cwd=tmp_path
    )
    assert code == 0, err
    assert "newer than this code" in out
    assert "every collection" not in out


def _doubled(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "n": row.get("n", 0) * 2}


@attrs.frozen(kw_only=True)
class DoubledOrder(hutch.Model):
    __collection__ = "orders"
    __migrations__ = (hutch.Migration(2, "double n", _doubled),)

    n: int = 0


@attrs.frozen(kw_only=True)
class PlainUser(hutch.Model):
    __collection__ = "users"

    name: str = ""


def test_a_replacing_import_of_other_collections_keeps_this_ones_schema_record(
    tmp_path: Path,
) -> None:
    """Was: an import of users and the values with replace deleted every keyed value, the
    record of orders' schema too, so the next open ran orders' migration again (5 -> 10)."""
    from hutch import snapshots

    with hutch.open(tmp_path / "src") as source:
        source.repo(PlainUser).create(id="u1", name="a")
        source.store.set_value("setting", 1)
        snapshot = snapshots.snapshot_of(source)
    with hutch.open(tmp_path / "dst") as target:
        target.repo(DoubledOrder).create(id="o1", n=5)
    with hutch.open(tmp_path / "dst") as target:
        snapshots.write(target, snapshot, scope=snapshots.scope_of(snapshot), replace=True)
    with hutch.open(tmp_path / "dst") as target:
        order = target.repo(DoubledOrder).get("o1")
        assert order is not None
        assert order.n == 5
        assert target.store.get_value("setting") == 1
