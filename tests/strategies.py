"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st


def floats_within(bounds: tuple[float, float]) -> st.SearchStrategy[float]:
    """Floats from `bounds` (both ends included), the ends drawn often."""
    low, high = bounds
    return st.one_of(st.sampled_from([low, high]), st.floats(min_value=low, max_value=high))
