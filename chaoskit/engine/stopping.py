"""What stops a run early, and how: a terminating signal, a halt lever, ``max_duration``, a ledger
that can't be written. Each stops the run the same way (the method is cancelled, everything is
taken back, rollbacks and teardown run, the journal is written); the first reason is the one the
verdict gives."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime

from chaoskit import durations
from chaoskit.engine import clocks, events, halts, verdicts

HALT_POLL = 0.25
"""Seconds between two looks at the halt levers (and every inject looks first)."""


class Stopping:
    """The stop levers of one run. ``event`` is set once any of them is pulled; ``cancel`` (the run
    context's) tells driver calls in flight."""

    def __init__(
        self,
        *,
        findings: verdicts.Findings,
        bus: events.Bus,
        watch: halts.Watch,
        cancel: threading.Event,
        clock: clocks.Clock,
        max_duration: float,
        at: Callable[[], datetime],
    ) -> None:
        self.event = asyncio.Event()
        self._findings = findings
        self._bus = bus
        self._watch = watch
        self._cancel = cancel
        self._clock = clock
        self._max_duration = max_duration
        self._at = at
        self._interrupts = 0

    @property
    def interrupted(self) -> bool:
        return self._interrupts > 0

    @property
    def early(self) -> bool:
        """Stopped by a signal or a halt: the run does not go on to judge recovery."""
        return self.interrupted or self._findings.halted is not None

    def interrupt(self, signal_name: str) -> bool:
        """A terminating signal; True for the first one, which stops the run (later ones must
        never cut taking things back short)."""
        self._interrupts += 1
        if self._interrupts > 1:
            return False
        self._findings.interrupted_by = signal_name
        self._stop()
        return True

    def _stop(self) -> None:
        self.event.set()
        self._cancel.set()

    def ledger_broken(self, why: str) -> None:
        """The ledger can't be written: inject nothing more, and take back what is applied."""
        if self._findings.ledger is None:
            self._findings.ledger = why
            said = f"the fault ledger can't be written ({why}): stopping, reverting from memory"
            self._bus.emit(events.Log(said, self._at()))
            self._stop()

    def halt(self, why: str) -> None:
        """A halt lever was pulled (or ``max_duration`` ran out): stop as an interrupt does."""
        if self._findings.halted is None and not self.interrupted:
            self._findings.halted = why
            self._bus.emit(events.Log(f"{why}: stopping and taking everything back", self._at()))
            self._stop()

    def may_inject(self) -> str | None:
        """Why no fault may be injected now, or None: every inject asks the levers first."""
        if self._findings.halted is None and (halt := self._watch.check()) is not None:
            self._lever(halt)
        if self._findings.halted is not None:
            return self._findings.halted
        return "the run is stopping" if self.event.is_set() else None

    def _lever(self, halt: halts.Halt) -> None:
        """A halt lever is pulled: say who, when and why, then stop."""
        if self._findings.halted is None and not self.interrupted:
            self._bus.emit(events.Halted(halt.by, halt.reason, halt.at, halt.lever, self._at()))
        self.halt(halt.describe())

    async def watch_levers(self) -> None:
        """Look at the halt levers until one is pulled (cancelled when the run ends)."""
        while self._findings.halted is None:
            halt = await asyncio.to_thread(self._watch.check)
            if halt is not None:
                self._lever(halt)
                return
            await asyncio.sleep(HALT_POLL)  # real time: levers are for people and their clocks

    async def deadline(self) -> None:
        """Halt the run once ``max_duration`` has passed on the run's clock."""
        await self._clock.sleep(self._max_duration)
        self.halt(f"max_duration {durations.format(self._max_duration)} reached")
