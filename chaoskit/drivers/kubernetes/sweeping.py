"""Reverting a run's leftovers in a cluster without the ledger, from the marks faults leave: nodes
it cordoned are uncordoned, its NetworkPolicies deleted, scaled workloads restored to the replica
count recorded in their annotation. Four list calls, then one change per leftover.

With a run id, everything of that run is reverted. Without one, only what has expired
(``chaoskit.io/expires-at`` passed): a run still going on elsewhere keeps its faults.
"""

from __future__ import annotations

from urllib.parse import quote

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import connecting, evicting, faults, marks
from chaoskit.errors import ComponentMissing

JSON = connecting.JSON


def _mine(obj: JSON, run_id: str | None) -> bool:
    meta = obj.get("metadata") or {}
    label = (meta.get("labels") or {}).get(marks.RUN_ID)
    if label is None:
        return False
    if run_id is not None:
        return bool(label == marks.label_value(run_id))
    return marks.is_expired(meta.get("annotations") or {})


def sweep(run_id: str | None, ctx: contract.RunContext) -> list[str]:
    """Revert what run ``run_id`` (or any run whose marks expired) left in the default cluster."""
    try:
        connection = connecting.resolve(None)
    except ComponentMissing:
        return []  # no cluster configured here: nothing of ours can be in one
    api = connecting.api(ctx, connection)
    selector = f"{marks.RUN_ID}={marks.label_value(run_id)}" if run_id else marks.RUN_ID
    done: list[str] = []
    left: list[str] = []

    for node in api.list("/api/v1/nodes", what="listing marked nodes", labelSelector=selector):
        name = str(node["metadata"]["name"])
        if not _mine(node, run_id):
            left.append(f"node {name}")
            continue
        previously = (node["metadata"].get("annotations") or {}).get(marks.WAS_UNSCHEDULABLE) == "true"
        evicting.uncordon(api, name, previously)
        done.append(f"uncordoned node {name}" if not previously else f"unmarked node {name}")

    for policy in api.list(
        "/apis/networking.k8s.io/v1/networkpolicies",
        what="listing marked NetworkPolicies",
        labelSelector=selector,
    ):
        meta = policy["metadata"]
        if not _mine(policy, run_id):
            left.append(f"NetworkPolicy {meta['namespace']}/{meta['name']}")
            continue
        faults.delete_policy(api, str(meta["namespace"]), str(meta["name"]))
        done.append(f"deleted NetworkPolicy {meta['namespace']}/{meta['name']}")

    for plural, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet")):
        for workload in api.list(
            f"/apis/apps/v1/{plural}", what=f"listing marked {plural}", labelSelector=selector
        ):
            meta = workload["metadata"]
            ref = f"{kind} {meta['namespace']}/{meta['name']}"
            if not _mine(workload, run_id):
                left.append(ref)
                continue
            patch: JSON = {"metadata": marks.removal()}
            previous = (meta.get("annotations") or {}).get(marks.PREVIOUS_REPLICAS)
            if previous is not None and previous.isdigit():
                patch["spec"] = {"replicas": int(previous)}
            api.patch(
                f"/apis/apps/v1/namespaces/{quote(meta['namespace'])}/{plural}/{quote(meta['name'])}",
                patch,
                what=f"restoring {ref}",
            )
            done.append(
                f"restored {ref} to {previous} replicas" if previous is not None else f"unmarked {ref}"
            )

    done.extend(
        f"left {ref} alone: not expired yet (recover with its run id to revert it now)" for ref in left
    )
    return done
