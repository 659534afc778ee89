"""Hypothesis strategies for whatever a JSON or YAML parser can hand us."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_scalars(*, finite: bool = False) -> st.SearchStrategy[Any]:
    """JSON-like scalars; integers beyond a float's range included, and NaN and infinities
    unless ``finite``."""
    return (
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=-(10**400), max_value=10**400)
        | st.floats(allow_nan=not finite, allow_infinity=not finite)
        | st.text(max_size=30)
    )


def json_values(*, finite: bool = False) -> st.SearchStrategy[Any]:
    """Nested JSON-like values built from :func:`json_scalars`."""
    return st.recursive(
        json_scalars(finite=finite),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=15,
    )
