"""The http driver: HTTP requests and load (latency percentiles)."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.http import levers, requesting, traffic


def driver() -> contract.Driver:
    return contract.Driver(
        name="http",
        summary="HTTP endpoints: status, body, latency percentiles under load.",
        probes=[requesting.RequestProbe(), traffic.LoadProbe()],
        actions=[requesting.RequestAction()],
        levers={"http": levers.HttpLever, "https": levers.HttpLever},
    )
