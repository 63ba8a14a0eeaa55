"""Resource faults on this host: ``process.stress_cpu``, ``process.stress_memory``,
``process.fill_disk`` and ``process.stress_io`` run chaoskit's stressor (``chaoskit.stressors``)
until the revert stops it, by the mark in its environment.

The stressor starts in its own session, carries the run id and its ledger entry like the processes
``process.start`` starts (so this driver's sweep stops it after a crash too), and stops by itself
at ``max_duration`` whatever happens to chaoskit.
"""

from __future__ import annotations

import socket
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.stressors import loads, spawning

L = TypeVar("L", bound=loads.Load)


def host() -> contract.Target:
    name = socket.gethostname()
    return contract.Target(kind="host", id=name, name="this host")


class _Stress(contract.Fault[L, loads.StressRevert], revert=loads.StressRevert):
    kind: ClassVar[loads.Kind]
    # Its own stressor, stopped by its own revert: there is no earlier state to hand on.
    captures_state = False

    def targets(self, args: L, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return [host()]

    def files(self, args: L, mark: str) -> tuple[str, ...]:
        """The files the stressor writes, named after its mark."""
        return ()

    def command(self, args: L, revert: loads.StressRevert) -> list[str]:
        return spawning.command(self.kind, args)

    @abstractmethod
    def describe(self, args: L) -> str:
        """What the load is, for the run's log."""

    def prepare(self, args: L, target: contract.Target, ctx: contract.RunContext) -> loads.StressRevert:
        mark = spawning.mark(ctx)
        return loads.StressRevert(kind=self.kind, mark=mark, files=self.files(args, mark))

    def inject(
        self, args: L, target: contract.Target, revert: loads.StressRevert, ctx: contract.RunContext
    ) -> loads.StressRevert:
        pid = spawning.start(
            self.command(args, revert), kind=self.kind, mark=revert.mark, ctx=ctx, what=self.name
        )
        ctx.log(f"{self.name}: {self.describe(args)} (stressor pid {pid})")
        return revert.model_copy(update={"pid": pid})

    def revert(self, revert: loads.StressRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        return spawning.stop(revert.mark, revert.files)


class StressCpu(_Stress[loads.CpuLoad], args=loads.CpuLoad):
    name = "process.stress_cpu"
    summary = "Keep CPUs of this host busy (workers, percent load each) until reverted."
    kind = "cpu"

    def describe(self, args: loads.CpuLoad) -> str:
        return f"{wording.counted(args.workers, 'worker')} at {args.load:g}% of a CPU"


class StressMemory(_Stress[loads.MemoryLoad], args=loads.MemoryLoad):
    name = "process.stress_memory"
    summary = "Allocate memory on this host and hold it resident until reverted."
    kind = "memory"

    def describe(self, args: loads.MemoryLoad) -> str:
        return f"{loads.human(args.size)} held resident"


class FillDisk(_Stress[loads.FillLoad], args=loads.FillLoad):
    name = "process.fill_disk"
    summary = "Fill a filesystem with a file (size, or until percent_full); the revert removes the file."
    kind = "fill"

    def lease(self, args: loads.FillLoad, target: contract.Target) -> str:
        return f"{self.name}@{target.kind}:{target.id}{Path(args.path).resolve()}"

    def files(self, args: loads.FillLoad, mark: str) -> tuple[str, ...]:
        return (str(Path(args.path).resolve() / spawning.file_stem(mark)),)

    def command(self, args: loads.FillLoad, revert: loads.StressRevert) -> list[str]:
        size = spawning.fill_size(args, args.path)
        return spawning.command(self.kind, args, path=revert.files[0], size=size)

    def describe(self, args: loads.FillLoad) -> str:
        how = (
            loads.human(args.size)
            if args.size is not None
            else f"until its filesystem is {args.percent_full:g}% full"
        )
        return f"{how} written in {args.path}"


class StressIo(_Stress[loads.IoLoad], args=loads.IoLoad):
    name = "process.stress_io"
    summary = "Read and write files in a directory without pause (workers, mode) until reverted."
    kind = "io"

    def files(self, args: loads.IoLoad, mark: str) -> tuple[str, ...]:
        return spawning.io_files(str(Path(args.path).resolve()), spawning.file_stem(mark), args.workers)

    def command(self, args: loads.IoLoad, revert: loads.StressRevert) -> list[str]:
        directory = str(Path(revert.files[0]).parent)
        argv = spawning.command(self.kind, args, path=directory)
        return [*argv, "--prefix", spawning.file_stem(revert.mark)]

    def describe(self, args: loads.IoLoad) -> str:
        return f"{wording.counted(args.workers, 'worker')} ({args.mode}) in {args.path}"
