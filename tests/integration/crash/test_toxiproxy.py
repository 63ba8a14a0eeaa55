"""Crash safety of every toxiproxy fault against chaoskit's embedded proxy: the runner is SIGKILLed
while the toxic (or the outage) is in place; after ``chaoskit recover`` the proxy is as it was,
read through the driver's own ``toxiproxy.proxy`` probe, and real traffic passes unharmed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import proxies
from chaoskit.proxy import servers
from tests.integration.crash import killing
from tests.integration.proxy import upstreams

# Values far from harmless, so that a toxic left behind shows in the traffic check.
FAULTS = {
    "toxiproxy.latency": "latency: 5s",
    "toxiproxy.bandwidth": "rate: 1",
    "toxiproxy.slow_close": "delay: 30s",
    "toxiproxy.timeout": "timeout: 0s",
    "toxiproxy.reset_peer": "timeout: 0s",
    "toxiproxy.slicer": "average_size: 1, delay: 10ms",
    "toxiproxy.limit_data": "bytes: 1",
    "toxiproxy.toxic": "type: latency, attributes: {latency: 5000}",
    "toxiproxy.down": "",
    "toxiproxy.http_abort": "status: 503",
    "toxiproxy.http_delay": "latency: 5s",
    "toxiproxy.http_modify": "set_headers: {X-Fault: '1'}, truncate: 0",
}


@pytest.fixture(scope="module")
def server() -> Iterator[servers.ProxyServer]:
    with servers.ProxyServer() as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[upstreams.Upstream]:
    with upstreams.Upstream(upstreams.echo) as upstream:
        yield upstream


def _observe(server: servers.ProxyServer, proxy: str) -> contract.JsonValue:
    ctx = contract.RunContext(run_id="observer")
    try:
        return proxies.ProxyProbe().run(proxies.ProxyRead(name=proxy, url=server.url), ctx)
    finally:
        ctx.close()


def _traffic_passes(listen: str) -> bool:
    """64 KiB through the proxy and back, byte for byte, well within 10 s."""
    payload = os.urandom(65536)
    with upstreams.connect(listen, timeout=10) as sock:
        sock.sendall(payload)
        return upstreams.recv_exactly(sock, len(payload)) == payload


@pytest.mark.parametrize("fault", list(FAULTS))
def test_toxiproxy_fault_is_recovered_after_a_sigkill_at_any_moment(
    fault: str, server: servers.ProxyServer, echo: upstreams.Upstream, tmp_path: Path
) -> None:
    def moment(index: int, delay: float) -> None:
        proxy = f"crash-{fault.split('.')[1]}-{index}"
        made = httpx.post(
            f"{server.url}/proxies",
            json={"name": proxy, "upstream": echo.address, "listen": "127.0.0.1:0"},
            timeout=10,
        )
        assert made.status_code == 201, made.text
        listen = str(made.json()["listen"])
        before = _observe(server, proxy)
        assert _traffic_passes(listen)
        extra = f", {FAULTS[fault]}" if FAULTS[fault] else ""
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            f"title: {fault} then crash\n"
            f"method:\n"
            f"  - fault: {fault}\n"
            f"    with: {{url: '{server.url}', proxy: {proxy}{extra}}}\n"
            f"    duration: 1h\n",
            delay,
            left_behind=lambda: _observe(server, proxy) != before,
        )
        assert _observe(server, proxy) == before
        assert _traffic_passes(listen), f"traffic is still harmed after recover (moment {delay}s)"
        httpx.delete(f"{server.url}/proxies/{proxy}", timeout=10)

    killing.each_moment(killing.moments(fault), moment)
