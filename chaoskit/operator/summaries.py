"""The journal summary a run's pod leaves in its termination message, and reading it back.

Kubernetes keeps at most 4096 bytes of a termination message, so the summary holds what the
resource's status shows (verdict, exit code, score, recovery, counts, reason) and is cut to fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaoskit.engine import journals
from chaoskit.report import scores

LIMIT = 4096
VERDICTS_BY_EXIT = {
    0: "completed",
    1: "deviated",
    2: "invalid",
    3: "not_steady",
    4: "error",
    130: "interrupted",
}


def of_journal(journal: journals.Journal) -> dict[str, Any]:
    recovery = journal.recovery
    return {
        "runId": journal.run_id,
        "title": journal.experiment.title,
        "verdict": journal.verdict.value,
        "exitCode": journal.exit_code,
        "reason": journal.reason,
        "score": scores.of_journal(journal),
        "recovery": (
            {"required": recovery.required, "measured": recovery.measured, "met": recovery.met}
            if recovery is not None
            else None
        ),
        "started": journal.started.isoformat(),
        "ended": journal.ended.isoformat(),
        "checks": {"total": len(journal.checks), "failed": sum(1 for c in journal.checks if not c.ok)},
        "faults": len(journal.faults),
        "guardTrips": len(journal.guard_trips),
        "errors": [e.message for e in journal.errors][:3],
    }


def without_journal(exit_code: int, why: str) -> dict[str, Any]:
    """The summary of a run that wrote no journal (a bad file: exit 2, or chaoskit crashed)."""
    return {
        "verdict": VERDICTS_BY_EXIT.get(exit_code, "error"),
        "exitCode": exit_code,
        "reason": why,
        "score": None,
        "recovery": None,
    }


def of_run(journal_path: Path, exit_code: int) -> dict[str, Any]:
    try:
        journal = journals.load(journal_path)
    except (OSError, ValueError) as e:
        return without_journal(exit_code, f"no journal ({type(e).__name__}); see the pod's log")
    summary = of_journal(journal)
    summary["exitCode"] = exit_code
    return summary


def dumps(summary: dict[str, Any]) -> str:
    """Compact JSON within the termination message limit: long texts are cut, never the JSON."""
    text = json.dumps(summary, separators=(",", ":"), default=str)
    if len(text.encode()) <= LIMIT:
        return text
    trimmed = {**summary, "errors": [], "reason": str(summary.get("reason", ""))[:1000]}
    text = json.dumps(trimmed, separators=(",", ":"), default=str)
    if len(text.encode()) <= LIMIT:
        return text
    trimmed["reason"] = str(summary.get("reason", ""))[:200]
    trimmed["title"] = str(summary.get("title", ""))[:200]
    return json.dumps(trimmed, separators=(",", ":"), default=str)


def parse(message: str | None) -> dict[str, Any] | None:
    """A summary from a termination message; None when it is not one (a crash's last words)."""
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "verdict" in data else None
