"""Latency summaries: exact percentiles of a list of samples, and an HDR-style histogram whose
memory stays the same however many requests it records.

Both use the nearest-rank method: for n samples, the p-th percentile is the sample at rank
``ceil(p/100 * n)`` (1-based), so p99 of 100 samples is the 99th smallest and p99.9 of fewer than
1000 samples is the maximum. The histogram reports the top of the bucket that holds that sample:
exact below 2.048 ms (1 µs buckets), and at most 0.1% above the true value beyond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from chaoskit.drivers import contract

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
HISTOGRAM_PERCENTILES = {**PERCENTILES, "p99_99": 99.99}

SUB_BITS = 11
"""Buckets per power of two are ``2**(SUB_BITS-1)``: three significant decimal digits."""
SUB_COUNT = 1 << SUB_BITS
HALF = SUB_COUNT >> 1
MAX_EXPONENT = 26
"""Values up to ``2**(SUB_BITS+MAX_EXPONENT)`` µs (~38 hours) are kept; longer ones count as that."""
HIGHEST_US = (1 << (SUB_BITS + MAX_EXPONENT)) - 1
EXPORT_BITS = 5
"""The exported histogram keeps 2**EXPORT_BITS buckets per power of two (~3% wide): enough to plot,
small enough for a journal."""


def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The ``percent``-th percentile of ``ordered`` (sorted ascending, not empty)."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(samples_ms: Sequence[float]) -> dict[str, contract.JsonValue]:
    """``{p50, p90, p99, p99_9, mean, max, min}`` in milliseconds; all null without samples."""
    keys = [*PERCENTILES, "mean", "max", "min"]
    if not samples_ms:
        return dict.fromkeys(keys)
    ordered = sorted(samples_ms)
    out: dict[str, contract.JsonValue] = {
        key: round(nearest_rank(ordered, p), 3) for key, p in PERCENTILES.items()
    }
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    out["max"] = round(ordered[-1], 3)
    out["min"] = round(ordered[0], 3)
    return out


def bucket_of(us: int) -> int:
    """The bucket index of a latency in whole microseconds (0 and up)."""
    if us < SUB_COUNT:
        return us
    exponent = us.bit_length() - SUB_BITS
    return SUB_COUNT + (exponent - 1) * HALF + (us >> exponent) - HALF


def top_of(index: int) -> int:
    """The largest value, in µs, that lands in bucket ``index``."""
    if index < SUB_COUNT:
        return index
    exponent, offset = divmod(index - SUB_COUNT, HALF)
    exponent += 1
    return ((offset + HALF + 1) << exponent) - 1


class Histogram:
    """Counts of latencies in log-linear buckets (HdrHistogram's layout, three significant digits).

    Recording is a few integer operations and memory is fixed (~28k counters), so a load of a
    billion requests costs what one of a hundred does."""

    def __init__(self) -> None:
        self.counts = [0] * (SUB_COUNT + MAX_EXPONENT * HALF)
        self.total = 0
        self.sum_us = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        us = int(seconds * 1_000_000)
        if us < SUB_COUNT:
            if us < 0:  # noqa: PLR1730 - cheaper than max() on the hot path
                us = 0
            self.counts[us] += 1
        else:
            if us > HIGHEST_US:  # noqa: PLR1730
                us = HIGHEST_US
            self.counts[bucket_of(us)] += 1
        self.total += 1
        self.sum_us += us
        if us > self.max_us:  # noqa: PLR1730 - the builtin call costs more than the compare here
            self.max_us = us

    @property
    def min_us(self) -> int:
        """The smallest value recorded (the bottom of the lowest bucket used: exact below 2 ms)."""
        for index, count in enumerate(self.counts):
            if count:
                return top_of(index - 1) + 1 if index else 0
        return 0

    def merge(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            if count:
                self.counts[index] += count
        self.total += other.total
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def percentiles_us(self, percents: Sequence[float]) -> list[int]:
        """Nearest-rank percentiles (each the top of its bucket, never above the maximum seen)."""
        ranks = [max(1, math.ceil(p / 100 * self.total)) for p in percents]
        order = sorted(range(len(ranks)), key=lambda i: ranks[i])
        out = [self.max_us] * len(ranks)
        seen, at = 0, 0
        for index, count in enumerate(self.counts):
            if not count:
                continue
            seen += count
            while at < len(order) and ranks[order[at]] <= seen:
                out[order[at]] = min(top_of(index), self.max_us)
                at += 1
            if at == len(order):
                break
        return out

    def summary(self) -> dict[str, contract.JsonValue]:
        """``{p50, p90, p99, p99_9, p99_99, mean, max, min}`` in milliseconds; null without samples."""
        keys = [*HISTOGRAM_PERCENTILES, "mean", "max", "min"]
        if not self.total:
            return dict.fromkeys(keys)
        values = self.percentiles_us(list(HISTOGRAM_PERCENTILES.values()))
        out: dict[str, contract.JsonValue] = {
            key: round(us / 1000, 3) for key, us in zip(HISTOGRAM_PERCENTILES, values, strict=True)
        }
        out["mean"] = round(self.sum_us / self.total / 1000, 3)
        out["max"] = round(self.max_us / 1000, 3)
        out["min"] = round(self.min_us / 1000, 3)
        return out

    def export(self) -> dict[str, contract.JsonValue]:
        """The distribution for plotting: ``le`` (bucket upper bounds, ms) and ``counts``, only the
        buckets that hold something, each about 3% wide."""
        merged: dict[int, int] = {}
        for index, count in enumerate(self.counts):
            if count:
                top = min(top_of(index), self.max_us)
                coarse = _coarse_top(top)
                merged[coarse] = merged.get(coarse, 0) + count
        bounds = sorted(merged)
        return {
            "unit": "ms",
            "le": [round(min(b, self.max_us) / 1000, 3) for b in bounds],
            "counts": [merged[b] for b in bounds],
        }


def _coarse_top(us: int) -> int:
    if us < (1 << EXPORT_BITS):
        return us
    shift = us.bit_length() - EXPORT_BITS
    return (((us >> shift) + 1) << shift) - 1
