"""The GameDay daemon: waits for each fire time of a schedule and runs the plan, one run at a time.

State lives in SQLite under the state dir (``schedules.sqlite3``): every fire is claimed in a row
before it runs, so a restart (or a second daemon) never repeats a run, and a run that came due
while the daemon was down still starts when it comes back (within ``misfire_grace``). A file lock
keeps two runs of the same plan from overlapping. Time comes from a ``Clock``, so tests drive the
loop with a fake one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import logging
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaoskit import errors
from chaoskit.engine import halts
from chaoskit.gameday import firing, schedules

log = logging.getLogger("chaoskit.gameday")

DB_NAME = "schedules.sqlite3"
MAX_NAP = 60.0
"""Longest single sleep: the daemon re-reads the clock at least this often (suspend, clock steps)."""


class Clock(Protocol):
    """Wall-clock time and waiting; the daemon never reads the time any other way."""

    def now(self) -> dt.datetime:
        """Aware, UTC."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep up to ``seconds``; True when ``stop`` was set (return early then)."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(seconds, 0.0))


class FireStatus(enum.StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    MISSED = "missed"
    """Came due while the daemon was down, longer ago than misfire_grace, or outside its window by now."""
    COALESCED = "coalesced"
    """Came due while the daemon was down, but a later fire was due too: only the latest runs."""
    OVERLAP = "overlap"
    """Another run of the same plan still held the lock."""
    ABANDONED = "abandoned"
    """The daemon running it died; not repeated (``chaoskit recover`` reverts what it left applied)."""
    FAILED = "failed"
    """The run raised instead of producing a verdict."""
    HALTED = "halted"
    """Came due while a halt was in force (``chaoskit halt``): skipped, not queued for later."""


@dataclass(frozen=True)
class Outcome:
    """What a run of the plan produced, as the daemon records it."""

    verdict: str
    score: float | None = None


@dataclass(frozen=True)
class FireRecord:
    key: str
    nominal: dt.datetime
    at: dt.datetime
    status: FireStatus
    started: dt.datetime | None
    finished: dt.datetime | None
    verdict: str | None
    score: float | None
    detail: str | None


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


class States:
    """The SQLite table of fires, per plan key."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_NAME
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS anchors (key TEXT PRIMARY KEY, anchor TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS fires (
                key TEXT NOT NULL, nominal TEXT NOT NULL, at TEXT NOT NULL, status TEXT NOT NULL,
                started TEXT, finished TEXT, verdict TEXT, score REAL, detail TEXT,
                host TEXT, pid INTEGER,
                PRIMARY KEY (key, nominal)
            );
            """
        )

    def close(self) -> None:
        self._db.close()

    def anchor(self, key: str, now: dt.datetime) -> dt.datetime:
        """Where the schedule continues from: the last fire's nominal time, or when it was first seen."""
        row = self._db.execute("SELECT max(nominal) FROM fires WHERE key = ?", (key,)).fetchone()
        if row[0] is not None:
            last = _parse(row[0])
            assert last is not None
            return last
        self._db.execute("INSERT OR IGNORE INTO anchors VALUES (?, ?)", (key, _iso(now)))
        row = self._db.execute("SELECT anchor FROM anchors WHERE key = ?", (key,)).fetchone()
        first = _parse(row[0])
        assert first is not None
        return first

    def resume_point(self, key: str) -> dt.datetime | None:
        """Like ``anchor`` but read-only: None when the daemon never ran this plan."""
        row = self._db.execute("SELECT max(nominal) FROM fires WHERE key = ?", (key,)).fetchone()
        if row[0] is None:
            row = self._db.execute("SELECT anchor FROM anchors WHERE key = ?", (key,)).fetchone()
        return _parse(row[0]) if row else None

    def claim(
        self, key: str, fire: firing.Fire, status: FireStatus, now: dt.datetime, detail: str = ""
    ) -> bool:
        """Record a fire once; False when it is recorded already (before a restart, or by another daemon)."""
        try:
            self._db.execute(
                "INSERT INTO fires (key, nominal, at, status, started, detail, host, pid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    _iso(fire.nominal),
                    _iso(fire.at),
                    status.value,
                    _iso(now) if status is FireStatus.STARTED else None,
                    detail or None,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def finish(
        self,
        key: str,
        *,
        fire: firing.Fire,
        status: FireStatus,
        now: dt.datetime,
        outcome: Outcome | None = None,
        detail: str = "",
    ) -> None:
        self._db.execute(
            "UPDATE fires SET status = ?, finished = ?, verdict = ?, score = ?, detail = ?"
            " WHERE key = ? AND nominal = ?",
            (
                status.value,
                _iso(now),
                outcome.verdict if outcome else None,
                outcome.score if outcome else None,
                detail or None,
                key,
                _iso(fire.nominal),
            ),
        )

    def abandon_dead(self, key: str, now: dt.datetime) -> list[FireRecord]:
        """Mark runs left ``started`` by a daemon on this host that no longer lives; returns them."""
        rows = self._db.execute(
            "SELECT nominal, at, pid FROM fires WHERE key = ? AND status = ? AND host = ?",
            (key, FireStatus.STARTED.value, socket.gethostname()),
        ).fetchall()
        abandoned: list[FireRecord] = []
        for nominal, at, pid in rows:
            if pid != os.getpid() and _alive(pid):
                continue
            fire = firing.Fire(nominal=_parse(nominal) or now, at=_parse(at) or now)
            self.finish(
                key,
                fire=fire,
                status=FireStatus.ABANDONED,
                now=now,
                detail=f"daemon pid {pid} died during the run",
            )
            abandoned.extend(r for r in self.fires(key) if r.nominal == fire.nominal)
        return abandoned

    def started_on(self, key: str, schedule: schedules.Schedule, when: dt.datetime) -> int:
        """How many runs of the plan started on ``when``'s local date (for ``max_per_day``)."""
        day = firing.local_day(schedule, when)
        ran = {FireStatus.STARTED, FireStatus.FINISHED, FireStatus.FAILED, FireStatus.ABANDONED}
        return sum(
            1
            for r in self.fires(key)
            if r.status in ran and firing.local_day(schedule, r.started or r.at) == day
        )

    def fires(self, key: str) -> list[FireRecord]:
        rows = self._db.execute(
            "SELECT key, nominal, at, status, started, finished, verdict, score, detail FROM fires"
            " WHERE key = ? ORDER BY nominal",
            (key,),
        ).fetchall()
        return [
            FireRecord(
                key=r[0],
                nominal=_parse(r[1]) or dt.datetime.min,
                at=_parse(r[2]) or dt.datetime.min,
                status=FireStatus(r[3]),
                started=_parse(r[4]),
                finished=_parse(r[5]),
                verdict=r[6],
                score=r[7],
                detail=r[8],
            )
            for r in rows
        ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(state_dir: Path, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    return state_dir / f"gameday-{safe}.lock"


@contextlib.contextmanager
def holding(state_dir: Path, key: str) -> Iterator[bool]:
    """Hold the plan's overlap lock while the block runs; yields False (without waiting) when it is taken."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_path(state_dir, key), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Scheduler:
    """Runs ``run`` at each fire of ``schedule`` until ``stop`` is set or ``max_runs`` fires were handled."""

    def __init__(
        self,
        schedule: schedules.Schedule,
        key: str,
        state_dir: Path,
        run: Callable[[firing.Fire], Outcome],
        *,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        halt: Callable[[], halts.Halt | None] | None = None,
        duration: float = 0.0,
    ) -> None:
        self.schedule = schedule
        self.key = key
        self.state_dir = state_dir
        self.run = run
        self.clock: Clock = clock or SystemClock()
        self.stop = stop or threading.Event()
        self.halt = halt or halts.Watch(state_dir).check
        """Asked before each fire: a run due while halted is skipped (and recorded as such)."""
        self.duration = duration
        """The plan's planned length in seconds: with ``fit: run`` each run ends inside its window."""

    def serve(self, max_fires: int | None = None) -> None:
        """The daemon loop. Returns when ``stop`` is set (between runs) or after ``max_fires`` fires."""
        states = States(self.state_dir)
        try:
            for record in states.abandon_dead(self.key, self.clock.now()):
                log.warning(
                    "run due %s was interrupted when the daemon died; not repeating it. "
                    "Run `chaoskit status` / `chaoskit recover` if faults are still applied",
                    record.nominal.isoformat(),
                )
            handled = 0
            while not self.stop.is_set() and (max_fires is None or handled < max_fires):
                anchor = states.anchor(self.key, self.clock.now())
                fire = firing.next_fire(
                    self.schedule,
                    anchor,
                    self.key,
                    duration=self.duration,
                    started=states.started_on(self.key, self.schedule, anchor),
                )
                now = self.clock.now()
                if now < fire.at:
                    log.info("next run of %s at %s", self.key, _show(fire.at, self.schedule))
                    while not self.stop.is_set() and (now := self.clock.now()) < fire.at:
                        self.clock.wait(min((fire.at - now).total_seconds(), MAX_NAP), self.stop)
                    if self.stop.is_set():
                        break
                self._handle(states, fire)
                handled += 1
        finally:
            states.close()
        log.info("scheduler for %s stopped", self.key)

    def _handle(self, states: States, fire: firing.Fire) -> None:
        now = self.clock.now()
        late = (now - fire.at).total_seconds()
        following = firing.next_fire(
            self.schedule,
            fire.nominal,
            self.key,
            duration=self.duration,
            started=states.started_on(self.key, self.schedule, fire.nominal) + 1,
        )
        if following.at <= now:
            states.claim(self.key, fire, FireStatus.COALESCED, now, "a later run was due too")
            log.info("skipping run due %s: a later one is due as well", _show(fire.at, self.schedule))
            return
        if late > self.schedule.misfire_grace:
            states.claim(self.key, fire, FireStatus.MISSED, now, f"{late:.0f}s late, over misfire_grace")
            log.warning("missed run due %s: %.0fs late", _show(fire.at, self.schedule), late)
            return
        if late > 0 and not self.schedule.fits(now, self.duration):
            states.claim(
                self.key,
                fire,
                FireStatus.MISSED,
                now,
                "late, and now outside the windows or too late to end inside one",
            )
            log.warning("missed run due %s: now outside the allowed windows", _show(fire.at, self.schedule))
            return
        halt = self.halt()
        if halt is not None:
            states.claim(self.key, fire, FireStatus.HALTED, now, halt.describe())
            log.warning(
                "skipping run due %s: %s; `chaoskit resume` lets the next ones run",
                _show(fire.at, self.schedule),
                halt.describe(),
            )
            return
        with holding(self.state_dir, self.key) as locked:
            if not locked:
                states.claim(
                    self.key, fire, FireStatus.OVERLAP, now, "another run of this plan held the lock"
                )
                log.warning("skipping run due %s: another run of %s is in progress", fire.at, self.key)
                return
            if not states.claim(self.key, fire, FireStatus.STARTED, now):
                log.info("run due %s was already handled; not repeating it", fire.at)
                return
            log.info("starting run of %s due %s", self.key, _show(fire.at, self.schedule))
            try:
                outcome = self.run(fire)
            except errors.ChaoskitError as e:
                states.finish(
                    self.key, fire=fire, status=FireStatus.FAILED, now=self.clock.now(), detail=e.message
                )
                log.error("run of %s failed: %s", self.key, e.render())
                return
            states.finish(
                self.key, fire=fire, status=FireStatus.FINISHED, now=self.clock.now(), outcome=outcome
            )
            score = "n/a" if outcome.score is None else f"{outcome.score:.1f}"
            log.info("run of %s finished: %s, score %s", self.key, outcome.verdict, score)


def _show(when: dt.datetime, schedule: schedules.Schedule) -> str:
    return when.astimezone(schedule.zone).isoformat()
