"""The resilience patterns the demo frontend can switch on or off, each small enough to read in a
minute: a circuit breaker, a retry budget with exponential backoff and jitter, connection pools
(shared, or one per dependency: a bulkhead), a capacity limit that sheds or queues, and health
checks that take an instance out of rotation. ``chaoskit demo --pattern NAME=on|off`` picks them.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PATTERNS = {
    "timeout": (True, "a per-attempt timeout on dependency calls (off: wait as long as it takes)"),
    "retry": (True, "exponential backoff with full jitter and a retry budget (off: immediate retries)"),
    "breaker": (False, "a circuit breaker per dependency (off: every call goes to the dependency)"),
    "bulkhead": (True, "a connection pool per dependency (off: one pool shared by all)"),
    "health": (True, "health checks take a failing instance out of rotation (off: round robin over all)"),
    "shedding": (False, "above capacity, refuse at once with 503 (off: queue until a slot is free)"),
    "hedging": (False, "a second instance is asked when the first is slow (off: wait for the first)"),
}
"""Each pattern, whether it is on by default, and what it does."""


SWITCH = {"on": True, "true": True, "off": False, "false": False}


def parse_patterns(given: list[str]) -> dict[str, bool]:
    """Every pattern's state from ``NAME=on|off`` items over the defaults; ``ValueError`` saying
    what to write instead. ``true``/``false`` are accepted too: ``chaoskit run --var pattern=off``
    reads the value as YAML, where a bare ``off`` is the boolean false."""
    states = {name: default for name, (default, _) in PATTERNS.items()}
    for item in given:
        name, sep, state = item.partition("=")
        if name not in PATTERNS:
            raise ValueError(f"unknown pattern {name!r} in {item!r}; the patterns are: {', '.join(PATTERNS)}")
        if not sep or state.lower() not in SWITCH:
            raise ValueError(f"{item!r}: write {name}=on or {name}=off")
        states[name] = SWITCH[state.lower()]
    return states


class State(enum.IntEnum):
    """A breaker's state; its value is the ``demo_breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Open(Exception):
    """The breaker refused the call without making it."""


@dataclass
class Breaker:
    """Opens after ``threshold`` failures in a row, refuses calls for ``open_for`` seconds, then
    lets one trial call through (half-open): its success closes the breaker, its failure opens it
    again."""

    threshold: int = 5
    open_for: float = 1.0
    clock: Callable[[], float] = time.monotonic
    state: State = State.CLOSED
    opened: int = 0
    """Times the breaker opened."""
    _failures: int = 0
    _since: float = 0.0
    _trial: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self) -> None:
        """Return if a call may go out now; raise ``Open`` if not."""
        with self._lock:
            if self.state is State.CLOSED:
                return
            if self.state is State.OPEN and self.clock() - self._since >= self.open_for:
                self.state, self._trial = State.HALF_OPEN, False
            if self.state is State.HALF_OPEN and not self._trial:
                self._trial = True
                return
            raise Open

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.state, self._failures = State.CLOSED, 0
                return
            self._failures += 1
            if self.state is State.HALF_OPEN or self._failures >= self.threshold:
                if self.state is not State.OPEN:
                    self.opened += 1
                self.state, self._since, self._failures = State.OPEN, self.clock(), 0


@dataclass
class RetryBudget:
    """Retries may be at most ``ratio`` of first attempts (plus a small reserve): a dead
    dependency then gets ~(1 + ratio) calls per request, not ``attempts`` calls (no retry storm)."""

    ratio: float = 0.2
    reserve: float = 10.0
    _tokens: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deposit(self) -> None:
        with self._lock:
            self._tokens = min(self.reserve, self._tokens + self.ratio)

    def withdraw(self) -> bool:
        with self._lock:
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


def backoff(retry: int, base: float = 0.05, cap: float = 1.0) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...): full jitter over an exponential
    ceiling, so that clients which failed together do not retry together."""
    return random.uniform(0.0, min(cap, base * 2 ** (retry - 1)))


class Pools:
    """Connection slots to the dependencies: one pool per dependency (a bulkhead), or one pool
    all share, where a slow dependency holding every slot starves the others."""

    def __init__(self, size: int, names: list[str], *, bulkhead: bool) -> None:
        shared = threading.BoundedSemaphore(size)
        self._pools = {name: threading.BoundedSemaphore(size) if bulkhead else shared for name in names}

    def slot(self, name: str) -> threading.BoundedSemaphore:
        return self._pools[name]


class Rotation:
    """Instances behind the balancer, round robin over those in rotation. With health checks, an
    instance that fails ``failures`` checks in a row leaves the rotation until one check passes."""

    def __init__(self, names: list[str], failures: int = 2) -> None:
        self.names = names
        self.failures = failures
        self.up = dict.fromkeys(names, True)
        self._failed = dict.fromkeys(names, 0)
        self._next = 0
        self._lock = threading.Lock()

    def pick(self, count: int) -> list[str]:
        """The next ``count`` distinct instances in rotation (all instances if none is up)."""
        with self._lock:
            live = [name for name in self.names if self.up[name]] or self.names
            start = self._next
            self._next += 1
            return [live[(start + i) % len(live)] for i in range(min(count, len(live)))]

    def checked(self, name: str, ok: bool) -> None:
        with self._lock:
            self._failed[name] = 0 if ok else self._failed[name] + 1
            self.up[name] = ok or (self.up[name] and self._failed[name] < self.failures)


def check_forever(
    rotation: Rotation, check: Callable[[str], bool], stop: threading.Event, every: float = 0.2
) -> None:
    """Check each instance every ``every`` seconds until ``stop`` is set."""
    while not stop.wait(every):
        for name in rotation.names:
            rotation.checked(name, check(name))
