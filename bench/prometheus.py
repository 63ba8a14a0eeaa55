"""Prometheus probe figures against a real Prometheus (Debian's package) scraping an exporter with
many series: what one ``prometheus.query`` / ``prometheus.range`` / ``prometheus.alerts`` call costs,
with the run's shared client and with a fresh one per call, so you know how short a guard interval
can be. Prints JSON lines; no pass/fail.

    python -m bench prometheus [-- --series N --calls N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import queries

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def missing() -> str | None:
    if not Path(BINARY).exists():
        return "no prometheus binary (apt-get install prometheus)"
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return "prometheus_client is not installed (pip install 'chaoskit[prometheus]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(calls: int, run: object) -> dict[str, float]:
    assert callable(run)
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    return {
        "calls": calls,
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _fresh(query: queries.QueryArgs) -> None:
    ctx = contract.RunContext(run_id="bench-fresh")
    try:
        queries.Query().run(query, ctx)
    finally:
        ctx.close()


def main(argv: list[str]) -> int:
    import prometheus_client

    parser = argparse.ArgumentParser(prog="bench prometheus")
    parser.add_argument("--series", type=int, default=1000, help="series the exporter serves")
    parser.add_argument("--calls", type=int, default=50, help="probe calls per figure")
    options = parser.parse_args(argv)

    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge("bench_value", "a value per instance", ["instance_id"], registry=registry)
    for i in range(options.series):
        gauge.labels(str(i)).set(i % 100)
    exporter_port = _free_port()
    server, thread = prometheus_client.start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    with tempfile.TemporaryDirectory(prefix="chaoskit-bench-prometheus-") as tmp:
        home = Path(tmp)
        (home / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - {{job_name: bench, static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]}}\n"
        )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [BINARY, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    answer = httpx.get(
                        f"{url}/api/v1/query", params={"query": "count(bench_value)"}, timeout=2
                    )
                    result = answer.json()["data"]["result"]
                    if result and int(float(result[0]["value"][1])) == options.series:
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("prometheus did not start and scrape the exporter within 60s")
                time.sleep(0.3)
            time.sleep(3)  # a few samples for the range query
            ctx = contract.RunContext(run_id="bench", started_at=time.time() - 3)
            query = queries.QueryArgs(url=url, query="bench_value", reduce="p99")
            cases = {
                "query_shared_client": lambda: queries.Query().run(query, ctx),
                "query_fresh_client": lambda: _fresh(query),
                "range_run_window": lambda: queries.Range().run(
                    queries.RangeArgs(url=url, query="bench_value", window="run", reduce="max"), ctx
                ),
                "alerts": lambda: queries.Alerts().run(queries.AlertsArgs(url=url), ctx),
            }
            for name, run in cases.items():
                figures = _timed(options.calls, run)
                print(json.dumps({"bench": "prometheus", "case": name, "series": options.series, **figures}))
            ctx.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
    return 0
