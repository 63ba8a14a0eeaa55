"""On scripts/kube-up's real node: a deleted pod is replaced by the Deployment's controller and
really started again by the kubelet (a new container in the node's dockerd, a new pod IP), and
Services route between pods that really run. Fails under CI=true without a node that runs
containers; skipped locally."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import executing, pods
from tests.k8s.clusters import Cluster, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.real_cluster]

POD_CIDR = ipaddress.ip_network("10.78.0.0/24")
"""scripts/lib/kube/node-env.sh's pod range."""


def running_container(pod: dict[str, Any]) -> str | None:
    """The id of the pod's container when the kubelet reports it running, else None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if "running" in (status.get("state") or {}):
            return str(status.get("containerID") or "") or None
    return None


def test_a_deleted_pod_is_replaced_and_really_restarted_by_the_real_kubelet(
    cluster: Cluster, namespace: str, ctx: contract.RunContext, record_property: Any
) -> None:
    selector = cluster.deployment(
        namespace, "web", replicas=2, container=cluster.busybox("web", ["sleep", "3600"]), real=True
    )
    before = {p["metadata"]["uid"]: p for p in cluster.ready_pods(namespace, selector)}
    for pod in before.values():
        if cluster.real_node is not None:
            assert pod["spec"]["nodeName"] == cluster.real_node
            assert ipaddress.ip_address(pod["status"]["podIP"]) in POD_CIDR
        assert running_container(pod)
    fault = pods.PodsDelete()
    args = fault.args.model_validate(
        {"namespace": namespace, "label_selector": selector, "count": 1, "grace_period": 0}
    )
    (target,) = fault.targets(args, ctx)
    revert = fault.prepare(args, target, ctx)

    started = time.monotonic()
    fault.inject(args, target, revert, ctx)

    def healed() -> list[dict[str, Any]] | None:
        ready = cluster.ready_pods(namespace, selector)
        fresh = [p for p in ready if p["metadata"]["uid"] not in before and running_container(p)]
        return fresh if len(ready) == 2 and fresh else None

    (replacement,) = wait_until("a Running replacement of the deleted pod", healed, timeout=60, interval=0.1)
    recovery = time.monotonic() - started
    record_property("recovery_seconds", round(recovery, 2))
    print(f"pod delete on the real node: replacement Running after {recovery:.2f}s")
    assert revert.uid in before and revert.uid not in {
        p["metadata"]["uid"] for p in cluster.ready_pods(namespace, selector)
    }
    assert running_container(replacement) not in {running_container(p) for p in before.values()}
    if cluster.real_node is not None:
        assert replacement["spec"]["nodeName"] == cluster.real_node
    # A real kubelet on an idle node takes a few seconds (measured ~2-3 s); far more means the node
    # is not healing pods as a user's cluster would.
    assert recovery < 30


def test_pods_on_the_real_node_answer_each_other_through_a_service(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    server = cluster.busybox(
        "web", ["sh", "-c", "echo served-by-$(hostname) > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
    )
    selector = cluster.deployment(namespace, "web", replicas=2, container=server, real=True)
    cluster.api.post(
        f"/api/v1/namespaces/{namespace}/services",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        what="test: service",
    )
    client = cluster.busybox("client", ["sleep", "3600"])
    cluster.deployment(namespace, "client", replicas=1, container=client, real=True)
    servers = {p["metadata"]["name"] for p in cluster.ready_pods(namespace, selector)}
    action = executing.Exec()
    # The Service's address by its environment variable would need the client created after it;
    # its ClusterIP is read instead. kube-proxy programs it within about a second: retried.
    ip = cluster.api.get(f"/api/v1/namespaces/{namespace}/services/web", what="test")["spec"]["clusterIP"]
    fetch = ["sh", "-c", f"for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -qO- http://{ip}/; done"]
    args = action.args.model_validate(
        {"namespace": namespace, "label_selector": "app=client", "command": fetch}
    )

    def answered() -> set[str] | None:
        output: Any = action.run(args, ctx).output
        (pod,) = output["pods"]
        seen = {line.removeprefix("served-by-") for line in str(pod["stdout"]).split()}
        return seen if seen == servers else None

    assert (
        wait_until("answers from both pods behind the Service", answered, timeout=30, interval=1) == servers
    )


def test_a_pod_on_the_real_node_reaches_nothing_beyond_its_bridge(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    if cluster.real_node is None:
        pytest.skip("checks scripts/kube-up's own confinement; another cluster has its own network")
    client = cluster.busybox("client", ["sleep", "3600"])
    cluster.deployment(namespace, "client", replicas=1, container=client, real=True)
    # An address in the Service range that no Service has: scripts/lib/kube/node-up.sh routes the
    # range to the node's empty bridge and refuses anything leaving the pod bridge, so the
    # connection fails at once on this machine instead of following the default route out.
    probe = ["sh", "-c", "timeout 5 wget -qO- http://10.0.0.250/; echo rc=$?"]
    action = executing.Exec()
    args = action.args.model_validate(
        {"namespace": namespace, "label_selector": "app=client", "command": probe}
    )

    started = time.monotonic()
    output: Any = action.run(args, ctx).output
    elapsed = time.monotonic() - started

    (pod,) = output["pods"]
    assert "rc=1" in pod["stdout"]
    assert "refused" in pod["stderr"] or "No route" in pod["stderr"], pod["stderr"]
    assert elapsed < 4  # refused, not dropped until the timeout


def test_a_pod_on_the_real_node_reaches_the_api_server_through_the_kubernetes_service(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    # In-cluster clients (the operator's Jobs, the node agent) find the API server this way.
    client = cluster.busybox("client", ["sleep", "3600"])
    cluster.deployment(namespace, "client", replicas=1, container=client, real=True)
    # The kubelet gives every pod the Service's address in its environment.
    probe = [
        "sh",
        "-c",
        "timeout 5 wget -qO- https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/version",
    ]
    action = executing.Exec()
    args = action.args.model_validate(
        {"namespace": namespace, "label_selector": "app=client", "command": probe}
    )

    output: Any = action.run(args, ctx).output

    (pod,) = output["pods"]
    assert pod["exit_code"] == 0, pod["stderr"]
    assert '"gitVersion"' in pod["stdout"], pod["stdout"]
