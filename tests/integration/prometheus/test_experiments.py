"""End to end through ``chaoskit run``: a real Prometheus judges a real worker process that a real
fault freezes. The steady state is a PromQL threshold; recovery is detected through Prometheus and
its time measured; an alert the fault makes fire trips a guard (from the probe catalog) that aborts
the run; a PromQL typo is refused at validation with Prometheus's own message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.prometheus.conftest import RULES, Exporter, Prometheus, free_port, running_prometheus

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[3]

WORKER_RULES = (
    RULES
    + """\
      - alert: WorkerDown
        expr: up{job="worker"} == 0
        labels: {severity: critical}
"""
)

WORKER = """\
import os, sys, time
import prometheus_client
prometheus_client.start_http_server(int(sys.argv[1]), addr="127.0.0.1")
prometheus_client.Gauge("worker_healthy", "1 when healthy").set(1)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
deadline = time.monotonic() + 900  # never outlives a forgotten test run
while time.monotonic() < deadline:
    time.sleep(0.5)
"""


@dataclass
class Setup:
    prometheus: Prometheus
    pidfile: Path
    worker: subprocess.Popen[bytes]
    home: Path


def _state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (T when stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture(scope="module")
def setup(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("worker")
    pidfile = home / "worker.pid"
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(pidfile)])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists():
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        targets = {"demo": exporter.port, "worker": port}
        with running_prometheus(home, targets, exporter, rules=WORKER_RULES) as prometheus:
            yield Setup(prometheus, pidfile, worker, home)
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, 18)  # SIGCONT, in case a failed test left it stopped
            worker.terminate()
        worker.wait(timeout=20)


def _healthy_again(setup: Setup) -> None:
    """Each test starts from a scraped, unfrozen worker and no firing alert."""
    assert _state(setup.worker.pid) != "T"
    setup.prometheus.wait_until('up{job="worker"} == 1', bool)
    setup.prometheus.wait_until('ALERTS{alertname="WorkerDown",alertstate="firing"}', lambda r: not r)


def _chaoskit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        # This checkout's chaoskit, whatever the environment has installed.
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)},
    )


def _run(setup: Setup, experiment: str, name: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    path = setup.home / f"{name}.yaml"
    path.write_text(textwrap.dedent(experiment), encoding="utf-8")
    journal = setup.home / f"{name}-journal.json"
    result = _chaoskit(
        "run",
        str(path),
        "--var",
        f"prom={setup.prometheus.url}",
        "--var",
        f"pidfile={setup.pidfile}",
        "--journal",
        str(journal),
        "--state-dir",
        str(setup.home / "state"),
        "--quiet",
        cwd=setup.home,
    )
    assert journal.exists(), result.stdout + result.stderr
    return result, json.loads(journal.read_text())


RECOVERY = """\
title: the worker recovers from a freeze, judged by Prometheus
steady_state:
  - name: worker is scraped
    probe: prometheus.query
    with: {url: "${prom}", query: 'min(up{job="worker"})'}
    expect: {path: value, equals: 1}
method:
  - name: freeze the worker
    fault: process.stop
    with: {pidfile: "${pidfile}"}
    duration: 6s
  - pause: 8s
  - name: Prometheus saw it down during the fault
    probe: prometheus.range
    with: {url: "${prom}", query: 'up{job="worker"}', window: fault, reduce: min}
    expect: {path: value, equals: 0}
recovery: {within: 60s, interval: 1s}
"""


def test_a_promql_steady_state_breaks_under_the_fault_and_recovery_is_measured(setup: Setup) -> None:
    _healthy_again(setup)
    result, journal = _run(setup, RECOVERY, "recovery")
    assert (journal["verdict"], result.returncode) == ("completed", 0), result.stdout + result.stderr
    fault_check = next(c for c in journal["checks"] if c["step"] == "Prometheus saw it down during the fault")
    assert fault_check["ok"] and fault_check["value"]["value"] == 0
    recovery = journal["recovery"]
    assert recovery["met"] is True
    # Prometheus only sees the worker again at a scrape after SIGCONT: measured, not instant.
    assert 0 < recovery["measured"] < 60
    [fault] = journal["faults"]
    assert fault["revert"] == "reverted"
    assert _state(setup.worker.pid) != "T"


GUARDED = """\
title: a critical alert aborts the run
guards:
  - name: no critical alert
    use: no-critical-alerts
    with: {prometheus_url: "${prom}"}
    interval: 1s
method:
  - name: freeze the worker
    fault: process.stop
    with: {pidfile: "${pidfile}"}
    duration: 120s
  - pause: 120s
recovery: {within: 60s, interval: 1s}
"""


def test_an_alert_the_fault_fires_trips_a_guard_and_everything_reverts(setup: Setup) -> None:
    _healthy_again(setup)
    started = time.monotonic()
    result, journal = _run(setup, GUARDED, "guarded")
    assert (journal["verdict"], result.returncode) == ("deviated", 1), result.stdout + result.stderr
    [trip] = journal["guard_trips"]
    assert trip["guard"] == "no critical alert"
    assert "expected count equals 0" in trip["message"]
    [fault] = journal["faults"]
    assert fault["revert"] == "reverted"
    assert _state(setup.worker.pid) != "T"
    # Aborted by the guard, long before the 120 s fault and pause would have ended.
    assert time.monotonic() - started < 110


INVALID = """\
title: a typo in PromQL
steady_state:
  - name: worker is scraped
    probe: prometheus.query
    with: {url: "${prom}", query: 'min(up{job="worker"}'}
    expect: {path: value, equals: 1}
"""


def test_a_promql_typo_is_refused_at_validation_with_prometheus_own_message(setup: Setup) -> None:
    path = setup.home / "invalid.yaml"
    path.write_text(INVALID, encoding="utf-8")
    result = _chaoskit("validate", str(path), "--var", f"prom={setup.prometheus.url}", cwd=setup.home)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "steady_state[0].with" in result.stderr
    assert "parse error" in result.stderr
    assert "Traceback" not in result.stderr


UNREACHABLE = """\
title: Prometheus is away
steady_state:
  - name: error rate
    probe: prometheus.query
    with: {url: "http://127.0.0.1:PORT", query: 'sum(rate(http_requests_total[1m]))', retries: 0}
    expect: {path: value, below: 1}
method:
  - {name: freeze, fault: process.stop, with: {pidfile: /nonexistent/chaoskit-test.pid}}
"""


def test_an_unreachable_prometheus_passes_validation_and_fails_the_run_clearly(tmp_path: Path) -> None:
    path = tmp_path / "unreachable.yaml"
    path.write_text(UNREACHABLE.replace("PORT", str(free_port())), encoding="utf-8")
    checked = _chaoskit("validate", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = _chaoskit("run", str(path), "--state-dir", str(tmp_path / "state"), "--quiet", cwd=tmp_path)
    assert ran.returncode == 3, ran.stdout + ran.stderr  # not steady: nothing was injected
    journal = json.loads((tmp_path / "chaoskit-journal.json").read_text())
    assert journal["faults"] == []
    assert "can't reach Prometheus at http://127.0.0.1:" in journal["checks"][0]["message"]


def test_the_shipped_demo_experiment_judged_by_prometheus(
    exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("demo")
    ports = {name: free_port() for name in ("port", "backend_port", "proxy_port", "proxy_api")}
    with running_prometheus(home, {"demo": ports["port"]}, exporter, wait_for_targets=False) as prometheus:
        variables = [f"{name}={port}" for name, port in ports.items()] + [f"prometheus={prometheus.url}"]
        result = _chaoskit(
            "run",
            str(ROOT / "experiments" / "prometheus-demo.yaml"),
            *(arg for v in variables for arg in ("--var", v)),
            "--journal",
            str(home / "journal.json"),
            "--state-dir",
            str(home / "state"),
            "--quiet",
            cwd=home,
        )
        journal = json.loads((home / "journal.json").read_text())
    assert (journal["verdict"], result.returncode) == ("completed", 0), result.stdout + result.stderr
    # Setup waited (until:) for Prometheus to scrape the fresh demo; however many polls that took,
    # the last one held.
    waited = [c for c in journal["checks"] if c["step"] == "Prometheus has scraped the counters"]
    assert waited[-1]["ok"] and [c["poll"] for c in waited] == list(range(len(waited)))
    saw = next(c for c in journal["checks"] if c["step"] == "Prometheus saw the errors during the outage")
    assert saw["ok"] and saw["value"]["value"] > 0
    assert journal["guard_trips"] == []
    assert journal["recovery"]["met"] and journal["recovery"]["measured"] > 0
