"""The faults the agent applies to a host pid (a container's or a pod's main process), each with the
data its revert needs: chaoskit's stressor entered into the target's cgroups and namespaces
(``stress_cpu``, ``stress_memory``, ``fill_disk``, ``stress_io``), signals to the processes of its pid
namespace (``kill_process``, ``stop_process``), iptables rules in its network namespace (``partition``), each
rule carrying the fault's mark in a comment, and DNS answers there (``dns``, in ``resolving``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal as signals
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chaoskit.agent import locating, resolving
from chaoskit.drivers import contract
from chaoskit.drivers.process import processes
from chaoskit.errors import ComponentMissing, DriverError, TargetError, UsageError
from chaoskit.stressors import cgroups, inside, loads, spawning

IPTABLES_TIMEOUT = 30.0


class ProcessArgs(inside.ProcessMatch):
    """Which processes of the target's pid namespace, and the signal a kill sends."""

    signal: int = int(signals.SIGKILL)

    @field_validator("signal", mode="before")
    @classmethod
    def _signal(cls, value: Any) -> int:
        return inside.parse_signal(value)


class PartitionArgs(BaseModel):
    """Traffic dropped in the target's network namespace, both ways."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cidrs: list[str] = Field(default_factory=list)
    """Peers cut off (``10.0.0.7``, ``10.244.0.0/16``); empty: every peer except loopback."""

    @field_validator("cidrs")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v, strict=False)) for v in value]


STRESS: dict[str, tuple[loads.Kind, type[loads.Load]]] = {
    "stress_cpu": ("cpu", loads.CpuLoad),
    "stress_memory": ("memory", loads.MemoryLoad),
    "fill_disk": ("fill", loads.FillLoad),
    "stress_io": ("io", loads.IoLoad),
}
KINDS = (*STRESS, "kill_process", "stop_process", "partition", "dns")


def parse(kind: str, args: dict[str, Any]) -> BaseModel:
    """The validated arguments of ``kind``; a ``UsageError`` naming every problem otherwise."""
    model: type[BaseModel]
    if kind in STRESS:
        model = STRESS[kind][1]
    elif kind in {"kill_process", "stop_process"}:
        model = ProcessArgs
    elif kind == "partition":
        model = PartitionArgs
    elif kind == "dns":
        model = resolving.DnsArgs
    else:
        raise UsageError(f"agent: unknown fault {kind!r}", hint=f"one of: {', '.join(KINDS)}")
    try:
        return model.model_validate(args)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'args'}: {p['msg']}" for p in e.errors())
        raise UsageError(f"agent: {kind}: {problems}") from e


def _inside(pid: int, path: str) -> str:
    return str(Path(f"/proc/{pid}/root") / path.lstrip("/"))


def _alive(pid: int, starttime: int) -> bool:
    return locating.starttime(pid) == starttime


def _stress_files(load: loads.Load, stem: str) -> tuple[str, ...]:
    if isinstance(load, loads.FillLoad):
        return (str(Path("/", load.path) / stem),)
    if isinstance(load, loads.IoLoad):
        return spawning.io_files(str(Path("/", load.path)), stem, load.workers)
    return ()


def stress(kind: str, load: loads.Load, at: locating.Located, undo: dict[str, Any]) -> str:
    what, _ = STRESS[kind]
    mark, files = str(undo["mark"]), list(undo["files"])
    path, size, extra = "", 0, []
    if isinstance(load, loads.FillLoad):
        size = spawning.fill_size(load, _inside(at.pid, load.path))
        path = _inside(at.pid, files[0])
    elif isinstance(load, loads.IoLoad):
        path, extra = _inside(at.pid, load.path), ["--prefix", spawning.file_stem(mark)]
    if shutil.which("nsenter") is None:
        raise ComponentMissing("agent: nsenter is not installed", hint="install util-linux on the node")
    enter = ["nsenter", "--target", str(at.pid), "--pid", "--net", "--uts", "--ipc", "--"]
    argv = [
        *enter,
        *spawning.command(what, load, cgroups=cgroups.procs_files(at.pid), path=path, size=size),
        *extra,
    ]
    run_id, _, entry = mark.partition("/")
    ctx = contract.RunContext(run_id=run_id, entry=entry)
    pid = spawning.start(argv, kind=what, mark=mark, ctx=ctx, what=f"{kind} in {at.what}")
    return f"{kind} in {at.what} (stressor pid {pid})"


def unstress(undo: dict[str, Any]) -> contract.RevertOutcome:
    pid, started = int(undo["pid"]), int(undo["starttime"])
    # The files are reached through the target's root while it lives; with it gone they went too.
    files = [_inside(pid, f) for f in undo.get("files", [])] if _alive(pid, started) else []
    return spawning.stop(str(undo["mark"]), files)


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _matching(args: ProcessArgs, at: locating.Located) -> list[processes.Info]:
    def chosen(seen: processes.Info) -> bool:
        if seen.pid == at.pid and not args.main:
            return False
        if args.process is not None and seen.name != args.process:
            return False
        return args.pattern is None or re.search(args.pattern, seen.cmdline) is not None

    space = _pid_namespace(at.pid)
    everything = [p for p in processes.all_live() if _pid_namespace(p.pid) == space]
    found = [s for s in everything if chosen(s) and s.pid != os.getpid()]
    if not found:
        names = ", ".join(sorted({s.name for s in everything}))
        raise TargetError(
            f"agent: no process in {at.what} matches "
            + (f"name {args.process!r}" if args.process else f"pattern {args.pattern!r}"),
            hint=f"its processes: {names or 'none'}",
        )
    return found


def _send(pids: Sequence[int], starttimes: Sequence[int], signum: int) -> list[int]:
    reached = []
    for pid, started in zip(pids, starttimes, strict=True):
        if _alive(pid, started):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue
            reached.append(pid)
    return reached


def signal_processes(kind: str, args: ProcessArgs, at: locating.Located, undo: dict[str, Any]) -> str:
    signum = int(signals.SIGSTOP) if kind == "stop_process" else args.signal
    reached = _send(undo["pids"], undo["starttimes"], signum)
    return f"{signals.Signals(signum).name} to {', '.join(map(str, reached)) or 'nothing'} in {at.what}"


def unsignal(kind: str, undo: dict[str, Any]) -> contract.RevertOutcome:
    if kind != "stop_process":
        return contract.RevertOutcome.ALREADY_CLEAN  # a kill is self-healing: nothing is held
    reached = _send(undo["pids"], undo["starttimes"], signals.SIGCONT)
    return contract.RevertOutcome.REVERTED if reached else contract.RevertOutcome.ALREADY_CLEAN


def _iptables(pid: int, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("iptables")
    if tool is None or shutil.which("nsenter") is None:
        raise ComponentMissing("agent: iptables or nsenter is not installed", hint="install them on the node")
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", tool, "-w", *argv],
        capture_output=True,
        text=True,
        timeout=IPTABLES_TIMEOUT,
        check=False,
    )


def rules(args: PartitionArgs, comment: str) -> list[list[str]]:
    """The rules a partition inserts (chain first), each marked with ``comment``."""
    tag = ["-m", "comment", "--comment", comment, "-j", "DROP"]
    if not args.cidrs:
        return [["INPUT", "!", "-i", "lo", *tag], ["OUTPUT", "!", "-o", "lo", *tag]]
    made = []
    for cidr in args.cidrs:
        made += [["INPUT", "-s", cidr, *tag], ["OUTPUT", "-d", cidr, *tag]]
    return made


def partition(args: PartitionArgs, at: locating.Located, undo: dict[str, Any]) -> str:
    made = undo["rules"]
    for i, rule in enumerate(made):
        done = _iptables(at.pid, ["-I", *rule])
        if done.returncode != 0:
            unpartition({**undo, "rules": made[:i]})
            raise DriverError(f"agent: iptables in {at.what} refused {' '.join(rule)}: {done.stderr.strip()}")
    return f"partition of {at.what} from {', '.join(args.cidrs) or 'every peer but loopback'}"


def unpartition(undo: dict[str, Any]) -> contract.RevertOutcome:
    if not _alive(int(undo["pid"]), int(undo["starttime"])):
        return contract.RevertOutcome.ALREADY_CLEAN  # its network namespace went with it
    removed = False
    for rule in undo["rules"]:
        while _iptables(int(undo["pid"]), ["-D", *rule]).returncode == 0:
            removed = True
    return contract.RevertOutcome.REVERTED if removed else contract.RevertOutcome.ALREADY_CLEAN


def plan(kind: str, args: BaseModel, at: locating.Located, mark: str) -> dict[str, Any]:
    """What the revert of ``kind`` on ``at`` will need, known before anything is done (write-ahead):
    ``mark`` is ``<run id>/<fault id>``."""
    base: dict[str, Any] = {"pid": at.pid, "starttime": at.starttime}
    if isinstance(args, loads.Load):
        return {**base, "mark": mark, "files": list(_stress_files(args, spawning.file_stem(mark)))}
    if isinstance(args, ProcessArgs):
        found = _matching(args, at)
        if kind == "stop_process":
            # Someone else's freeze is not ours to lift.
            found = [s for s in found if s.state != "T"]
            if not found:
                raise TargetError(f"agent: every matching process in {at.what} is stopped already")
        return {**base, "pids": [s.pid for s in found], "starttimes": [s.starttime for s in found]}
    if isinstance(args, resolving.DnsArgs):
        return resolving.plan(at, mark)
    assert isinstance(args, PartitionArgs)
    return {**base, "rules": rules(args, f"chaoskit:{mark}")}


def apply(kind: str, args: BaseModel, at: locating.Located, undo: dict[str, Any]) -> str:
    """Apply the fault planned in ``undo``; what was done, for the run's log."""
    if isinstance(args, loads.Load):
        return stress(kind, args, at, undo)
    if isinstance(args, ProcessArgs):
        return signal_processes(kind, args, at, undo)
    if isinstance(args, resolving.DnsArgs):
        return resolving.apply(args, at, undo)
    assert isinstance(args, PartitionArgs)
    return partition(args, at, undo)


def revert(kind: str, undo: dict[str, Any]) -> contract.RevertOutcome:
    if kind in STRESS:
        return unstress(undo)
    if kind in {"kill_process", "stop_process"}:
        return unsignal(kind, undo)
    if kind == "dns":
        return resolving.revert(undo)
    return unpartition(undo)
