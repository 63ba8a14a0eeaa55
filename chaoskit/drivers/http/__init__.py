"""The http driver: HTTP requests and load (latency percentiles), and TCP connects."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.http import connecting, loading, requesting


def driver() -> contract.Driver:
    return contract.Driver(
        name="http",
        summary="HTTP endpoints and TCP ports: status, body, latency percentiles under load, connects.",
        probes=[requesting.RequestProbe(), loading.LoadProbe(), connecting.ConnectProbe()],
        actions=[requesting.RequestAction()],
    )
