"""``http.load``: many requests, by count and concurrency or at a steady rate, summarised as a
success ratio, errors by kind and latency percentiles - for tail-latency SLOs under a fault.

Always bounded: at most ``requests`` requests (or ``rate * duration``), never longer than
``duration`` (plus one request timeout), and it stops soon after the run is cancelled.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Self

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.http import latencies, requesting
from chaoskit.durations import Duration

DEFAULT_REQUESTS = 100
DURATION_ONLY_CAP = 1_000_000
"""With only a duration, the count bound: a safety net, not a target."""
TIME_CAP = 300.0
"""Without a duration, no request starts after this many seconds: a safety net, not a target."""


class LoadArgs(requesting.RequestArgs):
    requests: int | None = Field(default=None, ge=1)
    """How many requests in all; default 100, or ``rate * duration`` when both are given."""
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Requests in flight at once (each worker waits for its answer before the next); default 4,
    or 16 with ``rate``."""
    rate: float | None = Field(default=None, gt=0)
    """Start requests at this many per second; latency then counts from each request's scheduled
    start, so a stalled server shows up as latency rather than as fewer requests."""
    duration: Duration | None = None
    """Stop starting requests after this long; without it, after 5 minutes at most (a safety net)."""
    expect_status: int | list[int] | None = None
    """Statuses that count as success; default any 2xx or 3xx."""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be more than 0")
        return self

    def total(self) -> int:
        if self.requests is not None:
            return self.requests
        if self.duration is not None:
            return math.ceil(self.rate * self.duration) if self.rate is not None else DURATION_ONLY_CAP
        return DEFAULT_REQUESTS

    def workers(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return 16 if self.rate is not None else 4

    def accepts(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 400
        allowed = self.expect_status if isinstance(self.expect_status, list) else [self.expect_status]
        return status in allowed


def error_kind(error: Exception) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect"
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol"
    if isinstance(error, httpx.NetworkError):
        return "network"
    return "other"


class _Tally:
    """Results from every worker, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_index = 0
        self.latencies: list[float] = []
        self.successes = 0
        self.errors: dict[str, int] = {}

    def take(self, total: int) -> int | None:
        with self.lock:
            if self.next_index >= total:
                return None
            self.next_index += 1
            return self.next_index - 1

    def record(self, latency_ms: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(latency_ms)
            if error is None:
                self.successes += 1
            else:
                self.errors[error] = self.errors.get(error, 0) + 1


class LoadProbe(contract.Probe[LoadArgs]):
    name = "http.load"
    summary = (
        "Send many requests (count + concurrency, or rate + duration): success ratio, errors, p50..p99.9."
    )
    args = LoadArgs

    def run(self, args: LoadArgs, ctx: contract.RunContext) -> contract.JSONValue:
        import httpx

        total, workers = args.total(), min(args.workers(), args.total())
        tally = _Tally()
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        started = time.perf_counter()
        stop_at = started + (args.duration if args.duration is not None else TIME_CAP)
        with httpx.Client(
            verify=requesting.tls(args.verify, ctx), follow_redirects=args.follow_redirects, limits=limits
        ) as client:

            def work() -> None:
                while not ctx.cancel.is_set():
                    index = tally.take(total)
                    if index is None:
                        return
                    scheduled = started + index / args.rate if args.rate is not None else None
                    if scheduled is not None and not ctx.sleep(scheduled - time.perf_counter()):
                        return
                    if time.perf_counter() >= stop_at:
                        return
                    begin = scheduled if scheduled is not None else time.perf_counter()
                    error: str | None = None
                    try:
                        response = client.request(
                            args.method,
                            args.url,
                            headers=args.headers,
                            params=args.params,
                            timeout=args.timeout,
                            **args.content(),
                        )
                        if not args.accepts(response.status_code):
                            error = f"status_{response.status_code}"
                    except Exception as e:  # every failed request is counted, none ends the load
                        error = error_kind(e)
                    tally.record((time.perf_counter() - begin) * 1000, error)

            threads = [
                threading.Thread(target=work, name=f"http.load-{i}", daemon=True) for i in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
        done = len(tally.latencies)
        return {
            "requests": done,
            "successes": tally.successes,
            "success_ratio": round(tally.successes / done, 6) if done else 0.0,
            "errors": dict(sorted(tally.errors.items())),
            "latency_ms": latencies.summary(tally.latencies),
            "duration_s": round(elapsed, 3),
            "rate_rps": round(done / elapsed, 3) if elapsed > 0 else 0.0,
        }
