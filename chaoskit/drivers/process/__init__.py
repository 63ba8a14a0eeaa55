"""The process driver: signal, freeze, start and probe local processes, and run commands."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.process import commanding, selecting, signalling, starting, stressing


def driver() -> contract.Driver:
    return contract.Driver(
        name="process",
        summary="Local processes: kill or stop them, start background processes, run commands; "
        "stress this host's CPU, memory, disk and IO.",
        faults=[
            signalling.Kill(),
            signalling.Stop(),
            stressing.StressCpu(),
            stressing.StressMemory(),
            stressing.FillDisk(),
            stressing.StressIo(),
        ],
        probes=[selecting.Running(), commanding.CommandProbe()],
        actions=[starting.Start(), commanding.CommandAction()],
        sweep=starting.sweep,
    )
