"""The kubernetes faults' revert data survives the ledger (model → JSON text → model) unchanged, and
a damaged record is refused naming what is wrong, never half-read. Their leases say which faults
can't stack on one object. No cluster: ``prepare`` only records where the cluster is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.drivers import contract, kubernetes
from chaoskit.drivers.kubernetes import networkpolicies, nodes, pods, workloads
from chaoskit.kube import kubeconfigs
from tests.unit.drivers.test_docker_reverts import damaged_records, names_field

FAULTS = {f.name: f for f in kubernetes.driver().faults}
CTX = contract.RunContext(run_id="20261207T050000Z-ab12cd")
POD = contract.Target(
    kind="pod", id="shop/web-1", name="web-1", detail={"namespace": "shop", "uid": "0b5e-11ee"}
)
NODE = contract.Target(kind="node", id="worker-2", name="worker-2", detail={"was_unschedulable": "true"})
DEPLOYMENT = contract.Target(
    kind="deployment", id="shop/web", name="web", detail={"namespace": "shop", "replicas": "3"}
)
STATEFULSET = contract.Target(
    kind="statefulset", id="shop/db", name="db", detail={"namespace": "shop", "replicas": "0"}
)
POLICY = contract.Target(
    kind="networkpolicy", id="shop/chaoskit-partition-x-1a2b3c4d", name="chaoskit-partition-x-1a2b3c4d",
    detail={"namespace": "shop", "pods": "web-1,web-2"},
)  # fmt: skip
SCHEDULED = contract.Target(
    kind="pod", id="shop/web-1", name="web-1", detail={"namespace": "shop", "node": "worker-2"}
)
IN_POD = {"namespace": "shop", "label_selector": "app=web"}
STEPS: dict[str, tuple[dict[str, Any], contract.Target]] = {
    "kubernetes.pods.delete": ({"namespace": "shop", "label_selector": "app=web"}, POD),
    "kubernetes.pods.evict": ({"namespace": "shop", "label_selector": "app=web"}, POD),
    "kubernetes.deployment.scale": ({"namespace": "shop", "name": "web", "replicas": 0}, DEPLOYMENT),
    "kubernetes.deployment.rollout_restart": ({"namespace": "shop", "name": "web"}, DEPLOYMENT),
    "kubernetes.statefulset.scale": ({"namespace": "shop", "name": "db", "replicas": 2}, STATEFULSET),
    "kubernetes.statefulset.rollout_restart": ({"namespace": "shop", "name": "db"}, STATEFULSET),
    "kubernetes.node.cordon": ({"names": ["worker-2"]}, NODE),
    "kubernetes.node.drain": ({"names": ["worker-2"]}, NODE),
    "kubernetes.zone.outage": ({"zone": "eu-west-1a"}, NODE),
    "kubernetes.network.partition": ({"namespace": "shop", "label_selector": "app=web"}, POLICY),
    "kubernetes.pods.stress_cpu": ({**IN_POD, "workers": 2}, SCHEDULED),
    "kubernetes.pods.stress_memory": ({**IN_POD, "size": "64MiB"}, SCHEDULED),
    "kubernetes.pods.fill_disk": ({**IN_POD, "path": "/tmp", "size": "1MiB"}, SCHEDULED),
    "kubernetes.pods.stress_io": ({**IN_POD, "path": "/tmp"}, SCHEDULED),
    "kubernetes.pods.kill_process": ({**IN_POD, "process": "nginx", "signal": "TERM"}, SCHEDULED),
    "kubernetes.pods.stop_process": ({**IN_POD, "pattern": "worker"}, SCHEDULED),
    "kubernetes.pods.partition": ({**IN_POD, "cidrs": ["10.0.0.7"]}, SCHEDULED),
    "kubernetes.pods.dns": ({**IN_POD, "domains": ["db.shop.svc"]}, SCHEDULED),
}


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CHAOSKIT_KUBE_CONTEXT", raising=False)
        yield path


@pytest.fixture(scope="module")
def samples(kubeconfig: Path) -> dict[str, contract.Revert]:
    """What each fault's ``prepare`` writes ahead."""
    prepared = {}
    for name, (args, target) in STEPS.items():
        fault = FAULTS[name]
        with_ = {"kubeconfig": str(kubeconfig), "context": "staging", **args}
        prepared[name] = fault.prepare(fault.args.model_validate(with_), target, CTX)
    return prepared


def test_every_fault_prepares_a_record_of_its_own_model(samples: dict[str, contract.Revert]) -> None:
    assert set(samples) == set(FAULTS)
    for name, sample in samples.items():
        assert type(sample) is FAULTS[name].revert_type, name


@pytest.mark.parametrize("name", sorted(STEPS))
def test_revert_data_round_trips_through_json_text(name: str, samples: dict[str, contract.Revert]) -> None:
    written = contract.dump_revert(samples[name])
    assert written["v"] == 1
    back = contract.load_revert(FAULTS[name], json.loads(json.dumps(written)))
    assert back == samples[name]
    assert type(back) is type(samples[name])


def test_the_record_holds_where_the_cluster_is_and_typed_values(
    samples: dict[str, contract.Revert], kubeconfig: Path
) -> None:
    scale = contract.dump_revert(samples["kubernetes.deployment.scale"])
    assert scale == {
        "v": 1,
        "connection": {"kubeconfig": str(kubeconfig.resolve()), "context": "staging", "in_cluster": False},
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "replicas": 3,  # the count before, as a number
    }
    assert contract.dump_revert(samples["kubernetes.statefulset.scale"])["kind"] == "StatefulSet"
    node = samples["kubernetes.zone.outage"]
    assert isinstance(node, nodes.NodeRevert) and node.was_unschedulable is True
    pod = samples["kubernetes.pods.delete"]
    assert isinstance(pod, pods.PodRevert) and pod.uid == "0b5e-11ee"


def test_a_pod_without_a_uid_records_none_not_an_empty_string(kubeconfig: Path) -> None:
    fault = pods.PodsDelete()
    args = fault.args.model_validate({"kubeconfig": str(kubeconfig), "label_selector": "app=web"})
    bare = contract.Target(kind="pod", id="shop/web-1", name="web-1", detail={"namespace": "shop"})
    assert fault.prepare(args, bare, CTX).uid is None


def _damaged() -> list[Any]:
    # Built by hand: parametrize needs them at collection, before any fixture made a kubeconfig.
    connection = kubeconfigs.Connection(kubeconfig="/home/me/.kube/config", context=None, in_cluster=False)
    records: dict[str, contract.Revert] = {
        "kubernetes.pods.delete": pods.PodRevert(connection=connection, namespace="s", name="p", uid="u"),
        "kubernetes.deployment.scale": workloads.ScaleRevert(
            connection=connection, kind="Deployment", namespace="s", name="w", replicas=2
        ),
        "kubernetes.deployment.rollout_restart": workloads.WorkloadRevert(
            connection=connection, kind="Deployment", namespace="s", name="w"
        ),
        "kubernetes.node.cordon": nodes.NodeRevert(connection=connection, node="n", was_unschedulable=False),
        "kubernetes.network.partition": networkpolicies.PolicyRevert(
            connection=connection, namespace="s", name="p"
        ),
    }
    return damaged_records(records)


@pytest.mark.parametrize(("name", "record", "named"), _damaged())
def test_a_damaged_record_is_refused_naming_what_is_wrong(
    name: str, record: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        contract.load_revert(FAULTS[name], json.loads(json.dumps(record)))


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("kubernetes.deployment.scale", "replicas", -1),
        ("kubernetes.deployment.scale", "replicas", "3"),  # a number, not the annotation's text
        ("kubernetes.deployment.scale", "kind", "DaemonSet"),
        ("kubernetes.node.cordon", "was_unschedulable", "maybe"),
        ("kubernetes.node.cordon", "was_unschedulable", "true"),
        ("kubernetes.pods.evict", "connection", {"kubeconfig": None, "context": None, "in_cluster": 0}),
        ("kubernetes.pods.evict", "connection",
         {"kubeconfig": None, "context": None, "in_cluster": False, "token": "x"}),
        ("kubernetes.pods.evict", "connection", {"kubeconfig": None, "context": None}),
    ],
)  # fmt: skip
def test_values_of_the_right_json_type_but_wrong_meaning_are_refused(
    name: str, field: str, value: object, samples: dict[str, contract.Revert]
) -> None:
    written = contract.dump_revert(samples[name])
    with pytest.raises(ValueError, match=names_field(field)):
        contract.load_revert(FAULTS[name], {**written, field: value})


def _lease(name: str, target: contract.Target) -> str | None:
    fault = FAULTS[name]
    args, _ = STEPS[name]
    return fault.lease(fault.args.model_validate(args), target)


def test_node_faults_share_one_lease_per_node_and_pod_faults_hold_none() -> None:
    leases = {
        _lease(name, NODE)
        for name in ("kubernetes.node.cordon", "kubernetes.node.drain", "kubernetes.zone.outage")
    }
    assert leases == {"kubernetes.node.unschedulable@node:worker-2"}
    assert _lease("kubernetes.pods.delete", POD) is None
    assert _lease("kubernetes.pods.evict", POD) is None
    assert (
        _lease("kubernetes.deployment.scale", DEPLOYMENT) == "kubernetes.deployment.scale@deployment:shop/web"
    )
    assert (
        _lease("kubernetes.network.partition", POLICY)
        == f"kubernetes.network.partition@networkpolicy:{POLICY.id}"
    )


def test_only_faults_that_restore_what_prepare_read_capture_state() -> None:
    capturing = {name for name, fault in FAULTS.items() if fault.captures_state}
    assert capturing == {
        "kubernetes.deployment.scale",
        "kubernetes.statefulset.scale",
        "kubernetes.node.cordon",
        "kubernetes.node.drain",
        "kubernetes.zone.outage",
        "kubernetes.network.partition",
    }
