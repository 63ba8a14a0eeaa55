"""``recover --sweep`` in a shared cluster takes only what runs that are not live left: without a
run id, a dead run's changes and an unknown run's expired ones; never a live run's, nor an unknown
run's before its mark expires. Against the real API server."""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import networkpolicies, sweeps
from chaoskit.kube import marks
from tests.k8s.clusters import Cluster
from tests.k8s.test_faults import inject

pytestmark = pytest.mark.k8s


def _policies(cluster: Cluster, namespace: str) -> dict[str, str]:
    """The run id each chaoskit NetworkPolicy in ``namespace`` is marked with, by policy name."""
    listing = cluster.api.get(
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", what="test"
    )
    return {
        p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(marks.RUN_ID, "")
        for p in listing["items"]
    }


def test_a_sweep_without_a_run_id_spares_live_runs_and_unexpired_unknown_ones(
    cluster: Cluster, namespace: str
) -> None:
    selector = cluster.deployment(namespace, "web", replicas=1)
    kinds = ("live", "dead", "unknown", "expired")
    runs = {kind: contract.RunContext(run_id=f"{kind}-{uuid.uuid4().hex[:8]}") for kind in kinds}
    states = {runs["live"].run_id: "live", runs["dead"].run_id: "dead"}
    with contextlib.ExitStack() as stack:
        for run in runs.values():
            stack.callback(run.close)
        for kind, run in runs.items():
            args = {"namespace": namespace, "label_selector": selector}
            inject(
                networkpolicies.NetworkPartition(),
                {**args, "expires_after": 1 if kind == "expired" else 3600},
                run,
            )
        time.sleep(2.1)  # the expiry is kept to the second
        assert sorted(_policies(cluster, namespace).values()) == sorted(r.run_id for r in runs.values())

        recover = contract.RunContext(
            run_id="recover", run_state=lambda run_id: states.get(run_id, "unknown")
        )
        stack.callback(recover.close)
        done = sweeps.sweep(None, recover)

        left = sorted(_policies(cluster, namespace).values())
        assert left == sorted([runs["live"].run_id, runs["unknown"].run_id]), done
        assert any(line.endswith(f"alone: run {runs['live'].run_id} is live") for line in done), done
        assert any(f"chaoskit recover {runs['unknown'].run_id} --sweep" in line for line in done), done
        assert sum(line.startswith("deleted NetworkPolicy") for line in done) == 2

        # Named by its id, a live run is still left alone; an unknown one is reverted at once.
        kept = sweeps.sweep(runs["live"].run_id, recover)
        assert kept and all("is live" in line for line in kept), kept
        assert any(line.startswith("deleted") for line in sweeps.sweep(runs["unknown"].run_id, recover))
        assert list(_policies(cluster, namespace).values()) == [runs["live"].run_id]

        states[runs["live"].run_id] = "dead"
        assert any(line.startswith("deleted") for line in sweeps.sweep(None, recover))
        assert _policies(cluster, namespace) == {}
