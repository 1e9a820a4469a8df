"""The persister protocol as the store drives it: begin/poll/apply/end, external changes, close."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hutch
from hutch import BackendConfig, Changes, Persister, Snapshot


class SharedPersister(Persister):
    """A backend shared with 'another process': the test queues what that process committed."""

    capabilities = hutch.Capabilities(durable=True, multi_process=True, change_feed=True)

    def __init__(self, config: BackendConfig) -> None:
        self.calls: list[str] = []
        self.elsewhere: list[Changes] = []
        self.applied: list[Changes] = []
        self.described: dict[str, hutch.Relationship] = {}

    def load(self) -> Snapshot:
        self.calls.append("load")
        return Snapshot(tables={"items": {"i1": {"n": 1}}}, values={"v": 1})

    def begin(self) -> None:
        self.calls.append("begin")

    def poll(self) -> Changes | None:
        self.calls.append("poll")
        return self.elsewhere.pop(0) if self.elsewhere else None

    def apply(self, changes: Changes) -> None:
        self.calls.append("apply")
        self.applied.append(changes)

    def end(self) -> None:
        self.calls.append("end")

    def describe_relationship(self, relationship_id: str, relationship: hutch.Relationship) -> None:
        self.calls.append("describe")
        self.described[relationship_id] = relationship

    def close(self) -> None:
        self.calls.append("close")


class Plugin:
    def __init__(self) -> None:
        self.persister: SharedPersister | None = None

    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("shared", self.make)

    def make(self, config: BackendConfig) -> SharedPersister:
        self.persister = SharedPersister(config)
        return self.persister


@pytest.fixture
def opened() -> Iterator[tuple[hutch.Database, SharedPersister]]:
    plugin = Plugin()
    with hutch.open("shared://", plugins=[plugin]) as db:
        assert plugin.persister is not None
        yield db, plugin.persister


def test_load_fills_the_store(opened: tuple[hutch.Database, SharedPersister]) -> None:
    db, _ = opened
    assert db.store.get_row("items", "i1") == {"n": 1}
    assert db.store.get_value("v") == 1
    assert db.capabilities.change_feed


def test_a_write_is_bracketed_and_starts_from_the_latest_state(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened
    persister.calls.clear()
    persister.elsewhere.append(Changes({"items": {"i1": {"n": 5}}}))
    with db.store.transaction():
        n = db.store.get_cell("items", "i1", "n")
        db.store.set_cell("items", "i1", "n", n + 1)
    # behind() is True by default: the store looks once more after its commit
    assert persister.calls == ["begin", "poll", "apply", "poll", "end"]
    assert persister.applied[-1].tables == {"items": {"i1": {"n": 6}}}


def test_refresh_takes_in_external_changes_everywhere(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened
    db.indexes.define("by_n", "items", "n")
    heard: list[Changes] = []
    db.store.add_listener(heard.append)
    persister.elsewhere.append(
        Changes({"items": {"i1": None, "i2": {"n": 2}}}, {"w": [1]}, frozenset({"v"}))
    )
    db.refresh()
    assert db.store.get_table("items") == {"i2": {"n": 2}}
    assert db.store.get_values() == {"w": [1]}
    assert db.indexes.slice_ids("by_n") == [2]
    assert len(heard) == 1
    assert heard[0].deleted_values == frozenset({"v"})
    assert persister.applied == []  # external changes are not written back


def test_refresh_inside_a_transaction_keeps_the_view_it_began_with(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened
    with db.store.transaction():
        persister.elsewhere.append(Changes({"items": {"i1": {"n": 9}}}))
        db.refresh()
        assert db.store.get_cell("items", "i1", "n") == 1
    db.refresh()
    assert db.store.get_cell("items", "i1", "n") == 9


def test_end_is_called_when_apply_fails(opened: tuple[hutch.Database, SharedPersister]) -> None:
    db, persister = opened

    def refuse(changes: Changes) -> None:
        raise OSError("read-only file system")

    persister.apply = refuse  # type: ignore[method-assign]
    persister.calls.clear()
    with pytest.raises(hutch.StorageError, match="read-only file system"):
        db.store.set_row("items", "i2", {"n": 2})
    assert persister.calls == ["begin", "poll", "end"]
    assert not db.store.has_row("items", "i2")


def test_a_transaction_that_changes_nothing_is_not_applied(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened
    with db.store.transaction():
        db.store.set_cell("items", "i1", "n", 2)
        db.store.set_cell("items", "i1", "n", 1)
    db.store.del_row("items", "absent")
    assert persister.applied == []


def test_close_closes_the_persister_once(opened: tuple[hutch.Database, SharedPersister]) -> None:
    db, persister = opened
    db.close()
    db.close()
    assert persister.calls.count("close") == 1
    assert db.closed
    assert "closed" in repr(db)
    with pytest.raises(hutch.ClosedError):
        db.refresh()


def test_a_defined_relationship_is_described_to_the_backend(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened
    db.relationships.define("item_owner", local="items", remote="owners", on="owner_id")
    assert persister.described["item_owner"] == hutch.Relationship("items", "owners", "owner_id")
    with db.store.transaction(), pytest.raises(hutch.DefinitionError, match="outside"):
        db.relationships.define("late", local="items", remote="owners", on="owner_id")
    assert "late" not in persister.described


def test_a_backend_that_cannot_describe_a_relationship_leaves_it_undefined(
    opened: tuple[hutch.Database, SharedPersister],
) -> None:
    db, persister = opened

    def refuse(relationship_id: str, relationship: hutch.Relationship) -> None:
        raise OSError("the schema is locked")

    persister.describe_relationship = refuse  # type: ignore[method-assign]
    with pytest.raises(hutch.StorageError, match=r"item_owner.*the schema is locked"):
        db.relationships.define("item_owner", local="items", remote="owners", on="owner_id")
    assert "item_owner" not in db.relationships
