"""The resilience score follows the documented formula (docs/reports.md)."""

from __future__ import annotations

import pytest

from chaoskit.engine import journals, phases
from chaoskit.report import checks, scores
from tests.unit.report import samples


def test_checks_are_one_per_probe_phase_guard_and_recovery() -> None:
    items = checks.from_journal(samples.journal())
    assert [(c.kind.value, c.name, c.status.value) for c in items] == [
        ("before", "health ok", "ok"),
        ("method", "under fault", "failed"),
        ("guard", "not on fire", "ok"),
        ("after", "health ok", "ok"),  # its last poll decides
        ("recovery", "recovery time", "ok"),
    ]
    method = items[1]
    assert method.message == "expected success_ratio above 0.99, got {'success_ratio': 0.93}"
    assert items[3].polls == 3


def test_weighted_score_with_graded_recovery() -> None:
    # before 1*1 + method 2*0 + guard 2*1 + after 3*1 + recovery 3*(1 - 0.5*4/30), over weights 11
    expected = 100 * (1 + 0 + 2 + 3 + 3 * (1 - 0.5 * 4 / 30)) / 11
    assert scores.of_journal(samples.journal()) == pytest.approx(expected)


def test_faster_recovery_scores_higher_and_the_score_is_not_truncated() -> None:
    fast = scores.of_journal(samples.journal(recovered_in=1.0, method_ok=True))
    slow = scores.of_journal(samples.journal(recovered_in=29.0, method_ok=True))
    assert fast is not None and slow is not None
    assert 100 > fast > slow > 50
    assert fast != int(fast)


def test_missed_recovery_earns_nothing() -> None:
    late = samples.journal(recovered_in=45.0, after_ok=True)
    never = samples.journal(recovered_in=None, after_ok=False)
    late_checks = {c.kind: c for c in checks.from_journal(late)}
    assert (
        late_checks[checks.Kind.RECOVERY].message == "expected recovered within 30s, got recovered in 45.000s"
    )
    assert scores.of_journal(late) == pytest.approx(100 * (1 + 2 + 3) / 11)
    assert scores.of_journal(never) == pytest.approx(100 * (1 + 2) / 11)


def test_probe_error_counts_as_failure_and_no_data_as_half() -> None:
    P = phases.Phase
    error = samples.check(P.BEFORE, "a", 0, None, False, error="timeout")
    no_data = samples.check(P.BEFORE, "b", 0, None, False)
    held = samples.check(P.BEFORE, "c", 0, 200, True)
    items = [checks._from_record(checks.Kind.BEFORE, r) for r in (error, no_data, held)]
    assert [c.status for c in items] == [checks.Status.ERROR, checks.Status.NO_DATA, checks.Status.OK]
    assert scores.of_checks(items) == pytest.approx(100 * 1.5 / 3)


def test_not_steady_runs_score_low_and_error_and_empty_runs_have_no_score() -> None:
    assert scores.of_journal(samples.not_steady()) == 0.0
    assert scores.of_journal(samples.errored()) is None  # cut short: see test_scores_interrupted.py
    empty = samples.not_steady().model_copy(update={"checks": [], "verdict": journals.Verdict.INTERRUPTED})
    assert scores.of_journal(empty) is None


def test_gameday_score_is_the_mean_of_experiment_scores() -> None:
    assert scores.of_gameday([80.0, 60.0, None]) == pytest.approx(70.0)
    assert scores.of_gameday([None]) is None


def test_a_method_probe_with_until_is_one_check_its_last_poll_decides() -> None:
    from chaoskit import testing

    fake = testing.FakeDriver()
    fake.script("lag", lambda t: 50 if t < 2.5 else 0)
    until = {"within": "10s", "interval": "1s"}
    doc = {
        "title": "lag drains",
        "method": [
            {
                "name": "drains",
                "probe": "fake.value",
                "with": {"key": "lag"},
                "expect": {"below": 10},
                "until": until,
            },
            {"name": "once", "probe": "fake.value", "with": {"key": "lag"}, "expect": {"below": 10}},
            {
                "name": "drains",
                "probe": "fake.value",
                "with": {"key": "lag"},
                "expect": {"below": 10},
                "until": until,
            },
        ],
    }
    journal = testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock)
    items = [c for c in checks.from_journal(journal) if c.kind is checks.Kind.METHOD]
    assert [(c.name, c.ok, c.polls) for c in items] == [
        ("drains", True, 4),
        ("once", True, 1),
        ("drains", True, 1),
    ]
    assert journal.verdict == "completed"
