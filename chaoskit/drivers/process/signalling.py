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

from pydantic import field_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.process import processes, selecting
from chaoskit.errors import DriverError


def parse_signal(value: Any) -> int:
    """A signal number from ``SIGKILL``, ``KILL``, ``kill``, ``9`` or ``"9"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a signal name or number, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        try:
            return int(signal.Signals(number))
        except ValueError:
            raise ValueError(f"no signal has number {number}") from None
    if isinstance(value, str):
        text = value.strip().upper()
        text = text if text.startswith("SIG") else "SIG" + text
        try:
            return int(signal.Signals[text])
        except KeyError:
            raise ValueError(
                f"unknown signal {value!r}; write a name like SIGTERM or KILL, or a number"
            ) from None
    raise ValueError(f"expected a signal name or number, got {type(value).__name__}")


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


def _prepare(target: contract.Target) -> contract.RevertData:
    info = processes.read(int(target.id))
    if info is None or info.state in {"Z", "X"}:
        raise DriverError(f"process {target} exited before the fault could be injected")
    recorded = target.detail.get("starttime")
    if recorded is not None and int(recorded) != info.starttime:
        raise DriverError(f"process {target} exited and its pid was reused before the fault was injected")
    return {"pid": info.pid, "starttime": info.starttime, "name": info.name}


def _send(revert: contract.RevertData, signum: int, target: object) -> processes.Info:
    pid, starttime = revert["pid"], revert["starttime"]
    assert isinstance(pid, int) and isinstance(starttime, int)
    info = processes.same(pid, starttime)
    if info is None:
        raise DriverError(f"process {target} exited before it could be sent {signal.Signals(signum).name}")
    try:
        os.kill(pid, signum)
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


class Kill(contract.Fault[KillArgs]):
    name = "process.kill"
    summary = "Send a signal (default SIGTERM) to matching processes; whatever supervises them restarts them."
    args = KillArgs
    reversibility = contract.Reversibility.SELF_HEALING

    def targets(self, args: KillArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return _choose(args, ctx)

    def prepare(
        self, args: KillArgs, target: contract.Target, ctx: contract.RunContext
    ) -> contract.RevertData:
        return {**_prepare(target), "signal": signal.Signals(args.signal).name}

    def inject(
        self, args: KillArgs, target: contract.Target, revert: contract.RevertData, ctx: contract.RunContext
    ) -> contract.RevertData:
        _send(revert, args.signal, target)
        ctx.log(f"sent {signal.Signals(args.signal).name} to {target}")
        return revert


class StopArgs(Targets):
    pass


class Stop(contract.Fault[StopArgs]):
    name = "process.stop"
    summary = "Freeze matching processes with SIGSTOP; the revert continues them with SIGCONT."
    args = StopArgs
    reversibility = contract.Reversibility.REVERSIBLE

    def targets(self, args: StopArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return _choose(args, ctx)

    def prepare(
        self, args: StopArgs, target: contract.Target, ctx: contract.RunContext
    ) -> contract.RevertData:
        data = _prepare(target)
        info = processes.read(int(target.id))
        # Someone else's freeze is not ours to lift: the revert leaves such a process stopped.
        return {**data, "was_stopped": info is not None and info.state == "T"}

    def inject(
        self, args: StopArgs, target: contract.Target, revert: contract.RevertData, ctx: contract.RunContext
    ) -> contract.RevertData:
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

    def revert(self, revert: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        pid, starttime = revert.get("pid"), revert.get("starttime")
        if not isinstance(pid, int) or not isinstance(starttime, int):
            raise DriverError(f"process.stop revert data lacks pid/starttime: {revert!r}")
        info = processes.same(pid, starttime)
        if info is None or revert.get("was_stopped") is True:
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
