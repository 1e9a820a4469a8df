"""The fast paths of the id checks accept exactly what the documented rules accept.

``check_row_id`` skips its regex for plain ASCII letters and digits; these tests
hold it to the rule of DESIGN.md, ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hutch
from hutch.ids import check_row_id, is_row_id

RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def accepted(row_id: str) -> bool:
    try:
        check_row_id("users", row_id)
    except hutch.InvalidId:
        return False
    return True


@pytest.mark.parametrize("char", [chr(code) for code in range(0x800)], ids=ord)
def test_a_one_character_row_id_follows_the_rule(char: str) -> None:
    assert accepted(char) == bool(RULE.fullmatch(char)) == is_row_id(char)


@pytest.mark.parametrize("char", ["a", "Z", "7", "_", "-", "."])
@pytest.mark.parametrize("length", [0, 1, 2, 127, 128, 129, 500])
def test_a_row_id_of_any_length_follows_the_rule(char: str, length: int) -> None:
    row_id = "a" + char * (length - 1) if length else ""
    assert accepted(row_id) == bool(RULE.fullmatch(row_id))


@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=140))
def test_any_text_as_a_row_id_follows_the_rule(text: str) -> None:
    assert accepted(text) == bool(RULE.fullmatch(text))


@given(st.from_regex(RULE, fullmatch=True))
def test_every_row_id_the_rule_allows_is_accepted(row_id: str) -> None:
    assert accepted(row_id)
