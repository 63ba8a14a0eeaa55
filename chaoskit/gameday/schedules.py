"""When a GameDay plan may run: cron or Chaos-Monkey random mode, allowed windows, blackouts, jitter.

The same model is the ``schedule:`` of a GameDay plan and of the Kubernetes operator's
``ChaosSchedule``; ``chaoskit.gameday.firing`` computes its fire times.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaoskit import durations, errors, installing
from chaoskit.durations import Duration


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
            cron = croniter()
            if len(value.split()) != 5 or not cron.is_valid(value):
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
        midnight = utc(dt.datetime.combine(following, dt.time(0, 0), zone))
        raw: list[tuple[dt.datetime, dt.datetime]] = []
        for window in self.windows or [Window()]:
            if day.weekday() not in {d.number for d in window.days}:
                continue
            start = utc(dt.datetime.combine(day, window.start, zone))
            end_day = day if window.start < window.end else following
            end = utc(dt.datetime.combine(end_day, window.end, zone))
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


def croniter() -> Any:
    """The ``croniter`` class (the ``schedule`` extra), imported when a cron schedule needs it."""
    try:
        from croniter import croniter
    except ImportError as e:
        raise errors.ComponentMissing(
            "cron schedules need the croniter library",
            hint=installing.install_command("schedule"),
        ) from e
    return croniter


def utc(when: dt.datetime) -> dt.datetime:
    """``when`` in UTC; a naive datetime is a bug (schedules compare instants)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: schedules work with aware datetimes")
    return when.astimezone(dt.UTC)
