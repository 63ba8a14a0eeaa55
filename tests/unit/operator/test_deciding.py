"""The operator's decisions without a cluster: experiment → Job, Job → status, schedule → runs,
and ``chaoskit operator execute`` leaving a real run's summary in its termination message."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.errors import UsageError
from chaoskit.kube import marks
from chaoskit.operator import chaosschedules, jobs, resources, statuses, summaries

UID = "0b0e0c1a-1111-2222-3333-444455556666"
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


def resource(spec: dict[str, Any], name: str = "checkout") -> dict[str, Any]:
    return {
        "apiVersion": resources.API_VERSION,
        "kind": resources.EXPERIMENT_KIND,
        "metadata": {"name": name, "namespace": "shop", "uid": UID, "resourceVersion": "1"},
        "spec": spec,
    }


def test_an_inline_experiment_becomes_an_owned_configmap_and_a_job_that_runs_it_once() -> None:
    obj = resource(
        {"experiment": EXPERIMENT, "variables": {"b": "2", "a": "1"}, "serviceAccountName": "runner"}
    )
    spec = resources.experiment_spec(obj)
    configmap = jobs.configmap(obj, spec)
    job = jobs.job(obj, spec, "chaoskit:dev")

    assert configmap is not None
    assert yaml.safe_load(configmap["data"]["experiment.yaml"]) == EXPERIMENT
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == UID
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": resources.API_VERSION,
        "kind": "ChaosExperiment",
        "name": "checkout",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["serviceAccountName"] == "runner"
    assert pod["restartPolicy"] == "Never"
    assert container["image"] == "chaoskit:dev"
    assert container["command"] == ["chaoskit"]
    args = container["args"]
    assert args[:2] == ["operator", "execute"]
    assert args[args.index("--") + 1] == "/etc/chaoskit/experiment.yaml"
    assert args[-4:] == ["--var", "a=1", "--var", "b=2"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CHAOSKIT_RUN_ID"] == f"k8s-{UID}"
    assert job["metadata"]["labels"][marks.RUN_ID] == f"k8s-{UID}"
    assert pod["volumes"][0]["configMap"] == {"name": configmap["metadata"]["name"]}


def test_a_configmap_reference_is_mounted_under_the_experiment_file_name() -> None:
    obj = resource({"experimentRef": {"name": "mine", "key": "pods.yaml"}, "image": "own:1"})
    spec = resources.experiment_spec(obj)
    assert jobs.configmap(obj, spec) is None
    job = jobs.job(obj, spec, "chaoskit:dev")
    volume = job["spec"]["template"]["spec"]["volumes"][0]["configMap"]
    assert volume == {"name": "mine", "items": [{"key": "pods.yaml", "path": "experiment.yaml"}]}
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "own:1"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({}, "exactly one of spec.experiment"),
        ({"experiment": EXPERIMENT, "experimentRef": {"name": "x"}}, "exactly one of spec.experiment"),
        ({"experiment": EXPERIMENT, "ttlSecondsAfterFinished": -1}, "ttlSecondsAfterFinished"),
    ],
)
def test_a_spec_the_controller_cant_act_on_is_refused_naming_the_resource(
    spec: dict[str, Any], says: str
) -> None:
    with pytest.raises(resources.InvalidResource) as caught:
        resources.experiment_spec(resource(spec))
    assert "ChaosExperiment shop/checkout" in caught.value.message
    assert says in caught.value.message


def test_long_names_stay_valid_label_values() -> None:
    obj = resource({"experiment": EXPERIMENT}, name="x" * 200)
    assert len(jobs.job_name(obj)) <= 63
    assert jobs.job_name(obj) != jobs.configmap_name(obj)


def job_with(condition: str | None) -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "message": "deadline"}] if condition else []
    return {"status": {"startTime": "2030-01-01T00:00:00Z", "conditions": conditions}}


def pod_with(message: str | None, exit_code: int) -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "finishedAt": "2030-01-01T00:01:00Z"}
    if message is not None:
        terminated["message"] = message
    return {"status": {"containerStatuses": [{"name": "chaoskit", "state": {"terminated": terminated}}]}}


def test_status_follows_the_job_from_pending_to_running_to_the_verdict_in_the_summary() -> None:
    now = "2030-01-01T00:02:00Z"
    status, events = statuses.of_run({}, None, [], run_id="r", job_name="j", now=now)
    assert status["phase"] == "Pending" and not events
    status, events = statuses.of_run(status, job_with(None), [], run_id="r", job_name="j", now=now)
    assert status["phase"] == "Running"
    assert [e.reason for e in events] == ["Started"]
    summary = {"verdict": "deviated", "exitCode": 1, "reason": "too slow", "score": 42.5,
               "recovery": {"required": 5.0, "measured": 7.5, "met": False}}  # fmt: skip
    done, events = statuses.of_run(
        status, job_with("Failed"), [pod_with(json.dumps(summary), 1)], run_id="r", job_name="j", now=now
    )
    assert done["phase"] == "Finished"
    assert (done["verdict"], done["exitCode"], done["score"]) == ("deviated", 1, 42.5)
    assert done["recovery"] == {"required": 5.0, "measured": 7.5, "met": False}
    completed = next(c for c in done["conditions"] if c["type"] == "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "Deviated")
    assert [(e.type, e.reason) for e in events] == [("Warning", "Finished")]
    # Final: a later pass (the Job deleted by its TTL) changes nothing.
    assert statuses.of_run(done, None, [], run_id="r", job_name="j", now=now) == (done, [])


def test_a_run_that_left_no_summary_gets_the_verdict_of_its_exit_code() -> None:
    status, _ = statuses.of_run(
        {},
        job_with("Failed"),
        [pod_with("Traceback ...", 2)],
        run_id="r",
        job_name="j",
        now="2030-01-01T00:00:00Z",
    )
    assert (status["phase"], status["verdict"], status["exitCode"]) == ("Finished", "invalid", 2)
    status, _ = statuses.of_run(
        {}, job_with("Failed"), [], run_id="r", job_name="j", now="2030-01-01T00:00:00Z"
    )
    assert (status["verdict"], status["exitCode"]) == ("error", 4)
    assert "deadline" in status["reason"]


def test_a_job_deleted_by_someone_else_ends_the_run_in_error() -> None:
    running = {"phase": "Running", "job": "j", "runId": "r", "conditions": []}
    status, events = statuses.vanished(running, "j", ["uncordoned node n1"], "2030-01-01T00:00:00Z")
    assert (status["phase"], status["verdict"], status["exitCode"]) == ("Finished", "error", 4)
    assert statuses.finished(status) and not statuses.succeeded(status)
    assert [(e.type, e.reason) for e in events] == [("Warning", "JobDeleted")]
    assert "uncordoned node n1" in events[0].message


def test_summaries_fit_the_termination_message_limit() -> None:
    summary = summaries.without_journal(1, "x" * 10_000)
    summary["errors"] = ["e" * 3000, "f" * 3000]
    text = summaries.dumps(summary)
    assert len(text.encode()) <= summaries.LIMIT
    assert summaries.parse(text) is not None and summaries.parse(text)["verdict"] == "deviated"  # type: ignore[index]
    assert summaries.parse("Traceback (most recent call last)") is None


# ---- schedules


MONDAY = dt.datetime(2030, 1, 7, tzinfo=dt.UTC)


def schedule(policy: str = "Forbid", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": resources.API_VERSION,
        "kind": resources.SCHEDULE_KIND,
        "metadata": {
            "name": "hourly",
            "namespace": "shop",
            "uid": "s-uid",
            "creationTimestamp": "2029-12-01T00:00:00Z",
        },
        "spec": {
            "schedule": {
                "cron": "0 * * * *",
                "windows": [{"days": "weekdays", "start": "09:00", "end": "17:00"}],
            },
            "concurrencyPolicy": policy,
            "template": {"spec": {"experiment": EXPERIMENT}},
            **extra,
        },
    }


def run(name: str, at: dt.datetime, phase: str | None, verdict: str | None = None) -> dict[str, Any]:
    status = {"phase": phase, "verdict": verdict} if phase else {}
    meta = {"name": name, "annotations": {resources.SCHEDULED_AT: chaosschedules.iso(at)}}
    return {"metadata": meta, "status": status}


def plan(obj: dict[str, Any], runs: list[dict[str, Any]], now: dt.datetime) -> chaosschedules.Plan:
    return chaosschedules.plan(obj, resources.schedule_spec(obj), runs, now)


def test_a_schedule_fires_inside_its_windows_once_per_fire_time() -> None:
    obj = schedule()
    assert plan(obj, [], MONDAY.replace(hour=8, minute=30)).create is None  # before the window
    due = plan(obj, [], MONDAY.replace(hour=9, second=30))
    assert due.create == chaosschedules.run_name("hourly", due.fire) and due.fire is not None  # type: ignore[arg-type]
    assert due.fire.nominal == MONDAY.replace(hour=9)
    assert due.status["lastScheduleTime"] == "2030-01-07T09:00:00Z"
    assert due.status["nextScheduleTime"] == "2030-01-07T10:00:00Z"
    # With the status written, the same fire is not due again.
    obj["status"] = due.status
    assert plan(obj, [], MONDAY.replace(hour=9, minute=30)).create is None
    # Saturday is outside the weekday window.
    assert plan(obj, [], dt.datetime(2030, 1, 12, 10, 0, 5, tzinfo=dt.UTC)).create is None


def test_a_restart_that_lost_the_status_finds_the_run_by_its_name() -> None:
    obj = schedule()
    first = plan(obj, [], MONDAY.replace(hour=9, second=5))
    assert first.create is not None
    again = plan(
        obj, [run(first.create, MONDAY.replace(hour=9), "Running")], MONDAY.replace(hour=9, second=50)
    )
    assert again.create is None and not again.skipped
    assert again.status["lastScheduleTime"] == "2030-01-07T09:00:00Z"


def test_only_the_latest_missed_fire_starts_and_only_within_the_misfire_grace() -> None:
    obj = schedule()
    late = plan(obj, [], MONDAY.replace(hour=12, minute=30))
    assert late.fire is not None and late.fire.nominal == MONDAY.replace(hour=12)
    obj["spec"]["schedule"]["misfire_grace"] = "10m"
    assert plan(obj, [], MONDAY.replace(hour=12, minute=30)).create is None


def test_concurrency_policies_with_a_run_still_going() -> None:
    active = [run("hourly-old", MONDAY.replace(hour=9), "Running")]
    now = MONDAY.replace(hour=10, second=10)
    forbid = plan(schedule("Forbid"), active, now)
    assert forbid.create is None and forbid.skipped and "hourly-old" in forbid.skipped
    assert forbid.status["lastScheduleTime"] == "2030-01-07T10:00:00Z"
    replace = plan(schedule("Replace"), active, now)
    assert replace.create is not None and replace.delete == ["hourly-old"]
    assert replace.status["active"] == [replace.create]
    allow = plan(schedule("Allow"), active, now)
    assert allow.create is not None and not allow.delete
    assert sorted(allow.status["active"]) == sorted(["hourly-old", allow.create])


def test_history_limits_delete_the_oldest_finished_runs() -> None:
    obj = schedule(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    runs = [run(f"ok-{h}", MONDAY.replace(hour=h), "Finished", "completed") for h in (9, 10, 11)]
    runs += [run(f"bad-{h}", MONDAY.replace(hour=h), "Finished", "deviated") for h in (12, 13)]
    result = plan(obj, runs, MONDAY.replace(hour=13, minute=30))
    assert result.delete == ["ok-9", "bad-12"]
    assert result.status["lastRun"]["name"] == "bad-13"


def test_a_bad_schedule_is_refused_naming_the_field() -> None:
    obj = schedule()
    obj["spec"]["schedule"]["cron"] = "every hour"
    with pytest.raises(UsageError) as caught:
        resources.schedule_spec(obj)
    assert "schedule.cron" in caught.value.message and "ChaosSchedule shop/hourly" in caught.value.message


# ---- what the Job's container runs


def test_execute_runs_chaoskit_run_under_the_given_run_id_and_leaves_its_summary(tmp_path: Path) -> None:
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(EXPERIMENT))
    message = tmp_path / "termination-log"
    env_run_id = "k8s-test-0001"
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "operator", "execute", "--termination-log", str(message), "--",
         str(experiment), "--journal", str(tmp_path / "journal.json"), "-q", "--state-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "CHAOSKIT_RUN_ID": env_run_id, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = summaries.parse(message.read_text())
    assert summary is not None
    assert (summary["verdict"], summary["exitCode"], summary["runId"]) == ("completed", 0, env_run_id)
    assert summary["score"] == pytest.approx(100.0, abs=25)
    assert summary["recovery"]["met"] is True
    assert json.loads((tmp_path / "journal.json").read_text())["run_id"] == env_run_id


def test_execute_of_a_bad_file_exits_2_and_still_leaves_a_summary(tmp_path: Path) -> None:
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text("title: x\nmethod:\n  - fault: no.such.fault\n")
    message = tmp_path / "termination-log"
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "operator", "execute", "--termination-log", str(message), "--",
         str(experiment), "--journal", str(tmp_path / "journal.json"), "--state-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    summary = summaries.parse(message.read_text())
    assert summary is not None and (summary["verdict"], summary["exitCode"]) == ("invalid", 2)


# ---- the example resources


def example_experiments() -> list[tuple[str, dict[str, Any]]]:
    """Every experiment in operators/examples: inline in a ChaosExperiment or in a ConfigMap."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((Path(__file__).resolve().parents[3] / "operators" / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc.get("kind") == "ChaosExperiment" and "experiment" in doc["spec"]:
                found.append((f"{path.name}:{doc['metadata']['name']}", doc["spec"]["experiment"]))
            if doc.get("kind") == "ConfigMap":
                for key, text in doc["data"].items():
                    found.append((f"{path.name}:{key}", yaml.safe_load(text)))
    return found


@pytest.mark.parametrize(("where", "experiment"), example_experiments())
def test_the_examples_experiments_are_valid(where: str, experiment: dict[str, Any], tmp_path: Path) -> None:
    file = tmp_path / "experiment.yaml"
    file.write_text(yaml.safe_dump(experiment))
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "validate", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{where}: {done.stdout}{done.stderr}"


def test_the_example_schedule_is_a_valid_schedule() -> None:
    path = Path(__file__).resolve().parents[3] / "operators" / "examples" / "schedule.yaml"
    obj = yaml.safe_load(path.read_text())
    spec = resources.schedule_spec(obj | {"metadata": {**obj["metadata"], "namespace": "shop", "uid": "u"}})
    assert spec.schedule.cron == "0 10 * * mon-fri" and len(spec.schedule.blackouts) == 2
