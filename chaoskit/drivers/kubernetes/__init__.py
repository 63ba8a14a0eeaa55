"""The kubernetes driver: pod, workload, node, network and zone faults, probes and an exec action,
through the official ``kubernetes`` client (imported only when an activity runs)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import executing, faults, probes, sweeping
from chaoskit.kube import levers


def _missing() -> str | None:
    if importlib.util.find_spec("kubernetes") is None:
        return "the kubernetes client is not installed: pip install 'chaoskit[kubernetes]'"
    return None


def _sweep(run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
    return sweeping.sweep(run_id, ctx)


def driver() -> contract.Driver:
    return contract.Driver(
        name="kubernetes",
        summary="Kubernetes: pods, workloads, nodes, network partitions, zone outages",
        faults=faults.all_faults(),
        probes=probes.all_probes(),
        actions=[executing.Exec()],
        sweep=_sweep,
        missing=_missing,
        levers={levers.SCHEME: levers.lever},
    )
