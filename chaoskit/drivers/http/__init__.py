"""The http driver: HTTP requests, load (latency percentiles) and Prometheus text endpoints."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.http import levers, requesting, scraping, traffic


def driver() -> contract.Driver:
    return contract.Driver(
        name="http",
        summary="HTTP endpoints: status, body, latency percentiles under load.",
        probes=[requesting.RequestProbe(), traffic.LoadProbe(), scraping.MetricsProbe()],
        actions=[requesting.RequestAction()],
        levers={"http": levers.HttpLever, "https": levers.HttpLever},
    )
