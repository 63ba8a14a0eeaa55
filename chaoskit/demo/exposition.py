"""The demo frontend's Prometheus metrics, written in the text format by hand so that the demo
needs nothing beyond chaoskit's base install."""

from __future__ import annotations

import threading

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
"""Latency histogram bounds in seconds; 0.2 is the quickstart's p99 budget."""


class Metrics:
    """Request count by status, errors, retries, calls per dependency, requests shed, and a latency
    histogram. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[int, int] = {}
        self.errors = 0
        self.retries = 0
        self.calls: dict[str, int] = {}
        self.shed = 0
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.total_seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1
            if status >= 500:
                self.errors += 1
            self.count += 1
            self.total_seconds += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def called(self, dependency: str) -> None:
        with self._lock:
            self.calls[dependency] = self.calls.get(dependency, 0) + 1

    def refused(self) -> None:
        with self._lock:
            self.shed += 1

    def render(self, extra: tuple[str, ...] = ()) -> str:
        """The text exposition; ``extra`` lines (gauges read elsewhere) are appended."""
        with self._lock:
            lines = [
                "# HELP demo_requests_total Requests the frontend answered, by HTTP status.",
                "# TYPE demo_requests_total counter",
                *(f'demo_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())),
                "# HELP demo_errors_total Requests the frontend answered with a 5xx status.",
                "# TYPE demo_errors_total counter",
                f"demo_errors_total {self.errors}",
                "# HELP demo_backend_retries_total Backend calls the frontend retried.",
                "# TYPE demo_backend_retries_total counter",
                f"demo_backend_retries_total {self.retries}",
                "# HELP demo_dependency_calls_total Calls (attempts) the frontend made, by dependency link.",
                "# TYPE demo_dependency_calls_total counter",
                *(
                    f'demo_dependency_calls_total{{dependency="{d}"}} {n}'
                    for d, n in sorted(self.calls.items())
                ),
                "# HELP demo_shed_total Requests refused at once because the frontend was at capacity.",
                "# TYPE demo_shed_total counter",
                f"demo_shed_total {self.shed}",
                "# HELP demo_request_duration_seconds Time the frontend took to answer.",
                "# TYPE demo_request_duration_seconds histogram",
            ]
            lines.extend(
                f'demo_request_duration_seconds_bucket{{le="{bound}"}} {n}'
                for bound, n in zip(BUCKETS, self.buckets, strict=True)
            )
            lines += [
                f'demo_request_duration_seconds_bucket{{le="+Inf"}} {self.count}',
                f"demo_request_duration_seconds_sum {self.total_seconds}",
                f"demo_request_duration_seconds_count {self.count}",
                *extra,
            ]
        return "\n".join(lines) + "\n"
