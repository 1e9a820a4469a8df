"""What ``repo.find`` is asked: its filters, ordering and window, checked before a row is read.

Every operand is checked against its field's type when the query is planned, so a
wrong call fails at once with a :class:`~hutch.QueryError` that names the filter and
says what it takes, never halfway through a scan with Python's own ``TypeError``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, datetime, time
from enum import Enum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import attrs

from hutch.errors import QueryError
from hutch.models import ModelSpec
from hutch.serialise import coerce, stored

LOOKUPS = ("exact", "in", "ne", "gt", "gte", "lt", "lte", "contains", "startswith", "isnull")

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_ORDERED_KINDS = (str, int, float, bool, datetime, date, time)
_LISTS = (list, tuple, set, frozenset)

Test = Callable[[Any], bool]


@attrs.frozen
class Lookup:
    """An equality (or ``__in``) on an indexed field: the index, and the keys it is read at."""

    index_id: str
    keys: list[Any]


@attrs.frozen
class Query:
    """A checked ``find``: what each instance must pass, and how the result is cut."""

    tests: list[Test]
    lookups: list[Lookup]
    order: list[tuple[str, bool]]  # (field, descending), most significant first
    start: int
    end: int | None

    def matches(self, instance: Any) -> bool:
        return all(test(instance) for test in self.tests)

    def arrange(self, found: list[Any]) -> list[Any]:
        """``found``, ordered, then cut to the window."""
        for field, descending in reversed(self.order):  # stable sorts, least significant first
            found.sort(key=_sort_key(field), reverse=descending)
        return found[self.start : self.end]


def plan(
    spec: ModelSpec,
    filters: Mapping[str, Any],
    *,
    order_by: object = None,
    limit: object = None,
    offset: object = 0,
) -> Query:
    """Check a ``find`` call against a model and return it ready to run."""
    tests: list[Test] = []
    lookups: list[Lookup] = []
    for key, operand in filters.items():
        field, lookup = _split(spec, key)
        kind = spec.fields[field]
        secret = field in spec.secret
        if lookup == "in":
            operand = _choices(key, operand, secret)
        test, wanted = _test(key, field, lookup, kind, operand, secret)
        tests.append(test)
        if wanted is not None and field in spec.indexed:
            lookups.append(Lookup(spec.index_id(field), [stored(kind, v) for v in wanted]))
    order = _order(spec, order_by)
    start = _count("offset", offset)
    end = None if limit is None else start + _count("limit", limit)
    return Query(tests, lookups, order, start, end)


def _split(spec: ModelSpec, key: str) -> tuple[str, str]:
    field, _, lookup = key.partition("__")
    name = spec.model.__qualname__
    if field not in spec.fields:
        raise QueryError(
            f"{name} has no field {field!r} (filter {key!r}); its fields: {', '.join(spec.fields)}"
        )
    lookup = lookup or "exact"
    if lookup not in LOOKUPS:
        raise QueryError(f"unknown lookup {lookup!r} in {key!r}; the lookups: {', '.join(LOOKUPS)}")
    return field, lookup


def _shown(operand: Any, secret: bool) -> str:
    """How an error quotes an operand: its type alone when the field is secret."""
    return f"a value of type {type(operand).__name__}" if secret else repr(operand)


def _choices(key: str, operand: Any, secret: bool) -> list[Any]:
    """The operand of ``__in`` as a list: a collection of values, read once."""
    if isinstance(operand, str | bytes | Mapping) or not isinstance(operand, Iterable):
        raise QueryError(
            f"{key} takes a list of values, such as {key}=['a', 'b'], not "
            f"{_shown(operand, secret)}; for one "
            f"value, filter on {key.removesuffix('__in')}=..."
        )
    return list(operand)


def _test(
    key: str, field: str, lookup: str, kind: Any, operand: Any, secret: bool
) -> tuple[Test, list[Any] | None]:
    """The predicate of one filter, and the values it wants if it is an equality."""
    get = operator.attrgetter(field)
    if lookup == "isnull":
        if not isinstance(operand, bool):
            raise QueryError(f"{key} takes True or False, not {_shown(operand, secret)}")
        return (lambda m: (get(m) is None) == operand), None
    if lookup in ("contains", "startswith"):
        return _text_or_list_test(key, lookup, kind, operand, secret, get), None
    if lookup == "in":
        choices = [_coerce(key, kind, item, secret) for item in operand]
        members = _members(choices)
        return (lambda m: get(m) in members), choices
    value = _coerce(key, kind, operand, secret)
    if lookup == "exact":
        return (lambda m: get(m) == value), [value]
    if lookup == "ne":
        return (lambda m: get(m) != value), None
    _check_ordered(key, kind)
    compare, wanted = _COMPARE[lookup], _sortable(value)
    return (lambda m: (v := get(m)) is not None and compare(_sortable(v), wanted)), None


def _coerce(key: str, kind: Any, operand: Any, secret: bool) -> Any:
    try:
        return coerce(kind, operand)
    except Exception as error:  # whatever the converter raises: the operand does not fit
        why = f"{_shown(operand, secret)} does not fit the field"
        if not secret:  # the converter's words may quote the value
            why += f": {error}"
    raise QueryError(f"{key}: {why}")  # raised outside the handler: the operand is not chained


def _members(choices: list[Any]) -> Collection[Any]:
    """The choices of ``__in`` as a set (one hash per row, not a scan of the list) when
    they hash, which every scalar field's values do."""
    try:
        return frozenset(choices)
    except TypeError:  # lists, nested values: compared one by one
        return choices


def _text_or_list_test(
    key: str, lookup: str, kind: Any, operand: Any, secret: bool, get: Callable[[Any], Any]
) -> Test:
    base = _base(kind)
    if base is str or (_is_union(base) and str in get_args(base)):  # holds text, or may
        if not isinstance(operand, str):
            raise QueryError(f"{key} takes text, not {_shown(operand, secret)}")
        if lookup == "startswith":
            return lambda m: isinstance(v := get(m), str) and v.startswith(operand)
        return lambda m: isinstance(v := get(m), str) and operand in v
    if lookup == "contains" and get_origin(base) in _LISTS:
        (item_kind, *_) = get_args(base) or (Any,)
        item = _coerce(key, item_kind, operand, secret)
        return lambda m: (v := get(m)) is not None and item in v
    takes = "text fields" if lookup == "startswith" else "text and list fields"
    raise QueryError(f"{key}: __{lookup} applies to {takes}, not to a field of type {_name(kind)}")


def _order(spec: ModelSpec, order_by: object) -> list[tuple[str, bool]]:
    if order_by is None:
        return []
    keys = [order_by] if isinstance(order_by, str) else order_by
    if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise QueryError(
            f"order_by takes a field name or a list of them (each '-'-led for descending), "
            f"such as order_by=['-created_at', 'name']; not {order_by!r}"
        )
    order = []
    for key in keys:
        field = key.removeprefix("-")
        if field not in spec.fields:
            raise QueryError(
                f"cannot order {spec.collection} by unknown field {field!r}; its fields: "
                f"{', '.join(spec.fields)}"
            )
        _check_ordered(f"order_by={key!r}", spec.fields[field])
        order.append((field, key.startswith("-")))
    return order


def _check_ordered(key: str, kind: Any) -> None:
    """Refuse to compare a field whose values do not compare (nested models, dicts)."""
    base = _base(kind)
    if get_origin(base) in _LISTS:  # lists compare item by item: items that compare as they are
        orderable = _base((get_args(base) or (Any,))[0]) in _ORDERED_KINDS
    else:
        orderable = base in _ORDERED_KINDS or (isinstance(base, type) and issubclass(base, Enum))
    if not orderable:
        raise QueryError(
            f"{key}: a field of type {_name(kind)} has no order; compare and order by fields "
            "of text, numbers, datetimes or enums (or lists of them)"
        )


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueryError(f"{name} takes a whole number of rows, 0 or more, not {value!r}")
    return value


def _is_union(kind: Any) -> bool:
    return get_origin(kind) in (Union, UnionType)


def _base(kind: Any) -> Any:
    """The type of a field without its ``| None``."""
    if _is_union(kind):
        others = [each for each in get_args(kind) if each is not NoneType]
        if len(others) == 1:
            return others[0]
    return kind


def _name(kind: Any) -> str:
    return getattr(kind, "__qualname__", None) or str(kind)


def _sortable(value: Any) -> Any:
    """A value as it compares: an enum by its value."""
    return value.value if isinstance(value, Enum) else value


def _sort_key(field: str) -> Callable[[Any], tuple[bool, Any]]:
    """Order instances by a field: None first, enums by value, the rest as they compare."""
    get = operator.attrgetter(field)

    def key(instance: Any) -> tuple[bool, Any]:
        value = get(instance)
        return (value is not None, _sortable(value))

    return key
