"""What a ChaosSchedule should do now: which run is due, what concurrency and history limits
ask to delete. Pure: the reconciler lists the schedule's runs, calls ``plan`` and applies it.

Restarts never duplicate a run: a fire's run has a name fixed by its nominal time, and
``lastScheduleTime`` in the schedule's status says which fires were handled. A fire missed
while the controller was down still starts if it is at most ``misfire_grace`` late; of several
missed fires only the latest starts (as a CronJob does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from chaoskit import errors
from chaoskit.engine import halts, planning
from chaoskit.gameday import firing, schedules
from chaoskit.operator import resources, statuses
from chaoskit.spec import reading

JSON = resources.JSON


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def run_name(schedule_name: str, fire: firing.Fire) -> str:
    """The fire's ChaosExperiment name: the schedule's name and the fire's minute (as CronJob)."""
    suffix = str(int(fire.nominal.timestamp()) // 60)
    name = f"{schedule_name}-{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(schedule_name.encode()).hexdigest()[:8]
    return f"{schedule_name[: 63 - len(suffix) - 10].rstrip('-.')}-{digest}-{suffix}"


def due(
    schedule: schedules.Schedule,
    handled_until: dt.datetime,
    now: dt.datetime,
    key: str,
    *,
    duration: float = 0.0,
    started: Sequence[dt.datetime] = (),
) -> firing.Fire | None:
    """The latest fire whose nominal time is after ``handled_until``, that has started by
    ``now`` and is at most ``misfire_grace`` late; None when there is none. ``duration`` and
    ``started`` (when earlier runs were scheduled) are as in ``firing.next_fire``."""
    earliest = now - dt.timedelta(seconds=schedule.misfire_grace + schedule.jitter)
    cursor = handled_until
    if schedule.random is None:
        # Cron times don't depend on where the search starts: skip what is past the grace.
        cursor = max(handled_until, earliest - dt.timedelta(seconds=1))
    # Random draws chain from the last fire handled, as the GameDay daemon's do; a cursor that
    # moved with ``now`` would draw afresh at every pass and never keep the mean.
    latest: firing.Fire | None = None
    for _ in range(10_000):  # a grace of days on a per-minute cron is a few thousand fires
        fire = firing.next_fire(
            schedule, cursor, key, duration=duration, started=_started_on(schedule, cursor, started)
        )
        if fire.at > now:
            return latest
        if (now - fire.at).total_seconds() <= schedule.misfire_grace:
            latest = fire
        started = [*started, fire.nominal]
        cursor = fire.nominal
    # Down for longer than ten thousand random fires: go on from the grace, as for cron.
    return due(schedule, max(cursor, earliest - dt.timedelta(seconds=1)), now, key, duration=duration)


def _started_on(schedule: schedules.Schedule, when: dt.datetime, started: Sequence[dt.datetime]) -> int:
    day = firing.local_day(schedule, when)
    return sum(1 for t in started if firing.local_day(schedule, t) == day)


def _following(
    schedule: schedules.Schedule,
    after: dt.datetime,
    now: dt.datetime,
    key: str,
    *,
    duration: float,
    started: Sequence[dt.datetime],
) -> firing.Fire:
    """The first fire after ``now`` on the chain that continues from ``after``."""
    cursor = after if schedule.random is not None else max(after, now)
    for _ in range(10_000):
        fire = firing.next_fire(
            schedule, cursor, key, duration=duration, started=_started_on(schedule, cursor, started)
        )
        if fire.at > now:
            return fire
        started = [*started, fire.nominal]
        cursor = fire.nominal
    return firing.next_fire(schedule, now, key, duration=duration)


def planned_duration(spec: resources.ScheduleSpec) -> float:
    """Seconds a run is planned to take (``planning.planned_duration``, what ``--dry-run``
    shows), for fitting runs inside windows. Only an inline experiment is read: for an
    ``experimentRef`` the controller does not read the ConfigMap, and only the start is fitted."""
    schedule, inline = spec.schedule, spec.template.spec.experiment
    if inline is None or schedule.fit is not schedules.Fit.RUN or not schedule.windows:
        return 0.0
    try:
        loaded = reading.load_text(
            json.dumps(inline),
            name="spec.template.spec.experiment",
            variables=dict(spec.template.spec.variables),
            env={},
        )
    except errors.ChaoskitError:
        return 0.0  # the run itself reports what is wrong with the experiment
    return planning.planned_duration(loaded.experiment)


@dataclass
class Plan:
    create: str | None = None
    """The name of the run (ChaosExperiment) to create now."""
    fire: firing.Fire | None = None
    delete: list[str] = field(default_factory=list)
    """Runs to delete: replaced, or beyond the history limits (oldest first)."""
    skipped: str | None = None
    """Why a due fire was not run (Forbid while a run is active)."""
    status: JSON = field(default_factory=dict)
    """The schedule's new status."""


def _fire_time(run: JSON) -> str:
    meta = run.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(resources.SCHEDULED_AT) or meta.get("creationTimestamp"))


def plan(
    obj: JSON,
    spec: resources.ScheduleSpec,
    runs: list[JSON],
    now: dt.datetime,
    halt: halts.Halt | None = None,
) -> Plan:
    """What to do for schedule ``obj`` whose existing runs are ``runs``, at ``now``; a fire due
    while ``halt`` is in force is skipped (not queued for later)."""
    meta, previous = obj["metadata"], dict(obj.get("status") or {})
    key = f"{meta['namespace']}/{meta['name']}"
    handled = parse(previous.get("lastScheduleTime")) or parse(meta.get("creationTimestamp")) or now
    result = Plan(status=previous)
    names = {r["metadata"]["name"] for r in runs}
    live = [r for r in runs if not (r["metadata"].get("deletionTimestamp"))]
    active = [r for r in live if not statuses.finished(r.get("status") or {})]

    duration = planned_duration(spec)
    started = [t for t in (parse(_fire_time(r)) for r in runs) if t is not None]
    fire = None if spec.suspend else due(spec.schedule, handled, now, key, duration=duration, started=started)
    if fire is not None:
        name = run_name(meta["name"], fire)
        result.status["lastScheduleTime"] = iso(fire.nominal)
        if name in names:
            pass  # made before a restart: the status update was lost, the run was not
        elif halt is not None:
            result.skipped = f"skipped the run due at {iso(fire.at)}: {halt.describe()}"
            result.status["lastSkipped"] = {"time": iso(fire.nominal), "reason": result.skipped}
        elif active and spec.concurrency_policy is resources.ConcurrencyPolicy.FORBID:
            result.skipped = (
                f"skipped the run due at {iso(fire.at)}: "
                f"{', '.join(sorted(r['metadata']['name'] for r in active))} still running (Forbid)"
            )
            result.status["lastSkipped"] = {"time": iso(fire.nominal), "reason": result.skipped}
        else:
            if spec.concurrency_policy is resources.ConcurrencyPolicy.REPLACE:
                result.delete += sorted(r["metadata"]["name"] for r in active)
            result.create, result.fire = name, fire
            active = [r for r in active if r["metadata"]["name"] not in result.delete]

    done = sorted((r for r in live if statuses.finished(r.get("status") or {})), key=_fire_time)
    good = [r for r in done if statuses.succeeded(r["status"])]
    bad = [r for r in done if not statuses.succeeded(r["status"])]
    for kept, limit in ((good, spec.successful_runs_history_limit), (bad, spec.failed_runs_history_limit)):
        result.delete += [r["metadata"]["name"] for r in kept[: max(0, len(kept) - limit)]]

    result.status["active"] = sorted(
        [r["metadata"]["name"] for r in active] + ([result.create] if result.create else [])
    )
    if done:
        last = done[-1]
        result.status["lastRun"] = {
            "name": last["metadata"]["name"],
            "verdict": last["status"].get("verdict"),
            "score": last["status"].get("score"),
        }
    if not spec.suspend:
        after = fire.nominal if fire is not None else handled
        if fire is not None:
            started = [*started, fire.nominal]
        try:
            following = _following(spec.schedule, after, now, key, duration=duration, started=started)
            result.status["nextScheduleTime"] = iso(following.at)
        except errors.ChaoskitError:  # never fires again (windows/blackouts): nothing to show
            result.status.pop("nextScheduleTime", None)
    return result


def experiment(obj: JSON, spec: resources.ScheduleSpec, name: str, fire: firing.Fire) -> JSON:
    """The ChaosExperiment of one fire, owned by the schedule (deleting it deletes its runs,
    each through its own finalizer)."""
    meta = obj["metadata"]
    template_meta = spec.template.metadata
    labels = {**(template_meta.get("labels") or {}), resources.SCHEDULE_LABEL: meta["name"]}
    annotations = {**(template_meta.get("annotations") or {}), resources.SCHEDULED_AT: iso(fire.nominal)}
    return {
        "apiVersion": resources.API_VERSION,
        "kind": resources.EXPERIMENT_KIND,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": resources.API_VERSION,
                    "kind": resources.SCHEDULE_KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec.template.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
