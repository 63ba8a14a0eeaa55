"""A random-mode ChaosSchedule through the real API server: its fields survive the CRD's schema,
and the controller creates exactly the runs the GameDay schedule draws (tests/unit/operator/
test_schedule_random.py and tests/unit/gameday/test_schedules.py check those draws' mean)."""

from __future__ import annotations

import datetime as dt

import pytest

from chaoskit.gameday import firing
from chaoskit.operator import chaosschedules, reconciling, resources
from tests.k8s.clusters import Cluster
from tests.k8s.operator.test_operator import BASE, EXPERIMENT, crds, finalized, sweep

pytestmark = pytest.mark.k8s
__all__ = ["crds", "finalized"]  # fixtures used by name


def test_a_random_schedule_creates_the_runs_chaos_monkey_mode_draws(
    cluster: Cluster, namespace: str, crds: None, finalized: None
) -> None:
    schedule = {
        "random": {"mean": "2d", "min_interval": "1h", "per": "workday", "max_per_day": 1},
        "timezone": "America/New_York",
        "windows": [{"days": "weekdays", "start": "09:00", "end": "15:00"}],
        "fit": "run",
    }
    body = {
        "apiVersion": resources.API_VERSION,
        "kind": resources.SCHEDULE_KIND,
        "metadata": {"name": "monkey"},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Allow",
            "successfulRunsHistoryLimit": 20,
            "template": {"spec": {"experiment": EXPERIMENT}},
        },
    }
    created = cluster.api.post(f"{BASE}/namespaces/{namespace}/chaosschedules", body, what="test: schedule")
    # The CRD's schema keeps the random-mode fields (a structural schema prunes unknown ones).
    assert created["spec"]["schedule"]["random"]["per"] == "workday"
    assert created["spec"]["schedule"]["random"]["max_per_day"] == 1
    assert created["spec"]["schedule"]["fit"] == "run"
    born = chaosschedules.parse(created["metadata"]["creationTimestamp"])
    assert born is not None
    spec = resources.schedule_spec(created)
    duration = chaosschedules.planned_duration(spec)
    assert duration == 5.01  # the 10ms pause and the 5s recovery deadline
    expected = firing.upcoming(spec.schedule, born, f"{namespace}/monkey", 8, duration=duration)

    now = [born]
    ctl = reconciling.Controller(
        api=cluster.api, revert=sweep, image="chaoskit:test", namespace=namespace, clock=lambda: now[0]
    )
    path = f"{BASE}/namespaces/{namespace}/chaosschedules/monkey"
    for _ in range(2000):  # passes every 6 hours and when a fire is due, until the 8th fire's day
        ctl.reconcile_once()
        if now[0] > expected[-1].at:
            break
        following = chaosschedules.parse(cluster.api.get(path, what="t")["status"].get("nextScheduleTime"))
        step = now[0] + dt.timedelta(hours=6)
        now[0] = min(following + dt.timedelta(seconds=5), step) if following and following > now[0] else step
    runs = cluster.api.list(f"{BASE}/namespaces/{namespace}/chaosexperiments", what="t")
    fired = sorted(
        chaosschedules.parse(r["metadata"]["annotations"][resources.SCHEDULED_AT]) or born for r in runs
    )
    assert fired == [f.nominal for f in expected]
    status = cluster.api.get(path, what="t")["status"]
    following = firing.next_fire(
        spec.schedule, expected[-1].nominal, f"{namespace}/monkey", duration=duration
    )
    assert status["nextScheduleTime"] == chaosschedules.iso(following.at)
