"""The CI gate's decision from journals: pass (0), or the worst verdict's exit code, or 1 when a
threshold (minimum score, maximum recovery time, RPO, RTO) is not met — with one line per journal
on why.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaoskit import durations, wording
from chaoskit.engine import journals
from chaoskit.errors import ExitCode
from chaoskit.report import scores

VERDICT_CODES: dict[journals.Verdict, ExitCode] = {
    journals.Verdict.COMPLETED: ExitCode.COMPLETED,
    journals.Verdict.DEVIATED: ExitCode.DEVIATED,
    journals.Verdict.INVALID: ExitCode.INVALID,
    journals.Verdict.NOT_STEADY: ExitCode.NOT_STEADY,
    journals.Verdict.ERROR: ExitCode.ERROR,
    journals.Verdict.HALTED: ExitCode.HALTED,
    journals.Verdict.VETOED: ExitCode.VETOED,
    journals.Verdict.INTERRUPTED: ExitCode.INTERRUPTED,
}


@dataclass(frozen=True)
class Thresholds:
    min_score: float | None = None
    """Every run's score must be at least this (a run without a score fails it)."""
    max_recovery: float | None = None
    """Seconds: every measured recovery must be at most this (a run that never recovered fails it)."""
    allow: Collection[journals.Verdict] = frozenset()
    """Verdicts that pass besides ``completed``, e.g. ``deviated`` while a team is still learning."""
    max_rpo_writes: int | None = None
    """Every measured RPO must lose at most this many acknowledged writes."""
    max_rpo_seconds: float | None = None
    """Every measured RPO must span at most this many seconds of writes."""
    max_rto: float | None = None
    """Seconds: writes must be accepted again at most this long after the fault."""

    @property
    def on_objectives(self) -> bool:
        return (self.max_rpo_writes, self.max_rpo_seconds, self.max_rto) != (None, None, None)


@dataclass
class Decision:
    exit_code: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def decide(runs: Sequence[tuple[Path, journals.Journal]], thresholds: Thresholds) -> Decision:
    decision = Decision()
    codes: list[int] = []
    for path, journal in runs:
        problems: list[str] = []
        code = int(VERDICT_CODES[journal.verdict])
        if journal.verdict is not journals.Verdict.COMPLETED:
            if journal.verdict in thresholds.allow:
                code = 0
            else:
                problems.append(f"verdict {journal.verdict.value}: {journal.reason}")
        score = scores.of_journal(journal)
        if thresholds.min_score is not None and (score is None or score < thresholds.min_score):
            problems.append(f"score {scores.show(score)} is below the minimum {thresholds.min_score:g}")
            code = max(code, int(ExitCode.DEVIATED))
        recovery = journal.recovery
        if thresholds.max_recovery is not None and recovery is not None:
            limit = durations.format(thresholds.max_recovery)
            if recovery.measured is None:
                problems.append(f"never recovered; the gate allows at most {limit}")
                code = max(code, int(ExitCode.DEVIATED))
            elif recovery.measured > thresholds.max_recovery:
                problems.append(f"recovery took {recovery.measured:.3f}s; the gate allows at most {limit}")
                code = max(code, int(ExitCode.DEVIATED))
        missed = objective_problems(journal.objectives, thresholds)
        if missed:
            problems.extend(missed)
            code = max(code, int(ExitCode.DEVIATED))
        codes.append(code)
        head = f"{'PASS' if not problems else 'FAIL'} {path}: {journal.experiment.title}"
        facts = f"verdict {journal.verdict.value}, score {scores.show(score)}"
        if recovery is not None and recovery.measured is not None:
            facts += f", recovered in {recovery.measured:.3f}s"
        facts += "".join(f", {describe(reading)}" for reading in journal.objectives)
        decision.lines.append(f"{head} ({facts})")
        decision.lines.extend(f"  - {p}" for p in problems)
    decision.exit_code = max(codes, default=0)
    failed = sum(c != 0 for c in codes)
    decision.lines.append(
        f"gate {'passed' if decision.passed else 'failed'}: {len(codes) - failed} of "
        f"{wording.counted(len(codes), 'run')} pass"
        + ("" if decision.passed else f" (exit {decision.exit_code})")
    )
    return decision


def describe(reading: journals.ObjectivesRecord) -> str:
    """``RPO 12 writes (1.214s), RTO 3.402s`` for one reading."""
    rto = "not accepted again" if reading.rto_seconds is None else f"{reading.rto_seconds:.3f}s"
    writes = wording.counted(reading.rpo_writes, "write")
    return f"{reading.step}: RPO {writes} ({reading.rpo_seconds:.3f}s), RTO {rto}"


def objective_problems(readings: Sequence[journals.ObjectivesRecord], thresholds: Thresholds) -> list[str]:
    """Why the RPO/RTO readings of one run miss the gate's thresholds (none: they pass)."""
    if not thresholds.on_objectives:
        return []
    if not readings:
        return ["no RPO or RTO was measured (a data.verify probe reads them); the gate asks for them"]
    problems: list[str] = []
    for reading in readings:
        name = reading.step
        if thresholds.max_rpo_writes is not None and reading.rpo_writes > thresholds.max_rpo_writes:
            problems.append(
                f"{name}: {wording.counted(reading.rpo_writes, 'acknowledged write')} lost; "
                f"the gate allows at most {thresholds.max_rpo_writes}"
            )
        if thresholds.max_rpo_seconds is not None and reading.rpo_seconds > thresholds.max_rpo_seconds:
            problems.append(
                f"{name}: {reading.rpo_seconds:.3f}s of writes lost; the gate allows at most "
                f"{durations.format(thresholds.max_rpo_seconds)}"
            )
        if thresholds.max_rto is not None:
            limit = durations.format(thresholds.max_rto)
            if reading.rto_seconds is None:
                problems.append(f"{name}: writes were not accepted again; the gate allows at most {limit}")
            elif reading.rto_seconds > thresholds.max_rto:
                problems.append(
                    f"{name}: writes were accepted again {reading.rto_seconds:.3f}s after the fault; "
                    f"the gate allows at most {limit}"
                )
    return problems
