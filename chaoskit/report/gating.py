"""The CI gate's decision from journals: pass (0), or the worst verdict's exit code, or 1 when a
threshold (minimum score, maximum recovery time) is not met — with one line per journal on why.
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
        codes.append(code)
        head = f"{'PASS' if not problems else 'FAIL'} {path}: {journal.experiment.title}"
        facts = f"verdict {journal.verdict.value}, score {scores.show(score)}"
        if recovery is not None and recovery.measured is not None:
            facts += f", recovered in {recovery.measured:.3f}s"
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
