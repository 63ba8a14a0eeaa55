"""The Kubernetes fixtures: the cluster in ``KUBECONFIG`` (scripts/kube-up's cluster, or any
disposable cluster such as kind), a simulated kubelet when that cluster has no nodes of its own
other than scripts/kube-up's real node, and one fresh namespace per test.

scripts/kube-up's real node (a kubelet that runs containers, labelled ``chaoskit.io/real-node``)
is tainted so that only pods asking for it land there: ``Cluster.deployment(..., real_node=True)``
and ``Cluster.real_pod_spec`` add what it takes. Everything else runs on the simulated nodes.

A plugin (``pytest_plugins`` in ``tests/conftest.py``), not a conftest: the Kubernetes suite and
the crash matrix both use ``cluster``, and a fixture defined once has one instance per session,
so one simulated kubelet.

The suite touches nodes (cordon, drain, zone outage): point it only at a cluster you can disturb.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaoskit.kube import apis, kubeconfigs
from tests.conftest import require
from tests.k8s import kubelet

HOW = "run scripts/test (it runs scripts/kube-up), or point KUBECONFIG at a disposable cluster"
SIM_NODES = {"sim-a1": "zone-a", "sim-a2": "zone-a", "sim-b1": "zone-b", "sim-c1": "zone-c"}
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
REAL_LABEL = "chaoskit.io/real-node"
REAL_SCHEDULER = "chaoskit-real-node"
"""The scheduler profile scripts/lib/kube/node-up.sh runs: it places pods on the real node only."""
BUSYBOX_IMAGE = "chaoskit-test/busybox:latest"
"""Imported into the real node's dockerd by scripts/lib/kube/node-up.sh; nothing can be pulled."""
REAL_HOW = "run scripts/kube-up (it starts a real node), or point KUBECONFIG at a cluster with real kubelets"


def wait_until(what: str, check: Callable[[], Any], timeout: float = 90.0, interval: float = 0.3) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@dataclass
class Cluster:
    api: apis.Api
    simulated: bool
    """True when the nodes are the simulated kubelet's (scripts/kube-up's control plane)."""
    real_node: str | None = None
    """scripts/kube-up's real node, when it runs."""

    @property
    def runs_containers(self) -> bool:
        """Whether a test's pods can really run: a real node, or a cluster of real kubelets."""
        return self.real_node is not None or not self.simulated

    def real_pod_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` made to run on real kubelets: on scripts/kube-up's cluster, pinned to its real
        node (its scheduler, toleration and label); on another real cluster, as it is. Fails the
        test (CI) or skips it (locally) when nothing runs containers."""
        require("a node that runs containers", self.runs_containers, REAL_HOW)
        if self.real_node is None:
            return spec
        return {
            **spec,
            "schedulerName": REAL_SCHEDULER,
            "nodeSelector": {REAL_LABEL: "true"},
            "tolerations": [{"key": REAL_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        }

    def busybox(self, name: str, command: list[str]) -> dict[str, Any]:
        """A busybox container: the image imported on the real node (never pulled), or busybox
        from a registry on another real cluster."""
        if self.real_node is not None:
            return {"name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never", "command": command}
        return {"name": name, "image": "busybox:1.36", "command": command}

    def ready_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        pods = self.api.list(f"/api/v1/namespaces/{namespace}/pods", what="test", labelSelector=selector)
        return [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions", [])
            )
        ]

    def deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 3,
        container: dict[str, Any] | None = None,
        real: bool = False,
    ) -> str:
        """A Deployment (of pause containers unless ``container`` says otherwise) labelled
        ``app=<name>``; waits until all its pods are Ready. ``real``: its pods really run (see
        ``real_pod_spec``)."""
        labels = {"app": name}
        spec: dict[str, Any] = {
            "terminationGracePeriodSeconds": 1,
            "containers": [container or {"name": "pause", "image": PAUSE_IMAGE}],
        }
        if real:
            spec = self.real_pod_spec(spec)
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": spec,
                },
            },
        }
        self.api.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", body, what="test: deployment")
        wait_until(
            f"{replicas} Ready pods of {name}",
            lambda: len(self.ready_pods(namespace, f"app={name}")) == replicas or None,
        )
        return f"app={name}"

    def node(self, name: str) -> dict[str, Any]:
        return self.api.get(f"/api/v1/nodes/{name}", what="test: node")

    def schedulable_nodes(self) -> list[dict[str, Any]]:
        nodes = self.api.list("/api/v1/nodes", what="test: nodes")
        return [
            n
            for n in nodes
            if not n["spec"].get("unschedulable")
            and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
        ]

    def pdb(self, namespace: str, name: str, selector: dict[str, str], min_available: int) -> str:
        """A PodDisruptionBudget, in policy/v1 where the server has it (v1beta1 on 1.20); waits
        until the disruption controller has computed its status, so evictions are judged by it.
        Returns its API path."""
        groups = self.api.get("/apis/policy", what="test: discovery")
        versions = {v["version"] for v in groups.get("versions", [])}
        version = "v1" if "v1" in versions else "v1beta1"
        body = {
            "apiVersion": f"policy/{version}",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": selector}},
        }
        path = f"/apis/policy/{version}/namespaces/{namespace}/poddisruptionbudgets"
        self.api.post(path, body, what="test: pdb")
        wait_until(
            "the PodDisruptionBudget's status",
            lambda: (self.api.get(f"{path}/{name}", what="test").get("status") or {}).get(
                "observedGeneration"
            ),
        )
        return f"{path}/{name}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    available, why = False, "KUBECONFIG is not set"
    api: apis.Api | None = None
    if os.environ.get("KUBECONFIG"):
        try:
            api = apis.open_api(kubeconfigs.resolve())
            api.get("/version", what="checking the API server")
            available = True
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
    require("kubernetes API server", available, f"{why}; {HOW}")
    assert api is not None
    nodes = api.list("/api/v1/nodes", what="listing nodes")
    ours = (kubelet.SIM_LABEL, REAL_LABEL)
    others = [n for n in nodes if not set(ours) & set(n["metadata"].get("labels") or {})]
    real_node = next(
        (n["metadata"]["name"] for n in nodes if REAL_LABEL in (n["metadata"].get("labels") or {})), None
    )
    sim: kubelet.SimulatedKubelet | None = None
    if not others:
        sim = kubelet.SimulatedKubelet(api.client, SIM_NODES).start()
    try:
        yield Cluster(api=api, simulated=sim is not None, real_node=real_node)
    finally:
        if sim is not None:
            sim.stop()
            # Without their kubelet the nodes would go NotReady; the pod garbage collector removes
            # pods left on nodes that no longer exist.
            for name in SIM_NODES:
                with contextlib.suppress(apis.ApiError):
                    api.delete(f"/api/v1/nodes/{name}", what="removing a simulated node")
        api.client.close()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it (and every uncordoned node restored)."""
    name = f"ck-{request.node.name[5:30].replace('_', '-').strip('-').lower()}-{uuid.uuid4().hex[:5]}"
    cluster.api.post("/api/v1/namespaces", {"metadata": {"name": name}}, what="test: namespace")
    # Pods can't be admitted before the controllers made the namespace's service account.
    wait_until(
        "the namespace's default service account",
        lambda: cluster.api.list(f"/api/v1/namespaces/{name}/serviceaccounts", what="test"),
    )
    yield name
    cluster.api.delete(f"/api/v1/namespaces/{name}", what="test: cleanup")
