"""The verdict of a run as one value that the phases add findings to, instead of flags spread over
the runner. The order of precedence is the CI contract (README, ``errors.ExitCode``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chaoskit import errors
from chaoskit.engine import journals

Verdict = journals.Verdict

EXIT_CODES: Mapping[Verdict, errors.ExitCode] = {
    Verdict.COMPLETED: errors.ExitCode.COMPLETED,
    Verdict.DEVIATED: errors.ExitCode.DEVIATED,
    Verdict.INVALID: errors.ExitCode.INVALID,
    Verdict.NOT_STEADY: errors.ExitCode.NOT_STEADY,
    Verdict.ERROR: errors.ExitCode.ERROR,
    Verdict.HALTED: errors.ExitCode.HALTED,
    Verdict.VETOED: errors.ExitCode.VETOED,
    Verdict.INTERRUPTED: errors.ExitCode.INTERRUPTED,
}


@dataclass
class Findings:
    """What a run found, as it goes."""

    errors: list[str] = field(default_factory=list)
    """A driver, the ledger or chaoskit failed: the run can't vouch for the system."""
    deviations: list[str] = field(default_factory=list)
    """The system did not behave as the hypothesis says."""
    not_steady: str | None = None
    """The steady state did not hold before: nothing was injected."""
    interrupted_by: str | None = None
    """The signal that stopped the run (``SIGINT``, ``SIGTERM``, ...)."""
    ledger: str | None = None
    """Why the fault ledger could not be written, when it could not."""
    halted: str | None = None
    """Who halted the run, when and why (or that ``max_duration`` ran out)."""
    vetoed: str | None = None
    """The preflight check that said no."""

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.ledger is not None

    def decide(self) -> tuple[Verdict, str]:
        if self.interrupted_by is not None:
            return Verdict.INTERRUPTED, f"interrupted ({self.interrupted_by}): faults were reverted"
        if self.halted is not None:
            return Verdict.HALTED, f"{self.halted}; faults were reverted"
        if self.ledger is not None:
            return (
                Verdict.ERROR,
                f"the fault ledger could not be written ({self.ledger}): no fault was injected after that, "
                "and everything applied was reverted from memory",
            )
        if self.errors:
            return Verdict.ERROR, self.errors[0]
        if self.vetoed is not None:
            return Verdict.VETOED, f"vetoed before anything ran: {self.vetoed}"
        if self.not_steady is not None:
            return Verdict.NOT_STEADY, self.not_steady
        if self.deviations:
            return Verdict.DEVIATED, "; ".join(self.deviations)
        return Verdict.COMPLETED, "the steady state held before and after, recovery within the deadline"
