"""The steps of a run: each one performed and journaled (a pause, a probe, an action, a fault
with its targets, a ramp stage by stage), and a section of them with its background steps.

A step that errors records why and raises ``faultbooks.StepFailed``; the runner decides what that
stops. Faults and actions go through the fault book, so that the ledger has them first."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from chaoskit import durations, errors, jsonvalues, wording
from chaoskit.drivers import contract
from chaoskit.engine import checking, events, faultbooks, journals, phases, planning, verdicts
from chaoskit.spec import models, templates

T = TypeVar("T")
Phase = phases.Phase


def arguments(
    plan: planning.Plan,
    step: planning.PlannedStep,
    scope: templates.RunScope,
    override: Mapping[str, Any] | None = None,
) -> contract.Args:
    """The step's arguments (with ``override``, a ramp stage's) with run-time templates filled
    in (``scope``: earlier steps' outputs, the secrets), validated."""
    if step.args is not None and not override:
        return step.args
    assert step.activity is not None
    try:
        raw = templates.render({**step.raw_args, **(override or {})}, scope)
    except errors.ChaoskitError as e:
        raise errors.SpecError([plan.problem((*step.path, "with"), e.message)]) from e
    try:
        args: contract.Args = step.activity.args.model_validate(raw)
    except ValidationError as e:
        problems = [
            plan.problem((*step.path, "with", *loc), msg)
            for loc, msg in planning.validation_messages(e, step.activity.args)
        ]
        raise errors.SpecError(problems) from e
    return args


class Steps:
    """Performs the steps of one run."""

    def __init__(
        self,
        plan: planning.Plan,
        *,
        bus: events.Bus,
        clock: Any,
        checks: checking.Checks,
        book: faultbooks.FaultBook,
        findings: verdicts.Findings,
        outputs: dict[str, Any],
        call: Callable[[Callable[[], T], float | None], Awaitable[T]],
        arguments: Callable[..., contract.Args],
        step_ctx: Callable[[planning.PlannedStep], contract.RunContext],
        error: Callable[[Phase | None, str | None, str], None],
        at: Callable[[], datetime],
    ) -> None:
        self.plan = plan
        self.bus = bus
        self.clock = clock
        self.checks = checks
        self.book = book
        self.findings = findings
        self.outputs = outputs
        self._call: Any = call
        self._arguments = arguments
        self._step_ctx = step_ctx
        self._error = error
        self._at = at

    async def section(
        self, phase: Phase, steps: Sequence[planning.PlannedStep], *, keep_going: bool = False
    ) -> None:
        """The steps of one section in order, background ones beside them; the first that fails
        stops the section, unless ``keep_going`` (rollbacks and teardown try every step)."""
        if not steps:
            return
        self.bus.emit(events.PhaseStarted(phase, self._at()))
        beside: list[asyncio.Future[None]] = []  # background steps; the section waits for them
        aborted: faultbooks.StepFailed | None = None
        try:
            for step in steps:
                if step.background:
                    beside.append(asyncio.ensure_future(self.step(step)))
                    continue
                try:
                    await self.step(step)
                except faultbooks.StepFailed as e:
                    if not keep_going:
                        aborted = e
                        break
        except BaseException:  # interrupted, or a chaoskit bug: no background step is left behind
            for task in beside:
                task.cancel()
            await asyncio.gather(*beside, return_exceptions=True)
            raise
        for outcome in await asyncio.gather(*beside, return_exceptions=True):
            if isinstance(outcome, faultbooks.StepFailed):
                aborted = aborted or outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        if aborted is not None and not keep_going:
            raise aborted

    async def step(self, step: planning.PlannedStep) -> None:
        """Run one step and journal it; raise ``faultbooks.StepFailed`` when it errored (already recorded)."""
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
        except faultbooks.StepFailed as e:
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

    def _fail(self, step: planning.PlannedStep, message: str) -> faultbooks.StepFailed:
        self._error(step.phase, step.label, message)
        return faultbooks.StepFailed(message)

    async def _action(self, step: planning.PlannedStep) -> Any:
        action = step.activity
        assert isinstance(action, contract.Action)
        ctx = self._step_ctx(step)
        try:
            args = self._arguments(step)
        except errors.ChaoskitError as e:
            raise self._fail(step, f"{action.name} failed: {e.render()}") from e
        return await self.book.act(step, action, args, ctx)

    async def _inject(self, step: planning.PlannedStep) -> list[contract.Target]:
        fault = step.activity
        spec = step.step
        assert isinstance(fault, contract.Fault) and isinstance(spec, models.FaultStep)
        ctx = self._step_ctx(step)
        try:
            args = self._arguments(step)
            targets = list(await self._call(functools.partial(fault.targets, args, ctx), step.timeout))
        except (errors.ChaoskitError, faultbooks.StepTimeout) as e:
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
            args = self._arguments(step, planning.ramp_stage(ramp, value))
            try:
                targets = list(await self._call(functools.partial(fault.targets, args, ctx), step.timeout))
            except (errors.ChaoskitError, faultbooks.StepTimeout) as e:
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
