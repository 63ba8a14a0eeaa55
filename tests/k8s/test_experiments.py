"""End to end on a real API server and controllers: the ``experiments/k8s-*.yaml`` files run as a
user runs them, and what they did is checked in the cluster and in the journal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from chaoskit.engine import journals, phases
from chaoskit.kube import marks
from tests.k8s import running
from tests.k8s.clusters import Cluster, wait_until

pytestmark = pytest.mark.k8s
EXPERIMENTS = running.ROOT / "experiments"


def node_of_some_pod(cluster: Cluster, namespace: str, selector: str) -> str:
    pods = cluster.ready_pods(namespace, selector)
    return str(sorted(p["spec"]["nodeName"] for p in pods)[0])


def test_deleting_two_pods_heals_within_recovery_and_the_time_is_journaled(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    before = {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}

    journal = running.run(
        EXPERIMENTS / "k8s-pod-delete.yaml",
        {"namespace": namespace, "selector": selector},
        tmp_path / "state",
        tmp_path / "journal.json",
    )

    assert journal.verdict == journals.Verdict.COMPLETED, journal.reason
    deleted = {f.target.name for f in journal.faults}
    assert len(deleted) == 2 and deleted <= before
    assert journal.recovery is not None and journal.recovery.met
    assert journal.recovery.measured is not None and 0 <= journal.recovery.measured <= 60
    after = {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}
    assert len(after) == 3 and not (after & deleted)


def test_a_drained_node_loses_its_pods_to_other_nodes_and_is_uncordoned_after(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    node = node_of_some_pod(cluster, namespace, selector)
    try:
        journal = running.run(
            EXPERIMENTS / "k8s-node-drain.yaml",
            {"namespace": namespace, "selector": selector, "node": node},
            tmp_path / "state",
            tmp_path / "journal.json",
        )
        assert journal.verdict == journals.Verdict.COMPLETED, journal.reason
        assert [f.target.name for f in journal.faults] == [node]
        assert all(f.revert == journals.RevertStatus.REVERTED for f in journal.faults)
        during = [c for c in journal.checks if c.phase == phases.Phase.METHOD]
        assert during and all(c.ok for c in during), [c.message for c in during]
        pods = cluster.ready_pods(namespace, selector)
        assert len(pods) == 3 and all(p["spec"]["nodeName"] != node for p in pods)
        restored = cluster.node(node)
        assert not restored["spec"].get("unschedulable")
        assert marks.RUN_ID not in (restored["metadata"].get("labels") or {})
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


def test_the_partition_policy_exists_during_the_fault_and_is_gone_after(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)

    journal = running.run(
        EXPERIMENTS / "k8s-network-partition.yaml",
        {"namespace": namespace, "selector": selector},
        tmp_path / "state",
        tmp_path / "journal.json",
    )

    assert journal.verdict == journals.Verdict.COMPLETED, journal.reason
    during = [c for c in journal.checks if c.phase == phases.Phase.METHOD]
    assert [c.ok for c in during] == [True]  # the probe saw exactly one chaoskit policy
    assert [f.revert for f in journal.faults] == [journals.RevertStatus.REVERTED]
    left = cluster.api.list(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", what="test")
    assert left == []


def test_zone_outage_drains_the_zone_and_the_deployment_is_whole_in_the_others(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    zones: dict[str, set[str]] = {}
    for node in cluster.schedulable_nodes():
        zone = (node["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone")
        if zone:
            zones.setdefault(zone, set()).add(node["metadata"]["name"])
    if len(zones) < 2:
        pytest.skip("needs schedulable nodes in at least two zones (topology.kubernetes.io/zone)")
    zone = sorted(zones, key=lambda z: (-len(zones[z]), z))[0]
    try:
        journal = running.run(
            EXPERIMENTS / "k8s-zone-outage.yaml",
            {"namespace": namespace, "selector": selector, "zone": zone},
            tmp_path / "state",
            tmp_path / "journal.json",
        )
        assert journal.verdict == journals.Verdict.COMPLETED, journal.reason
        assert {f.target.name for f in journal.faults} == zones[zone]
        during = [c for c in journal.checks if c.phase == phases.Phase.METHOD]
        assert during and all(c.ok for c in during)
        for name in zones[zone]:
            assert not cluster.node(name)["spec"].get("unschedulable")
    finally:
        for name in zones[zone]:
            cluster.api.patch(
                f"/api/v1/nodes/{name}", {"spec": {"unschedulable": False}}, what="test cleanup"
            )


@pytest.mark.parametrize("ledger", ["kept", "lost"])
def test_sigkill_of_the_runner_mid_drain_then_recover_uncordons(
    cluster: Cluster, namespace: str, tmp_path: Path, ledger: str
) -> None:
    """With the ledger, ``chaoskit recover`` reverts from it; with the ledger lost (the laptop is
    gone), ``chaoskit recover --sweep RUN_ID`` finds the node by chaoskit's label instead."""
    selector = cluster.deployment(namespace, "web", replicas=3)
    node = node_of_some_pod(cluster, namespace, selector)
    # A budget that allows no disruption keeps the drain retrying: the runner is mid-drain.
    cluster.pdb(namespace, "web", {"app": "web"}, min_available=3)
    state = tmp_path / "state"
    argv = running.run_argv(
        EXPERIMENTS / "k8s-node-drain.yaml",
        {"namespace": namespace, "selector": selector, "node": node},
        tmp_path / "journal.json",
    )
    runner = subprocess.Popen(
        argv,
        cwd=running.ROOT,
        env={**os.environ, "CHAOSKIT_STATE_DIR": str(state)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        labelled = wait_until(
            f"the runner to cordon {node}",
            lambda: (cluster.node(node)["metadata"].get("labels") or {}).get(marks.RUN_ID),
            timeout=60,
        )
        time.sleep(1.0)  # inside the eviction retries
        assert runner.poll() is None, "the runner ended before it could be killed"
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        assert cluster.node(node)["spec"].get("unschedulable") is True

        if ledger == "kept":
            done = running.recover(state, None)
        else:
            shutil.rmtree(state)
            run_id = (cluster.node(node)["metadata"].get("annotations") or {})[marks.RUN_ID]
            done = running.recover(state, run_id, sweep=True)

        assert done.returncode == 0, done.stdout + done.stderr
        if ledger == "lost":
            assert f"uncordoned node {node}" in done.stdout
        restored = cluster.node(node)
        assert not restored["spec"].get("unschedulable"), done.stdout
        assert marks.RUN_ID not in (restored["metadata"].get("labels") or {})
        assert labelled
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, what="test cleanup")


def test_run_context_picks_the_context_of_steps_that_name_none(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """``chaoskit run --context`` reaches the driver through the run's settings (no environment
    variable is written): with a kubeconfig whose current context points nowhere, the run works only
    with ``--context``, and its pods are found in that context's namespace."""
    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    user = current["context"]["user"]
    config["contexts"] += [
        {"name": "chaoskit-alt", "context": {**current["context"], "namespace": namespace}},
        {"name": "nowhere", "context": {"cluster": "nowhere", "user": user}},
    ]
    config["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}})
    config["current-context"] = "nowhere"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.touch(mode=0o600)
    kubeconfig.write_text(yaml.safe_dump(config))
    selector = cluster.deployment(namespace, "web", replicas=2)
    experiment = tmp_path / "context.yaml"
    experiment.write_text(
        "title: the run's context\n"
        "method:\n"
        "  - name: ready\n"
        "    probe: kubernetes.pods.ready\n"
        f"    with: {{label_selector: '{selector}'}}\n"
        "    expect: {path: ready, equals: 2}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CHAOSKIT_KUBE_CONTEXT"}
    env.update(KUBECONFIG=str(kubeconfig), CHAOSKIT_STATE_DIR=str(tmp_path / "state"))

    def run(*extra: str) -> journals.Journal:
        journal = tmp_path / f"journal{len(extra)}.json"
        argv = [*running.run_argv(experiment, {}, journal), *extra]
        subprocess.run(argv, check=False, cwd=running.ROOT, env=env, capture_output=True, timeout=120)
        return journals.Journal.model_validate_json(journal.read_text())

    assert run("--context", "chaoskit-alt").verdict is journals.Verdict.COMPLETED
    assert run().verdict is not journals.Verdict.COMPLETED  # the current context: nothing answers
