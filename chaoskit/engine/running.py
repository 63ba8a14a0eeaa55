"""The runner: one experiment from setup to verdict, with every fault taken back whatever happens.

Orchestration is asyncio; driver code is synchronous and runs in worker threads through the
``Clock`` (so that ``chaoskit.testing.FakeClock`` can run the whole thing in virtual time).
Phases: setup → steady state before → method (with guards, background steps and duration
reverts) → revert everything still applied → steady state after, polled until it holds →
rollbacks → teardown → undo of actions' leftovers. Every fault goes through the ledger first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import secrets as secrets_module
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

import chaoskit
from chaoskit import durations, errors, jsonvalues, wording
from chaoskit.drivers import contract
from chaoskit.engine import (
    checking,
    controlling,
    events,
    faultbooks,
    halts,
    journals,
    ledgers,
    measuring,
    phases,
    planning,
    verdicts,
)
from chaoskit.spec import models, templates

T = TypeVar("T")
Phase = phases.Phase
Verdict = journals.Verdict

EXIT_CODES = verdicts.EXIT_CODES


class Clock(Protocol):
    """Time as the runner sees it. ``RealClock`` in production, ``testing.FakeClock`` in tests."""

    def now(self) -> float:
        """Monotonic seconds."""

    def wall(self) -> float:
        """Epoch seconds, for timestamps in the journal."""

    async def sleep(self, seconds: float) -> None: ...

    async def blocking(self, call: Callable[[], T]) -> T:
        """Run blocking driver code off the event loop. A fake clock needs to see this work, so
        that virtual time never jumps ahead while a driver call is still running."""


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def blocking(self, call: Callable[[], T]) -> T:
        # A daemon thread per call rather than the loop's executor: a driver call abandoned after
        # a step timeout must not keep chaoskit from exiting (asyncio.run joins its executor).
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(outcome: Callable[[], None]) -> None:
            if not future.done():
                outcome()

        def work() -> None:
            try:
                result = call()
            except BaseException as e:
                settle = functools.partial(deliver, functools.partial(future.set_exception, e))
            else:
                settle = functools.partial(deliver, functools.partial(future.set_result, result))
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(settle)

        threading.Thread(target=work, name="chaoskit-driver-call", daemon=True).start()
        return await future


_Abort = faultbooks.StepFailed
"""Stop the current phase; the reason is already recorded."""


_StepTimeout = faultbooks.StepTimeout


DEFAULT_MAX_DURATION = 2 * 3600.0
"""How long a run may take when neither the experiment (``max_duration``) nor ``--max-duration``
says: generous, so that only a forgotten pause or a hung probe reaches it."""
HALT_POLL = 0.25
"""Seconds between two looks at the halt levers (and every inject looks first)."""


def secret_sources(experiment: models.Experiment) -> dict[str, dict[str, str]]:
    """Where each of the experiment's secrets comes from, as the ledger records it (never a
    value): ``{"env": NAME}`` or ``{"file": PATH}``; ``{}`` for one given inline."""
    sources: dict[str, dict[str, str]] = {}
    for name, ref in experiment.secrets.items():
        if ref.env is not None:
            sources[name] = {"env": ref.env}
        elif ref.file is not None:
            sources[name] = {"file": ref.file}
        else:
            sources[name] = {}
    return sources


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


class JournalBuilder:
    """Subscribes to a run's events and assembles the journal."""

    def __init__(self) -> None:
        self.checks: list[journals.CheckRecord] = []
        self.steps: list[journals.StepRecord] = []
        self.rollbacks: list[journals.StepRecord] = []
        self.teardown: list[journals.StepRecord] = []
        self.faults: list[journals.FaultRecord] = []
        self.trips: list[journals.GuardTrip] = []
        self.undo: list[journals.UndoRecord] = []
        self.errors: list[journals.ErrorRecord] = []
        self.recovery: journals.RecoveryRecord | None = None
        self.measures: list[journals.MeasureRecord] = []
        self.samples: list[journals.Sample] = []
        self._open: dict[tuple[str, str, str], list[int]] = {}

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.CheckDone(record=record):
                self.checks.append(record)
            case events.StepEnded(record=record):
                {Phase.ROLLBACKS: self.rollbacks, Phase.TEARDOWN: self.teardown}.get(
                    record.phase, self.steps
                ).append(record)
            case events.FaultInjected():
                key = (event.step, event.activity, event.target.id)
                self._open.setdefault(key, []).append(len(self.faults))
                self.faults.append(
                    journals.FaultRecord(
                        step=event.step,
                        activity=event.activity,
                        target=journals.TargetInfo.model_validate(event.target.to_json()),
                        injected_at=event.at,
                        duration=event.duration,
                    )
                )
            case events.FaultReverted():
                key = (event.step, event.activity, event.target.id)
                if self._open.get(key):
                    index = self._open[key].pop(0)
                    self.faults[index] = self.faults[index].model_copy(
                        update={"reverted_at": event.at, "revert": event.status, "revert_error": event.error}
                    )
            case events.GuardTripped(trip=trip):
                self.trips.append(trip)
            case events.RecoveryDone(record=record):
                self.recovery = record
            case events.UndoDone(record=record):
                self.undo.append(record)
            case events.ErrorRaised(record=record):
                self.errors.append(record)
            case events.Sampled(sample=sample):
                self.samples.append(sample)
            case events.MeasureEnded(record=record):
                self.measures.append(record)
            case _:
                pass


class Runner:
    """Runs one planned experiment. ``await runner.run()`` returns the journal whatever the system,
    a driver or chaoskit itself did: that is in the verdict, after everything was taken back."""

    def __init__(
        self,
        plan: planning.Plan,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        bus: events.Bus | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings or Settings()
        self.clock: Clock = clock or RealClock()
        self.secrets = dict(self.settings.secrets)
        self.bus = bus or events.Bus()
        self.bus.secrets = tuple(v for v in self.secrets.values() if v)
        self.journal = JournalBuilder()
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
        self.max_duration = (
            self.settings.max_duration or self.plan.experiment.max_duration or DEFAULT_MAX_DURATION
        )
        self.ledger = ledgers.Ledger.create(self.settings.state_dir, self.run_id, self.secrets)
        self.ctx = contract.RunContext(run_id=self.run_id, state_dir=self.settings.state_dir, log=self._log)
        self.findings = verdicts.Findings()
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
            on_broken=self._ledger_broken,
            sleep=self.clock.sleep,
            may_inject=self._may_inject,
        )
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
        self.outputs: dict[str, Any] = {}
        self._stopping = asyncio.Event()
        self._cleanup_cancel = threading.Event()
        self._interrupts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._method_started = False
        self._setup_started = False
        self._background: set[asyncio.Task[Any]] = set()

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
        work = asyncio.ensure_future(self.clock.blocking(call))
        if timeout is None:
            return await work
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({work, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        if work.done():
            return work.result()
        work.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise _StepTimeout(f"timed out after {durations.format(timeout)}")

    def _args(self, step: planning.PlannedStep, override: Mapping[str, Any] | None = None) -> contract.Args:
        """The step's arguments (with ``override``, a ramp stage's) with run-time templates filled
        in, validated."""
        if step.args is not None and not override:
            return step.args
        assert step.activity is not None
        try:
            raw = templates.render(
                {**step.raw_args, **(override or {})}, templates.RunScope(self.outputs, self.secrets)
            )
        except errors.ChaoskitError as e:
            raise errors.SpecError([self.plan.problem((*step.path, "with"), e.message)]) from e
        try:
            args: contract.Args = step.activity.args.model_validate(raw)
        except ValidationError as e:
            problems = [
                self.plan.problem((*step.path, "with", *loc), msg)
                for loc, msg in planning.validation_messages(e, step.activity.args)
            ]
            raise errors.SpecError(problems) from e
        return args

    # ---- public ---------------------------------------------------------------------------

    def interrupt(self, signal_name: str = "SIGINT") -> None:
        """A terminating signal. The first stops the run (faults revert, rollbacks run, the journal
        is written); later ones only say what is still applied - they never cut that short."""
        self._interrupts += 1
        if self._interrupts == 1:
            self.findings.interrupted_by = signal_name
            self._stop()
            return
        self.bus.emit(
            events.StillApplied(
                faults=self.book.still_applied(),
                command=f"chaoskit recover {self.run_id} --state-dir {self.settings.state_dir}",
            )
        )

    def _stop(self) -> None:
        self._stopping.set()
        self.ctx.cancel.set()

    def _ledger_broken(self, why: str) -> None:
        """The ledger can't be written: inject nothing more, and take back what is applied."""
        if self.findings.ledger is None:
            self.findings.ledger = why
            self.bus.emit(
                events.Log(
                    f"the fault ledger can't be written ({why}): stopping, reverting from memory", self._at()
                )
            )
            self._stop()

    def halt(self, why: str) -> None:
        """A halt lever was pulled (or ``max_duration`` ran out): stop as an interrupt does."""
        if self.findings.halted is None and not self.interrupted:
            self.findings.halted = why
            self.bus.emit(events.Log(f"{why}: stopping and taking everything back", self._at()))
            self._stop()

    def _may_inject(self) -> str | None:
        """Why no fault may be injected now, or None: every inject asks the levers first."""
        if self.findings.halted is None and (halt := self.halts.check()) is not None:
            self._lever(halt)
        if self.findings.halted is not None:
            return self.findings.halted
        return "the run is stopping" if self._stopping.is_set() else None

    def _lever(self, halt: halts.Halt) -> None:
        """A halt lever is pulled: say who, when and why, then stop."""
        if self.findings.halted is None and not self.interrupted:
            self.bus.emit(events.Halted(halt.by, halt.reason, halt.at, halt.lever, self._at()))
        self.halt(halt.describe())

    async def _watch_halt(self) -> None:
        while self.findings.halted is None:
            halt = await asyncio.to_thread(self.halts.check)
            if halt is not None:
                self._lever(halt)
                return
            await asyncio.sleep(HALT_POLL)  # real time: levers are for people and their clocks

    async def _deadline(self) -> None:
        await self.clock.sleep(self.max_duration)
        self.halt(f"max_duration {durations.format(self.max_duration)} reached")

    @property
    def interrupted(self) -> bool:
        return self._interrupts > 0

    @property
    def _stopped_early(self) -> bool:
        return self.interrupted or self.findings.halted is not None

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
        sources = self.settings.secret_sources or secret_sources(self.plan.experiment)
        self.ledger.start(info.title, info.file, sources)
        watchers = [asyncio.ensure_future(self._watch_halt()), asyncio.ensure_future(self._deadline())]
        try:
            await self._until_stopped(self._body())
            await self.book.revert_all()
            if self._method_started and not self.findings.failed and not self._stopped_early:
                await self._until_stopped(self._after())
            await self.measuring.stop(wait=not self._stopped_early)
            if self._rollbacks_due():
                await self._section(Phase.ROLLBACKS, self.plan.rollbacks, keep_going=True)
            if self._setup_started:
                await self._section(Phase.TEARDOWN, self.plan.teardown, keep_going=True)
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
        return self._journal(info, started, ended, verdict, reason)

    def _journal(
        self,
        info: journals.ExperimentInfo,
        started: datetime,
        ended: datetime,
        verdict: Verdict,
        reason: str,
    ) -> journals.Journal:
        j = self.journal
        journal = journals.Journal(
            run_id=self.run_id,
            chaoskit_version=chaoskit.__version__,
            experiment=info,
            started=started,
            ended=ended,
            verdict=verdict,
            exit_code=int(EXIT_CODES[verdict]),
            reason=reason,
            seed=self.seed,
            ledger=str(self.ledger.path),
            checks=j.checks,
            steps=j.steps,
            faults=j.faults,
            guard_trips=j.trips,
            recovery=j.recovery,
            rollbacks=j.rollbacks,
            teardown=j.teardown,
            undo=j.undo,
            errors=j.errors,
            measures=j.measures,
            samples=j.samples,
        )
        return journals.redact(journal, self.bus.secrets)

    async def _until_stopped(self, work: Awaitable[None]) -> None:
        """Run ``work`` unless or until the run is interrupted; then cancel it and return."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopping.wait())
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
        await self._section(Phase.SETUP, self.plan.setup)
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

    async def _section(
        self, phase: Phase, steps: Sequence[planning.PlannedStep], *, keep_going: bool = False
    ) -> None:
        if not steps:
            return
        self.bus.emit(events.PhaseStarted(phase, self._at()))
        beside: list[asyncio.Future[None]] = []  # background steps; the section waits for them
        aborted: _Abort | None = None
        try:
            for step in steps:
                if step.background:
                    beside.append(asyncio.ensure_future(self._step(step)))
                    continue
                try:
                    await self._step(step)
                except _Abort as e:
                    if not keep_going:
                        aborted = e
                        break
        except BaseException:  # interrupted, or a chaoskit bug: no background step is left behind
            for task in beside:
                task.cancel()
            await asyncio.gather(*beside, return_exceptions=True)
            raise
        for outcome in await asyncio.gather(*beside, return_exceptions=True):
            if isinstance(outcome, _Abort):
                aborted = aborted or outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        if aborted is not None and not keep_going:
            raise aborted

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
                    await self._step(step)
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
            await self._step(step)
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

    async def _step(self, step: planning.PlannedStep) -> None:
        """Run one step and journal it; raise ``_Abort`` when it errored (already recorded)."""
        started = self._at()
        self.bus.emit(
            events.StepStarted(
                step.phase, step.index, step.label, step.kind, step.step.activity, step.background, started
            )
        )
        status = journals.StepStatus.OK
        output: Any = None
        error: str | None = None
        try:
            output, status = await self._perform(step)
        except asyncio.CancelledError:
            status = journals.StepStatus.CANCELLED
            raise
        except _Abort as e:
            status, error = journals.StepStatus.ERROR, str(e)
            raise
        finally:
            self.bus.emit(
                events.StepEnded(
                    journals.StepRecord(
                        phase=step.phase,
                        index=step.index,
                        name=step.label,
                        kind=step.kind,
                        activity=step.step.activity,
                        status=status,
                        started=started,
                        ended=self._at(),
                        background=step.background,
                        output=journals.redact(jsonvalues.lenient(output), self.bus.secrets),
                        error=error,
                    )
                )
            )

    async def _perform(self, step: planning.PlannedStep) -> tuple[Any, journals.StepStatus]:
        spec = step.step
        if isinstance(spec, models.PauseStep):
            await self.clock.sleep(spec.pause)
            return None, journals.StepStatus.OK
        if isinstance(spec, models.ProbeStep):
            if spec.until is None:
                record = await self.checks.once(step, step.phase)
            else:
                record = await self.checks.until(step, spec.until)
            if spec.id:
                self.outputs[spec.id] = record.value
            if not record.ok and step.phase is Phase.METHOD:
                self.findings.deviations.append(
                    f"method probe {record.step!r}: {record.error or record.message}"
                )
            status = journals.StepStatus.OK if record.ok else journals.StepStatus.FAILED
            return record.value, status
        if isinstance(spec, models.ActionStep):
            output = await self._action(step)
            if spec.id:
                self.outputs[spec.id] = output
            return output, journals.StepStatus.OK
        targets = await self._inject(step)
        output = [t.to_json() for t in targets]
        if spec.id:
            self.outputs[spec.id] = output
        return output, journals.StepStatus.OK

    def _fail(self, step: planning.PlannedStep, message: str) -> _Abort:
        self._error(step.phase, step.label, message)
        return _Abort(message)

    async def _action(self, step: planning.PlannedStep) -> Any:
        action = step.activity
        assert isinstance(action, contract.Action)
        ctx = self._step_ctx(step)
        try:
            args = self._args(step)
        except errors.ChaoskitError as e:
            raise self._fail(step, f"{action.name} failed: {e.render()}") from e
        return await self.book.act(step, action, args, ctx)

    async def _inject(self, step: planning.PlannedStep) -> list[contract.Target]:
        fault = step.activity
        spec = step.step
        assert isinstance(fault, contract.Fault) and isinstance(spec, models.FaultStep)
        ctx = self._step_ctx(step)
        try:
            args = self._args(step)
            targets = list(await self._call(functools.partial(fault.targets, args, ctx), step.timeout))
        except (errors.ChaoskitError, _StepTimeout) as e:
            text = errors.text(e)
            raise self._fail(step, f"{fault.name}: can't select targets: {text}") from e
        except Exception as e:
            raise self._fail(step, f"{fault.name} raised {type(e).__name__}: {e}") from e
        if spec.ramp is not None:
            return await self._ramp(step, fault, spec, spec.ramp, ctx)
        for target in targets:
            await self.book.inject(
                step, fault, args, target, ctx=ctx, duration=spec.duration, allow_overlap=spec.allow_overlap
            )
        return targets

    async def _ramp(
        self,
        step: planning.PlannedStep,
        fault: contract.Fault[Any, Any],
        spec: models.FaultStep,
        ramp: models.Ramp,
        ctx: contract.RunContext,
    ) -> list[contract.Target]:
        """Inject stage by stage, each on its own (the previous one taken back first), holding each
        for ``ramp.hold`` and checking the steady state; the first stage that breaks it ends the
        ramp, and its faults stay until the method ends, as any fault's do."""
        stages = len(ramp.stages)
        held: list[faultbooks.AppliedFault] = []
        targets: list[contract.Target] = []
        for number, value in enumerate(ramp.stages, start=1):
            for applied in reversed(held):
                await self.book.revert(applied)
            args = self._args(step, planning.ramp_stage(ramp, value))
            try:
                targets = list(await self._call(functools.partial(fault.targets, args, ctx), step.timeout))
            except (errors.ChaoskitError, _StepTimeout) as e:
                text = errors.text(e)
                raise self._fail(
                    step, f"{fault.name}: ramp stage {number}: can't select targets: {text}"
                ) from e
            last = number == stages
            held = [
                await self.book.inject(
                    step,
                    fault,
                    args,
                    target,
                    ctx=ctx,
                    duration=spec.duration if last else None,
                    allow_overlap=spec.allow_overlap,
                )
                for target in targets
            ]
            self.bus.emit(
                events.Log(
                    f"{step.label}: ramp stage {number}/{stages} ({planning.show_stage(ramp, value)}): "
                    f"{wording.counted(len(targets), 'target')}, held {durations.format(ramp.hold)}",
                    self._at(),
                )
            )
            await self.clock.sleep(ramp.hold)
            broken = []
            for check in self.plan.steady_state:
                record = await self.checks.once(check, Phase.METHOD)
                if not record.ok:
                    broken.append(f"{record.step}: {record.error or record.message}")
            if broken:
                self.findings.deviations.append(
                    f"{step.label}: ramp stage {number}/{stages} ({planning.show_stage(ramp, value)}) broke "
                    "the steady state: " + "; ".join(broken)
                )
                break
        return targets
