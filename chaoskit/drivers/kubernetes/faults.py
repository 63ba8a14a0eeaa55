"""The kubernetes faults: delete or evict pods, scale or restart Deployments and StatefulSets,
cordon or drain nodes, partition pods with a NetworkPolicy, take a whole zone out.

Every revert works from its recorded data alone (the connection is recorded as a kubeconfig
path and context, never a token), and everything changed carries the marks of ``marks``.
"""

from __future__ import annotations

import hashlib
import time
from abc import abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import quote

from pydantic import Field, StrictBool, StrictInt, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, evicting, selecting
from chaoskit.durations import Duration
from chaoskit.errors import TargetError
from chaoskit.kube import apis, marks

JSON = apis.JSON
Target = contract.Target


# --- pods -------------------------------------------------------------------------------------


class PodsArgs(selecting.SelectedPodArgs):
    grace_period: int | None = Field(default=None, ge=0)
    """Seconds the pod gets to stop; default the pod's own terminationGracePeriodSeconds."""


class PodRevert(clusters.ClusterRevert):
    """Which pod was deleted or evicted. Nothing is undone (its controller replaces it); kept so the
    journal and ``recover`` say exactly which pod it was."""

    namespace: str
    """The pod's namespace."""
    name: str
    """The pod's name."""
    uid: str | None
    """The pod's uid (None when the API server did not give one): a newer pod that took the name
    (StatefulSets reuse names) is another pod."""


P = TypeVar("P", bound=PodsArgs)


class _PodFault(contract.Fault[P, PodRevert]):
    revert_type = PodRevert
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False  # nothing is restored: the pod's controller replaces it

    def lease(self, args: P, target: Target) -> None:
        # A deleted pod holds nothing that another fault could undo or stack on: it is gone, and
        # its replacement is a new pod with a new uid. Refusing a second delete of "the same" pod
        # would only get in the way of steps that delete pods again and again.
        return None

    def targets(self, args: P, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        candidates = [selecting.pod_target(p) for p in selecting.candidate_pods(args, api)]
        return targeting.choose(candidates, args, ctx.rng, what="pods")

    def prepare(self, args: P, target: Target, ctx: contract.RunContext) -> PodRevert:
        return PodRevert(
            connection=clusters.connection(args, ctx),
            namespace=target.detail["namespace"],
            name=target.name,
            uid=target.detail.get("uid") or None,
        )


class PodsDelete(_PodFault[PodsArgs]):
    name = "kubernetes.pods.delete"
    summary = "Delete pods chosen by label/field selector or name; their controllers replace them."
    args = PodsArgs

    def inject(
        self, args: PodsArgs, target: Target, revert: PodRevert, ctx: contract.RunContext
    ) -> PodRevert:
        api = clusters.connect(args, ctx)
        namespace, name = revert.namespace, revert.name
        body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if args.grace_period is not None:
            body["gracePeriodSeconds"] = args.grace_period
        if revert.uid is not None:
            # Never delete a newer pod that took the chosen one's name (StatefulSets reuse names).
            body["preconditions"] = {"uid": revert.uid}
        try:
            api.delete(evicting.pod_path(namespace, name), what=f"deleting pod {namespace}/{name}", body=body)
        except apis.ApiError as e:
            if e.status not in (404, 409):
                raise
            ctx.log(f"pod {namespace}/{name} was already gone")
        return revert


class EvictArgs(PodsArgs):
    timeout: Duration = 60.0
    """How long to keep retrying an eviction that a PodDisruptionBudget refuses because an earlier
    eviction of the step used up its budget (it allows more once the replacement is ready), as
    ``kubectl drain`` does; ``0s``: refuse at once."""


class PodsEvict(_PodFault[EvictArgs]):
    name = "kubernetes.pods.evict"
    summary = "Evict pods through the eviction API, so PodDisruptionBudgets are respected (429: refused)."
    args = EvictArgs

    def targets(self, args: EvictArgs, ctx: contract.RunContext) -> Sequence[Target]:
        chosen = super().targets(args, ctx)
        # Ask the API server to judge every chosen eviction first (dryRun=All evicts nothing), so
        # that each pod a PodDisruptionBudget protects is named - in the dry run too - before any
        # pod is evicted, instead of the run stopping at the first refusal with the rest unknown.
        api = clusters.connect(args, ctx)
        refused = []
        for target in chosen:
            try:
                evicting.evict(api, target.detail["namespace"], target.name, args.grace_period, dry_run=True)
            except evicting.EvictionRefused as e:
                refused.append(e.message)
        if refused:
            raise evicting.EvictionRefused(
                f"{len(refused)} of {len(chosen)} chosen pods can't be evicted now; nothing was evicted:\n  "
                + "\n  ".join(refused),
                hint=evicting.PDB_HINT,
            )
        return chosen

    def inject(
        self, args: EvictArgs, target: Target, revert: PodRevert, ctx: contract.RunContext
    ) -> PodRevert:
        api = clusters.connect(args, ctx)
        namespace = revert.namespace
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                if not evicting.evict(api, namespace, target.name, args.grace_period):
                    ctx.log(f"pod {target.id} was already gone")
                return revert
            except evicting.EvictionRefused as e:
                # Every eviction was judged allowed before the first; a refusal now means this
                # step's own evictions used up the budget until their replacements are ready.
                if time.monotonic() >= deadline or ctx.cancel.is_set():
                    raise evicting.EvictionRefused(
                        f"{e.message} (still refused after {args.timeout:g}s)", hint=evicting.PDB_HINT
                    ) from e
            ctx.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


# --- workloads ----------------------------------------------------------------------------------


class WorkloadArgs(selecting.NamespacedArgs, targeting.Selection):
    name: str | None = None
    """The workload's name; or select by label_selector."""
    label_selector: str | None = None

    @model_validator(mode="after")
    def _named_or_selected(self) -> Self:
        if (self.name is None) == (self.label_selector is None):
            raise ValueError("give exactly one of name or label_selector")
        return self


class ScaleArgs(WorkloadArgs, clusters.Marked):
    replicas: int = Field(ge=0)
    """The replica count during the fault; the previous one is restored on revert."""


WorkloadKind = Literal["Deployment", "StatefulSet"]


class WorkloadRevert(clusters.ClusterRevert):
    """Which workload a fault changed."""

    kind: WorkloadKind
    """The workload's kind."""
    namespace: str
    """Its namespace."""
    name: str
    """Its name."""


class ScaleRevert(WorkloadRevert):
    """A scaled workload, and the replica count to scale it back to."""

    replicas: StrictInt = Field(ge=0)
    """The replica count before the fault (or, for a leftover of a vanished run, the one that run
    recorded in the workload's annotation); revert restores it."""


W = TypeVar("W", bound=WorkloadArgs)
R = TypeVar("R", bound=WorkloadRevert)


class _WorkloadFault(contract.Fault[W, R]):
    kind: ClassVar[WorkloadKind]
    plural: ClassVar[str]

    def path(self, namespace: str, name: str | None = None) -> str:
        base = f"/apis/apps/v1/namespaces/{quote(namespace)}/{self.plural}"
        return f"{base}/{quote(name)}" if name else base

    def targets(self, args: W, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        found: list[JSON] = []
        for namespace in args.resolved_namespaces(api):
            if args.name:
                try:
                    found.append(
                        api.get(self.path(namespace, args.name), what=f"reading {self.kind} {args.name}")
                    )
                except apis.ApiError as e:
                    if e.status != 404:
                        raise
            else:
                found.extend(
                    api.list(
                        self.path(namespace),
                        what=f"listing {self.plural} in {namespace}",
                        labelSelector=args.label_selector,
                    )
                )
        return targeting.choose([self.target(w) for w in found], args, ctx.rng, what=self.plural)

    def target(self, workload: JSON) -> Target:
        meta = workload.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        replicas = (workload.get("spec") or {}).get("replicas")
        # A leftover scale of an earlier, vanished run: the count to go back to is the recorded one.
        previous = annotations.get(marks.PREVIOUS_REPLICAS) or str(1 if replicas is None else replicas)
        return Target(
            kind=self.kind.lower(),
            id=f"{meta.get('namespace')}/{meta.get('name')}",
            name=str(meta.get("name")),
            detail={"namespace": str(meta.get("namespace")), "replicas": previous},
        )


class WorkloadScale(_WorkloadFault[ScaleArgs, ScaleRevert]):
    args = ScaleArgs
    revert_type = ScaleRevert
    # captures_state (the default): the replica count read before is what comes back.

    def prepare(self, args: ScaleArgs, target: Target, ctx: contract.RunContext) -> ScaleRevert:
        return ScaleRevert(
            connection=clusters.connection(args, ctx),
            kind=self.kind,
            namespace=target.detail["namespace"],
            name=target.name,
            replicas=int(target.detail["replicas"]),
        )

    def inject(
        self, args: ScaleArgs, target: Target, revert: ScaleRevert, ctx: contract.RunContext
    ) -> ScaleRevert:
        api = clusters.connect(args, ctx)
        meta = marks.metadata(
            ctx.run_id, self.name, args.expires_after, {marks.PREVIOUS_REPLICAS: str(revert.replicas)}
        )
        api.patch(
            self.path(revert.namespace, revert.name),
            {"metadata": meta, "spec": {"replicas": args.replicas}},
            what=f"scaling {self.kind} {target.id} to {args.replicas}",
        )
        return revert

    def revert(self, revert: ScaleRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = clusters.reconnect(revert, ctx)
        namespace, name, replicas = revert.namespace, revert.name, revert.replicas
        try:
            current = api.get(self.path(namespace, name), what=f"reading {self.kind} {namespace}/{name}")
        except apis.ApiError as e:
            if e.status == 404:
                return contract.RevertOutcome.ALREADY_CLEAN
            raise
        labelled = marks.RUN_ID in ((current.get("metadata") or {}).get("labels") or {})
        if not labelled and (current.get("spec") or {}).get("replicas") == replicas:
            return contract.RevertOutcome.ALREADY_CLEAN
        api.patch(
            self.path(namespace, name),
            {"metadata": marks.removal(), "spec": {"replicas": replicas}},
            what=f"restoring {self.kind} {namespace}/{name} to {replicas} replicas",
        )
        return contract.RevertOutcome.REVERTED


class RestartArgs(WorkloadArgs):
    pass


class WorkloadRestart(_WorkloadFault[RestartArgs, WorkloadRevert]):
    """Self-healing: the new pods are the recovery, and nothing is ever reverted, so it leaves no
    chaoskit marks (which only a sweep would remove), only the template annotation that
    ``kubectl rollout restart`` sets too."""

    args = RestartArgs
    revert_type = WorkloadRevert
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False  # nothing is restored: the new pods are the recovery

    def prepare(self, args: RestartArgs, target: Target, ctx: contract.RunContext) -> WorkloadRevert:
        return WorkloadRevert(
            connection=clusters.connection(args, ctx),
            kind=self.kind,
            namespace=target.detail["namespace"],
            name=target.name,
        )

    def inject(
        self, args: RestartArgs, target: Target, revert: WorkloadRevert, ctx: contract.RunContext
    ) -> WorkloadRevert:
        api = clusters.connect(args, ctx)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        template = {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}
        api.patch(
            self.path(target.detail["namespace"], target.name),
            {"spec": {"template": template}},
            what=f"restarting the rollout of {self.kind} {target.id}",
        )
        return revert


class DeploymentScale(WorkloadScale):
    name = "kubernetes.deployment.scale"
    summary = "Scale a Deployment to `replicas`; reverted to the replica count it had before."
    kind, plural = "Deployment", "deployments"


class DeploymentRestart(WorkloadRestart):
    name = "kubernetes.deployment.rollout_restart"
    summary = "Restart a Deployment's rollout (every pod replaced), like `kubectl rollout restart`."
    kind, plural = "Deployment", "deployments"


class StatefulSetScale(WorkloadScale):
    name = "kubernetes.statefulset.scale"
    summary = "Scale a StatefulSet to `replicas`; reverted to the replica count it had before."
    kind, plural = "StatefulSet", "statefulsets"


class StatefulSetRestart(WorkloadRestart):
    name = "kubernetes.statefulset.rollout_restart"
    summary = "Restart a StatefulSet's rollout (every pod replaced), like `kubectl rollout restart`."
    kind, plural = "StatefulSet", "statefulsets"


# --- nodes ----------------------------------------------------------------------------------


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


class _NodeFault(contract.Fault[N, NodeRevert]):
    revert_type = NodeRevert
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
        target = selecting.node_target(node)
        detail = {**target.detail, "was_unschedulable": str(evicting.was_unschedulable(node)).lower()}
        return Target(kind=target.kind, id=target.id, name=target.name, detail=detail)

    def prepare(self, args: N, target: Target, ctx: contract.RunContext) -> NodeRevert:
        return NodeRevert(
            connection=clusters.connection(args, ctx),
            node=target.name,
            was_unschedulable=target.detail.get("was_unschedulable") == "true",
        )

    def revert(self, revert: NodeRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = clusters.reconnect(revert, ctx)
        return evicting.uncordon(api, revert.node, revert.was_unschedulable)

    def cordon(self, args: N, revert: NodeRevert, ctx: contract.RunContext) -> apis.Api:
        api = clusters.connect(args, ctx)
        evicting.cordon(
            api, revert.node, revert.was_unschedulable, ctx=ctx, fault=self.name, ttl=args.expires_after
        )
        return api


def _named_nodes(args: NodeArgs, api: apis.Api) -> list[JSON]:
    nodes = selecting.list_nodes(api, label_selector=args.label_selector)
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
            plan = evicting.plan_drain(evicting.pods_on(api, target.name), args.allow_protected)
            refs = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in plan.evict]
            detail = {**target.detail, "evicts": ",".join(sorted(refs)) or "-"}
            drained.append(Target(kind=target.kind, id=target.id, name=target.name, detail=detail))
        return drained

    def inject(self, args: D, target: Target, revert: NodeRevert, ctx: contract.RunContext) -> NodeRevert:
        api = self.cordon(args, revert, ctx)
        for line in evicting.drain(
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


class NodeCordon(_NodeFault[NodeArgs]):
    name = "kubernetes.node.cordon"
    summary = "Mark nodes unschedulable; reverted by uncordoning them."
    args = NodeArgs

    def candidates(self, args: NodeArgs, api: apis.Api) -> list[JSON]:
        return _named_nodes(args, api)

    def inject(
        self, args: NodeArgs, target: Target, revert: NodeRevert, ctx: contract.RunContext
    ) -> NodeRevert:
        self.cordon(args, revert, ctx)
        return revert


class NodeDrain(_DrainFault[DrainArgs]):
    name = "kubernetes.node.drain"
    summary = "Cordon nodes and evict their pods (PDBs honoured, DaemonSet pods stay); reverted by uncordon."
    args = DrainArgs

    def candidates(self, args: DrainArgs, api: apis.Api) -> list[JSON]:
        return _named_nodes(args, api)


class ZoneOutage(_DrainFault[ZoneArgs]):
    name = "kubernetes.zone.outage"
    summary = "Cordon and drain every node of a topology.kubernetes.io/zone; reverted by uncordon."
    args = ZoneArgs

    def candidates(self, args: ZoneArgs, api: apis.Api) -> list[JSON]:
        nodes = selecting.list_nodes(api, label_selector=f"{selecting.ZONE_LABEL}={args.zone}")
        if not nodes:
            raise TargetError(
                f"no node has {selecting.ZONE_LABEL}={args.zone}",
                hint="check the zone name: kubectl get nodes -L topology.kubernetes.io/zone",
            )
        return nodes


# --- network ----------------------------------------------------------------------------------


class Peer(contract.Args):
    """Traffic still allowed during a partition: pods (by labels, in namespaces by labels) or a CIDR."""

    pod_labels: dict[str, str] | None = None
    namespace_labels: dict[str, str] | None = None
    cidr: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.cidr is not None and (self.pod_labels is not None or self.namespace_labels is not None):
            raise ValueError("an allowed peer is either a cidr or pod/namespace labels, not both")
        if self.cidr is None and self.pod_labels is None and self.namespace_labels is None:
            raise ValueError("an allowed peer needs pod_labels, namespace_labels or cidr")
        return self

    def to_json(self) -> JSON:
        if self.cidr is not None:
            return {"ipBlock": {"cidr": self.cidr}}
        peer: JSON = {}
        if self.pod_labels is not None:
            peer["podSelector"] = {"matchLabels": dict(self.pod_labels)}
        if self.namespace_labels is not None:
            peer["namespaceSelector"] = {"matchLabels": dict(self.namespace_labels)}
        return peer


class PartitionArgs(selecting.NamespacedArgs, clusters.Marked):
    label_selector: str
    """The pods cut off, e.g. ``app=web``; the empty string means every pod of the namespace."""
    direction: Literal["ingress", "egress", "both"] = "both"
    allow: list[Peer] = Field(default_factory=list)
    """Peers still reachable (both ways the direction covers), e.g. DNS or a monitoring namespace."""
    max_targets: int | None = Field(default=None, ge=1)
    """Refuse when more pods than this would be cut off."""


class PolicyRevert(clusters.ClusterRevert):
    """The NetworkPolicy a partition created, to delete it again."""

    namespace: str
    """The policy's namespace."""
    name: str
    """The policy's name (``chaoskit-partition-<run>-<digest of selector and direction>``)."""


class NetworkPartition(contract.Fault[PartitionArgs, PolicyRevert]):
    name = "kubernetes.network.partition"
    summary = "Cut pods off with a deny-all NetworkPolicy (ingress, egress or both); reverted by deleting it."
    args = PartitionArgs
    revert_type = PolicyRevert
    # captures_state (the default), although the policy is an object of its own: its name comes from
    # the run, the selector and the direction, so two overlapping steps of one run that cut off the
    # same pods share one policy (the second inject finds it there). Only the last one out may
    # delete it, which is what handing on the state gives.

    def policy_name(self, args: PartitionArgs, ctx: contract.RunContext) -> str:
        digest = hashlib.sha256(f"{args.label_selector}|{args.direction}".encode()).hexdigest()[:8]
        return f"chaoskit-partition-{marks.label_value(ctx.run_id)[:30].lower().strip('-_.')}-{digest}"

    def targets(self, args: PartitionArgs, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        selecting.label_selector_object(args.label_selector)  # a selector NetworkPolicy can't say fails now
        name = self.policy_name(args, ctx)
        targets: list[Target] = []
        for namespace in args.resolved_namespaces(api):
            pods = [
                selecting.pod_target(p)
                for p in selecting.list_pods(api, [namespace], label_selector=args.label_selector or None)
                if not selecting.is_terminating(p)
            ]
            chosen = targeting.choose(
                pods, targeting.Selection(max_targets=args.max_targets), ctx.rng, what="pods"
            )
            targets.append(
                Target(
                    kind="networkpolicy",
                    id=f"{namespace}/{name}",
                    name=name,
                    detail={"namespace": namespace, "pods": ",".join(t.name for t in chosen)},
                )
            )
        return targets

    def prepare(self, args: PartitionArgs, target: Target, ctx: contract.RunContext) -> PolicyRevert:
        return PolicyRevert(
            connection=clusters.connection(args, ctx), namespace=target.detail["namespace"], name=target.name
        )

    def inject(
        self, args: PartitionArgs, target: Target, revert: PolicyRevert, ctx: contract.RunContext
    ) -> PolicyRevert:
        api = clusters.connect(args, ctx)
        namespace = revert.namespace
        types = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}[args.direction]
        peers = [p.to_json() for p in args.allow]
        spec: JSON = {
            "podSelector": selecting.label_selector_object(args.label_selector),
            "policyTypes": types,
        }
        if peers and "Ingress" in types:
            spec["ingress"] = [{"from": peers}]
        if peers and "Egress" in types:
            spec["egress"] = [{"to": peers}]
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": revert.name,
                "namespace": namespace,
                **marks.metadata(ctx.run_id, self.name, args.expires_after),
            },
            "spec": spec,
        }
        try:
            api.post(
                f"/apis/networking.k8s.io/v1/namespaces/{quote(namespace)}/networkpolicies",
                body,
                what=f"creating NetworkPolicy {namespace}/{revert.name}",
            )
        except apis.ApiError as e:
            if e.status != 409:  # already there: a retried inject of this same run
                raise
        return revert

    def revert(self, revert: PolicyRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = clusters.reconnect(revert, ctx)
        return delete_policy(api, revert.namespace, revert.name)


def delete_policy(api: apis.Api, namespace: str, name: str) -> contract.RevertOutcome:
    try:
        api.delete(
            f"/apis/networking.k8s.io/v1/namespaces/{quote(namespace)}/networkpolicies/{quote(name)}",
            what=f"deleting NetworkPolicy {namespace}/{name}",
        )
    except apis.ApiError as e:
        if e.status == 404:
            return contract.RevertOutcome.ALREADY_CLEAN
        raise
    return contract.RevertOutcome.REVERTED


def all_faults() -> list[contract.Fault[Any, Any]]:
    return [
        PodsDelete(),
        PodsEvict(),
        DeploymentScale(),
        DeploymentRestart(),
        StatefulSetScale(),
        StatefulSetRestart(),
        NodeCordon(),
        NodeDrain(),
        ZoneOutage(),
        NetworkPartition(),
    ]
