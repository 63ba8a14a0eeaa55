"""Applying the operator's decisions through the API: one pass over every ChaosExperiment and
ChaosSchedule (level-triggered, so a pass after a restart picks up where the last one stopped).

Deleting a ChaosExperiment goes through its finalizer: the Job is deleted (its pod gets SIGTERM
and the engine reverts), the run's faults are swept by run id (what the pod could not revert,
e.g. it was killed) and only then is the finalizer removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from chaoskit import errors
from chaoskit.engine import halts
from chaoskit.kube import apis, haltlevers
from chaoskit.operator import chaosschedules, jobs, resources, statuses

log = logging.getLogger("chaoskit.operator")
JSON = resources.JSON

Clock = Callable[[], dt.datetime]
Revert = Callable[[str], list[str]]
"""Reverts what a run id left in the cluster; returns what it did (the kubernetes driver's sweep)."""


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Controller:
    api: apis.Api
    revert: Revert
    image: str
    namespace: str | None = None
    """Watch one namespace; None: every namespace."""
    clock: Clock = system_clock
    halt: Callable[[], halts.Halt | None] = lambda: None
    """The cluster's halt lever, asked once per pass: schedules skip fires while it is pulled."""
    halt_lever: str = haltlevers.DEFAULT_URI
    """The lever each run's Job watches (``$CHAOSKIT_HALT`` in its pod)."""
    failures: list[str] = field(default_factory=list)
    """The last pass's per-resource failures (also logged and recorded as Events)."""
    halted: halts.Halt | None = field(default=None, init=False)
    """What ``halt`` said at the start of this pass."""

    # ---- paths

    def _custom(self, plural: str, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{resources.GROUP}/{resources.VERSION}"
        path = f"{base}/namespaces/{quote(namespace)}/{plural}" if namespace else f"{base}/{plural}"
        return f"{path}/{quote(name)}" if name else path

    def _experiment_path(self, obj: JSON) -> str:
        meta = obj["metadata"]
        return self._custom(resources.EXPERIMENTS, meta["namespace"], meta["name"])

    # ---- the pass

    def reconcile_once(self) -> None:
        """One pass over every resource; one resource failing does not stop the others."""
        self.failures = []
        self.halted = self.halt()
        schedules = self.api.list(
            self._custom(resources.SCHEDULES, self.namespace), what="listing ChaosSchedules"
        )
        for obj in schedules:
            self._guarded(obj, self.reconcile_schedule)
        experiments = self.api.list(
            self._custom(resources.EXPERIMENTS, self.namespace), what="listing ChaosExperiments"
        )
        for obj in experiments:
            self._guarded(obj, self.reconcile_experiment)

    def _guarded(self, obj: JSON, step: Callable[[JSON], None]) -> None:
        try:
            step(obj)
        except apis.ApiError as e:
            if e.status in (404, 409):
                return  # deleted or changed since listed: the next pass sees the new state
            self._failed(obj, e)
        except errors.ChaoskitError as e:
            self._failed(obj, e)

    def _failed(self, obj: JSON, e: errors.ChaoskitError) -> None:
        text = f"{resources.describe(obj)}: {e.render()}"
        self.failures.append(text)
        log.warning("%s", text)
        # When the API is down the Event can't be recorded either: the log has it.
        with contextlib.suppress(errors.ChaoskitError):
            self.event(obj, statuses.Event("Warning", "ReconcileFailed", e.render()[:1000]))

    # ---- experiments

    def reconcile_experiment(self, obj: JSON) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            if resources.FINALIZER in (meta.get("finalizers") or []):
                self.finalize(obj)
            return
        if resources.FINALIZER not in (meta.get("finalizers") or []):
            # Before anything runs: from here on a deletion waits until the faults are reverted.
            obj = self.api.patch(
                self._experiment_path(obj),
                {
                    "metadata": {
                        "finalizers": [*(meta.get("finalizers") or []), resources.FINALIZER],
                        "resourceVersion": meta["resourceVersion"],
                    }
                },
                what=f"adding the finalizer to {resources.describe(obj)}",
            )
        now = chaosschedules.iso(self.clock())
        previous = dict(obj.get("status") or {})
        if statuses.finished(previous):
            self._expire(obj, previous)
            return
        try:
            spec = resources.experiment_spec(obj)
        except resources.InvalidResource as e:
            self._write_status(obj, *statuses.invalid(previous, e.message, now))
            return
        namespace, job_name = meta["namespace"], jobs.job_name(obj)
        job = self._get(
            f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs/{quote(job_name)}", "the run's Job"
        )
        if job is None and previous.get("job"):
            # Deleted by someone while the run was on: never start it again (that would inject
            # again), take back what it may have left, and say so.
            done = self.revert(resources.run_id(obj))
            status, events = statuses.vanished(previous, job_name, done, now)
            self._write_status(obj, status, events)
            return
        if job is None:
            configmap = jobs.configmap(obj, spec)
            if configmap is not None:
                self._create(
                    f"/api/v1/namespaces/{quote(namespace)}/configmaps", configmap, "the experiment ConfigMap"
                )
            job = self.api.post(
                f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs",
                jobs.job(obj, spec, self.image, self.halt_lever),
                what=f"creating Job {namespace}/{job_name}",
            )
            self.event(obj, statuses.Event("Normal", "JobCreated", f"created Job {job_name}"))
        pods = self.api.list(
            f"/api/v1/namespaces/{quote(namespace)}/pods",
            what="listing the run's pods",
            labelSelector=f"job-name={job_name}",
        )
        status, events = statuses.of_run(
            previous, job, pods, run_id=resources.run_id(obj), job_name=job_name, now=now
        )
        self._write_status(obj, status, events)

    def _expire(self, obj: JSON, status: JSON) -> None:
        spec = obj.get("spec") or {}
        ttl = spec.get("ttlSecondsAfterFinished")
        ended = chaosschedules.parse(status.get("completionTime"))
        if isinstance(ttl, int) and ended is not None and self.clock() >= ended + dt.timedelta(seconds=ttl):
            self.api.delete(self._experiment_path(obj), what=f"deleting {resources.describe(obj)} (TTL)")

    def finalize(self, obj: JSON) -> None:
        """Stop the run and revert its faults; remove the finalizer only when both are done."""
        meta = obj["metadata"]
        namespace, job_name, run_id = meta["namespace"], jobs.job_name(obj), resources.run_id(obj)
        if (obj.get("status") or {}).get("phase") != statuses.Phase.STOPPING:
            self._write_status(
                obj,
                {**(obj.get("status") or {}), "phase": statuses.Phase.STOPPING},
                [
                    statuses.Event(
                        "Normal", "Stopping", f"deleting Job {job_name}, then reverting run {run_id}"
                    )
                ],
            )
        job_path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs/{quote(job_name)}"
        if self._get(job_path, "the run's Job") is not None:
            # Background: the Job goes now and its pod gets SIGTERM, so the engine reverts.
            self._delete(job_path, "the run's Job", {"propagationPolicy": "Background"})
        pods = self.api.list(
            f"/api/v1/namespaces/{quote(namespace)}/pods",
            what="listing the run's pods",
            labelSelector=f"job-name={job_name}",
        )
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                self._delete(
                    f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod['metadata']['name'])}",
                    "a run pod",
                )
        # Reverted now (not only once the pod is gone): a pod that can't stop must not keep a
        # fault applied. It is reverted again when the pod is gone, in case it injected since.
        done = self.revert(run_id)
        stuck = [p["metadata"]["name"] for p in pods if not self._past_grace(p)]
        if stuck:
            return  # next pass: once the pod is gone, sweep once more and let go
        if pods:
            # Its node is gone or unreachable: the kubelet will never confirm. The sweep above
            # ran after the grace period, when a live pod would have been killed.
            names = ", ".join(p["metadata"]["name"] for p in pods)
            self.event(obj, statuses.Event("Warning", "PodNotConfirmedGone", f"{names} still terminating"))
        self.event(
            obj,
            statuses.Event(
                "Normal", "Reverted", "; ".join(done)[:1000] if done else f"run {run_id} left nothing applied"
            ),
        )
        finalizers = [f for f in meta.get("finalizers") or [] if f != resources.FINALIZER]
        self.api.patch(
            self._experiment_path(obj),
            {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
            what=f"removing the finalizer of {resources.describe(obj)}",
        )

    def _past_grace(self, pod: JSON) -> bool:
        """Whether a deleted pod has had its grace period and a minute more to go (the API server
        sets ``deletionTimestamp`` to the end of the grace period)."""
        until = chaosschedules.parse(pod["metadata"].get("deletionTimestamp"))
        return until is not None and self.clock() >= until + dt.timedelta(seconds=60)

    # ---- schedules

    def reconcile_schedule(self, obj: JSON) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        path = self._custom(resources.SCHEDULES, meta["namespace"], meta["name"])
        try:
            spec = resources.schedule_spec(obj)
        except resources.InvalidResource as e:
            previous = dict(obj.get("status") or {})
            if previous.get("problem") != e.message:
                self.api.patch(
                    f"{path}/status", {"status": {"problem": e.message}}, what="writing schedule status"
                )
                self.event(obj, statuses.Event("Warning", "Invalid", e.message[:1000]))
            return
        runs = self.api.list(
            self._custom(resources.EXPERIMENTS, meta["namespace"]),
            what="listing the schedule's runs",
            labelSelector=f"{resources.SCHEDULE_LABEL}={meta['name']}",
        )
        runs = [
            r
            for r in runs
            if any(o.get("uid") == meta["uid"] for o in r["metadata"].get("ownerReferences") or [])
        ]
        plan = chaosschedules.plan(obj, spec, runs, self.clock(), self.halted)
        for name in plan.delete:
            self._delete(self._custom(resources.EXPERIMENTS, meta["namespace"], name), f"run {name}")
        if plan.create is not None and plan.fire is not None:
            body = chaosschedules.experiment(obj, spec, plan.create, plan.fire)
            if self._create(
                self._custom(resources.EXPERIMENTS, meta["namespace"]), body, f"run {plan.create}"
            ):
                self.event(
                    obj, statuses.Event("Normal", "RunCreated", f"created ChaosExperiment {plan.create}")
                )
        if plan.skipped:
            self.event(obj, statuses.Event("Normal", "RunSkipped", plan.skipped))
        plan.status.pop("problem", None)
        if plan.status != (obj.get("status") or {}):
            self.api.patch(
                f"{path}/status", {"status": {**plan.status, "problem": None}}, what="writing schedule status"
            )

    # ---- API helpers

    def _get(self, path: str, what: str) -> JSON | None:
        try:
            return self.api.get(path, what=f"reading {what}")
        except apis.ApiError as e:
            if e.status == 404:
                return None
            raise

    def _create(self, path: str, body: JSON, what: str) -> bool:
        """Create ``body``; False when it exists already (made by an earlier pass)."""
        try:
            self.api.post(path, body, what=f"creating {what}")
            return True
        except apis.ApiError as e:
            if e.status == 409:
                return False
            raise

    def _delete(self, path: str, what: str, body: JSON | None = None) -> None:
        try:
            self.api.delete(path, what=f"deleting {what}", body=body)
        except apis.ApiError as e:
            if e.status != 404:
                raise

    def _write_status(self, obj: JSON, status: JSON, events: list[statuses.Event]) -> None:
        if status != (obj.get("status") or {}):
            self.api.patch(f"{self._experiment_path(obj)}/status", {"status": status}, what="writing status")
        for event in events:
            self.event(obj, event)

    def event(self, obj: JSON, event: statuses.Event) -> None:
        meta = obj["metadata"]
        now = self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", resources.API_VERSION),
                "kind": obj.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "source": {"component": resources.COMPONENT},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.api.post(
            f"/api/v1/namespaces/{quote(meta['namespace'])}/events", body, what="recording an Event"
        )
