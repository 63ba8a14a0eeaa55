"""The demo in-process, on free ports: its three paths, the series /metrics adds for the pattern
experiments, and retries through a dead link with the retry pattern on (budgeted) and off."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest

from chaoskit.demo import services
from chaoskit.drivers.http import scraping


def started(*patterns: str, attempts: int = 3, pool: int = 16) -> services.Demo:
    settings = services.Settings(
        frontend_port=0,
        backend_port=0,
        proxy_port=0,
        api_port=0,
        attempts=attempts,
        patterns=patterns,
        pool=pool,
    )
    return services.Demo(settings).start()


def api(demo: services.Demo, path: str, body: object) -> None:
    """POST to the demo's Toxiproxy API, as the toxiproxy faults do."""
    assert demo.proxy is not None
    connection = http.client.HTTPConnection("127.0.0.1", demo.proxy.port, timeout=10)
    try:
        connection.request("POST", path, body=json.dumps(body))
        assert connection.getresponse().status == 200
    finally:
        connection.close()


@pytest.fixture
def demo() -> Iterator[services.Demo]:
    running = started()
    try:
        yield running
    finally:
        running.close()


def get(demo: services.Demo, path: str) -> tuple[int, bytes]:
    host, port = demo.frontend_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def series(demo: services.Demo, selector: str) -> float:
    _, text = get(demo, "/metrics")
    value, matched = scraping.total(scraping.parse_text(text.decode()), scraping.parse_selector(selector))
    assert matched, f"no {selector} in /metrics"
    return value


def test_each_path_calls_its_own_dependency_links(demo: services.Demo) -> None:
    for path in ("/", "/reviews", "/balanced", "/balanced", "/balanced"):
        status, body = get(demo, path)
        assert status == 200 and "item" in json.loads(body)
    assert series(demo, 'demo_dependency_calls_total{dependency="backend"}') == 1
    assert series(demo, 'demo_dependency_calls_total{dependency="reviews"}') == 1
    assert series(demo, 'demo_dependency_calls_total{dependency!="backend",dependency!="reviews"}') == 3
    assert series(demo, 'demo_breaker_state{dependency="backend"}') == 0
    assert series(demo, "demo_instance_up") == 3
    assert series(demo, "demo_shed_total") == 0


@pytest.mark.parametrize(("retry", "most_calls"), [("on", 1.5), ("off", 5)])
def test_a_dead_link_gets_bounded_retries_only_with_the_pattern_on(retry: str, most_calls: float) -> None:
    running = started(f"retry={retry}", attempts=5)
    try:
        api(running, "/proxies/backend", {"enabled": False})
        for _ in range(100):
            assert get(running, "/")[0] == 502
        calls = series(running, 'demo_dependency_calls_total{dependency="backend"}')
        # On: 100 first attempts, and retries from the budget (20% of requests plus a reserve of 10).
        assert calls <= most_calls * 100 if retry == "on" else calls == 500
    finally:
        running.close()


def test_a_hedge_that_wins_cuts_the_slow_call_short() -> None:
    """With 2 connection slots and one instance 1 s slow, the slow calls a hedge beat must give
    their slots back at once, or the next requests wait for them."""
    running = started("hedging=on", "health=off", attempts=1, pool=2)
    try:
        toxic = {"name": "slow", "type": "latency", "stream": "downstream", "attributes": {"latency": 1000}}
        api(running, "/proxies/instance-1/toxics", toxic)
        for _ in range(12):
            began = time.monotonic()
            assert get(running, "/balanced")[0] == 200
            assert time.monotonic() - began < 0.5
    finally:
        running.close()
