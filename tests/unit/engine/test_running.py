"""The runner in virtual time, with the fake driver: verdicts, reverts, guards, recovery, ledger."""

from __future__ import annotations

import asyncio
import json
import threading
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit import errors, testing
from chaoskit.engine import clocks, events, journals, ledgers, phases, planning, running

Verdict = journals.Verdict


def _doc(**sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": "fake",
        "steady_state": [{"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}],
        "method": [{"name": "break", "fault": "fake.break", "with": {"targets": ["a", "b"]}}],
        "recovery": {"within": "30s", "interval": "1s"},
    }
    doc.update(sections)
    return doc


def _run(doc: dict[str, Any], fake: testing.FakeDriver | None = None, **kw: Any) -> journals.Journal:
    fake = fake or testing.FakeDriver()
    return testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock, **kw)


def _seconds(journal: journals.Journal, when: Any) -> float:
    return (when - journal.started).total_seconds()


def _waits_for(
    name: str, key: str, expect: Any, within: str, interval: str = "1s", **step: Any
) -> dict[str, Any]:
    """A probe step polling the scripted value ``key`` until it equals ``expect`` (or ``expect``
    is a whole check mapping)."""
    check = expect if isinstance(expect, dict) else {"equals": expect}
    until = {"within": within, "interval": interval}
    return {
        "name": name,
        "probe": "fake.value",
        "with": {"key": key},
        "expect": check,
        "until": until,
        **step,
    }


def test_a_healthy_run_completes_with_exit_0_and_every_fault_reverted() -> None:
    fake = testing.FakeDriver()
    journal = _run(_doc(), fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.COMPLETED, 0)
    assert [f.target.id for f in journal.faults] == ["a", "b"]
    assert all(f.revert is journals.RevertStatus.REVERTED for f in journal.faults)
    assert fake.applied == set()
    assert [c.phase for c in journal.checks] == [phases.Phase.BEFORE, phases.Phase.AFTER]


def test_not_steady_before_injects_nothing_and_exits_3() -> None:
    fake = testing.FakeDriver()
    fake.applied.add("already-broken")
    journal = _run(_doc(), fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.NOT_STEADY, 3)
    assert not [c for c in fake.calls if c[0] == "inject"]
    assert journal.faults == []
    assert "expected status equals 200, got 503" in journal.reason


def test_a_failed_method_probe_deviates_but_the_run_goes_on() -> None:
    doc = _doc(
        method=[
            {"name": "break", "fault": "fake.break", "with": {"targets": ["a"]}},
            {"name": "still up?", "probe": "fake.status", "expect": {"path": "status", "equals": 200}},
            {"name": "after", "action": "fake.do", "with": {"output": "ran"}},
        ]
    )
    journal = _run(doc)
    assert (journal.verdict, journal.exit_code) == (Verdict.DEVIATED, 1)
    assert "still up?" in journal.reason
    assert [s.status for s in journal.steps] == ["ok", "failed", "ok"]
    method_checks = [c for c in journal.checks if c.phase is phases.Phase.METHOD]
    assert method_checks[0].message == "expected status equals 200, got 503"


def test_recovery_time_is_measured_from_the_last_revert() -> None:
    fake = testing.FakeDriver(recovery_delay=4.0)
    journal = _run(_doc(method=[{"fault": "fake.break", "duration": "10s"}]), fake)
    assert journal.verdict is Verdict.COMPLETED
    assert journal.recovery is not None
    assert journal.recovery.measured == pytest.approx(4.0)
    assert journal.recovery.met
    after = [c for c in journal.checks if c.phase is phases.Phase.AFTER]
    assert [c.ok for c in after] == [False, False, False, False, True]  # every poll is kept


def test_recovering_too_slowly_deviates_and_measured_is_null() -> None:
    fake = testing.FakeDriver(recovery_delay=60.0)
    journal = _run(_doc(recovery={"within": "5s", "interval": "1s"}), fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.DEVIATED, 1)
    assert journal.recovery is not None
    assert journal.recovery.measured is None and not journal.recovery.met
    assert "did not hold again within 5s" in journal.reason


def test_a_duration_fault_reverts_when_it_elapses_while_later_steps_run() -> None:
    doc = _doc(
        method=[
            {"name": "short", "fault": "fake.break", "with": {"targets": ["a"]}, "duration": "3s"},
            {"name": "long", "fault": "fake.break", "with": {"targets": ["b"]}, "duration": "8s"},
            {"pause": "5s"},
            {"name": "mid", "probe": "fake.status"},
        ]
    )
    journal = _run(doc)
    by_target = {f.target.id: f for f in journal.faults}
    assert _seconds(journal, by_target["a"].reverted_at) == pytest.approx(3)
    assert _seconds(journal, by_target["b"].reverted_at) == pytest.approx(8)
    assert journal.verdict is Verdict.COMPLETED


def test_a_guard_trip_stops_the_method_within_one_interval_and_reverts_everything() -> None:
    fake = testing.FakeDriver()
    fake.script("errors", lambda t: 0 if t < 4.5 else 50)
    doc = _doc(
        method=[
            {"name": "break", "fault": "fake.break", "with": {"targets": ["a"]}},
            {"pause": "1h"},
            {"name": "never", "action": "fake.do", "with": {"output": "should not run"}},
        ],
        guards=[
            {
                "name": "error budget",
                "probe": "fake.value",
                "with": {"key": "errors"},
                "expect": {"below": 10},
                "interval": "2s",
            }
        ],
    )
    journal = _run(doc, fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.DEVIATED, 1)
    [trip] = journal.guard_trips
    first_bad = 4.5
    assert first_bad <= _seconds(journal, trip.at) <= first_bad + 2.0
    assert _seconds(journal, journal.faults[0].reverted_at) <= first_bad + 2.0
    assert ("action", "should not run") not in fake.calls
    assert journal.steps[-1].status is journals.StepStatus.CANCELLED
    assert fake.applied == set()


def test_guard_failures_in_a_row() -> None:
    fake = testing.FakeDriver()
    flaky = iter([1, 0, 1, 1, 1, 1, 1, 1])
    fake.script("bad", lambda t: next(flaky, 1))
    doc = _doc(
        method=[{"pause": "1m"}],
        guards=[{"probe": "fake.value", "with": {"key": "bad"}, "expect": {"equals": 0}, "failures": 3}],
    )
    journal = _run(doc, fake)
    [trip] = journal.guard_trips
    assert trip.failures == 3
    assert [c.ok for c in journal.checks if c.phase is phases.Phase.GUARD] == [
        False,
        True,
        False,
        False,
        False,
    ]


def test_an_inject_failure_is_an_error_and_what_was_applied_is_reverted() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        method=[
            {"name": "ok one", "fault": "fake.break", "with": {"targets": ["a"]}},
            {"name": "bad one", "fault": "fake.break", "with": {"targets": ["b"], "fail_inject": True}},
            {"name": "not reached", "action": "fake.do", "with": {"output": "x"}},
        ]
    )
    journal = _run(doc, fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 4)
    assert "inject failed" in journal.reason and "b" in journal.reason
    assert fake.applied == set()
    assert ("revert", "a") in fake.calls
    assert ("action", "x") not in fake.calls
    assert journal.recovery is None  # no after-hypothesis on an error


def test_a_revert_failure_is_an_error_recorded_on_the_fault() -> None:
    fake = testing.FakeDriver()
    journal = _run(_doc(method=[{"fault": "fake.break", "with": {"fail_revert": True}}]), fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 4)
    assert journal.faults[0].revert is journals.RevertStatus.FAILED
    assert "revert told to fail" in (journal.faults[0].revert_error or "")


def test_rollbacks_all_run_when_one_fails_and_each_failure_is_reported() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        rollbacks=[
            {"name": "r1", "action": "fake.do", "with": {"output": "r1", "fail": True}},
            {"name": "r2", "action": "fake.do", "with": {"output": "r2"}},
            {"name": "r3", "action": "fake.do", "with": {"output": "r3", "fail": True}},
        ]
    )
    journal = _run(doc, fake)
    assert [r.status for r in journal.rollbacks] == ["error", "ok", "error"]
    assert [e.step for e in journal.errors] == ["r1", "r3"]
    assert journal.verdict is Verdict.ERROR


def test_leftovers_are_undone_after_teardown_newest_first() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        setup=[
            {"action": "fake.do", "with": {"output": "s1", "leave": "first"}},
            {"action": "fake.do", "with": {"output": "s2", "leave": "second"}},
        ],
        teardown=[{"action": "fake.do", "with": {"output": "td"}}],
    )
    journal = _run(doc, fake)
    tail = fake.calls[-3:]
    assert tail == [("action", "td"), ("undo", "second"), ("undo", "first")]
    assert [u.outcome for u in journal.undo] == ["reverted", "reverted"]


def test_background_steps_run_concurrently_and_are_awaited_at_method_end() -> None:
    doc = _doc(
        method=[
            {
                "name": "bg",
                "fault": "fake.break",
                "with": {"targets": ["a"]},
                "duration": "5s",
                "background": True,
            },
            {"name": "bg pause", "pause": "4s"},
            {"name": "fg", "action": "fake.do", "with": {"output": "fg"}},
        ]
    )
    journal = _run(doc)
    fg = next(s for s in journal.steps if s.name == "fg")
    assert _seconds(journal, fg.started) == pytest.approx(4)
    assert _seconds(journal, journal.faults[0].reverted_at) == pytest.approx(5)


def test_a_probe_that_times_out_fails_its_check() -> None:
    fake = testing.FakeDriver()

    class Slow(testing.FakeClock):
        async def blocking(self, call: Any) -> Any:
            await self.sleep(10)
            return await super().blocking(call)

    clock = Slow()
    fake.clock = clock
    doc = _doc(steady_state=[{"name": "slow", "probe": "fake.status", "timeout": "2s"}], method=[])
    journal = _run(doc, fake)
    assert journal.verdict is Verdict.NOT_STEADY
    assert journal.checks[0].error == "timed out after 2s"


def test_step_outputs_feed_later_steps() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        setup=[{"id": "made", "action": "fake.do", "with": {"output": {"name": "t9"}}}],
        method=[{"fault": "fake.break", "with": {"targets": ["${steps.made.output.name}"]}}],
    )
    journal = _run(doc, fake)
    assert [f.target.id for f in journal.faults] == ["t9"]


def test_a_secret_a_probe_echoes_is_redacted_from_journal_and_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CK_TEST_API", "s3cr3t-value")
    seen: list[events.Event] = []
    doc = _doc(
        secrets={"api": {"env": "CK_TEST_API"}},
        steady_state=[
            {
                "name": "echo",
                "probe": "fake.value",
                "with": {"echo": "token=${secrets.api}"},
                "expect": {"matches": "token"},
            }
        ],
    )
    journal = _run(doc, subscribers=[seen.append], state_dir=tmp_path)
    assert journal.verdict is Verdict.COMPLETED
    assert "s3cr3t-value" not in journal.model_dump_json()
    assert "s3cr3t-value" not in repr(seen)
    assert journal.checks[0].value == "token=***"
    ledger_text = "".join(p.read_text() for p in ledgers.directory(tmp_path).iterdir())
    assert "s3cr3t-value" not in ledger_text


def test_the_ledger_says_intent_then_applied_then_reverted(tmp_path: Path) -> None:
    journal = _run(_doc(), state_dir=tmp_path, run_id="run-1")
    lines = [json.loads(line) for line in ledgers.path_of(tmp_path, "run-1").read_text().splitlines()]
    kinds = [(line["type"], line.get("id")) for line in lines]
    assert kinds[0] == ("run-start", None) and kinds[-1] == ("run-end", None)
    entries = list(dict.fromkeys(i for _, i in kinds if i is not None))
    assert [e.split("-")[0] for e in entries] == ["f1", "f2"]
    assert len({e.split("-")[1] for e in entries}) == 1, "one token per run: entry ids are unique across runs"
    for entry in entries:
        order = [k for k, i in kinds if i == entry]
        assert order == ["intent", "applied", "reverted"]
    assert lines[1]["revert"] == {"v": 1, "target": "a", "fail_revert": False}
    assert ledgers.outstanding(tmp_path) == []
    assert journal.ledger == str(ledgers.path_of(tmp_path, "run-1"))


def test_self_healing_faults_are_ledgered_as_needing_no_revert(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    journal = _run(_doc(method=[{"fault": "fake.kill"}]), fake, state_dir=tmp_path)
    assert journal.faults[0].revert is journals.RevertStatus.NOT_NEEDED
    assert ("revert", "t1") not in fake.calls
    assert ledgers.outstanding(tmp_path) == []


def test_the_seed_is_journaled_and_repeats_random_target_choices() -> None:
    many = [f"t{i:02d}" for i in range(40)]
    doc = _doc(method=[{"fault": "fake.break", "with": {"targets": many, "count": 3}}])
    first = _run(doc, seed=42)
    again = _run(doc, seed=42)
    other = [_run(doc, seed=s) for s in (1, 2, 3)]
    assert first.seed == 42
    assert [f.target.id for f in first.faults] == [f.target.id for f in again.faults]
    assert any([f.target.id for f in o.faults] != [f.target.id for f in first.faults] for o in other)


def test_without_a_seed_one_is_chosen_and_journaled(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    planned = planning.plan(testing.source(_doc()), fake.registry())
    runner = running.Runner(planned, running.Settings(state_dir=tmp_path), clock=fake.clock)
    journal = asyncio.run(runner.run())
    assert journal.seed == runner.seed


def test_interrupt_reverts_runs_rollbacks_and_exits_130(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        method=[{"fault": "fake.break", "with": {"targets": ["a"]}}, {"pause": "1h"}],
        rollbacks=[{"name": "rb", "action": "fake.do", "with": {"output": "rolled back"}}],
    )
    planned = planning.plan(testing.source(doc), fake.registry())
    bus = events.Bus()
    seen: list[events.Event] = []
    bus.subscribe(seen.append)
    runner = running.Runner(planned, running.Settings(state_dir=tmp_path, seed=1), clock=fake.clock, bus=bus)

    def on(event: events.Event) -> None:
        if isinstance(event, events.FaultInjected):
            runner.interrupt()
            runner.interrupt()  # a second Ctrl-C says what is still applied and how to recover

    bus.subscribe(on)
    journal = asyncio.run(runner.run())
    assert (journal.verdict, journal.exit_code) == (Verdict.INTERRUPTED, 130)
    assert fake.applied == set()
    assert ("action", "rolled back") in fake.calls
    [still] = [e for e in seen if isinstance(e, events.StillApplied)]
    assert still.faults and "fake.break on fake a" in still.faults[0]
    assert still.command.startswith(f"chaoskit recover {runner.run_id}")


def test_planning_collects_every_problem_with_did_you_mean() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        method=[
            {"fault": "fake.brake"},
            {"fault": "fake.break", "with": {"targets": "not-a-list", "colour": 1}},
            {"fault": "fake.destroy"},
            {"fault": "fake.status"},
        ]
    )
    with pytest.raises(errors.SpecError) as info:
        planning.plan(testing.source(doc, "x.yaml"), fake.registry())
    text = info.value.render()
    assert info.value.exit_code == 2
    assert "method[0].fault: unknown fault 'fake.brake' (did you mean 'fake.break'?)" in text
    assert "method[1].with.targets:" in text
    assert "method[1].with: unknown argument 'colour'" in text
    assert "method[2].fault: fake.destroy can't be undone; add `irreversible: ok`" in text
    assert "method[3].fault: fake.status is a probe, not a fault" in text


def test_irreversible_ok_is_accepted() -> None:
    fake = testing.FakeDriver()
    planning.plan(
        testing.source(_doc(method=[{"fault": "fake.destroy", "irreversible": "ok"}])), fake.registry()
    )


def test_dry_run_resolves_targets_and_touches_nothing() -> None:
    fake = testing.FakeDriver()
    planned = planning.plan(testing.source(_doc()), fake.registry())
    from chaoskit.drivers import contract

    touches = planning.dry_run(planned, contract.RunContext(run_id="dry", dry_run=True))
    assert [[t.id for t in touch.targets] for touch in touches] == [["a", "b"]]
    assert fake.calls == []


def test_yaml_and_dict_give_the_same_run() -> None:
    assert _run(_doc()).verdict == testing.run_experiment(yaml.safe_dump(_doc())).verdict


def test_a_driver_that_cant_be_used_here_says_why() -> None:
    from chaoskit.drivers import contract, registry

    broken = contract.Driver(name="cloud", summary="x", missing=lambda: "pip install chaoskit[cloud]")
    with pytest.raises(errors.SpecError, match=r"driver cloud is installed but can't be used: pip install"):
        planning.plan(
            testing.source(_doc(method=[{"fault": "cloud.zone.down"}])),
            registry.build([testing.FakeDriver().driver(), broken]),
        )


def test_a_probe_can_refuse_its_arguments_at_validation_time_against_the_live_system() -> None:
    from chaoskit.drivers import contract, registry

    driver = testing.FakeDriver().driver()
    value = next(p for p in driver.probes if p.name == "fake.value")

    def refuse(args: Any, ctx: contract.RunContext) -> None:
        if args.key == "bad":
            raise errors.UsageError("the server says: bad key")  # exit 2: a refusal
        raise errors.DriverError("can't ask now")  # not a refusal: the run will say

    value.validate = refuse  # type: ignore[method-assign]
    drivers = registry.build([driver])
    ctx = contract.RunContext(run_id="v")
    bad = _doc(steady_state=[{"probe": "fake.value", "with": {"key": "bad"}}])
    with pytest.raises(errors.SpecError, match=r"steady_state\[0\]\.with: the server says: bad key"):
        planning.plan(testing.source(bad), drivers, live=ctx)
    fine = _doc(steady_state=[{"probe": "fake.value", "with": {"key": "fine"}}])
    planning.plan(testing.source(fine), drivers, live=ctx)
    planning.plan(testing.source(bad), drivers)  # without live, nothing is asked


def test_a_chaoskit_bug_mid_run_still_reverts_and_journals_an_error() -> None:
    fake = testing.FakeDriver()
    driver = fake.driver()
    broken = next(f for f in driver.faults if f.name == "fake.break")
    real_targets = broken.targets

    def targets_then_bug(args: Any, ctx: Any) -> Any:
        if args.targets == ["second"]:
            # Good enough for the driver's own prepare/inject, not for the engine's ledger.
            return [types.SimpleNamespace(id="second", kind="fake", name="second")]
        return real_targets(args, ctx)

    broken.targets = targets_then_bug  # type: ignore[method-assign]
    doc = _doc(
        method=[
            {"fault": "fake.break", "with": {"targets": ["first"]}},
            {"fault": "fake.break", "with": {"targets": ["second"]}},
        ]
    )
    journal = testing.run_experiment(doc, drivers=[driver], clock=fake.clock)
    assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 4)
    assert "chaoskit bug" in journal.errors[0].message and "Traceback" in journal.errors[0].message
    assert fake.applied == set()


def test_a_failing_subscriber_does_not_stop_reverts_but_is_an_error() -> None:
    fake = testing.FakeDriver()

    def broken_console(event: events.Event) -> None:
        raise RuntimeError("terminal went away")

    journal = _run(_doc(), fake, subscribers=[broken_console])
    assert fake.applied == set()
    assert journal.verdict is Verdict.ERROR
    assert "terminal went away" in journal.reason


def test_a_hung_probe_times_out_and_does_not_keep_the_run_from_ending() -> None:
    from chaoskit.drivers import contract

    release = threading.Event()

    class Hang(contract.Probe[testing.StatusArgs]):
        name = "hang.forever"
        summary = "blocks until released"
        args = testing.StatusArgs

        def run(self, args: testing.StatusArgs, ctx: contract.RunContext) -> contract.JsonValue:
            release.wait(300)  # ignores the run's cancellation, as a badly written driver might
            return None

    hang = contract.Driver(name="hang", summary="", probes=[Hang()])
    doc = _doc(steady_state=[{"name": "stuck", "probe": "hang.forever", "timeout": "200ms"}], method=[])
    try:
        journal = testing.run_experiment(
            doc, drivers=[testing.FakeDriver().driver(), hang], clock=clocks.RealClock()
        )
    finally:
        release.set()
    assert journal.verdict is Verdict.NOT_STEADY
    assert journal.checks[0].error == "timed out after 200ms"


def test_an_error_in_a_background_step_stops_the_method_and_reverts() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        method=[
            {
                "name": "bg",
                "fault": "fake.break",
                "with": {"targets": ["x"], "fail_inject": True},
                "background": True,
            },
            {"name": "fg", "fault": "fake.break", "with": {"targets": ["a"]}},
            {"pause": "1h"},
        ]
    )
    journal = _run(doc, fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 4)
    assert fake.applied == set()
    assert journal.steps[-1].status is journals.StepStatus.CANCELLED
    assert _seconds(journal, journal.ended) < 3600


def test_an_action_that_times_out_is_an_error() -> None:
    fake = testing.FakeDriver()

    class Slow(testing.FakeClock):
        async def blocking(self, call: Any) -> Any:
            await self.sleep(30)
            return await super().blocking(call)

    fake.clock = Slow()
    doc = _doc(setup=[{"name": "slow setup", "action": "fake.do", "timeout": "5s"}])
    journal = _run(doc, fake)
    assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 4)
    assert "timed out after 5s" in journal.reason
    assert [c for c in fake.calls if c[0] == "inject"] == []


def test_run_time_arguments_are_checked_when_the_step_runs_with_the_file_position() -> None:
    fake = testing.FakeDriver()
    doc = """\
title: run-time args
setup:
  - id: made
    action: fake.do
    with: {output: {name: 42}}
method:
  - fault: fake.break
    with: {targets: "${steps.made.output.name}"}
"""
    journal = testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock)
    assert journal.verdict is Verdict.ERROR
    assert "<experiment>:8:" in journal.reason and "method[0].with.targets" in journal.reason


def test_a_setup_probe_with_until_waits_until_it_holds_and_the_run_goes_on() -> None:
    fake = testing.FakeDriver()
    fake.script("scraped", lambda t: 1 if t >= 6.5 else None)  # a target seen only from 6.5 s on
    doc = _doc(
        setup=[
            _waits_for("scraped", "scraped", 1, within="30s", interval="2s", id="seen"),
        ]
    )
    journal = _run(doc, fake)
    assert journal.verdict is Verdict.COMPLETED
    polls = [c for c in journal.checks if c.phase is phases.Phase.SETUP]
    assert [(c.poll, c.ok) for c in polls] == [(0, False), (1, False), (2, False), (3, False), (4, True)]
    assert [_seconds(journal, c.at) for c in polls] == pytest.approx([0, 2, 4, 6, 8])
    [step] = [s for s in journal.steps if s.phase is phases.Phase.SETUP]
    assert (step.status, step.output) == (journals.StepStatus.OK, 1)
    before = next(c for c in journal.checks if c.phase is phases.Phase.BEFORE)
    assert _seconds(journal, before.at) == pytest.approx(8)


def test_a_method_probe_with_until_that_never_holds_deviates_once_after_within() -> None:
    fake = testing.FakeDriver()
    fake.script("lag", lambda t: 50)
    doc = _doc(
        method=[
            {"name": "break", "fault": "fake.break", "with": {"targets": ["a"]}},
            _waits_for("lag drains", "lag", {"below": 10}, within="5s"),
        ]
    )
    seen: list[events.Event] = []
    journal = _run(doc, fake, subscribers=[seen.append])
    assert (journal.verdict, journal.exit_code) == (Verdict.DEVIATED, 1)
    polls = [c for c in journal.checks if c.phase is phases.Phase.METHOD]
    assert [c.poll for c in polls] == [0, 1, 2, 3, 4, 5]  # 0 s … 5 s, then the 6 s poll would be late
    assert journal.reason.count("lag drains") == 1
    assert any(
        isinstance(e, events.Log) and e.message == "lag drains: did not hold within 5s (6 polls)"
        for e in seen
    )
    assert fake.applied == set()


def test_until_stops_polling_at_a_driver_bug_which_asking_again_cannot_cure() -> None:
    fake = testing.FakeDriver()
    fake.script("broken", lambda t: 1 // 0)  # the probe raises ZeroDivisionError: a driver bug
    doc = _doc(
        setup=[
            {"probe": "fake.value", "with": {"key": "broken"}, "until": {"within": "1m", "interval": "1s"}}
        ]
    )
    journal = _run(doc, fake)
    assert [c.poll for c in journal.checks if c.phase is phases.Phase.SETUP] == [0]
    assert journal.exit_code == 4
    assert "fake.value raised ZeroDivisionError" in journal.errors[0].message


def test_a_background_setup_step_runs_beside_the_next_and_setup_waits_for_it() -> None:
    fake = testing.FakeDriver()
    fake.script("warm", lambda t: t >= 3)
    doc = _doc(
        setup=[
            _waits_for("cache warm", "warm", True, within="10s", background=True),
            {"name": "fg", "action": "fake.do", "with": {"output": "fg"}},
        ]
    )
    journal = _run(doc, fake)
    assert journal.verdict is Verdict.COMPLETED
    fg = next(s for s in journal.steps if s.name == "fg")
    assert _seconds(journal, fg.started) == pytest.approx(0)
    before = next(c for c in journal.checks if c.phase is phases.Phase.BEFORE)
    assert _seconds(journal, before.at) == pytest.approx(3)


def test_an_error_in_a_background_setup_step_stops_the_run_before_the_method() -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        setup=[
            {"name": "bg", "action": "fake.do", "with": {"output": "bg", "fail": True}, "background": True}
        ]
    )
    journal = _run(doc, fake)
    assert journal.verdict is Verdict.ERROR
    assert [e.step for e in journal.errors] == ["bg"]
    assert not [c for c in fake.calls if c[0] == "inject"]


def test_background_rollbacks_run_beside_the_others_and_all_are_awaited() -> None:
    fake = testing.FakeDriver()
    fake.script("drained", lambda t: t >= 2)
    doc = _doc(
        rollbacks=[
            _waits_for("drained", "drained", True, within="10s", background=True),
            {"name": "r2", "action": "fake.do", "with": {"output": "r2", "fail": True}},
            {"name": "r3", "action": "fake.do", "with": {"output": "r3"}},
        ]
    )
    journal = _run(doc, fake)
    assert [(r.name, r.status) for r in journal.rollbacks] == [
        ("r2", "error"),
        ("r3", "ok"),
        ("drained", "ok"),
    ]
    assert [e.step for e in journal.errors] == ["r2"]


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("until", {"within": "10s"}, "put a probe with until: in setup"),
        ("background", True, "judged in order, before and after the method"),
    ],
)
def test_until_and_background_are_refused_on_the_steady_state_and_guards(
    key: str, value: Any, hint: str
) -> None:
    fake = testing.FakeDriver()
    doc = _doc(
        steady_state=[{"name": "up", "probe": "fake.status", key: value}],
        guards=[{"probe": "fake.status", key: value}],
    )
    with pytest.raises(errors.SpecError) as info:
        planning.plan(testing.source(doc, "x.yaml"), fake.registry())
    text = info.value.render()
    assert f"steady_state[0].{key}: {key}: is not for the steady state" in text
    assert hint in text
    assert f"guards[0].{key}: {key}: is not for guards" in text


def test_a_steady_state_probe_with_an_id_gives_later_steps_its_value_before_the_method() -> None:
    fake = testing.FakeDriver()
    fake.script("depth", lambda t: 7 if t < 1 else 99)
    doc = _doc(
        steady_state=[
            {"id": "baseline", "name": "queue depth", "probe": "fake.value", "with": {"key": "depth"}}
        ],
        method=[
            {"pause": "2s"},
            {"name": "compare", "action": "fake.do", "with": {"output": "${steps.baseline.output}"}},
        ],
    )
    journal = _run(doc, fake)
    assert journal.verdict is Verdict.COMPLETED, journal.reason
    assert ("action", "7") in fake.calls  # the value before (7), not the one during the method (99)


def test_an_interrupt_in_setup_cancels_its_background_steps_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    fake = testing.FakeDriver()
    fake.script("never", lambda t: False)
    doc = _doc(
        setup=[
            _waits_for("waits long", "never", True, within="1h", background=True),
            {"name": "marker", "action": "fake.do", "with": {"output": "started"}},
            {"pause": "1h"},
        ]
    )
    planned = planning.plan(testing.source(doc), fake.registry())
    runner = running.Runner(planned, running.Settings(state_dir=tmp_path, seed=1), clock=fake.clock)

    async def interrupted_run() -> tuple[journals.Journal, set[asyncio.Task[Any]]]:
        runner.bus.subscribe(
            lambda e: (
                runner.interrupt() if isinstance(e, events.StepEnded) and e.record.name == "marker" else None
            )
        )
        journal = await runner.run()
        mine = asyncio.current_task()
        # Every task still alive but this one and the fake clock's (it lives as long as the loop).
        return journal, {
            t
            for t in asyncio.all_tasks()
            if t is not mine and not t.done() and t.get_coro().__qualname__ != "FakeClock._advance"  # type: ignore[union-attr]
        }

    journal, left = asyncio.run(interrupted_run())
    assert (journal.verdict, journal.exit_code) == (Verdict.INTERRUPTED, 130)
    assert left == set()
    waited = next(s for s in journal.steps if s.name == "waits long")
    assert waited.status is journals.StepStatus.CANCELLED
    assert _seconds(journal, journal.ended) < 60  # neither the 1 h wait nor the 1 h pause ran out
