"""A real Prometheus for the prometheus suites: each test module starts its own on 127.0.0.1, with a
config the fixture writes (scrape interval 1s) and a rule file with an alert, scraping a real
``prometheus_client`` exporter whose values the test sets.

Prometheus comes from Debian's ``prometheus`` package (scripts/lib/component-prometheus.sh installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import prometheus_client
import pytest

from tests.conftest import require

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"

RULES = """\
groups:
  - name: demo
    interval: 1s
    rules:
      - alert: DemoUnhealthy
        expr: demo_healthy == 0
        labels: {severity: critical, team: chaos}
        annotations: {summary: the demo service reports unhealthy}
      - alert: DemoSlow
        expr: demo_latency_seconds > 0.5
        labels: {severity: warning}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Exporter:
    """A real scrape target: a ``prometheus_client`` HTTP exporter with metrics the test controls."""

    port: int
    healthy: prometheus_client.Gauge
    latency: prometheus_client.Gauge
    requests: prometheus_client.Counter


@dataclass
class Prometheus:
    url: str
    exporter: Exporter
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        result: list[dict[str, object]] = answer["data"]["result"]
        return result

    def wait_until(
        self, promql: str, holds: Callable[[list[dict[str, object]]], bool], within: float = 60
    ) -> None:
        """Poll until the query's result satisfies ``holds``: scrapes and rule evaluations take a few
        seconds on a loaded machine, so tests wait for the state rather than sleeping a fixed time."""
        deadline = time.monotonic() + within
        last: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            last = self.query(promql)
            if holds(last):
                return
            time.sleep(0.5)
        raise AssertionError(f"{promql!r} did not reach the wanted state within {within}s; last: {last}")

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        if not result:
            return None
        value = result[0]["value"]
        assert isinstance(value, list)
        return float(value[1])


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    registry = prometheus_client.CollectorRegistry()
    healthy = prometheus_client.Gauge("demo_healthy", "1 when the demo service is healthy", registry=registry)
    latency = prometheus_client.Gauge("demo_latency_seconds", "current latency", registry=registry)
    requests = prometheus_client.Counter("demo_requests", "requests served", ["code"], registry=registry)
    healthy.set(1)
    latency.set(0.05)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield Exporter(port=port, healthy=healthy, latency=latency, requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    return False


@contextlib.contextmanager
def running_prometheus(
    home: Path,
    targets: dict[str, int],
    exporter: Exporter,
    rules: str = RULES,
    *,
    wait_for_targets: bool = True,
) -> Iterator[Prometheus]:
    """A Prometheus on a free 127.0.0.1 port scraping ``targets`` (job → port) every second, with
    ``rules``; stopped (by its pid) on exit."""
    require("prometheus", Path(BINARY).exists(), "install Debian's prometheus package (scripts/test does)")
    (home / "rules.yml").write_text(rules, encoding="utf-8")
    jobs = "".join(
        f"""  - job_name: {job}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
        for job, port in targets.items()
    )
    (home / "prometheus.yml").write_text(
        f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}}
rule_files: [{home / "rules.yml"}]
scrape_configs:
{jobs}""",
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    server = Prometheus(url=url, exporter=exporter, process=process, log=log)
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        for job in targets if wait_for_targets else ():
            server.wait_until(f'up{{job="{job}"}} == 1', bool)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running_prometheus(
        tmp_path_factory.mktemp("prometheus"), {"demo": exporter.port}, exporter
    ) as server:
        yield server
