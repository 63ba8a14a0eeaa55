"""When a GameDay plan may run: cron or Chaos-Monkey random mode, allowed windows, blackouts, jitter.

The same model is the ``schedule:`` of a GameDay plan and of the Kubernetes operator's
``ChaosSchedule``. Fire times are a pure function of the schedule, the time to start after and a
key (the plan's name): jitter and random draws are seeded from them, so ``chaoskit gameday next``
prints exactly the times the daemon will use, and a restarted daemon computes the same ones.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import zoneinfo
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaoskit import errors
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


class RandomMode(Model):
    """Chaos-Monkey style: random run times, on average ``mean`` apart, never closer than ``min_interval``.

    Draws that fall outside the windows or on a blackout are skipped, which lengthens the real mean.
    """

    mean: Duration
    """The average time between runs, e.g. ``2d``."""
    min_interval: Duration = 0.0
    """Never two runs closer than this, e.g. ``4h``."""

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if self.mean <= 0:
            raise ValueError("random.mean must be more than 0, e.g. 2d")
        if self.min_interval > self.mean:
            raise ValueError(
                f"random.min_interval ({self.min_interval:g}s) can't exceed random.mean ({self.mean:g}s)"
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
        return self

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


def _never(schedule: Schedule, after: dt.datetime) -> errors.UsageError:
    return errors.UsageError(
        f"the schedule never fires after {after.isoformat()}: cron/random times never fall inside "
        f"its windows outside its blackouts (looked {HORIZON.days} days ahead)",
        hint="widen windows:, shorten blackouts:, or change cron:",
    )


def next_fire(schedule: Schedule, after: dt.datetime, key: str) -> Fire:
    """The first allowed run whose nominal time is strictly after ``after``."""
    after = _utc(after)
    seed = schedule.seed or key
    if schedule.random is not None:
        return _next_random(schedule, schedule.random, after, seed)
    croniter = _croniter()
    assert schedule.cron is not None
    times = croniter(schedule.cron, after.astimezone(schedule.zone))
    for _ in range(MAX_CANDIDATES):
        nominal = _utc(times.get_next(dt.datetime))
        if nominal - after > HORIZON:
            break
        offset = random.Random(f"{seed}:jitter:{nominal.isoformat()}").uniform(0, schedule.jitter)
        at = nominal + dt.timedelta(seconds=round(offset))
        if schedule.allows(at):
            return Fire(nominal=nominal, at=at)
    raise _never(schedule, after)


def _next_random(schedule: Schedule, mode: RandomMode, after: dt.datetime, seed: str) -> Fire:
    # Each draw is seeded by the time it starts from, so the chain of draws is reproducible;
    # a draw outside the windows becomes the base for the next one, which keeps min_interval.
    spread = mode.mean - mode.min_interval
    base = after
    for _ in range(MAX_CANDIDATES):
        rng = random.Random(f"{seed}:random:{base.isoformat()}")
        gap = mode.min_interval + (rng.expovariate(1 / spread) if spread > 0 else 0.0)
        candidate = base + dt.timedelta(seconds=max(round(gap), 1))
        if candidate - after > HORIZON:
            break
        if schedule.allows(candidate):
            return Fire(nominal=candidate, at=candidate)
        base = candidate
    raise _never(schedule, after)


def upcoming(schedule: Schedule, after: dt.datetime, key: str, count: int) -> list[Fire]:
    """The next ``count`` runs after ``after``, in order."""
    fires: list[Fire] = []
    cursor = after
    for _ in range(count):
        fire = next_fire(schedule, cursor, key)
        fires.append(fire)
        cursor = fire.nominal
    return fires
