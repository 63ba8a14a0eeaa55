"""A ChaosSchedule in random mode keeps the GameDay schedule's promise: the same fires, the same mean."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import statistics
import zoneinfo
from typing import Any

from chaoskit.engine import halts
from chaoskit.gameday import firing
from chaoskit.operator import chaosschedules, resources

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
CREATED = dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
FREEZE = (dt.date(2026, 12, 21), dt.date(2027, 1, 1))


def chaos_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": resources.API_VERSION,
        "kind": resources.SCHEDULE_KIND,
        "metadata": {
            "name": "monkey",
            "namespace": "shop",
            "uid": "s-uid",
            "creationTimestamp": chaosschedules.iso(CREATED),
        },
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Allow",
            # Planned: paused ${hold} (30m), then the default 60s recovery deadline.
            "template": {
                "spec": {
                    "experiment": {"title": "t", "method": [{"pause": "${hold}"}]},
                    "variables": {"hold": "30m"},
                }
            },
        },
    }


def controller(
    obj: dict[str, Any],
    fires: int,
    *,
    keep_runs: bool = False,
    halted: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[list[firing.Fire], list[str]]:
    """Passes of the reconciler: every three hours, and when the status says the next fire is due."""
    spec = resources.schedule_spec(obj)
    now, created, skipped = CREATED, [], []
    runs: list[dict[str, Any]] = []
    for _ in range(50_000):
        if len(created) + len(skipped) >= fires:
            break
        lever = (
            halts.Halt("incident 42", "ana@ops", "2027") if halted and halted[0] <= now < halted[1] else None
        )
        plan = chaosschedules.plan(obj, spec, runs if keep_runs else [], now, lever)
        if plan.create is not None and plan.fire is not None:
            created.append(plan.fire)
            if keep_runs:
                runs.append(
                    {
                        "metadata": {
                            "name": plan.create,
                            "annotations": {resources.SCHEDULED_AT: chaosschedules.iso(plan.fire.nominal)},
                        },
                        "status": {"phase": "Succeeded", "verdict": "completed"},
                    }
                )
        if plan.skipped:
            skipped.append(plan.skipped)
        obj["status"] = plan.status
        following = chaosschedules.parse(plan.status.get("nextScheduleTime"))
        step = now + dt.timedelta(hours=3)
        now = min(following + dt.timedelta(seconds=5), step) if following and following > now else step
    return created, skipped


def weekdays_between(earlier: dt.date, later: dt.date) -> int:
    days = (earlier + dt.timedelta(days=n) for n in range(1, (later - earlier).days + 1))
    return sum(1 for d in days if d.weekday() < 5 and not FREEZE[0] <= d <= FREEZE[1])


def test_random_mode_fires_what_the_gameday_schedule_fires_at_its_mean_in_work_days() -> None:
    # Before, a controller pass more than misfire_grace after the last fire drew afresh from "now",
    # so the mean depended on how often it reconciled (with min_interval it never fired at all).
    obj = chaos_schedule(
        {
            "random": {"mean": "2d", "min_interval": "1h"},
            "timezone": "America/New_York",
            "windows": [{"days": "weekdays", "start": "09:00", "end": "15:00"}],
            "blackouts": [{"from": "2026-12-21", "to": "2027-01-01"}],
        }
    )
    spec = resources.schedule_spec(obj)
    assert chaosschedules.planned_duration(spec) == 31 * 60
    fires, skipped = controller(obj, 400)
    assert not skipped
    assert fires == firing.upcoming(spec.schedule, CREATED, "shop/monkey", 400, duration=31 * 60)
    days = [f.at.astimezone(NEW_YORK).date() for f in fires]
    gaps = [weekdays_between(a, b) for a, b in itertools.pairwise(days)]
    assert 1.8 <= statistics.fmean(gaps) <= 2.2, statistics.fmean(gaps)
    assert min(gaps) >= 1
    for fire in fires:
        start = fire.at.astimezone(NEW_YORK)
        end = start + dt.timedelta(minutes=31)
        assert start.weekday() < 5 and start.time() >= dt.time(9) and end.time() <= dt.time(15), start
        assert not FREEZE[0] <= start.date() <= FREEZE[1]


def test_fires_due_while_halted_are_skipped_and_the_chain_goes_on() -> None:
    schedule = {
        "random": {"mean": "1d"},
        "timezone": "America/New_York",
        "windows": [{"days": "weekdays", "start": "09:00", "end": "15:00"}],
    }
    halted = (dt.datetime(2026, 11, 9, tzinfo=dt.UTC), dt.datetime(2026, 11, 14, tzinfo=dt.UTC))
    fires, skipped = controller(chaos_schedule(schedule), 15, halted=halted)
    spec = resources.schedule_spec(chaos_schedule(schedule))
    expected = firing.upcoming(spec.schedule, CREATED, "shop/monkey", 15, duration=31 * 60)
    assert len(skipped) == 5 and all("halted by ana@ops" in s for s in skipped)
    assert fires == [f for f in expected if not halted[0] <= f.at < halted[1]]


def test_max_per_day_counts_the_schedules_runs() -> None:
    obj = chaos_schedule(
        {
            "random": {"mean": "20m", "per": "window_time", "max_per_day": 2},
            "windows": [{"days": "daily", "start": "09:00", "end": "17:00"}],
            "fit": "start",
        }
    )
    fires, _ = controller(obj, 30, keep_runs=True)
    per_day = collections.Counter(f.at.date() for f in fires)
    # Unlimited, a mean of 20 minutes in an 8-hour window is about 24 runs a day.
    assert max(per_day.values()) == 2 and len(per_day) >= 15, per_day
