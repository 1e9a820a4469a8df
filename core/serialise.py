"""How a model becomes a row or JSON and back: private cattrs converters (orjson preconf).

Rows hold only JSON, so timezone-aware datetimes are stored as ISO-8601 text
in UTC, enums by their value, nested attrs classes as objects. Structuring is
strict: ``"3"`` is not an int and ``1`` is not a bool, so what a model holds is
what was meant; reading a stored row ignores the cells the model has no field
for (a field dropped, or added by a newer version of the application).
:func:`to_json` and :func:`from_json` give applications the same conversion
for what they send and receive (an API's responses and requests), leaving
secret fields out of what is sent unless asked. Serialisation stays here,
apart from the model classes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar, cast, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.orjson import make_converter

from hutch.cells import Row
from hutch.errors import DefinitionError, ValidationError
from hutch.models import secret_fields

M = TypeVar("M")

#: Where changing a model, and migrating its stored rows, is explained.
MIGRATIONS_DOC = "docs/models.md#migrations"


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Enum)


def _datetime_out(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a datetime must be timezone-aware; use datetime.now(UTC)")
    return value.astimezone(UTC).isoformat()


def _datetime_in(value: Any, _: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or ISO-8601 text, not {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("a datetime must be timezone-aware; use datetime.now(UTC)")
    return value.astimezone(UTC)


def _enum_in(value: Any, kind: type[Enum]) -> Enum:
    return value if isinstance(value, kind) else kind(value)


def _exactly(*kinds: type) -> Any:
    def structure(value: Any, kind: Any) -> Any:
        if kind not in kinds and _is_enum(kind):  # an IntEnum reaches the int hook first
            return _enum_in(value, kind)
        if type(value) not in kinds:
            raise TypeError(f"expected {' or '.join(k.__name__ for k in kinds)}, not {value!r}")
        return value

    return structure


def _float_in(value: Any, _: Any) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"expected a number, not {value!r}")
    return float(value)


def _str_in(value: Any, kind: Any) -> Any:
    if kind is not str and _is_enum(kind):  # a StrEnum reaches the str hook first
        return _enum_in(value, kind)
    if not isinstance(value, str) or isinstance(value, Enum):
        raise TypeError(f"expected text, not {value!r}")
    return str(value)


def _bytes_in(value: Any, _: Any) -> bytes:
    """Bytes as given, or from the base85 text a row holds them as."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b85decode(value)
    raise TypeError(f"expected bytes, not a value of type {type(value).__name__}")


def _make(*, detailed: bool, extra_keys: bool = False) -> cattrs.Converter:
    """A converter; ``extra_keys`` lets an object hold keys its class has no field for."""
    converter = make_converter(forbid_extra_keys=not extra_keys, detailed_validation=detailed)
    converter.register_unstructure_hook(datetime, _datetime_out)
    converter.register_structure_hook(datetime, _datetime_in)
    converter.register_unstructure_hook_func(_is_enum, lambda member: member.value)
    converter.register_structure_hook_func(_is_enum, _enum_in)
    converter.register_structure_hook(str, _str_in)
    converter.register_structure_hook(int, _exactly(int))
    converter.register_structure_hook(bool, _exactly(bool))
    converter.register_structure_hook(float, _float_in)
    converter.register_structure_hook(bytes, _bytes_in)
    return converter


def _make_json(*, secrets: bool) -> cattrs.Converter:
    """A converter to JSON values alone (a tuple becomes a list), given secrets or leaving out
    every secret field, of a model and of what it nests."""
    converter = _make(detailed=False)
    converter.register_unstructure_hook_func(
        _is_tuple, lambda value: [converter.unstructure(item) for item in value]
    )
    if not secrets:

        def without_secrets(kind: type) -> Any:
            omitted: dict[str, Any] = {name: override(omit=True) for name in secret_fields(kind)}
            return make_dict_unstructure_fn(kind, converter, **omitted)

        converter.register_unstructure_hook_factory(attrs.has, without_secrets)
    return converter


def _is_tuple(kind: Any) -> bool:
    return kind is tuple or get_origin(kind) is tuple


_checking = _make(detailed=True)  # builds models from what callers give: every error, by field
#: Builds models from rows that were checked when written, leaving out the cells a model has
#: no field for (a field dropped, or one a newer version of the application added).
_loading = _make(detailed=False, extra_keys=True)
_json = _make_json(secrets=False)  # what to_json sends
_json_with_secrets = _make_json(secrets=True)

_EXTRA = re.compile(r"extra fields found \((.*)\) @ \$$")
_PATH = re.compile(r" @ \$\.?([A-Za-z_][A-Za-z0-9_]*)?")


def build(model: type[M], fields: Mapping[str, Any]) -> M:
    """A model from keyword fields, or a :class:`~hutch.ValidationError` naming every bad one."""
    try:
        return _checking.structure({k: _plain(v) for k, v in fields.items()}, model)
    except Exception as error:  # cattrs gathers every field's error in one exception group
        failure = _validation_error(model, error, fields)
    raise failure  # outside the handler: the chain holds no error that quotes a value


def _plain(value: Any) -> Any:
    """A field value as a row would hold it, so that structuring checks it like stored data.

    A value that cannot be made plain (a naive datetime, say) is left as it is,
    for the structure hooks to report; so are bytes, which a row holds as
    base85 text: given for a text field, they must be refused, not stored encoded.
    """
    if type(value) in _SCALARS:  # most values: nothing to make plain
        return value
    if isinstance(value, bytes):
        return value
    try:
        return _checking.unstructure(value)
    except Exception:
        return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_row(instance: Any) -> tuple[str, Row]:
    """The row id and the row that store a model."""
    row: Row = _checking.unstructure(instance)
    return row.pop("id"), row


def from_row(model: type[M], row_id: str, row: Row) -> M:
    """The model a stored row holds, ignoring cells it has no field for; a field the row lacks
    takes its default. A row that does not fit raises ValidationError saying how to fix it."""
    try:
        return _loading.structure({**row, "id": row_id}, model)
    except Exception:
        pass  # it does not fit: build says exactly why, below (outside the handler, so that
        # no exception quoting the row rides along in the chain)
    known = attrs.fields_dict(model)  # type: ignore[arg-type]
    try:
        return build(model, {**{k: v for k, v in row.items() if k in known}, "id": row_id})
    except ValidationError as error:
        listed = "; ".join(f"{field}: {why}" for field, why in error.errors.items())
        failure = ValidationError(
            f"the stored {getattr(model, '__collection__', '?')} row {row_id!r} does not fit "
            f"{model.__qualname__} ({listed}); if the model changed since the row was written, "
            "give a new field a default, or declare a migration that rewrites the stored rows "
            f"({MIGRATIONS_DOC})",
            error.errors,
        )
    raise failure


def coerce(kind: Any, value: Any) -> Any:
    """``value`` as a field of type ``kind`` holds it (a filter's operand, say)."""
    return _checking.structure(value, kind)


def stored(kind: Any, value: Any) -> Any:
    """``value`` (of type ``kind``) as a row stores it: what an index is keyed by."""
    return _checking.unstructure(value, unstructure_as=kind)


def to_json(instance: Any, *, include_secrets: bool = False) -> dict[str, Any]:
    """A model instance as a JSON object: what an API response sends.

    Datetimes become ISO-8601 text in UTC, enums their values, bytes base85
    text, nested attrs classes objects; every container is new. Secret fields
    (declared ``repr=False``: a token, a password hash) are left out, of the
    model and of what it nests, so a response cannot carry one by accident;
    ``include_secrets=True`` keeps them (for a backup, never for a response).
    """
    if not attrs.has(type(instance)):
        raise DefinitionError(
            f"to_json takes a model instance (an attrs class, such as a hutch.Model), not "
            f"{_kind_of(instance)}"
        )
    converter = _json_with_secrets if include_secrets else _json
    try:
        data: dict[str, Any] = converter.unstructure(instance)
    except Exception as error:  # a hand-made instance: attrs checks no types (a naive datetime)
        why = f"{type(error).__name__}: {error}"
    else:
        return data
    name = type(instance).__qualname__
    raise ValidationError(f"cannot make JSON of a {name}: {why}", {"*": why})


def from_json(model: type[M], data: Mapping[str, Any]) -> M:
    """The instance a JSON object describes (an API request's body), checked as ``create`` does.

    Fields left out take their defaults (a new id, the current time); an
    unknown or wrong field raises :class:`~hutch.ValidationError` naming every one.
    """
    if not (isinstance(model, type) and attrs.has(cast(type, model))):  # (model stays an M)
        raise DefinitionError(
            f"from_json takes a model class (an attrs class, such as a hutch.Model), not {model!r}"
        )
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"a {model.__qualname__} is built from a JSON object (a dict of fields), not "
            f"{_kind_of(data)}",
            {"*": "expected a JSON object"},
        )
    return build(model, data)


def _kind_of(value: Any) -> str:
    """How an error names a value it must not quote (it may be a secret): by its type."""
    return "a class" if isinstance(value, type) else f"a value of type {type(value).__name__}"


def _describe(error: BaseException, kind: Any) -> str:
    """Say what is wrong with one field: our own hooks' words where there are some."""
    if isinstance(error, KeyError):
        return "required field missing"
    if isinstance(error, ValueError | TypeError) and str(error):
        return str(error)
    return cattrs.v.format_exception(error, kind)


def _validation_error(
    model: type[Any], error: Exception, fields: Mapping[str, Any]
) -> ValidationError:
    messages = (
        cattrs.transform_error(error, format_exception=_describe)
        if isinstance(error, cattrs.BaseValidationError)
        else [f"{type(error).__name__}: {error}"]
    )
    errors: dict[str, str] = {}
    for message in messages:
        extra = _EXTRA.match(message)
        if extra:
            for field in extra.group(1).split(", "):
                errors[field] = "unknown field"
            continue
        found = _PATH.search(message)
        field = (found.group(1) if found else None) or "*"
        text = message[: found.start()] if found else message
        errors[field] = f"{errors[field]}; {text}" if field in errors else text
    _hide_secrets(model, fields, errors)
    listed = "; ".join(f"{field}: {text}" for field, text in errors.items())
    return ValidationError(f"invalid {model.__qualname__}: {listed}", errors)


#: Shorter text is not scrubbed from messages: it could not be a credential, and would mangle them.
_SHORTEST_SECRET = 8


def _hide_secrets(model: type[Any], fields: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Say what is wrong with a secret field (one left out of ``repr``) without its value.

    A token or a password hash must not reach a log through an error message,
    so a secret field's error names only the type it was given, and any other
    message that happens to quote a secret value has it cut out.
    """
    if not attrs.has(model):
        return
    secret = secret_fields(model) & fields.keys()
    values = {
        text
        for name in secret
        for text in (str(fields[name]), repr(fields[name]))
        if len(text) >= _SHORTEST_SECRET
    }
    for field in errors:
        if field in secret:
            kind = type(fields[field]).__name__
            errors[field] = f"not valid (given a value of type {kind}; it is secret, so not shown)"
            continue
        for text in values:
            errors[field] = errors[field].replace(text, "<secret>")
