"""``http.load``: many requests, by count and concurrency or at a steady rate, summarised as a
success ratio, errors by kind and latency percentiles - for tail-latency SLOs under a fault.

Always bounded: at most ``requests`` requests (or ``rate * duration``), never longer than
``duration`` (plus one request timeout), and it stops soon after the run is cancelled.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.http import requesting
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

if TYPE_CHECKING:
    import ssl

    import httpx

    # asyncio costs ~15 ms to import, and validation never sends a request: imported by run().
    from chaoskit.drivers.http import connections, generating, tallies

DEFAULT_REQUESTS = 100
OPEN_LOOP_CONNECTIONS = 256
DURATION_ONLY_CAP = 1_000_000
"""With only a duration, the count bound: a safety net, not a target."""
TIME_CAP = 300.0
"""Without a duration, no request starts after this many seconds: a safety net, not a target."""


class LoadArgs(requesting.RequestArgs):
    requests: int | None = Field(default=None, ge=1)
    """How many requests in all; default 100, or ``rate * duration`` when both are given."""
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Connections, one request in flight on each (no pipelining). Without ``rate``: each sends
    its next request as soon as the last is answered; default 4. With ``rate``: the most opened,
    one more whenever a request is due and none is free; default 256."""
    rate: float | None = Field(default=None, gt=0)
    """Start requests at this many per second; latency then counts from each request's scheduled
    start, so a stalled server shows up as latency rather than as fewer requests. A generator that
    cannot keep up says so (``generator_saturated``) rather than blame its backlog on the server."""
    duration: Duration | None = None
    """Stop starting requests after this long; without it, after 5 minutes at most (a safety net)."""
    expect_status: int | list[int] | None = None
    """Statuses that count as success; default any 2xx or 3xx."""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be more than 0")
        return self

    def total(self) -> int:
        if self.requests is not None:
            return self.requests
        if self.duration is not None:
            return math.ceil(self.rate * self.duration) if self.rate is not None else DURATION_ONLY_CAP
        return DEFAULT_REQUESTS

    def workers(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return OPEN_LOOP_CONNECTIONS if self.rate is not None else 4

    def accepts(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 400
        allowed = self.expect_status if isinstance(self.expect_status, list) else [self.expect_status]
        return status in allowed


def error_kind(error: Exception) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect"
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol"
    if isinstance(error, httpx.NetworkError):
        return "network"
    return "other"


class LoadProbe(contract.Probe[LoadArgs], args=LoadArgs):
    name = "http.load"
    summary = (
        "Send many requests (count + concurrency, or rate + duration): success ratio, errors, p50..p99.99."
    )

    def run(self, args: LoadArgs, ctx: contract.RunContext) -> contract.JsonValue:
        total, workers = args.total(), min(args.workers(), args.total())
        started = time.perf_counter()
        stop_at = started + (args.duration if args.duration is not None else TIME_CAP)
        from chaoskit.drivers.http import generating, latencies, tallies

        tally = tallies.Tally(service=latencies.Histogram() if args.rate is not None else None)
        protocol, make, close = _senders(args, ctx, tally)
        tick = generating.tick_for(args.timeout)

        async def load() -> generating.Outcome:
            try:
                if args.rate is None:
                    return await generating.closed_loop(
                        make,
                        total=total,
                        workers=workers,
                        stop_at=stop_at,
                        cancel=ctx.cancel,
                        tick=tick,
                        tally=tally,
                    )
                return await generating.open_loop(
                    make,
                    total=total,
                    rate=args.rate,
                    most=workers,
                    stop_at=stop_at,
                    cancel=ctx.cancel,
                    tick=tick,
                    timeout=args.timeout,
                    tally=tally,
                )
            finally:
                await close()

        return _output(args, generating.run(load), protocol)


def _output(args: LoadArgs, outcome: generating.Outcome, protocol: str) -> contract.JsonValue:
    tally, elapsed, saturated = outcome.tally, outcome.elapsed, outcome.saturated
    errors = tally.errors(args.accepts)
    done = tally.requests
    measured = tally.latency
    if saturated and tally.service is not None:
        # A generator that fell behind would report its own backlog as the server's latency: count
        # only from writing each request to its answer, and leave out requests it never sent.
        measured = tally.service
        done -= tally.expired
        if tally.expired:
            errors["timeout"] -= tally.expired
            errors = {kind: n for kind, n in errors.items() if n}
    successes = tally.successes(args.accepts)
    out: dict[str, contract.JsonValue] = {
        "requests": done,
        "successes": successes,
        "success_ratio": round(successes / done, 6) if done else 0.0,
        "errors": dict(errors),
        "statuses": dict(tally.statuses()),
        "latency_ms": measured.summary(),
        "latency_from": "due" if args.rate is not None and not saturated else "sent",
        "histogram": measured.export(),
        "duration_s": round(elapsed, 3),
        "rate_rps": round(done / elapsed, 3) if elapsed > 0 else 0.0,
        "target_rps": args.rate,
        "generator_saturated": saturated,
        "connections": outcome.connections,
        "protocol": protocol,
    }
    if outcome.lag is not None:
        lag = outcome.lag.summary()
        out["schedule_lag_ms"] = {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]}
        out["unsent"] = tally.expired if saturated else 0
        out["skipped"] = outcome.skipped
    return out


def _check_headers(args: LoadArgs) -> None:
    for name, value in args.headers.items():
        if not name or not all(33 <= ord(c) < 127 and c not in '()<>@,;:\\"/[]?={}' for c in name):
            raise DriverError(f"http.load {args.where()}: header name {name!r} is not a valid HTTP token")
        if any(c in value for c in "\r\n\0") or not value.isascii():
            # The value may be a secret: name the header, never show the value.
            raise DriverError(
                f"http.load {args.where()}: the value of header {name!r} has a line break, a NUL"
                " or a character outside ASCII",
                hint="header values are one line of ASCII (percent-encode anything else)",
            )


def _senders(
    args: LoadArgs, ctx: contract.RunContext, tally: tallies.Tally
) -> tuple[str, Callable[[], connections.Sender], Callable[[], Awaitable[None]]]:
    """The protocol spoken, a factory of senders (one per connection), and what closes what they
    share (awaited on the load's own loop, at its end)."""
    from chaoskit.drivers.http import connections, targets

    _check_headers(args)
    https = urlsplit(args.url).scheme.lower() == "https"
    http2 = https and _h2_installed() and _offers_h2(args, ctx)
    if args.follow_redirects or http2:
        return ("HTTP/2" if http2 else "HTTP/1.1", *_httpx_senders(args, ctx, tally, http2))
    body: bytes | None = None
    content_type: str | None = None
    if "json_" in args.model_fields_set:
        body, content_type = targets.json_body(args.json_), "application/json"
    elif args.body is not None:
        body = args.body.encode()
    if any(k.lower() == "content-type" for k in args.headers):
        content_type = None
    target = targets.target_of(
        url=args.url,
        method=args.method,
        headers=dict(args.headers),
        params={k: list(v) if isinstance(v, list) else v for k, v in args.params.items()},
        body=body,
        content_type=content_type,
        timeout=args.timeout,
        tls=_tls(args.verify, ctx, ["http/1.1"]) if https else None,
    )
    return "HTTP/1.1", lambda: connections.Connection(target, tally), _nothing


async def _nothing() -> None:
    """Each connection closes itself."""


def _h2_installed() -> bool:
    return importlib.util.find_spec("h2") is not None


def _tls(verify: bool, ctx: contract.RunContext, alpn: list[str]) -> ssl.SSLContext:
    def make() -> ssl.SSLContext:
        import httpx

        context = httpx.create_ssl_context(verify=verify)
        context.set_alpn_protocols(alpn)
        return context

    return ctx.resource(f"http.load.tls.verify={verify}.alpn={','.join(alpn)}", make)


def _offers_h2(args: LoadArgs, ctx: contract.RunContext) -> bool:
    """Whether the server picks HTTP/2 when offered it (one TLS handshake, before the load)."""
    import socket

    parts = urlsplit(args.url)
    context = _tls(args.verify, ctx, ["h2", "http/1.1"])
    try:
        with (
            socket.create_connection((parts.hostname or "", parts.port or 443), timeout=args.timeout) as raw,
            context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
        ):
            return tls.selected_alpn_protocol() == "h2"
    except (OSError, ValueError):
        return False  # the load itself then reports what fails, request by request


def _httpx_senders(
    args: LoadArgs, ctx: contract.RunContext, tally: tallies.Tally, http2: bool
) -> tuple[Callable[[], connections.Sender], Callable[[], Awaitable[None]]]:
    import httpx

    from chaoskit.drivers.http import connections

    clients: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:
        # Made on first use, inside the load's own event loop.
        if not clients:
            workers = args.workers()
            clients.append(
                httpx.AsyncClient(
                    verify=requesting.tls(args.verify, ctx),
                    follow_redirects=args.follow_redirects,
                    http2=http2,
                    limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
                )
            )
        return clients[0]

    content = args.content()

    def make() -> connections.Sender:
        shared = client()

        def request() -> Awaitable[httpx.Response]:
            return shared.request(
                args.method,
                args.url,
                headers=args.headers,
                params=args.params,
                timeout=args.timeout,
                **content,
            )

        return connections.HttpxConnection(shared, request, tally)

    async def close() -> None:
        for shared in clients:
            await shared.aclose()

    return make, close
