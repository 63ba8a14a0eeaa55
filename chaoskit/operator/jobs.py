"""What a ChaosExperiment becomes in the cluster: the ConfigMap holding its experiment file and
the Job that runs ``chaoskit run`` on it. Pure functions of the resource.

The Job's container runs ``chaoskit operator execute``, which runs ``chaoskit run`` in the same
process (so SIGTERM from a deleted Job reaches the engine, which reverts before exiting) and then
writes a short JSON summary of the journal to the termination message, where the controller
reads it from the pod's status: it works in any cluster, without a volume the controller mounts.
"""

from __future__ import annotations

import hashlib

import yaml

from chaoskit.kube import haltlevers, marks
from chaoskit.operator import resources

JSON = resources.JSON
MOUNT = "/etc/chaoskit"
WORK = "/var/run/chaoskit"
TERMINATION_LOG = "/dev/termination-log"
GRACE_SECONDS = 120
"""How long a deleted run's pod has to revert its faults before it is killed."""


def _name(base: str, suffix: str, limit: int = 63) -> str:
    """``base-suffix`` within ``limit`` characters (a Job name becomes a pod label value)."""
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: limit - len(suffix) - 10].rstrip('-.')}-{digest}-{suffix}"


def job_name(obj: JSON) -> str:
    return _name(str(obj["metadata"]["name"]), "run")


def configmap_name(obj: JSON) -> str:
    return _name(str(obj["metadata"]["name"]), "experiment")


def _labels(obj: JSON, run_id: str) -> dict[str, str]:
    return {
        resources.EXPERIMENT_LABEL: str(obj["metadata"]["name"]),
        marks.RUN_ID: marks.label_value(run_id),
        "app.kubernetes.io/managed-by": resources.COMPONENT,
    }


def configmap(obj: JSON, spec: resources.ExperimentSpec) -> JSON | None:
    """The ConfigMap an inline experiment is mounted from (owned by the resource), or None when
    the spec references a ConfigMap of the user's."""
    if spec.experiment is None:
        return None
    run_id = resources.run_id(obj)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(obj),
            "namespace": obj["metadata"]["namespace"],
            "labels": _labels(obj, run_id),
            "ownerReferences": [resources.owner_reference(obj)],
        },
        "data": {resources.EXPERIMENT_FILE: yaml.safe_dump(spec.experiment, sort_keys=False)},
    }


def job(
    obj: JSON, spec: resources.ExperimentSpec, default_image: str, halt_lever: str = haltlevers.DEFAULT_URI
) -> JSON:
    """The Job that runs the experiment once: never retried (a retry would inject again). Its run
    watches ``halt_lever`` (``chaoskit halt --kubernetes`` pulls it)."""
    run_id = resources.run_id(obj)
    labels = _labels(obj, run_id)
    if spec.experiment_ref is not None:
        source = {
            "name": spec.experiment_ref.name,
            "items": [{"key": spec.experiment_ref.key, "path": resources.EXPERIMENT_FILE}],
        }
    else:
        source = {"name": configmap_name(obj)}
    args = ["operator", "execute", "--termination-log", TERMINATION_LOG, "--"]
    args += [f"{MOUNT}/{resources.EXPERIMENT_FILE}", "--journal", f"{WORK}/journal.json"]
    for name, value in sorted(spec.variables.items()):
        args += ["--var", f"{name}={value}"]
    pod_spec: JSON = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "containers": [
            {
                "name": "chaoskit",
                "image": spec.image or default_image,
                "command": ["chaoskit"],
                "args": args,
                "env": [
                    {"name": "CHAOSKIT_RUN_ID", "value": run_id},
                    {"name": "CHAOSKIT_STATE_DIR", "value": f"{WORK}/state"},
                    {"name": "CHAOSKIT_HALT", "value": halt_lever},
                ],
                "terminationMessagePath": TERMINATION_LOG,
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {"name": "experiment", "mountPath": MOUNT, "readOnly": True},
                    {"name": "work", "mountPath": WORK},
                ],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
            }
        ],
        "volumes": [{"name": "experiment", "configMap": source}, {"name": "work", "emptyDir": {}}],
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
    if spec.scheduler_name:
        pod_spec["schedulerName"] = spec.scheduler_name
    job_spec: JSON = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(obj),
            "namespace": obj["metadata"]["namespace"],
            "labels": labels,
            "annotations": {marks.RUN_ID: run_id},
            "ownerReferences": [resources.owner_reference(obj)],
        },
        "spec": job_spec,
    }
