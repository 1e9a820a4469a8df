"""Random store operations for the property tests that reopen a backend (hypothesis strategies)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

IDS = st.sampled_from(["a", "b", "c", "d"])

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5)

#: Any JSON value a cell may hold, small and nested.
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=3),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)


def operations(
    cells: st.SearchStrategy[str] = IDS, row_size: int = 3, length: int = 30
) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Lists of store calls ``(method, *args)`` on tables and rows a-d, and ``("reopen",)``."""
    return st.lists(
        st.one_of(
            st.tuples(
                st.just("set_row"), IDS, IDS, st.dictionaries(cells, JSON_VALUES, max_size=row_size)
            ),
            st.tuples(st.just("set_cell"), IDS, IDS, cells, JSON_VALUES),
            st.tuples(st.just("del_row"), IDS, IDS),
            st.tuples(st.just("del_cell"), IDS, IDS, cells),
            st.tuples(st.just("set_value"), IDS, JSON_VALUES),
            st.tuples(st.just("del_value"), IDS),
            st.tuples(st.just("reopen")),
        ),
        max_size=length,
    )
