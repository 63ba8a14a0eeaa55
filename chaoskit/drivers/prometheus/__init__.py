"""The prometheus driver: PromQL probes (instant, range, alerts, SLO burn rate) through the Prometheus
HTTP API with ``prometheus-api-client``, which is imported only when a probe runs."""

from __future__ import annotations

from importlib import util

from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import queries


def _missing() -> str | None:
    if util.find_spec("prometheus_api_client") is None:
        return "prometheus-api-client is not installed: pip install 'chaoskit[prometheus]'"
    return None


def driver() -> contract.Driver:
    return contract.Driver(
        name="prometheus",
        summary="Prometheus: PromQL thresholds, range reductions, firing alerts (guards), SLO burn rates",
        probes=(queries.Query(), queries.Range(), queries.Alerts(), queries.Slo()),
        missing=_missing,
    )
