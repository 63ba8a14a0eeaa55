"""Network faults as context managers, for any test suite or script::

    with chaoskit.faults.latency(proxy="db", latency="300ms"):
        ...  # every connection through the "db" proxy is 300 ms slower here

Each one adds a toxic (or disables the proxy) on entry and takes it back on exit, also when the
block raises. They talk to a Toxiproxy API: chaoskit's embedded server by default
(``http://127.0.0.1:8474``, e.g. ``chaoskit proxy serve``), or ``url=`` any other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from chaoskit import durations
from chaoskit.drivers.toxiproxy import clients

DEFAULT_URL = clients.DEFAULT_URL
Duration = str | float
"""``"300ms"``, ``"2s"``, or seconds as a number."""


def _ms(value: Duration) -> int:
    return round(durations.parse(value) * 1000)


@contextlib.contextmanager
def toxic(
    proxy: str,
    type: str,
    attributes: Mapping[str, int] | None = None,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
) -> Iterator[clients.ToxicInfo]:
    """Any toxic, with the server's own attribute names and units (ms; µs for slicer ``delay``)."""
    toxic_name = name or f"chaoskit-lib-{os.urandom(3).hex()}-{type}"
    with clients.Client(url) as api:
        added = api.add_toxic(
            proxy, type, dict(attributes or {}), name=toxic_name, stream=stream, toxicity=toxicity
        )
        try:
            yield added
        finally:
            api.remove_toxic(proxy, toxic_name)


def latency(
    proxy: str,
    latency: Duration,
    jitter: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Delay data by ``latency`` (± ``jitter``)."""
    attributes = {"latency": _ms(latency), "jitter": _ms(jitter)}
    return toxic(proxy, "latency", attributes, url=url, stream=stream, toxicity=toxicity)


def bandwidth(
    proxy: str, rate: int, *, url: str = DEFAULT_URL, stream: str = "downstream", toxicity: float = 1.0
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Limit throughput to ``rate`` KB/s (1 KB = 1000 bytes)."""
    return toxic(proxy, "bandwidth", {"rate": rate}, url=url, stream=stream, toxicity=toxicity)


def slow_close(
    proxy: str, delay: Duration, *, url: str = DEFAULT_URL, stream: str = "downstream", toxicity: float = 1.0
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Hold back connection closes by ``delay``."""
    return toxic(proxy, "slow_close", {"delay": _ms(delay)}, url=url, stream=stream, toxicity=toxicity)


def timeout(
    proxy: str,
    timeout: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Drop all data; close connections idle for ``timeout`` (0: never). Leaving closes them."""
    return toxic(proxy, "timeout", {"timeout": _ms(timeout)}, url=url, stream=stream, toxicity=toxicity)


def reset_peer(
    proxy: str,
    timeout: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Reset connections ``timeout`` after data arrives."""
    return toxic(proxy, "reset_peer", {"timeout": _ms(timeout)}, url=url, stream=stream, toxicity=toxicity)


def slicer(
    proxy: str,
    average_size: int,
    size_variation: int = 0,
    delay: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Cut data into slices of about ``average_size`` bytes, ``delay`` apart."""
    attributes = {
        "average_size": average_size,
        "size_variation": size_variation,
        "delay": round(durations.parse(delay) * 1_000_000),
    }
    return toxic(proxy, "slicer", attributes, url=url, stream=stream, toxicity=toxicity)


def limit_data(
    proxy: str, bytes: int, *, url: str = DEFAULT_URL, stream: str = "downstream", toxicity: float = 1.0
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Close connections once ``bytes`` bytes have passed."""
    return toxic(proxy, "limit_data", {"bytes": bytes}, url=url, stream=stream, toxicity=toxicity)


@contextlib.contextmanager
def down(proxy: str, *, url: str = DEFAULT_URL) -> Iterator[clients.ProxyInfo]:
    """Disable the proxy (connections close, new ones are refused); re-enable it on exit."""
    with clients.Client(url) as api:
        was_enabled = api.proxy(proxy)["enabled"]
        disabled = api.update_proxy(proxy, enabled=False)
        try:
            yield disabled
        finally:
            if was_enabled:
                api.update_proxy(proxy, enabled=True)
