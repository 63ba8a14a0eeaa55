"""Checks against a real clock: a user's ``call:`` expectation runs off the event loop."""

from __future__ import annotations

import threading
import time
from typing import Any

from chaoskit import testing
from chaoskit.engine import clocks, journals, phases

Verdict = journals.Verdict
RELEASE = threading.Event()
"""Lets a slow ``call:`` left behind by a timeout finish at the end of its test."""


def accept_slowly(value: Any, seconds: float) -> bool:
    """An expectation that takes its time, as one calling a service would."""
    RELEASE.wait(seconds)
    return True


def _doc(call: dict[str, Any], **step: Any) -> dict[str, Any]:
    return {
        "title": "a slow call:",
        "steady_state": [{"name": "up", "probe": "fake.status"}],
        "guards": [{"name": "watch", "probe": "fake.status", "interval": "50ms"}],
        "method": [{"name": "judge slowly", "probe": "fake.status", "expect": call, **step}],
    }


def test_a_slow_call_expectation_does_not_stop_a_guard_keeping_its_interval() -> None:
    RELEASE.clear()
    call = {"call": f"{__name__}:accept_slowly", "arguments": {"seconds": 0.8}}
    journal = testing.run_experiment(
        _doc(call), drivers=[testing.FakeDriver().driver()], clock=clocks.RealClock()
    )
    assert journal.verdict is Verdict.COMPLETED
    [judged] = [c for c in journal.checks if c.step == "judge slowly"]
    began = judged.at.timestamp()
    polls = [c for c in journal.checks if c.phase is phases.Phase.GUARD and c.at.timestamp() > began + 0.05]
    # Every 50 ms for 0.8 s is 16 polls; a call blocking the loop would let none through until it returned.
    assert len([c for c in polls if c.at.timestamp() < began + 0.75]) >= 5


def test_a_call_expectation_gets_the_steps_timeout() -> None:
    RELEASE.clear()
    call = {"call": f"{__name__}:accept_slowly", "arguments": {"seconds": 30}}
    started = time.monotonic()
    try:
        journal = testing.run_experiment(
            _doc(call, timeout="300ms"), drivers=[testing.FakeDriver().driver()], clock=clocks.RealClock()
        )
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 10
    assert journal.verdict is Verdict.DEVIATED
    [judged] = [c for c in journal.checks if c.step == "judge slowly"]
    assert not judged.ok
    assert judged.message == (
        f"expected output accepted by {__name__}:accept_slowly(), but {__name__}:accept_slowly() "
        "timed out after 300ms"
    )
