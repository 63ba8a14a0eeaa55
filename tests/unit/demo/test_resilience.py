"""The demo's resilience patterns, each on its own: what a pattern experiment relies on."""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner

from chaoskit.cli import main
from chaoskit.demo import resilience


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_threshold_failures_in_a_row_and_refuses_calls() -> None:
    breaker = resilience.Breaker(threshold=3, open_for=1.0, clock=Clock())
    for ok in (False, False, True, False, False):  # a success in between starts the count again
        breaker.allow()
        breaker.record(ok)
    assert breaker.state is resilience.State.CLOSED
    breaker.allow()
    breaker.record(False)
    assert (breaker.state, breaker.opened) == (resilience.State.OPEN, 1)
    with pytest.raises(resilience.Open):
        breaker.allow()


def test_the_breaker_half_opens_for_one_trial_and_closes_on_its_success() -> None:
    clock = Clock()
    breaker = resilience.Breaker(threshold=1, open_for=1.0, clock=clock)
    breaker.record(False)
    clock.now += 0.99
    with pytest.raises(resilience.Open):
        breaker.allow()
    clock.now += 0.01
    breaker.allow()  # the trial
    assert breaker.state is resilience.State.HALF_OPEN
    with pytest.raises(resilience.Open):
        breaker.allow()  # one trial at a time
    breaker.record(True)
    assert breaker.state == resilience.State.CLOSED  # type: ignore[comparison-overlap]  # narrowed by the assert above
    breaker.allow()


def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = resilience.Breaker(threshold=5, open_for=1.0, clock=clock)
    for _ in range(5):
        breaker.record(False)
    clock.now += 1.0
    breaker.allow()
    breaker.record(False)
    assert (breaker.state, breaker.opened) == (resilience.State.OPEN, 2)
    with pytest.raises(resilience.Open):
        breaker.allow()


def test_the_retry_budget_bounds_retries_to_a_share_of_requests() -> None:
    budget = resilience.RetryBudget(ratio=0.2, reserve=10.0)
    retries = 0
    for _ in range(1000):  # a dead dependency: every request would retry 4 times
        budget.deposit()
        retries += sum(budget.withdraw() for _ in range(4))
    assert retries <= 0.2 * 1000 + 10
    assert retries >= 0.2 * 1000 - 1


def test_backoff_is_jittered_under_an_exponential_ceiling() -> None:
    random.seed(7)
    for retry, ceiling in ((1, 0.05), (2, 0.1), (3, 0.2), (10, 1.0)):
        waits = [resilience.backoff(retry) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) - min(waits) > ceiling / 2  # spread out, not in step


def test_pools_are_per_dependency_with_a_bulkhead_and_shared_without() -> None:
    walled = resilience.Pools(1, ["a", "b"], bulkhead=True)
    assert walled.slot("a").acquire(blocking=False)
    assert walled.slot("b").acquire(blocking=False)
    shared = resilience.Pools(1, ["a", "b"], bulkhead=False)
    assert shared.slot("a").acquire(blocking=False)
    assert not shared.slot("b").acquire(blocking=False)


def test_an_instance_leaves_the_rotation_after_failed_checks_and_comes_back() -> None:
    rotation = resilience.Rotation(["i0", "i1", "i2"], failures=2)
    rotation.checked("i1", False)
    assert rotation.up["i1"]  # one failure is not enough
    rotation.checked("i1", False)
    assert not rotation.up["i1"]
    assert {name for _ in range(6) for name in rotation.pick(2)} == {"i0", "i2"}
    rotation.checked("i1", True)
    assert "i1" in {rotation.pick(1)[0] for _ in range(3)}


def test_a_rotation_with_every_instance_down_still_picks_from_all() -> None:
    rotation = resilience.Rotation(["i0", "i1"], failures=1)
    rotation.checked("i0", False)
    rotation.checked("i1", False)
    assert sorted(rotation.pick(2)) == ["i0", "i1"]


def test_patterns_are_switched_by_name_over_their_defaults() -> None:
    states = resilience.parse_patterns(["breaker=on", "retry=off", "health=false", "shedding=TRUE"])
    assert states == {
        "timeout": True,
        "retry": False,
        "breaker": True,
        "bulkhead": True,
        "health": False,
        "shedding": True,
        "hedging": False,
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [("breakers=on", "unknown pattern 'breakers'"), ("breaker", "write breaker=on or breaker=off")],
)
def test_a_wrong_pattern_is_a_usage_error_with_exit_2(item: str, message: str) -> None:
    result = CliRunner().invoke(main.cli, ["demo", "--pattern", item], catch_exceptions=False)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
