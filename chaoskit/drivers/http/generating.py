"""The load generator behind ``http.load``: one asyncio event loop (uvloop when installed) in the
calling thread, one keep-alive connection per worker, no pipelining.

Closed loop: ``workers`` connections each send their next request as soon as the last one is
answered. Open loop: requests are due at a fixed rate; each is handed to an idle connection (a new
one is opened while fewer than ``workers`` are open), and its latency counts from when it was due,
so time spent waiting for a busy server shows up as latency (wrk2's coordinated-omission
correction). Time the generator itself loses (its event loop too busy to start a request on time)
is never blamed on the server: it is measured apart, and a generator that falls behind says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
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
    loop = asyncio.get_running_loop()
    senders: list[connections.Sender] = []
    tasks: list[asyncio.Task[None]] = []
    due_queue: collections.deque[float] = collections.deque()
    idle: collections.deque[asyncio.Future[float | None]] = collections.deque()
    stopping = asyncio.Event()
    lag = latencies.Histogram()
    finished = False

    async def work(sender: connections.Sender) -> None:
        while not stopping.is_set():
            if due_queue:
                due = due_queue.popleft()
            elif finished:
                return
            else:
                waiting: asyncio.Future[float | None] = loop.create_future()
                idle.append(waiting)
                got = await waiting
                if got is None:
                    return
                due = got
            now = perf()
            if now - due >= timeout:
                # Waited for a free connection longer than its whole timeout: it timed out unsent.
                tally.expire(due, now)
                continue
            await sender.send(due)

    def hand(due: float) -> None:
        while idle:
            waiting = idle.popleft()
            if not waiting.done():
                waiting.set_result(due)
                return
        due_queue.append(due)
        if len(senders) < most:
            sender = make()
            senders.append(sender)
            tasks.append(asyncio.create_task(work(sender)))

    def release_idle() -> None:
        for waiting in idle:
            if not waiting.done():
                waiting.set_result(None)
        idle.clear()

    watcher = asyncio.create_task(_watch(senders, cancel, stopping, tick))
    started = perf()
    interval = 1.0 / rate
    saturated = False
    index = skipped = 0
    try:
        while index < total and not stopping.is_set():
            due = started + index * interval
            now = perf()
            if due >= stop_at:
                break
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if now - due > SATURATION_LAG + 0.02 * (due - started):
                # The generator is this far behind its own schedule: it cannot keep up. Sending the
                # missed requests late would measure its backlog, not the server: skip them.
                saturated = True
                missed = min(int((now - due) / interval), total - index)
                skipped += missed
                index += missed
                continue
            batch = 0
            while index < total and batch < BATCH:
                due = started + index * interval
                if due > now or due >= stop_at:
                    break
                # Time the generator lost before starting a request (its timers fire up to a
                # millisecond late) is its own, not the server's: latency counts from then.
                lag.record(now - due)
                hand(now)
                index += 1
                batch += 1
            await asyncio.sleep(0)
        dispatched_at = perf()
        finished = True
        release_idle()
        if tasks:
            # Every request still queued or in flight is past its timeout by then.
            await asyncio.wait(tasks, timeout=max(0.0, dispatched_at + timeout + 2 * tick - perf()))
    finally:
        finished = True
        stopping.set()
        release_idle()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for sender in senders:
            sender.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sender in senders:
            sender.close()
        if not cancel.is_set():
            now = perf()
            while due_queue:
                tally.expire(due_queue.popleft(), now)
    elapsed = perf() - started
    scheduled = min(total, max(0, int((min(stop_at, started + elapsed) - started) * rate)))
    # Fell short of the schedule. (Not "on the CPU all the time": between requests due less than
    # a millisecond apart the loop's timers can't sleep, so a generator that keeps up spins.)
    if not cancel.is_set() and index - skipped < 0.98 * scheduled:
        saturated = True
    return Outcome(tally, elapsed, len(senders), saturated, lag, skipped)


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
