"""What ``repo.create_many`` reads and says: the items of a batch, and errors naming them.

Every item is built before anything is written, so one error names every bad
item at once (``errors`` keys are ``"<position>.<field>"``). A clash found as
the items are written names the item, and the earlier item it clashes with by
the id the error carries (:attr:`hutch.IntegrityError.row_id`): rolled back
with the batch, that row is nowhere to be found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from hutch.errors import HutchError, IntegrityError, ValidationError
from hutch.serialise import build

M = TypeVar("M")

#: How many bad items an error lists in its message (``errors`` has every one).
LISTED = 5


def items_of(items: object) -> list[Any]:
    """The items of a batch, read once, or a ValidationError for what holds no items."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ValidationError(
            "create_many takes a list of dicts of fields, one per instance, such as "
            f"[{{'name': 'a'}}, {{'name': 'b'}}]; not a value of type {type(items).__name__}",
            {"items": "expected a list of dicts"},
        )
    return list(items)


def build_all(model: type[M], batch: list[Any]) -> list[M]:
    """An instance per item of a batch, or a ValidationError naming every bad item."""
    instances: list[M] = []
    errors: dict[str, str] = {}
    bad: list[str] = []
    for position, fields in enumerate(batch):
        if not isinstance(fields, Mapping):
            errors[str(position)] = "expected a dict of fields"
            bad.append(
                f"item {position} is a value of type {type(fields).__name__}, not a dict of fields"
            )
            continue
        try:
            instances.append(build(model, fields))
        except ValidationError as error:
            errors.update({f"{position}.{f}": why for f, why in error.errors.items()})
            bad.append(f"item {position}: {error}")
    if bad:
        more = f"; and {len(bad) - LISTED} more items" if len(bad) > LISTED else ""
        raise ValidationError(f"{'; '.join(bad[:LISTED])}{more}; nothing was written", errors)
    return instances


def at_position(
    position: int, error: IntegrityError | ValidationError, earlier: Mapping[str, int]
) -> HutchError:
    """A batch's error, naming the item it is about (and the earlier item it clashes with,
    ``earlier`` giving each earlier item's position by id); nothing was written."""
    message = f"item {position}: {error}"
    if isinstance(error, ValidationError):
        return ValidationError(
            f"{message}; nothing was written",
            {f"{position}.{field}": why for field, why in error.errors.items()},
        )
    clash = earlier.get(error.row_id) if error.row_id is not None else None
    if clash is not None:
        message += f"; {error.row_id!r} is item {clash} of the batch"
    held = None if clash is not None else error.row_id  # (a row of the batch is not stored)
    return IntegrityError(f"{message}; nothing was written", row_id=held)
