"""chaoskit's own metrics (runs, verdicts, active faults, recovery time, probe durations) in Prometheus
form, fed by a run's events; scraped from ``serve(port)`` or pushed to a Pushgateway with ``push``.

    metrics = Metrics()
    bus.subscribe(metrics.observe)          # one line wires it to a run (or to every run of a GameDay)
    serving = metrics.serve(9464)           # http://127.0.0.1:9464/metrics
    metrics.push("http://pushgateway:9091", job="chaoskit")

Names follow Prometheus conventions: ``chaoskit_`` prefix, ``_total`` counters, ``_seconds`` units.
``prometheus_client`` (the ``prometheus`` extra) is imported when a ``Metrics`` is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoskit import installing
from chaoskit.engine import events, journals
from chaoskit.errors import ChaoskitError, ComponentMissing

PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Probe durations span a TCP connect (ms) to a load test (tens of seconds)."""


class MetricsError(ChaoskitError):
    """The metrics could not be served or pushed (the run itself is not affected)."""


@dataclass
class Serving:
    """A running ``/metrics`` endpoint; ``stop()`` closes it."""

    port: int
    """The port it listens on (the real one when 0 was asked)."""
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class Metrics:
    """One registry of chaoskit's metrics; ``observe`` is an event-bus subscriber."""

    def __init__(self) -> None:
        try:
            import prometheus_client
        except ImportError as e:
            raise ComponentMissing(
                "chaoskit's metrics need prometheus_client", hint=installing.install_command("prometheus")
            ) from e
        self._client = prometheus_client
        self.registry = prometheus_client.CollectorRegistry()
        self._run_metrics()
        self._fault_metrics()
        self._recovery_metrics()
        self._check_metrics()
        self._lock = threading.Lock()
        self._default = _RunObserver(self)

    def _run_metrics(self) -> None:
        client, reg = self._client, self.registry
        self.runs = client.Counter(
            "chaoskit_runs", "Experiment runs that ended, by verdict", ["experiment", "verdict"], registry=reg
        )
        self.running = client.Gauge(
            "chaoskit_runs_in_progress", "Experiment runs under way", ["experiment"], registry=reg
        )
        self.last_run = client.Gauge(
            "chaoskit_last_run_timestamp_seconds",
            "When the last run of the experiment ended (Unix time)",
            ["experiment"],
            registry=reg,
        )
        self.last_exit = client.Gauge(
            "chaoskit_last_run_exit_code",
            "Exit code of the experiment's last run",
            ["experiment"],
            registry=reg,
        )

    def _fault_metrics(self) -> None:
        client, reg = self._client, self.registry
        self.injected = client.Counter(
            "chaoskit_faults_injected", "Faults injected (one per target)", ["fault"], registry=reg
        )
        self.reverted = client.Counter(
            "chaoskit_fault_reverts", "Fault reverts, by outcome", ["fault", "status"], registry=reg
        )
        self.active = client.Gauge(
            "chaoskit_faults_active",
            "Faults applied right now (a failed revert keeps counting)",
            ["fault"],
            registry=reg,
        )

    def _recovery_metrics(self) -> None:
        client, reg = self._client, self.registry
        self.recovery = client.Gauge(
            "chaoskit_recovery_seconds",
            "Measured recovery time of the experiment's last run: last revert to steady again",
            ["experiment"],
            registry=reg,
        )
        self.recovery_deadline = client.Gauge(
            "chaoskit_recovery_deadline_seconds",
            "recovery.within of the experiment",
            ["experiment"],
            registry=reg,
        )
        self.recovery_met = client.Gauge(
            "chaoskit_recovery_met",
            "1 when the last run recovered within its deadline",
            ["experiment"],
            registry=reg,
        )

    def _check_metrics(self) -> None:
        client, reg = self._client, self.registry
        self.probe_seconds = client.Histogram(
            "chaoskit_probe_duration_seconds",
            "How long probe checks took",
            ["probe", "phase"],
            buckets=PROBE_BUCKETS,
            registry=reg,
        )
        self.checks = client.Counter(
            "chaoskit_probe_checks",
            "Probe checks, by whether they held",
            ["probe", "phase", "ok"],
            registry=reg,
        )
        self.guard_trips = client.Counter(
            "chaoskit_guard_trips", "Guards that tripped and aborted a run", ["experiment"], registry=reg
        )
        self.halted = client.Gauge(
            "chaoskit_halted",
            "1 while a run sees a halt lever pulled (chaoskit halt); 0 otherwise",
            registry=reg,
        )

    def observe(self, event: events.Event) -> None:
        """Update the metrics from one run event: subscribe this to a run's bus. For runs that go
        on at the same time (a GameDay stage), subscribe a fresh ``observer()`` to each run's bus."""
        self._default(event)

    def observer(self) -> Callable[[events.Event], None]:
        """A subscriber for one run's bus, which remembers that run's experiment."""
        return _RunObserver(self)

    @property
    def experiment(self) -> str:
        """The title of the run ``observe`` sees (or saw last)."""
        return self._default.experiment

    def text(self) -> str:
        """The metrics in the Prometheus text format."""
        return bytes(self._client.generate_latest(self.registry)).decode("utf-8")

    def serve(self, port: int, addr: str = "127.0.0.1") -> Serving:
        """Serve ``/metrics`` on ``addr:port`` (0 picks a free port) from a background thread."""
        try:
            server, thread = self._client.start_http_server(port, addr=addr, registry=self.registry)
        except OSError as e:
            raise MetricsError(
                f"can't serve metrics on {addr}:{port}: {e.strerror or e}",
                hint="choose another --metrics-port",
            ) from e
        return Serving(port=int(server.server_port), _server=server, _thread=thread)

    def push(
        self,
        gateway: str,
        job: str = "chaoskit",
        grouping_key: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> None:
        """Push every metric to a Pushgateway (``http://host:9091``), replacing the job's group."""
        try:
            self._client.push_to_gateway(
                gateway,
                job=job,
                registry=self.registry,
                grouping_key=dict(grouping_key or {}),
                timeout=timeout,
            )
        except OSError as e:
            raise MetricsError(f"can't push metrics to the Pushgateway at {gateway}: {e}") from e


@dataclass
class Telemetry:
    """Metrics wired to one run's bus, optionally served and pushed: what ``--metrics-port`` and
    ``--pushgateway`` set up. ``finish`` after the run pushes and stops serving."""

    metrics: Metrics
    serving: Serving | None = None
    pushgateway: str | None = None
    job: str = "chaoskit"

    def finish(self, warn: Callable[[str], None]) -> None:
        """Push (grouped by experiment, so runs of different experiments don't overwrite each other)
        and stop serving. A failure is a warning: the run's verdict stands."""
        try:
            if self.pushgateway:
                experiment = self.metrics.experiment
                self.metrics.push(
                    self.pushgateway, self.job, {"experiment": experiment} if experiment else None
                )
        except MetricsError as e:
            warn(f"warning: {e.render()}")
        finally:
            if self.serving is not None:
                self.serving.stop()


def attach(
    bus: events.Bus, *, port: int | None = None, pushgateway: str | None = None, job: str = "chaoskit"
) -> Telemetry:
    """Subscribe fresh metrics to ``bus``; serve them on 127.0.0.1:``port`` when given."""
    metrics = Metrics()
    bus.subscribe(metrics.observe)
    serving = metrics.serve(port) if port is not None else None
    return Telemetry(metrics=metrics, serving=serving, pushgateway=pushgateway, job=job)


class _RunObserver:
    """Feeds one run's events into shared metrics, labelled with that run's experiment."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.experiment = ""

    def __call__(self, event: events.Event) -> None:
        m = self.metrics
        with m._lock:
            if isinstance(event, events.RunStarted):
                self.experiment = event.title
                m.running.labels(self.experiment).inc()
                m.halted.set(0)  # a run that starts sees no halt (a halt refuses it)
            elif isinstance(event, events.Halted) or (
                isinstance(event, events.Log) and event.message.startswith("halted by ")
            ):
                m.halted.set(1)
            elif isinstance(event, events.FaultInjected):
                m.injected.labels(event.activity).inc()
                m.active.labels(event.activity).inc()
            elif isinstance(event, events.FaultReverted):
                m.reverted.labels(event.activity, event.status.value).inc()
                if event.status is not journals.RevertStatus.FAILED:
                    m.active.labels(event.activity).dec()
            elif isinstance(event, events.CheckDone):
                check = event.record
                m.probe_seconds.labels(check.activity, check.phase.value).observe(check.elapsed)
                m.checks.labels(check.activity, check.phase.value, str(check.ok).lower()).inc()
            elif isinstance(event, events.GuardTripped):
                m.guard_trips.labels(self.experiment).inc()
            elif isinstance(event, events.RecoveryDone):
                recovery = event.record
                m.recovery_deadline.labels(self.experiment).set(recovery.required)
                m.recovery_met.labels(self.experiment).set(1 if recovery.met else 0)
                if recovery.measured is not None:
                    m.recovery.labels(self.experiment).set(recovery.measured)
            elif isinstance(event, events.VerdictReached):
                m.runs.labels(self.experiment, event.verdict.value).inc()
                m.running.labels(self.experiment).dec()
                m.last_run.labels(self.experiment).set(event.at.timestamp())
                m.last_exit.labels(self.experiment).set(event.exit_code)
