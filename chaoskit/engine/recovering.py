"""Recovery after a crash: read the ledgers, take back every fault that is applied (or may be:
``intent`` without ``applied``) and not reverted, undo actions' leftovers, and say what was done.

Reverts are idempotent, so retrying one that already happened is safe; each success is written
back to its ledger as ``reverted`` (by ``recover``), so a second ``recover`` finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import ledgers


@dataclass(frozen=True)
class Outcome:
    entry: ledgers.Entry
    status: str
    """``reverted``, ``already-clean``, ``failed`` or ``unknown-activity``."""
    message: str = ""


@dataclass
class RecoveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    """What drivers' sweeps found and cleaned without the ledger."""

    @property
    def ok(self) -> bool:
        return all(o.status in {"reverted", "already-clean"} for o in self.outcomes)

    def lines(self) -> list[str]:
        out = [
            f"{o.entry.run_id}: {o.entry.describe()}: {o.status}{': ' + o.message if o.message else ''}"
            for o in self.outcomes
        ]
        out += [f"sweep: {s}" for s in self.swept]
        return out


def recover(
    state_dir: Path,
    drivers: registry.Registry,
    run_id: str | None = None,
    *,
    sweep: bool = False,
) -> RecoveryReport:
    report = RecoveryReport()
    try:
        left = ledgers.outstanding(state_dir, run_id)
    except errors.LedgerError:
        if not sweep:
            raise
        left = []  # the ledger is lost: what the sweep finds is all there is to go on
    for entry in left:
        report.outcomes.append(_take_back(entry, drivers, state_dir))
    if sweep:
        ctx = contract.RunContext(run_id=run_id or "recover", state_dir=state_dir)
        try:
            for name, driver in sorted(drivers.drivers.items()):
                if driver.sweep is None or driver.missing() is not None:
                    continue
                try:
                    report.swept += [f"{name}: {line}" for line in driver.sweep(run_id, ctx)]
                except errors.ChaoskitError as e:
                    report.swept.append(f"{name}: sweep failed: {e.message}")
        finally:
            ctx.close()
    return report


def _take_back(entry: ledgers.Entry, drivers: registry.Registry, state_dir: Path) -> Outcome:
    activity: Any = (drivers.faults if entry.kind == "fault" else drivers.actions).get(entry.activity)
    if activity is None:
        return Outcome(
            entry,
            "unknown-activity",
            f"{entry.activity} is not installed here; install its driver and run recover again",
        )
    ctx = contract.RunContext(run_id=entry.run_id, state_dir=state_dir)
    try:
        if entry.kind == "fault":
            outcome: contract.RevertOutcome = activity.revert(entry.revert, ctx)
        else:
            outcome = activity.undo(entry.revert, ctx)
    except Exception as e:
        text = e.render() if isinstance(e, errors.ChaoskitError) else f"{type(e).__name__}: {e}"
        return Outcome(entry, "failed", text)
    finally:
        ctx.close()
    if entry.ledger is not None:
        ledgers.Ledger(entry.ledger, entry.run_id).reverted(entry.id, outcome.value, by="recover")
    return Outcome(entry, outcome.value)
