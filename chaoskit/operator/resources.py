"""The operator's resource kinds: names, labels, and the typed ``spec`` of each custom resource.

The CRDs in ``operators/crds/`` describe the same fields for the API server; these models are
what the controller reads, so a spec the schema let through but that makes no sense (both an
inline experiment and a ConfigMap reference) is still refused with a clear message.
"""

from __future__ import annotations

import enum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chaoskit import errors
from chaoskit.gameday import schedules

GROUP = "chaoskit.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
EXPERIMENT_KIND = "ChaosExperiment"
EXPERIMENTS = "chaosexperiments"
SCHEDULE_KIND = "ChaosSchedule"
SCHEDULES = "chaosschedules"

FINALIZER = "chaoskit.io/revert-faults"
"""Held on every ChaosExperiment until its Job is stopped and its faults are reverted."""
EXPERIMENT_LABEL = "chaoskit.io/experiment"
"""On the Job, its pod and the ConfigMap: the ChaosExperiment they belong to."""
SCHEDULE_LABEL = "chaoskit.io/schedule"
"""On a ChaosExperiment a ChaosSchedule created: that schedule's name."""
SCHEDULED_AT = "chaoskit.io/scheduled-at"
"""Annotation on a scheduled ChaosExperiment: the nominal fire time (RFC 3339, UTC)."""
EXPERIMENT_FILE = "experiment.yaml"
COMPONENT = "chaoskit-operator"

JSON = dict[str, Any]
"""An API object as the server sent it."""


class InvalidResource(errors.UsageError):
    """A ChaosExperiment or ChaosSchedule whose spec the controller can't act on."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class ConfigMapRef(Model):
    """An experiment file kept in a ConfigMap of the resource's namespace."""

    name: str
    key: str = EXPERIMENT_FILE
    """The ConfigMap key holding the YAML or JSON experiment."""


class ExperimentSpec(Model):
    """``spec`` of a ChaosExperiment."""

    experiment: dict[str, Any] | None = None
    """The experiment inline, exactly as in an experiment file."""
    experiment_ref: ConfigMapRef | None = Field(default=None, alias="experimentRef")
    variables: dict[str, str] = Field(default_factory=dict)
    """Passed as ``--var name=value``."""
    service_account_name: str | None = Field(default=None, alias="serviceAccountName")
    """The Job's service account: what the run may touch (see operators/rbac/drivers)."""
    ttl_seconds_after_finished: int | None = Field(default=None, alias="ttlSecondsAfterFinished", ge=0)
    """Delete the resource (and its Job) this long after the run finished."""
    image: str | None = None
    """The image that runs chaoskit; default the controller's ``--image``."""
    active_deadline_seconds: int | None = Field(default=None, alias="activeDeadlineSeconds", gt=0)
    """Stop the run (SIGTERM: faults reverted) if it takes longer."""
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    """The run pod's ``nodeSelector``: the nodes it may run on (a pool the experiment doesn't hit)."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """The run pod's tolerations, as in a pod spec (to run on a tainted pool)."""
    scheduler_name: str | None = Field(default=None, alias="schedulerName")
    """The run pod's scheduler; default the cluster's."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.experiment is None) == (self.experiment_ref is None):
            raise ValueError("give exactly one of spec.experiment (inline) or spec.experimentRef (ConfigMap)")
        return self


class ConcurrencyPolicy(enum.StrEnum):
    ALLOW = "Allow"
    FORBID = "Forbid"
    """A fire while a run is still going is skipped."""
    REPLACE = "Replace"
    """A fire while a run is still going deletes it (its faults reverted) and starts a new one."""


class ExperimentTemplate(Model):
    metadata: dict[str, Any] = Field(default_factory=dict)
    """``labels`` and ``annotations`` for each run."""
    spec: ExperimentSpec


class ScheduleSpec(Model):
    """``spec`` of a ChaosSchedule."""

    schedule: schedules.Schedule
    """The GameDay schedule model: cron or random, timezone, windows, blackouts, jitter."""
    concurrency_policy: ConcurrencyPolicy = Field(default=ConcurrencyPolicy.FORBID, alias="concurrencyPolicy")
    successful_runs_history_limit: int = Field(default=3, alias="successfulRunsHistoryLimit", ge=0)
    failed_runs_history_limit: int = Field(default=1, alias="failedRunsHistoryLimit", ge=0)
    suspend: bool = False
    template: ExperimentTemplate
    """The ChaosExperiment each fire creates."""


def _problems(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg'].removeprefix('Value error, ')}"
        for err in e.errors()
    )


def experiment_spec(obj: JSON) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        raise InvalidResource(
            f"{describe(obj)}: spec: {_problems(e)}", hint="fix the resource and apply it again"
        ) from None


def schedule_spec(obj: JSON) -> ScheduleSpec:
    try:
        return ScheduleSpec.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        raise InvalidResource(
            f"{describe(obj)}: spec: {_problems(e)}", hint="fix the resource and apply it again"
        ) from None
    except errors.ChaoskitError as e:  # croniter missing
        raise InvalidResource(f"{describe(obj)}: {e.message}", hint=e.hint) from None


def describe(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'object')} {meta.get('namespace', '')}/{meta.get('name', '?')}"


def run_id(obj: JSON) -> str:
    """The run id of a ChaosExperiment's run: fixed by its uid, so a restarted controller (and
    the finalizer) find the run's faults by it after anything else is lost."""
    return f"k8s-{obj['metadata']['uid']}"


def owner_reference(obj: JSON) -> JSON:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", API_VERSION),
        "kind": obj.get("kind", EXPERIMENT_KIND),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
