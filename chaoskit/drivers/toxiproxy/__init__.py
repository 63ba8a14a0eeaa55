"""The toxiproxy driver: network faults (latency, bandwidth, timeouts, resets, "down") through a
Toxiproxy API - chaoskit's embedded server (``chaoskit proxy serve``) or a real Toxiproxy.

By resource: ``toxics.py`` (a toxic on a proxy), ``http_toxics.py`` (the embedded proxy's
request-level ``http_*`` toxics), ``proxies.py`` (a proxy: create, read, down),
``sweeping.py`` (leftover toxics), ``clients.py`` (the HTTP API).
"""

from __future__ import annotations

import functools

from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import http_toxics, proxies, sweeping, toxics


def driver() -> contract.Driver:
    return contract.Driver(
        name="toxiproxy",
        summary="Network faults through a Toxiproxy API (chaoskit's embedded proxy or a real Toxiproxy).",
        faults=[*toxics.FAULTS, *http_toxics.FAULTS, proxies.Down()],
        probes=[proxies.ProxyProbe()],
        actions=[proxies.ProxyAction()],
        sweep=functools.partial(sweeping.sweep, urls=None),
    )
