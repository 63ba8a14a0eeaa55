"""Draining a node the way ``kubectl drain`` does: evict every evictable pod (not DaemonSet or
mirror pods), retry while a PodDisruptionBudget refuses, wait until they are gone."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import namespaces, pods
from chaoskit.errors import DriverError
from chaoskit.kube import apis

JSON = apis.JSON
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


@dataclass(frozen=True)
class DrainPlan:
    evict: list[JSON]
    skipped: list[tuple[str, str]]
    """(namespace/name, why) of pods a drain leaves alone."""


def plan_drain(candidates: list[JSON], allow_protected: bool) -> DrainPlan:
    """Which of a node's pods a drain evicts: not DaemonSet pods, mirror pods, terminating pods,
    nor pods in protected namespaces (unless allowed)."""
    protected = namespaces.protected_namespaces()
    chosen: list[JSON] = []
    skipped: list[tuple[str, str]] = []
    for pod in candidates:
        meta = pod.get("metadata") or {}
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        if "DaemonSet" in pods.owner_kinds(pod):
            skipped.append((ref, "DaemonSet pod"))
        elif marks_mirror(meta):
            skipped.append((ref, "mirror (static) pod"))
        elif pods.is_terminating(pod):
            skipped.append((ref, "already terminating"))
        elif meta.get("namespace") in protected and not allow_protected:
            skipped.append((ref, "protected namespace (allow_protected: true to include)"))
        else:
            chosen.append(pod)
    return DrainPlan(evict=chosen, skipped=skipped)


def marks_mirror(meta: JSON) -> bool:
    return MIRROR_ANNOTATION in (meta.get("annotations") or {})


def pods_on(api: apis.Api, node: str) -> list[JSON]:
    return pods.list_pods(api, None, field_selector=f"spec.nodeName={node}")


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
                if pods.evict(api, meta["namespace"], meta["name"], grace_period):
                    evicted[ref] = str(meta.get("uid"))
                pending.pop(ref)
            except pods.EvictionRefused as e:
                refusals[ref] = e.message
        if not pending or time.monotonic() >= deadline or ctx.cancel.is_set():
            break
        ctx.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    done.extend(f"node {node}: evicted {ref}" for ref in evicted)
    if refusals:
        for line in done:
            ctx.log(line)
        raise pods.EvictionRefused(
            f"drain of node {node}: {wording.counted(len(refusals), 'pod')} still refused "
            f"after {timeout:g}s: " + "; ".join(refusals.values()),
            hint=pods.PDB_HINT,
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
