"""The kubernetes driver: pod, workload, node, network and zone faults, probes and an exec action,
through the official ``kubernetes`` client (imported only when an activity runs).

One module per resource: ``pods``, ``workloads`` (Deployments, StatefulSets), ``nodes``,
``networkpolicies``, ``resources`` (any kind), ``events``; ``podfaults`` (inside pods, through the
node agent that ``nodeagents`` reaches); the cluster connection is the shared
``chaoskit.kube`` client, reached through ``clusters``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import (
    apiresources,
    clusterevents,
    executing,
    networkpolicies,
    nodes,
    podfaults,
    pods,
    sweeps,
    workloads,
)
from chaoskit.kube import haltlevers


def _missing() -> str | None:
    if importlib.util.find_spec("kubernetes") is None:
        return "the kubernetes client is not installed: pip install 'chaoskit[kubernetes]'"
    return None


def _sweep(run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
    return sweeps.sweep(run_id, ctx)


def driver() -> contract.Driver:
    return contract.Driver(
        name="kubernetes",
        summary="Kubernetes: pods, workloads, nodes, network partitions, zone outages",
        faults=[
            pods.PodsDelete(),
            pods.PodsEvict(),
            workloads.DeploymentScale(),
            workloads.DeploymentRestart(),
            workloads.StatefulSetScale(),
            workloads.StatefulSetRestart(),
            nodes.NodeCordon(),
            nodes.NodeDrain(),
            nodes.ZoneOutage(),
            networkpolicies.NetworkPartition(),
            podfaults.StressCpu(),
            podfaults.StressMemory(),
            podfaults.FillDisk(),
            podfaults.StressIo(),
            podfaults.KillProcess(),
            podfaults.StopProcess(),
            podfaults.Partition(),
            podfaults.Dns(),
        ],
        probes=[
            pods.PodsReady(),
            workloads.DeploymentAvailable(),
            workloads.RolloutComplete(),
            apiresources.Resource(),
            clusterevents.Events(),
        ],
        actions=[executing.Exec()],
        sweep=_sweep,
        missing=_missing,
        levers={haltlevers.SCHEME: haltlevers.lever},
    )
