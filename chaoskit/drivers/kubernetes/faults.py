"""The kubernetes faults: delete or evict pods, scale or restart Deployments and StatefulSets,
cordon or drain nodes, partition pods with a NetworkPolicy, take a whole zone out.

Every revert works from its recorded data alone (the connection is recorded as a kubeconfig
path and context, never a token), and everything changed carries the marks of ``marks``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import quote

from pydantic import Field, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import connecting, evicting, marks, selecting
from chaoskit.durations import Duration
from chaoskit.errors import DriverError, TargetError

JSON = connecting.JSON
RevertData = contract.RevertData
Target = contract.Target


class Marked(contract.Args):
    expires_after: Duration = 3600.0
    """How long the change may outlive a vanished run before a sweep (``chaoskit recover``) reverts it."""


def _connect(args: connecting.ClusterArgs, ctx: contract.RunContext) -> connecting.Api:
    return connecting.api(ctx, connecting.resolve(args))


def _reconnect(revert: RevertData, ctx: contract.RunContext) -> connecting.Api:
    return connecting.api(ctx, connecting.Connection.from_json(revert.get("connection")))


def _str(revert: RevertData, key: str) -> str:
    value = revert.get(key)
    if not isinstance(value, str):
        raise DriverError(f"recorded revert data lacks {key!r}: {revert!r}")
    return value


# --- pods -------------------------------------------------------------------------------------


class PodsArgs(selecting.SelectedPodArgs):
    grace_period: int | None = Field(default=None, ge=0)
    """Seconds the pod gets to stop; default the pod's own terminationGracePeriodSeconds."""


P = TypeVar("P", bound=PodsArgs)


class _PodFault(contract.Fault[P]):
    reversibility = contract.Reversibility.SELF_HEALING

    def targets(self, args: P, ctx: contract.RunContext) -> Sequence[Target]:
        api = _connect(args, ctx)
        candidates = [selecting.pod_target(p) for p in selecting.candidate_pods(args, api)]
        return targeting.choose(candidates, args, ctx.rng, what="pods")

    def prepare(self, args: P, target: Target, ctx: contract.RunContext) -> RevertData:
        return {
            "connection": connecting.resolve(args).to_json(),
            "namespace": target.detail["namespace"],
            "name": target.name,
            "uid": target.detail.get("uid", ""),
        }


class PodsDelete(_PodFault[PodsArgs]):
    name = "kubernetes.pods.delete"
    summary = "Delete pods chosen by label/field selector or name; their controllers replace them."
    args = PodsArgs

    def inject(
        self, args: PodsArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        api = _connect(args, ctx)
        namespace, name = target.detail["namespace"], target.name
        body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if args.grace_period is not None:
            body["gracePeriodSeconds"] = args.grace_period
        if target.detail.get("uid"):
            # Never delete a newer pod that took the chosen one's name (StatefulSets reuse names).
            body["preconditions"] = {"uid": target.detail["uid"]}
        try:
            api.delete(evicting.pod_path(namespace, name), what=f"deleting pod {namespace}/{name}", body=body)
        except connecting.ApiError as e:
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
        api = _connect(args, ctx)
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
        self, args: EvictArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        api = _connect(args, ctx)
        namespace = target.detail["namespace"]
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


class ScaleArgs(WorkloadArgs, Marked):
    replicas: int = Field(ge=0)
    """The replica count during the fault; the previous one is restored on revert."""


class _WorkloadFault(contract.Fault[Any]):
    kind: ClassVar[str]
    """``Deployment`` or ``StatefulSet``."""
    plural: ClassVar[str]

    def path(self, namespace: str, name: str | None = None) -> str:
        base = f"/apis/apps/v1/namespaces/{quote(namespace)}/{self.plural}"
        return f"{base}/{quote(name)}" if name else base

    def targets(self, args: WorkloadArgs, ctx: contract.RunContext) -> Sequence[Target]:
        api = _connect(args, ctx)
        found: list[JSON] = []
        for namespace in args.resolved_namespaces(api):
            if args.name:
                try:
                    found.append(
                        api.get(self.path(namespace, args.name), what=f"reading {self.kind} {args.name}")
                    )
                except connecting.ApiError as e:
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

    def prepare(self, args: WorkloadArgs, target: Target, ctx: contract.RunContext) -> RevertData:
        return {
            "connection": connecting.resolve(args).to_json(),
            "kind": self.kind,
            "namespace": target.detail["namespace"],
            "name": target.name,
            "replicas": int(target.detail["replicas"]),
        }


class WorkloadScale(_WorkloadFault):
    args = ScaleArgs

    def inject(
        self, args: ScaleArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        api = _connect(args, ctx)
        meta = marks.metadata(
            ctx, self.name, args.expires_after, {marks.PREVIOUS_REPLICAS: str(revert["replicas"])}
        )
        api.patch(
            self.path(target.detail["namespace"], target.name),
            {"metadata": meta, "spec": {"replicas": args.replicas}},
            what=f"scaling {self.kind} {target.id} to {args.replicas}",
        )
        return revert

    def revert(self, revert: RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = _reconnect(revert, ctx)
        namespace, name = _str(revert, "namespace"), _str(revert, "name")
        replicas = revert.get("replicas")
        try:
            current = api.get(self.path(namespace, name), what=f"reading {self.kind} {namespace}/{name}")
        except connecting.ApiError as e:
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


class WorkloadRestart(_WorkloadFault):
    """Self-healing: the new pods are the recovery, and nothing is ever reverted, so it leaves no
    chaoskit marks (which only a sweep would remove), only the template annotation that
    ``kubectl rollout restart`` sets too."""

    args = RestartArgs
    reversibility = contract.Reversibility.SELF_HEALING

    def inject(
        self, args: RestartArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        api = _connect(args, ctx)
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


class NodeArgs(connecting.ClusterArgs, targeting.Selection, Marked):
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


class DrainArgs(NodeArgs, DrainOptions):
    pass


class ZoneArgs(connecting.ClusterArgs, targeting.Selection, Marked, DrainOptions):
    zone: str
    """The value of the nodes' ``topology.kubernetes.io/zone`` label."""


class _NodeFault(contract.Fault[Any]):
    evicts: ClassVar[bool] = False
    """Drains: each target's detail lists the pods that would be evicted, for the dry run."""

    def candidates(self, args: Any, api: connecting.Api) -> list[JSON]:
        nodes = selecting.list_nodes(api, label_selector=args.label_selector)
        if args.names:
            wanted = set(args.names)
            nodes = [n for n in nodes if n["metadata"]["name"] in wanted]
        return nodes

    def targets(self, args: Any, ctx: contract.RunContext) -> Sequence[Target]:
        api = _connect(args, ctx)
        chosen = targeting.choose(
            [self.node_target(n) for n in self.candidates(args, api)], args, ctx.rng, what="nodes"
        )
        if not self.evicts:
            return chosen
        drained = []
        for target in chosen:
            plan = evicting.plan_drain(evicting.pods_on(api, target.name), args.allow_protected)
            refs = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in plan.evict]
            detail = {**target.detail, "evicts": ",".join(sorted(refs)) or "-"}
            drained.append(Target(kind=target.kind, id=target.id, name=target.name, detail=detail))
        return drained

    def node_target(self, node: JSON) -> Target:
        target = selecting.node_target(node)
        detail = {**target.detail, "was_unschedulable": str(evicting.was_unschedulable(node)).lower()}
        return Target(kind=target.kind, id=target.id, name=target.name, detail=detail)

    def prepare(self, args: Any, target: Target, ctx: contract.RunContext) -> RevertData:
        return {
            "connection": connecting.resolve(args).to_json(),
            "node": target.name,
            "was_unschedulable": target.detail.get("was_unschedulable") == "true",
        }

    def revert(self, revert: RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = _reconnect(revert, ctx)
        return evicting.uncordon(api, _str(revert, "node"), bool(revert.get("was_unschedulable")))

    def cordon(
        self, args: Any, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> connecting.Api:
        api = _connect(args, ctx)
        evicting.cordon(
            api,
            target.name,
            bool(revert.get("was_unschedulable")),
            ctx=ctx,
            fault=self.name,
            ttl=args.expires_after,
        )
        return api

    def drain(self, args: Any, target: Target, revert: RevertData, ctx: contract.RunContext) -> RevertData:
        api = self.cordon(args, target, revert, ctx)
        for line in evicting.drain(
            api,
            target.name,
            ctx,
            timeout=args.timeout,
            grace_period=args.grace_period,
            allow_protected=args.allow_protected,
            wait=args.wait,
        ):
            ctx.log(line)
        return revert


class NodeCordon(_NodeFault):
    name = "kubernetes.node.cordon"
    summary = "Mark nodes unschedulable; reverted by uncordoning them."
    args = NodeArgs

    def inject(
        self, args: NodeArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        self.cordon(args, target, revert, ctx)
        return revert


class NodeDrain(_NodeFault):
    evicts = True
    name = "kubernetes.node.drain"
    summary = "Cordon nodes and evict their pods (PDBs honoured, DaemonSet pods stay); reverted by uncordon."
    args = DrainArgs

    def inject(
        self, args: DrainArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        return self.drain(args, target, revert, ctx)


class ZoneOutage(_NodeFault):
    evicts = True
    name = "kubernetes.zone.outage"
    summary = "Cordon and drain every node of a topology.kubernetes.io/zone; reverted by uncordon."
    args = ZoneArgs

    def candidates(self, args: Any, api: connecting.Api) -> list[JSON]:
        nodes = selecting.list_nodes(api, label_selector=f"{selecting.ZONE_LABEL}={args.zone}")
        if not nodes:
            raise TargetError(
                f"no node has {selecting.ZONE_LABEL}={args.zone}",
                hint="check the zone name: kubectl get nodes -L topology.kubernetes.io/zone",
            )
        return nodes

    def inject(
        self, args: ZoneArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        return self.drain(args, target, revert, ctx)


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


class PartitionArgs(selecting.NamespacedArgs, Marked):
    label_selector: str
    """The pods cut off, e.g. ``app=web``; the empty string means every pod of the namespace."""
    direction: Literal["ingress", "egress", "both"] = "both"
    allow: list[Peer] = Field(default_factory=list)
    """Peers still reachable (both ways the direction covers), e.g. DNS or a monitoring namespace."""
    max_targets: int | None = Field(default=None, ge=1)
    """Refuse when more pods than this would be cut off."""


class NetworkPartition(contract.Fault[PartitionArgs]):
    name = "kubernetes.network.partition"
    summary = "Cut pods off with a deny-all NetworkPolicy (ingress, egress or both); reverted by deleting it."
    args = PartitionArgs

    def policy_name(self, args: PartitionArgs, ctx: contract.RunContext) -> str:
        digest = hashlib.sha256(f"{args.label_selector}|{args.direction}".encode()).hexdigest()[:8]
        return f"chaoskit-partition-{marks.label_value(ctx.run_id)[:30].lower().strip('-_.')}-{digest}"

    def targets(self, args: PartitionArgs, ctx: contract.RunContext) -> Sequence[Target]:
        api = _connect(args, ctx)
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

    def prepare(self, args: PartitionArgs, target: Target, ctx: contract.RunContext) -> RevertData:
        return {
            "connection": connecting.resolve(args).to_json(),
            "namespace": target.detail["namespace"],
            "name": target.name,
        }

    def inject(
        self, args: PartitionArgs, target: Target, revert: RevertData, ctx: contract.RunContext
    ) -> RevertData:
        api = _connect(args, ctx)
        namespace = target.detail["namespace"]
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
                "name": target.name,
                "namespace": namespace,
                **marks.metadata(ctx, self.name, args.expires_after),
            },
            "spec": spec,
        }
        try:
            api.post(
                f"/apis/networking.k8s.io/v1/namespaces/{quote(namespace)}/networkpolicies",
                body,
                what=f"creating NetworkPolicy {namespace}/{target.name}",
            )
        except connecting.ApiError as e:
            if e.status != 409:  # already there: a retried inject of this same run
                raise
        return revert

    def revert(self, revert: RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        api = _reconnect(revert, ctx)
        return delete_policy(api, _str(revert, "namespace"), _str(revert, "name"))


def delete_policy(api: connecting.Api, namespace: str, name: str) -> contract.RevertOutcome:
    try:
        api.delete(
            f"/apis/networking.k8s.io/v1/namespaces/{quote(namespace)}/networkpolicies/{quote(name)}",
            what=f"deleting NetworkPolicy {namespace}/{name}",
        )
    except connecting.ApiError as e:
        if e.status == 404:
            return contract.RevertOutcome.ALREADY_CLEAN
        raise
    return contract.RevertOutcome.REVERTED


def all_faults() -> list[contract.Fault[Any]]:
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
