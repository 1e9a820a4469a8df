"""Transactions: all or nothing, nesting, net changes, and a persister that fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hutch


class FlakyPersister(hutch.Persister):
    """A backend that records what it is given and raises on demand."""

    def __init__(self, config: hutch.BackendConfig) -> None:
        config.check_options()
        self.applied: list[hutch.Changes] = []
        self.fail_next: BaseException | None = None

    def load(self) -> hutch.Snapshot:
        return hutch.Snapshot()

    def apply(self, changes: hutch.Changes) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.applied.append(changes.copy())


class FlakyPlugin:
    """Registers ``flaky://`` and keeps the persisters it makes, so tests can reach them."""

    def __init__(self) -> None:
        self.persisters: list[FlakyPersister] = []

    def make(self, config: hutch.BackendConfig) -> hutch.Persister:
        persister = FlakyPersister(config)
        self.persisters.append(persister)
        return persister

    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("flaky", self.make)


class Boom(Exception):
    pass


Writes = Callable[[], object]


def in_transaction(store: hutch.Store, *writes: Writes) -> None:
    """Run ``writes`` in one transaction."""
    with store.transaction():
        for write in writes:
            write()


def fail_in_transaction(
    store: hutch.Store, *writes: Writes, error: BaseException | None = None
) -> None:
    """Run ``writes`` in one transaction, then raise ``error`` (a Boom) out of it."""
    with store.transaction():
        for write in writes:
            write()
        raise Boom() if error is None else error


@pytest.fixture
def plugin() -> FlakyPlugin:
    return FlakyPlugin()


@pytest.fixture
def db(plugin: FlakyPlugin) -> Iterator[hutch.Database]:
    database = hutch.open("flaky://", plugins=[plugin])
    yield database
    database.close()


@pytest.fixture
def store(db: hutch.Database) -> hutch.Store:
    return db.store


@pytest.fixture
def persister(db: hutch.Database, plugin: FlakyPlugin) -> FlakyPersister:
    (made,) = plugin.persisters
    return made


@pytest.fixture
def heard(store: hutch.Store) -> list[hutch.Changes]:
    changes: list[hutch.Changes] = []
    store.add_listener(changes.append)
    return changes


def contents(store: hutch.Store) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    return {t: store.get_table(t) for t in store.get_table_ids()}, store.get_values()


def seed(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"email": "a@x.io", "tags": ["a"]})
    store.set_row("users", "u2", {"email": "b@x.io"})
    store.set_row("teams", "t1", {"org": "o1"})
    store.set_value("k", 1)
    store.set_value("j", [1, 2])


SEEDED = (
    {
        "teams": {"t1": {"org": "o1"}},
        "users": {"u1": {"email": "a@x.io", "tags": ["a"]}, "u2": {"email": "b@x.io"}},
    },
    {"j": [1, 2], "k": 1},
)


def every_kind_of_write(store: hutch.Store) -> None:
    store.set_row("users", "u3", {"email": "c@x.io"})
    store.set_row("users", "u2", {"name": "Bea"})
    store.set_partial_row("users", "u1", {"age": 3})
    store.set_cell("users", "u1", "tags", ["b"])
    store.del_cell("users", "u1", "email")
    store.del_row("users", "u2")
    store.del_table("teams")
    store.set_value("k", 2)
    store.set_value("new", {"x": 1})
    store.del_value("j")


# -- all or nothing ----------------------------------------------------------------------------


def test_a_transaction_commits_all_its_writes(store: hutch.Store) -> None:
    seed(store)
    with store.transaction():
        every_kind_of_write(store)
    assert contents(store) == (
        {"users": {"u1": {"tags": ["b"], "age": 3}, "u3": {"email": "c@x.io"}}},
        {"k": 2, "new": {"x": 1}},
    )


def test_an_exception_rolls_back_every_kind_of_write_and_is_re_raised(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    seed(store)
    persister.applied.clear()
    heard.clear()
    with pytest.raises(Boom):
        fail_in_transaction(store, lambda: every_kind_of_write(store))
    assert contents(store) == SEEDED
    assert persister.applied == []
    assert heard == []


def test_an_exception_in_an_empty_store_leaves_it_empty(store: hutch.Store) -> None:
    with pytest.raises(Boom):
        fail_in_transaction(
            store,
            lambda: store.set_row("users", "u1", {"email": "a@x.io"}),
            lambda: store.set_value("k", 1),
        )
    assert contents(store) == ({}, {})
    assert not store.has_table("users")


def test_the_exception_is_re_raised_unchanged(store: hutch.Store) -> None:
    error = Boom("the original")
    with pytest.raises(Boom) as raised:
        fail_in_transaction(store, lambda: store.set_value("k", 1), error=error)
    assert raised.value is error


def test_a_base_exception_also_rolls_back(store: hutch.Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        fail_in_transaction(store, lambda: store.set_value("k", 1), error=KeyboardInterrupt())
    assert store.get_values() == {}


def test_rollback_restores_deep_copies_of_nested_rows(store: hutch.Store) -> None:
    store.set_row("users", "u1", {"tags": ["a"]})
    with pytest.raises(Boom):
        fail_in_transaction(store, lambda: store.set_row("users", "u1", {"tags": "none"}))
    row = store.get_row("users", "u1")
    assert row is not None
    row["tags"].append("b")
    assert store.get_row("users", "u1") == {"tags": ["a"]}


def test_rollback_of_del_table_restores_every_row(store: hutch.Store) -> None:
    seed(store)
    gone: list[bool] = []
    with pytest.raises(Boom):
        fail_in_transaction(
            store,
            lambda: store.del_table("users"),
            lambda: gone.append(not store.has_table("users")),
        )
    assert gone == [True]
    assert store.get_row_ids("users") == ["u1", "u2"]
    assert contents(store) == SEEDED


def test_the_store_is_usable_after_a_rollback(
    store: hutch.Store, heard: list[hutch.Changes]
) -> None:
    with pytest.raises(Boom):
        fail_in_transaction(store, lambda: store.set_value("k", 1))
    store.set_value("k", 2)
    assert store.get_value("k") == 2
    assert [c.values for c in heard] == [{"k": 2}]


def test_with_store_is_a_transaction(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    with store:
        store.set_value("a", 1)
        store.set_value("b", 2)
    with pytest.raises(Boom):
        fail_with_store(store)
    assert store.get_values() == {"a": 1, "b": 2}
    assert [c.values for c in persister.applied] == [{"a": 1, "b": 2}]
    assert len(heard) == 1


def fail_with_store(store: hutch.Store) -> None:
    with store:
        store.set_value("c", 3)
        raise Boom


def test_transaction_returns_the_store(store: hutch.Store) -> None:
    with store.transaction() as inside:
        assert inside is store


# -- reads inside a transaction ----------------------------------------------------------------


def test_reads_inside_a_transaction_see_its_own_writes(store: hutch.Store) -> None:
    seed(store)
    with store.transaction():
        store.set_row("users", "u3", {"email": "c@x.io"})
        store.del_row("users", "u2")
        store.del_table("teams")
        store.set_value("k", 2)
        store.del_value("j")
        assert store.get_row("users", "u3") == {"email": "c@x.io"}
        assert store.get_cell("users", "u3", "email") == "c@x.io"
        assert store.has_row("users", "u3")
        assert not store.has_row("users", "u2")
        assert store.get_row_ids("users") == ["u1", "u3"]
        assert store.get_row_count("users") == 2
        assert store.get_table_ids() == ["users"]
        assert not store.has_table("teams")
        assert store.get_value("k") == 2
        assert not store.has_value("j")
        assert store.get_values() == {"k": 2}


# -- nesting -----------------------------------------------------------------------------------


def test_nested_transactions_commit_once_with_the_outer_one(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    with store.transaction():
        store.set_value("a", 1)
        with store.transaction():
            store.set_value("b", 2)
            with store.transaction():
                store.set_row("users", "u1", {"email": "a@x.io"})
        assert persister.applied == []
        assert heard == []
    expected = hutch.Changes({"users": {"u1": {"email": "a@x.io"}}}, {"a": 1, "b": 2})
    assert persister.applied == [expected]
    assert heard == [expected]


def test_an_exception_leaving_a_nested_transaction_rolls_back_everything_if_not_caught(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    with pytest.raises(Boom):
        fail_in_transaction(
            store,
            lambda: store.set_value("a", 1),
            lambda: fail_in_transaction(store, lambda: store.set_value("b", 2)),
        )
    assert store.get_values() == {}
    assert persister.applied == []


def test_an_inner_exception_caught_by_the_outer_block_undoes_only_the_inner_writes(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    seed(store)
    persister.applied.clear()
    heard.clear()
    with store.transaction():
        store.set_value("k", 2)
        store.set_row("users", "u3", {"email": "c@x.io"})
        with pytest.raises(Boom):
            fail_in_transaction(
                store,
                lambda: store.set_value("k", 3),
                lambda: store.set_value("inner", 1),
                lambda: store.set_cell("users", "u3", "age", 3),
                lambda: store.del_row("users", "u1"),
                lambda: store.del_table("teams"),
            )
        assert store.get_value("k") == 2
        assert store.get_row("users", "u3") == {"email": "c@x.io"}
        assert store.has_row("users", "u1")
        store.set_value("after", True)
    expected = hutch.Changes({"users": {"u3": {"email": "c@x.io"}}}, {"k": 2, "after": True})
    assert persister.applied == [expected]
    assert heard == [expected]
    assert store.get_row_ids("users") == ["u1", "u2", "u3"]
    assert store.get_table("teams") == {"t1": {"org": "o1"}}
    assert not store.has_value("inner")


def test_an_inner_rollback_of_a_row_the_outer_created_keeps_the_outer_version(
    store: hutch.Store,
) -> None:
    with store.transaction():
        store.set_row("users", "u1", {"v": 1})
        with pytest.raises(Boom):
            fail_in_transaction(
                store,
                lambda: store.set_row("users", "u1", {"v": 2}),
                lambda: store.del_row("users", "u1"),
            )
    assert store.get_row("users", "u1") == {"v": 1}


def test_a_later_nested_transaction_still_commits_after_an_inner_rollback(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    with store.transaction():
        with pytest.raises(Boom):
            fail_in_transaction(store, lambda: store.set_value("a", 1))
        with store.transaction():
            store.set_value("b", 2)
    assert store.get_values() == {"b": 2}
    assert [c.values for c in persister.applied] == [{"b": 2}]


# -- what the persister receives ---------------------------------------------------------------


def test_each_single_call_is_its_own_transaction(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    store.set_row("users", "u1", {"email": "a@x.io"})
    store.set_value("k", 1)
    assert persister.applied == [
        hutch.Changes({"users": {"u1": {"email": "a@x.io"}}}),
        hutch.Changes(values={"k": 1}),
    ]


def test_the_persister_receives_one_changes_with_the_net_effect(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    seed(store)
    persister.applied.clear()
    with store.transaction():
        every_kind_of_write(store)
    assert persister.applied == [
        hutch.Changes(
            {
                "users": {
                    "u1": {"tags": ["b"], "age": 3},
                    "u2": None,
                    "u3": {"email": "c@x.io"},
                },
                "teams": {"t1": None},
            },
            {"k": 2, "new": {"x": 1}},
            frozenset({"j"}),
        )
    ]


def test_only_the_last_state_of_a_row_written_several_times_is_sent(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    with store.transaction():
        store.set_row("users", "u1", {"v": 1})
        store.set_cell("users", "u1", "v", 2)
        store.set_partial_row("users", "u1", {"w": 3})
    assert persister.applied == [hutch.Changes({"users": {"u1": {"v": 2, "w": 3}}})]


def test_a_value_set_to_none_is_a_value_and_a_deleted_value_is_a_deletion(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    store.set_value("a", 1)
    store.set_value("b", 2)
    persister.applied.clear()
    with store.transaction():
        store.set_value("a", None)
        store.del_value("b")
    (changes,) = persister.applied
    assert changes.values == {"a": None}
    assert changes.deleted_values == frozenset({"b"})


@pytest.mark.parametrize(
    "net_nothing",
    [
        lambda s: (s.set_value("k", 2), s.set_value("k", 1)),
        lambda s: (s.set_value("new", 1), s.del_value("new")),
        lambda s: (s.del_value("k"), s.set_value("k", 1)),
        lambda s: (
            s.set_cell("users", "u1", "email", "b"),
            s.set_cell("users", "u1", "email", "a"),
        ),
        lambda s: (s.set_row("users", "u9", {"x": 1}), s.del_row("users", "u9")),
        lambda s: (s.set_cell("users", "u9", "x", 1), s.del_cell("users", "u9", "x")),
        lambda s: (s.del_row("users", "u1"), s.set_row("users", "u1", {"email": "a"})),
        lambda s: (s.del_table("users"), s.set_row("users", "u1", {"email": "a"})),
        lambda s: (s.set_row("users", "u1", {"email": "a"}), s.set_value("k", 1)),
        lambda s: (s.set_partial_row("users", "u1", {"email": "a"}),),
    ],
    ids=[
        "value a-b-a",
        "new value set then deleted",
        "value deleted then set back",
        "cell a-b-a",
        "new row set then deleted",
        "new cell set then deleted",
        "row deleted then set back",
        "table deleted then set back",
        "row and value set to what they are",
        "partial row set to what it is",
    ],
)
def test_a_transaction_with_no_net_effect_reaches_neither_persister_nor_listeners(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes], net_nothing: Any
) -> None:
    store.set_row("users", "u1", {"email": "a"})
    store.set_value("k", 1)
    persister.applied.clear()
    heard.clear()
    with store.transaction():
        net_nothing(store)
    assert persister.applied == []
    assert heard == []
    assert contents(store) == ({"users": {"u1": {"email": "a"}}}, {"k": 1})


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, True), (True, 1), (0, False), (1, 1.0), (1.0, 1), ([1], [True]), ({"a": 1}, {"a": 1.0})],
    ids=repr,
)
def test_a_change_of_json_type_is_a_change(
    store: hutch.Store,
    persister: FlakyPersister,
    heard: list[hutch.Changes],
    before: Any,
    after: Any,
) -> None:
    store.set_cell("t", "r", "c", before)
    store.set_value("v", before)
    persister.applied.clear()
    heard.clear()
    with store.transaction():
        store.set_cell("t", "r", "c", after)
        store.set_value("v", after)
    (changes,) = persister.applied
    row = changes.tables["t"]["r"]
    assert row is not None
    assert repr(row["c"]) == repr(after)
    assert repr(changes.values["v"]) == repr(after)
    assert len(heard) == 1
    assert repr(store.get_cell("t", "r", "c")) == repr(after)
    assert repr(store.get_value("v")) == repr(after)


# -- a persister that fails --------------------------------------------------------------------


def test_a_non_hutch_error_from_apply_becomes_storage_error_with_the_cause(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    error = OSError("disk full")
    persister.fail_next = error
    with pytest.raises(hutch.StorageError, match="disk full") as raised:
        store.set_value("k", 1)
    assert raised.value.__cause__ is error


def test_a_hutch_error_from_apply_passes_through_unchanged(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    error = hutch.StorageError("the backend's own words")
    persister.fail_next = error
    with pytest.raises(hutch.StorageError) as raised:
        store.set_value("k", 1)
    assert raised.value is error


def test_a_hutch_error_subclass_from_apply_is_not_wrapped(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    error = hutch.InvalidValue("the backend refuses this")
    persister.fail_next = error
    with pytest.raises(hutch.InvalidValue) as raised:
        store.set_value("k", 1)
    assert raised.value is error


def test_a_failed_apply_rolls_back_the_whole_transaction(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    seed(store)
    persister.applied.clear()
    heard.clear()
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        in_transaction(store, lambda: every_kind_of_write(store))
    assert contents(store) == SEEDED
    assert persister.applied == []
    assert heard == []


def test_a_failed_apply_of_a_single_call_rolls_it_back(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    seed(store)
    heard.clear()
    writes: list[Writes] = [
        lambda: store.set_row("users", "u1", {"x": 1}),
        lambda: store.set_cell("users", "u9", "x", 1),
        lambda: store.del_row("users", "u2"),
        lambda: store.del_cell("users", "u2", "email"),
        lambda: store.del_table("users"),
        lambda: store.set_value("k", 5),
        lambda: store.del_value("j"),
    ]
    for write in writes:
        persister.fail_next = RuntimeError("no")
        with pytest.raises(hutch.StorageError):
            write()
        assert contents(store) == SEEDED
    assert heard == []


def test_the_store_is_usable_after_a_failed_apply(
    store: hutch.Store, persister: FlakyPersister, heard: list[hutch.Changes]
) -> None:
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        store.set_value("k", 1)
    store.set_value("k", 2)
    assert store.get_values() == {"k": 2}
    assert persister.applied == [hutch.Changes(values={"k": 2})]
    assert [c.values for c in heard] == [{"k": 2}]


def test_a_base_exception_from_apply_passes_through_and_rolls_back(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    persister.fail_next = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        store.set_value("k", 1)
    assert store.get_values() == {}


def test_a_failed_apply_rolls_back_indexes(
    db: hutch.Database, store: hutch.Store, persister: FlakyPersister
) -> None:
    db.indexes.define("by_email", "users", "email")
    store.set_row("users", "u1", {"email": "a"})
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        in_transaction(
            store,
            lambda: store.set_cell("users", "u1", "email", "b"),
            lambda: store.set_row("users", "u2", {"email": "a"}),
            lambda: store.set_row("users", "u3", {"email": "c"}),
        )
    assert db.indexes.slice_ids("by_email") == ["a"]
    assert db.indexes.slice_row_ids("by_email", "a") == ["u1"]
    assert db.indexes.slice_row_ids("by_email", "b") == []
    assert db.indexes.slice_row_ids("by_email", "c") == []


def test_a_failed_apply_of_a_deletion_keeps_the_index(
    db: hutch.Database, store: hutch.Store, persister: FlakyPersister
) -> None:
    db.indexes.define("by_email", "users", "email")
    store.set_row("users", "u1", {"email": "a"})
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        store.del_table("users")
    assert db.indexes.slice_row_ids("by_email", "a") == ["u1"]


def test_a_failed_apply_rolls_back_relationships(
    db: hutch.Database, store: hutch.Store, persister: FlakyPersister
) -> None:
    db.relationships.define("team_org", local="teams", remote="orgs", on="org")
    store.set_row("teams", "t1", {"org": "o1"})
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        in_transaction(
            store,
            lambda: store.set_cell("teams", "t1", "org", "o2"),
            lambda: store.set_row("teams", "t2", {"org": "o1"}),
        )
    assert db.relationships.remote_row_id("team_org", "t1") == "o1"
    assert db.relationships.local_row_ids("team_org", "o1") == ["t1"]
    assert db.relationships.local_row_ids("team_org", "o2") == []


def test_indexes_follow_the_next_commit_after_a_failed_apply(
    db: hutch.Database, store: hutch.Store, persister: FlakyPersister
) -> None:
    db.indexes.define("by_email", "users", "email")
    persister.fail_next = OSError("disk full")
    with pytest.raises(hutch.StorageError):
        store.set_row("users", "u1", {"email": "a"})
    store.set_row("users", "u1", {"email": "b"})
    assert db.indexes.slice_ids("by_email") == ["b"]
    assert db.indexes.slice_row_ids("by_email", "b") == ["u1"]


def test_a_failed_apply_in_a_nested_transaction_fails_at_the_outermost_commit(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    persister.fail_next = OSError("disk full")
    seen: list[object] = []
    with pytest.raises(hutch.StorageError):
        in_transaction(
            store,
            lambda: in_transaction(store, lambda: store.set_value("a", 1)),
            lambda: seen.append(store.get_value("a")),
            lambda: store.set_value("b", 2),
        )
    assert seen == [1]
    assert store.get_values() == {}


def test_a_transaction_with_no_net_effect_does_not_call_a_failing_persister(
    store: hutch.Store, persister: FlakyPersister
) -> None:
    store.set_value("k", 1)
    persister.fail_next = OSError("disk full")
    with store.transaction():
        store.set_value("k", 2)
        store.set_value("k", 1)
    assert persister.fail_next is not None
    assert store.get_value("k") == 1
