"""The load generator behind ``http.load``: one asyncio event loop (uvloop when installed) in the
calling thread, one keep-alive connection per worker, no pipelining.

Closed loop: ``workers`` connections each send their next request as soon as the last one is
answered; a big one is handed over to worker processes (spreading.py). Open loop: requests are
due at a fixed rate; each is handed to an idle connection (a new one is opened while fewer than
``workers`` are open), and its latency counts from when it was due, so time spent waiting for a
busy server shows up as latency (wrk2's coordinated-omission correction). Time the generator
itself loses (its event loop too busy to start a request on time) is never blamed on the server:
it is measured apart, and a generator that falls behind says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from chaoskit.drivers.http import connections, latencies, spreading, tallies

perf = time.perf_counter
BATCH = 64
"""Requests the open-loop dispatcher starts before it lets answers be read: bounds how long a
late dispatcher can keep the loop to itself."""
SATURATION_LAG = 1.0
"""The dispatcher more than this many seconds behind its schedule (plus 2% of the schedule's
span) skips what it missed: the generator cannot keep up. A shorter stall (the machine busy
elsewhere) is caught up in a burst, its delay left out of latency."""


@dataclass
class Outcome:
    tally: tallies.Tally
    elapsed: float
    connections: int
    saturated: bool = False
    lag: latencies.Histogram | None = None
    """How late the open-loop dispatcher started each request."""
    skipped: int = 0
    """Open-loop requests never sent because the generator was too far behind to send them on time."""


async def _watch(
    senders: list[connections.Sender],
    cancel: threading.Event,
    stopping: asyncio.Event,
    tick: float,
    budget: connections.Budget | None = None,
) -> None:
    """Time out requests past their deadline, and end everything when the run is cancelled."""
    while not stopping.is_set():
        await asyncio.sleep(tick)
        now = perf()
        cancelled = cancel.is_set()
        for sender in senders:
            if cancelled or sender.deadline < now:
                sender.abort(drop=cancelled)
        if cancelled:
            stopping.set()
            if budget is not None:
                budget.stopped = True


def tick_for(timeout: float) -> float:
    return min(max(timeout / 20, 0.005), 0.05)


async def closed_loop(
    make: Callable[[], connections.Sender],
    *,
    total: int,
    workers: int,
    stop_at: float,
    cancel: threading.Event,
    tick: float,
    tally: tallies.Tally,
    spread: bool = True,
) -> Outcome:
    """Send ``total`` requests (at most) on ``workers`` connections, each as soon as the last
    answer on its connection came; with ``spread``, handed over to worker processes once they are
    ready when the load is big enough."""
    senders = [make() for _ in range(workers)]
    budget = connections.Budget(total, stop_at)
    started = perf()
    here = keep_sending(senders, budget, cancel, tick)
    planned = spreading.plan(senders, total, stop_at - started) if spread else None
    if planned is None:
        await here
        return Outcome(tally, perf() - started, len(senders))
    target, processes = planned
    await spreading.spread(
        target, processes, here, workers=workers, budget=budget, cancel=cancel, tick=tick, tally=tally
    )
    return Outcome(tally, perf() - started, len(senders))


async def keep_sending(
    senders: list[connections.Sender], budget: connections.Budget, cancel: threading.Event, tick: float
) -> None:
    """Each sender sends its next request as soon as it has its answer, while ``budget`` allows."""
    stopping = asyncio.Event()

    async def work(sender: connections.Sender) -> None:
        while budget.take(perf()):
            await sender.send(perf(), budget)

    watcher = asyncio.create_task(_watch(senders, cancel, stopping, tick, budget))
    try:
        await asyncio.gather(*(work(s) for s in senders))
    finally:
        stopping.set()
        budget.stopped = True
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for sender in senders:
            sender.close()


class _Pool:
    """An open loop's connections: each due request goes to an idle one, or waits in line for
    one; a new one is opened while fewer than ``most`` are open."""

    def __init__(
        self, make: Callable[[], connections.Sender], most: int, timeout: float, tally: tallies.Tally
    ) -> None:
        self.make = make
        self.most = most
        self.timeout = timeout
        self.tally = tally
        self.senders: list[connections.Sender] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.waiting: collections.deque[float] = collections.deque()
        """Due times of requests no connection has taken yet."""
        self.idle: collections.deque[asyncio.Future[float | None]] = collections.deque()
        self.stopping = asyncio.Event()
        self.finished = False
        """Set when no more requests will be handed out."""

    def hand(self, due: float) -> None:
        while self.idle:
            waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(due)
                return
        self.waiting.append(due)
        if len(self.senders) < self.most:
            sender = self.make()
            self.senders.append(sender)
            self.tasks.append(asyncio.create_task(self._work(sender)))

    async def _work(self, sender: connections.Sender) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            if self.waiting:
                due = self.waiting.popleft()
            elif self.finished:
                return
            else:
                waiter: asyncio.Future[float | None] = loop.create_future()
                self.idle.append(waiter)
                got = await waiter
                if got is None:
                    return
                due = got
            now = perf()
            if now - due >= self.timeout:
                # Waited for a free connection longer than its whole timeout: it timed out unsent.
                self.tally.expire(due, now)
                continue
            await sender.send(due)

    def finish(self) -> None:
        """No more requests: idle connections end, busy ones once the line is empty."""
        self.finished = True
        for waiter in self.idle:
            if not waiter.done():
                waiter.set_result(None)
        self.idle.clear()

    async def drain(self, until: float) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=max(0.0, until - perf()))

    async def close(self, cancelled: bool) -> None:
        """End every connection; requests still in line expire unless the run was cancelled."""
        self.finish()
        self.stopping.set()
        for sender in self.senders:
            sender.abort()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for sender in self.senders:
            sender.close()
        if not cancelled:
            now = perf()
            while self.waiting:
                self.tally.expire(self.waiting.popleft(), now)


@dataclass
class _Schedule:
    """How far an open loop's dispatcher got along its schedule."""

    started: float
    index: int = 0
    """Requests dispatched or skipped."""
    skipped: int = 0
    saturated: bool = False
    lag: latencies.Histogram = field(default_factory=latencies.Histogram)
    """How late the dispatcher started each request."""


async def _dispatch(pool: _Pool, schedule: _Schedule, *, total: int, rate: float, stop_at: float) -> None:
    """Hand each request to the pool when it is due, skipping what the generator fell too far
    behind to send on time."""
    started, interval, lag = schedule.started, 1.0 / rate, schedule.lag
    while schedule.index < total and not pool.stopping.is_set():
        due = started + schedule.index * interval
        now = perf()
        if due >= stop_at:
            return
        if due > now:
            await asyncio.sleep(due - now)
            continue
        if now - due > SATURATION_LAG + 0.02 * (due - started):
            # The generator is this far behind its own schedule: it cannot keep up. Sending the
            # missed requests late would measure its backlog, not the server: skip them.
            schedule.saturated = True
            missed = min(int((now - due) / interval), total - schedule.index)
            schedule.skipped += missed
            schedule.index += missed
            continue
        batch = 0
        while schedule.index < total and batch < BATCH:
            due = started + schedule.index * interval
            if due > now or due >= stop_at:
                break
            # Time the generator lost before starting a request (its timers fire up to a
            # millisecond late) is its own, not the server's: latency counts from then.
            lag.record(now - due)
            pool.hand(now)
            schedule.index += 1
            batch += 1
        await asyncio.sleep(0)


async def open_loop(
    make: Callable[[], connections.Sender],
    *,
    total: int,
    rate: float,
    most: int,
    stop_at: float,
    cancel: threading.Event,
    tick: float,
    timeout: float,
    tally: tallies.Tally,
) -> Outcome:
    """Start ``rate`` requests a second (at most ``total``, none after ``stop_at``) on at most
    ``most`` connections, latency counted from when each was due."""
    pool = _Pool(make, most, timeout, tally)
    watcher = asyncio.create_task(_watch(pool.senders, cancel, pool.stopping, tick))
    schedule = _Schedule(started=perf())
    try:
        await _dispatch(pool, schedule, total=total, rate=rate, stop_at=stop_at)
        pool.finish()
        # Every request still queued or in flight is past its timeout by then.
        await pool.drain(until=perf() + timeout + 2 * tick)
    finally:
        pool.finish()
        pool.stopping.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await pool.close(cancelled=cancel.is_set())
    started = schedule.started
    elapsed = perf() - started
    scheduled = min(total, max(0, int((min(stop_at, started + elapsed) - started) * rate)))
    # Fell short of the schedule. (Not "on the CPU all the time": between requests due less than
    # a millisecond apart the loop's timers can't sleep, so a generator that keeps up spins.)
    saturated = schedule.saturated
    if not cancel.is_set() and schedule.index - schedule.skipped < 0.98 * scheduled:
        saturated = True
    return Outcome(tally, elapsed, len(pool.senders), saturated, schedule.lag, schedule.skipped)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Callable[[], Coroutine[Any, Any, Outcome]]) -> Outcome:
    """Run ``main`` on a new event loop of its own, in this thread, or in a new thread when this
    one already runs a loop (the Python API called from async code)."""
    if not _loop_running():
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    result: list[Outcome] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(run(main))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=target, name="http.load")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
