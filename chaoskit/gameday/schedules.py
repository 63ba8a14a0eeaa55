"""When a GameDay plan may run: cron or Chaos-Monkey random mode, allowed windows, blackouts, jitter.

The same model is the ``schedule:`` of a GameDay plan and of the Kubernetes operator's
``ChaosSchedule``. Fire times are a pure function of the schedule, the time to start after and a
key (the plan's name): jitter and random draws are seeded from them, so ``chaoskit gameday next``
prints exactly the times the daemon will use, and a restarted daemon computes the same ones.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import math
import random
import statistics
import zoneinfo
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaoskit import durations, errors, wording
from chaoskit.durations import Duration

MAX_CANDIDATES = 200_000
"""How many cron times or random draws to try before deciding a schedule never fires."""
HORIZON = dt.timedelta(days=3 * 366)
"""How far ahead to look for an allowed fire time."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as ``datetime.weekday()``."""
        return list(Weekday).index(self)


_DAY_GROUPS = {
    "weekdays": [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
    "weekends": [Weekday.SAT, Weekday.SUN],
    "daily": list(Weekday),
}


class Window(Model):
    """A stretch of local time, on some days of the week, when runs are allowed."""

    days: list[Weekday] = Field(default_factory=lambda: list(Weekday))
    """``[mon, tue, ...]``, or one of ``weekdays``, ``weekends``, ``daily``. The day a window starts on."""
    start: dt.time = dt.time(0, 0)
    """Local time, ``"09:00"``."""
    end: dt.time = dt.time(0, 0)
    """Local time, exclusive. An end at or before the start runs past midnight (00:00-00:00 is all day)."""

    @field_validator("days", mode="before")
    @classmethod
    def _groups(cls, value: object) -> object:
        if isinstance(value, str):
            if value not in _DAY_GROUPS:
                raise ValueError(
                    f"unknown day group {value!r}; use weekdays, weekends, daily or a list like [mon, fri]"
                )
            return _DAY_GROUPS[value]
        return value

    def allows(self, local: dt.datetime) -> bool:
        days = {d.number for d in self.days}
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in days and self.start <= now < self.end
        started_today = local.weekday() in days and now >= self.start
        started_yesterday = (local.weekday() - 1) % 7 in days and now < self.end
        return started_today or started_yesterday


class Blackout(Model):
    """Dates (in the schedule's time zone) when nothing runs: a freeze, a holiday, a launch."""

    from_: dt.date = Field(alias="from")
    to: dt.date
    """Inclusive."""
    reason: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.to < self.from_:
            raise ValueError(f"a blackout needs from <= to, got {self.from_} > {self.to}")
        return self

    def covers(self, day: dt.date) -> bool:
        return self.from_ <= day <= self.to


class Per(enum.StrEnum):
    """What ``random.mean`` counts."""

    WORKDAY = "workday"
    """Eligible days (a day with a window, not on a blackout), as Chaos Monkey's
    ``meanTimeBetweenKillsInWorkDays`` and kube-monkey's ``mtbf``: each eligible day runs with
    probability 1/mean-in-days, at a uniformly random time inside that day's windows."""
    WINDOW_TIME = "window_time"
    """Continuous time in which a run may start (inside a window, off blackouts; all time without
    windows): gaps are ``min_interval`` plus an exponential draw, both measured in that time."""


class Fit(enum.StrEnum):
    """What of a run must be inside a window."""

    RUN = "run"
    """The whole planned run (its faults' durations, pauses and recovery deadline): a run never
    outlasts its window."""
    START = "start"
    """Only its start."""


DAY = 86400.0


class RandomMode(Model):
    """Chaos-Monkey style: random run times, on average ``mean`` apart, never closer than ``min_interval``."""

    mean: Duration
    """The average gap, in the unit ``per`` names: ``1d`` is one run per eligible day with
    ``per: workday``, ``3h`` is one per three hours of window time with ``per: window_time``."""
    min_interval: Duration = 0.0
    """Never two runs closer than this (wall-clock time), e.g. ``4h``."""
    per: Per | None = None
    """``workday`` (the default when windows are given) or ``window_time`` (the default without)."""
    max_per_day: int | None = Field(default=None, ge=1)
    """At most this many runs start on one local date (Chaos Monkey: one per group per day)."""

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if self.mean <= 0:
            raise ValueError("random.mean must be more than 0, e.g. 2d")
        if self.min_interval > self.mean:
            raise ValueError(
                f"random.min_interval ({self.min_interval:g}s) can't exceed random.mean ({self.mean:g}s)"
            )
        if self.per is Per.WORKDAY and self.mean < DAY:
            raise ValueError(
                f"random.mean ({durations.format(self.mean)}) is less than a day, but per: workday runs at "
                "most once per eligible day; use a mean of 1d or more, or per: window_time for "
                "several runs a day"
            )
        return self


class Schedule(Model):
    """When a plan runs. Give ``cron`` or ``random``; windows and blackouts restrict both."""

    cron: str | None = None
    """Five-field cron, evaluated in ``timezone``: ``"0 10 * * mon-fri"``."""
    random: RandomMode | None = None
    timezone: str = "UTC"
    """An IANA name: ``Europe/Berlin``, ``America/New_York``."""
    windows: list[Window] = Field(default_factory=list)
    """Runs only start inside one of these; none given means any time."""
    blackouts: list[dt.date | Blackout] = Field(default_factory=list)
    """Dates (``2026-12-24``) or ranges (``{from: 2026-12-20, to: 2027-01-02}``) when nothing runs."""
    jitter: Duration = 0.0
    """A cron run starts up to this much later, so fleets don't all fire at once."""
    misfire_grace: Duration = 3600.0
    """A run the daemon could not start on time (it was down) still starts if at most this late."""
    seed: str | None = None
    """Seeds jitter and random draws; defaults to the plan's name."""
    fit: Fit = Fit.RUN
    """With windows: the whole planned run must end inside the window it starts in (``run``), or
    only its start must be inside (``start``)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Europe/Berlin or UTC"
            ) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            croniter = _croniter()
            if len(value.split()) != 5 or not croniter.is_valid(value):
                raise ValueError(
                    f"not a five-field cron expression: {value!r}; "
                    "e.g. '0 10 * * mon-fri' (minute hour day month weekday)"
                )
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if (self.cron is None) == (self.random is None):
            raise ValueError("a schedule needs exactly one of cron: or random:")
        if self.random is not None and self.jitter:
            raise ValueError("jitter applies to cron schedules; random mode is random already")
        if self.random is not None and self.per is Per.WORKDAY and self.random.mean < DAY:
            raise ValueError(
                f"random.mean ({durations.format(self.random.mean)}) is less than a day, and with windows "
                "random mode counts per: workday (at most one run per eligible day); use a mean of "
                "1d or more, or set random.per: window_time for several runs a day"
            )
        return self

    @property
    def per(self) -> Per | None:
        """What ``random.mean`` counts; None for cron."""
        if self.random is None:
            return None
        if self.random.per is not None:
            return self.random.per
        return Per.WORKDAY if self.windows else Per.WINDOW_TIME

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def allows(self, when: dt.datetime) -> bool:
        """Whether a run may start at ``when``: inside a window and not on a blackout date."""
        local = when.astimezone(self.zone)
        for blackout in self.blackouts:
            if isinstance(blackout, Blackout):
                if blackout.covers(local.date()):
                    return False
            elif blackout == local.date():
                return False
        return not self.windows or any(w.allows(local) for w in self.windows)

    def blacked_out(self, day: dt.date) -> bool:
        return any(b.covers(day) if isinstance(b, Blackout) else b == day for b in self.blackouts)

    def spans(self, day: dt.date, duration: float = 0.0) -> list[tuple[dt.datetime, dt.datetime]]:
        """When a run may start in the windows that open on ``day`` (local): UTC ``[start, end)``
        pairs in order, cut at a blackout date, shortened by ``duration`` when the run must fit."""
        if self.blacked_out(day):
            return []
        zone = self.zone
        following = day + dt.timedelta(days=1)
        midnight = _utc(dt.datetime.combine(following, dt.time(0, 0), zone))
        raw: list[tuple[dt.datetime, dt.datetime]] = []
        for window in self.windows or [Window()]:
            if day.weekday() not in {d.number for d in window.days}:
                continue
            start = _utc(dt.datetime.combine(day, window.start, zone))
            end_day = day if window.start < window.end else following
            end = _utc(dt.datetime.combine(end_day, window.end, zone))
            if end > midnight and self.blacked_out(following):
                end = midnight
            raw.append((start, end))
        merged: list[tuple[dt.datetime, dt.datetime]] = []
        for start, end in sorted(raw):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        # Without windows there is no end to fit before.
        cut = dt.timedelta(seconds=duration if self.fit is Fit.RUN and self.windows else 0.0)
        return [(start, end - cut) for start, end in merged if end - cut > start]

    def fits(self, when: dt.datetime, duration: float = 0.0) -> bool:
        """Whether a run planned to take ``duration`` seconds may start at ``when``: ``allows``, and
        with ``fit: run`` it also ends inside the window it started in."""
        if not self.allows(when):
            return False
        if not self.windows:
            return True
        day = when.astimezone(self.zone).date()
        return any(
            start <= when < end
            for d in (day - dt.timedelta(days=1), day)
            for start, end in self.spans(d, duration)
        )


@dataclass(frozen=True)
class Fire:
    """One planned run."""

    nominal: dt.datetime
    """The cron time (or the random draw): identifies the run in the daemon's state."""
    at: dt.datetime
    """When it starts: ``nominal`` plus jitter. Aware, UTC."""


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError as e:
        raise errors.ComponentMissing(
            "cron schedules need the croniter library",
            hint="pip install 'chaoskit[schedule]'",
        ) from e
    return croniter


def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: schedules work with aware datetimes")
    return when.astimezone(dt.UTC)


def _never(schedule: Schedule, after: dt.datetime, duration: float) -> errors.UsageError:
    if duration and schedule.windows and schedule.fit is Fit.RUN:
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


def local_day(schedule: Schedule, when: dt.datetime) -> dt.date:
    """The date of ``when`` in the schedule's time zone: what ``max_per_day`` counts by."""
    return when.astimezone(schedule.zone).date()


def next_fire(
    schedule: Schedule, after: dt.datetime, key: str, *, duration: float = 0.0, started: int = 0
) -> Fire:
    """The first allowed run whose nominal time is strictly after ``after``.

    ``duration`` is the run's planned length (fitted inside a window with ``fit: run``);
    ``started`` is how many runs already started on ``after``'s local date (for ``max_per_day``).
    """
    return _next(schedule, after, key, duration=duration, started=started)[0]


def _next(
    schedule: Schedule, after: dt.datetime, key: str, *, duration: float, started: int
) -> tuple[Fire, dt.date]:
    """``next_fire`` and the day it counts for (the day its window opened)."""
    after = _utc(after)
    seed = schedule.seed or key
    mode = schedule.random
    if mode is not None:
        if schedule.per is Per.WORKDAY:
            return _next_workday(schedule, mode, after, seed, duration=duration, started=started)
        return _next_window_time(schedule, mode, after, seed, duration=duration, started=started)
    croniter = _croniter()
    assert schedule.cron is not None
    times = croniter(schedule.cron, after.astimezone(schedule.zone))
    for _ in range(MAX_CANDIDATES):
        nominal = _utc(times.get_next(dt.datetime))
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
    schedule: Schedule, mode: RandomMode, after: dt.datetime, seed: str, *, duration: float, started: int
) -> tuple[Fire, dt.date]:
    # Each day's draw depends on the day alone, as Chaos Monkey decides each morning: a day runs
    # with probability 1/mean, at a uniform time in its windows. A day whose draw is not after
    # ``after`` is spent (it is the run we continue from, or it passed before we started), so one
    # day never runs twice; a draw too close to the last run moves later in the same day.
    chance = DAY / mode.mean
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
    schedule: Schedule, mode: RandomMode, after: dt.datetime, seed: str, *, duration: float, started: int
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
                midnight = _utc(
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


def _too_far(schedule: Schedule, after: dt.datetime, duration: float) -> errors.UsageError:
    assert schedule.random is not None
    had = window_time(schedule, after, after + HORIZON, duration)
    return errors.UsageError(
        f"the next random run after {after.isoformat()} was drawn more than {HORIZON.days} days ahead: "
        f"the windows hold {had / 3600:.0f}h of window time in that span, and random.mean is "
        f"{durations.format(schedule.random.mean)} of it",
        hint="shorten random.mean or widen windows:",
    )


def upcoming(
    schedule: Schedule, after: dt.datetime, key: str, count: int, *, duration: float = 0.0, started: int = 0
) -> list[Fire]:
    """The next ``count`` runs after ``after``, in order (``started`` as in ``next_fire``)."""
    return [fire for fire, _ in _chain(schedule, after, key, count, duration=duration, started=started)]


def _chain(
    schedule: Schedule, after: dt.datetime, key: str, count: int, *, duration: float, started: int
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
    schedule: Schedule,
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
    if schedule.per is Per.WORKDAY:
        gaps = [
            sum(1 for n in range(1, (b - a).days + 1) if schedule.spans(a + dt.timedelta(days=n), duration))
            for (_, a), (_, b) in itertools.pairwise(chain)
        ]
        return Effective(statistics.fmean(gaps), schedule.random.mean / DAY, "eligible days", runs)
    hours = [
        window_time(schedule, a.nominal, b.nominal, duration) / 3600.0
        for (a, _), (b, _) in itertools.pairwise(chain)
    ]
    return Effective(statistics.fmean(hours), schedule.random.mean / 3600.0, "hours of window time", runs)


def window_time(schedule: Schedule, start: dt.datetime, end: dt.datetime, duration: float = 0.0) -> float:
    """Seconds between ``start`` and ``end`` in which a run may start (what ``per: window_time`` counts)."""
    total = 0.0
    day = local_day(schedule, start) - dt.timedelta(days=1)
    while day <= local_day(schedule, end):
        for low, high in schedule.spans(day, duration):
            overlap = (min(high, end) - max(low, start)).total_seconds()
            total += max(overlap, 0.0)
        day += dt.timedelta(days=1)
    return total
