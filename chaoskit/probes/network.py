"""Probes of services over the network: one HTTP request, an HTTP load, a TCP connect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from chaoskit.probes import calling


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float | str = 5.0,
    verify: bool = True,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    in_: Sequence[JsonValue] | None = None,
    **options: Any,
) -> calling.Result:
    """One HTTP request. ``.value`` is the status; ``.output`` has ``status``, ``headers``, ``body``,
    ``json``, ``elapsed_ms``. Other ``http.request`` arguments (``params``, ``json``, ``body``,
    ``follow_redirects``) go in ``options``.

    >>> probes.http_request("http://127.0.0.1:8080/health", between=(200, 299)).ok
    True
    """
    from chaoskit.drivers.http import requesting

    arguments = {"url": url, "method": method, "headers": dict(headers or {}), "timeout": timeout}
    return calling.call(
        requesting.RequestProbe(),
        {**arguments, "verify": verify, **options},
        headline="status",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between, "in_": in_},
    )


def http_load(
    url: str,
    *,
    requests: int | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    duration: float | str | None = None,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> calling.Result:
    """Many requests (a count, a rate, a duration). ``.value`` is ``success_ratio``; ``.output`` has
    ``latency_ms`` (``p50``, ``p90``, ``p99``, ``p99_9``, ...), ``errors`` by kind, ``rate_rps``.

    >>> r = probes.http_load("http://127.0.0.1:8080/", requests=200, concurrency=8, above=0.99)
    >>> r.output["latency_ms"]["p99"] < 200
    True
    """
    from chaoskit.drivers.http import traffic

    arguments = {"url": url, "requests": requests, "concurrency": concurrency, "rate": rate}
    return calling.call(
        traffic.LoadProbe(),
        {**arguments, "duration": duration, **options},
        headline="success_ratio",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )


def tcp_connect(
    host: str,
    port: int,
    *,
    timeout: float | str = 5.0,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
) -> calling.Result:
    """Open (and close) a TCP connection. ``.value`` is ``connected``; by default ``.ok`` means it
    connected. ``.output`` has ``elapsed_ms`` and the ``error`` when it did not.

    >>> probes.tcp_connect("127.0.0.1", 5432).ok
    True
    """
    from chaoskit.drivers.tcp import ports

    return calling.call(
        ports.Connect(),
        {"host": host, "port": port, "timeout": timeout},
        headline="connected",
        expect=expect,
        shortcuts={"equals": equals},
        default={"equals": True},
    )
