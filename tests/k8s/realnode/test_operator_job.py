"""On scripts/kube-up's real node: a ChaosExperiment's Job runs chaoskit for real, in the chaoskit
image (scripts/lib/chaoskit-image.sh), placed on the real node through the resource's
nodeSelector, tolerations and schedulerName; the verdict its pod writes to the termination
message lands in the resource's status. No pod is finished by hand here."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from chaoskit.operator import reconciling, resources, watching
from tests.k8s.clusters import REAL_LABEL, REAL_SCHEDULER, Cluster, wait_until
from tests.k8s.operator.test_operator import (  # noqa: F401 (fixtures)
    BASE,
    EXPERIMENT,
    crds,
    create_experiment,
    finalized,
    get,
    sweep,
)

pytestmark = [pytest.mark.k8s, pytest.mark.real_cluster]


@pytest.fixture
def controller(cluster: Cluster, namespace: str, crds: None, chaoskit_image: str) -> Iterator[None]:  # noqa: F811
    ctl = reconciling.Controller(api=cluster.api, revert=sweep, image=chaoskit_image, namespace=namespace)
    watcher = watching.Watcher(ctl, interval=1.0, watch_seconds=3)
    thread = threading.Thread(target=watcher.serve, name="operator", daemon=True)
    thread.start()
    yield
    watcher.stop.set()
    watcher.wake.set()
    thread.join(timeout=60)


def test_a_chaosexperiment_job_runs_chaoskit_in_its_image_to_a_verdict(
    cluster: Cluster,
    namespace: str,
    controller: None,
    finalized: None,  # noqa: F811
) -> None:
    placement = {
        "nodeSelector": {REAL_LABEL: "true"},
        "tolerations": [{"key": REAL_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        "schedulerName": REAL_SCHEDULER,
    }
    obj = create_experiment(cluster, namespace, "in-a-pod", {"experiment": EXPERIMENT, **placement})
    path = f"{BASE}/namespaces/{namespace}/chaosexperiments/in-a-pod"
    status = wait_until(
        "the verdict of the run in its pod",
        lambda: (
            ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Finished"
            and get(cluster, path)["status"]  # type: ignore[index]
        ),
        timeout=120,
        interval=1.0,
    )
    assert (status["verdict"], status["exitCode"]) == ("completed", 0), status
    assert status["runId"] == f"k8s-{obj['metadata']['uid']}"
    assert status["summary"]["title"] == "true stays true"
    pods = cluster.api.list(
        f"/api/v1/namespaces/{namespace}/pods",
        what="test",
        labelSelector=f"{resources.EXPERIMENT_LABEL}=in-a-pod",
    )
    assert [p["spec"]["nodeName"] for p in pods] == [cluster.real_node]
