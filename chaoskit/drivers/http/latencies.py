"""Latency summaries: percentiles by the nearest-rank method.

For n sorted samples, the p-th percentile is the sample at rank ``ceil(p/100 * n)`` (1-based):
always a latency that was really observed, never an interpolation, so p99 of 100 samples is the
99th smallest and p99.9 of fewer than 1000 samples is the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from chaoskit.drivers import contract

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The ``percent``-th percentile of ``ordered`` (sorted ascending, not empty)."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(samples_ms: Sequence[float]) -> dict[str, contract.JSONValue]:
    """``{p50, p90, p99, p99_9, mean, max, min}`` in milliseconds; all null without samples."""
    keys = [*PERCENTILES, "mean", "max", "min"]
    if not samples_ms:
        return dict.fromkeys(keys)
    ordered = sorted(samples_ms)
    out: dict[str, contract.JSONValue] = {
        key: round(nearest_rank(ordered, p), 3) for key, p in PERCENTILES.items()
    }
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    out["max"] = round(ordered[-1], 3)
    out["min"] = round(ordered[0], 3)
    return out
