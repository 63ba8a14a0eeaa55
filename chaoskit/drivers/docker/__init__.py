"""The docker driver: container and network faults and container probes on a Docker engine, through
the ``docker`` SDK (imported only when an activity runs)."""

from __future__ import annotations

import importlib.util

from chaoskit.drivers import contract
from chaoskit.drivers.docker import containers, dns, leftovers, networks, processes, stressing


def _missing() -> str | None:
    if importlib.util.find_spec("docker") is None:
        return "the docker SDK is not installed: pip install 'chaoskit[docker]'"
    return None


def driver() -> contract.Driver:
    return contract.Driver(
        name="docker",
        summary="Docker containers and networks: kill, stop, pause, restart, remove, disconnect, "
        "partition, delay, loss, DNS failures; kill or stop processes inside them; CPU, memory, disk "
        "and IO stress inside them; probes on state, health, restarts and exec",
        faults=(
            containers.Kill(),
            containers.Stop(),
            containers.Pause(),
            containers.Restart(),
            containers.Remove(),
            networks.Disconnect(),
            networks.Partition(),
            networks.Delay(),
            networks.Loss(),
            dns.Dns(),
            processes.KillProcess(),
            processes.StopProcess(),
            stressing.StressCpu(),
            stressing.StressMemory(),
            stressing.FillDisk(),
            stressing.StressIo(),
        ),
        probes=(containers.Running(), containers.Healthy(), containers.Restarts(), containers.Exec()),
        actions=(containers.Run(),),
        sweep=leftovers.sweep,
        missing=_missing,
    )
