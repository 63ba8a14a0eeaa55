"""The runner: one experiment from setup to verdict, with every fault taken back whatever happens.

Orchestration is asyncio; driver code is synchronous and runs in worker threads through the
``clocks.Clock`` (so that ``chaoskit.testing.FakeClock`` can run the whole thing in virtual time).
Phases: setup → steady state before → method (with guards, background steps and duration
reverts) → revert everything still applied → steady state after, polled until it holds →
rollbacks → teardown → undo of actions' leftovers. Every fault goes through the ledger first.

The runner orders the phases; ``stepping`` performs each step, ``checking`` judges probes,
``faultbooks`` applies and reverts faults, ``stopping`` holds what stops a run early (signals, halt
levers, ``max_duration``, a ledger that can't be written), ``journaling`` assembles the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import secrets as secrets_module
import threading
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.engine import (
    checking,
    clocks,
    controlling,
    events,
    faultbooks,
    halts,
    journaling,
    journals,
    ledgers,
    measuring,
    phases,
    planning,
    secretrefs,
    stepping,
    stopping,
    verdicts,
)
from chaoskit.spec import models, templates

T = TypeVar("T")
Phase = phases.Phase
Verdict = journals.Verdict

EXIT_CODES = verdicts.EXIT_CODES

_Abort = faultbooks.StepFailed
"""Stop the current phase; the reason is already recorded."""

DEFAULT_MAX_DURATION = 2 * 3600.0
"""How long a run may take when neither the experiment (``max_duration``) nor ``--max-duration``
says: generous, so that only a forgotten pause or a hung probe reaches it."""


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@dataclass
class Settings:
    """How to run one experiment (the CLI flags)."""

    state_dir: Path = field(default_factory=ledgers.state_dir)
    seed: int | None = None
    """Seeds every step's random choices; random (and journaled) when None."""
    run_id: str | None = None
    experiment: journals.ExperimentInfo | None = None
    """Title, file, sha256 for the journal; the plan's title when None."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Resolved secret values: name → value. Used in ``${secrets.<name>}``, redacted everywhere."""
    max_duration: float | None = None
    """``--max-duration``: overrides the experiment's ``max_duration``."""
    secret_sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Where each secret comes from (``{"env": NAME}`` or ``{"file": PATH}``): the ledger keeps
    references, never values, and ``recover`` resolves them again from here."""
    driver_settings: Mapping[str, str] = field(default_factory=dict)
    """Driver settings for the whole run (``RunContext.settings``), e.g. ``kubernetes.context`` from
    ``chaoskit run --context``."""


class Runner:
    """Runs one planned experiment. ``await runner.run()`` returns the journal whatever the system,
    a driver or chaoskit itself did: that is in the verdict, after everything was taken back."""

    def __init__(
        self,
        plan: planning.Plan,
        settings: Settings | None = None,
        *,
        clock: clocks.Clock | None = None,
        bus: events.Bus | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings or Settings()
        self.clock: clocks.Clock = clock or clocks.RealClock()
        self.secrets = dict(self.settings.secrets)
        self.bus = bus or events.Bus()
        self.bus.secrets = tuple(v for v in self.secrets.values() if v)
        self.journal = journaling.JournalBuilder()
        self.bus.subscribe(self.journal)
        self.run_id = ledgers.check_run_id(self.settings.run_id) if self.settings.run_id else new_run_id()
        self.seed = self.settings.seed if self.settings.seed is not None else secrets_module.randbelow(2**31)
        self.halts = halts.Watch(self.settings.state_dir)
        if (halt := self.halts.check()) is not None:
            raise errors.HaltInForce(
                f"no new run while a halt is in force: {halt.describe()}",
                hint="`chaoskit resume` lifts it, once the cause is dealt with",
            )
        try:  # Chaos Toolkit controls are configured now: one that can't start refuses the run
            controlling.attach(self.plan.experiment, self.bus, secrets=self.secrets, at=self._at)
        except errors.ChaoskitError:
            self.halts.close()
            raise
        self.ledger = ledgers.Ledger.create(self.settings.state_dir, self.run_id, self.secrets)
        self.ctx = contract.RunContext(
            run_id=self.run_id,
            state_dir=self.settings.state_dir,
            log=self._log,
            settings=self.settings.driver_settings,
        )
        self.findings = verdicts.Findings()
        self.outputs: dict[str, Any] = {}
        self._cleanup_cancel = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._method_started = False
        self._setup_started = False
        self._background: set[asyncio.Task[Any]] = set()
        limit = self.settings.max_duration or self.plan.experiment.max_duration or DEFAULT_MAX_DURATION
        self.stopping = stopping.Stopping(
            findings=self.findings,
            bus=self.bus,
            watch=self.halts,
            cancel=self.ctx.cancel,
            clock=self.clock,
            max_duration=limit,
            at=self._at,
        )
        self.book = faultbooks.FaultBook(
            self.ledger,
            state_dir=self.settings.state_dir,
            bus=self.bus,
            call=self._call,
            cleanup=self._cleanup,
            error=self._error,
            at=self._at,
            now=self.clock.now,
            wall=self.clock.wall,
            marks=self.ctx.marks,
            on_broken=self.stopping.ledger_broken,
            sleep=self.clock.sleep,
            may_inject=self.stopping.may_inject,
        )
        self._assemble()

    def _assemble(self) -> None:
        """The parts that check, measure and perform steps, each wired to the run's plumbing."""
        self.checks = checking.Checks(
            bus=self.bus,
            clock=self.clock,
            findings=self.findings,
            call=self._call,
            arguments=self._args,
            step_ctx=self._step_ctx,
            error=self._error,
            at=self._at,
        )
        self.measuring = measuring.Measuring(
            self.plan.measures,
            self.plan.experiment.measure,
            bus=self.bus,
            clock=self.clock,
            call=self._call,
            arguments=self._args,
            ctx=self._measure_ctx,
            at=self._at,
        )
        self.steps = stepping.Steps(
            self.plan,
            bus=self.bus,
            clock=self.clock,
            checks=self.checks,
            book=self.book,
            findings=self.findings,
            outputs=self.outputs,
            call=self._call,
            arguments=self._args,
            step_ctx=self._step_ctx,
            error=self._error,
            at=self._at,
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _at(self) -> datetime:
        return _utc(self.clock.wall())

    def _log(self, message: str) -> None:
        # Drivers log from worker threads; events are delivered on the loop's thread.
        loop = self._loop
        event = events.Log(message=message, at=self._at())
        if loop is None:
            self.bus.emit(event)
        else:
            loop.call_soon_threadsafe(self.bus.emit, event)

    def _error(self, phase: Phase | None, step: str | None, message: str) -> None:
        self.findings.errors.append(message)
        self.bus.emit(events.ErrorRaised(journals.ErrorRecord(phase=phase, step=step, message=message)))

    def _step_ctx(self, step: planning.PlannedStep) -> contract.RunContext:
        rng = random.Random(f"{self.seed}:{step.phase.value}:{step.index}")
        ctx = dataclasses.replace(self.ctx, rng=rng)
        return self._cleanup(ctx) if step.phase in {Phase.ROLLBACKS, Phase.TEARDOWN} else ctx

    def _measure_ctx(self, index: int) -> contract.RunContext:
        # Its own cancel: sampling stops after the after-hypothesis, while the run goes on.
        rng = random.Random(f"{self.seed}:measure:{index}")
        return dataclasses.replace(self.ctx, rng=rng, cancel=threading.Event())

    def _cleanup(self, ctx: contract.RunContext) -> contract.RunContext:
        """``ctx`` for taking things back: an interrupted run must still revert, roll back and
        tear down, so these calls don't see the run's cancellation."""
        return dataclasses.replace(ctx, cancel=self._cleanup_cancel)

    async def _call(self, call: Callable[[], T], timeout: float | None = None) -> T:
        return await clocks.within(self.clock, call, timeout)

    def _args(self, step: planning.PlannedStep, override: Mapping[str, Any] | None = None) -> contract.Args:
        return stepping.arguments(self.plan, step, templates.RunScope(self.outputs, self.secrets), override)

    # ---- public ---------------------------------------------------------------------------

    def interrupt(self, signal_name: str = "SIGINT") -> None:
        """A terminating signal. The first stops the run (faults revert, rollbacks run, the journal
        is written); later ones only say what is still applied - they never cut that short."""
        if self.stopping.interrupt(signal_name):
            return
        self.bus.emit(
            events.StillApplied(
                faults=self.book.still_applied(),
                command=f"chaoskit recover {self.run_id} --state-dir {self.settings.state_dir}",
            )
        )

    async def run(self) -> journals.Journal:
        self._loop = asyncio.get_running_loop()
        try:
            return await self._run()
        finally:
            self.ledger.close()
            self.halts.close()

    async def _run(self) -> journals.Journal:
        info = self.settings.experiment or journals.ExperimentInfo(
            title=self.plan.experiment.title, tags=list(self.plan.experiment.tags)
        )
        started = self._at()
        self.bus.emit(
            events.RunStarted(
                run_id=self.run_id,
                title=info.title,
                file=info.file,
                seed=self.seed,
                ledger=str(self.ledger.path),
                at=started,
            )
        )
        sources = self.settings.secret_sources or secretrefs.sources(self.plan.experiment)
        self.ledger.start(info.title, info.file, sources)
        watchers = [
            asyncio.ensure_future(self.stopping.watch_levers()),
            asyncio.ensure_future(self.stopping.deadline()),
        ]
        try:
            await self._until_stopped(self._body())
            await self.book.revert_all()
            if self._method_started and not self.findings.failed and not self.stopping.early:
                await self._until_stopped(self._after())
            await self.measuring.stop(wait=not self.stopping.early)
            if self._rollbacks_due():
                await self.steps.section(Phase.ROLLBACKS, self.plan.rollbacks, keep_going=True)
            if self._setup_started:
                await self.steps.section(Phase.TEARDOWN, self.plan.teardown, keep_going=True)
            await self.book.undo_all()
        finally:
            # Even on a chaoskit bug: nothing stays applied that we can take back.
            await self.book.revert_all()
            await self.measuring.stop(wait=False)
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            self.ctx.close()
        for failure in list(self.bus.failures):
            self._error(None, None, f"an event subscriber failed: {failure}")
        verdict, reason = self.findings.decide()
        with contextlib.suppress(errors.LedgerError):
            self.ledger.end(verdict.value)  # a ledger that can't be written is in the verdict already
        ended = self._at()
        self.bus.emit(events.VerdictReached(verdict, int(EXIT_CODES[verdict]), reason, ended))
        return self.journal.journal(
            run_id=self.run_id,
            info=info,
            started=started,
            ended=ended,
            verdict=verdict,
            reason=reason,
            seed=self.seed,
            ledger=str(self.ledger.path),
            secrets=self.bus.secrets,
        )

    async def _until_stopped(self, work: Awaitable[None]) -> None:
        """Run ``work`` unless or until the run is interrupted; then cancel it and return."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        exception = None if task.cancelled() else task.exception()
        if exception is not None and not isinstance(exception, _Abort):
            # A bug in chaoskit: record it (verdict error) and go on taking everything back.
            text = "".join(traceback.format_exception(exception)).rstrip()
            self._error(None, None, f"chaoskit bug, please report it: {text}")

    # ---- phases ---------------------------------------------------------------------------

    async def _body(self) -> None:
        if not await self._preflight():
            return
        self._setup_started = True
        await self.steps.section(Phase.SETUP, self.plan.setup)
        self.bus.emit(events.PhaseStarted(Phase.BEFORE, self._at()))
        failed = []
        for step in self.plan.steady_state:
            record = await self.checks.once(step, Phase.BEFORE)
            if isinstance(step.step, models.ProbeStep) and step.step.id:
                self.outputs[step.step.id] = record.value  # the baseline, for the steps after it
            if not record.ok:
                failed.append(f"{record.step}: {record.error or record.message}")
        if failed:
            self.findings.not_steady = "the steady state did not hold before: " + "; ".join(failed)
            return
        await self._method()

    def _rollbacks_due(self) -> bool:
        """Whether the rollbacks run, by the experiment's ``rollback_strategy``."""
        strategy = self.plan.experiment.rollback_strategy
        if strategy == "never":
            return False
        if strategy == "always":
            return self._setup_started  # not after a veto: nothing ran that could need rolling back
        if not self._method_started:
            return False
        deviated = bool(self.findings.deviations)
        return {"deviated": deviated, "not-deviated": not deviated}.get(strategy, True)

    async def _preflight(self) -> bool:
        """Ask every preflight check; a "no" vetoes the run before anything (even setup) runs."""
        if not self.plan.preflight:
            return True
        self.bus.emit(events.PhaseStarted(Phase.PREFLIGHT, self._at()))
        said_no = []
        for step in self.plan.preflight:
            record = await self.checks.once(step, Phase.PREFLIGHT)
            if not record.ok:
                said_no.append(f"{record.step}: {record.error or record.message}")
        if said_no:
            self.findings.vetoed = "; ".join(said_no)
            return False
        return True

    async def _method(self) -> None:
        self.bus.emit(events.PhaseStarted(Phase.METHOD, self._at()))
        self._method_started = True
        self.ctx.marks["method_start"] = self.clock.wall()
        self.measuring.start()
        stop = asyncio.Event()
        guards = [asyncio.ensure_future(self.checks.guard(g, stop)) for g in self.plan.guards]
        steps = asyncio.ensure_future(self._method_steps(stop))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({steps, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*guards, stopped):
                task.cancel()
            if not steps.done():
                steps.cancel()
            await asyncio.gather(steps, *guards, stopped, return_exceptions=True)
            self.ctx.marks["method_end"] = self.clock.wall()
        if not steps.cancelled() and (exception := steps.exception()) is not None:
            raise exception

    async def _method_steps(self, stop: asyncio.Event) -> None:
        try:
            for step in self.plan.method:
                if step.background:
                    task = asyncio.ensure_future(self._background_step(step, stop))
                    self._background.add(task)
                else:
                    await self.steps.step(step)
            if self._background:
                await asyncio.gather(*self._background)
            # A fault's duration is honoured even when the steps after it finish sooner.
            if timers := self.book.timers:
                await asyncio.gather(*[asyncio.shield(t) for t in timers])
        finally:
            pending = [t for t in self._background if not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._background.clear()

    async def _background_step(self, step: planning.PlannedStep, stop: asyncio.Event) -> None:
        try:
            await self.steps.step(step)
        except _Abort:
            stop.set()  # an error in a background step stops the method like one in the foreground

    async def _after(self) -> None:
        last = self.book.last_revert
        await self.checks.recovery(
            self.plan.steady_state,
            self.plan.experiment.recovery,
            last if last is not None else self.clock.now(),
        )

    # ---- steps ----------------------------------------------------------------------------
