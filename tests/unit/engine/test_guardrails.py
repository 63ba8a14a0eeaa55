"""Production guardrails in the runner: a halt lever stops a run and refuses new ones, a preflight
"no" vetoes a run before anything runs, ``max_duration`` ends a forgotten run, and a ramp grows a
fault in stages until the steady state breaks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import registry
from chaoskit.engine import clocks, halts, journals, ledgers


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": "guardrails",
        "steady_state": [
            {"name": "healthy", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}
        ],
        "method": [{"name": "break", "fault": "fake.break", "with": {"targets": ["t1"]}}, {"pause": "1h"}],
        "rollbacks": [{"name": "roll back", "action": "fake.do", "with": {"output": "rolled back"}}],
    }
    doc.update(changes)
    return doc


def test_a_run_refuses_to_start_while_a_halt_is_in_force(tmp_path: Path) -> None:
    halts.write_file(halts.local_path(tmp_path), halts.new("database failover in progress"))
    fake = testing.FakeDriver()
    with pytest.raises(errors.HaltInForce, match="database failover in progress") as refused:
        testing.run_experiment(_doc(), [fake.driver()], state_dir=tmp_path)
    assert refused.value.exit_code == errors.ExitCode.HALTED == 5
    assert "chaoskit resume" in (refused.value.hint or "")
    assert fake.calls == [] and not ledgers.directory(tmp_path).exists()


def test_pulling_the_lever_stops_a_run_reverts_and_runs_rollbacks(tmp_path: Path) -> None:
    """A real-time run holding a fault in a long pause; the lever is pulled from another thread."""
    fake = testing.FakeDriver()
    timer = threading.Timer(0.5, lambda: halts.write_file(halts.local_path(tmp_path), halts.new("stop it")))
    timer.start()
    try:
        journal = testing.run_experiment(
            _doc(), [fake.driver()], clock=clocks.RealClock(), state_dir=tmp_path, run_id="halted-run"
        )
    finally:
        timer.cancel()
    assert journal.verdict is journals.Verdict.HALTED and journal.exit_code == 5
    assert "stop it" in journal.reason and "faults were reverted" in journal.reason
    assert fake.applied == set()
    assert [s.name for s in journal.rollbacks] == ["roll back"]
    assert ledgers.outstanding(tmp_path) == []


def test_a_halt_is_checked_before_every_inject(tmp_path: Path) -> None:
    """The lever is pulled by the step just before a fault: that fault is never injected."""
    fake = testing.FakeDriver()
    lever = halts.local_path(tmp_path)
    doc = _doc(
        method=[
            {"name": "first", "fault": "fake.break", "with": {"targets": ["t1"]}},
            {
                "name": "pull",
                "action": "python.call",
                "with": {"function": f"{__name__}:pull", "arguments": {"path": str(lever)}},
            },
            {"name": "second", "fault": "fake.break", "with": {"targets": ["t2"]}},
        ]
    )
    python = registry.load(only=["python"]).drivers["python"]
    journal = testing.run_experiment(doc, [fake.driver(), python], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.HALTED, journal.reason
    assert ("inject", "t1") in fake.calls and ("inject", "t2") not in fake.calls
    assert fake.applied == set()


def pull(path: str) -> None:
    halts.write_file(Path(path), halts.new("pulled by a step"))


def test_max_duration_ends_a_forgotten_run_as_halted(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    journal = testing.run_experiment(_doc(max_duration="10m"), [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.HALTED
    assert "max_duration 10m reached" in journal.reason
    assert fake.applied == set() and [s.name for s in journal.rollbacks] == ["roll back"]
    assert (journal.ended - journal.started).total_seconds() == pytest.approx(600, abs=1)


def test_the_default_max_duration_is_generous_but_there(tmp_path: Path) -> None:
    journal = testing.run_experiment(_doc(method=[{"pause": "3h"}]), state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.HALTED
    assert "max_duration 2h reached" in journal.reason


def test_a_preflight_no_vetoes_the_run_before_anything_runs(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    fake.scripts["incident"] = lambda now: {"open": 1}
    doc = _doc(
        preflight=[
            {
                "name": "no open incident",
                "probe": "fake.value",
                "with": {"key": "incident"},
                "expect": {"path": "open", "equals": 0},
            }
        ],
        setup=[{"name": "setup", "action": "fake.do", "with": {"output": "set up"}}],
        teardown=[{"name": "teardown", "action": "fake.do", "with": {"output": "torn down"}}],
    )
    journal = testing.run_experiment(doc, [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.VETOED and journal.exit_code == 6
    assert "no open incident" in journal.reason
    assert [c for c in fake.calls if c[0] != "probe"] == [], "setup, faults or teardown ran"
    assert [c.phase.value for c in journal.checks] == ["preflight"]


def test_a_preflight_yes_lets_the_run_go_on(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    fake.scripts["incident"] = lambda now: {"open": 0}
    doc = _doc(
        method=[{"name": "break", "fault": "fake.break", "with": {"targets": ["t1"]}}],
        preflight=[
            {"probe": "fake.value", "with": {"key": "incident"}, "expect": {"path": "open", "equals": 0}}
        ],
    )
    journal = testing.run_experiment(doc, [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.COMPLETED, journal.reason


def test_a_ramp_grows_in_stages_and_stops_at_the_first_that_breaks_the_steady_state(tmp_path: Path) -> None:
    targets = [f"t{i}" for i in range(10)]
    fake = testing.FakeDriver()
    fake.healthy = lambda: len(fake.applied) < 3  # type: ignore[method-assign]  # holds up to two broken
    doc = _doc(
        method=[
            {
                "name": "ramp",
                "fault": "fake.break",
                "with": {"targets": targets},
                "ramp": {"stages": [1, 2, 5, 8], "hold": "5s"},
            }
        ]
    )
    journal = testing.run_experiment(doc, [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.DEVIATED
    assert "ramp: ramp stage 3/4 (5 of the targets) broke the steady state" in journal.reason
    injected = [c for c in fake.calls if c[0] == "inject"]
    assert len(injected) == 1 + 2 + 5, "stage 4 ran after stage 3 broke the steady state"
    assert fake.applied == set()


def test_a_ramp_by_an_argument_and_its_refusals_at_validation(tmp_path: Path) -> None:
    bad = _doc(method=[{"fault": "fake.break", "with": {"targets": ["t1"]}, "ramp": ["10%"]}])
    with pytest.raises(errors.SpecError, match=r"ramp\.stages\[0\]: percent: unknown argument"):
        testing.run_experiment(bad, state_dir=tmp_path)
    wrong = _doc(
        method=[
            {"fault": "fake.break", "with": {"targets": ["t1"]}, "ramp": {"by": "latency", "stages": [1]}}
        ]
    )
    with pytest.raises(errors.SpecError, match=r"fake\.break has no argument 'latency' to ramp"):
        testing.run_experiment(wrong, state_dir=tmp_path)
    good = _doc(
        steady_state=[],
        method=[
            {"fault": "fake.break", "with": {"targets": ["t1", "t2", "t3"]}, "ramp": [1, 3], "duration": "1m"}
        ],
    )
    journal = testing.run_experiment(good, state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.COMPLETED, journal.reason


def test_halt_watch_reports_an_unreadable_lever_once_and_does_not_halt(tmp_path: Path) -> None:
    halts.local_path(tmp_path).write_bytes(b"\xff\xfe")
    watch = halts.Watch(tmp_path)
    assert watch.check() is None and watch.check() is None
    assert len(watch.problems) == 1 and "can't be read" in watch.problems[0]
    asyncio.run(asyncio.sleep(0))


@pytest.mark.parametrize(
    ("strategy", "deviates", "ran"),
    [
        ("method-started", True, True),
        ("method-started", False, True),
        ("never", True, False),
        ("deviated", True, True),
        ("deviated", False, False),
        ("not-deviated", True, False),
        ("not-deviated", False, True),
    ],
)
def test_rollback_strategies_decide_when_rollbacks_run(
    tmp_path: Path, strategy: str, deviates: bool, ran: bool
) -> None:
    fake = testing.FakeDriver()
    fake.recovery_delay = 120.0 if deviates else 0.0
    doc = _doc(
        method=[{"name": "break", "fault": "fake.break", "with": {"targets": ["t1"]}}],
        recovery={"within": "30s"},
        rollback_strategy=strategy,
    )
    journal = testing.run_experiment(doc, [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is (journals.Verdict.DEVIATED if deviates else journals.Verdict.COMPLETED)
    assert bool(journal.rollbacks) is ran


def test_rollbacks_always_run_even_when_the_method_never_started(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    fake.applied.add("t0")  # not steady before
    journal = testing.run_experiment(_doc(rollback_strategy="always"), [fake.driver()], state_dir=tmp_path)
    assert journal.verdict is journals.Verdict.NOT_STEADY
    assert [s.name for s in journal.rollbacks] == ["roll back"]


def test_recovery_within_zero_judges_the_first_poll_once(tmp_path: Path) -> None:
    held = testing.run_experiment(
        _doc(method=[{"fault": "fake.break", "with": {"targets": ["t1"]}}], recovery={"within": "0s"}),
        [testing.FakeDriver().driver()],
        clock=clocks.RealClock(),
        state_dir=tmp_path,
    )
    assert held.verdict is journals.Verdict.COMPLETED, held.reason
    assert held.recovery is not None and held.recovery.polls == 1
