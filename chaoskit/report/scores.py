"""The resilience score: one number from 0 to 100 per run and per GameDay (formula in docs/reports.md).

    score = 100 * Σ weight(check) * credit(check) / Σ weight(check)

over the checks the run got to, for a run that ran its course (completed, deviated, not steady).
An interrupted, halted, vetoed, invalid or error run has no score (None, shown as "—"): it was
cut short, and a score from the checks it did get to (all held, so far) would read as resilience
it never showed. Weights say what matters most: holding after the faults (and how fast) counts
three times a pre-check. Credit: a check that held gets 1; one that failed, or
whose probe errored, gets 0 (an unobservable system has not shown it is resilient); a probe that
answered nothing ("no data") gets 0.5 — it neither held nor failed. Recovery earns
``1 - 0.5 * measured/within`` when met (instant recovery 1.0, at the deadline 0.5), else 0.
Checks the run never reached are not counted. A run with no checks has no score (None).
A GameDay's score is the mean of its experiments' scores. Scores are floats, never truncated.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from chaoskit.engine import journals
from chaoskit.report import checks

WEIGHTS: dict[checks.Kind, float] = {
    checks.Kind.BEFORE: 1.0,
    checks.Kind.METHOD: 2.0,
    checks.Kind.GUARD: 2.0,
    checks.Kind.AFTER: 3.0,
    checks.Kind.RECOVERY: 3.0,
}

CREDIT: dict[checks.Status, float] = {
    checks.Status.OK: 1.0,
    checks.Status.FAILED: 0.0,
    checks.Status.ERROR: 0.0,
    checks.Status.NO_DATA: 0.5,
}


def credit(check: checks.Check, recovery: journals.RecoveryRecord | None = None) -> float:
    """What one check earns, from 0 to 1."""
    if check.kind is checks.Kind.RECOVERY and recovery is not None:
        if not recovery.met or recovery.measured is None:
            return 0.0
        if recovery.required <= 0:
            return 1.0
        return max(0.5, 1.0 - 0.5 * recovery.measured / recovery.required)
    return CREDIT[check.status]


def of_checks(items: Sequence[checks.Check], recovery: journals.RecoveryRecord | None = None) -> float | None:
    total = sum(WEIGHTS[c.kind] for c in items)
    if total == 0:
        return None
    earned = sum(WEIGHTS[c.kind] * credit(c, recovery) for c in items)
    return 100.0 * earned / total


UNSCORED = frozenset(
    {
        journals.Verdict.INTERRUPTED,
        journals.Verdict.HALTED,
        journals.Verdict.VETOED,
        journals.Verdict.INVALID,
        journals.Verdict.ERROR,
    }
)
"""Verdicts of runs cut short (by a person, a guardrail, a bad file or chaoskit itself): no score."""

NONE_SHOWN = "—"
"""How a missing score reads for people (an em dash)."""


def of_journal(journal: journals.Journal) -> float | None:
    """The run's score; None when the run was cut short (``UNSCORED``) or got to no check at all."""
    if journal.verdict in UNSCORED:
        return None
    return of_checks(checks.from_journal(journal), journal.recovery)


def of_gameday(scores: Iterable[float | None]) -> float | None:
    """The mean of the experiments' scores; experiments without a score don't count."""
    known = [s for s in scores if s is not None]
    return statistics.fmean(known) if known else None


def show(score: float | None) -> str:
    """For people: two decimals (the stored value keeps full precision)."""
    return NONE_SHOWN if score is None else f"{score:.2f}"
