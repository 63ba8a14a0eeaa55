"""The operator against the real API server and controllers (scripts/kube-up, or KUBECONFIG).

The simulated kubelet binds and starts the run Jobs' pods; it runs no containers, so a test
plays the container's part by marking the pod Succeeded with the termination message that
``chaoskit operator execute`` wrote for a real local run. The real Job controller then
completes the Job, and the operator must turn that into the resource's status.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.drivers import contract, registry
from chaoskit.gameday import firing
from chaoskit.kube import apis, kubeconfigs, marks
from chaoskit.operator import chaosschedules, reconciling, resources, watching
from tests.k8s.clusters import Cluster, wait_until

pytestmark = pytest.mark.k8s
ROOT = Path(__file__).resolve().parents[3]
OPERATORS = ROOT / "operators"
BASE = f"/apis/{resources.GROUP}/{resources.VERSION}"
EXPERIMENT = {
    "title": "true stays true",
    "steady_state": [
        {
            "name": "true exits 0",
            "probe": "process.command",
            "with": {"argv": ["true"]},
            "expect": {"path": "exit_code", "equals": 0},
        }
    ],
    "method": [{"pause": "10ms"}],
    "recovery": {"within": "5s", "interval": "100ms"},
}


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    return subprocess.run([kubectl, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    """The CRDs installed for real (applying is idempotent; other runs may share them)."""
    done = kubectl("apply", "-f", str(OPERATORS / "crds"))
    assert done.returncode == 0, done.stderr
    for name in ("chaosexperiments.chaoskit.io", "chaosschedules.chaoskit.io"):
        wait_until(
            f"CRD {name} Established",
            lambda name=name: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (
                    cluster.api.get(
                        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", what="t"
                    )
                    .get("status", {})
                    .get("conditions", [])
                )
            ),
        )
    # Creating a CR right after Established can still meet a 404 while discovery catches up.
    wait_until("the ChaosExperiment API", lambda: _served(cluster))


def _served(cluster: Cluster) -> bool:
    try:
        cluster.api.list(f"{BASE}/chaosexperiments", what="t")
        cluster.api.list(f"{BASE}/chaosschedules", what="t")
        return True
    except apis.ApiError:
        return False


def sweep(run_id: str) -> list[str]:
    """What ``chaoskit operator run`` reverts with: the kubernetes driver's sweep, in-process."""
    driver = registry.load().drivers["kubernetes"]
    assert driver.sweep is not None
    ctx = contract.RunContext(run_id=run_id)
    try:
        return list(driver.sweep(run_id, ctx))
    finally:
        ctx.close()


@pytest.fixture
def finalized(cluster: Cluster, namespace: str, crds: None) -> Iterator[None]:
    """After the test, its resources deleted through the finalizer path, so the namespace can go
    (a finalizer left behind would keep it Terminating)."""
    yield
    ctl = reconciling.Controller(api=cluster.api, revert=sweep, image="chaoskit:test", namespace=namespace)
    for plural in (resources.SCHEDULES, resources.EXPERIMENTS):
        for item in cluster.api.list(f"{BASE}/namespaces/{namespace}/{plural}", what="test: cleanup"):
            cluster.api.delete(f"{BASE}/namespaces/{namespace}/{plural}/{item['metadata']['name']}", what="t")

    def gone() -> bool:
        ctl.reconcile_once()
        return not cluster.api.list(f"{BASE}/namespaces/{namespace}/{resources.EXPERIMENTS}", what="t")

    wait_until("the test's ChaosExperiments finalized", gone, interval=1.0)


@pytest.fixture
def controller(cluster: Cluster, namespace: str, crds: None) -> Iterator[reconciling.Controller]:
    """The controller watching the test's namespace, running its watch loop in a thread."""
    ctl = reconciling.Controller(api=cluster.api, revert=sweep, image="chaoskit:test", namespace=namespace)
    watcher = watching.Watcher(ctl, interval=1.0, watch_seconds=3)
    thread = threading.Thread(target=watcher.serve, name="operator", daemon=True)
    thread.start()
    yield ctl
    watcher.stop.set()
    watcher.wake.set()
    thread.join(timeout=60)
    assert not thread.is_alive()


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    try:
        return cluster.api.get(path, what="test")
    except apis.ApiError as e:
        if e.status == 404:
            return None
        raise


def create_experiment(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": resources.API_VERSION,
        "kind": "ChaosExperiment",
        "metadata": {"name": name},
        "spec": spec,
    }
    return cluster.api.post(f"{BASE}/namespaces/{namespace}/chaosexperiments", body, what="test: experiment")


def summary_of_a_real_run(tmp_path: Path, run_id: str) -> str:
    """The termination message ``chaoskit operator execute`` leaves after a real (local) run."""
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(EXPERIMENT))
    message = tmp_path / "termination-log"
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "operator", "execute", "--termination-log", str(message), "--",
         str(experiment), "--journal", str(tmp_path / "journal.json"), "-q", "--state-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "CHAOSKIT_RUN_ID": run_id, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return message.read_text()


def finish_pod(cluster: Cluster, pod: dict[str, Any], exit_code: int, message: str) -> None:
    """Play the kubelet after the container exited: phase and terminated state with its message."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = pod["metadata"]
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                  "message": message, "startedAt": now, "finishedAt": now}  # fmt: skip
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "chaoskit",
                "image": "chaoskit:test",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    cluster.api.patch(
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        {"status": status},
        what="test: pod",
    )


def run_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    """The Job's pod once Running. Only the simulated kubelet runs it without a chaoskit image,
    and only there may a test play the container's exit; a real kubelet would pull the image."""
    if not cluster.simulated:
        pytest.skip("plays the run container on the simulated kubelet; real kubelets need the image")

    def running() -> dict[str, Any] | None:
        pods = cluster.api.list(
            f"/api/v1/namespaces/{namespace}/pods", what="t", labelSelector=f"job-name={job}"
        )
        return next((p for p in pods if (p.get("status") or {}).get("phase") == "Running"), None)

    found: dict[str, Any] = wait_until(f"a Running pod of Job {job}", running)
    return found


def events(cluster: Cluster, namespace: str, name: str) -> list[str]:
    items = cluster.api.list(f"/api/v1/namespaces/{namespace}/events", what="test: events")
    return [e["reason"] for e in items if e["involvedObject"].get("name") == name]


def test_operator_run_once_out_of_cluster_starts_runs_and_marks_bad_specs_invalid(
    cluster: Cluster, namespace: str, crds: None, finalized: None
) -> None:
    create_experiment(cluster, namespace, "good", {"experiment": EXPERIMENT})
    both = {"experiment": EXPERIMENT, "experimentRef": {"name": "elsewhere"}}
    create_experiment(cluster, namespace, "both", both)
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "operator", "run", "--once", "--namespace", namespace,
         "--kubeconfig", cluster.api.connection.kubeconfig or "", "--image", "example.org/chaoskit:1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/good-run")
    assert (
        job is not None
        and job["spec"]["template"]["spec"]["containers"][0]["image"] == "example.org/chaoskit:1"
    )
    status = cluster.api.get(f"{BASE}/namespaces/{namespace}/chaosexperiments/both", what="t")["status"]
    assert status["phase"] == "Invalid" and "exactly one of spec.experiment" in status["reason"]
    assert get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/both-run") is None
    assert "Invalid" in events(cluster, namespace, "both")


def test_every_manifest_passes_a_server_side_dry_run(cluster: Cluster, namespace: str, crds: None) -> None:
    # The controller's namespace (and the halt lever's) must exist for their namespaced objects to
    # be judged.
    for name in ("chaoskit-system", "chaoskit"):
        if get(cluster, f"/api/v1/namespaces/{name}") is None:
            cluster.api.post("/api/v1/namespaces", {"metadata": {"name": name}}, what="test")
    done = kubectl("apply", "--dry-run=server", "-k", str(OPERATORS))
    assert done.returncode == 0, done.stderr
    assert "customresourcedefinition.apiextensions.k8s.io/chaosexperiments.chaoskit.io" in done.stdout
    assert "deployment.apps/chaoskit-operator" in done.stdout
    done = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(OPERATORS / "examples"))
    assert done.returncode == 0, done.stderr
    for kind in (
        "chaosexperiment.chaoskit.io/checkout-pod-delete",
        "chaosschedule.chaoskit.io/checkout-weekday",
    ):
        assert kind in done.stdout
    # A spec the schema forbids is refused by the API server itself.
    spec = {"schedule": {"cron": "0 * * * *"}, "concurrencyPolicy": "Sometimes", "template": {"spec": {}}}
    bad = {
        "apiVersion": resources.API_VERSION,
        "kind": "ChaosSchedule",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    with pytest.raises(apis.ApiError) as refused:
        cluster.api.post(f"{BASE}/namespaces/{namespace}/chaosschedules", bad, what="test")
    assert refused.value.status == 422 and "concurrencyPolicy" in refused.value.api_message


def test_an_experiment_runs_as_a_job_and_its_verdict_lands_in_the_status(
    cluster: Cluster, namespace: str, controller: reconciling.Controller, tmp_path: Path, finalized: None
) -> None:
    obj = create_experiment(
        cluster, namespace, "true-holds", {"experiment": EXPERIMENT, "variables": {"a": "1"}}
    )
    run_id = f"k8s-{obj['metadata']['uid']}"
    job_path = f"/apis/batch/v1/namespaces/{namespace}/jobs/true-holds-run"
    job = wait_until("the run's Job", lambda: get(cluster, job_path))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "chaoskit:test"
    assert container["args"][:2] == ["operator", "execute"]
    assert container["args"][-2:] == ["--var", "a=1"]
    assert {"name": "CHAOSKIT_RUN_ID", "value": run_id} in container["env"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    configmap = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/true-holds-experiment")
    assert configmap is not None and yaml.safe_load(configmap["data"]["experiment.yaml"]) == EXPERIMENT
    path = f"{BASE}/namespaces/{namespace}/chaosexperiments/true-holds"
    wait_until(
        "the finalizer",
        lambda: resources.FINALIZER in (get(cluster, path) or {})["metadata"].get("finalizers", []),
    )

    pod = run_pod(cluster, namespace, "true-holds-run")
    wait_until(
        "phase Running", lambda: ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Running"
    )
    finish_pod(cluster, pod, 0, summary_of_a_real_run(tmp_path, run_id))
    wait_until(
        "the Job controller completing the Job",
        lambda: any(
            c["type"] == "Complete"
            for c in (get(cluster, job_path) or {}).get("status", {}).get("conditions", [])
        ),
    )
    status = wait_until(
        "the verdict in the status",
        lambda: (
            ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Finished"
            and get(cluster, path)["status"]
        ),  # type: ignore[index]
    )
    assert (status["verdict"], status["exitCode"], status["runId"]) == ("completed", 0, run_id)
    assert status["score"] > 0
    assert status["recovery"]["met"] is True and status["recovery"]["measured"] is not None
    assert status["summary"]["title"] == "true stays true"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Running": "False", "Completed": "True"}
    wait_until(
        "the Events",
        lambda: {"JobCreated", "Started", "Finished"} <= set(events(cluster, namespace, "true-holds")),
    )
    printed = kubectl("get", "-n", namespace, "chaosexperiments")
    assert printed.returncode == 0 and "completed" in printed.stdout and "VERDICT" in printed.stdout

    # ttlSecondsAfterFinished: the finished resource goes, and its Job and ConfigMap with it.
    cluster.api.patch(path, {"spec": {"ttlSecondsAfterFinished": 0}}, what="test: ttl")
    wait_until("the resource deleted after its TTL", lambda: get(cluster, path) is None)
    wait_until("its Job garbage-collected", lambda: get(cluster, job_path) is None)


def test_deleting_a_running_experiment_stops_its_job_and_reverts_its_faults_first(
    cluster: Cluster, namespace: str, controller: reconciling.Controller, finalized: None
) -> None:
    obj = create_experiment(cluster, namespace, "cordons", {"experiment": EXPERIMENT})
    run_id = f"k8s-{obj['metadata']['uid']}"
    path = f"{BASE}/namespaces/{namespace}/chaosexperiments/cordons"
    wait_until(
        "the run's Job", lambda: get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/cordons-run")
    )
    wait_until(
        "phase Running", lambda: ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Running"
    )
    # What the run's kubernetes.node.cordon leaves: a cordoned node marked with its run id. A node
    # of this test's own, so other tests' nodes are not disturbed.
    node = f"ck-operator-{uuid.uuid4().hex[:6]}"
    cluster.api.post("/api/v1/nodes", {"metadata": {"name": node}}, what="test: node")
    try:
        ctx = contract.RunContext(run_id=run_id)
        cordon = {
            "metadata": marks.metadata(ctx.run_id, "kubernetes.node.cordon", 3600),
            "spec": {"unschedulable": True},
        }
        ctx.close()
        cluster.api.patch(f"/api/v1/nodes/{node}", cordon, what="test: cordon")

        cluster.api.delete(path, what="test: delete the experiment")
        wait_until("the resource gone", lambda: get(cluster, path) is None)
        after = cluster.node(node)
        assert not after["spec"].get("unschedulable")
        assert marks.RUN_ID not in (after["metadata"].get("labels") or {})
        assert get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/cordons-run") is None
        pods = cluster.api.list(
            f"/api/v1/namespaces/{namespace}/pods", what="t", labelSelector="job-name=cordons-run"
        )
        assert pods == []
        assert {"Stopping", "Reverted"} <= set(events(cluster, namespace, "cordons"))
    finally:
        cluster.api.delete(f"/api/v1/nodes/{node}", what="test: node cleanup")


def test_a_schedule_creates_its_runs_on_time_and_a_restarted_controller_does_not_repeat_them(
    cluster: Cluster, namespace: str, crds: None, finalized: None
) -> None:
    body = {
        "apiVersion": resources.API_VERSION,
        "kind": "ChaosSchedule",
        "metadata": {"name": "hourly"},
        "spec": {
            "schedule": {
                "cron": "0 * * * *",
                "windows": [{"days": "weekdays", "start": "09:00", "end": "17:00"}],
            },
            "concurrencyPolicy": "Forbid",
            "template": {"metadata": {"labels": {"team": "sre"}}, "spec": {"experiment": EXPERIMENT}},
        },
    }
    cluster.api.post(f"{BASE}/namespaces/{namespace}/chaosschedules", body, what="test: schedule")
    monday = dt.datetime(2030, 1, 7, tzinfo=dt.UTC)
    now = [monday.replace(hour=8, minute=30)]

    def controller() -> reconciling.Controller:  # a fresh one is a restarted controller: no memory
        return reconciling.Controller(
            api=cluster.api, revert=sweep, image="chaoskit:test", namespace=namespace, clock=lambda: now[0]
        )

    def runs() -> list[str]:
        items = cluster.api.list(f"{BASE}/namespaces/{namespace}/chaosexperiments", what="t")
        return sorted(i["metadata"]["name"] for i in items)

    path = f"{BASE}/namespaces/{namespace}/chaosschedules/hourly"
    controller().reconcile_once()
    assert runs() == []
    assert cluster.api.get(path, what="t")["status"]["nextScheduleTime"] == "2030-01-07T09:00:00Z"

    now[0] = monday.replace(hour=9, second=30)
    controller().reconcile_once()
    first = chaosschedules.run_name("hourly", firing.Fire(monday.replace(hour=9), monday.replace(hour=9)))
    assert runs() == [first]
    created = cluster.api.get(f"{BASE}/namespaces/{namespace}/chaosexperiments/{first}", what="t")
    assert created["metadata"]["labels"] == {"team": "sre", resources.SCHEDULE_LABEL: "hourly"}
    assert created["spec"]["experiment"] == EXPERIMENT

    # Restarted, and even with the status update lost (crashed right after creating the run).
    now[0] = monday.replace(hour=9, second=50)
    controller().reconcile_once()
    cluster.api.patch(f"{path}/status", {"status": {"lastScheduleTime": "2030-01-07T08:00:00Z"}}, what="t")
    controller().reconcile_once()
    assert runs() == [first]

    # 10:00 while the 09:00 run is still going: Forbid skips it.
    now[0] = monday.replace(hour=10, second=10)
    controller().reconcile_once()
    assert runs() == [first]
    status = cluster.api.get(path, what="t")["status"]
    assert status["lastScheduleTime"] == "2030-01-07T10:00:00Z"
    assert "Forbid" in status["lastSkipped"]["reason"] and status["active"] == [first]

    # 11:00 with Replace: the 09:00 run is deleted (through its finalizer) and a new one starts.
    cluster.api.patch(path, {"spec": {"concurrencyPolicy": "Replace"}}, what="test: policy")
    now[0] = monday.replace(hour=11, second=10)
    controller().reconcile_once()
    second = chaosschedules.run_name("hourly", firing.Fire(monday.replace(hour=11), monday.replace(hour=11)))
    assert second in runs()

    def replaced() -> bool:
        controller().reconcile_once()
        return runs() == [second]

    wait_until("the replaced run finalized", replaced, interval=1.0)

    # Saturday is outside the weekday window.
    now[0] = dt.datetime(2030, 1, 12, 10, 0, 20, tzinfo=dt.UTC)
    controller().reconcile_once()
    assert runs() == [second]
    assert {"RunCreated", "RunSkipped"} <= set(events(cluster, namespace, "hourly"))


OPERATOR_SA = "system:serviceaccount:chaoskit-system:chaoskit-operator"


def test_the_controllers_own_clusterrole_is_enough_for_a_run_and_its_revert(
    cluster: Cluster, namespace: str, crds: None, finalized: None, tmp_path: Path
) -> None:
    """Every API call of a whole run and its deletion made as the controller's ServiceAccount
    (impersonated), bound only to operators/rbac/controller.yaml."""
    if get(cluster, "/api/v1/namespaces/chaoskit-system") is None:
        cluster.api.post("/api/v1/namespaces", {"metadata": {"name": "chaoskit-system"}}, what="test")
    applied = kubectl("apply", "-f", str(OPERATORS / "rbac" / "controller.yaml"))
    assert applied.returncode == 0, applied.stderr
    wait_until(
        "the ClusterRoleBinding in effect",
        lambda: (
            kubectl(
                "auth", "can-i", "create", "jobs.batch", "-n", namespace, "--as", OPERATOR_SA
            ).stdout.strip()
            == "yes"
        ),
    )
    # Least privilege: it can't read Secrets or delete nodes.
    for verb, what in (("get", "secrets"), ("delete", "nodes"), ("create", "pods")):
        assert (
            kubectl("auth", "can-i", verb, what, "-n", namespace, "--as", OPERATOR_SA).stdout.strip() == "no"
        )
    # Leader election: its own Lease in its own namespace, and no other.
    for what, answer in (("leases.coordination.k8s.io/chaoskit-operator", "yes"), ("leases/other", "no")):
        for verb in ("get", "update"):
            asked = kubectl("auth", "can-i", verb, what, "-n", "chaoskit-system", "--as", OPERATOR_SA)
            assert asked.stdout.strip() == answer, (verb, what)
    elsewhere = kubectl("auth", "can-i", "update", "leases", "-n", namespace, "--as", OPERATOR_SA)
    assert elsewhere.stdout.strip() == "no"

    restricted = apis.open_api(cluster.api.connection)
    restricted.client.set_default_header("Impersonate-User", OPERATOR_SA)

    def revert(run_id: str) -> list[str]:
        driver = registry.load().drivers["kubernetes"]
        assert driver.sweep is not None
        ctx = contract.RunContext(run_id=run_id)
        try:
            # The sweep's shared Api for this cluster is the impersonating one.
            ctx.resource(kubeconfigs.resolve().key, lambda: restricted)
            return list(driver.sweep(run_id, ctx))
        finally:
            ctx.close()

    ctl = reconciling.Controller(api=restricted, revert=revert, image="chaoskit:test", namespace=namespace)

    def reconciled() -> None:
        ctl.reconcile_once()
        assert ctl.failures == []

    node = f"ck-operator-{uuid.uuid4().hex[:6]}"
    cluster.api.post("/api/v1/nodes", {"metadata": {"name": node}}, what="test: node")
    try:
        obj = create_experiment(cluster, namespace, "as-operator", {"experiment": EXPERIMENT})
        run_id = f"k8s-{obj['metadata']['uid']}"
        path = f"{BASE}/namespaces/{namespace}/chaosexperiments/as-operator"
        reconciled()
        pod = run_pod(cluster, namespace, "as-operator-run")
        reconciled()
        ctx = contract.RunContext(run_id=run_id)
        cordon = {
            "metadata": marks.metadata(ctx.run_id, "kubernetes.node.cordon", 3600),
            "spec": {"unschedulable": True},
        }
        ctx.close()
        cluster.api.patch(f"/api/v1/nodes/{node}", cordon, what="test: cordon")
        finish_pod(cluster, pod, 0, summary_of_a_real_run(tmp_path, run_id))

        def verdict() -> str | None:
            reconciled()
            return str(((get(cluster, path) or {}).get("status") or {}).get("verdict") or "") or None

        assert wait_until("the verdict", verdict) == "completed"
        cluster.api.delete(path, what="test: delete")

        def gone() -> bool:
            reconciled()
            return get(cluster, path) is None

        wait_until("the resource finalized", gone, interval=1.0)
        assert not cluster.node(node)["spec"].get("unschedulable")
    finally:
        restricted.client.close()
        cluster.api.delete(f"/api/v1/nodes/{node}", what="test: node cleanup")


def test_a_run_with_only_the_pods_driver_role_deletes_pods_and_is_refused_a_node(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """``chaoskit run`` as a ServiceAccount bound (in its namespace) to chaoskit-run-pods: the
    pod-delete example experiment completes; cordoning a node is refused (exit 4, 403 named)."""
    applied = kubectl("apply", "-f", str(OPERATORS / "rbac" / "drivers" / "pods.yaml"))
    assert applied.returncode == 0, applied.stderr
    cluster.api.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "runner"}}, what="t"
    )
    binding = {
        "metadata": {"name": "runner-pods"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "chaoskit-run-pods",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": namespace}],
    }
    cluster.api.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", binding, what="t"
    )

    def token() -> str | None:
        secrets = cluster.api.list(f"/api/v1/namespaces/{namespace}/secrets", what="t")
        for secret in secrets:
            annotations = secret["metadata"].get("annotations") or {}
            if annotations.get("kubernetes.io/service-account.name") == "runner" and "token" in secret.get(
                "data", {}
            ):
                return base64.b64decode(secret["data"]["token"]).decode()
        return None

    # The token controller makes the ServiceAccount's token Secret (Kubernetes before 1.24).
    # Newer clusters (kind) hand out tokens through the TokenRequest API instead.
    secret_token = (
        wait_until("the ServiceAccount's token", token) if not _token_request_only(cluster) else None
    )
    if secret_token is None:
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }
        answer = cluster.api.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/runner/token", request, what="test: token"
        )
        secret_token = str(answer["status"]["token"])
    admin = yaml.safe_load(Path(cluster.api.connection.kubeconfig or "").read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == current["cluster"])["cluster"]
    kubeconfig = tmp_path / "runner.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "runner",
            "clusters": [{"name": "c", "cluster": server}],
            "users": [{"name": "runner", "user": {"token": secret_token}}],
            "contexts": [{"name": "runner", "context": {"cluster": "c", "user": "runner"}}],
        })
    )  # fmt: skip
    kubeconfig.chmod(0o600)
    selector = cluster.deployment(namespace, "web", replicas=3)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}

    def run(file: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chaoskit", "run", str(file), "--journal", str(tmp_path / "j.json"),
             "--state-dir", str(tmp_path / "state"), "-q", *args],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    allowed = run(
        ROOT / "experiments" / "k8s-pod-delete.yaml",
        "--var",
        f"namespace={namespace}",
        "--var",
        f"selector={selector}",
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr

    cordon = tmp_path / "cordon.yaml"
    node = str(cluster.schedulable_nodes()[0]["metadata"]["name"])
    cordon.write_text(
        yaml.safe_dump({
            "title": "cordon a node",
            "method": [{"name": "cordon", "fault": "kubernetes.node.cordon", "with": {"names": [node]}}],
        })
    )  # fmt: skip
    refused = run(cordon)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "403" in refused.stdout + refused.stderr
    assert not cluster.node(node)["spec"].get("unschedulable")


def _token_request_only(cluster: Cluster) -> bool:
    """Kubernetes 1.24 and later no longer make token Secrets for ServiceAccounts."""
    version = cluster.api.get("/version", what="test: version")
    return (int(version["major"]), int(str(version["minor"]).rstrip("+"))) >= (1, 24)


def test_a_job_deleted_behind_the_operators_back_is_not_started_again(
    cluster: Cluster, namespace: str, controller: reconciling.Controller, finalized: None
) -> None:
    create_experiment(cluster, namespace, "orphaned", {"experiment": EXPERIMENT})
    path = f"{BASE}/namespaces/{namespace}/chaosexperiments/orphaned"
    job_path = f"/apis/batch/v1/namespaces/{namespace}/jobs/orphaned-run"
    first = wait_until("the run's Job", lambda: get(cluster, job_path))
    wait_until(
        "phase Running", lambda: ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Running"
    )
    cluster.api.delete(job_path, what="test: delete the Job", body={"propagationPolicy": "Background"})
    status = wait_until(
        "the run marked ended",
        lambda: (
            ((get(cluster, path) or {}).get("status") or {}).get("phase") == "Finished"
            and get(cluster, path)["status"]
        ),  # type: ignore[index]
    )
    assert (status["verdict"], status["exitCode"]) == ("error", 4)
    assert "deleted before the run finished" in status["reason"]
    assert "JobDeleted" in events(cluster, namespace, "orphaned")
    again = get(cluster, job_path)
    assert again is None or again["metadata"]["uid"] == first["metadata"]["uid"]  # not a new run
