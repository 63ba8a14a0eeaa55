"""Time as the runner sees it, and driver calls bounded by a step's timeout in that time.

``RealClock`` in production; ``chaoskit.testing.FakeClock`` runs an hour of a run in milliseconds.
Driver code is synchronous: it runs in a worker thread through ``Clock.blocking``, so that the
event loop (guards, timers, signals) carries on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from chaoskit import durations
from chaoskit.engine import faultbooks

T = TypeVar("T")


class Clock(Protocol):
    """Time as the runner sees it. ``RealClock`` in production, ``testing.FakeClock`` in tests."""

    def now(self) -> float:
        """Monotonic seconds."""

    def wall(self) -> float:
        """Epoch seconds, for timestamps in the journal."""

    async def sleep(self, seconds: float) -> None: ...

    async def blocking(self, call: Callable[[], T]) -> T:
        """Run blocking driver code off the event loop. A fake clock needs to see this work, so
        that virtual time never jumps ahead while a driver call is still running."""


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def blocking(self, call: Callable[[], T]) -> T:
        # A daemon thread per call rather than the loop's executor: a driver call abandoned after
        # a step timeout must not keep chaoskit from exiting (asyncio.run joins its executor).
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(outcome: Callable[[], None]) -> None:
            if not future.done():
                outcome()

        def work() -> None:
            try:
                result = call()
            except BaseException as e:
                settle = functools.partial(deliver, functools.partial(future.set_exception, e))
            else:
                settle = functools.partial(deliver, functools.partial(future.set_result, result))
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(settle)

        threading.Thread(target=work, name="chaoskit-driver-call", daemon=True).start()
        return await future


async def within(clock: Clock, call: Callable[[], T], timeout: float | None = None) -> T:
    """``call``'s result, off the event loop; ``StepTimeout`` once ``timeout`` passes on ``clock``
    (the call is abandoned, not stopped: a thread can't be)."""
    work = asyncio.ensure_future(clock.blocking(call))
    if timeout is None:
        return await work
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({work, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    if work.done():
        return work.result()
    work.add_done_callback(lambda f: f.cancelled() or f.exception())
    raise faultbooks.StepTimeout(f"timed out after {durations.format(timeout)}")
