"""The demo answers a keep-alive client as fast as its work allows: no Nagle/delayed-ACK stall
(~40 ms) from a response written in several small sends. The quickstart's latency figures are
the demo's, not an artifact of how it writes."""

from __future__ import annotations

import http.client
import socket
import statistics
import time
from collections.abc import Iterator

import pytest

from chaoskit.demo import services
from chaoskit.drivers import contract
from chaoskit.drivers.http import traffic

STALL_MS = 40.0
"""Linux's delayed ACK: what a stalled answer waits for. The healthy demo answers in a few ms."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo() -> Iterator[services.Demo]:
    settings = services.Settings(
        frontend_port=free_port(), backend_port=free_port(), proxy_port=free_port(), api_port=free_port()
    )
    running = services.Demo(settings).start()
    yield running
    running.close()


@pytest.mark.parametrize("path", ["/health", "/"])
def test_a_keep_alive_client_sees_no_nagle_stall(demo: services.Demo, path: str) -> None:
    port = int(demo.frontend_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    elapsed: list[float] = []
    try:
        for _ in range(30):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            elapsed.append((time.perf_counter() - started) * 1000)
            assert response.status == 200
            assert not response.will_close  # one connection for all: the case the stall hits
    finally:
        connection.close()
    assert statistics.median(elapsed) < STALL_MS / 2, elapsed


def test_http_load_measures_the_demo_not_a_stall(demo: services.Demo) -> None:
    args = traffic.LoadArgs.model_validate({"url": f"{demo.frontend_url}/", "requests": 60, "concurrency": 2})
    out = traffic.LoadProbe().run(args, contract.RunContext(run_id="demo-latency"))
    assert isinstance(out, dict) and isinstance(out["latency_ms"], dict)
    assert out["success_ratio"] == 1.0
    p50 = out["latency_ms"]["p50"]
    assert isinstance(p50, float) and p50 < STALL_MS / 2, out["latency_ms"]
