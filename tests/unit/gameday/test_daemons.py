"""The GameDay daemon under a fake clock: runs on time, never repeats, never loses, never overlaps."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import itertools
import statistics
import subprocess
import sys
import threading
import zoneinfo
from pathlib import Path

from chaoskit.engine import halts
from chaoskit.gameday import daemons, firing, schedules

START = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
HOURLY = schedules.Schedule.model_validate({"cron": "0 * * * *", "misfire_grace": "30m"})


class FakeClock:
    """Time moves only when the daemon waits, or when the test says so."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start
        self.waits: list[float] = []

    def now(self) -> dt.datetime:
        return self.current

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        self.waits.append(seconds)
        self.current += dt.timedelta(seconds=seconds)
        return stop.is_set()


class Recorder:
    def __init__(self, clock: FakeClock, takes: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.clock = clock
        self.takes = takes
        self.runs: list[tuple[dt.datetime, dt.datetime]] = []

    def __call__(self, fire: firing.Fire) -> daemons.Outcome:
        self.runs.append((fire.nominal, self.clock.now()))
        self.clock.current += self.takes
        return daemons.Outcome(verdict="completed", score=97.5)


def daemon(
    tmp_path: Path, clock: FakeClock, run: Recorder, schedule: schedules.Schedule = HOURLY
) -> daemons.Scheduler:
    return daemons.Scheduler(schedule, "checkout", tmp_path, run, clock=clock)


def statuses(tmp_path: Path) -> list[tuple[str, str]]:
    states = daemons.States(tmp_path)
    try:
        return [(r.nominal.strftime("%H:%M"), r.status.value) for r in states.fires("checkout")]
    finally:
        states.close()


def test_runs_at_each_fire_time_and_records_the_outcome(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=10))
    run = Recorder(clock)
    daemon(tmp_path, clock, run).serve(max_fires=3)
    assert [(n.strftime("%H:%M"), s.strftime("%H:%M")) for n, s in run.runs] == [
        ("09:00", "09:00"),
        ("10:00", "10:00"),
        ("11:00", "11:00"),
    ]
    assert max(clock.waits) <= daemons.MAX_NAP
    states = daemons.States(tmp_path)
    records = states.fires("checkout")
    states.close()
    assert [(r.status, r.verdict, r.score) for r in records] == [
        (daemons.FireStatus.FINISHED, "completed", 97.5)
    ] * 3


def test_a_restart_neither_repeats_nor_loses_a_run(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=10))
    first = Recorder(clock)
    daemon(tmp_path, clock, first).serve(max_fires=1)  # runs 09:00
    # Down from 09:05 to 10:20: the 10:00 run came due meanwhile and is 20 min late (< grace).
    clock.current = START + dt.timedelta(hours=2, minutes=20)
    second = Recorder(clock)
    daemon(tmp_path, clock, second).serve(max_fires=2)
    assert [n.strftime("%H:%M") for n, _ in second.runs] == ["10:00", "11:00"]
    assert statuses(tmp_path) == [("09:00", "finished"), ("10:00", "finished"), ("11:00", "finished")]


def test_after_a_long_outage_only_the_latest_due_run_starts(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=10))
    daemon(tmp_path, clock, Recorder(clock)).serve(max_fires=1)  # 09:00
    clock.current = START + dt.timedelta(hours=4, minutes=10)  # 12:10: 10:00, 11:00, 12:00 are due
    again = Recorder(clock)
    daemon(tmp_path, clock, again).serve(max_fires=3)
    assert [n.strftime("%H:%M") for n, _ in again.runs] == ["12:00"]
    assert statuses(tmp_path) == [
        ("09:00", "finished"),
        ("10:00", "coalesced"),
        ("11:00", "coalesced"),
        ("12:00", "finished"),
    ]


def test_a_run_later_than_the_grace_is_recorded_as_missed(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=10))
    daemon(tmp_path, clock, Recorder(clock)).serve(max_fires=1)  # 09:00
    clock.current = START + dt.timedelta(hours=2, minutes=45)  # 10:45: the 10:00 run is 45 min late
    again = Recorder(clock)
    daemon(tmp_path, clock, again).serve(max_fires=2)
    assert [n.strftime("%H:%M") for n, _ in again.runs] == ["11:00"]
    assert statuses(tmp_path)[1] == ("10:00", "missed")


def test_a_first_start_does_not_run_past_fires(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=59, seconds=59))
    run = Recorder(clock)
    daemon(tmp_path, clock, run).serve(max_fires=1)
    assert [n.strftime("%H:%M") for n, _ in run.runs] == ["09:00"]


def test_a_fire_while_another_run_holds_the_lock_is_skipped(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=50))
    run = Recorder(clock)
    with daemons.holding(tmp_path, "checkout") as locked:
        assert locked
        daemon(tmp_path, clock, run).serve(max_fires=1)
    assert run.runs == []
    assert statuses(tmp_path) == [("09:00", "overlap")]
    # The lock is released with the block: the next fire runs.
    daemon(tmp_path, clock, run).serve(max_fires=1)
    assert [n.strftime("%H:%M") for n, _ in run.runs] == ["10:00"]


def test_the_lock_is_held_by_a_run_and_excludes_another_process(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=50))
    seen: list[str] = []
    probe = (
        "import sys, pathlib; from chaoskit.gameday import daemons\n"
        "with daemons.holding(pathlib.Path(sys.argv[1]), 'checkout') as got: print(got)"
    )

    def run(fire: firing.Fire) -> daemons.Outcome:
        result = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
        )
        seen.append(result.stdout.strip())
        return daemons.Outcome(verdict="completed")

    daemons.Scheduler(HOURLY, "checkout", tmp_path, run, clock=clock).serve(max_fires=1)
    assert seen == ["False"]


def test_a_run_left_started_by_a_dead_daemon_is_not_repeated(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=50))

    def dies(fire: firing.Fire) -> daemons.Outcome:
        raise KeyboardInterrupt  # stands in for the daemon being killed mid-run

    with contextlib.suppress(KeyboardInterrupt):
        daemon(tmp_path, clock, dies).serve(max_fires=1)  # type: ignore[arg-type]
    assert statuses(tmp_path) == [("09:00", "started")]
    states = daemons.States(tmp_path)
    # Same host, and this pid still lives: pretend the row came from a daemon that has exited.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    states._db.execute("UPDATE fires SET pid = ?", (int(dead.stdout),))
    states.close()
    run = Recorder(clock)
    daemon(tmp_path, clock, run).serve(max_fires=1)
    assert [n.strftime("%H:%M") for n, _ in run.runs] == ["10:00"]
    assert statuses(tmp_path) == [("09:00", "abandoned"), ("10:00", "finished")]


def test_stop_ends_the_daemon_between_runs(tmp_path: Path) -> None:
    clock = FakeClock(START + dt.timedelta(minutes=10))
    stop = threading.Event()
    run = Recorder(clock)
    real_wait = clock.wait

    def wait_then_stop(seconds: float, event: threading.Event) -> bool:
        if len(run.runs) == 2:
            event.set()
        return real_wait(seconds, event)

    clock.wait = wait_then_stop  # type: ignore[method-assign]
    daemons.Scheduler(HOURLY, "checkout", tmp_path, run, clock=clock, stop=stop).serve()
    assert len(run.runs) == 2
    assert statuses(tmp_path) == [("09:00", "finished"), ("10:00", "finished")]


NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
BUSINESS = [{"days": "weekdays", "start": "09:00", "end": "15:00"}]


def test_the_daemon_in_chaos_monkey_mode_runs_once_per_mean_work_days_and_inside_the_window(
    tmp_path: Path,
) -> None:
    schedule = schedules.Schedule.model_validate(
        {
            "random": {"mean": "2d", "min_interval": "1h"},
            "timezone": "America/New_York",
            "windows": BUSINESS,
            "blackouts": [{"from": "2026-12-21", "to": "2027-01-01"}],
        }
    )
    clock = FakeClock(dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC))
    run = Recorder(clock, takes=dt.timedelta(minutes=40))
    halted_from, halted_to = dt.datetime(2027, 2, 1, tzinfo=dt.UTC), dt.datetime(2027, 2, 15, tzinfo=dt.UTC)
    halt = halts.Halt("incident 42", "ana@ops", "2027-02-01")
    daemons.Scheduler(
        schedule,
        "checkout",
        tmp_path,
        run,
        clock=clock,
        duration=40 * 60,
        halt=lambda: halt if halted_from <= clock.now() < halted_to else None,
    ).serve(max_fires=400)
    starts = [started.astimezone(NEW_YORK) for _, started in run.runs]
    for start in starts:
        end = start + dt.timedelta(minutes=40)
        assert start.weekday() < 5 and start.time() >= dt.time(9) and end.time() <= dt.time(15), start
        assert not dt.date(2026, 12, 21) <= start.date() <= dt.date(2027, 1, 1)
    records = daemons.States(tmp_path).fires("checkout")
    halted = [r for r in records if r.status is daemons.FireStatus.HALTED]
    assert halted and all(halted_from <= r.at < halted_to for r in halted)
    assert not any(halted_from <= s < halted_to for s in starts), "a halted fire is skipped, not queued"
    # One run per two weekdays (off the blackout), counting the halted fires the lever skipped.
    days = sorted({r.at.astimezone(NEW_YORK).date() for r in records})
    assert len(days) == len(records) == 400, "at most one fire per day"
    weekdays = [
        sum(
            1
            for n in range(1, (b - a).days + 1)
            if (d := a + dt.timedelta(days=n)).weekday() < 5
            and not dt.date(2026, 12, 21) <= d <= dt.date(2027, 1, 1)
        )
        for a, b in itertools.pairwise(days)
    ]
    assert 1.8 <= statistics.fmean(weekdays) <= 2.2, statistics.fmean(weekdays)


def test_a_late_run_that_would_outlast_its_window_is_missed(tmp_path: Path) -> None:
    schedule = schedules.Schedule.model_validate(
        {"cron": "0 14 * * *", "windows": [{"start": "09:00", "end": "15:00"}], "misfire_grace": "1h"}
    )
    # The daemon comes up at 14:40: the 14:00 run is within the grace, but 30 minutes from now is 15:10.
    clock = FakeClock(dt.datetime(2026, 11, 25, 14, 40, tzinfo=dt.UTC))
    states = daemons.States(tmp_path)
    states.anchor("checkout", dt.datetime(2026, 11, 25, 13, tzinfo=dt.UTC))
    states.close()
    run = Recorder(clock)
    daemons.Scheduler(schedule, "checkout", tmp_path, run, clock=clock, duration=1800).serve(max_fires=1)
    assert run.runs == []
    assert statuses(tmp_path) == [("14:00", "missed")]


def test_max_per_day_holds_across_a_daemon_restart(tmp_path: Path) -> None:
    schedule = schedules.Schedule.model_validate(
        {
            "random": {"mean": "30m", "per": "window_time", "max_per_day": 2},
            "windows": [{"start": "09:00", "end": "17:00"}],
        }
    )
    clock = FakeClock(dt.datetime(2026, 11, 25, 8, tzinfo=dt.UTC))
    run = Recorder(clock, takes=dt.timedelta(minutes=1))
    daemons.Scheduler(schedule, "checkout", tmp_path, run, clock=clock).serve(max_fires=2)
    assert [s.date() for _, s in run.runs] == [dt.date(2026, 11, 25)] * 2
    restarted = Recorder(clock, takes=dt.timedelta(minutes=1))
    daemons.Scheduler(schedule, "checkout", tmp_path, restarted, clock=clock).serve(max_fires=6)
    per_day = collections.Counter(s.date() for _, s in [*run.runs, *restarted.runs])
    assert per_day[dt.date(2026, 11, 25)] == 2
    assert set(per_day.values()) == {2}
