"""Nodes: cordoning and uncordoning them, and the ``kubernetes.node.cordon``,
``kubernetes.node.drain`` and ``kubernetes.zone.outage`` faults, all reverted by uncordoning
(unless the node was cordoned before)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Self, TypeVar
from urllib.parse import quote

from pydantic import Field, StrictBool, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, draining
from chaoskit.durations import Duration
from chaoskit.errors import TargetError
from chaoskit.kube import apis, marks

JSON = apis.JSON
Target = contract.Target


ZONE_LABEL = "topology.kubernetes.io/zone"


def node_target(node: JSON) -> contract.Target:
    meta = node.get("metadata") or {}
    name = str(meta.get("name"))
    labels = meta.get("labels") or {}
    return contract.Target(
        kind="node",
        id=name,
        name=name,
        detail={
            "zone": str(labels.get(ZONE_LABEL, "-")),
            "unschedulable": str(bool((node.get("spec") or {}).get("unschedulable"))).lower(),
        },
    )


def list_nodes(api: apis.Api, *, label_selector: str | None = None) -> list[JSON]:
    return api.list("/api/v1/nodes", what="listing nodes", labelSelector=label_selector)


def node_path(name: str) -> str:
    return f"/api/v1/nodes/{quote(name)}"


def was_unschedulable(node: JSON) -> bool:
    """Whether the node was cordoned before chaoskit: a cordon left by an earlier run doesn't count."""
    meta = node.get("metadata") or {}
    if (meta.get("labels") or {}).get(marks.RUN_ID):
        return (meta.get("annotations") or {}).get(marks.WAS_UNSCHEDULABLE) == "true"
    return bool((node.get("spec") or {}).get("unschedulable"))


def cordon(
    api: apis.Api, node: str, previously: bool, *, ctx: contract.RunContext, fault: str, ttl: float
) -> None:
    meta = marks.metadata(ctx.run_id, fault, ttl, {marks.WAS_UNSCHEDULABLE: str(previously).lower()})
    api.patch(
        node_path(node), {"metadata": meta, "spec": {"unschedulable": True}}, what=f"cordoning node {node}"
    )


def uncordon(api: apis.Api, node: str, previously: bool) -> contract.RevertOutcome:
    """Undo ``cordon``: schedulable again unless it was cordoned before; marks removed."""
    try:
        current = api.get(node_path(node), what=f"reading node {node}")
    except apis.ApiError as e:
        if e.status == 404:
            return contract.RevertOutcome.ALREADY_CLEAN
        raise
    labelled = marks.RUN_ID in ((current.get("metadata") or {}).get("labels") or {})
    cordoned = bool((current.get("spec") or {}).get("unschedulable"))
    if not labelled and (previously or not cordoned):
        return contract.RevertOutcome.ALREADY_CLEAN
    patch: JSON = {"metadata": marks.removal()}
    if not previously:
        patch["spec"] = {"unschedulable": False}
    api.patch(node_path(node), patch, what=f"uncordoning node {node}")
    return contract.RevertOutcome.REVERTED


class NodeSelecting(clusters.ClusterArgs, targeting.Selection, clusters.Marked):
    """What every node fault's ``with:`` has: the cluster, how many of the nodes, the marks' expiry."""


class NodeArgs(NodeSelecting):
    names: list[str] | None = None
    label_selector: str | None = None

    @model_validator(mode="after")
    def _something_selects(self) -> Self:
        if not (self.names or self.label_selector):
            raise ValueError("give names or label_selector to say which nodes")
        return self


class DrainOptions(contract.Args):
    timeout: Duration = 120.0
    """How long to keep retrying evictions a PodDisruptionBudget refuses, and to wait for pods to go."""
    grace_period: int | None = Field(default=None, ge=0)
    allow_protected: bool = False
    """Also evict pods in protected namespaces (kube-system, ...)."""
    wait: bool = True
    """Wait until the evicted pods are gone."""


class DrainingArgs(NodeSelecting, DrainOptions):
    """Nodes, and how to drain them."""


class DrainArgs(NodeArgs, DrainingArgs):
    pass


class ZoneArgs(DrainingArgs):
    zone: str
    """The value of the nodes' ``topology.kubernetes.io/zone`` label."""


class NodeRevert(clusters.ClusterRevert):
    """A cordoned (and maybe drained) node, and whether it was cordoned before."""

    node: str
    """The node's name."""
    was_unschedulable: StrictBool
    """True when it was cordoned before chaoskit touched it: revert then leaves it cordoned and
    only takes chaoskit's marks off."""


NODE_LEASE = "kubernetes.node.unschedulable"
"""The lease every node fault holds: cordon, drain and zone outage all set the node's
``spec.unschedulable``. Sharing one key means a drain of a node a cordon already holds is refused
instead of stacked, unless a step allows the overlap; then the first one's ``was_unschedulable``
is the state that comes back, whichever ends last."""


N = TypeVar("N", bound=NodeSelecting)


class _NodeFault(contract.Fault[N, NodeRevert], revert=NodeRevert):
    # captures_state (the default): whether the node was schedulable before is what comes back.

    def lease(self, args: N, target: Target) -> str:
        return f"{NODE_LEASE}@{target.kind}:{target.id}"

    @abstractmethod
    def candidates(self, args: N, api: apis.Api) -> list[JSON]:
        """The nodes ``args`` select, before choosing how many."""

    def targets(self, args: N, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        chosen = targeting.choose(
            [self.node_target(n) for n in self.candidates(args, api)], args, ctx.rng, what="nodes"
        )
        return self.detailed(args, api, chosen)

    def detailed(self, args: N, api: apis.Api, chosen: Sequence[Target]) -> Sequence[Target]:
        """The chosen targets with what the dry run should show of them."""
        return chosen

    def node_target(self, node: JSON) -> Target:
        target = node_target(node)
        detail = {**target.detail, "was_unschedulable": str(was_unschedulable(node)).lower()}
        return Target(kind=target.kind, id=target.id, name=target.name, detail=detail)

    def prepare(self, args: N, target: Target, ctx: contract.RunContext) -> NodeRevert:
        return NodeRevert(
            connection=clusters.connection(args, ctx),
            node=target.name,
            was_unschedulable=target.detail.get("was_unschedulable") == "true",
        )

    def revert(self, revert: NodeRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = clusters.reconnect(revert, ctx)
        return uncordon(api, revert.node, revert.was_unschedulable)

    def cordon(self, args: N, revert: NodeRevert, ctx: contract.RunContext) -> apis.Api:
        api = clusters.connect(args, ctx)
        cordon(api, revert.node, revert.was_unschedulable, ctx=ctx, fault=self.name, ttl=args.expires_after)
        return api


def _named_nodes(args: NodeArgs, api: apis.Api) -> list[JSON]:
    nodes = list_nodes(api, label_selector=args.label_selector)
    if args.names:
        wanted = set(args.names)
        nodes = [n for n in nodes if n["metadata"]["name"] in wanted]
    return nodes


D = TypeVar("D", bound=DrainingArgs)


class _DrainFault(_NodeFault[D]):
    """Cordon, then evict the node's pods; reverted by uncordoning."""

    def detailed(self, args: D, api: apis.Api, chosen: Sequence[Target]) -> Sequence[Target]:
        # Each target lists the pods that would be evicted, for the dry run.
        drained = []
        for target in chosen:
            plan = draining.plan_drain(draining.pods_on(api, target.name), args.allow_protected)
            refs = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in plan.evict]
            detail = {**target.detail, "evicts": ",".join(sorted(refs)) or "-"}
            drained.append(Target(kind=target.kind, id=target.id, name=target.name, detail=detail))
        return drained

    def inject(self, args: D, target: Target, revert: NodeRevert, ctx: contract.RunContext) -> NodeRevert:
        api = self.cordon(args, revert, ctx)
        for line in draining.drain(
            api,
            revert.node,
            ctx,
            timeout=args.timeout,
            grace_period=args.grace_period,
            allow_protected=args.allow_protected,
            wait=args.wait,
        ):
            ctx.log(line)
        return revert


class NodeCordon(_NodeFault[NodeArgs], args=NodeArgs):
    name = "kubernetes.node.cordon"
    summary = "Mark nodes unschedulable; reverted by uncordoning them."

    def candidates(self, args: NodeArgs, api: apis.Api) -> list[JSON]:
        return _named_nodes(args, api)

    def inject(
        self, args: NodeArgs, target: Target, revert: NodeRevert, ctx: contract.RunContext
    ) -> NodeRevert:
        self.cordon(args, revert, ctx)
        return revert


class NodeDrain(_DrainFault[DrainArgs], args=DrainArgs):
    name = "kubernetes.node.drain"
    summary = "Cordon nodes and evict their pods (PDBs honoured, DaemonSet pods stay); reverted by uncordon."

    def candidates(self, args: DrainArgs, api: apis.Api) -> list[JSON]:
        return _named_nodes(args, api)


class ZoneOutage(_DrainFault[ZoneArgs], args=ZoneArgs):
    name = "kubernetes.zone.outage"
    summary = "Cordon and drain every node of a topology.kubernetes.io/zone; reverted by uncordon."

    def candidates(self, args: ZoneArgs, api: apis.Api) -> list[JSON]:
        nodes = list_nodes(api, label_selector=f"{ZONE_LABEL}={args.zone}")
        if not nodes:
            raise TargetError(
                f"no node has {ZONE_LABEL}={args.zone}",
                hint="check the zone name: kubectl get nodes -L topology.kubernetes.io/zone",
            )
        return nodes
