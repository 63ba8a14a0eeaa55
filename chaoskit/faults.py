"""Network faults as context managers, for any test suite or script::

    with chaoskit.faults.latency(proxy="db", latency="300ms"):
        ...  # every connection through the "db" proxy is 300 ms slower here

Each one adds a toxic (or disables the proxy) on entry and takes it back on exit, also when the
block raises. They talk to a Toxiproxy API: chaoskit's embedded server by default
(``http://127.0.0.1:8474``, e.g. ``chaoskit proxy serve``), or ``url=`` any other. Attributes are
checked and converted (ms, µs) by the same code as the ``toxiproxy.*`` faults of experiments, and
``down`` restores the proxy's ``enabled`` the way ``toxiproxy.down``'s revert does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from chaoskit.drivers.toxiproxy import clients, http_toxics, proxies, toxics

DEFAULT_URL = clients.DEFAULT_URL
Duration = str | float
"""``"300ms"``, ``"2s"``, or seconds as a number."""
Stream = Literal["upstream", "downstream"]


@contextlib.contextmanager
def toxic(
    proxy: str,
    type: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    url: str = DEFAULT_URL,
    stream: str = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
) -> Iterator[clients.ToxicInfo]:
    """Any toxic, with the server's own attribute names and units (ms; µs for slicer ``delay``)."""
    toxic_name = name or toxics.toxic_name("lib", type)
    with clients.Client(url) as api:
        try:
            added = api.add_toxic(
                proxy, type, dict(attributes or {}), name=toxic_name, stream=stream, toxicity=toxicity
            )
        except clients.ApiError as e:
            raise (http_toxics.unknown_type(e, url, type) or e) from e
        try:
            yield added
        finally:
            api.remove_toxic(proxy, toxic_name)


def _apply(
    fault: toxics.ToxicFault[toxics.TA], args: toxics.TA
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    return toxic(
        args.proxy,
        fault.toxic_type(args),
        fault.attributes(args),
        url=args.url,
        stream=args.stream,
        toxicity=args.toxicity,
    )


def latency(
    proxy: str,
    latency: Duration,
    jitter: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Delay data by ``latency`` (± ``jitter``)."""
    args = toxics.LatencyArgs(
        proxy=proxy, url=url, stream=stream, toxicity=toxicity, latency=latency, jitter=jitter
    )
    return _apply(toxics.Latency(), args)


def bandwidth(
    proxy: str, rate: int, *, url: str = DEFAULT_URL, stream: Stream = "downstream", toxicity: float = 1.0
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Limit throughput to ``rate`` KB/s (1 KB = 1000 bytes)."""
    args = toxics.BandwidthArgs(proxy=proxy, url=url, stream=stream, toxicity=toxicity, rate=rate)
    return _apply(toxics.Bandwidth(), args)


def slow_close(
    proxy: str,
    delay: Duration,
    *,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Hold back connection closes by ``delay``."""
    args = toxics.SlowCloseArgs(proxy=proxy, url=url, stream=stream, toxicity=toxicity, delay=delay)
    return _apply(toxics.SlowClose(), args)


def timeout(
    proxy: str,
    timeout: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Drop all data; close connections idle for ``timeout`` (0: never). Leaving closes them."""
    args = toxics.TimeoutArgs(proxy=proxy, url=url, stream=stream, toxicity=toxicity, timeout=timeout)
    return _apply(toxics.Timeout(), args)


def reset_peer(
    proxy: str,
    timeout: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Reset connections ``timeout`` after data arrives."""
    args = toxics.ResetPeerArgs(proxy=proxy, url=url, stream=stream, toxicity=toxicity, timeout=timeout)
    return _apply(toxics.ResetPeer(), args)


def slicer(
    proxy: str,
    average_size: int,
    size_variation: int = 0,
    delay: Duration = 0,
    *,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Cut data into slices of about ``average_size`` bytes, ``delay`` apart."""
    args = toxics.SlicerArgs(
        proxy=proxy,
        url=url,
        stream=stream,
        toxicity=toxicity,
        average_size=average_size,
        size_variation=size_variation,
        delay=delay,
    )
    return _apply(toxics.Slicer(), args)


def limit_data(
    proxy: str, bytes: int, *, url: str = DEFAULT_URL, stream: Stream = "downstream", toxicity: float = 1.0
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Close connections once ``bytes`` bytes have passed."""
    args = toxics.LimitDataArgs(proxy=proxy, url=url, stream=stream, toxicity=toxicity, bytes=bytes)
    return _apply(toxics.LimitData(), args)


@contextlib.contextmanager
def down(proxy: str, *, url: str = DEFAULT_URL) -> Iterator[clients.ProxyInfo]:
    """Disable the proxy (connections close, new ones are refused); on exit put its ``enabled``
    back to what it was on entry."""
    with clients.Client(url) as api:
        was_enabled = api.proxy(proxy)["enabled"]
        disabled = api.update_proxy(proxy, enabled=False)
        try:
            yield disabled
        finally:
            proxies.set_enabled(api, proxy, was_enabled)


def http_abort(
    proxy: str,
    status: int = 503,
    *,
    body: str = "",
    headers: Mapping[str, str] | None = None,
    reset: bool = False,
    match: Mapping[str, Any] | None = None,
    url: str = DEFAULT_URL,
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Answer the HTTP requests ``match`` picks with ``status`` (and ``body``, ``headers``), or
    reset their connection, instead of forwarding them; ``toxicity`` is rolled per request.
    ``match``: ``method``, ``path``, ``path_prefix``, ``path_regex``, ``headers``, ``query``.
    Needs chaoskit's embedded proxy (a real Toxiproxy has no HTTP toxics)."""
    args = http_toxics.HttpAbortArgs(
        proxy=proxy,
        url=url,
        toxicity=toxicity,
        status=status,
        body=body,
        headers=dict(headers or {}),
        reset=reset,
        match=http_toxics.HttpMatch.model_validate(dict(match or {})),
    )
    return _apply(http_toxics.HttpAbort(), args)


def http_delay(
    proxy: str,
    latency: Duration,
    jitter: Duration = 0,
    *,
    match: Mapping[str, Any] | None = None,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Hold the HTTP responses ``match`` picks (``stream="upstream"``: the requests) for
    ``latency`` (± ``jitter``), rolled per request."""
    args = http_toxics.HttpDelayArgs(
        proxy=proxy,
        url=url,
        stream=stream,
        toxicity=toxicity,
        latency=latency,
        jitter=jitter,
        match=http_toxics.HttpMatch.model_validate(dict(match or {})),
    )
    return _apply(http_toxics.HttpDelay(), args)


def http_modify(
    proxy: str,
    *,
    set_headers: Mapping[str, str] | None = None,
    remove_headers: Sequence[str] = (),
    body: str | None = None,
    truncate: int | None = None,
    match: Mapping[str, Any] | None = None,
    url: str = DEFAULT_URL,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> contextlib.AbstractContextManager[clients.ToxicInfo]:
    """Set or remove headers of the HTTP responses ``match`` picks (``stream="upstream"``: of the
    requests), replace their body or truncate it to ``truncate`` bytes, with valid framing."""
    args = http_toxics.HttpModifyArgs(
        proxy=proxy,
        url=url,
        stream=stream,
        toxicity=toxicity,
        set_headers=dict(set_headers or {}),
        remove_headers=list(remove_headers),
        body=body,
        truncate=truncate,
        match=http_toxics.HttpMatch.model_validate(dict(match or {})),
    )
    return _apply(http_toxics.HttpModify(), args)
