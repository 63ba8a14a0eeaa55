"""``chaoskit.probes``: the probe functions, without an experiment or engine, against real local servers."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit import errors, probes
from tests import servers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "library.md"


def test_the_public_api_is_what_docs_library_md_documents() -> None:
    text = DOCS.read_text(encoding="utf-8")
    probes_section = text.split("## Probes: `chaoskit.probes`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^### `(\w+)`", probes_section, flags=re.MULTILINE))
    assert documented == set(probes.__all__)
    for name in probes.__all__:
        assert getattr(probes, name).__doc__, f"{name} has no docstring"


class _Handler(servers.Quiet):
    status = 200

    def do_GET(self) -> None:
        body = b'{"healthy": true}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.status = 200
    with servers.serving(_Handler) as url:
        yield url


def test_http_request_checks_the_status_by_default_path(server: str) -> None:
    result = probes.http_request(f"{server}/health", equals=200)
    assert result.ok and bool(result)
    assert result.value == 200
    assert isinstance(result.output, dict) and result.output["json"] == {"healthy": True}
    assert result.check is not None and result.check.message == "status equals 200: 200"
    _Handler.status = 503
    failed = probes.http_request(f"{server}/health", between=(200, 299))
    assert not failed.ok
    assert failed.check is not None
    assert failed.check.message == "expected status between 200 and 299, got 503"
    assert str(failed) == "http.request FAILED: expected status between 200 and 299, got 503"


def test_expect_takes_the_experiment_form_with_paths(server: str) -> None:
    result = probes.http_request(
        f"{server}/", expect=[{"path": "json.healthy", "equals": True}, {"in": [200, 204]}]
    )
    assert [c.ok for c in result.checks] == [True, True]
    assert result.checks[1].expected == "status in [200, 204]"


def test_without_checks_ok_means_it_answered(server: str) -> None:
    _Handler.status = 500
    result = probes.http_request(server)
    assert result.ok and result.checks == () and result.check is None
    assert result.value == 500


def test_http_load_reports_success_ratio_and_latency(server: str) -> None:
    result = probes.http_load(server, requests=20, concurrency=2, above=0.99)
    assert result.ok
    assert result.value == 1.0
    assert isinstance(result.output, dict) and result.output["requests"] == 20
    assert isinstance(result.output["latency_ms"], dict) and result.output["latency_ms"]["p99"] is not None


def test_tcp_connect_is_ok_only_when_it_connects() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert probes.tcp_connect("127.0.0.1", port).ok
    closed = probes.tcp_connect("127.0.0.1", port, timeout=2)
    assert not closed.ok
    assert closed.value is False
    assert closed.check is not None and "expected connected equals true, got false" in closed.check.message


def test_wrong_arguments_are_a_usage_error_naming_the_probe() -> None:
    with pytest.raises(errors.UsageError, match=r"prometheus.query: reduce: .*unknown reducer 'mx'"):
        probes.prometheus_query("up", reduce="mx", url="http://127.0.0.1:1")
    with pytest.raises(errors.UsageError, match=r"tcp.connect: port"):
        probes.tcp_connect("127.0.0.1", 70000)


def test_an_unreachable_prometheus_raises_a_driver_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.DriverError, match=r"can't reach Prometheus at http://127.0.0.1:\d+"):
        probes.prometheus_query("up", url=f"http://127.0.0.1:{port}", retries=0)
