"""``repo.count_by(field)``: how many instances hold each value of a field.

From the field's index where it answers exactly, reading no row: the field
stores one scalar per row (text, numbers, booleans, datetimes, enums), every
row is in exactly one slice, and every key reads back as a value of the field.
Otherwise from the instances, as ``find`` reads them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from hutch.errors import QueryError
from hutch.models import Model, ModelSpec
from hutch.serialise import coerce, stored
from hutch.slices import order_key

if TYPE_CHECKING:
    from hutch.database import Database


def countable(spec: ModelSpec, field: object) -> Any:
    """The type of a field ``count_by`` may count by, or a QueryError saying why not."""
    if not isinstance(field, str):
        raise QueryError(
            f"count_by takes a field name, such as count_by('status'), not a value of type "
            f"{type(field).__name__}"
        )
    if field not in spec.fields:
        fields = ", ".join(spec.fields)
        raise QueryError(
            f"{spec.model.__qualname__} has no field {field!r} to count by; its fields: {fields}"
        )
    if field in spec.secret:
        raise QueryError(
            f"{spec.collection}.{field} is secret, and its counts would show its values; "
            "count by another field"
        )
    kind = spec.fields[field]
    if not _hashable(kind):
        raise QueryError(
            f"count_by({field!r}): a field of type {getattr(kind, '__qualname__', kind)} "
            "holds values that cannot be counted (lists, dicts, mutable classes); count by "
            "a field of text, numbers, datetimes or enums"
        )
    return kind


def from_index(db: Database, spec: ModelSpec, field: str, kind: Any) -> Counter[Any] | None:
    """The counts, from the field's index alone; ``None`` where it cannot answer exactly."""
    if not _scalar(kind):
        return None  # a cell holding a list is in a slice per item: no slice is a value
    index, indexes, store = spec.index_id(field), db.indexes, db.store
    counts: Counter[Any] = Counter()
    total = 0
    with store.lock:
        for key in indexes.slice_ids(index):
            try:
                value = coerce(kind, key)
            except Exception:  # a value the field no longer takes: reading the rows says why
                return None
            if stored(kind, value) != key:
                return None
            size = len(indexes.slice_row_ids(index, key))
            counts[value] += size
            total += size
        rows = store.get_row_count(spec.collection)
        if not total == indexes.indexed_row_count(index) == rows:
            return None  # a row in no slice (stored before the field existed), or in several
    return counts


def tally(spec: ModelSpec, field: str, instances: Iterable[Model]) -> Counter[Any]:
    """The counts, from the instances; a QueryError for a value that cannot be counted."""
    counts: Counter[Any] = Counter()
    for instance in instances:
        value = getattr(instance, field)
        try:
            counts[value] += 1
        except TypeError:
            break
    else:
        return counts
    raise QueryError(
        f"count_by({field!r}): the {spec.collection} row {instance.id!r} holds a "
        f"{type(value).__name__} in {field}, which cannot be counted (a list, a dict or a set); "
        "count by a field of text, numbers, datetimes or enums"
    )


def ordered(counts: Counter[Any], kind: Any) -> dict[Any, int]:
    """The counts in the order rows store their values (``None``, booleans, numbers, text)."""
    return dict(sorted(counts.items(), key=lambda item: order_key(stored(kind, item[0]))))


def _hashable(kind: Any) -> bool:
    """Whether a field of this type may hold values that can be dict keys."""
    origin = get_origin(kind)
    if origin is Literal:
        return True
    if origin in (Union, UnionType, tuple, frozenset):
        return all(_hashable(arg) for arg in get_args(kind) if arg is not Ellipsis)
    held = origin or kind
    return isinstance(held, type) and held.__hash__ is not None


_SCALARS = (str, int, float, bool, datetime, Enum, type(None))


def _scalar(kind: Any) -> bool:
    """Whether a field of this type stores one JSON scalar, never a list or an object."""
    origin = get_origin(kind)
    if origin is Literal:
        return True
    if origin in (Union, UnionType):
        return all(_scalar(arg) for arg in get_args(kind))
    return isinstance(kind, type) and issubclass(kind, _SCALARS)
