"""Recovery after a crash: read the ledgers, and take back every fault of a dead run that is
applied (or may be: ``intent`` without ``applied``), last applied first, then undo actions'
leftovers in the same reverse order; say what was done.

* A live run owns its ledger (its lock): ``recover`` skips it and says so; ``force`` with a run id
  takes its faults anyway. ``recover`` holds the dead run's lock while it works, so two recovers
  never take the same fault back twice and the run id can't be reused meanwhile.
* Reverts are idempotent, so retrying one that already happened is safe; each outcome is written
  back to the ledger (``reverted``, by ``recover``), so a second ``recover`` finds nothing. A state
  dir that can't be written does not stop it: every entry is still tried, and the report says the
  outcome could not be recorded.
* A fault whose server was a process this same run started and has since stopped went with its
  host (``gone-with-host``): not a failure.
* Secrets in revert data are references; they are resolved again from the sources ``run-start``
  recorded (env var or file), or from ``CHAOSKIT_SECRET_<NAME>``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import leases, ledgers, secretrefs

FINE = frozenset({"reverted", "already-clean", "gone-with-host", "handed-over", "not-needed"})


@dataclass(frozen=True)
class Outcome:
    entry: ledgers.Entry
    status: str
    """``reverted``, ``already-clean``, ``gone-with-host``, ``handed-over`` (another holder of its
    lease restores the original), ``failed`` or ``unknown-activity``."""
    message: str = ""
    recorded: bool = True
    """False when the outcome could not be written back to the ledger."""


@dataclass(frozen=True)
class RecoveredRun:
    """A dead run whose leftovers ``recover`` took back (or tried to), for its history row."""

    run_id: str
    title: str
    file: str | None
    started: datetime
    ended: datetime
    """Its last ledger line before any recover: about when it died."""
    verdict: str | None
    """What its ``run-end`` line said; None when it never got there (it crashed)."""
    at: datetime
    """When this recover took its leftovers back."""
    taken_back: int
    failed: int


@dataclass
class RecoveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    """What drivers' sweeps found and cleaned without the ledger."""
    skipped: list[str] = field(default_factory=list)
    """Runs left alone because they are live."""
    notes: list[str] = field(default_factory=list)
    """Ledgers or lines that could not be read (and were set aside)."""
    runs: list[RecoveredRun] = field(default_factory=list)
    """The dead runs whose leftovers were taken back (for the history; live ones are not here)."""

    @property
    def ok(self) -> bool:
        return all(o.status in FINE and o.recorded for o in self.outcomes)

    def lines(self) -> list[str]:
        out = [f"note: {n}" for n in self.notes]
        out += [f"skipped: {s}" for s in self.skipped]
        for o in self.outcomes:
            text = f"{o.entry.run_id}: {o.entry.describe()}: {o.status}"
            text += f": {o.message}" if o.message else ""
            out.append(text)
        out += [f"sweep: {s}" for s in self.swept]
        return out


def recover(
    state_dir: Path,
    drivers: registry.Registry,
    run_id: str | None = None,
    *,
    sweep: bool = False,
    force: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RecoveryReport:
    """Take back what dead runs (or ``run_id``) left applied. ``force`` needs ``run_id``."""
    report = RecoveryReport()
    env = os.environ if environ is None else environ
    try:
        found = ledgers.survey(state_dir, run_id)
    except errors.LedgerError:
        if not sweep:
            raise
        found = ledgers.Survey(runs=[])  # the ledger is lost: what the sweep finds is all there is
    report.notes += found.unreadable
    for run in found.runs:
        report.notes += run.problems
        if run.outstanding:
            _recover_run(run, drivers, state_dir, report, force=force and run_id is not None, env=env)
        if run.problems and not ledgers.is_live(run.path):
            _set_aside_if_done(run.path, report)
    if sweep:
        ctx = contract.RunContext(
            run_id=run_id or "recover", state_dir=state_dir, run_state=functools.partial(run_state, state_dir)
        )
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


def run_state(state_dir: Path, run_id: str) -> str:
    """``live``, ``dead`` or ``unknown`` (no ledger for it here): what a sweep may touch."""
    try:
        path = ledgers.path_of(state_dir, run_id)
    except errors.UsageError:
        return "unknown"
    if not path.exists():
        return "unknown"
    return "live" if ledgers.is_live(path) else "dead"


def _set_aside_if_done(path: Path, report: RecoveryReport) -> None:
    """A ledger with bad lines and nothing left to take back has served its purpose: move it out
    of the way, so that its lines are not reported again and again."""
    try:
        left = ledgers.load(path).outstanding
    except errors.LedgerError:
        return
    if not left and (moved := ledgers.quarantine(path)) is not None:
        report.notes.append(
            f"{path} had unreadable lines and nothing left to take back: set aside as {moved}"
        )


class _Run:
    """One dead run being recovered: its ledger (locked), its secrets, the hosts it stopped."""

    def __init__(
        self, run: ledgers.RunLedger, ledger: ledgers.Ledger, state_dir: Path, env: Mapping[str, str]
    ):
        self.run = run
        self.ledger = ledger
        self.state_dir = state_dir
        self.env = env
        self.stopped_hosts = {host for e in run.entries if e.kind == "undo" for host in e.serves}
        self.record_error: str | None = None

    def secret(self, name: str) -> str:
        source = self.run.secrets.get(name)
        fallback = f"CHAOSKIT_SECRET_{name.upper().replace('-', '_')}"
        if fallback in self.env:
            return self.env[fallback]
        if isinstance(source, dict) and isinstance(source.get("env"), str):
            variable = source["env"]
            if variable in self.env:
                return self.env[variable]
            raise errors.LedgerError(
                f"secret {name!r} comes from the environment variable {variable}, which is not set",
                hint=f"export {variable}=... (or {fallback}=...) and run recover again",
            )
        if isinstance(source, dict) and isinstance(source.get("file"), str):
            try:
                return Path(source["file"]).expanduser().read_text(encoding="utf-8").removesuffix("\n")
            except (OSError, UnicodeDecodeError) as e:
                raise errors.LedgerError(
                    f"secret {name!r} comes from the file {source['file']}, which can't be read: {e}",
                    hint=f"restore the file (or export {fallback}=...) and run recover again",
                ) from e
        raise errors.LedgerError(
            f"secret {name!r} was given inline, so its value is not recorded anywhere",
            hint=f"export {fallback}=... and run recover again",
        )

    def resolve(self, data: dict[str, Any]) -> dict[str, Any]:
        values = {name: self.secret(name) for name in secretrefs.refs_in(data)}
        resolved: dict[str, Any] = secretrefs.from_refs(data, values)
        return resolved

    def record(self, entry: ledgers.Entry, status: str, serves: list[str] | None = None) -> bool:
        try:
            self.ledger.reverted(entry.id, status, by="recover", serves=serves)
        except errors.LedgerError as e:
            self.record_error = e.message
            return False
        return True


def _recover_run(
    run: ledgers.RunLedger,
    drivers: registry.Registry,
    state_dir: Path,
    report: RecoveryReport,
    *,
    force: bool,
    env: Mapping[str, str],
) -> None:
    live = force and ledgers.is_live(run.path)
    try:
        ledger = ledgers.Ledger.attach(run.path, force=force)
    except errors.LedgerError as e:
        report.notes.append(e.message)
        return
    if ledger is None:
        pid = f", pid {run.pid}" if run.pid else ""
        report.skipped.append(
            f"run {run.run_id} is live (a running chaoskit holds its ledger{pid}): its faults are its own "
            f"to take back; `chaoskit recover {run.run_id} --force` takes them anyway"
        )
        return
    try:
        fresh = ledgers.load(run.path)  # what it says now that we hold it (the run may just have ended)
        with_lock = _Run(fresh, ledger, state_dir, env)
        try:
            ledger.recover_start()
        except errors.LedgerError as e:
            with_lock.record_error = e.message
        facts = _facts(run.path)
        outcomes = [
            _take_back(entry, drivers, with_lock)
            for entry in sorted(fresh.outstanding, key=lambda e: e.order, reverse=True)
        ]
        report.outcomes += outcomes
    finally:
        ledger.close()
    if not live and outcomes:
        title, file, started, ended = facts
        failed = sum(o.status not in FINE for o in outcomes)
        at = datetime.now(UTC)
        report.runs.append(
            RecoveredRun(
                run_id=fresh.run_id,
                title=title,
                file=file,
                started=started or at,
                ended=ended or at,
                verdict=fresh.ended,
                at=at,
                taken_back=len(outcomes) - failed,
                failed=failed,
            )
        )


def _facts(path: Path) -> tuple[str, str | None, datetime | None, datetime | None]:
    """What a dead run's ledger says about it for the history: its title, file, when it started
    and its last line before any recover. Lenient: this is only a summary, the faults come first."""
    title, file, started, last = f"(run {path.name.removesuffix(ledgers.SUFFIX)})", None, None, None
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return title, file, started, last
    for line in lines:
        try:
            record = json.loads(line)
            at = datetime.fromisoformat(record["at"]) if isinstance(record, dict) else None
        except (ValueError, TypeError, KeyError, RecursionError):
            continue
        if at is None:
            continue
        if record.get("type") == "recover-start":
            break  # what follows is a recover's, not the run's
        if record.get("type") == "run-start":
            started = at
            title = record["title"] if isinstance(record.get("title"), str) else title
            file = record["file"] if isinstance(record.get("file"), str) else None
        last = at
    return title, file, started, last


def _take_back(entry: ledgers.Entry, drivers: registry.Registry, run: _Run) -> Outcome:
    activity: Any = (drivers.faults if entry.kind == "fault" else drivers.actions).get(entry.activity)
    if activity is None:
        return Outcome(
            entry,
            "unknown-activity",
            f"{entry.activity} is not installed here; install its driver and run recover again",
        )
    ctx = contract.RunContext(run_id=entry.run_id, state_dir=run.state_dir, entry=entry.id)
    try:
        if entry.kind == "fault":
            status, serves = _revert_fault(entry, activity, run, ctx), None
        else:
            data = run.resolve(entry.revert)
            serves = _serves(activity, data, ctx)
            status = activity.undo(data, ctx).value
            run.stopped_hosts.update(serves)
    except Exception as e:
        text = errors.text(e, typed=True)
        return Outcome(entry, "failed", text)
    finally:
        ctx.close()
    if not run.record(entry, status, serves):
        return Outcome(entry, status, f"taken back, but not recorded: {run.record_error}", recorded=False)
    return Outcome(entry, status)


def _serves(action: contract.Action[Any], data: contract.RevertData, ctx: contract.RunContext) -> list[str]:
    try:
        return sorted(action.serves(data, ctx))
    except Exception:
        return []  # only a hint for gone-with-host: never a reason not to undo


def _revert_fault(
    entry: ledgers.Entry, fault: contract.Fault[Any, Any], run: _Run, ctx: contract.RunContext
) -> str:
    own = run.resolve(entry.revert)
    data = own
    if entry.lease is not None:
        held = leases.peek(run.state_dir, entry.lease, run_id=entry.run_id, entry=entry.id)
        if held.remaining and fault.captures_state:
            # Another applied fault holds the same lease: it restores the original when it ends.
            leases.release(run.state_dir, entry.lease, run_id=entry.run_id, entry=entry.id)
            return "handed-over"
        if fault.captures_state and held.original is not None:
            data = run.resolve(held.original)
    revert = ledgers.revert_model(fault, data)
    try:
        status = fault.revert(revert, ctx).value
    except errors.Unreachable:
        endpoint = fault.endpoint(revert)
        if endpoint is None or endpoint not in run.stopped_hosts:
            raise
        status = "gone-with-host"
    if entry.lease is not None:
        leases.release(run.state_dir, entry.lease, run_id=entry.run_id, entry=entry.id)
    return str(status)
