"""The tcp driver: probes of TCP ports (can a connection be opened, and how fast)."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.tcp import ports


def driver() -> contract.Driver:
    return contract.Driver(
        name="tcp",
        summary="TCP ports: can a connection be opened, and how long it takes.",
        probes=[ports.Connect()],
    )
