"""Crash safety of every reversible kubernetes fault the test cluster can show (deployment and
statefulset scale, node cordon and drain, network partition): the runner is SIGKILLed while the
fault is in place; after ``chaoskit recover`` the cluster is as it was, read through the driver's
own probes (``kubernetes.resource``, ``kubernetes.deployment.available``, ``kubernetes.pods.ready``).

Node faults touch shared nodes, so their moments run one at a time; the others run side by side,
each on its own workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaoskit.drivers import contract, registry
from chaoskit.kube import marks
from tests.integration.crash import killing
from tests.k8s.clusters import Cluster, wait_until
from tests.k8s.test_faults import statefulset

pytestmark = pytest.mark.k8s


def probe(probe_name: str, **with_: Any) -> Any:
    found = registry.load().probes[probe_name]
    ctx = contract.RunContext(run_id="observer")
    try:
        return found.run(found.args.model_validate(with_), ctx)
    finally:
        ctx.close()


def resource(kind: str, api_version: str = "v1", **with_: Any) -> Any:
    return probe("kubernetes.resource", kind=kind, api_version=api_version, **with_)


def experiment(fault: str, **with_: Any) -> str:
    args = ", ".join(
        f"{key}: {value!r}" if isinstance(value, str) else f"{key}: {value}" for key, value in with_.items()
    )
    return f"title: {fault} then crash\nmethod:\n  - fault: {fault}\n    with: {{{args}}}\n    duration: 1h\n"


def unmarked(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return not any(
        key in marks.ALL for key in [*(meta.get("labels") or {}), *(meta.get("annotations") or {})]
    )


@pytest.mark.parametrize("kind", ["deployment", "statefulset"])
def test_scale_is_recovered_after_a_sigkill_at_any_moment(
    cluster: Cluster, namespace: str, tmp_path: Path, kind: str
) -> None:
    fault = f"kubernetes.{kind}.scale"
    api_kind = "Deployment" if kind == "deployment" else "StatefulSet"
    delays = killing.moments(fault)
    for index in range(len(delays)):
        if kind == "deployment":
            cluster.deployment(namespace, f"w{index}", replicas=2)
        else:
            statefulset(cluster, namespace, f"w{index}", replicas=2)

    def spec(name: str) -> Any:
        return resource(api_kind, "apps/v1", namespace=namespace, name=name)

    def moment(index: int, delay: float) -> None:
        name = f"w{index}"
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(fault, namespace=namespace, name=name, replicas=0),
            delay,
            left_behind=lambda: spec(name)["spec"]["replicas"] == 0,
        )
        wait_until(f"{name} back to 2 replicas", lambda: spec(name)["spec"]["replicas"] == 2)
        assert unmarked(spec(name)), spec(name)["metadata"]
        wait_until(
            f"2 Ready pods of {name}",
            lambda: (
                probe("kubernetes.pods.ready", namespace=namespace, label_selector=f"app={name}")["ready"]
                == 2
            ),
        )
        if kind == "deployment":
            wait_until(
                f"{name} available",
                lambda: (
                    probe("kubernetes.deployment.available", namespace=namespace, name=name)["available"] == 2
                ),
            )

    killing.each_moment(delays, moment)


@pytest.mark.parametrize("fault", ["kubernetes.node.cordon", "kubernetes.node.drain"])
def test_node_fault_is_recovered_after_a_sigkill_at_any_moment(
    cluster: Cluster, namespace: str, tmp_path: Path, fault: str
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=3)
    nodes = sorted(n["metadata"]["name"] for n in cluster.schedulable_nodes())
    assert len(nodes) >= 2, f"the drain needs somewhere for the pods to go: {nodes}"

    def node(name: str) -> Any:
        return resource("Node", name=name)

    def moment(index: int, delay: float) -> None:
        # The node with the most of our pods, so that a drain really evicts something.
        pods = resource("Pod", namespace=namespace, label_selector=selector)["items"]
        on = [p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")]
        target = max(nodes, key=on.count)
        before = bool(node(target)["spec"].get("unschedulable"))
        assert before is False
        args: dict[str, Any] = {"names": [target]}
        if fault.endswith("drain"):
            args.update(timeout=60, grace_period=1)
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(fault, **args),
            delay,
            left_behind=lambda: node(target)["spec"].get("unschedulable") is True,
        )
        assert not node(target)["spec"].get("unschedulable"), f"{target} still cordoned after recover"
        assert unmarked(node(target)), node(target)["metadata"]
        wait_until(
            "the deployment fully available again",
            lambda: (
                probe("kubernetes.deployment.available", namespace=namespace, name="web")["available"] == 3
            ),
        )

    # Moments one at a time: they share the nodes, and one run's cordon is another's "before".
    killing.each_moment(killing.moments(fault), moment, parallel=1)


def test_network_partition_is_recovered_after_a_sigkill_at_any_moment(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    fault = "kubernetes.network.partition"
    delays = killing.moments(fault)
    for index in range(len(delays)):
        cluster.deployment(namespace, f"p{index}", replicas=1)

    def policies(name: str) -> list[Any]:
        listed: list[Any] = resource("NetworkPolicy", "networking.k8s.io/v1", namespace=namespace)["items"]
        return [p for p in listed if p["spec"].get("podSelector") == {"matchLabels": {"app": name}}]

    def moment(index: int, delay: float) -> None:
        name = f"p{index}"
        assert policies(name) == []
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(fault, namespace=namespace, label_selector=f"app={name}"),
            delay,
            left_behind=lambda: len(policies(name)) == 1,
        )
        assert policies(name) == [], "the deny-all NetworkPolicy outlived recover"
        ready = probe("kubernetes.pods.ready", namespace=namespace, label_selector=f"app={name}")
        assert ready["ready"] == 1, ready

    killing.each_moment(delays, moment)
