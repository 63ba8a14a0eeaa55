"""Deployments and StatefulSets: the ``scale`` and ``rollout_restart`` faults of each, and the
``kubernetes.deployment.available`` and ``kubernetes.rollout.complete`` probes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar, Literal, Self, TypeVar
from urllib.parse import quote

from pydantic import Field, StrictInt, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, namespaces
from chaoskit.durations import Duration
from chaoskit.kube import apis, marks

JSON = apis.JSON
Target = contract.Target


class WorkloadArgs(namespaces.NamespacedArgs, targeting.Selection):
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


class WorkloadScale(_WorkloadFault[ScaleArgs, ScaleRevert], args=ScaleArgs, revert=ScaleRevert):
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


class WorkloadRestart(_WorkloadFault[RestartArgs, WorkloadRevert], args=RestartArgs, revert=WorkloadRevert):
    """Self-healing: the new pods are the recovery, and nothing is ever reverted, so it leaves no
    chaoskit marks (which only a sweep would remove), only the template annotation that
    ``kubectl rollout restart`` sets too."""

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


class DeploymentArgs(namespaces.ReadArgs):
    name: str


class DeploymentAvailable(contract.Probe[DeploymentArgs], args=DeploymentArgs):
    name = "kubernetes.deployment.available"
    summary = "A Deployment's replica counts: {replicas, available, ready, updated, unavailable, ...}."

    def run(self, args: DeploymentArgs, ctx: contract.RunContext) -> contract.JsonValue:
        api = clusters.connect(args, ctx)
        namespace = args.resolved_namespaces(api)[0]
        deployment = api.get(
            f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments/{quote(args.name)}",
            what=f"reading Deployment {namespace}/{args.name}",
        )
        status = deployment.get("status") or {}
        conditions = status.get("conditions") or []
        return {
            "replicas": int((deployment.get("spec") or {}).get("replicas", 1)),
            "available": int(status.get("availableReplicas") or 0),
            "ready": int(status.get("readyReplicas") or 0),
            "updated": int(status.get("updatedReplicas") or 0),
            "unavailable": int(status.get("unavailableReplicas") or 0),
            "available_condition": any(
                c.get("type") == "Available" and c.get("status") == "True" for c in conditions
            ),
        }


class RolloutArgs(namespaces.ReadArgs):
    kind: Literal["deployment", "statefulset"] = "deployment"
    name: str
    wait: Duration = 0.0
    """Poll until the rollout completes or this long has passed (0: answer at once)."""


def rollout_state(kind: str, obj: JSON) -> tuple[bool, str]:
    """Whether a rollout is complete, and why not, as ``kubectl rollout status`` decides it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "the controller has not yet seen the latest spec"
    updated = int(status.get("updatedReplicas") or 0)
    if updated < want:
        return False, f"{updated} of {want} replicas updated"
    if kind == "deployment":
        if int(status.get("replicas") or 0) > updated:
            return False, f"{int(status.get('replicas') or 0) - updated} old replicas pending termination"
        available = int(status.get("availableReplicas") or 0)
        if available < updated:
            return False, f"{available} of {updated} updated replicas available"
    else:
        ready = int(status.get("readyReplicas") or 0)
        if ready < want:
            return False, f"{ready} of {want} replicas ready"
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return False, "not every pod runs the update revision yet"
    return True, "complete"


class RolloutComplete(contract.Probe[RolloutArgs], args=RolloutArgs):
    name = "kubernetes.rollout.complete"
    summary = "Whether a Deployment's or StatefulSet's rollout is complete: {complete, reason}."

    def run(self, args: RolloutArgs, ctx: contract.RunContext) -> contract.JsonValue:
        api = clusters.connect(args, ctx)
        namespace = args.resolved_namespaces(api)[0]
        plural = f"{args.kind}s"
        deadline = time.monotonic() + args.wait
        while True:
            obj = api.get(
                f"/apis/apps/v1/namespaces/{quote(namespace)}/{plural}/{quote(args.name)}",
                what=f"reading {args.kind} {namespace}/{args.name}",
            )
            complete, reason = rollout_state(args.kind, obj)
            if complete or time.monotonic() >= deadline or not ctx.sleep(1.0):
                return {"complete": complete, "reason": reason}
