"""Processes inside containers: ``docker.container.kill_process`` signals the ones whose name or
command line matches (not only the main process), ``docker.container.stop_process`` freezes them
with SIGSTOP until the revert continues them.

They are found from the host (root on the Docker host): the processes in the container's pid
namespace, each named for good by its host pid and start time, so that a revert after a crash never
signals a process that reused the pid.
"""

from __future__ import annotations

import os
import signal as signals
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.docker import matching, namespacing
from chaoskit.errors import ComponentMissing, DriverError, TargetError
from chaoskit.stressors import inside as shared

PROC = Path("/proc")


@dataclass(frozen=True)
class Seen:
    """One process of a container, as the host sees it."""

    pid: int
    starttime: int
    name: str
    cmdline: str
    state: str


def _read(pid: int) -> Seen | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    try:
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        starttime = int(fields[19])  # field 22 of proc(5)
    except (ValueError, IndexError):
        return None
    text = cmdline.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    return Seen(pid=pid, starttime=starttime, name=name, cmdline=text, state=fields[0])


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None


def inside(init: int) -> list[Seen]:
    """The live processes in the pid namespace of ``init`` (a container's main process)."""
    wanted = _namespace(init)
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and _namespace(int(entry.name)) == wanted:
            seen = _read(int(entry.name))
            if seen is not None and seen.state not in {"Z", "X"}:
                found.append(seen)
    return found


class ProcessMatch(matching.Selector, shared.ProcessMatch):
    def matches(self, seen: Seen, init: int) -> bool:
        return self.picks(seen.name, seen.cmdline, is_main=seen.pid == init)


class KillProcessArgs(ProcessMatch):
    signal: int = int(signals.SIGKILL)
    """The signal to send, by name (``SIGTERM``, ``TERM``) or number; default SIGKILL."""

    @field_validator("signal", mode="before")
    @classmethod
    def _signal(cls, value: Any) -> int:
        return shared.kill_signal(value, "docker.container.stop_process")


class ProcessesRevert(matching.ContainerRevert):
    """The processes hit, each named for good by host pid and start time."""

    model_config = ConfigDict(strict=True)
    pids: list[int] = Field(min_length=1)
    """Their pids on the host."""
    starttimes: list[int] = Field(min_length=1)
    """Their start times (``/proc/PID/stat`` field 22), one per pid."""
    names: list[str] = Field(default_factory=list)
    """Their names, for the messages."""

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if len(self.pids) != len(self.starttimes):
            raise ValueError("every pid needs its start time")
        return self


def _chosen(args: ProcessMatch, target: contract.Target, ctx: contract.RunContext, what: str) -> list[Seen]:
    container = matching.get(target.id, ctx)
    if container is None or container.status not in {"running", "paused"}:
        raise DriverError(f"{what}: container {target.name} is not running")
    init = namespacing.local_pid(container)
    if init is None:
        raise ComponentMissing(
            f"{what}: can't see the processes of container {target.name} from here",
            hint="run chaoskit as root on the Docker host (the engine must be local)",
        )
    found = [seen for seen in inside(init) if args.matches(seen, init)]
    if not found:
        names = ", ".join(sorted({s.name for s in inside(init)}))
        raise TargetError(
            f"{what}: no process in container {target.name} matches "
            + (f"name {args.process!r}" if args.process else f"pattern {args.pattern!r}"),
            hint=f"its processes: {names or 'none'}",
        )
    return found


def _revert(target: contract.Target, found: Sequence[Seen]) -> dict[str, Any]:
    return {
        "container_id": target.id,
        "name": target.name,
        "pids": [s.pid for s in found],
        "starttimes": [s.starttime for s in found],
        "names": [s.name for s in found],
    }


def _same(pid: int, starttime: int) -> Seen | None:
    seen = _read(pid)
    return seen if seen is not None and seen.starttime == starttime and seen.state not in {"Z", "X"} else None


def _send(revert: ProcessesRevert, signum: int) -> list[Seen]:
    """Send ``signum`` to each recorded process that is still the same; those it reached."""
    reached = []
    for pid, starttime in zip(revert.pids, revert.starttimes, strict=True):
        seen = _same(pid, starttime)
        if seen is None:
            continue
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue
        reached.append(seen)
    return reached


class KillProcess(
    contract.Fault[KillProcessArgs, ProcessesRevert], args=KillProcessArgs, revert=ProcessesRevert
):
    name = "docker.container.kill_process"
    summary = "Send a signal (default SIGKILL) to processes inside containers, by name or pattern."
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False

    def lease(self, args: KillProcessArgs, target: contract.Target) -> None:
        return None  # a signal is sent and done: nothing is held

    def targets(self, args: KillProcessArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(
        self, args: KillProcessArgs, target: contract.Target, ctx: contract.RunContext
    ) -> ProcessesRevert:
        return ProcessesRevert.model_validate(_revert(target, _chosen(args, target, ctx, self.name)))

    def inject(
        self,
        args: KillProcessArgs,
        target: contract.Target,
        revert: ProcessesRevert,
        ctx: contract.RunContext,
    ) -> ProcessesRevert:
        reached = _send(revert, args.signal)
        hit = ", ".join(f"{s.name} ({s.pid})" for s in reached)
        ctx.log(f"sent {signals.Signals(args.signal).name} to {hit} in container {target.name}")
        return revert


class StopProcess(contract.Fault[ProcessMatch, ProcessesRevert], args=ProcessMatch, revert=ProcessesRevert):
    name = "docker.container.stop_process"
    summary = "Freeze processes inside containers with SIGSTOP; the revert continues them with SIGCONT."
    captures_state = False

    def targets(self, args: ProcessMatch, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(
        self, args: ProcessMatch, target: contract.Target, ctx: contract.RunContext
    ) -> ProcessesRevert:
        # Someone else's freeze is not ours to lift: already stopped processes are left out.
        found = [s for s in _chosen(args, target, ctx, self.name) if s.state != "T"]
        if not found:
            raise TargetError(
                f"{self.name}: every matching process in container {target.name} is stopped already"
            )
        return ProcessesRevert.model_validate(_revert(target, found))

    def inject(
        self, args: ProcessMatch, target: contract.Target, revert: ProcessesRevert, ctx: contract.RunContext
    ) -> ProcessesRevert:
        reached = _send(revert, signals.SIGSTOP)
        ctx.log(f"stopped {', '.join(f'{s.name} ({s.pid})' for s in reached)} in container {target.name}")
        return revert

    def revert(self, revert: ProcessesRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        # Sent whatever /proc shows: a SIGSTOP still in flight must not win.
        reached = _send(revert, signals.SIGCONT)
        return contract.RevertOutcome.REVERTED if reached else contract.RevertOutcome.ALREADY_CLEAN
