"""``chaoskit.probes``' prometheus functions against a real Prometheus, with no experiment or engine."""

from __future__ import annotations

import time

import pytest

from chaoskit import errors, probes
from tests.integration.prometheus.conftest import Prometheus

pytestmark = pytest.mark.prometheus


def test_prometheus_query_value_and_checks(prometheus: Prometheus) -> None:
    healthy = probes.prometheus_query("demo_healthy", url=prometheus.url, equals=1)
    assert healthy.ok and healthy.value == 1.0
    assert healthy.probe == "prometheus.query"
    too_high = probes.prometheus_query("demo_latency_seconds", url=prometheus.url, below=0.01)
    assert not too_high.ok
    assert too_high.check is not None
    assert too_high.check.message.startswith("expected value below 0.01, got 0.05")


def test_the_url_comes_from_the_environment(prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_PROMETHEUS_URL", prometheus.url)
    assert probes.prometheus_query("scalar(vector(3))").value == 3.0


def test_prometheus_range_since_an_epoch(prometheus: Prometheus) -> None:
    prometheus.wait_until("count_over_time(demo_healthy[1m]) >= 5", bool)  # a few seconds of data
    since = time.time() - 4
    result = probes.prometheus_range("demo_healthy", since=since, reduce="min", equals=1, url=prometheus.url)
    assert result.ok
    assert isinstance(result.output, dict) and result.output["samples"] >= 2


def test_alerts_firing_and_slo_burn_rate(prometheus: Prometheus) -> None:
    exporter = prometheus.exporter
    assert probes.alerts_firing(labels={"severity": "critical"}, url=prometheus.url, equals=0).ok
    exporter.healthy.set(0)
    try:
        prometheus.wait_until('ALERTS{alertname="DemoUnhealthy",alertstate="firing"}', bool)
        firing = probes.alerts_firing(["DemoUnhealthy"], url=prometheus.url, equals=0)
        assert not firing.ok
        assert isinstance(firing.output, dict) and firing.output["firing"] == ["DemoUnhealthy"]
    finally:
        exporter.healthy.set(1)
    burn = probes.slo_burn_rate(
        errors='demo_requests_total{code="500"}',
        total="demo_requests_total",
        objective=0.999,
        window="1m",
        url=prometheus.url,
        below=1000,
    )
    assert burn.ok
    assert isinstance(burn.output, dict) and {"error_ratio", "budget_remaining"} <= set(burn.output)


def test_a_promql_typo_raises_with_prometheus_own_message(prometheus: Prometheus) -> None:
    with pytest.raises(errors.DriverError, match="parse error"):
        probes.prometheus_query("sum(demo_healthy", url=prometheus.url)
