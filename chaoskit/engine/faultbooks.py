"""The fault book: everything one run has changed, and the only code that changes it.

It injects faults (lease, then ``intent`` on disk, then ``inject``, then ``applied``), runs
actions that leave something behind (their undo data on disk *before* they run when they can say
it in advance), and takes everything back in reverse order: last applied, first reverted. When
the ledger can't be written it stops injecting at once (``broken``) and still reverts everything
from memory. The runner decides *when*; the book decides *how*.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.engine import events, journals, leases, ledgers, phases, planning

T = TypeVar("T")
Phase = phases.Phase


class StepFailed(Exception):
    """A step could not do its work; the reason is already recorded as an error."""


class StepTimeout(Exception):
    """A driver call took longer than its step's ``timeout``."""


class FaultState(enum.Enum):
    INTENT = "intent"
    APPLIED = "applied"
    REVERTED = "reverted"


@dataclass
class AppliedFault:
    entry: str
    step: planning.PlannedStep
    fault: contract.Fault[Any, Any]
    target: contract.Target
    revert: Any
    """The fault's revert model (what ``prepare``/``inject`` returned)."""
    ctx: contract.RunContext
    lease: str | None = None
    state: FaultState = FaultState.INTENT
    injected_at: datetime | None = None
    reverting: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return f"{self.fault.name} on {self.target} (step {self.step.label!r})"


@dataclass
class Leftover:
    entry: str
    step: planning.PlannedStep
    action: contract.Action[Any]
    data: contract.RevertData
    ctx: contract.RunContext

    def describe(self) -> str:
        return f"undo of {self.action.name} (step {self.step.label!r})"


def dump(revert: Any) -> dict[str, Any]:
    """Revert data as the ledger stores it; ``TypeError``/``ValueError`` when it can't be."""
    if isinstance(revert, contract.Revert):
        return contract.dump_revert(revert)
    raise TypeError(f"revert data must be a contract.Revert model, not {type(revert).__name__}")


def describe_error(e: BaseException) -> str:
    """One line for an exception from a driver call: a ``ChaoskitError`` as it renders, a timeout
    as itself, anything else (a driver bug) with its type."""
    return errors.text(e, typed=not isinstance(e, StepTimeout))


class FaultBook:
    """The faults one run applied and the leftovers of its actions, with the ledger behind them."""

    def __init__(
        self,
        ledger: ledgers.Ledger,
        *,
        state_dir: Path,
        bus: events.Bus,
        call: Callable[[Callable[[], T], float | None], Awaitable[T]],
        cleanup: Callable[[contract.RunContext], contract.RunContext],
        error: Callable[[Phase | None, str | None, str], None],
        at: Callable[[], datetime],
        now: Callable[[], float],
        wall: Callable[[], float],
        marks: dict[str, float],
        on_broken: Callable[[str], None],
        sleep: Callable[[float], Awaitable[None]],
        may_inject: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.state_dir = state_dir
        self.bus = bus
        self._call: Any = call
        self._cleanup = cleanup
        self._error = error
        self._at = at
        self._now = now
        self._wall = wall
        self._marks = marks
        self._on_broken = on_broken
        self._sleep = sleep
        self._may_inject = may_inject
        self.applied: list[AppliedFault] = []
        self.leftovers: list[Leftover] = []
        self.last_revert: float | None = None
        self._timers: set[asyncio.Task[None]] = set()

    # ---- the ledger ---------------------------------------------------------------------------

    @property
    def broken(self) -> errors.LedgerError | None:
        return self.ledger.broken

    def _write(self, write: Callable[[], None]) -> bool:
        """Write a ledger line; on failure, say so once and tell the runner to stop injecting."""
        with contextlib.suppress(errors.LedgerError):
            write()
        broken = self.ledger.broken
        if broken is None:
            return True
        self._on_broken(broken.message)
        return False

    def _fail(self, step: planning.PlannedStep, message: str) -> StepFailed:
        self._error(step.phase, step.label, message)
        return StepFailed(message)

    def _refuse_if_broken(self, step: planning.PlannedStep, what: str) -> None:
        if self.ledger.broken is not None:
            raise self._fail(
                step, f"{what} not done: the fault ledger can't be written ({self.ledger.broken.message})"
            )

    # ---- actions ------------------------------------------------------------------------------

    async def act(
        self,
        step: planning.PlannedStep,
        action: contract.Action[Any],
        args: contract.Args,
        ctx: contract.RunContext,
    ) -> Any:
        self._refuse_if_broken(step, action.name)
        entry = self.ledger.new_entry("u")
        ctx = dataclasses.replace(ctx, entry=entry)
        try:
            ahead = await self._call(functools.partial(action.prepare, args, ctx), step.timeout)
        except Exception as e:
            raise self._fail(step, f"{action.name} failed: {describe_error(e)}") from e
        if ahead is not None and not self._write(
            lambda: self.ledger.undo(entry, action.name, step.label, ahead, ahead=True)
        ):
            raise self._fail(step, f"{action.name} not run: the fault ledger can't be written")
        try:
            result = await self._call(functools.partial(action.run, args, ctx), step.timeout)
        except BaseException as e:
            if ahead is not None:
                # Whatever it may have left (a process spawned before a timeout or an interrupt) is
                # found by its mark and undone at the end, as recover would.
                self.leftovers.append(Leftover(entry, step, action, dict(ahead), ctx))
            if not isinstance(e, Exception):
                raise  # cancelled: the run is stopping
            raise self._fail(step, f"{action.name} failed: {describe_error(e)}") from e
        if result.undo is not None:
            self._write(lambda: self.ledger.undo(entry, action.name, step.label, result.undo))
            self.leftovers.append(Leftover(entry, step, action, dict(result.undo), ctx))
        elif ahead is not None:
            self._write(lambda: self.ledger.reverted(entry, journals.RevertStatus.NOT_NEEDED.value))
        return result.output

    async def undo_all(self) -> None:
        """Undo actions' leftovers, newest first."""
        remaining: list[Leftover] = []
        for left in reversed(self.leftovers):
            error: str | None
            ctx = self._cleanup(left.ctx)
            try:
                serves = await self._call(functools.partial(_serves, left.action, left.data, ctx), None)
                outcome = await self._call(functools.partial(left.action.undo, left.data, ctx), None)
            except Exception as e:
                text = describe_error(e)
                self._error(Phase.TEARDOWN, left.step.label, f"undo of {left.action.name} failed: {text}")
                status, error = journals.RevertStatus.FAILED, text
                remaining.append(left)
            else:
                self._write(functools.partial(self.ledger.reverted, left.entry, outcome.value, serves=serves))
                status, error = journals.RevertStatus(outcome.value), None
            self.bus.emit(
                events.UndoDone(
                    journals.UndoRecord(
                        step=left.step.label,
                        activity=left.action.name,
                        outcome=status,
                        at=self._at(),
                        error=error,
                        detail=_describe(left.action, left.data),
                    )
                )
            )
        self.leftovers = remaining

    # ---- faults -------------------------------------------------------------------------------

    async def inject(
        self,
        step: planning.PlannedStep,
        fault: contract.Fault[Any, Any],
        args: contract.Args,
        target: contract.Target,
        *,
        ctx: contract.RunContext,
        duration: float | None,
        allow_overlap: bool,
    ) -> AppliedFault:
        what = f"{fault.name} on {target}"
        if (why := self._may_inject()) is not None:
            raise StepFailed(f"{what} not injected: {why}")  # a halt: the verdict says so already
        self._refuse_if_broken(step, what)
        entry = self.ledger.new_entry("f")
        ctx = dataclasses.replace(ctx, entry=entry)
        try:
            revert = await self._call(functools.partial(fault.prepare, args, target, ctx), step.timeout)
        except Exception as e:
            raise self._fail(step, f"{what}: can't prepare: {describe_error(e)}") from e
        try:
            recorded = dump(revert)
            key = fault.lease(args, target)
        except (TypeError, ValueError) as e:
            # A driver bug: what can't be ledgered can't be recovered, so it is not injected.
            raise self._fail(step, f"{what} not injected: revert data is not JSON: {e}") from e
        if key is not None:
            try:
                leases.acquire(
                    self.state_dir,
                    key,
                    run_id=self.ledger.run_id,
                    entry=entry,
                    revert=recorded,
                    allow_overlap=allow_overlap,
                    what=what,
                )
            except errors.ChaoskitError as e:
                raise self._fail(step, f"{what} not injected: {e.render()}") from e
            except OSError as e:
                raise self._fail(
                    step, f"{what} not injected: can't record its lease: {e.strerror or e}"
                ) from e
        applied = AppliedFault(entry, step, fault, target, revert, ctx, lease=key)
        if not self._write(
            lambda: self.ledger.intent(entry, fault.name, step.label, target, recorded, lease=key)
        ):
            if key is not None:
                with contextlib.suppress(Exception):
                    leases.release(self.state_dir, key, run_id=self.ledger.run_id, entry=entry)
            raise self._fail(step, f"{what} not injected: the fault ledger can't be written")
        self.applied.append(applied)
        # No step timeout here: an injection abandoned half-way could land after its revert.
        work = asyncio.ensure_future(
            self._call(functools.partial(fault.inject, args, target, revert, ctx), None)
        )
        try:
            # Shielded: if the run is stopped mid-inject, wait for the driver to finish, so that the
            # revert can't overtake an injection still in flight.
            final = await asyncio.shield(work)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                final = await work
                self._applied(applied, final, duration=None)
            raise
        except Exception as e:
            raise self._fail(step, f"{what}: inject failed: {describe_error(e)}") from e
        self._applied(applied, final, duration)
        return applied

    def _applied(self, applied: AppliedFault, final: Any, duration: float | None) -> None:
        applied.revert = final
        applied.state = FaultState.APPLIED
        applied.injected_at = self._at()
        try:
            recorded = dump(final)
        except (TypeError, ValueError):
            recorded = dump(applied.revert)
        self._write(lambda: self.ledger.applied(applied.entry, recorded))
        self._marks.setdefault("first_inject", self._wall())
        self.bus.emit(
            events.FaultInjected(
                applied.step.label, applied.fault.name, applied.target, duration, applied.injected_at
            )
        )
        if applied.fault.reversibility is not contract.Reversibility.REVERSIBLE:
            # Nothing to take back; the ledger says so, so that recover leaves it alone.
            applied.state = FaultState.REVERTED
            self._write(lambda: self.ledger.reverted(applied.entry, journals.RevertStatus.NOT_NEEDED.value))
            self._release(applied)
            self.bus.emit(
                events.FaultReverted(
                    applied.step.label,
                    applied.fault.name,
                    applied.target,
                    journals.RevertStatus.NOT_NEEDED,
                    self._at(),
                )
            )
            return
        if duration is not None:
            timer = asyncio.ensure_future(self._revert_after(applied, duration))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)

    @property
    def timers(self) -> list[asyncio.Task[None]]:
        return list(self._timers)

    async def _revert_after(self, applied: AppliedFault, seconds: float) -> None:
        await self._sleep(seconds)
        await self.revert(applied)

    async def revert(self, applied: AppliedFault) -> None:
        if applied.state is FaultState.REVERTED:
            return
        if applied.reverting is None or applied.reverting.done():
            applied.reverting = asyncio.ensure_future(self._do_revert(applied))
        # Shielded: a cancelled duration timer must not cancel a revert half-way.
        await asyncio.shield(applied.reverting)

    def _release(self, applied: AppliedFault) -> None:
        if applied.lease is not None:
            with contextlib.suppress(Exception):
                leases.release(self.state_dir, applied.lease, run_id=self.ledger.run_id, entry=applied.entry)

    async def _do_revert(self, applied: AppliedFault) -> None:
        was = applied.state
        fault = applied.fault
        try:
            data, status = await self._call(functools.partial(self._handover, applied), None)
            if status is None:
                outcome = await self._call(
                    functools.partial(fault.revert, data, self._cleanup(applied.ctx)), None
                )
                status = journals.RevertStatus(outcome.value)
        except Exception as e:
            text = describe_error(e)
            message = f"{fault.name} on {applied.target}: revert failed: {text}"
            if was is FaultState.APPLIED:
                self._error(Phase.METHOD, applied.step.label, message)
                self.bus.emit(
                    events.FaultReverted(
                        applied.step.label,
                        fault.name,
                        applied.target,
                        journals.RevertStatus.FAILED,
                        self._at(),
                        error=text,
                    )
                )
            else:
                self.bus.emit(events.Log(f"best-effort revert after a failed inject: {message}", self._at()))
            return
        applied.state = FaultState.REVERTED
        self._write(lambda: self.ledger.reverted(applied.entry, status.value))
        self._release(applied)
        if was is FaultState.APPLIED:
            self.last_revert = self._now()
            self._marks["last_revert"] = self._wall()
            self.bus.emit(
                events.FaultReverted(applied.step.label, fault.name, applied.target, status, self._at())
            )

    def _handover(self, applied: AppliedFault) -> tuple[Any, journals.RevertStatus | None]:
        """The data to revert with, or a status when nothing is to be done: with overlapping faults
        on one lease, only the last one out restores, and it restores the first one's state."""
        if applied.lease is None or not applied.fault.captures_state:
            return applied.revert, None
        held = leases.peek(self.state_dir, applied.lease, run_id=self.ledger.run_id, entry=applied.entry)
        if held.remaining:
            return applied.revert, journals.RevertStatus.HANDED_OVER
        if held.original is not None and held.original != dump(applied.revert):
            return ledgers.revert_model(applied.fault, held.original), None
        return applied.revert, None

    async def revert_all(self) -> None:
        """Take back everything still applied, newest first: a later fault may sit on an earlier one."""
        for timer in list(self._timers):
            timer.cancel()
        for applied in reversed(self.applied):
            if applied.state is not FaultState.REVERTED and (
                applied.reverting is None or applied.reverting.done()
            ):
                applied.reverting = None
            await self.revert(applied)

    def still_applied(self) -> list[str]:
        still = [f.describe() for f in self.applied if f.state is not FaultState.REVERTED]
        return still + [left.describe() for left in self.leftovers]


def _serves(action: contract.Action[Any], data: contract.RevertData, ctx: contract.RunContext) -> list[str]:
    try:
        return sorted(action.serves(data, ctx))
    except Exception:
        return []  # only a hint for gone-with-host: never a reason not to undo


def _describe(action: contract.Action[Any], data: contract.RevertData) -> str | None:
    try:
        return action.describe(data)
    except Exception:
        return None  # words for people: never a reason for an undo to fail
