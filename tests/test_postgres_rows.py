"""Reading many rows at once (``hutch.backends.postgres.rows``): the one-parse shortcut takes
exactly the rows that reading them one by one takes, and gives up wherever that refuses one.

No server is needed: the pairs are what ``SELECT id, row::text`` returns of a table.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hutch
from hutch.backends.postgres.rows import read_at_once, read_each
from hutch.cells import Row, same_json

WHERE = "postgresql://app:***@db/app (schema 'public'), table 't'"

#: JSON a person may have written into the column: each text one JSON value, not each a row.
ODD = [
    '{"id": 1}',
    '{"": 1}',
    '{"a": ""}',
    '{"a": "\\u0000"}',
    '{"a": "\\ud800"}',
    '{"i\\u0064": 1}',
    '{"a": 123456789012345678901}',
    '{"a": 9223372036854775807, "b": -9223372036854775808}',
    '{"a": 1e400}',
    "[1]",
    '"x"',
    "null",
    "{ }",
    "{}",
    '{"a": [1, {"b": 2}], "c": {"id": 1}}',
    '{\n  "a": "x\\ty",\n  "b": 1.0,\n  "c": -0.0\n}',
    '{"a": "\\"quoted\\" \\\\ é ☃ 𝄞"}',
    '{"a": ' + "[" * 150 + "]" * 150 + "}",
]
_cells = (  # what hutch writes
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_scalars = _cells | st.integers(min_value=-(2**65), max_value=2**65)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
_texts = st.one_of(
    st.sampled_from(ODD),
    st.dictionaries(st.text(max_size=4), _json, max_size=4).map(json.dumps),
    st.dictionaries(st.sampled_from("abc"), _cells, min_size=1).map(
        lambda row: orjson.dumps(row).decode()
    ),
)
_ids = st.sampled_from(["u1", "u2", "a.b-c_d", "9", "x" * 128]) | st.text(max_size=6)


def _each(pairs: list[tuple[str, str]]) -> dict[str, Row] | None:
    try:
        return read_each(pairs, "t", WHERE)
    except hutch.CorruptData:
        return None


@given(pairs=st.lists(st.tuples(_ids, _texts), max_size=6))
def test_the_shortcut_takes_what_reading_one_by_one_takes(pairs: list[tuple[str, str]]) -> None:
    at_once = read_at_once(pairs, "t")
    each = _each(pairs)
    if each is None:
        assert at_once is None, pairs
    elif at_once is not None:
        assert same_json(at_once, each), pairs


def test_rows_hutch_writes_need_no_reading_one_by_one() -> None:
    rows: dict[str, Any] = {
        f"u{i}": {"email": f"user{i}@example.org", "age": i, "score": i / 4, "on": i % 2 == 0}
        for i in range(1000)
    }
    rows["nested"] = {"tags": ["a", "b"], "address": {"city": "Ghent"}, "none": None}
    pairs = [(row_id, orjson.dumps(row).decode()) for row_id, row in rows.items()]
    pairs.append(("empty", "{}"))  # a row without cells does not exist
    assert read_at_once(pairs, "t") == rows


@pytest.mark.parametrize(
    ("pair", "says"),
    [
        (("-u1", '{"a": 1}'), "row id '-u1': not a valid row id"),
        (("u1", "[1]"), "row id 'u1': the row is not a JSON object"),
        (("u1", '{"a": 123456789012345678901}'), "row id 'u1': the integer .* 64 bits"),
        (("u1", '{"id": 1}'), "row id 'u1': .*id"),
    ],
)
def test_reading_one_by_one_names_the_row_that_does_not_check(
    pair: tuple[str, str], says: str
) -> None:
    pairs = [("u0", '{"a": 0}'), pair]
    assert read_at_once(pairs, "t") is None
    with pytest.raises(hutch.CorruptData, match=f"table 't', {says}.*fix or delete it"):
        read_each(pairs, "t", WHERE)
