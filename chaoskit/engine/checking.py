"""The checks of a run: a probe judged once, polled ``until`` it holds, a guard polled beside the
method until it trips, and the steady state polled after the last revert until it recovers.
Each emits its records on the bus and adds what it finds to the run's findings."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from chaoskit import durations, errors, jsonvalues, wording
from chaoskit.drivers import contract
from chaoskit.engine import events, faultbooks, journals, phases, planning, verdicts
from chaoskit.spec import expectations, models

T = TypeVar("T")
Phase = phases.Phase


class Checks:
    """Runs and judges probes for one run."""

    def __init__(
        self,
        *,
        bus: events.Bus,
        clock: Any,
        findings: verdicts.Findings,
        call: Callable[[Callable[[], T], float | None], Awaitable[T]],
        arguments: Callable[[planning.PlannedStep], contract.Args],
        step_ctx: Callable[[planning.PlannedStep], contract.RunContext],
        error: Callable[[Phase | None, str | None, str], None],
        at: Callable[[], datetime],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._findings = findings
        self._call: Any = call
        self._arguments = arguments
        self._step_ctx = step_ctx
        self._error = error
        self._at = at

    async def guard(self, planned: planning.PlannedStep, stop: asyncio.Event) -> None:
        guard = planned.step
        assert isinstance(guard, models.Guard)
        in_a_row = 0
        poll = 0
        while True:
            record = await self.once(planned, Phase.GUARD, poll=poll)
            poll += 1
            in_a_row = 0 if record.ok else in_a_row + 1
            if in_a_row >= guard.failures:
                message = f"guard {record.step!r} failed {wording.counted(in_a_row, 'time')} in a row: " + (
                    record.error or record.message
                )
                self._bus.emit(
                    events.GuardTripped(
                        journals.GuardTrip(
                            guard=record.step, at=self._at(), failures=in_a_row, message=message
                        )
                    )
                )
                self._findings.deviations.append(message)
                stop.set()
                return
            await self._clock.sleep(guard.interval)

    async def recovery(
        self, steady_state: Sequence[planning.PlannedStep], recovery: models.Recovery, base: float
    ) -> None:
        """Poll the steady state after the last revert (at ``base``) until it holds or
        ``recovery.within`` runs out; the measured recovery time is recorded."""
        self._bus.emit(events.PhaseStarted(Phase.AFTER, self._at()))
        poll = 0
        while True:
            polled_at = self._clock.now()
            held = True
            for step in steady_state:
                record = await self.once(step, Phase.AFTER, poll=poll)
                held = held and record.ok
            elapsed = max(0.0, polled_at - base)
            self._bus.emit(events.RecoveryPolled(poll=poll, held=held, elapsed=elapsed, at=self._at()))
            poll += 1
            if held:
                # ``within: 0s`` means "judge it once, right after the last revert" (as Chaos
                # Toolkit does): holding at that first poll is recovery in time.
                met = elapsed <= recovery.within or (poll == 1 and recovery.within == 0)
                if not met:
                    self._findings.deviations.append(
                        f"recovered in {durations.format(elapsed)}, more than recovery.within "
                        f"{durations.format(recovery.within)}"
                    )
                self._recovered(recovery.within, elapsed, met, poll)
                return
            next_poll = polled_at + recovery.interval  # a steady cadence, however long probes take
            if next_poll - base > recovery.within:
                self._findings.deviations.append(
                    f"the steady state did not hold again within {durations.format(recovery.within)}"
                )
                self._recovered(recovery.within, None, False, poll)
                return
            await self._clock.sleep(next_poll - self._clock.now())

    def _recovered(self, within: float, measured: float | None, met: bool, polls: int) -> None:
        record = journals.RecoveryRecord(required=within, measured=measured, met=met, polls=polls)
        self._bus.emit(events.RecoveryDone(record))

    async def until(self, step: planning.PlannedStep, until: models.Until) -> journals.CheckRecord:
        """Poll ``step`` every ``until.interval`` until it holds; after ``until.within`` (or an
        error that polling can't cure, such as a missing component) its last poll decides."""
        began = self._clock.now()
        poll = 0
        while True:
            polled_at = self._clock.now()
            record, cured_by_waiting = await self._judge(step, step.phase, poll)
            poll += 1
            if record.ok or not cured_by_waiting:
                return record
            next_poll = polled_at + until.interval  # a steady cadence, however long the probe takes
            if next_poll - began > until.within:
                self._bus.emit(
                    events.Log(
                        f"{record.step}: did not hold within {durations.format(until.within)} "
                        f"({wording.counted(poll, 'poll')})",
                        self._at(),
                    )
                )
                return record
            await self._clock.sleep(max(0.0, next_poll - self._clock.now()))

    async def once(
        self, step: planning.PlannedStep, phase: Phase, poll: int | None = None
    ) -> journals.CheckRecord:
        record, _ = await self._judge(step, phase, poll)
        return record

    async def _judge(
        self, step: planning.PlannedStep, phase: Phase, poll: int | None
    ) -> tuple[journals.CheckRecord, bool]:
        """Run the probe once and judge it: the record, and whether asking again could change it
        (not when the driver is missing, the arguments are wrong or the driver is broken)."""
        probe = step.activity
        assert isinstance(probe, contract.Probe)
        spec = step.step
        assert isinstance(spec, models.ProbeStep)
        at = self._at()
        began = self._clock.now()
        value: Any = None
        error: str | None = None
        cured_by_waiting = True
        try:
            args = self._arguments(step)
            ctx = self._step_ctx(step)
            value = await self._call(functools.partial(probe.run, args, ctx), step.timeout)
        except (errors.ComponentMissing, errors.SpecError) as e:
            # Not what the system looks like: the driver is missing, or the step's run-time
            # arguments are wrong. Either way the run can't say anything about the system.
            error = e.render()
            cured_by_waiting = False
            self._error(phase, step.label, f"{probe.name}: {error}")
        except (errors.ChaoskitError, faultbooks.StepTimeout) as e:
            error = errors.text(e)
        except Exception as e:
            # A probe that raises something else is a driver bug: say so, and fail the run.
            error = f"{type(e).__name__}: {e}"
            cured_by_waiting = False
            self._error(phase, step.label, f"{probe.name} raised {error}")
        expected: list[str] = []
        messages: list[str] = []
        ok = error is None
        if error is None:
            for expect in spec.expects:
                outcome = await self._expect(step, expect, value)
                expected.append(outcome.expected)
                if not outcome.ok:
                    ok = False
                    messages.append(outcome.message)
        record = journals.CheckRecord(
            phase=phase,
            step=step.label,
            activity=probe.name,
            value=journals.redact(jsonvalues.lenient(value), self._bus.secrets),
            expected=expected,
            ok=ok,
            message="; ".join(messages) if messages else (error or ""),
            elapsed=max(0.0, self._clock.now() - began),
            at=at,
            error=error,
            poll=poll,
        )
        self._bus.emit(events.CheckDone(record))
        return record, cured_by_waiting

    async def _expect(
        self, step: planning.PlannedStep, expect: models.Expect, value: Any
    ) -> expectations.Check:
        """One ``expect`` judged. A ``call:`` is a user's function that may take its time: it runs off
        the event loop, within the step's timeout, so that guards, timers and signals carry on."""
        if expect.call is None:
            return expectations.check(expect, value)
        try:
            outcome: expectations.Check = await self._call(
                functools.partial(expectations.check, expect, value), step.timeout
            )
        except faultbooks.StepTimeout as e:
            expected = f"{expect.path or 'output'} accepted by {expect.call}()"
            return expectations.Check(False, expected, None, f"expected {expected}, but {expect.call}() {e}")
        return outcome
