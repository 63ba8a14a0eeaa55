"""The pytest plugin used the way a user would: a resilience test, run in a real pytest session
(``pytester``), against the real demo system (frontend → embedded fault proxy → backend), with
faults through ``chaoskit_faults`` and recovery measured by ``assert_steady_state``."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chaoskit import probes
from chaoskit.demo import services
from chaoskit.drivers.toxiproxy import clients

pytest_plugins = ["pytester"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo() -> Iterator[services.Demo]:
    settings = services.Settings(
        frontend_port=0,
        backend_port=0,
        proxy_port=_free_port(),
        api_port=_free_port(),
        timeout=1.0,
        attempts=3,
    )
    running = services.Demo(settings).start()
    try:
        yield running
    finally:
        running.close()


RESILIENCE_TEST = """
from chaoskit import probes

FRONTEND = "{frontend}"


def test_frontend_rides_out_a_slow_backend_and_recovers(chaoskit_faults, assert_steady_state):
    assert_steady_state(probes.http_request(FRONTEND + "/", equals=200))

    chaoskit_faults.latency("backend", "300ms")
    slow = probes.http_load(FRONTEND + "/", requests=8, concurrency=2, equals=1.0)
    assert slow.ok, slow.check.message
    assert slow.output["latency_ms"]["p50"] >= 300

    chaoskit_faults.down("backend")
    assert not probes.http_request(FRONTEND + "/", equals=200).ok

    chaoskit_faults.revert_all()
    seconds = assert_steady_state(lambda: probes.http_request(FRONTEND + "/", equals=200), within="20s")
    print(f"recovered in {{seconds:.2f}}s")


def test_left_applied_when_the_test_fails(chaoskit_faults):
    chaoskit_faults.down("backend")
    chaoskit_faults.latency("backend", "1s")
    raise AssertionError("deliberate failure")
"""


def test_a_resilience_test_written_with_the_plugin(
    pytester: pytest.Pytester, demo: services.Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert demo.proxy is not None
    monkeypatch.setenv("CHAOSKIT_TOXIPROXY_URL", demo.proxy.url)
    pytester.makepyfile(test_resilience=RESILIENCE_TEST.format(frontend=demo.frontend_url))
    result = pytester.runpytest("-p", "no:randomly", "-s")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*recovered in *s*", "*deliberate failure*"])
    # Whatever the tests left applied was taken back when each ended.
    with clients.Client(demo.proxy.url) as api:
        assert api.toxics("backend") == []
        assert api.proxy("backend")["enabled"] is True
    assert probes.http_request(demo.frontend_url + "/", equals=200).ok
