"""When a schedule fires: the next run, the next N, and what a random schedule averages.

Fire times are a pure function of the schedule, the time to start after and a key (the plan's
name): jitter and random draws are seeded from them, so ``chaoskit gameday next`` prints exactly
the times the daemon will use, and a restarted daemon computes the same ones.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import statistics
from dataclasses import dataclass

from chaoskit import durations, errors, wording
from chaoskit.gameday import schedules

MAX_CANDIDATES = 200_000
"""How many cron times or random draws to try before deciding a schedule never fires."""
HORIZON = dt.timedelta(days=3 * 366)
"""How far ahead to look for an allowed fire time."""


@dataclass(frozen=True)
class Fire:
    """One planned run."""

    nominal: dt.datetime
    """The cron time (or the random draw): identifies the run in the daemon's state."""
    at: dt.datetime
    """When it starts: ``nominal`` plus jitter. Aware, UTC."""


def _never(schedule: schedules.Schedule, after: dt.datetime, duration: float) -> errors.UsageError:
    if duration and schedule.windows and schedule.fit is schedules.Fit.RUN:
        return errors.UsageError(
            f"the schedule never fires after {after.isoformat()}: no allowed start leaves the whole run "
            f"(planned to take {durations.format(duration)}) inside its window "
            f"(looked {HORIZON.days} days ahead)",
            hint="widen windows:, shorten the experiments, or set schedule.fit: start",
        )
    return errors.UsageError(
        f"the schedule never fires after {after.isoformat()}: cron/random times never fall inside "
        f"its windows outside its blackouts (looked {HORIZON.days} days ahead)",
        hint="widen windows:, shorten blackouts:, or change cron:",
    )


def local_day(schedule: schedules.Schedule, when: dt.datetime) -> dt.date:
    """The date of ``when`` in the schedule's time zone: what ``max_per_day`` counts by."""
    return when.astimezone(schedule.zone).date()


def next_fire(
    schedule: schedules.Schedule, after: dt.datetime, key: str, *, duration: float = 0.0, started: int = 0
) -> Fire:
    """The first allowed run whose nominal time is strictly after ``after``.

    ``duration`` is the run's planned length (fitted inside a window with ``fit: run``);
    ``started`` is how many runs already started on ``after``'s local date (for ``max_per_day``).
    """
    return _next(schedule, after, key, duration=duration, started=started)[0]


def _next(
    schedule: schedules.Schedule, after: dt.datetime, key: str, *, duration: float, started: int
) -> tuple[Fire, dt.date]:
    """``next_fire`` and the day it counts for (the day its window opened)."""
    after = schedules.utc(after)
    seed = schedule.seed or key
    mode = schedule.random
    if mode is not None:
        if schedule.per is schedules.Per.WORKDAY:
            return _next_workday(schedule, mode, after, seed, duration=duration, started=started)
        return _next_window_time(schedule, mode, after, seed, duration=duration, started=started)
    croniter = schedules.croniter()
    assert schedule.cron is not None
    times = croniter(schedule.cron, after.astimezone(schedule.zone))
    for _ in range(MAX_CANDIDATES):
        nominal = schedules.utc(times.get_next(dt.datetime))
        if nominal - after > HORIZON:
            break
        offset = random.Random(f"{seed}:jitter:{nominal.isoformat()}").uniform(0, schedule.jitter)
        at = nominal + dt.timedelta(seconds=round(offset))
        if schedule.fits(at, duration):
            return Fire(nominal=nominal, at=at), local_day(schedule, at)
    raise _never(schedule, after, duration)


def _pick(spans: list[tuple[dt.datetime, dt.datetime]], u: float) -> dt.datetime:
    """The point a fraction ``u`` into the spans laid end to end, in whole seconds."""
    total = sum((end - start).total_seconds() for start, end in spans)
    left = float(math.floor(u * total))
    for start, end in spans:
        length = (end - start).total_seconds()
        if left < length:
            return start + dt.timedelta(seconds=left)
        left -= length
    return spans[-1][1] - dt.timedelta(seconds=1)


def _clip(
    spans: list[tuple[dt.datetime, dt.datetime]], low: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(max(start, low), end) for start, end in spans if end > max(start, low)]


def _next_workday(
    schedule: schedules.Schedule,
    mode: schedules.RandomMode,
    after: dt.datetime,
    seed: str,
    *,
    duration: float,
    started: int,
) -> tuple[Fire, dt.date]:
    # Each day's draw depends on the day alone, as Chaos Monkey decides each morning: a day runs
    # with probability 1/mean, at a uniform time in its windows. A day whose draw is not after
    # ``after`` is spent (it is the run we continue from, or it passed before we started), so one
    # day never runs twice; a draw too close to the last run moves later in the same day.
    chance = schedules.DAY / mode.mean
    full = mode.max_per_day is not None and started >= mode.max_per_day
    earliest = after + dt.timedelta(seconds=max(mode.min_interval, 1.0))
    first = local_day(schedule, after) - dt.timedelta(days=1)
    for offset in range(HORIZON.days + 2):
        day = first + dt.timedelta(days=offset)
        spans = schedule.spans(day, duration)
        if not spans:
            continue
        if spans[0][0] - after > HORIZON:
            break
        rng = random.Random(f"{seed}:workday:{day.isoformat()}")
        if rng.random() >= chance:
            continue
        u = rng.random()
        when = _pick(spans, u)
        if when <= after:
            continue
        if when < earliest:
            later = _clip(spans, earliest)
            if not later:
                continue
            when = _pick(later, u)
        if full and local_day(schedule, when) == local_day(schedule, after):
            continue  # a window past midnight would start a second run on this date
        return Fire(nominal=when, at=when), day
    raise _never(schedule, after, duration)


def _next_window_time(
    schedule: schedules.Schedule,
    mode: schedules.RandomMode,
    after: dt.datetime,
    seed: str,
    *,
    duration: float,
    started: int,
) -> tuple[Fire, dt.date]:
    # The gap is drawn in window time (time a run may start), so restrictive windows don't
    # stretch the mean; min_interval also holds in wall-clock time, which is never shorter.
    rng = random.Random(f"{seed}:random:{after.isoformat()}")
    spread = mode.mean - mode.min_interval
    drawn = mode.min_interval + (rng.expovariate(1 / spread) if spread > 0 else 0.0)
    need = float(max(math.floor(drawn), 1))
    cursor = after
    consumed = False
    skip_through = local_day(schedule, after) if mode.max_per_day and started >= mode.max_per_day else None
    first = local_day(schedule, after) - dt.timedelta(days=1)
    for offset in range(HORIZON.days + 2):
        day = first + dt.timedelta(days=offset)
        for start, end in schedule.spans(day, duration):
            if start - after > HORIZON:
                raise _too_far(schedule, after, duration) if consumed else _never(schedule, after, duration)
            begin = max(start, cursor)
            if end <= begin:
                continue
            if skip_through is not None and local_day(schedule, begin) <= skip_through:
                # max_per_day is reached: the rest of that date is no window time for this draw.
                midnight = schedules.utc(
                    dt.datetime.combine(skip_through + dt.timedelta(days=1), dt.time(0, 0), schedule.zone)
                )
                begin = max(begin, midnight)
                if end <= begin:
                    continue
            available = (end - begin).total_seconds()
            if need < available:
                when = begin + dt.timedelta(seconds=need)
                return Fire(nominal=when, at=when), day
            need -= available
            consumed = True
            cursor = end
    raise _too_far(schedule, after, duration) if consumed else _never(schedule, after, duration)


def _too_far(schedule: schedules.Schedule, after: dt.datetime, duration: float) -> errors.UsageError:
    assert schedule.random is not None
    had = window_time(schedule, after, after + HORIZON, duration)
    return errors.UsageError(
        f"the next random run after {after.isoformat()} was drawn more than {HORIZON.days} days ahead: "
        f"the windows hold {had / 3600:.0f}h of window time in that span, and random.mean is "
        f"{durations.format(schedule.random.mean)} of it",
        hint="shorten random.mean or widen windows:",
    )


def upcoming(
    schedule: schedules.Schedule,
    after: dt.datetime,
    key: str,
    count: int,
    *,
    duration: float = 0.0,
    started: int = 0,
) -> list[Fire]:
    """The next ``count`` runs after ``after``, in order (``started`` as in ``next_fire``)."""
    return [fire for fire, _ in _chain(schedule, after, key, count, duration=duration, started=started)]


def _chain(
    schedule: schedules.Schedule, after: dt.datetime, key: str, count: int, *, duration: float, started: int
) -> list[tuple[Fire, dt.date]]:
    out: list[tuple[Fire, dt.date]] = []
    cursor = after
    for _ in range(count):
        fire, day = _next(schedule, cursor, key, duration=duration, started=started)
        same_day = local_day(schedule, fire.nominal) == local_day(schedule, cursor)
        started = started + 1 if same_day else 1
        out.append((fire, day))
        cursor = fire.nominal
    return out


@dataclass(frozen=True)
class Effective:
    """What a random schedule really produces over many runs."""

    mean: float
    """The mean gap between runs, in ``unit``."""
    asked: float
    """``random.mean`` in the same unit."""
    unit: str
    """``eligible days`` (per: workday) or ``hours of window time`` (per: window_time)."""
    runs: int

    def describe(self) -> str:
        return (
            f"effective mean over the next {wording.counted(self.runs, 'run')}: "
            f"one run per {self.mean:.2f} {self.unit} "
            f"(random.mean asks for {self.asked:.2f})"
        )


def effective_mean(
    schedule: schedules.Schedule,
    after: dt.datetime,
    key: str,
    *,
    duration: float = 0.0,
    runs: int = 1000,
    started: int = 0,
) -> Effective | None:
    """The mean gap over the next ``runs`` runs, in the unit ``random.mean`` counts; None for cron."""
    if schedule.random is None:
        return None
    chain = _chain(schedule, after, key, runs + 1, duration=duration, started=started)
    if schedule.per is schedules.Per.WORKDAY:
        gaps = [
            sum(1 for n in range(1, (b - a).days + 1) if schedule.spans(a + dt.timedelta(days=n), duration))
            for (_, a), (_, b) in itertools.pairwise(chain)
        ]
        return Effective(statistics.fmean(gaps), schedule.random.mean / schedules.DAY, "eligible days", runs)
    hours = [
        window_time(schedule, a.nominal, b.nominal, duration) / 3600.0
        for (a, _), (b, _) in itertools.pairwise(chain)
    ]
    return Effective(statistics.fmean(hours), schedule.random.mean / 3600.0, "hours of window time", runs)


def window_time(
    schedule: schedules.Schedule, start: dt.datetime, end: dt.datetime, duration: float = 0.0
) -> float:
    """Seconds between ``start`` and ``end`` in which a run may start (what ``per: window_time`` counts)."""
    total = 0.0
    day = local_day(schedule, start) - dt.timedelta(days=1)
    while day <= local_day(schedule, end):
        for low, high in schedule.spans(day, duration):
            overlap = (min(high, end) - max(low, start)).total_seconds()
            total += max(overlap, 0.0)
        day += dt.timedelta(days=1)
    return total
