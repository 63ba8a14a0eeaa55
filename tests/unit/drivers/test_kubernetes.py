"""The kubernetes driver's pure parts, and ``kubernetes.exec`` against recorded API answers.

Exec needs a kubelet, which the test control plane (scripts/kube-up) has not got: its paths are
tested here against recorded API answers standing in for the server (a pod list, and the
websocket channels an exec stream carries: stdout, stderr and the final Status on channel 3).
These are fakes because no real thing can run here; the same action runs for real in
tests/k8s/test_exec.py, marked ``real_cluster``.
"""

from __future__ import annotations

import json
import os
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.drivers.kubernetes import (
    clusterevents,
    clusters,
    draining,
    executing,
    networkpolicies,
    nodes,
    pods,
    selectors,
    workloads,
)
from chaoskit.kube import kubeconfigs, marks

# ---- selectors, marks, args -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"matchLabels": {"app": "web"}}),
        ("app==web,tier!=db", {"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
        ("env in (a, b),!canary,team", {"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"}]}),
        ("app.kubernetes.io/name notin (x)", {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["x"]}]}),
        ("app=", {"matchLabels": {"app": ""}}),  # valid: app has the empty value
        ("", {}),
    ],
)  # fmt: skip
def test_label_selectors_become_the_objects_network_policies_need(
    selector: str, expected: dict[str, Any]
) -> None:
    assert selectors.label_selector_object(selector) == expected


@pytest.mark.parametrize("bad", ["=web", "app in x", "!app=web", "a b"])
def test_unreadable_label_selectors_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(errors.DriverError, match=re.escape(f"can't read {bad!r}")) as caught:
        selectors.label_selector_object(bad)
    assert "write requirements like app=web" in (caught.value.hint or "")


@given(st.text(min_size=1, max_size=120))
def test_any_run_id_becomes_a_valid_label_value(run_id: str) -> None:
    value = marks.label_value(run_id)
    assert len(value) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)
    assert marks.label_value(run_id) == value


def test_a_valid_run_id_is_its_own_label_value_and_expiry_is_read_back() -> None:
    assert marks.label_value("20260101T000000-ab12cd") == "20260101T000000-ab12cd"
    later = marks.expires_at(60)
    assert not marks.is_expired({marks.EXPIRES_AT: later})
    assert marks.is_expired({marks.EXPIRES_AT: later}, now=datetime.now(UTC) + timedelta(minutes=2))
    assert marks.is_expired({})  # no expiry: fair game for a sweep


def test_protected_namespaces_are_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ValidationError, match="namespace kube-system is protected; add allow_protected: true"
    ):
        pods.PodsArgs.model_validate({"namespace": "kube-system", "label_selector": "a=b"})
    with pytest.raises(ValidationError, match="kube-node-lease"):
        pods.PodsArgs.model_validate({"namespaces": ["shop", "kube-node-lease"], "label_selector": "a=b"})
    monkeypatch.setenv("CHAOSKIT_PROTECTED_NAMESPACES", "payments,ledger")
    with pytest.raises(ValidationError, match="namespace payments is protected"):
        pods.PodsArgs.model_validate({"namespace": "payments", "label_selector": "a=b"})
    allowed = pods.PodsArgs.model_validate(
        {"namespace": "payments", "label_selector": "a=b", "allow_protected": True}
    )
    assert allowed.namespace == "payments"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"namespace": "shop"}, "give label_selector, field_selector or names"),
        ({"label_selector": "a=b", "count": 1, "all": True}, "give only one of count, percent or all"),
        (
            {"label_selector": "a=b", "namespace": "a", "namespaces": ["b"]},
            "namespace or namespaces, not both",
        ),
        ({"label_selector": "a=b", "grace_period": -1}, "greater than or equal to 0"),
        ({"label_selector": "a=b", "bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_pod_fault_arguments_are_checked(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        pods.PodsArgs.model_validate(args)


def test_workload_node_and_partition_arguments_are_checked() -> None:
    with pytest.raises(ValidationError, match="exactly one of name or label_selector"):
        workloads.ScaleArgs.model_validate({"replicas": 1})
    with pytest.raises(ValidationError, match="names or label_selector"):
        nodes.NodeArgs.model_validate({})
    with pytest.raises(ValidationError, match="either a cidr or pod/namespace labels"):
        networkpolicies.Peer.model_validate({"cidr": "10.0.0.0/8", "pod_labels": {"a": "b"}})
    peer = networkpolicies.Peer.model_validate(
        {"pod_labels": {"app": "dns"}, "namespace_labels": {"team": "core"}}
    )
    assert peer.to_json() == {
        "podSelector": {"matchLabels": {"app": "dns"}},
        "namespaceSelector": {"matchLabels": {"team": "core"}},
    }


# ---- drains and rollouts ----------------------------------------------------------------------


def pod(name: str, namespace: str = "shop", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, **meta}, "spec": {}, "status": {}}


def test_a_drain_leaves_daemonset_mirror_terminating_and_protected_pods_alone() -> None:
    candidates = [
        pod("web-1", ownerReferences=[{"kind": "ReplicaSet", "name": "web"}]),
        pod("agent", ownerReferences=[{"kind": "DaemonSet", "name": "agent"}]),
        pod("etcd-node", annotations={draining.MIRROR_ANNOTATION: "x"}),
        pod("old", deletionTimestamp="2026-01-01T00:00:00Z"),
        pod("coredns", namespace="kube-system"),
        pod("lonely"),
    ]
    plan = draining.plan_drain(candidates, allow_protected=False)
    assert [p["metadata"]["name"] for p in plan.evict] == ["web-1", "lonely"]
    assert dict(plan.skipped) == {
        "shop/agent": "DaemonSet pod",
        "shop/etcd-node": "mirror (static) pod",
        "shop/old": "already terminating",
        "kube-system/coredns": "protected namespace (allow_protected: true to include)",
    }
    assert len(draining.plan_drain(candidates, allow_protected=True).evict) == 3


def test_a_leftover_cordon_of_an_earlier_run_is_not_taken_for_the_operators_own() -> None:
    node = {"metadata": {"labels": {marks.RUN_ID: "old"}, "annotations": {marks.WAS_UNSCHEDULABLE: "false"}}}
    assert nodes.was_unschedulable({**node, "spec": {"unschedulable": True}}) is False
    assert nodes.was_unschedulable({"metadata": {}, "spec": {"unschedulable": True}}) is True


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, 2,
         (False, "the controller has not yet seen the latest spec")),
        ({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}, 2,
         (False, "1 old replicas pending termination")),
        ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2}, 2,
         (False, "2 of 3 replicas updated")),
        ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}, 2,
         (False, "1 of 3 updated replicas available")),
        ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, 2,
         (True, "complete")),
    ],
)  # fmt: skip
def test_rollout_completion_is_judged_like_kubectl_rollout_status(
    status: dict[str, int], generation: int, expected: tuple[bool, str]
) -> None:
    deployment = {"metadata": {"generation": generation}, "spec": {"replicas": 3}, "status": status}
    assert workloads.rollout_state("deployment", deployment) == expected


# ---- exec, against recorded answers -------------------------------------------------------------

# Final Status messages on the exec stream's channel 3, in the exact shape the kubelet sends them
# through the API server (the form the client's own WSClient.returncode parses). No kubelet runs
# here to capture them afresh: they are written out from that format, not live answers.
SUCCESS = '{"metadata":{},"status":"Success"}'
EXIT_3 = json.dumps({
    "metadata": {}, "status": "Failure",
    "message": "command terminated with non-zero exit code: "
               "error executing command [sh -c exit 3], exit code 3",
    "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
})  # fmt: skip
NOT_FOUND = json.dumps({
    "metadata": {}, "status": "Failure",
    "message": 'OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": '
               "executable file not found in $PATH: unknown",
    "reason": "InternalError", "details": {"causes": [{"message": "OCI runtime exec failed"}]}, "code": 500,
})  # fmt: skip
POD_LIST = {
    "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "4711"},
    "items": [
        {"metadata": {"name": f"web-7f65447446-{s}", "namespace": "shop", "uid": f"uid-{s}",
                      "labels": {"app": "web"}},
         "spec": {"nodeName": "worker-1", "containers": [{"name": "web", "image": "nginx:1.27"}]},
         "status": {"phase": "Running"}}
        for s in ("hhqcc", "qw8dd", "z2kx9")
    ],
}  # fmt: skip


class RecordedStream:
    """Replays the channels of one recorded exec websocket."""

    def __init__(self, stdout: str, stderr: str, status: str, finished: bool = True) -> None:
        self.channels = {1: stdout, 2: stderr, 3: status}
        self.finished = finished
        self.closed = False

    def run_forever(self, timeout: float | None = None) -> None:
        pass

    def is_open(self) -> bool:
        return not self.finished

    def read_stdout(self, timeout: float | None = None) -> str:
        return self.channels[1]

    def read_stderr(self, timeout: float | None = None) -> str:
        return self.channels[2]

    def read_channel(self, channel: int, timeout: float = 0) -> str:
        return self.channels[channel]

    def close(self, **kwargs: Any) -> None:
        self.closed = True


class RecordedApi:
    """Answers the one list call an exec makes with the recorded pod list."""

    default_namespace = "shop"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def list(self, path: str, *, what: str, **query: Any) -> list[dict[str, Any]]:
        self.requests.append((path, query))
        return [p for p in POD_LIST["items"] if query.get("labelSelector") == "app=web"]  # type: ignore[union-attr]


def test_exit_codes_are_read_from_the_final_status() -> None:
    assert executing.exit_code(SUCCESS) == 0
    assert executing.exit_code(EXIT_3) == 3
    assert executing.exit_code("") is None
    with pytest.raises(errors.DriverError, match=r'exec failed: OCI runtime exec failed.*"nope"'):
        executing.exit_code(NOT_FOUND)


def test_a_finished_stream_gives_output_and_exit_code_and_is_closed() -> None:
    stream = RecordedStream("hello\n", "warn\n", EXIT_3)
    assert executing.collect(stream, timeout=5) == {
        "exit_code": 3, "stdout": "hello\n", "stderr": "warn\n", "timed_out": False,
    }  # fmt: skip
    assert stream.closed
    unfinished = RecordedStream("partial", "", "", finished=False)
    assert executing.collect(unfinished, timeout=0.1)["timed_out"] is True


def test_exec_runs_in_each_selected_pod_from_one_list_call(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    ctx = contract.RunContext(run_id="unit", rng=random.Random(7))
    recorded = RecordedApi()
    args = executing.ExecArgs.model_validate(
        {"kubeconfig": str(kubeconfig), "namespace": "shop", "label_selector": "app=web", "count": 2,
         "command": ["sh", "-c", "exit 3"], "container": "web"}
    )  # fmt: skip
    ctx.resource(clusters.connection(args, ctx).key, lambda: recorded)
    opened: list[tuple[str, str, str | None, list[str]]] = []

    def opener(
        api: Any, namespace: str, pod: str, container: str | None, command: list[str]
    ) -> RecordedStream:
        opened.append((namespace, pod, container, command))
        return RecordedStream("", "", SUCCESS if pod.endswith("hhqcc") else EXIT_3)

    result = executing.Exec(opener).run(args, ctx)

    assert recorded.requests == [
        ("/api/v1/namespaces/shop/pods", {"labelSelector": "app=web", "fieldSelector": None})
    ]
    assert len(opened) == 2 and {o[2] for o in opened} == {"web"}
    assert isinstance(result.output, dict)
    assert result.output["count"] == 2
    codes = {p["pod"]: p["exit_code"] for p in result.output["pods"]}  # type: ignore[index,union-attr]
    assert set(codes) <= {f"shop/{p['metadata']['name']}" for p in POD_LIST["items"]}  # type: ignore[union-attr]
    assert result.output["failed"] == sum(1 for c in codes.values() if c != 0)


# ---- registration ---------------------------------------------------------------------------


def test_every_fault_probe_and_action_is_registered_through_the_entry_point() -> None:
    loaded = registry.load()
    assert "kubernetes" not in loaded.broken
    for name in [
        "kubernetes.pods.delete", "kubernetes.pods.evict", "kubernetes.deployment.scale",
        "kubernetes.deployment.rollout_restart", "kubernetes.statefulset.scale",
        "kubernetes.statefulset.rollout_restart", "kubernetes.node.cordon", "kubernetes.node.drain",
        "kubernetes.network.partition", "kubernetes.zone.outage",
    ]:  # fmt: skip
        assert name in loaded.faults
    for name in ["kubernetes.pods.ready", "kubernetes.deployment.available", "kubernetes.rollout.complete",
                 "kubernetes.resource", "kubernetes.events"]:  # fmt: skip
        assert name in loaded.probes
    assert "kubernetes.exec" in loaded.actions
    assert loaded.drivers["kubernetes"].sweep is not None
    assert loaded.faults["kubernetes.pods.delete"].reversibility is contract.Reversibility.SELF_HEALING
    assert loaded.faults["kubernetes.node.drain"].reversibility is contract.Reversibility.REVERSIBLE


def test_a_missing_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(errors.ComponentMissing, match="no Kubernetes cluster is configured") as caught:
        kubeconfigs.resolve()
    assert "set KUBECONFIG" in (caught.value.hint or "")
    with pytest.raises(errors.ComponentMissing, match="kubeconfig '/x/y' does not exist"):
        kubeconfigs.resolve("/x/y")
    # A self-healing fault's revert needs no cluster at all.
    gone = pods.PodRevert(
        connection=kubeconfigs.Connection(kubeconfig="/x/y", context=None, in_cluster=False),
        namespace="shop",
        name="web-1",
        uid=None,
    )
    assert (
        pods.PodsDelete().revert(gone, contract.RunContext(run_id="r"))
        is contract.RevertOutcome.ALREADY_CLEAN
    )
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert kubeconfigs.resolve().in_cluster


def test_probes_may_read_protected_namespaces() -> None:
    args = pods.PodsReadyArgs.model_validate(
        {"namespace": "kube-system", "label_selector": "k8s-app=kube-dns"}
    )
    assert args.allow_protected
    assert clusterevents.EventsArgs.model_validate({"namespace": "kube-system"}).namespace == "kube-system"


def test_the_context_comes_from_the_step_then_chaoskit_kube_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("CHAOSKIT_KUBE_CONTEXT", "staging")
    assert kubeconfigs.resolve().context == "staging"
    assert kubeconfigs.resolve(context="prod").context == "prod"
    recorded = kubeconfigs.resolve().model_dump(mode="json")
    assert recorded == {"kubeconfig": str(kubeconfig.resolve()), "context": "staging", "in_cluster": False}
    assert kubeconfigs.Connection.model_validate(recorded) == kubeconfigs.resolve()


def test_a_step_context_wins_over_the_runs_which_wins_over_chaoskit_kube_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("CHAOSKIT_KUBE_CONTEXT", "from-env")
    run = contract.RunContext(run_id="r", settings={kubeconfigs.CONTEXT_SETTING: "from-run"})
    bare = contract.RunContext(run_id="r")
    assert clusters.connection(clusters.ClusterArgs(context="from-step"), run).context == "from-step"
    assert clusters.connection(clusters.ClusterArgs(), run).context == "from-run"
    assert clusters.connection(clusters.ClusterArgs(), bare).context == "from-env"
    # The operator hands its own kubeconfig to the in-process sweep the same way.
    other = tmp_path / "other"
    other.write_text("apiVersion: v1\nkind: Config\n")
    swept = contract.RunContext(run_id="r", settings={kubeconfigs.KUBECONFIG_SETTING: str(other)})
    assert clusters.connection(clusters.ClusterArgs(), swept).kubeconfig == str(other.resolve())


def test_chaoskit_run_context_reaches_the_driver_without_touching_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from chaoskit.cli import main, run

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters: [{name: dev, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: dev, user: {token: t}}]\n"
        "contexts: [{name: dev, context: {cluster: dev, user: dev}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("CHAOSKIT_KUBE_CONTEXT", raising=False)
    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        "title: t\nmethod:\n  - name: d\n    fault: kubernetes.pods.delete\n"
        "    with: {namespace: shop, label_selector: app=web}\n"
    )
    result = CliRunner().invoke(
        main.cli, ["run", str(experiment), "--dry-run", "--context", "staging", "--state-dir", str(tmp_path)]
    )
    # The kubeconfig has no context 'staging': the dry run says so, so the driver was asked for it.
    assert "context 'staging'" in result.output, result.output
    assert "CHAOSKIT_KUBE_CONTEXT" not in os.environ
    assert run.KUBE_CONTEXT == kubeconfigs.CONTEXT_SETTING
    # A real run passes it through the runner's context the same way.
    journal = tmp_path / "journal.json"
    args = [
        "run",
        str(experiment),
        "--context",
        "staging",
        "--state-dir",
        str(tmp_path),
        "--journal",
        str(journal),
    ]
    result = CliRunner().invoke(main.cli, args)
    assert result.exit_code == int(errors.ExitCode.ERROR), result.output
    assert "context 'staging'" in journal.read_text()
    assert "CHAOSKIT_KUBE_CONTEXT" not in os.environ
