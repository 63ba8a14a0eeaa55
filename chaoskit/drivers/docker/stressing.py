"""Resource faults inside containers: ``docker.container.stress_cpu``, ``stress_memory``,
``fill_disk`` and ``stress_io`` run chaoskit's stressor (``chaoskit.stressors``) in the target's
cgroups and pid, network, UTS and IPC namespaces, entered from the host with ``nsenter``: nothing
needs to be in the image. Its CPU time and memory are the container's; it dies with the container.

It is the host's interpreter that runs, in the host's mount namespace: the files it writes are
reached through ``/proc/<container pid>/root``, and recorded as the container sees them. The revert
stops what carries the fault's mark (as ``chaoskit recover`` does after a crash) and removes the
files, through the container's root while it runs, or its writable layer when it is stopped.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.drivers.docker import matching, namespacing
from chaoskit.errors import ComponentMissing, DriverError
from chaoskit.stressors import cgroups, loads, spawning


class CpuArgs(matching.Selector, loads.CpuLoad):
    """Which containers, and how busy to keep them."""


class MemoryArgs(matching.Selector, loads.MemoryLoad):
    """Which containers, and how much memory to hold in them."""


class FillArgs(matching.Selector, loads.FillLoad):
    """Which containers, and which of their directories to fill (a path inside the container)."""


class IoArgs(matching.Selector, loads.IoLoad):
    """Which containers, and where in them to read and write (a path inside the container)."""


class StressRevert(matching.ContainerRevert, loads.StressRevert):
    """A stressor in a container; ``files`` are paths as the container sees them."""


A = TypeVar("A", bound=loads.Load)


def _pid(container: Any, what: str) -> int:
    pid = namespacing.local_pid(container)
    if pid is None:
        missing = "nsenter" if shutil.which("nsenter") is None else None
        raise ComponentMissing(
            f"{what}: can't enter container {container.name} from here"
            + (f" ({missing} is not installed)" if missing else ""),
            hint="run chaoskit as root on the Docker host (the engine must be local), with util-linux's "
            "nsenter installed",
        )
    return pid


def _inside(root: str, path: str) -> str:
    """``path`` of the container, as reached from the host through ``root``."""
    return str(Path(root) / path.lstrip("/"))


def _roots(container: Any | None) -> list[str]:
    """Where the container's files are reachable from here: its root while it runs, its writable
    layer (overlay's upper directory) while it is stopped."""
    if container is None:
        return []
    roots = []
    pid = namespacing.local_pid(container) if container.status in {"running", "paused"} else None
    if pid is not None:
        roots.append(f"/proc/{pid}/root")
    upper = (container.attrs.get("GraphDriver", {}).get("Data") or {}).get("UpperDir")
    if upper and Path(upper).is_dir():
        roots.append(str(upper))
    return roots


class _Stress(contract.Fault[A, StressRevert], revert=StressRevert):
    kind: ClassVar[loads.Kind]
    # Its own stressor, stopped by its own revert: there is no earlier state to hand on.
    captures_state = False

    def targets(self, args: A, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)  # type: ignore[arg-type]

    def files(self, args: A, mark: str) -> tuple[str, ...]:
        """The files the stressor writes (paths in the container), named after its mark."""
        return ()

    def command(self, args: A, revert: StressRevert, root: str, procs: list[str]) -> list[str]:
        return spawning.command(self.kind, args, cgroups=procs)

    @abstractmethod
    def describe(self, args: A) -> str:
        """What the load is, for the run's log."""

    def prepare(self, args: A, target: contract.Target, ctx: contract.RunContext) -> StressRevert:
        mark = spawning.mark(ctx)
        return StressRevert(
            container_id=target.id,
            name=target.name,
            kind=self.kind,
            mark=mark,
            files=self.files(args, mark),
        )

    def inject(
        self, args: A, target: contract.Target, revert: StressRevert, ctx: contract.RunContext
    ) -> StressRevert:
        container = matching.get(target.id, ctx)
        if container is None or container.status != "running":
            raise DriverError(f"{self.name}: container {target.name} is not running")
        pid = _pid(container, self.name)
        procs = cgroups.procs_files(pid)
        enter = ["nsenter", "--target", str(pid), "--pid", "--net", "--uts", "--ipc", "--"]
        argv = [*enter, *self.command(args, revert, f"/proc/{pid}/root", procs)]
        started = spawning.start(
            argv, kind=self.kind, mark=revert.mark, ctx=ctx, what=f"{self.name} in {target.name}"
        )
        ctx.log(f"{self.name}: {self.describe(args)} in container {target.name} (stressor pid {started})")
        return revert.model_copy(update={"pid": started})

    def revert(self, revert: StressRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        roots = _roots(matching.get(revert.container_id, ctx)) if revert.files else []
        files = [_inside(root, path) for root in roots for path in revert.files]
        return spawning.stop(revert.mark, files)


class StressCpu(_Stress[CpuArgs], args=CpuArgs):
    name = "docker.container.stress_cpu"
    summary = "Keep CPUs busy inside containers (their cgroup: workers, percent load each) until reverted."
    kind = "cpu"

    def describe(self, args: CpuArgs) -> str:
        return f"{wording.counted(args.workers, 'worker')} at {args.load:g}% of a CPU"


class StressMemory(_Stress[MemoryArgs], args=MemoryArgs):
    name = "docker.container.stress_memory"
    summary = "Hold memory resident inside containers (counted against their cgroup) until reverted."
    kind = "memory"

    def describe(self, args: MemoryArgs) -> str:
        return f"{loads.human(args.size)} held resident"


class FillDisk(_Stress[FillArgs], args=FillArgs):
    name = "docker.container.fill_disk"
    summary = (
        "Fill a container's filesystem with a file (size, or until percent_full); the revert removes it."
    )
    kind = "fill"

    def lease(self, args: FillArgs, target: contract.Target) -> str:
        return f"{self.name}@{target.kind}:{target.id}{Path('/', args.path)}"

    def files(self, args: FillArgs, mark: str) -> tuple[str, ...]:
        return (str(Path("/", args.path) / spawning.file_stem(mark)),)

    def command(self, args: FillArgs, revert: StressRevert, root: str, procs: list[str]) -> list[str]:
        size = spawning.fill_size(args, _inside(root, args.path))
        return spawning.command(
            self.kind, args, cgroups=procs, path=_inside(root, revert.files[0]), size=size
        )

    def describe(self, args: FillArgs) -> str:
        how = (
            loads.human(args.size)
            if args.size is not None
            else f"until its filesystem is {args.percent_full:g}% full"
        )
        return f"{how} written in {args.path}"


class StressIo(_Stress[IoArgs], args=IoArgs):
    name = "docker.container.stress_io"
    summary = "Read and write files in a container's directory without pause until reverted."
    kind = "io"

    def files(self, args: IoArgs, mark: str) -> tuple[str, ...]:
        return spawning.io_files(str(Path("/", args.path)), spawning.file_stem(mark), args.workers)

    def command(self, args: IoArgs, revert: StressRevert, root: str, procs: list[str]) -> list[str]:
        directory = _inside(root, str(Path(revert.files[0]).parent))
        argv = spawning.command(self.kind, args, cgroups=procs, path=directory)
        return [*argv, "--prefix", spawning.file_stem(revert.mark)]

    def describe(self, args: IoArgs) -> str:
        return f"{wording.counted(args.workers, 'worker')} ({args.mode}) in {args.path}"
