"""The HDR-style latency histogram: exact to the microsecond below 2 ms, within 0.1% above, the
same nearest-rank percentiles as a sorted list, and the same memory for any number of samples."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chaoskit.drivers.http import latencies


@given(st.lists(st.floats(min_value=0, max_value=3600, allow_nan=False), min_size=1, max_size=300))
def test_percentiles_match_the_sorted_samples_to_the_histograms_precision(samples: list[float]) -> None:
    histogram = latencies.Histogram()
    for seconds in samples:
        histogram.record(seconds)
    exact_us = sorted(int(s * 1_000_000) for s in samples)
    got = histogram.percentiles_us([50, 90, 99, 99.9, 99.99, 100])
    for percent, value in zip([50, 90, 99, 99.9, 99.99, 100], got, strict=True):
        want = latencies.nearest_rank(exact_us, percent)
        assert want <= value <= want + want / 1024 + 1e-9
        if want < latencies.SUB_COUNT:
            assert value == want  # exact below 2.048 ms
    assert histogram.max_us == exact_us[-1]
    assert histogram.min_us <= exact_us[0] <= histogram.min_us + exact_us[0] / 1024


def test_memory_is_the_same_for_ten_or_a_million_samples() -> None:
    histogram = latencies.Histogram()
    size = len(histogram.counts)
    rng = random.Random(7)
    for _ in range(200_000):
        histogram.record(rng.expovariate(100))
    assert len(histogram.counts) == size and histogram.total == 200_000
    exported = histogram.export()
    counts = exported["counts"]
    assert isinstance(counts, list) and sum(counts) == 200_000  # type: ignore[arg-type]
    assert len(counts) < 400  # a few hundred ~3% buckets, whatever the count


def test_summary_keys_and_an_empty_histogram() -> None:
    histogram = latencies.Histogram()
    assert histogram.summary() == dict.fromkeys(
        ["p50", "p90", "p99", "p99_9", "p99_99", "mean", "max", "min"]
    )
    for ms in range(1, 101):
        histogram.record(ms / 1000)
    out = histogram.summary()
    # Each percentile is the top of its bucket: never below the true value, at most 0.1% above.
    assert 50.0 <= out["p50"] <= 50.05 and 99.0 <= out["p99"] <= 99.1  # type: ignore[operator]
    assert out["p99_9"] == out["p99_99"] == out["max"] == 100.0
    assert out["min"] == 1.0 and out["mean"] == 50.5
