"""Evicting pods through the eviction API (so PodDisruptionBudgets are respected), cordoning
nodes, and draining them the way ``kubectl drain`` does: cordon, evict every evictable pod
(not DaemonSet or mirror pods), retry while a PDB refuses, wait until they are gone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import selecting
from chaoskit.errors import DriverError
from chaoskit.kube import apis, marks

JSON = apis.JSON
TOO_MANY_REQUESTS = 429
PDB_HINT = "a PodDisruptionBudget forbids it: relax the budget, add replicas, or raise timeout"


class EvictionRefused(DriverError):
    """The API server answered 429: evicting now would break a PodDisruptionBudget."""


def pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"


def evict(
    api: apis.Api,
    namespace: str,
    name: str,
    grace_period: int | None = None,
    *,
    dry_run: bool = False,
) -> bool:
    """Ask to evict one pod; False when it is already gone. Raises ``EvictionRefused`` on 429.
    With ``dry_run`` the API server only judges the eviction (PDBs included) and evicts nothing."""
    # policy/v1 Evictions exist from Kubernetes 1.22; older servers only take v1beta1.
    version = "v1" if "v1" in api.versions("policy") else "v1beta1"
    body: JSON = {
        "apiVersion": f"policy/{version}",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if grace_period is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
    try:
        api.request(
            "POST",
            f"{pod_path(namespace, name)}/eviction",
            what=f"evicting pod {namespace}/{name}" + (" (dry run)" if dry_run else ""),
            query={"dryRun": "All"} if dry_run else None,
            body=body,
        )
    except apis.ApiError as e:
        if e.status == 404:
            return False
        if e.status == 403 and "being terminated" in e.api_message:
            # No new object (an Eviction) can be made in a terminating namespace; like kubectl
            # drain, delete the pod instead: its namespace is going away anyway.
            return delete_pod(api, namespace, name, grace_period)
        if e.status == TOO_MANY_REQUESTS:
            raise EvictionRefused(
                f"pod {namespace}/{name}: eviction refused (429 {e.reason or 'TooManyRequests'}): "
                f"{e.api_message}",
                hint=PDB_HINT,
            ) from e
        raise
    return True


def delete_pod(api: apis.Api, namespace: str, name: str, grace_period: int | None) -> bool:
    body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period is not None:
        body["gracePeriodSeconds"] = grace_period
    try:
        api.delete(pod_path(namespace, name), what=f"deleting pod {namespace}/{name}", body=body)
    except apis.ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


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


@dataclass(frozen=True)
class DrainPlan:
    evict: list[JSON]
    skipped: list[tuple[str, str]]
    """(namespace/name, why) of pods a drain leaves alone."""


def plan_drain(pods: list[JSON], allow_protected: bool) -> DrainPlan:
    """Which of a node's pods a drain evicts: not DaemonSet pods, mirror pods, terminating pods,
    nor pods in protected namespaces (unless allowed)."""
    protected = selecting.protected_namespaces()
    chosen: list[JSON] = []
    skipped: list[tuple[str, str]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        if "DaemonSet" in selecting.owner_kinds(pod):
            skipped.append((ref, "DaemonSet pod"))
        elif marks_mirror(meta):
            skipped.append((ref, "mirror (static) pod"))
        elif selecting.is_terminating(pod):
            skipped.append((ref, "already terminating"))
        elif meta.get("namespace") in protected and not allow_protected:
            skipped.append((ref, "protected namespace (allow_protected: true to include)"))
        else:
            chosen.append(pod)
    return DrainPlan(evict=chosen, skipped=skipped)


def marks_mirror(meta: JSON) -> bool:
    return selecting.MIRROR_ANNOTATION in (meta.get("annotations") or {})


def pods_on(api: apis.Api, node: str) -> list[JSON]:
    return selecting.list_pods(api, None, field_selector=f"spec.nodeName={node}")


def drain(
    api: apis.Api,
    node: str,
    ctx: contract.RunContext,
    *,
    timeout: float,
    grace_period: int | None,
    allow_protected: bool,
    wait: bool,
) -> list[str]:
    """Evict every evictable pod of an (already cordoned) node, retrying while PDBs refuse, then
    wait until they are gone. Returns what it did; raises naming each pod still refused at the end."""
    plan = plan_drain(pods_on(api, node), allow_protected)
    done: list[str] = [f"node {node}: left {ref} alone ({why})" for ref, why in plan.skipped]
    deadline = time.monotonic() + timeout
    pending = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in plan.evict}
    evicted: dict[str, str] = {}
    refusals: dict[str, str] = {}
    while pending:
        refusals = {}
        for ref, pod in list(pending.items()):
            meta = pod["metadata"]
            try:
                if evict(api, meta["namespace"], meta["name"], grace_period):
                    evicted[ref] = str(meta.get("uid"))
                pending.pop(ref)
            except EvictionRefused as e:
                refusals[ref] = e.message
        if not pending or time.monotonic() >= deadline or ctx.cancel.is_set():
            break
        ctx.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    done.extend(f"node {node}: evicted {ref}" for ref in evicted)
    if refusals:
        for line in done:
            ctx.log(line)
        raise EvictionRefused(
            f"drain of node {node}: {wording.counted(len(refusals), 'pod')} still refused "
            f"after {timeout:g}s: " + "; ".join(refusals.values()),
            hint=PDB_HINT,
        )
    while wait and evicted and not ctx.cancel.is_set():
        remaining = {str((p.get("metadata") or {}).get("uid")) for p in pods_on(api, node)}
        if not remaining & set(evicted.values()):
            break
        if time.monotonic() >= deadline:
            raise DriverError(
                f"drain of node {node}: evicted pods still terminating after {timeout:g}s",
                hint="is the node's kubelet running? raise timeout, or set wait: false",
            )
        ctx.sleep(0.5)
    return done
