"""Reducing many Prometheus values (series, or samples over time) to the one number ``expect`` checks.

Names users write: ``max``, ``min``, ``avg``, ``sum``, ``count``, ``first``, ``last``, ``median``,
and quantiles as ``p50``, ``p90``, ``p99``, ``p99.9``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

Reducer = Callable[[Sequence[float]], float | None]

_QUANTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")
NAMES = ("max", "min", "avg", "sum", "count", "first", "last", "median")
HINT = f"use one of {', '.join(NAMES)}, or a quantile such as p50, p90, p99, p99.9"


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _simple(name: str) -> Reducer:
    def first(v: Sequence[float]) -> float | None:
        return v[0] if v else None

    def last(v: Sequence[float]) -> float | None:
        return v[-1] if v else None

    table: dict[str, Reducer] = {
        "max": lambda v: max(v) if v else None,
        "min": lambda v: min(v) if v else None,
        "avg": lambda v: sum(v) / len(v) if v else None,
        "sum": lambda v: float(sum(v)) if v else None,
        "count": lambda v: float(len(v)),
        "first": first,
        "last": last,
        "median": lambda v: quantile(v, 0.5),
    }
    return table[name]


def reducer(name: str) -> Reducer:
    """The function for ``name``; ``ValueError`` naming the accepted spellings otherwise."""
    if name in NAMES:
        return _simple(name)
    match = _QUANTILE.fullmatch(name)
    if match:
        q = float(match.group(1)) / 100
        return lambda values: quantile(values, q)
    raise ValueError(f"unknown reducer {name!r}; {HINT}")


def check(name: str) -> str:
    """``name`` if it is a reducer (for pydantic validators)."""
    reducer(name)
    return name


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become None (no usable value)."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value
