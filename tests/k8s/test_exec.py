"""``kubernetes.exec`` for real: needs kubelets that run containers (kind, a real cluster), so it
is marked ``real_cluster`` and skipped on scripts/kube-up's simulated nodes. Its code paths are
unit-tested against recorded answers in tests/unit/drivers/test_kubernetes.py."""

from __future__ import annotations

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import executing
from tests.k8s.clusters import Cluster

pytestmark = [pytest.mark.k8s, pytest.mark.real_cluster]


def test_exec_runs_the_command_in_each_selected_pod_and_reports_exit_codes(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    if cluster.simulated:
        pytest.skip("the simulated kubelet runs no containers; exec needs a real cluster (kind)")
    container = {"name": "box", "image": "busybox:1.36", "command": ["sleep", "3600"]}
    selector = cluster.deployment(namespace, "box", replicas=2, container=container)
    action = executing.Exec()
    args = action.args.model_validate(
        {"namespace": namespace, "label_selector": selector, "command": ["sh", "-c", "echo hi; exit 3"]}
    )

    result = action.run(args, ctx)

    assert isinstance(result.output, dict)
    assert result.output["count"] == 2 and result.output["failed"] == 2
    for pod in result.output["pods"]:  # type: ignore[union-attr]
        assert pod["exit_code"] == 3 and pod["stdout"] == "hi\n"  # type: ignore[index,call-overload]
