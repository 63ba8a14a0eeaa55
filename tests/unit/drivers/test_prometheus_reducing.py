"""Reducing Prometheus values to the one number ``expect`` checks: names, quantiles, edge cases."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit.drivers.prometheus import queries, reducing

values = st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=200)


@given(values, st.floats(min_value=0, max_value=100))
def test_a_quantile_lies_between_min_and_max(xs: list[float], percent: float) -> None:
    q = reducing.reducer(f"p{percent:.3f}".rstrip("0").rstrip("."))(xs)
    assert q is not None
    assert min(xs) - 1e-6 <= q <= max(xs) + 1e-6


@given(values)
def test_p0_is_min_p100_is_max_and_median_is_p50(xs: list[float]) -> None:
    assert reducing.reducer("p0")(xs) == min(xs)
    assert reducing.reducer("p100")(xs) == max(xs)
    assert reducing.reducer("median")(xs) == reducing.reducer("p50")(xs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("max", 4.0), ("min", 1.0), ("avg", 2.5), ("sum", 10.0), ("count", 4.0), ("first", 3.0), ("last", 2.0),
     ("p50", 2.5), ("p99.9", pytest.approx(3.997))],
)  # fmt: skip
def test_each_reducer(name: str, expected: float) -> None:
    assert reducing.reducer(name)([3.0, 1.0, 4.0, 2.0]) == expected


def test_no_values_reduce_to_none_except_count() -> None:
    for name in (*reducing.NAMES, "p99"):
        assert reducing.reducer(name)([]) == (0.0 if name == "count" else None)


@pytest.mark.parametrize("bad", ["mx", "p", "p101", "99", "P99", ""])
def test_an_unknown_reducer_lists_the_accepted_ones(bad: str) -> None:
    with pytest.raises(ValueError, match=r"unknown reducer .*use one of max, min, avg"):
        reducing.reducer(bad)
    with pytest.raises(ValueError, match=r"unknown reducer"):
        queries.QueryArgs(query="up", reduce=bad)


def test_json_has_no_nan_or_infinity() -> None:
    assert reducing.finite(math.nan) is None
    assert reducing.finite(math.inf) is None
    assert reducing.finite(-math.inf) is None
    assert reducing.finite(0.5) == 0.5


def test_windows_and_objectives_are_checked_when_the_file_is_read() -> None:
    assert queries.RangeArgs(query="up", window="fault").window == "fault"
    assert queries.RangeArgs(query="up", window="5m").window == 300.0
    with pytest.raises(ValueError, match="duration"):
        queries.RangeArgs(query="up", window="yesterday")
    with pytest.raises(ValueError, match="exactly one of errors"):
        queries.SloArgs(total="t", objective=0.99)
    with pytest.raises(ValueError, match="exactly one of errors"):
        queries.SloArgs(total="t", errors="e", good="g", objective=0.99)
