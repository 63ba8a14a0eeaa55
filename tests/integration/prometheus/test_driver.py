"""The prometheus probes against a real Prometheus scraping a real exporter."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import queries, querying
from tests import servers
from tests.integration.prometheus.conftest import Prometheus, free_port

pytestmark = pytest.mark.prometheus


def _ctx(**kwargs: object) -> contract.RunContext:
    return contract.RunContext(run_id="t", **kwargs)  # type: ignore[arg-type]


def _run(probe: contract.Probe[contract.A], ctx: contract.RunContext | None = None, **args: object) -> dict:
    parsed = probe.args.model_validate(args)
    out = probe.run(parsed, ctx or _ctx())  # type: ignore[arg-type]
    assert isinstance(out, dict)
    return out


def test_instant_query_reduces_series_and_checks_each(prometheus: Prometheus) -> None:
    exporter = prometheus.exporter
    exporter.requests.labels(code="200").inc(7)
    exporter.requests.labels(code="500").inc(2)
    prometheus.wait_until('demo_requests_total{code="500"} == 2', bool)
    query = "demo_requests_total"
    out = _run(queries.Query(), url=prometheus.url, query=query, reduce="sum")
    assert out["value"] == 9.0
    assert out["count"] == 2
    assert {s["labels"]["code"]: s["value"] for s in out["series"]} == {"200": 7.0, "500": 2.0}
    assert _run(queries.Query(), url=prometheus.url, query=query, reduce="min")["value"] == 2.0
    checked = _run(queries.Query(), url=prometheus.url, query=query, series_below=5)
    assert checked["failing_count"] == 1
    assert checked["failing"][0]["labels"]["code"] == "200"


def test_a_scalar_result_is_one_value(prometheus: Prometheus) -> None:
    assert _run(queries.Query(), url=prometheus.url, query="scalar(vector(42))")["value"] == 42.0


def test_no_series_is_null_unless_asked_for_zero(prometheus: Prometheus) -> None:
    query = 'demo_requests_total{code="418"}'
    assert _run(queries.Query(), url=prometheus.url, query=query)["value"] is None
    assert _run(queries.Query(), url=prometheus.url, query=query, empty="zero")["value"] == 0.0


def test_an_invalid_query_shows_prometheus_own_message(prometheus: Prometheus) -> None:
    with pytest.raises(querying.QueryError) as caught:
        _run(queries.Query(), url=prometheus.url, query="sum(rate(demo_requests_total[1m])")
    assert caught.value.status == 400
    assert "parse error" in caught.value.message
    assert prometheus.url in caught.value.message


def test_validate_query_asks_the_server(prometheus: Prometheus) -> None:
    assert querying.validate_query(prometheus.url, "rate(demo_requests_total[1m])") is True
    with pytest.raises(
        querying.InvalidQuery, match=r"refused the query 'rate\(demo_requests_total\)'"
    ) as caught:
        querying.validate_query(prometheus.url, "rate(demo_requests_total)")
    assert caught.value.exit_code == errors.ExitCode.INVALID
    assert "expected type range vector" in caught.value.message
    # Through the probe's optional validation hook, as the planner calls it.
    args = queries.QueryArgs(url=prometheus.url, query="max(demo_healthy")
    with pytest.raises(querying.InvalidQuery, match="parse error"):
        queries.Query().validate(args, _ctx())


def test_validation_says_nothing_when_the_server_cannot_be_asked() -> None:
    assert querying.validate_query(f"http://127.0.0.1:{free_port()}", "up{") is False
    assert querying.validate_query("http://127.0.0.1:1", "${steps.x.output}") is False


def test_an_unreachable_server_fails_the_probe_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(errors.DriverError, match=r"can't reach Prometheus at .* \(3 attempts\)"):
        _run(queries.Query(), url=url, query="up", retries=2, timeout=2)


def test_range_reduces_over_the_run_with_quantiles(prometheus: Prometheus) -> None:
    exporter = prometheus.exporter
    ctx = _ctx(started_at=time.time())
    for latency in (0.1, 0.3, 0.2):
        exporter.latency.set(latency)
        prometheus.wait_until(f"demo_latency_seconds == {latency}", bool)
        time.sleep(2)
    exporter.latency.set(0.05)
    prometheus.wait_until("demo_latency_seconds == 0.05", bool)
    out = _run(queries.Range(), ctx, url=prometheus.url, query="demo_latency_seconds", window="run")
    assert out["value"] == pytest.approx(0.3)
    assert out["samples"] >= 4
    assert out["count"] == 1
    low = _run(queries.Range(), ctx, url=prometheus.url, query="demo_latency_seconds", reduce="min")
    assert low["value"] == pytest.approx(0.05, abs=0.051)
    median = _run(queries.Range(), ctx, url=prometheus.url, query="demo_latency_seconds", reduce="p50")
    assert 0.05 <= median["value"] <= 0.3


def test_range_over_the_fault_window_needs_a_fault(prometheus: Prometheus) -> None:
    with pytest.raises(errors.DriverError, match="window 'fault' needs a fault"):
        _run(queries.Range(), url=prometheus.url, query="demo_healthy", window="fault")
    now = time.time()
    ctx = _ctx(marks={"first_inject": now - 5, "last_revert": now - 1})
    out = _run(queries.Range(), ctx, url=prometheus.url, query="demo_healthy", window="fault", reduce="min")
    assert out["value"] == 1.0
    assert out["end"] - out["start"] == pytest.approx(4, abs=0.01)


def test_alerts_fire_and_can_be_filtered(prometheus: Prometheus) -> None:
    exporter = prometheus.exporter
    exporter.healthy.set(0)
    try:
        prometheus.wait_until('ALERTS{alertname="DemoUnhealthy",alertstate="firing"}', bool)
        out = _run(queries.Alerts(), url=prometheus.url, labels={"severity": "critical"})
        assert out["count"] == 1
        assert out["firing"] == ["DemoUnhealthy"]
        assert out["alerts"][0]["labels"]["team"] == "chaos"
        assert _run(queries.Alerts(), url=prometheus.url, labels={"severity": "warning"})["count"] == 0
        assert _run(queries.Alerts(), url=prometheus.url, names=["DemoSlow"])["count"] == 0
        assert _run(queries.Alerts(), url=prometheus.url, state="pending")["count"] == 0
    finally:
        exporter.healthy.set(1)
    prometheus.wait_until('ALERTS{alertname="DemoUnhealthy"}', lambda r: not r)
    assert _run(queries.Alerts(), url=prometheus.url)["count"] == 0


def test_slo_error_ratio_and_burn_rate_from_counters(prometheus: Prometheus) -> None:
    exporter = prometheus.exporter
    # Counters well above zero, so that increase() extrapolates both series alike (near zero,
    # Prometheus stops extrapolating at the counter's zero point, differently per series).
    exporter.requests.labels(code="200").inc(5000)
    exporter.requests.labels(code="500").inc(5000)
    prometheus.wait_until('demo_requests_total{code="500"} >= 5000', bool)
    ctx = _ctx(started_at=time.time())
    time.sleep(1.5)  # one scrape of the counters' starting values inside the window
    before_ok = prometheus.value('demo_requests_total{code="200"}') or 0
    before_bad = prometheus.value('demo_requests_total{code="500"}') or 0
    exporter.requests.labels(code="200").inc(90)
    exporter.requests.labels(code="500").inc(10)
    prometheus.wait_until(f'demo_requests_total{{code="500"}} == {before_bad + 10}', bool)
    prometheus.wait_until(f'demo_requests_total{{code="200"}} == {before_ok + 90}', bool)
    out = _run(
        queries.Slo(),
        ctx,
        url=prometheus.url,
        errors='demo_requests_total{code="500"}',
        total="demo_requests_total",
        objective=0.99,
        window="run",
    )
    # increase() extrapolates to the window edges, so the counts are near, not exactly, 10 and 100.
    assert out["error_ratio"] == pytest.approx(0.1, rel=0.05)
    assert out["burn_rate"] == pytest.approx(10, rel=0.05)
    assert out["budget_remaining"] < 0
    good = _run(
        queries.Slo(),
        ctx,
        url=prometheus.url,
        good='demo_requests_total{code="200"}',
        total="demo_requests_total",
        objective=0.99,
        window="run",
    )
    assert good["error_ratio"] == pytest.approx(0.1, rel=0.05)


def test_slo_objective_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match=r"0.999 for 99.9%"):
        queries.SloArgs.model_validate({"total": "x", "errors": "y", "objective": 99.9})


class _AuthProxy(servers.Quiet):
    """Forwards to the real Prometheus only with the right bearer token (Prometheus itself has no
    bearer-token auth to turn on), recording the headers it saw."""

    upstream = ""
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        if self.headers.get("Authorization") != "Bearer s3cret":
            body = b'{"status":"error","errorType":"unauthorized","error":"bad token"}'
            self.send_response(401)
        else:
            answer = httpx.get(self.upstream + self.path, timeout=10)
            body = answer.content
            self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def auth_proxy(prometheus: Prometheus) -> Iterator[str]:
    _AuthProxy.upstream = prometheus.url
    _AuthProxy.seen = []
    with servers.serving(_AuthProxy) as url:
        yield url


def test_bearer_token_and_headers_are_sent_and_never_shown(auth_proxy: str) -> None:
    out = _run(
        queries.Query(), url=auth_proxy, query="demo_healthy", token="s3cret", headers={"X-Scope-OrgID": "t1"}
    )
    assert out["value"] == 1.0
    assert _AuthProxy.seen[-1]["X-Scope-OrgID"] == "t1"
    with pytest.raises(querying.QueryError) as caught:
        _run(queries.Query(), url=auth_proxy, query="demo_healthy", token="wrong-token")
    assert caught.value.status == 401
    assert caught.value.hint == "check token / headers"
    assert "wrong-token" not in caught.value.render()
    assert "wrong-token" not in repr(queries.QueryArgs(query="up", token="wrong-token"))


def test_a_url_that_is_not_the_prometheus_api_says_so(prometheus: Prometheus) -> None:
    # The exporter answers 200 with metrics text on every path: a real server, but not the API.
    url = f"http://127.0.0.1:{prometheus.exporter.port}"
    with pytest.raises(errors.DriverError, match=r"did not answer like the Prometheus API"):
        _run(queries.Query(), url=url, query="up", retries=0)
