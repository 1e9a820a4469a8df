"""Parity: random operation sequences, checked against a naive model of plain dicts.

A compact form of the project's own ``tests/test_model_based.py``: hypothesis
drives the store with random writes, nested transactions that commit or roll
back and (on a durable backend) close-and-reopen, and after every step the
store, an index, a relationship and what the listeners heard must agree with
the model, compared as strict JSON (``True``, ``1`` and ``1.0`` all differ).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

import hutch
from hutch.testing.plugin import Opener

hypothesis = pytest.importorskip(
    "hypothesis", reason="the model-based parity test needs hypothesis"
)
orjson = pytest.importorskip("orjson")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

Tables = dict[str, dict[str, dict[str, Any]]]
TABLES = ("t1", "t2")
ROW_IDS = ("r0", "r1", "r2", "r3")
KEYS = ("x", "y", "z")

scalars = st.one_of(
    st.sampled_from([0, 1, -1, 2**63 - 1, 0.0, -0.0, 1.0, 2.5, True, False, None, "", "x", "é"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "id"]), inner, max_size=2),
    ),
    max_leaves=4,
)
cells: dict[str, st.SearchStrategy[Any]] = {
    "a": st.one_of(st.sampled_from(KEYS), st.lists(st.sampled_from(KEYS), max_size=2)),
    "org": st.sampled_from([*ROW_IDS, "not an id!"]),
    "b": json_values,
}
rows = st.fixed_dictionaries({}, optional=cells)


def dump(value: Any) -> bytes:
    return bytes(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


class Boom(Exception):
    """Rolls a transaction back."""


def index_keys(row: dict[str, Any]) -> list[str]:
    a = row.get("a")
    return [a] if isinstance(a, str) else list(dict.fromkeys(a)) if isinstance(a, list) else []


class StoreMachine(RuleBasedStateMachine):
    opener: Opener
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.url = self.opener.fresh_url(f"mb{next(self.counter)}")
        self.heard: list[hutch.Changes] = []
        self.db = self.open()
        self.durable = self.db.capabilities.durable
        self.tables: Tables = {}
        self.values: dict[str, Any] = {}
        self.stack: list[tuple[Tables, dict[str, Any]]] = []  # open transactions' snapshots
        self.expected: list[bytes] = []

    def open(self) -> hutch.Database:
        db = self.opener(self.url)
        db.indexes.define("by_a", "t1", "a")
        db.relationships.define("t1_t2", local="t1", remote="t2", on="org")
        db.store.add_listener(self.heard.append)
        return db

    # -- the model -----------------------------------------------------------------------------

    def snapshot(self) -> tuple[Tables, dict[str, Any]]:
        return copy.deepcopy(self.tables), copy.deepcopy(self.values)

    def committed(self, before: tuple[Tables, dict[str, Any]]) -> None:
        """Expect the listeners to hear the net change from ``before`` to now (if any)."""
        old_tables, old_values = before
        tables: dict[str, dict[str, Any]] = {}
        for t in sorted(set(old_tables) | set(self.tables)):
            old, new = old_tables.get(t, {}), self.tables.get(t, {})
            changed = {
                r: new.get(r)
                for r in sorted(set(old) | set(new))
                if dump(old.get(r)) != dump(new.get(r))
            }
            if changed:
                tables[t] = changed
        values = {
            k: v
            for k, v in self.values.items()
            if k not in old_values or dump(old_values[k]) != dump(v)
        }
        deleted = sorted(set(old_values) - set(self.values))
        if tables or values or deleted:
            self.expected.append(dump([tables, values, deleted]))

    def write(self, kind: str, table: str, row_id: str, value: Any) -> None:
        before = None if self.stack else self.snapshot()
        s, rows = self.db.store, self.tables.setdefault(table, {})
        if kind == "set_row":
            s.set_row(table, row_id, copy.deepcopy(value))
            if value:
                rows[row_id] = copy.deepcopy(value)
            else:
                rows.pop(row_id, None)
        elif kind == "set_partial_row":
            s.set_partial_row(table, row_id, copy.deepcopy(value))
            if value:
                rows.setdefault(row_id, {}).update(copy.deepcopy(value))
        elif kind == "del_cell":
            s.del_cell(table, row_id, "a")
            rows.get(row_id, {}).pop("a", None)
            if row_id in rows and not rows[row_id]:
                del rows[row_id]
        elif kind == "del_row":
            s.del_row(table, row_id)
            rows.pop(row_id, None)
        if not rows:
            del self.tables[table]
        if before is not None:
            self.committed(before)

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["set_row", "set_partial_row", "del_cell", "del_row"]),
        table=st.sampled_from(TABLES),
        row_id=st.sampled_from(ROW_IDS),
        value=rows,
    )
    def row_write(self, kind: str, table: str, row_id: str, value: dict[str, Any]) -> None:
        self.write(kind, table, row_id, value)

    @rule(
        key=st.sampled_from(["k0", "k1"]),
        value=st.one_of(st.none(), json_values),
        drop=st.booleans(),
    )
    def value_write(self, key: str, value: Any, drop: bool) -> None:
        before = None if self.stack else self.snapshot()
        if drop:
            self.db.store.del_value(key)
            self.values.pop(key, None)
        else:
            self.db.store.set_value(key, copy.deepcopy(value))
            self.values[key] = copy.deepcopy(value)
        if before is not None:
            self.committed(before)

    @precondition(lambda self: len(self.stack) < 3)
    @rule()
    def begin(self) -> None:
        self.db.store.transaction().__enter__()
        self.stack.append(self.snapshot())

    @precondition(lambda self: bool(self.stack))
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        before = self.stack.pop()
        if commit:
            self.db.store.__exit__(None, None, None)
            if not self.stack:
                self.committed(before)
        else:
            self.db.store.__exit__(Boom, Boom(), None)
            self.tables, self.values = before

    @precondition(lambda self: self.durable and not self.stack)
    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = self.open()

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def store_matches(self) -> None:
        s = self.db.store
        got = {t: s.get_table(t) for t in s.get_table_ids()}
        assert dump(got) == dump(self.tables)
        assert list(got) == sorted(self.tables)
        assert dump(s.get_values()) == dump(self.values)

    @invariant()
    def index_and_relationship_match(self) -> None:
        t1 = self.tables.get("t1", {})
        ix, rel = self.db.indexes, self.db.relationships
        slices: dict[str, list[str]] = {}
        for row_id in sorted(t1):
            for key in index_keys(t1[row_id]):
                slices.setdefault(key, []).append(row_id)
        assert ix.slice_ids("by_a") == sorted(slices)
        for key in KEYS:
            assert ix.slice_row_ids("by_a", key) == slices.get(key, [])
        for target in ROW_IDS:
            expected = sorted(r for r, row in t1.items() if row.get("org") == target)
            assert rel.local_row_ids("t1_t2", target) == expected

    @invariant()
    def listeners_heard_the_net_changes(self) -> None:
        heard = [
            dump(
                [
                    {t: dict(r) for t, r in c.tables.items()},
                    dict(c.values),
                    sorted(c.deleted_values),
                ]
            )
            for c in self.heard
        ]
        assert heard == self.expected

    def teardown(self) -> None:
        while self.stack:
            self.stack.pop()
            self.db.store.__exit__(Boom, Boom(), None)
        self.db.close()


def test_random_operations_match_a_model(hutch_open: Opener) -> None:
    probe = hutch_open()
    examples = 40 if probe.capabilities.durable else 100
    probe.close()
    machine = type("ParityMachine", (StoreMachine,), {"opener": hutch_open})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
