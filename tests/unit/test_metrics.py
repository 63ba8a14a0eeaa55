"""chaoskit's own metrics: fed by a real run's events (fake driver, fake clock), scraped from the
served port, and pushed to a real local HTTP server standing in for a Pushgateway (it records what
arrives; a Pushgateway is not installable here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaoskit import metrics, testing
from tests import servers

EXPERIMENT = {
    "title": "checkout survives",
    "steady_state": [{"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}],
    "method": [
        {"name": "break", "fault": "fake.break", "with": {"targets": ["a", "b"]}, "duration": "10s"},
        {"name": "under fault", "probe": "fake.status"},
    ],
    "recovery": {"within": "30s", "interval": "1s"},
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _run(m: metrics.Metrics, recovery_delay: float = 4.0) -> None:
    fake = testing.FakeDriver(recovery_delay=recovery_delay)
    testing.run_experiment(EXPERIMENT, drivers=[fake.driver()], clock=fake.clock, subscribers=[m.observe])


def test_a_run_feeds_runs_verdicts_faults_recovery_and_probe_durations() -> None:
    m = metrics.Metrics()
    _run(m)
    samples = _samples(m.text())
    exp = ("experiment", "checkout survives")
    assert samples[("chaoskit_runs_total", (exp, ("verdict", "completed")))] == 1
    assert samples[("chaoskit_runs_in_progress", (exp,))] == 0
    assert samples[("chaoskit_faults_injected_total", (("fault", "fake.break"),))] == 2
    assert samples[("chaoskit_fault_reverts_total", (("fault", "fake.break"), ("status", "reverted")))] == 2
    assert samples[("chaoskit_faults_active", (("fault", "fake.break"),))] == 0
    # The fake service needs 4 s (virtual) after the revert; polled every second.
    assert 4 <= samples[("chaoskit_recovery_seconds", (exp,))] <= 5
    assert samples[("chaoskit_recovery_deadline_seconds", (exp,))] == 30
    assert samples[("chaoskit_recovery_met", (exp,))] == 1
    assert samples[("chaoskit_last_run_exit_code", (exp,))] == 0
    before = (("phase", "before"), ("probe", "fake.status"))
    assert samples[("chaoskit_probe_duration_seconds_count", before)] == 1
    assert samples[("chaoskit_probe_checks_total", (("ok", "true"), *before))] == 1


def test_a_slow_recovery_counts_as_deviated() -> None:
    m = metrics.Metrics()
    _run(m, recovery_delay=60)
    samples = _samples(m.text())
    exp = ("experiment", "checkout survives")
    assert samples[("chaoskit_runs_total", (exp, ("verdict", "deviated")))] == 1
    assert samples[("chaoskit_recovery_met", (exp,))] == 0
    assert samples[("chaoskit_last_run_exit_code", (exp,))] == 1


def test_the_served_port_is_scrapeable() -> None:
    m = metrics.Metrics()
    _run(m)
    serving = m.serve(0)
    try:
        answer = httpx.get(serving.url, timeout=10)
        assert answer.status_code == 200
        assert 'chaoskit_runs_total{experiment="checkout survives",verdict="completed"} 1.0' in answer.text
    finally:
        serving.stop()


def test_serving_on_a_busy_port_says_so() -> None:
    m = metrics.Metrics()
    serving = m.serve(0)
    try:
        with pytest.raises(metrics.MetricsError, match=rf"can't serve metrics on 127.0.0.1:{serving.port}"):
            m.serve(serving.port)
    finally:
        serving.stop()


class _Recorder(servers.Quiet):
    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def gateway() -> Iterator[str]:
    _Recorder.received = []
    with servers.serving(_Recorder) as url:
        yield url


def test_push_sends_every_metric_to_the_gateway(gateway: str) -> None:
    m = metrics.Metrics()
    _run(m)
    m.push(gateway, job="chaoskit-ci", grouping_key={"pipeline": "main"})
    [(method, path, body)] = _Recorder.received
    assert (method, path) == ("PUT", "/metrics/job/chaoskit-ci/pipeline/main")
    assert b'chaoskit_runs_total{experiment="checkout survives",verdict="completed"} 1.0' in body


def test_push_to_nowhere_is_a_clear_error() -> None:
    m = metrics.Metrics()
    with pytest.raises(
        metrics.MetricsError, match=r"can't push metrics to the Pushgateway at http://127.0.0.1:1"
    ):
        m.push("http://127.0.0.1:1", timeout=2)


def test_attach_serves_during_the_run_then_pushes_grouped_by_experiment_and_stops(gateway: str) -> None:
    from chaoskit.engine import events

    bus = events.Bus()
    telemetry = metrics.attach(bus, port=0, pushgateway=gateway)
    assert telemetry.serving is not None
    url = telemetry.serving.url
    assert httpx.get(url, timeout=10).status_code == 200
    fake = testing.FakeDriver()
    testing.run_experiment(EXPERIMENT, drivers=[fake.driver()], clock=fake.clock, subscribers=bus.subscribers)
    assert 'verdict="completed"} 1.0' in httpx.get(url, timeout=10).text
    warnings: list[str] = []
    telemetry.finish(warnings.append)
    assert warnings == []
    [(_, path, body)] = _Recorder.received
    # prometheus_client base64-encodes a grouping value with a space, as the Pushgateway expects.
    assert path == "/metrics/job/chaoskit/experiment@base64/Y2hlY2tvdXQgc3Vydml2ZXM="
    assert b"chaoskit_runs_total" in body
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_a_failed_push_is_a_warning_not_a_failure() -> None:
    from chaoskit.engine import events

    telemetry = metrics.attach(events.Bus(), pushgateway="http://127.0.0.1:1")
    warnings: list[str] = []
    telemetry.finish(warnings.append)
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: can't push metrics to the Pushgateway at http://127.0.0.1:1")


def test_runs_at_the_same_time_keep_their_own_experiment_label() -> None:
    recorded: dict[str, list[object]] = {"a": [], "b": []}
    for key, delay in (("a", 4.0), ("b", 60.0)):
        fake = testing.FakeDriver(recovery_delay=delay)
        experiment = {**EXPERIMENT, "title": f"experiment {key}"}
        testing.run_experiment(
            experiment, drivers=[fake.driver()], clock=fake.clock, subscribers=[recorded[key].append]
        )
    m = metrics.Metrics()
    first, second = m.observer(), m.observer()
    # Replay the two runs' real events interleaved, as a GameDay stage running both would emit them.
    for i in range(max(len(recorded["a"]), len(recorded["b"]))):
        for observer, events in ((first, recorded["a"]), (second, recorded["b"])):
            if i < len(events):
                observer(events[i])  # type: ignore[arg-type]
    samples = _samples(m.text())
    assert samples[("chaoskit_runs_total", (("experiment", "experiment a"), ("verdict", "completed")))] == 1
    assert samples[("chaoskit_runs_total", (("experiment", "experiment b"), ("verdict", "deviated")))] == 1
    assert samples[("chaoskit_recovery_met", (("experiment", "experiment b"),))] == 0


RUN_EXPERIMENT = """\
title: metrics from the command line
steady_state:
  - {name: port open, probe: tcp.connect, with: {port: PORT}, expect: {path: connected, equals: true}}
method:
  # In progress until the test, having scraped, lets it end (bounded: 10 s at the most).
  - action: process.command
    with: {argv: [sh, -c, 'for i in $(seq 200); do [ -e "$0" ] && exit 0; sleep 0.05; done; exit 1', GO]}
"""


def test_chaoskit_run_serves_metrics_while_it_runs_and_pushes_them_at_the_end(
    gateway: str, tmp_path: Path
) -> None:
    import socket
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as listener, socket.socket() as probe_port:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        probe_port.bind(("127.0.0.1", 0))
        metrics_port = probe_port.getsockname()[1]
        probe_port.close()
        experiment = tmp_path / "e.yaml"
        go = tmp_path / "go"
        experiment.write_text(
            RUN_EXPERIMENT.replace("PORT", str(listener.getsockname()[1])).replace("GO", str(go)),
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "chaoskit", "run", str(experiment), "--quiet",
                   "--journal", str(tmp_path / "j.json"), "--state-dir", str(tmp_path / "state"),
                   "--metrics-port", str(metrics_port), "--pushgateway", gateway]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(root)}
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
            scraped = ""
            deadline = time.monotonic() + 60
            while run.poll() is None and time.monotonic() < deadline:
                try:
                    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if 'chaoskit_runs_in_progress{experiment="metrics from the command line"} 1.0' in scraped:
                    break
                time.sleep(0.1)
            go.touch()
            output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output.decode()
    assert 'chaoskit_runs_in_progress{experiment="metrics from the command line"} 1.0' in scraped
    [(method, path, body)] = _Recorder.received
    assert method == "PUT" and path.startswith("/metrics/job/chaoskit/experiment@base64/")
    assert b'chaoskit_runs_total{experiment="metrics from the command line",verdict="completed"} 1.0' in body
