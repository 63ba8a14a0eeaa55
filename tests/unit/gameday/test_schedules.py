"""Fire times: cron in a time zone, windows, blackouts, jitter and Chaos-Monkey random mode."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import statistics
import zoneinfo

import hypothesis
import pydantic
import pytest
from hypothesis import strategies as st

from chaoskit import durations, errors
from chaoskit.gameday import firing, schedules

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def make(**fields: object) -> schedules.Schedule:
    return schedules.Schedule.model_validate(fields)


def local(fires: list[firing.Fire], zone: zoneinfo.ZoneInfo = BERLIN) -> list[str]:
    return [f.at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M") for f in fires]


def test_cron_runs_in_its_time_zone_across_a_dst_change() -> None:
    schedule = make(cron="0 10 * * *", timezone="Europe/Berlin")
    fires = firing.upcoming(schedule, dt.datetime(2026, 3, 27, tzinfo=dt.UTC), "k", 4)
    assert local(fires) == [
        "Fri 2026-03-27 10:00",
        "Sat 2026-03-28 10:00",
        "Sun 2026-03-29 10:00",
        "Mon 2026-03-30 10:00",
    ]
    # Berlin moved from UTC+1 to UTC+2 on 2026-03-29: the UTC hour changes, the local one doesn't.
    assert [f.at.astimezone(dt.UTC).hour for f in fires] == [9, 9, 8, 8]


def test_windows_keep_runs_to_business_hours_on_weekdays() -> None:
    schedule = make(
        cron="0 * * * *",
        timezone="Europe/Berlin",
        windows=[{"days": "weekdays", "start": "09:00", "end": "11:00"}],
    )
    # Saturday morning: the first allowed runs are Monday 09:00 and 10:00, then Tuesday 09:00.
    fires = firing.upcoming(schedule, dt.datetime(2026, 11, 28, 6, tzinfo=dt.UTC), "k", 3)
    assert local(fires) == ["Mon 2026-11-30 09:00", "Mon 2026-11-30 10:00", "Tue 2026-12-01 09:00"]


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    window = schedules.Window.model_validate({"days": ["fri"], "start": "22:00", "end": "02:00"})
    assert window.allows(dt.datetime(2026, 11, 27, 23, 0, tzinfo=BERLIN))  # Friday night
    assert window.allows(dt.datetime(2026, 11, 28, 1, 0, tzinfo=BERLIN))  # early Saturday
    assert not window.allows(dt.datetime(2026, 11, 28, 23, 0, tzinfo=BERLIN))  # Saturday night
    assert not window.allows(dt.datetime(2026, 11, 27, 1, 0, tzinfo=BERLIN))  # early Friday


def test_blackout_dates_and_ranges_are_skipped() -> None:
    schedule = make(
        cron="0 10 * * *",
        timezone="Europe/Berlin",
        blackouts=["2026-12-24", {"from": "2026-12-26", "to": "2027-01-01", "reason": "freeze"}],
    )
    fires = firing.upcoming(schedule, dt.datetime(2026, 12, 22, 12, tzinfo=dt.UTC), "k", 3)
    assert local(fires) == ["Wed 2026-12-23 10:00", "Fri 2026-12-25 10:00", "Sat 2027-01-02 10:00"]


def test_jitter_is_bounded_and_reproducible_per_key() -> None:
    schedule = make(cron="*/30 * * * *", jitter="10m")
    start = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    fires = firing.upcoming(schedule, start, "plan-a", 50)
    offsets = [(f.at - f.nominal).total_seconds() for f in fires]
    assert all(0 <= o <= 600 for o in offsets)
    assert len(set(offsets)) > 10, "jitter should vary from run to run"
    assert firing.upcoming(schedule, start, "plan-a", 50) == fires
    assert firing.upcoming(schedule, start, "plan-b", 50) != fires


def test_random_mode_keeps_the_minimum_interval_and_the_mean() -> None:
    schedule = make(random={"mean": "2h", "min_interval": "30m"})
    start = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    fires = firing.upcoming(schedule, start, "monkey", 2000)
    gaps = [
        (b.at - a.at).total_seconds()
        for a, b in zip([firing.Fire(start, start), *fires], fires, strict=False)
    ]
    assert min(gaps) >= 1800
    assert 0.85 * 7200 < statistics.fmean(gaps) < 1.15 * 7200
    assert firing.upcoming(schedule, start, "monkey", 5) == fires[:5]


def test_random_window_time_mode_respects_windows() -> None:
    schedule = make(
        random={"mean": "3h", "min_interval": "1h", "per": "window_time"},
        timezone="Europe/Berlin",
        windows=[{"days": "weekdays", "start": "09:00", "end": "17:00"}],
    )
    fires = firing.upcoming(schedule, dt.datetime(2026, 11, 25, tzinfo=dt.UTC), "monkey", 200)
    for fire in fires:
        when = fire.at.astimezone(BERLIN)
        assert when.weekday() < 5 and 9 <= when.hour < 17, when


NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
BUSINESS = [{"days": "weekdays", "start": "09:00", "end": "15:00"}]
THANKSGIVING = {"from": "2026-11-26", "to": "2026-11-27"}
YEAR_END = {"from": "2026-12-21", "to": "2027-01-01"}


def eligible_days_between(earlier: dt.date, later: dt.date, blackouts: list[tuple[dt.date, dt.date]]) -> int:
    """Weekdays off the blackouts in (earlier, later]: the test's own count, not the code's."""
    days = (earlier + dt.timedelta(days=n) for n in range(1, (later - earlier).days + 1))
    return sum(1 for d in days if d.weekday() < 5 and not any(a <= d <= b for a, b in blackouts))


@pytest.mark.parametrize(
    ("mean", "min_interval", "key"),
    [("1d", "1h", "monkey"), ("2d", "4h", "checkout"), ("3d", "0s", "search"), ("36h", "1d", "cart")],
)
def test_random_mean_counts_eligible_days_like_chaos_monkey(mean: str, min_interval: str, key: str) -> None:
    # The measurement: mean 1d with weekday 09:00-15:00 windows gave one run per 3.9 work days.
    schedule = make(
        random={"mean": mean, "min_interval": min_interval},
        timezone="America/New_York",
        windows=BUSINESS,
        blackouts=[THANKSGIVING, YEAR_END, "2027-07-05"],
    )
    assert schedule.per is schedules.Per.WORKDAY
    blackouts = [
        (dt.date(2026, 11, 26), dt.date(2026, 11, 27)),
        (dt.date(2026, 12, 21), dt.date(2027, 1, 1)),
        (dt.date(2027, 7, 5), dt.date(2027, 7, 5)),
    ]
    start = dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
    fires = firing.upcoming(schedule, start, key, 1000)
    days = [f.at.astimezone(NEW_YORK).date() for f in fires]
    gaps = [eligible_days_between(a, b, blackouts) for a, b in itertools.pairwise(days)]
    wanted = durations.parse(mean) / 86400
    assert 0.9 * wanted <= statistics.fmean(gaps) <= 1.1 * wanted, statistics.fmean(gaps)
    assert min(gaps) >= 1, "at most one run per eligible day"
    for a, b in itertools.pairwise(fires):
        assert (b.at - a.at).total_seconds() >= durations.parse(min_interval)
    for fire in fires:
        local = fire.at.astimezone(NEW_YORK)
        assert local.weekday() < 5 and 9 <= local.hour < 15, local
        assert not any(a <= local.date() <= b for a, b in blackouts), local
    effective = firing.effective_mean(schedule, start, key)
    assert effective is not None and effective.unit == "eligible days"
    assert effective.mean == pytest.approx(statistics.fmean(gaps), rel=0.02)


def test_random_window_time_mean_counts_window_time() -> None:
    schedule = make(
        random={"mean": "3h", "min_interval": "1h", "per": "window_time"},
        timezone="America/New_York",
        windows=BUSINESS,
        blackouts=[THANKSGIVING],
    )
    start = dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
    fires = firing.upcoming(schedule, start, "monkey", 1000)

    def business_hours(a: dt.datetime, b: dt.datetime) -> float:
        # Walk the minutes between two fires and count those inside the window: slow, obvious.
        a, b = a.astimezone(NEW_YORK), b.astimezone(NEW_YORK)
        total, day = 0.0, a.date()
        while day <= b.date():
            if day.weekday() < 5 and not dt.date(2026, 11, 26) <= day <= dt.date(2026, 11, 27):
                low = max(a, dt.datetime.combine(day, dt.time(9), NEW_YORK))
                high = min(b, dt.datetime.combine(day, dt.time(15), NEW_YORK))
                total += max((high - low).total_seconds(), 0.0)
            day += dt.timedelta(days=1)
        return total / 3600

    gaps = [business_hours(a.at, b.at) for a, b in itertools.pairwise(fires)]
    assert 0.9 * 3 <= statistics.fmean(gaps) <= 1.1 * 3, statistics.fmean(gaps)
    assert all((b.at - a.at).total_seconds() >= 3600 for a, b in itertools.pairwise(fires))
    effective = firing.effective_mean(schedule, start, "monkey")
    assert effective is not None and effective.unit == "hours of window time"
    assert effective.mean == pytest.approx(statistics.fmean(gaps), rel=0.02)


def test_a_run_fits_inside_its_window_unless_only_the_start_must() -> None:
    # A 14:59 start would hold the fault past 15:00.
    fields = {"cron": "59 14 * * *", "timezone": "America/New_York", "windows": BUSINESS}
    start = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    with pytest.raises(errors.UsageError, match="planned to take 10m") as refused:
        firing.next_fire(make(**fields), start, "k", duration=600)
    assert "schedule.fit: start" in refused.value.render()
    assert firing.next_fire(make(**fields), start, "k", duration=0).at.astimezone(NEW_YORK).hour == 14
    loose = make(**fields, fit="start")
    assert firing.next_fire(loose, start, "k", duration=600).at.astimezone(NEW_YORK).minute == 59
    monkey = make(random={"mean": "1d"}, timezone="America/New_York", windows=BUSINESS)
    for fire in firing.upcoming(monkey, start, "k", 300, duration=45 * 60):
        end = (fire.at + dt.timedelta(minutes=45)).astimezone(NEW_YORK)
        assert end.time() <= dt.time(15, 0) and end.date() == fire.at.astimezone(NEW_YORK).date()
    assert any(
        f.at.astimezone(NEW_YORK).time() > dt.time(14, 15)
        for f in firing.upcoming(monkey.model_copy(update={"fit": schedules.Fit.START}), start, "k", 300)
    )


def test_max_per_day_limits_runs_per_local_date() -> None:
    fields = {
        "random": {"mean": "1h", "per": "window_time"},
        "timezone": "Europe/Berlin",
        "windows": [{"days": "daily", "start": "09:00", "end": "17:00"}],
    }
    start = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)

    def per_day(schedule: schedules.Schedule, started: int = 0) -> collections.Counter[dt.date]:
        fires = firing.upcoming(schedule, start, "k", 200, started=started)
        return collections.Counter(f.at.astimezone(BERLIN).date() for f in fires)

    assert max(per_day(make(**fields)).values()) > 2
    limited = make(**{**fields, "random": {**fields["random"], "max_per_day": 2}})  # type: ignore[dict-item]
    assert max(per_day(limited).values()) == 2
    # Runs that already started on the first day count too.
    assert per_day(limited, started=2)[dt.date(2026, 11, 2)] == 0


def test_next_fire_from_a_fire_is_the_same_however_the_chain_got_there() -> None:
    schedule = make(
        random={"mean": "2d", "min_interval": "4h"}, timezone="America/New_York", windows=BUSINESS
    )
    fires = firing.upcoming(schedule, dt.datetime(2026, 11, 2, tzinfo=dt.UTC), "k", 20)
    for a, b in itertools.pairwise(fires):
        assert firing.next_fire(schedule, a.nominal, "k") == b


def test_a_schedule_that_can_never_fire_says_so() -> None:
    schedule = make(cron="0 3 * * *", windows=[{"start": "09:00", "end": "17:00"}])
    with pytest.raises(errors.UsageError, match="never fires"):
        firing.next_fire(schedule, dt.datetime(2026, 11, 25, tzinfo=dt.UTC), "k")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 10 * *"}, "five-field cron"),
        ({"cron": "0 10 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({}, "exactly one of cron: or random:"),
        ({"cron": "0 10 * * *", "random": {"mean": "1h"}}, "exactly one of cron: or random:"),
        ({"random": {"mean": "1h", "min_interval": "2h"}}, "can't exceed"),
        ({"random": {"mean": "1h"}, "jitter": "5m"}, "jitter applies to cron"),
        ({"random": {"mean": "12h"}, "windows": [{"days": "daily"}]}, "per: window_time"),
        ({"random": {"mean": "12h", "per": "workday"}}, "per: window_time"),
        ({"random": {"mean": "1d", "max_per_day": 0}}, "greater than or equal to 1"),
        ({"random": {"mean": "1d", "per": "weekly"}}, "'workday' or 'window_time'"),
        ({"cron": "0 10 * * *", "fit": "end"}, "'run' or 'start'"),
        ({"cron": "0 10 * * *", "windows": [{"days": "workdays"}]}, "unknown day group"),
        ({"cron": "0 10 * * *", "blackouts": [{"from": "2026-12-31", "to": "2026-12-01"}]}, "from <= to"),
    ],
)
def test_bad_schedules_are_refused_with_the_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        make(**fields)


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    minute=st.integers(0, 59),
    hours=st.lists(st.integers(0, 23), min_size=1, max_size=4, unique=True),
    zone=st.sampled_from(ZONES),
    start_hour=st.integers(0, 23),
    length=st.integers(1, 23),
    days=st.lists(st.sampled_from(list(schedules.Weekday)), min_size=1, max_size=7, unique=True),
    jitter=st.integers(0, 3600),
    after=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 1, 1)),
)
def test_every_cron_fire_is_allowed_in_order_and_within_its_jitter(
    minute: int,
    hours: list[int],
    zone: str,
    start_hour: int,
    length: int,
    days: list[schedules.Weekday],
    jitter: int,
    after: dt.datetime,
) -> None:
    end_hour = (start_hour + length) % 24
    schedule = make(
        cron=f"{minute} {','.join(map(str, sorted(hours)))} * * *",
        timezone=zone,
        windows=[
            {"days": [d.value for d in days], "start": f"{start_hour:02d}:00", "end": f"{end_hour:02d}:00"}
        ],
        jitter=jitter,
    )
    start = after.replace(tzinfo=dt.UTC)
    try:
        fires = firing.upcoming(schedule, start, "prop", 5)
    except errors.UsageError:
        return  # no cron hour falls in the window (plus jitter): "never fires" is the right answer
    assert all(f.nominal > start for f in fires)
    assert [f.nominal for f in fires] == sorted({f.nominal for f in fires})
    for fire in fires:
        assert schedule.allows(fire.at)
        assert 0 <= (fire.at - fire.nominal).total_seconds() <= jitter


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    per=st.sampled_from(["workday", "window_time"]),
    mean_hours=st.integers(1, 24 * 10),
    min_interval_hours=st.integers(0, 24),
    zone=st.sampled_from(ZONES),
    start_hour=st.integers(0, 23),
    length=st.integers(1, 23),
    days=st.lists(st.sampled_from(list(schedules.Weekday)), min_size=1, max_size=7, unique=True),
    duration=st.integers(0, 3 * 3600),
    fit=st.sampled_from(["run", "start"]),
    max_per_day=st.none() | st.integers(1, 3),
    blackout_days=st.integers(0, 20),
    after=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 1, 1)),
)
def test_every_random_fire_keeps_windows_blackouts_min_interval_and_the_fit(
    per: str,
    mean_hours: int,
    min_interval_hours: int,
    zone: str,
    start_hour: int,
    length: int,
    days: list[schedules.Weekday],
    duration: int,
    fit: str,
    max_per_day: int | None,
    blackout_days: int,
    after: dt.datetime,
) -> None:
    mean = max(mean_hours, 24) if per == "workday" else mean_hours
    start = after.replace(tzinfo=dt.UTC)
    freeze = (start.date() + dt.timedelta(days=3), start.date() + dt.timedelta(days=3 + blackout_days))
    try:
        schedule = make(
            random={
                "mean": f"{mean}h",
                "min_interval": f"{min(min_interval_hours, mean)}h",
                "per": per,
                "max_per_day": max_per_day,
            },
            timezone=zone,
            windows=[
                {
                    "days": [d.value for d in days],
                    "start": f"{start_hour:02d}:00",
                    "end": f"{(start_hour + length) % 24:02d}:00",
                }
            ],
            blackouts=[{"from": freeze[0].isoformat(), "to": freeze[1].isoformat()}],
            fit=fit,
        )
        fires = firing.upcoming(schedule, start, "prop", 8, duration=duration)
    except errors.UsageError as e:
        # No window holds the run, or windows so scarce that a draw lands past the horizon.
        assert (fit == "run" and duration > (length - 1) * 3600) or "days ahead" in e.message, e.message
        return
    held = duration if fit == "run" else 0
    local_zone = zoneinfo.ZoneInfo(zone)
    previous = start
    for fire in fires:
        assert fire.at > previous
        assert (fire.at - previous).total_seconds() >= min(min_interval_hours, mean) * 3600
        previous = fire.at
        assert schedule.allows(fire.at) and schedule.fits(fire.at, held)
        if held:  # the run's last moment is still inside the window
            assert schedule.allows(fire.at + dt.timedelta(seconds=held - 1))
        assert not freeze[0] <= fire.at.astimezone(local_zone).date() <= freeze[1]
    if max_per_day is not None:
        per_date = collections.Counter(f.at.astimezone(local_zone).date() for f in fires)
        assert max(per_date.values()) <= max_per_day
