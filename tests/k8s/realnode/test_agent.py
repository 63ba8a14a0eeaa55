"""On scripts/kube-up's real node: the node agent deployed from operators/agent/ (its RBAC and
DaemonSet, in a namespace of the test's own, with the chaoskit image built for the node's dockerd)
and the kubernetes driver's in-pod faults reaching it through the API server's pod proxy: a pod's
container stressed (its memory cgroup charged, then freed), a process inside it killed by name.
Measured from the host, through the container's own cgroup. Fails under CI=true without a real
node; skipped locally."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chaoskit.agent import locating
from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import podfaults
from tests.k8s.clusters import Cluster, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.real_cluster]

ROOT = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


def _manifests(namespace: str, suffix: str) -> list[dict[str, Any]]:
    """operators/agent/'s objects, moved to ``namespace`` (cluster-wide names made unique)."""
    objects = []
    for name in ("rbac.yaml", "daemonset.yaml"):
        for obj in yaml.safe_load_all((ROOT / "operators/agent" / name).read_text()):
            meta = obj["metadata"]
            if "namespace" in meta:
                meta["namespace"] = namespace
            if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
                meta["name"] = f"{meta['name']}-{suffix}"
            for subject in obj.get("subjects") or []:
                subject["namespace"] = namespace
            if obj["kind"] == "ClusterRoleBinding":
                obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
            objects.append(obj)
    return objects


PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
}


@pytest.fixture
def agent(cluster: Cluster, namespace: str, chaoskit_image: str) -> Iterator[str]:
    """The agent DaemonSet running on the real node; yields its namespace."""
    suffix = uuid.uuid4().hex[:8]
    ledger = Path(f"/tmp/chaoskit-agent-{suffix}")
    api = cluster.api
    token = base64.b64encode(uuid.uuid4().hex.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chaoskit-agent-token"},
              "data": {"token": token}}  # fmt: skip
    api.post(f"/api/v1/namespaces/{namespace}/secrets", secret, what="test: agent token")
    made: list[str] = []
    for obj in _manifests(namespace, suffix):
        if obj["kind"] == "DaemonSet":
            pod = obj["spec"]["template"]["spec"]
            obj["spec"]["template"]["spec"] = cluster.real_pod_spec(pod)
            (container,) = pod["containers"]
            container["image"] = chaoskit_image
            container["imagePullPolicy"] = "Never"
            # scripts/kube-up's API server listens on the host's loopback only, where the
            # agent (host network) reaches it; the kubernetes Service's address leads nowhere.
            server = urlsplit(api.client.configuration.host)
            if server.hostname in {"127.0.0.1", "localhost"}:
                container["env"] += [
                    {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": str(server.port or 443)},
                ]
            # Its ledger where this test can remove it (the manifest's is /var/lib/chaoskit-agent).
            (state,) = [v for v in pod["volumes"] if v["name"] == "state"]
            state["hostPath"]["path"] = str(ledger)
        path = PATHS[obj["kind"]].format(ns=namespace)
        api.post(path, obj, what=f"test: {obj['kind']}")
        made.append(f"{path}/{obj['metadata']['name']}")
    try:
        wait_until(
            "the agent Ready on the real node",
            lambda: cluster.ready_pods(namespace, "app.kubernetes.io/name=chaoskit-agent"),
            timeout=90,
        )
        yield namespace
    finally:
        for path in reversed(made):
            if "/clusterrole" in path or "/daemonsets/" in path:
                api.delete(path, what="test: cleanup")
        # Its pods gone first: a running one would make its hostPath again.
        wait_until(
            "the agent's pods gone",
            lambda: not api.list(f"/api/v1/namespaces/{namespace}/pods", what="test",
                                 labelSelector="app.kubernetes.io/name=chaoskit-agent"),
            timeout=60,
        )  # fmt: skip
        shutil.rmtree(ledger, ignore_errors=True)


def _memory(pod: dict[str, Any]) -> int:
    (status,) = pod["status"]["containerStatuses"]
    pid = locating.container_pid(status["containerID"].partition("://")[2])
    assert pid is not None
    line = next(x for x in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if ":memory:" in x)
    stat = Path(f"/sys/fs/cgroup/memory{line.split(':', 2)[2]}/memory.stat").read_text()
    fields = dict(x.split() for x in stat.splitlines())
    return int(fields.get("total_rss", fields.get("rss", "0")))


def test_a_pod_is_stressed_and_a_process_in_it_killed_through_the_agent(
    cluster: Cluster, namespace: str, agent: str, ctx: contract.RunContext
) -> None:
    command = ["sh", "-c", "sleep 3600 & exec sleep 3601"]
    selector = cluster.deployment(
        namespace, "web", replicas=1, container=cluster.busybox("web", command), real=True
    )
    (pod,) = cluster.ready_pods(namespace, selector)
    common = {"namespace": namespace, "label_selector": selector, "agent_namespace": agent, "lease": 10}
    fault = podfaults.StressMemory()
    args = fault.args.model_validate({**common, "size": "64MiB"})
    (target,) = fault.targets(args, ctx)
    revert = fault.prepare(args, target, ctx)
    before = _memory(pod)
    fault.inject(args, target, revert, ctx)
    try:
        assert _memory(pod) - before >= 60 * MiB
    finally:
        assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
    wait_until("the pod's memory freed", lambda: _memory(pod) - before < 16 * MiB, timeout=20)

    kill = podfaults.KillProcess()
    kill_args = kill.args.model_validate({**common, "pattern": "sleep 3600"})
    (target,) = kill.targets(kill_args, ctx)
    kill.inject(kill_args, target, kill.prepare(kill_args, target, ctx), ctx)
    pid = locating.container_pid(pod["status"]["containerStatuses"][0]["containerID"].partition("://")[2])
    assert pid is not None

    def sleeps() -> list[str]:
        space = os.readlink(f"/proc/{pid}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.readlink(entry / "ns" / "pid") == space:
                    stat = (entry / "stat").read_text()
                    if stat[stat.rindex(")") + 2] != "Z":  # the killed one stays a zombie: unreaped
                        found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except OSError:
                continue
        return found

    wait_until("sleep 3600 killed, the main process spared", lambda: sleeps() == ["sleep 3601"], timeout=10)


def _nslookup(pid: int, name: str) -> str:
    """``nslookup`` run by the pod's own busybox, in its namespaces (what the pod's programs see)."""
    import subprocess

    done = subprocess.run(
        ["nsenter", "-t", str(pid), "-m", "-n", "-p", "-u", "--", "timeout", "3", "nslookup", name],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout + done.stderr


def test_a_chosen_name_resolves_to_the_chosen_address_inside_a_pod_until_reverted(
    cluster: Cluster, namespace: str, agent: str, ctx: contract.RunContext
) -> None:
    selector = cluster.deployment(
        namespace, "dns", replicas=1, container=cluster.busybox("dns", ["sleep", "3600"]), real=True
    )
    (pod,) = cluster.ready_pods(namespace, selector)
    pid = locating.container_pid(pod["status"]["containerStatuses"][0]["containerID"].partition("://")[2])
    assert pid is not None
    fault = podfaults.Dns()
    args = fault.args.model_validate(
        {"namespace": namespace, "label_selector": selector, "agent_namespace": agent, "lease": 10,
         "domains": ["pinned.chaoskit.test"], "answer": "10.9.8.7"}
    )  # fmt: skip
    assert "10.9.8.7" not in _nslookup(pid, "pinned.chaoskit.test")
    (target,) = fault.targets(args, ctx)
    revert = fault.prepare(args, target, ctx)
    fault.inject(args, target, revert, ctx)
    try:
        wait_until(
            "the pod's resolver answers 10.9.8.7",
            lambda: "10.9.8.7" in _nslookup(pid, "pinned.chaoskit.test"),
            timeout=15,
        )
    finally:
        assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
    assert "10.9.8.7" not in _nslookup(pid, "pinned.chaoskit.test")
