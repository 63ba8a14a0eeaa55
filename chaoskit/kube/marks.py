"""The label and annotations chaoskit leaves on everything it creates or changes in a cluster.

They let ``sweep`` find and revert leftovers without the ledger (the laptop that ran the
experiment is gone): ``chaoskit.io/run-id`` says whose it is, ``chaoskit.io/expires-at`` until
when the fault may stay, and the ``previous-*`` annotations hold what the revert restores.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

RUN_ID = "chaoskit.io/run-id"
"""Label (sanitised, for selectors) and annotation (verbatim) naming the run."""
EXPIRES_AT = "chaoskit.io/expires-at"
"""Annotation: RFC 3339 UTC time after which a sweep may revert the change of a vanished run."""
PREVIOUS_REPLICAS = "chaoskit.io/previous-replicas"
"""Annotation on a scaled workload: the replica count a revert restores."""
WAS_UNSCHEDULABLE = "chaoskit.io/was-unschedulable"
"""Annotation on a cordoned node: "true" when it was cordoned before chaoskit touched it."""
FAULT = "chaoskit.io/fault"
"""Annotation: which fault made the change."""

ALL = (RUN_ID, EXPIRES_AT, PREVIOUS_REPLICAS, WAS_UNSCHEDULABLE, FAULT)
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def label_value(run_id: str) -> str:
    """``run_id`` as a valid label value (63 characters, alphanumeric ends); hashed when it isn't one."""
    if _LABEL_VALUE.fullmatch(run_id):
        return run_id
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", run_id).strip("-_.")[:50].strip("-_.")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{cleaned}-{digest}" if cleaned else digest


def expires_at(after_seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=after_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_expired(annotations: dict[str, str], now: datetime | None = None) -> bool:
    """True when the object's expiry has passed, or it has none that can be read."""
    text = annotations.get(EXPIRES_AT)
    if not text:
        return True
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return (now or datetime.now(UTC)) >= when


def metadata(
    run_id: str, fault: str, after_seconds: float, extra: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """The ``metadata`` part of a merge patch (or a new object) that marks it as run ``run_id``'s."""
    return {
        "labels": {RUN_ID: label_value(run_id)},
        "annotations": {
            RUN_ID: run_id,
            EXPIRES_AT: expires_at(after_seconds),
            FAULT: fault,
            **(extra or {}),
        },
    }


def removal() -> dict[str, dict[str, None]]:
    """The ``metadata`` part of a merge patch that takes every chaoskit mark off."""
    return {
        "labels": {RUN_ID: None},
        "annotations": dict.fromkeys(ALL, None),
    }
