"""Model-based tests: the store, transactions, indexes and relationships of ``memory://``.

A hypothesis state machine drives ``hutch.open("memory://")`` with random writes
(plain and inside nested transactions that commit or roll back) and keeps a naive
model of plain dicts beside it: the tables, the keyed values, a stack of snapshots
for the open transactions. After every step the store, every index and every
relationship must agree with what the model computes, compared as strict JSON
(``True``, ``1`` and ``1.0`` all differ), and listeners must have heard exactly the
net changes of each committed outermost transaction.

Writes that an index's key function refuses are part of the run: they must raise
``DefinitionError`` and change nothing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import hutch
from hutch.backends import memory
from hutch.plugin_manager import AUTOLOAD_OFF

Row = dict[str, Any]
Tables = dict[str, dict[str, Row]]

TABLES = ("teams", "orgs", "misc")
ROW_IDS = ("r0", "r1", "r2", "r3", "r4")
CELLS = ("a", "b", "org", "parent")
VALUE_IDS = ("k0", "k1", "k2")

# Strings that are not row ids ("", "é") still go into cells and indexes; in a
# relationship's cell they point nowhere.
STRING_VALUES = ("", "x", "y", "é", *ROW_IDS)
FLOAT_VALUES = (0.0, -0.0, 1.0, 2.5)
INT_VALUES = (0, 1, -1, 2**63 - 1)
#: Values that ``==`` confuses but JSON does not: a cell moving between them is a change.
TWINS: tuple[Any, ...] = (0, False, 0.0, -0.0, 1, True, 1.0)

_SCALAR_TYPES = (str, int, float, bool, type(None))
_MISSING: Any = object()


def dump(value: Any) -> bytes:
    """Strict JSON: ``True``, ``1`` and ``1.0`` all serialise differently."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def scribble(value: Any) -> None:
    """Mutate every list and dict in ``value``, to prove that nobody else holds them."""
    if type(value) is list:
        for item in value:
            scribble(item)
        value.append("scribbled")
    elif type(value) is dict:
        for item in list(value.values()):
            scribble(item)
        value["scribbled"] = True


# -- strategies ---------------------------------------------------------------------------------

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(TWINS),
    st.none(),
    st.booleans(),
    st.sampled_from(INT_VALUES),
    st.sampled_from(FLOAT_VALUES),
    st.sampled_from(STRING_VALUES),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "id"]), children, max_size=2),
    ),
    max_leaves=5,
)
rows: st.SearchStrategy[Row] = st.dictionaries(st.sampled_from(CELLS), json_values, max_size=4)
table_ids = st.sampled_from(TABLES)
row_ids = st.sampled_from(ROW_IDS)
cell_ids = st.sampled_from(CELLS)
value_ids = st.sampled_from(VALUE_IDS)


@dataclass(frozen=True)
class Write:
    """One write, applied alike to the store and to the model."""

    kind: str
    table: str = "teams"
    row: str = "r0"
    cell: str = "a"
    value: Any = None
    key: str = "k0"


def writes_of(kind: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Write]:
    return st.builds(Write, kind=st.just(kind), **fields)


row_writes = st.one_of(
    writes_of("set_row", table=table_ids, row=row_ids, value=rows),
    writes_of("set_partial_row", table=table_ids, row=row_ids, value=rows),
)
cell_writes = writes_of("set_cell", table=table_ids, row=row_ids, cell=cell_ids, value=json_values)
# Point a row at another through a relationship cell, so that chains and cycles form.
links = writes_of(
    "set_cell",
    table=st.sampled_from(["teams", "misc"]),
    row=row_ids,
    cell=st.sampled_from(["org", "parent"]),
    value=row_ids,
)
deletes = st.one_of(
    writes_of("del_row", table=table_ids, row=row_ids),
    writes_of("del_cell", table=table_ids, row=row_ids, cell=cell_ids),
    writes_of("del_table", table=table_ids),
)
value_writes = st.one_of(
    writes_of("set_value", key=value_ids, value=json_values),
    writes_of("del_value", key=value_ids),
)


def twins_of(value: Any) -> st.SearchStrategy[Any]:
    """A value strictly different from ``value``, those that ``==`` calls equal first."""
    others = [twin for twin in TWINS if dump(twin) != dump(value)]
    return st.sampled_from(sorted(others, key=lambda twin: twin != value))


any_write = st.one_of(row_writes, cell_writes, links, deletes, value_writes)


def apply_to_store(store: hutch.Store, write: Write) -> None:
    """Apply ``write`` to the store, then scribble on what was passed in (the store copied it)."""
    value = copy.deepcopy(write.value)
    match write.kind:
        case "set_row":
            store.set_row(write.table, write.row, value)
        case "set_partial_row":
            store.set_partial_row(write.table, write.row, value)
        case "set_cell":
            store.set_cell(write.table, write.row, write.cell, value)
        case "del_row":
            store.del_row(write.table, write.row)
        case "del_cell":
            store.del_cell(write.table, write.row, write.cell)
        case "del_table":
            store.del_table(write.table)
        case "set_value":
            store.set_value(write.key, value)
        case "del_value":
            store.del_value(write.key)
        case _:  # pragma: no cover
            raise AssertionError(write.kind)
    scribble(value)


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Model:
    """The naive oracle: TinyBase semantics over plain dicts."""

    tables: Tables = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> Model:
        return Model(copy.deepcopy(self.tables), copy.deepcopy(self.values))

    def rows_of(self, table: str) -> dict[str, Row]:
        return self.tables.get(table, {})

    def apply(self, write: Write) -> None:
        value = copy.deepcopy(write.value)
        table, row_id = write.table, write.row
        match write.kind:
            case "set_row":
                if value:
                    self.tables.setdefault(table, {})[row_id] = value
                else:  # a row of no cells deletes it
                    self._drop_row(table, row_id)
            case "set_partial_row":
                if value:  # creates a missing row; {} does nothing
                    self.tables.setdefault(table, {}).setdefault(row_id, {}).update(value)
            case "set_cell":
                self.tables.setdefault(table, {}).setdefault(row_id, {})[write.cell] = value
            case "del_row":
                self._drop_row(table, row_id)
            case "del_cell":
                row = self.rows_of(table).get(row_id)
                if row is not None and write.cell in row:
                    del row[write.cell]
                    if not row:  # a row whose last cell goes no longer exists
                        self._drop_row(table, row_id)
            case "del_table":
                self.tables.pop(table, None)
            case "set_value":
                self.values[write.key] = value
            case "del_value":
                self.values.pop(write.key, None)
            case _:  # pragma: no cover
                raise AssertionError(write.kind)

    def refuses(self, write: Write) -> bool:
        """Whether the ``orgs_by_b`` index refuses the row that ``write`` would leave."""
        if write.table != REFUSING_TABLE or write.kind.startswith("del_"):
            return False
        trial = Model({write.table: copy.deepcopy(self.rows_of(write.table))})
        trial.apply(write)
        row = trial.rows_of(write.table).get(write.row)
        return row is not None and refused(row)

    def _drop_row(self, table: str, row_id: str) -> None:
        found = self.tables.get(table)
        if found is not None:
            found.pop(row_id, None)
            if not found:  # a table with no rows does not exist
                del self.tables[table]


def net_changes(before: Model, after: Model) -> dict[str, Any] | None:
    """The net difference as a plain structure, or ``None`` if there is none."""
    tables: dict[str, dict[str, Row | None]] = {}
    for table in sorted(set(before.tables) | set(after.tables)):
        old, new = before.rows_of(table), after.rows_of(table)
        changed = {
            row_id: new.get(row_id)
            for row_id in sorted(set(old) | set(new))
            if dump(old.get(row_id)) != dump(new.get(row_id))
        }
        if changed:
            tables[table] = changed
    values = {
        key: value
        for key, value in after.values.items()
        if key not in before.values or dump(before.values[key]) != dump(value)
    }
    deleted = sorted(set(before.values) - set(after.values))
    if not (tables or values or deleted):
        return None
    return {"tables": tables, "values": values, "deleted": deleted}


def plain_changes(changes: hutch.Changes) -> dict[str, Any]:
    """A ``Changes`` in the shape :func:`net_changes` returns."""
    return {
        "tables": {table: dict(rows) for table, rows in changes.tables.items()},
        "values": dict(changes.values),
        "deleted": sorted(changes.deleted_values),
    }


# -- the model of indexes -----------------------------------------------------------------------

#: A slice key as the model sees it: (type rank, value). True and 1 differ; 1 and 1.0 do not.
Norm = tuple[Any, ...]


def norm(value: Any) -> Norm:
    """Rank a scalar key: None < booleans < numbers < strings (the order of ``slice_ids``)."""
    kind = type(value)
    if value is None:
        return (0,)
    if kind is bool:
        return (1, value)
    if kind is int or kind is float:
        return (2, value)
    if kind is str:
        return (3, value)
    raise AssertionError(f"not a scalar key: {value!r}")


def sort_rank(value: Any) -> tuple[Any, ...]:
    """Order any JSON value: None < booleans < numbers < strings < lists and objects.

    Lists and objects order among themselves by their JSON text with sorted keys.
    """
    if type(value) in _SCALAR_TYPES:
        return norm(value)
    return (4, dump(value))


def is_scalar(value: Any) -> bool:
    return type(value) in _SCALAR_TYPES


def tag_keys(row: Row) -> list[Any]:
    """The string items of cell ``b`` when it holds a list."""
    tags = row.get("b")
    return [tag for tag in tags if type(tag) is str] if type(tags) is list else []


def ab_keys(row: Row) -> list[Any]:
    """Cells ``a`` and ``b``, those present and scalar (so possibly None, True, 1, ...)."""
    return [row[cell] for cell in ("a", "b") if cell in row and is_scalar(row[cell])]


def cell_count(row: Row) -> int:
    return len(row)


def cell_b(row: Row) -> Any:
    return row.get("b")


def refused(row: Row) -> bool:
    """Whether ``cell_b`` as a key function fails on ``row`` (a key must be a scalar)."""
    b = row.get("b")
    return type(b) is dict or (type(b) is list and not all(is_scalar(item) for item in b))


@dataclass(frozen=True)
class IndexSpec:
    """An index definition, passed as is to ``db.indexes.define`` and read by the model."""

    name: str
    table: str
    on: str | Callable[[Row], Any]
    sort_key: str | Callable[[Row], Any] | None = None
    reverse: bool = False

    def define(self, db: hutch.Database) -> None:
        db.indexes.define(
            self.name, self.table, self.on, sort_key=self.sort_key, reverse=self.reverse
        )

    def keys(self, row: Row) -> list[Norm]:
        if isinstance(self.on, str):
            if self.on not in row:
                return []
            value = row[self.on]
            if type(value) is list:  # each scalar item; nested lists and dicts are not keys
                found = [item for item in value if is_scalar(item)]
            elif type(value) is dict:
                found = []
            else:
                found = [value]
        else:
            result = self.on(row)
            found = list(result) if isinstance(result, list | tuple | set) else [result]
        return list(dict.fromkeys(norm(key) for key in found))

    def slices(self, table_rows: Mapping[str, Row]) -> dict[Norm, list[str]]:
        """``{key: row ids in the index's order}`` computed from scratch."""
        grouped: dict[Norm, list[tuple[Any, ...]]] = {}
        for row_id, row in table_rows.items():
            if self.sort_key is None:
                entry: tuple[Any, ...] = (row_id,)
            elif isinstance(self.sort_key, str):
                entry = (sort_rank(row.get(self.sort_key)), row_id)
            else:
                entry = (sort_rank(self.sort_key(row)), row_id)
            for key in self.keys(row):
                grouped.setdefault(key, []).append(entry)
        return {
            key: [entry[-1] for entry in sorted(entries, reverse=self.reverse)]
            for key, entries in grouped.items()
        }


INDEXES = (
    IndexSpec("teams_by_a", "teams", "a"),
    IndexSpec("teams_by_tag", "teams", tag_keys),
    IndexSpec("teams_by_b_sorted", "teams", "b", sort_key="a", reverse=True),
    IndexSpec("orgs_by_ab", "orgs", ab_keys, sort_key=cell_b),
    IndexSpec("orgs_by_size", "orgs", cell_count, sort_key="a"),
    # Its key function fails on some rows: a write of such a row raises DefinitionError
    # and changes nothing (the indexes that already took it are put back).
    IndexSpec("orgs_by_b", "orgs", cell_b),
)
REFUSING_TABLE = "orgs"
#: Defined (and redefined) mid-run, on whatever data there is by then.
LATE_INDEXES = (
    IndexSpec("late", "misc", "a"),
    IndexSpec("late", "misc", ab_keys, sort_key="parent", reverse=True),
    IndexSpec("late", "teams", "org", sort_key=cell_count),
)
#: Keys asked for whether or not they have rows.
PROBES: tuple[Any, ...] = (None, True, False, 0, 1, 0.0, -0.0, 1.0, -1, 2.5, 7, "", "x", "r0", "zz")


@dataclass(frozen=True)
class RelationshipSpec:
    name: str
    local: str
    remote: str
    on: str


RELATIONSHIPS = (
    RelationshipSpec("team_org", "teams", "orgs", "org"),
    RelationshipSpec("team_parent", "teams", "teams", "parent"),
    RelationshipSpec("misc_parent", "misc", "misc", "parent"),
)
LINK_TARGETS = (*ROW_IDS, "", "x", "zz")


def valid_row_id(value: object) -> bool:
    """The row id rule of DESIGN.md, "Ids"."""
    return (
        isinstance(value, str)
        and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value) is not None
    )


# -- invalid writes: each raises before anything is written -------------------------------------

INVALID_WRITES: dict[str, tuple[Callable[[hutch.Store], None], type[hutch.HutchError]]] = {
    "dot-led row id": (lambda s: s.set_cell("teams", ".r0", "a", 1), hutch.InvalidId),
    "empty row id": (lambda s: s.del_row("teams", ""), hutch.InvalidId),
    "row id with a space": (lambda s: s.del_cell("orgs", "r 0", "a"), hutch.InvalidId),
    "bad table id": (lambda s: s.set_row("1teams", "r0", {"a": 1}), hutch.InvalidId),
    "empty table id": (lambda s: s.del_table(""), hutch.InvalidId),
    "reserved cell id": (lambda s: s.set_row("teams", "r1", {"a": 1, "id": "r1"}), hutch.InvalidId),
    "empty cell id": (lambda s: s.set_partial_row("orgs", "r2", {"b": 2, "": 3}), hutch.InvalidId),
    "NaN in a row": (
        lambda s: s.set_partial_row("teams", "r0", {"a": 1, "b": float("nan")}),
        hutch.InvalidValue,
    ),
    "int beyond 64 bits": (lambda s: s.set_cell("orgs", "r0", "a", [1, 2**64]), hutch.InvalidValue),
    "non-str object key": (lambda s: s.set_value("k0", {1: "x"}), hutch.InvalidValue),
    "not JSON": (lambda s: s.set_cell("misc", "r0", "a", object()), hutch.InvalidValue),
    "empty value id": (lambda s: s.set_value("", 1), hutch.InvalidId),
}


class Rollback(Exception):
    """Raised out of a transaction to roll it back."""


def listener(bucket: list[bytes]) -> Callable[[hutch.Changes], None]:
    """A listener that records what it hears, then scribbles on it (it is a private copy)."""

    def heard(changes: hutch.Changes) -> None:
        bucket.append(dump(plain_changes(changes)))
        for _table, _row_id, row in changes.rows():
            if row is not None:
                scribble(row)
        for value in changes.values.values():
            scribble(value)

    return heard


# -- the machine --------------------------------------------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Only the memory backend: an installed plugin (entity models, say) would define
        # indexes and relationships of its own on every open.
        self.db = hutch.open("memory://", plugins=[memory])
        self.store = self.db.store
        self.model = Model()
        # Open transactions (outermost first) and the model as it was when each began.
        self.open_transactions: list[hutch.Store] = []
        self.snapshots: list[Model] = []
        self.indexes: dict[str, IndexSpec] = {}
        for spec in INDEXES:
            spec.define(self.db)
            self.indexes[spec.name] = spec
        for rel in RELATIONSHIPS:
            self.db.relationships.define(rel.name, local=rel.local, remote=rel.remote, on=rel.on)
            assert self.db.relationships.definition(rel.name) == hutch.Relationship(
                rel.local, rel.remote, rel.on
            )
        assert self.db.relationships.relationship_ids() == sorted(r.name for r in RELATIONSHIPS)
        self.heard_all: list[bytes] = []
        self.heard_orgs: list[bytes] = []
        self.heard_team_r0: list[bytes] = []
        self.heard_removed: list[bytes] = []
        self.store.add_listener(listener(self.heard_all))
        self.store.add_listener(listener(self.heard_orgs), table="orgs")
        self.store.add_listener(listener(self.heard_team_r0), table="teams", row="r0")
        removed = self.store.add_listener(listener(self.heard_removed))
        self.store.remove_listener(removed)

    def teardown(self) -> None:
        try:
            while self.open_transactions:
                self.open_transactions.pop().__exit__(Rollback, Rollback(), None)
        finally:
            self.db.close()
        assert self.db.closed
        with pytest.raises(hutch.ClosedError):
            self.store.get_row_ids("teams")

    # -- helpers --------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.snapshots)

    def buckets(self) -> list[list[bytes]]:
        return [self.heard_all, self.heard_orgs, self.heard_team_r0, self.heard_removed]

    def after_writes(self, before: Model) -> None:
        """Check the listeners: silent in a transaction, else the net changes since ``before``."""
        if self.depth:
            assert self.buckets() == [[], [], [], []], "a listener heard an uncommitted write"
            return
        expected = net_changes(before, self.model)
        want = [] if expected is None else [dump(expected)]
        touched = {} if expected is None else expected["tables"]
        assert self.heard_all == want
        assert self.heard_orgs == (want if "orgs" in touched else [])
        assert self.heard_team_r0 == (want if "r0" in touched.get("teams", {}) else [])
        assert self.heard_removed == []
        for bucket in self.buckets():
            bucket.clear()

    def write(self, write: Write) -> None:
        before = self.model.clone()
        if self.model.refuses(write):
            with pytest.raises(hutch.DefinitionError):
                apply_to_store(self.store, write)
        else:
            apply_to_store(self.store, write)
            self.model.apply(write)
        self.after_writes(before)

    def run_batch(self, writes: list[Write], fail: bool) -> None:
        with self.store.transaction():
            for write in writes:
                apply_to_store(self.store, write)
            if fail:
                raise Rollback

    # -- writes ---------------------------------------------------------------------------------

    @rule(write=row_writes)
    def write_row(self, write: Write) -> None:
        self.write(write)

    @rule(write=cell_writes)
    def write_cell(self, write: Write) -> None:
        self.write(write)

    @rule(write=deletes)
    def delete(self, write: Write) -> None:
        self.write(write)

    @rule(write=links)
    def link(self, write: Write) -> None:
        self.write(write)

    @precondition(lambda self: bool(self.model.tables))
    @rule(data=st.data())
    def retype_cell(self, data: st.DataObject) -> None:
        """Replace a cell by a twin that ``==`` calls equal (1 -> True -> 1.0 ...)."""
        cells = [
            (table, row_id, cell)
            for table, table_rows in sorted(self.model.tables.items())
            for row_id, row in sorted(table_rows.items())
            for cell in sorted(row)
        ]
        table, row_id, cell = data.draw(st.sampled_from(cells), label="cell")
        value = data.draw(twins_of(self.model.tables[table][row_id][cell]), label="twin")
        self.write(Write("set_cell", table, row_id, cell, value))

    @precondition(lambda self: bool(self.model.values))
    @rule(data=st.data())
    def retype_value(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model.values)), label="key")
        value = data.draw(twins_of(self.model.values[key]), label="twin")
        self.write(Write("set_value", key=key, value=value))

    @rule(write=value_writes)
    def write_value(self, write: Write) -> None:
        self.write(write)

    @rule(which=st.sampled_from(sorted(INVALID_WRITES)))
    def invalid_write(self, which: str) -> None:
        before = self.model.clone()
        attempt, error = INVALID_WRITES[which]
        with pytest.raises(error):
            attempt(self.store)
        self.after_writes(before)

    # -- transactions ---------------------------------------------------------------------------

    @precondition(lambda self: self.depth < 3)
    @rule()
    def begin(self) -> None:
        transaction = self.store.transaction()
        transaction.__enter__()
        self.open_transactions.append(transaction)
        self.snapshots.append(self.model.clone())

    @precondition(lambda self: self.depth > 0)
    @rule()
    def commit(self) -> None:
        self.open_transactions.pop().__exit__(None, None, None)
        before = self.snapshots.pop()
        self.after_writes(before)

    @precondition(lambda self: self.depth > 0)
    @rule()
    def roll_back(self) -> None:
        self.open_transactions.pop().__exit__(Rollback, Rollback(), None)
        before = self.snapshots.pop()
        self.model = before
        self.after_writes(before)

    @rule(writes=st.lists(any_write, max_size=6), fail=st.booleans())
    def batch(self, writes: list[Write], fail: bool) -> None:
        """A real ``with store.transaction():`` block, nested in any open transaction."""
        before = self.model.clone()
        after = self.model.clone()
        refusal = False
        for write in writes:
            refusal = after.refuses(write)
            if refusal:
                break
            after.apply(write)
        if refusal:  # the DefinitionError leaves the block, which rolls it all back
            with pytest.raises(hutch.DefinitionError):
                self.run_batch(writes, fail=fail)
        elif fail:
            with pytest.raises(Rollback):
                self.run_batch(writes, fail=True)
        else:
            self.run_batch(writes, fail=False)
            self.model = after
        self.after_writes(before)

    # -- definitions ----------------------------------------------------------------------------

    @precondition(lambda self: self.depth == 0)
    @rule(spec=st.sampled_from(LATE_INDEXES))
    def define_late_index(self, spec: IndexSpec) -> None:
        spec.define(self.db)
        self.indexes[spec.name] = spec

    @precondition(lambda self: self.depth > 0)
    @rule()
    def define_in_transaction_fails(self) -> None:
        with pytest.raises(hutch.DefinitionError):
            LATE_INDEXES[0].define(self.db)
        with pytest.raises(hutch.DefinitionError):
            self.db.relationships.define("team_org", local="teams", remote="misc", on="b")

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def tables_match(self) -> None:
        store, model = self.store, self.model
        assert store.get_table_ids() == sorted(model.tables)
        for table in TABLES:
            expected = model.rows_of(table)
            assert store.get_row_ids(table) == sorted(expected)
            assert store.has_table(table) == bool(expected)
            assert store.get_row_count(table) == len(expected)
            got = store.get_table(table)
            assert list(got) == sorted(expected)
            assert dump(got) == dump(expected)
            scribble(got)  # a copy: the next reads must not see this
            for row_id in ROW_IDS:
                row = expected.get(row_id)
                assert store.has_row(table, row_id) == (row is not None)
                got_row = store.get_row(table, row_id)
                assert dump(got_row) == dump(row)
                scribble(got_row)
                for cell in CELLS:
                    has = row is not None and cell in row
                    assert store.has_cell(table, row_id, cell) == has
                    value = store.get_cell(table, row_id, cell, _MISSING)
                    if has:
                        assert row is not None
                        assert dump(value) == dump(row[cell])
                        scribble(value)
                    else:
                        assert value is _MISSING

    @invariant()
    def values_match(self) -> None:
        store, model = self.store, self.model
        got = store.get_values()
        assert list(got) == sorted(model.values)
        assert dump(got) == dump(model.values)
        scribble(got)
        for key in VALUE_IDS:
            assert store.has_value(key) == (key in model.values)
            value = store.get_value(key, _MISSING)
            if key in model.values:
                assert dump(value) == dump(model.values[key])
                scribble(value)
            else:
                assert value is _MISSING

    @invariant()
    def indexes_match(self) -> None:
        """Indexes follow every write, so inside a transaction they show its own writes."""
        indexes = self.db.indexes
        live = self.model
        assert indexes.index_ids() == sorted(self.indexes)
        for spec in self.indexes.values():
            assert indexes.table_id(spec.name) == spec.table
            expected = spec.slices(live.rows_of(spec.table))
            slice_ids = indexes.slice_ids(spec.name)
            assert [norm(key) for key in slice_ids] == sorted(expected), spec.name
            probes: list[Any] = list(PROBES)
            for key in expected:
                value: Any = key[1] if len(key) > 1 else None
                probes.append(value)
                if key[0] == 2 and float(value).is_integer():  # 1 and 1.0 are one key
                    probes.extend([int(value), float(value)])
            for probe in probes:
                got = indexes.slice_row_ids(spec.name, probe)
                assert got == expected.get(norm(probe), []), (spec.name, probe)
            assert indexes.slice_row_ids(spec.name, [1]) == []
            assert indexes.slice_row_ids(spec.name, {"a": 1}) == []

    @invariant()
    def relationships_match(self) -> None:
        """Relationships answer for the current state, a transaction's own writes included."""
        relationships = self.db.relationships
        live = self.model
        for rel in RELATIONSHIPS:

            def points_at(model: Model, row_id: str, rel: RelationshipSpec = rel) -> str | None:
                target = model.rows_of(rel.local).get(row_id, {}).get(rel.on)
                return target if valid_row_id(target) else None

            for row_id in ROW_IDS:
                assert relationships.remote_row_id(rel.name, row_id) == points_at(live, row_id)
            local_rows = live.rows_of(rel.local)
            for target in LINK_TARGETS:
                expected = sorted(r for r in local_rows if points_at(live, r) == target)
                assert relationships.local_row_ids(rel.name, target) == expected, (rel, target)
            if rel.local != rel.remote:
                with pytest.raises(hutch.DefinitionError):
                    relationships.linked_row_ids(rel.name, "r0")
                continue
            for first in ROW_IDS:
                chain = [first]
                next_id = points_at(live, first)
                while next_id is not None and next_id not in chain:
                    chain.append(next_id)
                    next_id = points_at(live, next_id)
                assert relationships.linked_row_ids(rel.name, first) == chain, (rel, first)


def test_store_matches_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=200,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
