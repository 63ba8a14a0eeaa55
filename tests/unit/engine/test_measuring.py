"""Continuous measurement (``measure:``): sampled from the start of the method until recovery is
judged, journaled, never judged, and never in the way of the run's own steps and guards."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import contract
from chaoskit.engine import clocks, events, journals, measuring, phases, planning, running

Verdict = journals.Verdict


def _doc(**sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": "measured",
        "steady_state": [{"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}],
        "method": [{"name": "break", "fault": "fake.break", "duration": "5s"}],
        "guards": [{"name": "watch", "probe": "fake.value", "with": {"key": "guard"}, "interval": "2s"}],
        "recovery": {"within": "30s", "interval": "1s"},
    }
    doc.update(sections)
    return doc


def _fake(recovery_delay: float = 3.0) -> testing.FakeDriver:
    fake = testing.FakeDriver(recovery_delay=recovery_delay)
    fake.script("guard", lambda t: 1)
    fake.script("latency", lambda t: {"p50": 10 + t, "p99": 100 + 2 * t})
    return fake


def _seconds(journal: journals.Journal, when: Any) -> float:
    return round(float((when - journal.started).total_seconds()), 6)


MEASURE = {
    "name": "latency",
    "probe": "fake.value",
    "with": {"key": "latency"},
    "every": "1s",
    "keep": {"p50_ms": "p50", "p99_ms": "p99"},
}


def test_samples_are_taken_every_interval_from_the_method_start_until_recovery_is_judged() -> None:
    fake = _fake()
    journal = testing.run_experiment(_doc(measure=MEASURE), drivers=[fake.driver()], clock=fake.clock)
    assert journal.verdict is Verdict.COMPLETED
    method_start = min(_seconds(journal, s.started) for s in journal.steps if s.phase is phases.Phase.METHOD)
    after = [c for c in journal.checks if c.phase is phases.Phase.AFTER]
    recovered_at = _seconds(journal, after[-1].at)
    # The fault holds 5 s, recovery takes 3 s more: recovered at 8 s after the method started.
    assert recovered_at - method_start == pytest.approx(8.0)
    times = [_seconds(journal, s.at) - method_start for s in journal.samples]
    assert times == [pytest.approx(float(t)) for t in range(9)]
    # Each sample holds what the probe said at that (virtual) time, at the paths kept.
    for sample, t in zip(journal.samples, range(9), strict=True):
        assert sample.measure == "latency" and sample.error is None
        assert sample.values == {"p50_ms": pytest.approx(10 + t), "p99_ms": pytest.approx(100 + 2 * t)}
    (record,) = journal.measures
    assert (record.name, record.activity, record.every) == ("latency", "fake.value", 1.0)
    assert (record.samples, record.skipped) == (9, 0)
    # Nothing was judged: no check, no step record, for the measure.
    assert all(c.step != "latency" for c in journal.checks)
    assert all(s.name != "latency" for s in journal.steps)


def test_a_run_without_measure_is_the_same_run_as_before() -> None:
    plain_fake, measured_fake = _fake(), _fake()
    plain = testing.run_experiment(_doc(), drivers=[plain_fake.driver()], clock=plain_fake.clock)
    measured = testing.run_experiment(
        _doc(measure=MEASURE), drivers=[measured_fake.driver()], clock=measured_fake.clock
    )
    assert plain.measures == [] and plain.samples == []
    assert ("probe", "latency") not in plain_fake.calls

    def shape(journal: journals.Journal) -> dict[str, Any]:
        return {
            "verdict": journal.verdict,
            "checks": [(c.phase, c.step, _seconds(journal, c.at), c.ok, c.value) for c in journal.checks],
            "steps": [(s.phase, s.name, _seconds(journal, s.started), s.status) for s in journal.steps],
            "faults": [
                (f.target.id, _seconds(journal, f.injected_at), _seconds(journal, f.reverted_at))
                for f in journal.faults
            ],
            "recovery": journal.recovery,
            "ended": _seconds(journal, journal.ended),
        }

    # Measuring changes nothing the run itself does, nor when it does it.
    assert shape(measured) == shape(plain)
    assert [c for c in measured_fake.calls if c != ("probe", "latency")] == plain_fake.calls


def test_a_failing_sample_is_journaled_with_its_error_and_judges_nothing() -> None:
    fake = _fake()
    doc = _doc(measure={"probe": "fake.value", "with": {"key": "nothing scripted"}, "every": "2s"})
    journal = testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock)
    assert journal.verdict is Verdict.COMPLETED and journal.errors == []
    assert len(journal.samples) == 5  # 0, 2, 4, 6, 8 s
    assert all(s.values == {} and "nothing scripted" in (s.error or "") for s in journal.samples)


def test_a_measure_with_an_unknown_probe_is_refused_before_the_run_at_its_place() -> None:
    doc = _doc(measure=[MEASURE, {"probe": "http.lod", "with": {}}])
    with pytest.raises(errors.SpecError) as caught:
        testing.run_experiment(doc)
    (problem,) = caught.value.problems
    assert problem.path == "measure[1].probe" and "http.lod" in problem.message


def test_measure_every_below_100ms_is_refused() -> None:
    with pytest.raises(errors.SpecError) as caught:
        testing.run_experiment(_doc(measure={**MEASURE, "every": "10ms"}))
    assert "at least 100ms" in caught.value.render()


def test_http_load_samples_keep_p50_p99_and_the_error_ratio_only() -> None:
    output: dict[str, Any] = {
        "requests": 200,
        "successes": 190,
        "success_ratio": 0.95,
        "latency_ms": {"p50": 4.2, "p99": 180.5, "p99.9": 300.0},
        "histogram": {"unit": "ms", "le": [1.0, 2.0], "counts": [100, 100]},
        "errors": {"timeout": 10},
    }
    assert measuring.values_of("http.load", output, {}) == {
        "p50_ms": 4.2,
        "p99_ms": 180.5,
        "error_ratio": 0.05,
        "requests": 200.0,
    }
    # Nothing answered: no latency, and no ratio to speak of (a gap, not a 0 % error rate).
    empty: dict[str, Any] = {"requests": 0, "successes": 0, "latency_ms": {}}
    assert measuring.values_of("http.load", empty, {}) == {
        "p50_ms": None,
        "p99_ms": None,
        "error_ratio": None,
        "requests": 0.0,
    }
    assert measuring.values_of("prometheus.query", {"value": 0.25, "series": 1}, {}) == {"value": 0.25}
    assert measuring.values_of("any.probe", 7, {}) == {"value": 7.0}
    assert measuring.values_of("any.probe", {"a": {"b": 3}}, {"deep": "a.b", "gone": "a.c"}) == {
        "deep": 3.0,
        "gone": None,
    }


class _SlowArgs(contract.Args):
    seconds: float = 0.35


class _Slow(contract.Probe[_SlowArgs]):
    """A probe that takes real time, to see that only one sample runs at a time."""

    name = "slow.sample"
    summary = "sleeps, counting how many of it run at once"
    args = _SlowArgs

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def run(self, args: _SlowArgs, ctx: contract.RunContext) -> contract.JsonValue:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(args.seconds)
            return 1
        finally:
            with self.lock:
                self.running -= 1


def test_a_slow_sample_skips_ticks_instead_of_piling_up_and_never_delays_guards() -> None:
    fake = _fake(recovery_delay=0.0)
    slow = _Slow()
    driver = contract.Driver(name="slow", summary="a slow probe", probes=[slow])
    doc = _doc(
        method=[{"pause": "1500ms"}],
        guards=[{"name": "watch", "probe": "fake.value", "with": {"key": "guard"}, "interval": "100ms"}],
        measure={"probe": "slow.sample", "every": "100ms"},
    )
    journal = testing.run_experiment(doc, drivers=[fake.driver(), driver], clock=clocks.RealClock())
    assert journal.verdict is Verdict.COMPLETED
    assert slow.most == 1
    (record,) = journal.measures
    assert 3 <= record.samples <= 6
    assert record.skipped >= 2 * record.samples
    for earlier, later in itertools.pairwise(journal.samples):
        assert (later.at - earlier.at).total_seconds() >= earlier.elapsed - 0.01
    # The guard kept its 100 ms interval while samples of 350 ms ran beside it.
    polls = [c.at for c in journal.checks if c.phase is phases.Phase.GUARD]
    assert len(polls) >= 10
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(polls)]
    assert statistics.median(gaps) < 0.2  # a guard waiting on samples would poll every 350 ms


def test_an_interrupted_run_stops_sampling_at_once_and_journals_what_it_took(tmp_path: Path) -> None:
    fake = _fake()
    doc = _doc(method=[{"fault": "fake.break"}, {"pause": "1h"}], measure=MEASURE)
    planned = planning.plan(testing.source(doc), fake.registry())
    bus = events.Bus()
    runner = running.Runner(planned, running.Settings(state_dir=tmp_path, seed=1), clock=fake.clock, bus=bus)

    def on(event: events.Event) -> None:
        if isinstance(event, events.Sampled) and event.sample.values.get("p50_ms") == 13:
            runner.interrupt()  # at the fourth sample, 3 s into the method

    bus.subscribe(on)
    journal = asyncio.run(runner.run())
    assert journal.verdict is Verdict.INTERRUPTED and fake.applied == set()
    assert [s.values["p50_ms"] for s in journal.samples] == [10, 11, 12, 13]
    (record,) = journal.measures
    assert record.samples == 4
    # Not an hour of samples: the run ended 3 s after the method started.
    assert _seconds(journal, journal.ended) < 4
