"""Each kubernetes fault and probe through the driver contract (targets → prepare → inject →
revert, as the engine calls them) against a real API server and controllers."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.drivers.kubernetes import (
    apiresources,
    clusterevents,
    clusters,
    networkpolicies,
    nodes,
    pods,
    sweeps,
    workloads,
)
from chaoskit.engine import journals, planning
from chaoskit.kube import kubeconfigs, marks
from chaoskit.spec import reading
from tests.k8s import running
from tests.k8s.clusters import Cluster, wait_until

pytestmark = pytest.mark.k8s


R = TypeVar("R", bound=contract.Revert)


def ledgered(fault: contract.Fault[Any, R], revert: R) -> R:
    """``revert`` as ``recover`` reads it back from the ledger: dumped, JSON text, validated."""
    back = contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(revert))))
    assert isinstance(back, fault.revert_type) and back == revert
    return back


def inject(
    fault: contract.Fault[Any, R], with_: dict[str, Any], ctx: contract.RunContext
) -> list[tuple[contract.Target, R]]:
    """What the engine does for one fault step: validate, resolve targets, prepare (written ahead),
    inject; the revert data returned is what the ledger gives back."""
    args = fault.args.model_validate(with_)
    applied = []
    for target in fault.targets(args, ctx):
        data = ledgered(fault, fault.prepare(args, target, ctx))
        applied.append((target, ledgered(fault, fault.inject(args, target, data, ctx))))
    return applied


def probe(p: contract.Probe[Any], with_: dict[str, Any], ctx: contract.RunContext) -> Any:
    return p.run(p.args.model_validate(with_), ctx)


def test_a_pdb_makes_eviction_refuse_with_a_clear_message_per_pod(
    cluster: Cluster, namespace: str, ctx: contract.RunContext, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    cluster.pdb(namespace, "web", {"app": "web"}, min_available=2)
    fault = pods.PodsEvict()
    args = fault.args.model_validate({"namespace": namespace, "label_selector": selector})
    chosen = sorted(p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector))

    # Every chosen pod is judged (a server-side dry run) before any is evicted: all refusals, one each.
    with pytest.raises(pods.EvictionRefused) as caught:
        fault.targets(args, ctx)
    error = caught.value
    assert "2 of 2 chosen pods can't be evicted now; nothing was evicted" in error.message
    for pod in chosen:
        assert f"pod {namespace}/{pod}: eviction refused (429" in error.message
    assert error.message.count("disruption budget") == 2
    assert "PodDisruptionBudget" in (error.hint or "")

    # The same through `chaoskit run`: an error naming both pods, and nothing evicted.
    experiment = tmp_path / "evict.yaml"
    experiment.write_text(
        "title: evict behind a budget\n"
        "method:\n"
        "  - name: evict web\n"
        "    fault: kubernetes.pods.evict\n"
        f"    with: {{namespace: {namespace}, label_selector: '{selector}'}}\n"
    )
    journal = running.run(experiment, {}, tmp_path / "state", tmp_path / "journal.json")
    assert journal.verdict is journals.Verdict.ERROR
    text = journal.model_dump_json()
    assert all(f"pod {namespace}/{pod}: eviction refused" in text for pod in chosen), text
    assert sorted(p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)) == chosen


def test_evictions_that_use_up_a_budget_wait_for_it_to_return_as_drain_does(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    pdb = cluster.pdb(namespace, "web", {"app": "web"}, min_available=1)  # one disruption at a time

    def budget() -> int:
        return int((cluster.api.get(pdb, what="test").get("status") or {}).get("disruptionsAllowed", 0))

    def ready() -> set[str]:
        return {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}

    # Each eviction alone is allowed, so both pass the judging; the first then uses up the budget.
    # With timeout 0s the second is refused at once, named, and saying it did not wait.
    first = ready()
    with pytest.raises(pods.EvictionRefused, match=r"eviction refused \(429.*still refused after 0s"):
        inject(pods.PodsEvict(), {"namespace": namespace, "label_selector": selector, "timeout": "0s"}, ctx)
    assert len(first - ready()) == 1  # exactly one was evicted

    # By default it waits until the first replacement is ready and the budget is back, like drain.
    wait_until("two ready pods and a budget of one again", lambda: len(ready()) == 2 and budget() == 1)
    second = ready()
    applied = inject(pods.PodsEvict(), {"namespace": namespace, "label_selector": selector}, ctx)
    assert len(applied) == 2
    wait_until("two new ready pods", lambda: len(now := ready()) == 2 and not now & second)


def test_a_drain_blocked_by_a_pdb_names_the_pod_and_leaves_the_node_cordoned_for_revert(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    cluster.pdb(namespace, "web", {"app": "web"}, min_available=2)
    node = sorted(p["spec"]["nodeName"] for p in cluster.ready_pods(namespace, selector))[0]
    fault = nodes.NodeDrain()
    args = fault.args.model_validate({"names": [node], "timeout": "3s"})
    (target,) = fault.targets(args, ctx)
    data = ledgered(fault, fault.prepare(args, target, ctx))
    try:
        with pytest.raises(pods.EvictionRefused, match=rf"drain of node {node}: \d pods? still refused"):
            fault.inject(args, target, data, ctx)
        assert cluster.node(node)["spec"].get("unschedulable") is True
        assert fault.revert(data, ctx) == contract.RevertOutcome.REVERTED
        assert not cluster.node(node)["spec"].get("unschedulable")
        assert fault.revert(data, ctx) == contract.RevertOutcome.ALREADY_CLEAN  # idempotent
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


def test_cordon_keeps_a_node_cordoned_that_was_cordoned_before(
    cluster: Cluster, ctx: contract.RunContext
) -> None:
    node = sorted(n["metadata"]["name"] for n in cluster.schedulable_nodes())[-1]
    cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}}, what="test: pre-cordon")
    try:
        ((_target, data),) = inject(nodes.NodeCordon(), {"names": [node]}, ctx)
        assert data.was_unschedulable is True
        labels = cluster.node(node)["metadata"]["labels"]
        assert labels[marks.RUN_ID] == marks.label_value(ctx.run_id)
        nodes.NodeCordon().revert(data, ctx)
        after = cluster.node(node)
        assert after["spec"].get("unschedulable") is True  # the operator's own cordon stays
        assert marks.RUN_ID not in after["metadata"]["labels"]
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


def test_a_drain_of_a_node_a_cordon_holds_is_refused_and_the_cordon_still_reverts(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Both set spec.unschedulable: stacked, the drain would record "was cordoned" and keep it so.
    node = sorted(n["metadata"]["name"] for n in cluster.schedulable_nodes())[0]
    experiment = tmp_path / "stack.yaml"
    experiment.write_text(
        "title: cordon, then drain the same node\n"
        "method:\n"
        f"  - {{name: cordon, fault: kubernetes.node.cordon, with: {{names: [{node}]}}}}\n"
        f"  - {{name: drain, fault: kubernetes.node.drain, with: {{names: [{node}]}}}}\n"
    )
    try:
        journal = running.run(experiment, {}, tmp_path / "state", tmp_path / "journal.json")
        assert journal.verdict is journals.Verdict.ERROR
        (error,) = journal.errors
        assert error.step == "drain" and "already held by an earlier step" in error.message
        assert not cluster.node(node)["spec"].get("unschedulable")
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


@pytest.mark.parametrize("kind", ["deployment", "statefulset"])
def test_scale_reverts_to_the_replica_count_recorded_before(
    cluster: Cluster, namespace: str, ctx: contract.RunContext, kind: str
) -> None:
    if kind == "deployment":
        cluster.deployment(namespace, "web", replicas=3)
        fault: workloads.WorkloadScale = workloads.DeploymentScale()
    else:
        statefulset(cluster, namespace, "db", replicas=3)
        fault = workloads.StatefulSetScale()
    name = "web" if kind == "deployment" else "db"
    path = f"/apis/apps/v1/namespaces/{namespace}/{kind}s/{name}"
    ((_, data),) = inject(fault, {"namespace": namespace, "name": name, "replicas": 1}, ctx)
    assert data.replicas == 3
    scaled = cluster.api.get(path, what="test")
    assert scaled["spec"]["replicas"] == 1
    assert scaled["metadata"]["annotations"][marks.PREVIOUS_REPLICAS] == "3"
    wait_until("one pod left", lambda: len(cluster.ready_pods(namespace, f"app={name}")) == 1)

    assert fault.revert(data, ctx) == contract.RevertOutcome.REVERTED
    restored = cluster.api.get(path, what="test")
    assert restored["spec"]["replicas"] == 3
    assert marks.RUN_ID not in (restored["metadata"].get("labels") or {})
    wait_until("three pods again", lambda: len(cluster.ready_pods(namespace, f"app={name}")) == 3)
    assert fault.revert(data, ctx) == contract.RevertOutcome.ALREADY_CLEAN


def statefulset(cluster: Cluster, namespace: str, name: str, replicas: int) -> None:
    labels = {"app": name}
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}],
                },
            },
        },
    }
    cluster.api.post(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", body, what="test: statefulset")
    wait_until(
        f"{replicas} Ready pods of {name}",
        lambda: len(cluster.ready_pods(namespace, f"app={name}")) == replicas,
    )


def test_rollout_restart_replaces_every_pod_and_the_rollout_probe_sees_it_complete(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    before = {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}
    inject(workloads.DeploymentRestart(), {"namespace": namespace, "name": "web"}, ctx)
    # Never reverted, so no chaoskit marks that only a sweep would remove; kubectl's annotation only.
    deployment = cluster.api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web", what="test")
    meta = deployment["metadata"]
    assert not set(marks.ALL) & {*(meta.get("labels") or {}), *(meta.get("annotations") or {})}
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in template

    done = probe(workloads.RolloutComplete(), {"namespace": namespace, "name": "web", "wait": "90s"}, ctx)

    assert done == {"complete": True, "reason": "complete"}
    after = wait_until(
        "only new pods",
        lambda: (
            (names := {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)})
            and len(names) == 2
            and not names & before
            and names
        ),
    )
    assert after
    available = probe(workloads.DeploymentAvailable(), {"namespace": namespace, "name": "web"}, ctx)
    assert available["available"] == 2 and available["available_condition"] is True


def test_pods_ready_counts_ready_pods_and_waits_for_min_ready(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    counts = probe(pods.PodsReady(), {"namespace": namespace, "label_selector": selector}, ctx)
    assert counts["ready"] == 3 and counts["total"] == 3 and counts["ratio"] == 1.0
    inject(
        pods.PodsDelete(),
        {"namespace": namespace, "label_selector": selector, "count": 1, "grace_period": 0},
        ctx,
    )
    healed = probe(
        pods.PodsReady(),
        {"namespace": namespace, "label_selector": selector, "min_ready": 3, "wait": "60s"},
        ctx,
    )
    assert healed["ready"] == 3


def test_the_resource_probe_returns_any_object_as_json(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    cluster.api.post(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "settings", "labels": {"tier": "x"}}, "data": {"mode": "strict"}},
        what="test",
    )
    one = probe(
        apiresources.Resource(), {"kind": "ConfigMap", "name": "settings", "namespace": namespace}, ctx
    )
    assert one["data"] == {"mode": "strict"}
    listed = probe(
        apiresources.Resource(),
        {"kind": "ConfigMap", "namespace": namespace, "label_selector": "tier=x"},
        ctx,
    )
    assert listed["count"] == 1
    with pytest.raises(errors.DriverError, match="has no kind 'Gizmo'"):
        probe(apiresources.Resource(), {"kind": "Gizmo", "namespace": namespace}, ctx)


def test_events_reports_warnings_for_the_selected_objects_since_the_run_started(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=1)
    (pod,) = cluster.ready_pods(namespace, selector)
    ctx.started_at = time.time()

    def event(name: str, kind: str, when: datetime, obj: str = pod["metadata"]["name"]) -> None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": obj, "namespace": namespace},
            "type": kind,
            "reason": "BackOff",
            "message": f"{name} happened",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": "chaoskit-test"},
        }
        cluster.api.post(f"/api/v1/namespaces/{namespace}/events", body, what="test: event")

    now = datetime.now(UTC)
    event("new-warning", "Warning", now)
    event("old-warning", "Warning", datetime(2020, 1, 1, tzinfo=UTC))
    event("normal", "Normal", now)
    event("other-pod", "Warning", now, obj="someone-else")

    found = probe(clusterevents.Events(), {"namespace": namespace, "label_selector": selector}, ctx)

    assert found["count"] == 1
    assert found["events"][0]["message"] == "new-warning happened"


def test_partition_policy_selects_the_pods_and_reverts_idempotently(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    fault = networkpolicies.NetworkPartition()
    ((target, data),) = inject(
        fault,
        {
            "namespace": namespace,
            "label_selector": selector,
            "direction": "egress",
            "allow": [{"cidr": "10.0.0.0/8"}],
        },
        ctx,
    )
    assert sorted(target.detail["pods"].split(",")) == sorted(
        p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)
    )
    policy = cluster.api.get(
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{target.name}", what="test"
    )
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]
    assert policy["metadata"]["annotations"][marks.EXPIRES_AT]
    assert fault.revert(data, ctx) == contract.RevertOutcome.REVERTED
    assert fault.revert(data, ctx) == contract.RevertOutcome.ALREADY_CLEAN


def test_max_targets_refuses_naming_the_number_and_nothing_is_deleted(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    before = {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}
    with pytest.raises(errors.TargetError, match=r"3 pods would be hit, more than max_targets=2"):
        inject(pods.PodsDelete(), {"namespace": namespace, "label_selector": selector, "max_targets": 2}, ctx)
    with pytest.raises(
        errors.TargetError, match=r"2 of 3 pods \(66.7%\) would be hit, more than max_percent=50"
    ):
        inject(
            pods.PodsDelete(),
            {"namespace": namespace, "label_selector": selector, "count": 2, "max_percent": 50},
            ctx,
        )
    assert {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)} == before


def test_protected_namespaces_are_refused_unless_allowed(
    cluster: Cluster, ctx: contract.RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = pods.PodsDelete()
    with pytest.raises(ValueError, match=r"namespace kube-system is protected; add allow_protected: true"):
        fault.args.model_validate({"namespace": "kube-system", "label_selector": "app=x"})
    # The default namespace of a kubeconfig context is checked at run time too.
    monkeypatch.setenv("CHAOSKIT_PROTECTED_NAMESPACES", "default, payments")
    with pytest.raises(errors.TargetError, match="namespace default is protected"):
        fault.targets(fault.args.model_validate({"label_selector": "app=none"}), ctx)
    allowed = fault.args.model_validate(
        {"namespace": "kube-system", "label_selector": "app=none", "allow_protected": True}
    )
    with pytest.raises(errors.TargetError, match="no pods matched"):
        fault.targets(allowed, ctx)


def sweep(run_id: str | None) -> list[str]:
    """What ``chaoskit recover --sweep`` does for this driver, in a context of its own."""
    with contextlib.closing(contract.RunContext(run_id=run_id or "recover")) as recover_ctx:
        return sweeps.sweep(run_id, recover_ctx)


def test_sweep_reverts_a_vanished_runs_leftovers_without_the_ledger(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    node = sorted(n["metadata"]["name"] for n in cluster.schedulable_nodes())[0]
    try:
        inject(networkpolicies.NetworkPartition(), {"namespace": namespace, "label_selector": selector}, ctx)
        other = contract.RunContext(run_id=f"other-{uuid.uuid4().hex[:8]}")
        with contextlib.closing(other):
            inject(
                networkpolicies.NetworkPartition(),
                {"namespace": namespace, "label_selector": selector},
                other,
            )
        inject(nodes.NodeCordon(), {"names": [node]}, ctx)
        inject(workloads.DeploymentScale(), {"namespace": namespace, "name": "web", "replicas": 0}, ctx)

        # Without a run id only expired marks are swept: these expire in an hour.
        kept = sweep(None)
        assert any(f"left node {node} alone" in line for line in kept)
        assert cluster.node(node)["spec"].get("unschedulable") is True

        done = sweep(ctx.run_id)

        assert f"uncordoned node {node}" in done
        assert any(line.startswith(f"restored Deployment {namespace}/web to 2") for line in done)
        assert not cluster.node(node)["spec"].get("unschedulable")
        deployment = cluster.api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web", what="test")
        assert deployment["spec"]["replicas"] == 2
        policies = cluster.api.list(
            f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", what="t"
        )
        assert [p["metadata"]["labels"][marks.RUN_ID] for p in policies] == [other.run_id]  # not ours: kept
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


def test_sweep_without_a_run_id_reverts_what_has_expired(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=1)
    inject(
        networkpolicies.NetworkPartition(),
        {"namespace": namespace, "label_selector": selector, "expires_after": "0s"},
        ctx,
    )
    done = sweep(None)
    assert any(line.startswith(f"deleted NetworkPolicy {namespace}/chaoskit-partition-") for line in done)
    assert (
        cluster.api.list(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", what="t") == []
    )


def test_the_dry_run_lists_exactly_the_pods_and_nodes_and_touches_nothing(
    cluster: Cluster, namespace: str, ctx: contract.RunContext, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    ours = {f"{namespace}/{p['metadata']['name']}" for p in cluster.ready_pods(namespace, selector)}
    node = sorted(p["spec"]["nodeName"] for p in cluster.ready_pods(namespace, selector))[0]
    experiment = tmp_path / "dry.yaml"
    experiment.write_text(
        f"""
title: dry run
method:
  - name: delete all
    fault: kubernetes.pods.delete
    with: {{namespace: {namespace}, label_selector: "{selector}", all: true}}
  - name: cordon one
    fault: kubernetes.node.cordon
    with: {{names: [{node}]}}
  - name: drain it
    fault: kubernetes.node.drain
    with: {{names: [{node}]}}
"""
    )
    planned = planning.plan(reading.load(experiment), registry.load())
    touches = planning.dry_run(planned, ctx)
    shown = subprocess.run(
        [sys.executable, "-m", "chaoskit", "run", str(experiment), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert {t.id for t in touches[0].targets} == ours
    assert [t.id for t in touches[1].targets] == [node]
    on_node = {p for p in ours if p.split("/")[1] in node_pods(cluster, namespace, selector, node)}
    (drained,) = touches[2].targets
    evicts = {ref for ref in drained.detail["evicts"].split(",") if ref.startswith(f"{namespace}/")}
    assert on_node and evicts == on_node  # exactly our pods on that node
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert all(pod.split("/")[1] in shown.stdout for pod in ours), shown.stdout
    assert node in shown.stdout
    assert len(cluster.ready_pods(namespace, selector)) == 3
    assert not cluster.node(node)["spec"].get("unschedulable")


def node_pods(cluster: Cluster, namespace: str, selector: str, node: str) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in cluster.ready_pods(namespace, selector)
        if p["spec"]["nodeName"] == node
    }


def test_deleting_many_pods_is_one_list_then_one_delete_each(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=6)
    api = clusters.api(ctx, kubeconfigs.resolve())
    calls: list[str] = []
    original = api.client.call_api

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return original(method, url, *args, **kwargs)

    api.client.call_api = counting
    inject(
        pods.PodsDelete(),
        {"namespace": namespace, "label_selector": selector, "count": 5, "grace_period": 0},
        ctx,
    )
    assert calls.count("GET") == 1
    assert calls.count("DELETE") == 5
