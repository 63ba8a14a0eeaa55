"""The shared pieces every driver and the engine build on: durations, target selection."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit import durations, errors
from chaoskit.drivers import contract, targeting


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("1m30s", 90), (2, 2.0), ("1.5", 1.5)],
)
def test_durations_parse_what_users_write(text: object, seconds: float) -> None:
    assert durations.parse(text) == seconds


@pytest.mark.parametrize("bad", ["-1s", "ten seconds", "5 minutes", True, None, "1x"])
def test_bad_durations_say_how_to_write_one(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        durations.parse(bad)


@given(st.integers(min_value=0, max_value=10**6))
def test_formatted_whole_seconds_parse_back(seconds: int) -> None:
    assert durations.parse(durations.format(seconds)) == pytest.approx(seconds, abs=0.5)


def _targets(n: int) -> list[contract.Target]:
    return [contract.Target(kind="pod", id=f"ns/p{i:03d}", name=f"p{i:03d}") for i in range(n)]


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=60), st.integers())
def test_count_picks_that_many_and_the_seed_repeats_the_pick(n: int, count: int, seed: int) -> None:
    sel = targeting.Selection(count=count)
    first = targeting.choose(_targets(n), sel, random.Random(seed))
    again = targeting.choose(_targets(n), sel, random.Random(seed))
    assert len(first) == min(n, count)
    assert first == again
    assert len({t.id for t in first}) == len(first)


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0.1, max_value=100))
def test_percent_rounds_up_and_hits_at_least_one(n: int, percent: float) -> None:
    chosen = targeting.choose(_targets(n), targeting.Selection(percent=percent), random.Random(1))
    assert 1 <= len(chosen) <= n
    assert len(chosen) >= n * percent / 100 - 1e-9


def test_blast_radius_cap_names_the_number_that_would_be_hit() -> None:
    with pytest.raises(errors.TargetError, match=r"5 pods would be hit, more than max_targets=3"):
        targeting.choose(_targets(5), targeting.Selection(max_targets=3), random.Random(), what="pods")
    with pytest.raises(errors.TargetError, match=r"3 of 4 pods \(75%\)"):
        targeting.choose(
            _targets(4), targeting.Selection(count=3, max_percent=50), random.Random(), what="pods"
        )


def test_nothing_matched_is_an_error_with_a_hint() -> None:
    with pytest.raises(errors.TargetError, match="no pods matched") as info:
        targeting.choose([], targeting.Selection(), random.Random(), what="pods")
    assert "--dry-run" in info.value.render()


def test_only_one_selection_mode() -> None:
    with pytest.raises(ValueError, match="only one of count, percent or all"):
        targeting.Selection(count=1, percent=10)
