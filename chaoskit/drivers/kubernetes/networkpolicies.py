"""NetworkPolicies: the ``kubernetes.network.partition`` fault, which cuts pods off with a
deny-all policy of its own, reverted by deleting it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, Self
from urllib.parse import quote

from pydantic import Field, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, namespaces, pods, selectors
from chaoskit.kube import apis, marks

JSON = apis.JSON
Target = contract.Target


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


class PartitionArgs(namespaces.NamespacedArgs, clusters.Marked):
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


class NetworkPartition(contract.Fault[PartitionArgs, PolicyRevert], args=PartitionArgs, revert=PolicyRevert):
    name = "kubernetes.network.partition"
    summary = "Cut pods off with a deny-all NetworkPolicy (ingress, egress or both); reverted by deleting it."
    # captures_state (the default), although the policy is an object of its own: its name comes from
    # the run, the selector and the direction, so two overlapping steps of one run that cut off the
    # same pods share one policy (the second inject finds it there). Only the last one out may
    # delete it, which is what handing on the state gives.

    def policy_name(self, args: PartitionArgs, ctx: contract.RunContext) -> str:
        digest = hashlib.sha256(f"{args.label_selector}|{args.direction}".encode()).hexdigest()[:8]
        return f"chaoskit-partition-{marks.label_value(ctx.run_id)[:30].lower().strip('-_.')}-{digest}"

    def targets(self, args: PartitionArgs, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        selectors.label_selector_object(args.label_selector)  # a selector NetworkPolicy can't say fails now
        name = self.policy_name(args, ctx)
        targets: list[Target] = []
        for namespace in args.resolved_namespaces(api):
            cut = [
                pods.pod_target(p)
                for p in pods.list_pods(api, [namespace], label_selector=args.label_selector or None)
                if not pods.is_terminating(p)
            ]
            chosen = targeting.choose(
                cut, targeting.Selection(max_targets=args.max_targets), ctx.rng, what="pods"
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
            "podSelector": selectors.label_selector_object(args.label_selector),
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
