"""The kubernetes probes: Ready pods, Deployment availability, rollout completion, any object as
JSON, and the Warning events of the selected objects since the run started."""

from __future__ import annotations

import calendar
import time
from typing import Any, Literal, Self
from urllib.parse import quote

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import clusters, selecting
from chaoskit.durations import Duration
from chaoskit.errors import DriverError
from chaoskit.kube import apis

JSON = apis.JSON


class ReadArgs(selecting.NamespacedArgs):
    allow_protected: bool = True
    """Reading changes nothing, so probes may look into kube-system and the like."""


class PodsReadyArgs(ReadArgs):
    label_selector: str | None = None
    field_selector: str | None = None
    min_ready: int | None = Field(default=None, ge=0)
    """With ``wait``: poll until at least this many pods are Ready."""
    wait: Duration = 0.0
    """Poll until ``min_ready`` pods are Ready or this long has passed (0: answer at once)."""


class PodsReady(contract.Probe[PodsReadyArgs]):
    name = "kubernetes.pods.ready"
    summary = "How many of the selected pods are Ready: {ready, total, ratio, not_ready, terminating}."
    args = PodsReadyArgs

    def run(self, args: PodsReadyArgs, ctx: contract.RunContext) -> contract.JSONValue:
        api = clusters.connect(args, ctx)
        deadline = time.monotonic() + args.wait
        while True:
            counts = self.count(args, api)
            ready = counts["ready"]
            enough = args.min_ready is None or (isinstance(ready, int) and ready >= args.min_ready)
            if enough or time.monotonic() >= deadline or not ctx.sleep(0.5):
                return counts

    def count(self, args: PodsReadyArgs, api: apis.Api) -> dict[str, contract.JSONValue]:
        pods = selecting.list_pods(
            api,
            args.resolved_namespaces(api),
            label_selector=args.label_selector,
            field_selector=args.field_selector,
        )
        live = sorted(
            (p for p in pods if not selecting.is_terminating(p)), key=lambda p: str(p["metadata"]["name"])
        )
        ready = [p for p in live if selecting.is_ready(p)]
        return {
            "ready": len(ready),
            "total": len(live),
            "ratio": len(ready) / len(live) if live else 0.0,
            "terminating": len(pods) - len(live),
            "not_ready": [str(p["metadata"]["name"]) for p in live if not selecting.is_ready(p)],
        }


class WorkloadArgs(ReadArgs):
    name: str


class DeploymentAvailable(contract.Probe[WorkloadArgs]):
    name = "kubernetes.deployment.available"
    summary = "A Deployment's replica counts: {replicas, available, ready, updated, unavailable, ...}."
    args = WorkloadArgs

    def run(self, args: WorkloadArgs, ctx: contract.RunContext) -> contract.JSONValue:
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


class RolloutArgs(ReadArgs):
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


class RolloutComplete(contract.Probe[RolloutArgs]):
    name = "kubernetes.rollout.complete"
    summary = "Whether a Deployment's or StatefulSet's rollout is complete: {complete, reason}."
    args = RolloutArgs

    def run(self, args: RolloutArgs, ctx: contract.RunContext) -> contract.JSONValue:
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


class ResourceArgs(clusters.ClusterArgs):
    api_version: str = "v1"
    """``v1``, ``apps/v1``, ``networking.k8s.io/v1``, a CRD's ``group/version``."""
    kind: str
    """``Pod``, ``Deployment``, ``ConfigMap``..."""
    name: str | None = None
    """One object; without it, the list of objects (``label_selector`` narrows it)."""
    namespace: str | None = None
    label_selector: str | None = None
    allow_protected: bool = True
    """Reading is harmless; kept for symmetry with the faults."""


def resource_path(api: apis.Api, api_version: str, kind: str) -> tuple[str, bool]:
    """The collection path of ``kind`` in ``api_version`` and whether it is namespaced (discovery)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    listing = api.get(base, what=f"discovering the resources of {api_version}")
    for resource in listing.get("resources") or []:
        if resource.get("kind") == kind and "/" not in str(resource.get("name")):
            return f"{base}/{resource['name']}", bool(resource.get("namespaced"))
    raise DriverError(
        f"the API server has no kind {kind!r} in {api_version}",
        hint="check kind: and api_version: (kubectl api-resources lists them)",
    )


class Resource(contract.Probe[ResourceArgs]):
    name = "kubernetes.resource"
    summary = "Any object (or list of objects) as JSON, for `expect` with a path like status.phase."
    args = ResourceArgs

    def run(self, args: ResourceArgs, ctx: contract.RunContext) -> contract.JSONValue:
        api = clusters.connect(args, ctx)
        collection, namespaced = resource_path(api, args.api_version, args.kind)
        if namespaced:
            namespace = args.namespace or api.default_namespace
            prefix, rest = collection.rsplit("/", 1)
            collection = f"{prefix}/namespaces/{quote(namespace)}/{rest}"
        if args.name:
            obj: contract.JSONValue = api.get(
                f"{collection}/{quote(args.name)}", what=f"reading {args.kind} {args.name}"
            )
            return obj
        items: list[contract.JSONValue] = list(
            api.list(collection, what=f"listing {args.kind}", labelSelector=args.label_selector)
        )
        return {"items": items, "count": len(items)}


class EventsArgs(ReadArgs):
    kind: str | None = None
    """Only events about objects of this kind (``Pod``, ``Deployment``...)."""
    name: str | None = None
    """Only events about the object of this name."""
    label_selector: str | None = None
    """Only events about the objects of ``kind`` (default Pod) carrying these labels."""
    reason: str | None = None
    """Only events with this reason (``BackOff``, ``FailedScheduling``...)."""

    @model_validator(mode="after")
    def _name_or_labels(self) -> Self:
        if self.name and self.label_selector:
            raise ValueError("give name or label_selector, not both")
        return self


def _epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


class Events(contract.Probe[EventsArgs]):
    name = "kubernetes.events"
    summary = "Warning events for the selected objects since the run started: {count, events}."
    args = EventsArgs

    def run(self, args: EventsArgs, ctx: contract.RunContext) -> contract.JSONValue:
        api = clusters.connect(args, ctx)
        fields = ["type=Warning"]
        if args.kind:
            fields.append(f"involvedObject.kind={args.kind}")
        if args.name:
            fields.append(f"involvedObject.name={args.name}")
        if args.reason:
            fields.append(f"reason={args.reason}")
        found: list[contract.JSONValue] = []
        for namespace in args.resolved_namespaces(api):
            names: set[str] | None = None
            if args.label_selector:
                collection, _ = resource_path(
                    api, "v1" if not args.kind else _group_of(args.kind), args.kind or "Pod"
                )
                prefix, rest = collection.rsplit("/", 1)
                objects = api.list(
                    f"{prefix}/namespaces/{quote(namespace)}/{rest}",
                    what=f"listing {args.kind or 'Pod'} in {namespace}",
                    labelSelector=args.label_selector,
                )
                names = {str(o["metadata"]["name"]) for o in objects}
            for event in api.list(
                f"/api/v1/namespaces/{quote(namespace)}/events",
                what=f"listing events in {namespace}",
                fieldSelector=",".join(fields),
            ):
                involved = event.get("involvedObject") or {}
                if names is not None and involved.get("name") not in names:
                    continue
                when = (
                    _epoch(event.get("lastTimestamp"))
                    or _epoch(event.get("eventTime"))
                    or _epoch((event.get("metadata") or {}).get("creationTimestamp"))
                )
                # Whole seconds on the server: allow the second the run started in.
                if when is None or when < int(ctx.started_at):
                    continue
                found.append(
                    {
                        "namespace": namespace,
                        "object": f"{involved.get('kind')}/{involved.get('name')}",
                        "reason": event.get("reason"),
                        "message": event.get("message"),
                        "count": int(event.get("count") or 1),
                    }
                )
        return {"count": len(found), "events": found}


_GROUPS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def _group_of(kind: str) -> str:
    return _GROUPS.get(kind, "v1")


def all_probes() -> list[contract.Probe[Any]]:
    return [PodsReady(), DeploymentAvailable(), RolloutComplete(), Resource(), Events()]
