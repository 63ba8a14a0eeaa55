"""A ChaosExperiment's ``status`` from its Job and the Job's pod, and the Events a change is worth.

Pure: the reconciler reads the objects, calls ``of_run`` and writes what it returns. Phases:
``Pending`` (no Job yet), ``Running``, ``Finished`` (the run ended; ``verdict`` says how),
``Invalid`` (the controller can't act on the spec), ``Stopping`` (deleted; reverting), ``Halted``
(the run ended because a halt lever was pulled, or was refused while one was: ``chaoskit halt``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from chaoskit.operator import resources, summaries

JSON = resources.JSON


class Phase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    FINISHED = "Finished"
    INVALID = "Invalid"
    STOPPING = "Stopping"
    HALTED = "Halted"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the resource."""

    type: str
    """``Normal`` or ``Warning``."""
    reason: str
    message: str


def _condition(job: JSON | None, kind: str) -> JSON | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _terminated(pods: list[JSON]) -> JSON | None:
    """The chaoskit container's ``terminated`` state, from the newest pod that has one."""
    found: list[JSON] = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            state = (status.get("state") or {}).get("terminated")
            if status.get("name") == "chaoskit" and state:
                found.append(state)
    return max(found, key=lambda s: str(s.get("finishedAt") or "")) if found else None


def _set_condition(
    conditions: list[JSON], kind: str, status: bool, *, reason: str, message: str, now: str
) -> list[JSON]:
    """``conditions`` with ``kind`` set; its lastTransitionTime moves only when its status does."""
    text = "True" if status else "False"
    old = next((c for c in conditions if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == text else now
    new = {"type": kind, "status": text, "reason": reason, "message": message, "lastTransitionTime": since}
    return [c for c in conditions if c.get("type") != kind] + [new]


def of_run(
    previous: JSON, job: JSON | None, pods: list[JSON], *, run_id: str, job_name: str, now: str
) -> tuple[JSON, list[Event]]:
    """The status to write and the Events to record, given the last status, the Job (None when
    it does not exist yet) and its pods. A finished status is final: it is returned unchanged."""
    if previous.get("phase") in (Phase.FINISHED, Phase.HALTED):
        return previous, []
    status: JSON = {
        **previous,
        "runId": run_id,
        "job": job_name,
    }
    conditions: list[JSON] = list(previous.get("conditions") or [])
    events: list[Event] = []
    complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
    if job is None:
        status["phase"] = Phase.PENDING
    elif complete is None and failed is None:
        status["phase"] = Phase.RUNNING
        status.setdefault("startTime", (job.get("status") or {}).get("startTime") or now)
        conditions = _set_condition(
            conditions, "Running", True, reason="JobRunning", message=f"Job {job_name} is running", now=now
        )
        if previous.get("phase") != Phase.RUNNING:
            events.append(Event("Normal", "Started", f"Job {job_name} runs the experiment as run {run_id}"))
    else:
        terminated = _terminated(pods)
        summary = summaries.parse((terminated or {}).get("message"))
        if summary is None:
            exit_code = int(terminated["exitCode"]) if terminated and "exitCode" in terminated else 4
            why = (failed or complete or {}).get("message") or (terminated or {}).get("reason") or ""
            summary = summaries.without_journal(exit_code, f"the run left no summary: {why}".strip(": "))
        status.update(_finished(summary, job, now))
        conditions = _set_condition(
            conditions, "Running", False, reason="JobFinished", message=f"Job {job_name} ended", now=now
        )
        conditions = _set_condition(
            conditions,
            "Completed",
            summary.get("verdict") == "completed",
            reason=str(summary.get("verdict", "error")).title().replace("_", ""),
            message=str(summary.get("reason", "")),
            now=now,
        )
        kind = "Normal" if summary.get("verdict") == "completed" else "Warning"
        halted = summary.get("verdict") == "halted"
        if halted:
            status["phase"] = Phase.HALTED
        events.append(
            Event(kind, "Halted" if halted else "Finished",
                  f"verdict {summary.get('verdict')} (exit {summary.get('exitCode')}): "
                  f"{summary.get('reason', '')}"[:1000])
        )  # fmt: skip
    status["conditions"] = conditions
    return status, events


def _finished(summary: dict[str, Any], job: JSON, now: str) -> JSON:
    recovery = summary.get("recovery") or {}
    job_status = job.get("status") or {}
    return {
        "phase": Phase.FINISHED,
        "verdict": summary.get("verdict"),
        "exitCode": summary.get("exitCode"),
        "reason": summary.get("reason"),
        "score": summary.get("score"),
        "recovery": (
            {
                "required": recovery.get("required"),
                "measured": recovery.get("measured"),
                "met": recovery.get("met"),
            }
            if recovery
            else None
        ),
        "summary": summary,
        "startTime": job_status.get("startTime") or now,
        "completionTime": job_status.get("completionTime") or now,
    }


def vanished(previous: JSON, job_name: str, reverted: list[str], now: str) -> tuple[JSON, list[Event]]:
    """The status of a run whose Job was deleted by someone else before it finished."""
    reason = f"Job {job_name} was deleted before the run finished; its faults were swept by run id"
    summary = summaries.without_journal(4, reason)
    status = {**previous, **summary, "phase": Phase.FINISHED, "completionTime": now, "summary": summary}
    conditions = _set_condition(
        list(previous.get("conditions") or []), "Running", False, reason="JobDeleted", message=reason, now=now
    )
    status["conditions"] = _set_condition(
        conditions, "Completed", False, reason="Error", message=reason, now=now
    )
    swept = "; ".join(reverted) if reverted else "nothing was left applied"
    return status, [Event("Warning", "JobDeleted", f"{reason}: {swept}"[:1000])]


def invalid(previous: JSON, message: str, now: str) -> tuple[JSON, list[Event]]:
    """The status of a resource whose spec the controller refused (one Warning Event, once)."""
    if previous.get("phase") == Phase.INVALID and previous.get("reason") == message:
        return previous, []
    conditions = _set_condition(
        list(previous.get("conditions") or []), "Completed", False, reason="Invalid", message=message, now=now
    )
    status = {**previous, "phase": Phase.INVALID, "verdict": "invalid", "reason": message}
    status["conditions"] = conditions
    return status, [Event("Warning", "Invalid", message[:1000])]


def finished(status: JSON) -> bool:
    return status.get("phase") in {Phase.FINISHED, Phase.INVALID, Phase.HALTED}


def succeeded(status: JSON) -> bool:
    return status.get("phase") == Phase.FINISHED and status.get("verdict") == "completed"
