"""Reverting a run's leftovers in a cluster without the ledger, from the marks faults leave: nodes
it cordoned are uncordoned, its NetworkPolicies deleted, scaled workloads restored to the replica
count recorded in their annotation. Four list calls, then one change per leftover.

Scoped to runs that are not live (``RunContext.run_state``): a live run's faults are its own to
revert. With a run id, everything of that run is reverted (unless it is live here). Without one,
what belongs to a run whose ledger here is dead, and what has expired (``chaoskit.io/expires-at``
passed) of a run this machine knows nothing of: a run still going on elsewhere keeps its faults.
What is left alone is named, with why.
"""

from __future__ import annotations

from urllib.parse import quote

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import clusters, networkpolicies, nodes
from chaoskit.errors import ComponentMissing
from chaoskit.kube import apis, marks

JSON = apis.JSON


def _owner(meta: JSON) -> str:
    """The run id verbatim (the annotation), else as the label spells it."""
    annotated = (meta.get("annotations") or {}).get(marks.RUN_ID)
    return str(annotated or (meta.get("labels") or {}).get(marks.RUN_ID) or "")


def _why_not(obj: JSON, run_id: str | None, ctx: contract.RunContext) -> str | None:
    """Why the sweep must leave ``obj`` alone, or None when it may revert it."""
    meta = obj.get("metadata") or {}
    label = (meta.get("labels") or {}).get(marks.RUN_ID)
    if label is None:
        return "not chaoskit's"
    if run_id is not None and label != marks.label_value(run_id):
        return "another run's"
    owner = _owner(meta)
    state = ctx.run_state(owner)
    if state == "live":
        return f"run {owner} is live"
    if run_id is not None or state == "dead":
        return None
    if marks.is_expired(meta.get("annotations") or {}):
        return None
    return f"run {owner} has no ledger here and its mark has not expired (chaoskit recover {owner} --sweep)"


def sweep(run_id: str | None, ctx: contract.RunContext) -> list[str]:
    """Revert what run ``run_id`` (or any dead run, or any whose marks expired) left in the default
    cluster; never what a live run holds."""
    try:
        connection = clusters.connection(clusters.ClusterArgs(), ctx)
    except ComponentMissing:
        return []  # no cluster configured here: nothing of ours can be in one
    api = clusters.api(ctx, connection)
    selector = f"{marks.RUN_ID}={marks.label_value(run_id)}" if run_id else marks.RUN_ID
    done: list[str] = []
    left: list[tuple[str, str]] = []

    for node in api.list("/api/v1/nodes", what="listing marked nodes", labelSelector=selector):
        name = str(node["metadata"]["name"])
        if (why := _why_not(node, run_id, ctx)) is not None:
            left.append((f"node {name}", why))
            continue
        previously = (node["metadata"].get("annotations") or {}).get(marks.WAS_UNSCHEDULABLE) == "true"
        nodes.uncordon(api, name, previously)
        done.append(f"uncordoned node {name}" if not previously else f"unmarked node {name}")

    for policy in api.list(
        "/apis/networking.k8s.io/v1/networkpolicies",
        what="listing marked NetworkPolicies",
        labelSelector=selector,
    ):
        meta = policy["metadata"]
        if (why := _why_not(policy, run_id, ctx)) is not None:
            left.append((f"NetworkPolicy {meta['namespace']}/{meta['name']}", why))
            continue
        networkpolicies.delete_policy(api, str(meta["namespace"]), str(meta["name"]))
        done.append(f"deleted NetworkPolicy {meta['namespace']}/{meta['name']}")

    for plural, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet")):
        for workload in api.list(
            f"/apis/apps/v1/{plural}", what=f"listing marked {plural}", labelSelector=selector
        ):
            meta = workload["metadata"]
            ref = f"{kind} {meta['namespace']}/{meta['name']}"
            if (why := _why_not(workload, run_id, ctx)) is not None:
                left.append((ref, why))
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

    done.extend(f"left {ref} alone: {why}" for ref, why in left)
    return done
