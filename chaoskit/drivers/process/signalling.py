"""The process faults: ``process.kill`` sends a signal, ``process.stop`` freezes with SIGSTOP
until the revert sends SIGCONT.

Every signal goes to a (pid, start time) pair recorded before injecting, never to a bare pid,
so a revert after a crash can't hit an unrelated process that reused the pid.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.process import processes, selecting
from chaoskit.errors import DriverError
from chaoskit.stressors.inside import parse_signal

__all__ = ["parse_signal"]  # its importers (the agent) read it here too


class Targets(selecting.Selector, targeting.Selection):
    """Which processes, then how many of them."""


class KillArgs(Targets):
    signal: int = int(signal.SIGTERM)
    """The signal to send: a name (``SIGKILL``, ``KILL``) or a number (``9``); default SIGTERM."""

    @field_validator("signal", mode="before")
    @classmethod
    def _signal(cls, value: Any) -> int:
        number = parse_signal(value)
        if number in {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}:
            # These freeze the process, and a kill is never reverted: it would stay frozen.
            raise ValueError(
                f"{signal.Signals(number).name} freezes the process; use process.stop, which reverts"
            )
        return number


def _choose(args: Targets, ctx: contract.RunContext) -> list[contract.Target]:
    found = selecting.matching(args, strict=True)
    chosen = targeting.choose([selecting.target(p) for p in found], args, ctx.rng, what="processes")
    return chosen


class ProcessRevert(contract.Revert):
    """One process, named for good: a pid and the start time it had when the fault was prepared."""

    model_config = ConfigDict(strict=True)
    pid: int = Field(gt=0)
    """The process id."""
    starttime: int = Field(ge=0)
    """Clock ticks after boot when it started (``/proc/PID/stat`` field 22); a revert acts only on
    the process with this pid *and* this start time, never on one that reused the pid."""
    name: str
    """The kernel's name for it (``comm``), for the messages."""


class KillRevert(ProcessRevert):
    """What ``process.kill`` hit; there is nothing to undo (it is self-healing)."""

    signal: str = Field(min_length=1)
    """The name of the signal sent, e.g. ``SIGTERM``."""


class StopRevert(ProcessRevert):
    """What ``process.stop`` froze, and whether it was frozen before."""

    was_stopped: bool
    """It was already stopped (someone else's freeze) when the fault was prepared: the revert
    leaves it stopped."""


def _identify(target: contract.Target) -> processes.Info:
    info = processes.read(int(target.id))
    if info is None or info.state in {"Z", "X"}:
        raise DriverError(f"process {target} exited before the fault could be injected")
    recorded = target.detail.get("starttime")
    if recorded is not None and int(recorded) != info.starttime:
        raise DriverError(f"process {target} exited and its pid was reused before the fault was injected")
    return info


def _send(revert: ProcessRevert, signum: int, target: object) -> processes.Info:
    info = processes.same(revert.pid, revert.starttime)
    if info is None:
        raise DriverError(f"process {target} exited before it could be sent {signal.Signals(signum).name}")
    try:
        os.kill(revert.pid, signum)
    except ProcessLookupError as e:
        raise DriverError(
            f"process {target} exited before it could be sent {signal.Signals(signum).name}"
        ) from e
    except PermissionError as e:
        raise DriverError(
            f"not permitted to send {signal.Signals(signum).name} to process {target}: {e.strerror}",
            hint="run chaoskit as the process's user, or as root",
        ) from e
    return info


class Kill(contract.Fault[KillArgs, KillRevert], args=KillArgs, revert=KillRevert):
    name = "process.kill"
    summary = "Send a signal (default SIGTERM) to matching processes; whatever supervises them restarts them."
    reversibility = contract.Reversibility.SELF_HEALING

    def lease(self, args: KillArgs, target: contract.Target) -> None:
        # A signal is sent and done: nothing is held, so SIGTERM then SIGKILL to one process in
        # two steps is not an overlap.
        return None

    def targets(self, args: KillArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return _choose(args, ctx)

    def prepare(self, args: KillArgs, target: contract.Target, ctx: contract.RunContext) -> KillRevert:
        info = _identify(target)
        return KillRevert(
            pid=info.pid, starttime=info.starttime, name=info.name, signal=signal.Signals(args.signal).name
        )

    def inject(
        self, args: KillArgs, target: contract.Target, revert: KillRevert, ctx: contract.RunContext
    ) -> KillRevert:
        _send(revert, args.signal, target)
        ctx.log(f"sent {signal.Signals(args.signal).name} to {target}")
        return revert


class StopArgs(Targets):
    pass


class Stop(contract.Fault[StopArgs, StopRevert], args=StopArgs, revert=StopRevert):
    name = "process.stop"
    summary = "Freeze matching processes with SIGSTOP; the revert continues them with SIGCONT."
    reversibility = contract.Reversibility.REVERSIBLE

    def targets(self, args: StopArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return _choose(args, ctx)

    def prepare(self, args: StopArgs, target: contract.Target, ctx: contract.RunContext) -> StopRevert:
        info = _identify(target)
        # Someone else's freeze is not ours to lift: the revert leaves such a process stopped.
        return StopRevert(
            pid=info.pid, starttime=info.starttime, name=info.name, was_stopped=info.state == "T"
        )

    def inject(
        self, args: StopArgs, target: contract.Target, revert: StopRevert, ctx: contract.RunContext
    ) -> StopRevert:
        info = _send(revert, signal.SIGSTOP, target)
        # The signal is delivered when the process is next scheduled; wait until it is really
        # stopped so that what the experiment measures next happens under the fault.
        deadline = time.monotonic() + 2.0
        while info.state != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
            current = processes.same(info.pid, info.starttime)
            if current is None:
                break
            info = current
        ctx.log(f"stopped {target}")
        return revert

    def revert(self, revert: StopRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        pid = revert.pid
        info = processes.same(pid, revert.starttime)
        if info is None or revert.was_stopped:
            # Gone, or the pid now belongs to another process, or it was stopped before we came:
            # nothing of ours to continue.
            return contract.RevertOutcome.ALREADY_CLEAN
        try:
            # Sent even when /proc does not show "T" yet: a SIGSTOP still in flight must not win.
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            return contract.RevertOutcome.ALREADY_CLEAN
        except PermissionError as e:
            raise DriverError(
                f"not permitted to send SIGCONT to process {pid} ({info.name}): {e.strerror}",
                hint="run chaoskit recover as the process's user, or as root",
            ) from e
        return contract.RevertOutcome.REVERTED if info.state == "T" else contract.RevertOutcome.ALREADY_CLEAN
