"""Faults inside pods, applied by the node agent on each pod's node (``chaoskit agent``,
docs/agent.md): ``kubernetes.pods.stress_cpu``, ``stress_memory``, ``fill_disk``, ``stress_io``
(chaoskit's stressor in the pod container's cgroups and namespaces), ``kill_process`` and
``stop_process`` (processes inside the container by name or pattern) and ``partition`` (iptables
rules in the pod's network namespace), ``dns`` (chosen names fail or resolve to a chosen address
inside the pod).

The fault's id at the agent is chosen here and written ahead with the revert data, so the revert
names it even after a crash; while the run lives it renews its lease at each agent, and when it
dies the agent reverts what the run left once the lease runs out.
"""

from __future__ import annotations

import ipaddress
import secrets
import signal as signals
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import Field, field_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, nodeagents, pods
from chaoskit.errors import TargetError
from chaoskit.stressors import inside, loads


class InPodArgs(pods.SelectedPodArgs, nodeagents.AgentArgs):
    """Which pods (then how many of them), which container, and how to reach the agents."""

    container: str | None = None
    """The container of each pod; default its first."""


class AgentRevert(clusters.ClusterRevert):
    """A fault held by the agent on a node: found again by its id there."""

    endpoint: nodeagents.Endpoint
    pod: str
    """``namespace/name``, for the messages."""
    kind: str
    fault_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    """The fault's id at the agent, chosen before it is asked for."""


A = TypeVar("A", bound=InPodArgs)


class _InPod(contract.Fault[A, AgentRevert], revert=AgentRevert):
    kind: ClassVar[str]
    load: ClassVar[type[contract.Args] | None] = None
    """The part of the arguments the agent receives (its fields only)."""
    # The agent holds its own fault; there is no earlier state to hand on.
    captures_state = False

    def targets(self, args: A, ctx: contract.RunContext) -> Sequence[contract.Target]:
        api = clusters.connect(args, ctx)
        candidates = [pods.pod_target(p) for p in pods.candidate_pods(args, api)]
        return targeting.choose(candidates, args, ctx.rng, what="pods")

    def agent_args(self, args: A) -> dict[str, Any]:
        fields = set((self.load or type(args)).model_fields)
        return args.model_dump(mode="json", include=fields)

    def prepare(self, args: A, target: contract.Target, ctx: contract.RunContext) -> AgentRevert:
        node = target.detail.get("node", "-")
        if node == "-":
            raise TargetError(f"{self.name}: pod {target.id} is not scheduled on a node yet")
        return AgentRevert(
            connection=clusters.connection(args, ctx),
            endpoint=nodeagents.Endpoint.of(args, node),
            pod=target.id,
            kind=self.kind,
            fault_id=secrets.token_hex(8),
        )

    def inject(
        self, args: A, target: contract.Target, revert: AgentRevert, ctx: contract.RunContext
    ) -> AgentRevert:
        api = clusters.reconnect(revert, ctx)
        namespace, _, name = revert.pod.partition("/")
        body = {
            "id": revert.fault_id,
            "run_id": ctx.run_id,
            "kind": self.kind,
            "target": {"pod": {"namespace": namespace, "name": name, "container": args.container}},
            "args": self.agent_args(args),
            "lease_seconds": args.lease,
        }
        # Beating before the request: a slow apply must not outlast the lease it starts.
        beat = nodeagents.heartbeat(ctx, api, revert.endpoint, args.lease)
        beat.held.add(revert.fault_id)
        answer = nodeagents.call(api, revert.endpoint, "POST", "/v1/faults", body)
        ctx.log(f"{self.name}: {answer.get('said', self.kind)} (agent on node {revert.endpoint.node})")
        return revert

    def revert(self, revert: AgentRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = clusters.reconnect(revert, ctx)
        answer = nodeagents.call(api, revert.endpoint, "DELETE", f"/v1/faults/{quote(revert.fault_id)}")
        nodeagents.heartbeat(ctx, api, revert.endpoint, 30.0).held.discard(revert.fault_id)
        return contract.RevertOutcome(answer.get("outcome", "already-clean"))


class CpuArgs(InPodArgs, loads.CpuLoad):
    """Pods, and how busy to keep their container."""


class MemoryArgs(InPodArgs, loads.MemoryLoad):
    """Pods, and how much memory to hold in their container."""


class FillArgs(InPodArgs, loads.FillLoad):
    """Pods, and which directory of their container to fill."""


class IoArgs(InPodArgs, loads.IoLoad):
    """Pods, and where in their container to read and write."""


class StressCpu(_InPod[CpuArgs], args=CpuArgs):
    name = "kubernetes.pods.stress_cpu"
    summary = "Keep CPUs busy inside pods' containers (their cgroup), through the node agent, until reverted."
    kind = "stress_cpu"
    load = loads.CpuLoad


class StressMemory(_InPod[MemoryArgs], args=MemoryArgs):
    name = "kubernetes.pods.stress_memory"
    summary = "Hold memory resident inside pods' containers (counted against them), through the node agent."
    kind = "stress_memory"
    load = loads.MemoryLoad


class FillDisk(_InPod[FillArgs], args=FillArgs):
    name = "kubernetes.pods.fill_disk"
    summary = "Fill a directory of pods' containers with a file, through the node agent; removed on revert."
    kind = "fill_disk"
    load = loads.FillLoad


class StressIo(_InPod[IoArgs], args=IoArgs):
    name = "kubernetes.pods.stress_io"
    summary = "Read and write files in a directory of pods' containers, through the node agent."
    kind = "stress_io"
    load = loads.IoLoad


ProcessMatch = inside.ProcessMatch


class StopProcessArgs(InPodArgs, ProcessMatch):
    """Pods, and which of their container's processes to freeze."""


class KillProcessArgs(InPodArgs, ProcessMatch):
    """Pods, and which of their container's processes to signal."""

    signal: int = int(signals.SIGKILL)
    """The signal, by name (``SIGTERM``, ``TERM``) or number; default SIGKILL."""

    @field_validator("signal", mode="before")
    @classmethod
    def _signal(cls, value: Any) -> int:
        return inside.kill_signal(value, "kubernetes.pods.stop_process")


class StopProcess(_InPod[StopProcessArgs], args=StopProcessArgs):
    name = "kubernetes.pods.stop_process"
    summary = (
        "Freeze processes inside pods' containers with SIGSTOP, through the node agent; SIGCONT on revert."
    )
    kind = "stop_process"
    load = ProcessMatch


class KillProcess(_InPod[KillProcessArgs], args=KillProcessArgs):
    name = "kubernetes.pods.kill_process"
    summary = (
        "Signal (default SIGKILL) processes inside pods' containers by name or pattern, through the agent."
    )
    kind = "kill_process"
    reversibility = contract.Reversibility.SELF_HEALING

    def agent_args(self, args: KillProcessArgs) -> dict[str, Any]:
        fields = {*ProcessMatch.model_fields, "signal"}
        return args.model_dump(mode="json", include=fields)

    def lease(self, args: KillProcessArgs, target: contract.Target) -> None:
        return None  # a signal is sent and done: nothing is held


class PartitionArgs(InPodArgs):
    """Pods, and the peers they are cut off from (by iptables in their network namespace)."""

    cidrs: list[str] = Field(default_factory=list)
    """Peers cut off both ways (``10.244.1.7``, ``10.96.0.0/12``); empty: every peer but loopback."""

    @field_validator("cidrs")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v, strict=False)) for v in value]


class Partition(_InPod[PartitionArgs], args=PartitionArgs):
    name = "kubernetes.pods.partition"
    summary = "Drop pods' traffic to and from peers with iptables in their network namespace (node agent)."
    kind = "partition"

    def agent_args(self, args: PartitionArgs) -> dict[str, Any]:
        return {"cidrs": list(args.cidrs)}


class DnsArgs(InPodArgs, inside.DnsAnswer):
    """Pods, and the names that fail (or resolve to a chosen address) inside them."""


class Dns(_InPod[DnsArgs], args=DnsArgs):
    name = "kubernetes.pods.dns"
    summary = (
        "Make chosen names fail to resolve (NXDOMAIN/SERVFAIL) or resolve to an address inside pods "
        "(node agent)."
    )
    kind = "dns"
    load = inside.DnsAnswer
