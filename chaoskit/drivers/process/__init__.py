"""The process driver: signal, freeze, start and probe local processes, and run commands."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.process import commanding, selecting, signalling, starting, sweeping


class Running(contract.Probe[selecting.Selector]):
    name = "process.running"
    summary = "Whether matching processes run: {running, count, pids}."
    args = selecting.Selector

    def run(self, args: selecting.Selector, ctx: contract.RunContext) -> contract.JSONValue:
        pids: list[contract.JSONValue] = [p.pid for p in selecting.matching(args, strict=False)]
        return {"running": bool(pids), "count": len(pids), "pids": pids}


def driver() -> contract.Driver:
    return contract.Driver(
        name="process",
        summary="Local processes: kill or stop them, start background processes, run commands.",
        faults=[signalling.Kill(), signalling.Stop()],
        probes=[Running(), commanding.CommandProbe()],
        actions=[starting.Start(), commanding.CommandAction()],
        sweep=sweeping.sweep,
    )
