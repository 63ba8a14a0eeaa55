"""What the answers to a load were: counts by status and failure kind, latencies in histograms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaoskit.drivers.http import latencies


@dataclass
class Tally:
    """What the answers were: counts, and latencies in histograms."""

    latency: latencies.Histogram = field(default_factory=latencies.Histogram)
    """From when each request was due (open loop) or started (closed loop) to its answer."""
    service: latencies.Histogram | None = None
    """From when each request was written to its answer: the server's time alone (open loop only;
    in a closed loop it is ``latency``)."""
    codes: dict[int, int] = field(default_factory=dict)
    """Answers by status code; which of them are successes is decided at the end."""
    failures: dict[str, int] = field(default_factory=dict)
    """Requests that got no answer, by kind."""
    expired: int = 0
    """Of the ``timeout`` failures, those the generator's own backlog cut short (open loop): never
    sent, no connection having come free in time, or sent after more than a tenth of their
    timeout in line."""

    @property
    def requests(self) -> int:
        return self.latency.total

    def successes(self, accepts: Callable[[int], bool]) -> int:
        return sum(n for code, n in self.codes.items() if accepts(code))

    def errors(self, accepts: Callable[[int], bool]) -> dict[str, int]:
        """Failures by kind, and answers ``accepts`` refuses as ``status_<code>``."""
        out = dict(self.failures)
        for code, n in self.codes.items():
            if not accepts(code):
                out[f"status_{code}"] = out.get(f"status_{code}", 0) + n
        return dict(sorted(out.items()))

    def statuses(self) -> dict[str, int]:
        """Answers by status class (``2xx``...)."""
        out: dict[str, int] = {}
        for code, n in sorted(self.codes.items()):
            out[f"{code // 100}xx"] = out.get(f"{code // 100}xx", 0) + n
        return out

    def expire(self, due: float, now: float) -> None:
        """A request that waited for a free connection until its timeout, and was never sent."""
        self.expired += 1
        self.failures["timeout"] = self.failures.get("timeout", 0) + 1
        self.latency.record(now - due)

    def cut_short(self, due: float, done: float) -> None:
        """A request whose time ran out after it had waited in line for a connection, long enough
        that the server never had most of the timeout to answer it."""
        self.expire(due, done)

    def fail(self, kind: str, due: float, sent: float, done: float) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
        self.latency.record(done - due)
        if self.service is not None:
            self.service.record(done - sent)

    def state(self) -> dict[str, Any]:
        """The closed-loop counts as JSON, for a worker process to hand to its parent."""
        return {
            "latency": _histogram_state(self.latency),
            "codes": {str(code): n for code, n in self.codes.items()},
            "failures": dict(self.failures),
        }

    def absorb(self, state: dict[str, Any]) -> None:
        """Add what a worker process counted (its :meth:`state`)."""
        self.latency.merge(_histogram_of(state["latency"]))
        for code, n in state["codes"].items():
            self.codes[int(code)] = self.codes.get(int(code), 0) + int(n)
        for kind, n in state["failures"].items():
            self.failures[kind] = self.failures.get(kind, 0) + int(n)


def _histogram_state(histogram: latencies.Histogram) -> dict[str, Any]:
    used = [[i, n] for i, n in enumerate(histogram.counts) if n]
    return {"counts": used, "total": histogram.total, "sum_us": histogram.sum_us, "max_us": histogram.max_us}


def _histogram_of(state: dict[str, Any]) -> latencies.Histogram:
    histogram = latencies.Histogram()
    for index, n in state["counts"]:
        histogram.counts[int(index)] = int(n)
    histogram.total = int(state["total"])
    histogram.sum_us = int(state["sum_us"])
    histogram.max_us = int(state["max_us"])
    return histogram
