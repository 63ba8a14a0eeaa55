"""``chaoskit.probes``' Kubernetes functions against the real API server of the k8s suite."""

from __future__ import annotations

import time

import pytest

from chaoskit import probes
from tests.k8s.clusters import Cluster

pytestmark = pytest.mark.k8s


def test_pods_ready_and_deployment_available(cluster: Cluster, namespace: str) -> None:
    selector = cluster.deployment(namespace, "web", replicas=2)
    ready = probes.kubernetes_pods_ready(namespace, label_selector=selector, equals=2)
    assert ready.ok, str(ready)
    assert isinstance(ready.output, dict) and ready.output["ratio"] == 1.0
    # The Deployment's status lags its pods by a controller sync: poll (bounded) until it catches up.
    deadline = time.monotonic() + 60
    available = probes.kubernetes_deployment_available("web", namespace, between=(2, 2))
    while not available.ok and time.monotonic() < deadline:
        time.sleep(0.5)
        available = probes.kubernetes_deployment_available("web", namespace, between=(2, 2))
    assert available.ok, str(available)
    too_many = probes.kubernetes_deployment_available("web", namespace, above=5)
    assert not too_many.ok
    assert too_many.check is not None and too_many.check.message == "expected available above 5, got 2"
