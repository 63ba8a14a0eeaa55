"""``kubernetes.exec`` for real: needs a kubelet that runs containers, so it runs on scripts/kube-up's
real node (or a cluster of real kubelets such as kind); with neither it fails under CI=true and is
skipped locally. Its code paths are also unit-tested against recorded answers in
tests/unit/drivers/test_kubernetes.py."""

from __future__ import annotations

import gc
import warnings

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import executing
from tests.k8s.clusters import Cluster

pytestmark = [pytest.mark.k8s, pytest.mark.real_cluster]


def test_exec_runs_the_command_in_each_selected_pod_and_reports_exit_codes(
    cluster: Cluster, namespace: str, ctx: contract.RunContext
) -> None:
    container = cluster.busybox("box", ["sleep", "3600"])
    selector = cluster.deployment(namespace, "box", replicas=2, container=container, real=True)
    action = executing.Exec()
    args = action.args.model_validate(
        {"namespace": namespace, "label_selector": selector, "command": ["sh", "-c", "echo hi; exit 3"]}
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = action.run(args, ctx)
        gc.collect()

    # Each exec's websocket is closed, not left for the garbage collector (a long experiment that
    # execs in a loop would run out of file descriptors).
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []

    assert isinstance(result.output, dict)
    assert result.output["count"] == 2 and result.output["failed"] == 2
    for pod in result.output["pods"]:  # type: ignore[union-attr]
        assert pod["exit_code"] == 3 and pod["stdout"] == "hi\n"  # type: ignore[index,call-overload]
