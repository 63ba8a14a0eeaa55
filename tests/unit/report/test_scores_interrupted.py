"""A run cut short has no resilience score: an interrupted run whose checks held so far used to
score 100, as if it had shown the system resilient (docs/reports.md, "The resilience score")."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.engine import journals
from chaoskit.report import gating, markdown, scores
from tests.unit.report import samples

CUT_SHORT = [
    journals.Verdict.INTERRUPTED,
    journals.Verdict.HALTED,
    journals.Verdict.VETOED,
    journals.Verdict.ERROR,
    journals.Verdict.INVALID,
]


def _held_so_far(verdict: journals.Verdict) -> journals.Journal:
    """Every check it got to held and no recovery was measured: stopped during the method."""
    run = samples.journal(method_ok=True)
    held = [c for c in run.checks if c.phase.value in ("before", "guard", "method")]
    return run.model_copy(update={"verdict": verdict, "checks": held, "recovery": None})


@pytest.mark.parametrize("verdict", CUT_SHORT, ids=[v.value for v in CUT_SHORT])
def test_a_run_cut_short_has_no_score_however_well_its_checks_went(verdict: journals.Verdict) -> None:
    run = _held_so_far(verdict)
    assert run.checks and all(c.ok for c in run.checks)
    assert scores.of_journal(run) is None
    assert f"score **{scores.NONE_SHOWN}**" in markdown.render(run)


def test_a_run_that_ran_its_course_is_still_scored() -> None:
    assert scores.of_journal(_held_so_far(journals.Verdict.COMPLETED)) == pytest.approx(100.0)


def test_the_gate_fails_an_interrupted_run_on_min_score_even_where_the_verdict_is_allowed() -> None:
    allowed = gating.Thresholds(min_score=50, allow={journals.Verdict.INTERRUPTED})
    decision = gating.decide([(Path("j.json"), _held_so_far(journals.Verdict.INTERRUPTED))], allowed)
    assert not decision.passed
    assert f"score {scores.NONE_SHOWN} is below the minimum 50" in "\n".join(decision.lines)
