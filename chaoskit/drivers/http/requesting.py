"""``http.request``: one HTTP request, answered as ``{status, headers, body, json, elapsed_ms}``.

Header values may be secrets (tokens, cookies), so no error message ever carries one; the URL's
password, if any, is masked too.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, field_validator, model_validator

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

if TYPE_CHECKING:
    # ssl costs ~5 ms to import, and validate never makes a request: imported where one is made.
    import ssl

    import httpx

BODY_LIMIT = 64 * 1024
"""Characters of a response body kept in the output; the rest is cut and marked."""
READ_LIMIT = 4 * 1024 * 1024
"""Bytes of a response body read at most; a longer body is not parsed as JSON."""


def _text(value: Any) -> Any:
    # "${port}" keeps its type; headers and query values are text on the wire.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


Text = Annotated[str, BeforeValidator(_text)]


class RequestArgs(contract.Args):
    """One request: where, how, and with what."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    url: str
    """The URL, ``http://`` or ``https://``."""
    method: str = "GET"
    """The HTTP method."""
    headers: dict[str, Text] = Field(default_factory=dict)
    """Request headers; their values are never shown in errors (they may hold tokens)."""
    params: dict[str, Text | list[Text]] = Field(default_factory=dict)
    """Query parameters added to the URL."""
    json_: JsonValue = Field(default=None, alias="json")
    """A JSON request body (sets ``Content-Type: application/json``)."""
    body: str | None = None
    """A text request body; not together with ``json``."""
    timeout: Duration = 5.0
    """Give up on the request after this long (connect, send and read)."""
    verify: bool = True
    """Check the server's TLS certificate; ``false`` for self-signed test servers."""
    follow_redirects: bool = False
    """Follow 3xx answers; by default the 3xx itself is the answer."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError(f"not an HTTP method: {value!r}")
        return value.upper()

    @model_validator(mode="after")
    def _one_body(self) -> Self:
        if "json_" in self.model_fields_set and self.body is not None:
            raise ValueError("give json or body, not both")
        return self

    def content(self) -> dict[str, Any]:
        """The keyword arguments that carry the request body to httpx."""
        if "json_" in self.model_fields_set:
            return {"json": self.json_}
        if self.body is not None:
            return {"content": self.body.encode()}
        return {}

    def where(self) -> str:
        """``METHOD URL`` with any password in the URL masked: safe for messages."""
        return f"{self.method} {safe_url(self.url)}"


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def safe_cause(error: BaseException, secrets: Iterable[str]) -> str:
    """What went wrong, in words that contain none of ``secrets`` (the header values)."""
    text = str(error) or type(error).__name__
    for secret in secrets:
        # Libraries quote a bad value escaped (b'a\\nb'), so look for its printable pieces too.
        pieces = {
            secret,
            repr(secret)[1:-1],
            repr(secret.encode())[2:-1],
            *re.split(r"[^\x21-\x7e]+", secret),
        }
        if any(len(piece) >= 4 and piece in text for piece in pieces):
            return f"{type(error).__name__} (details withheld: they contain a request header value)"
    return text


def failure(args: RequestArgs, error: Exception) -> tuple[DriverError, bool]:
    """The ``DriverError`` for a request that got no answer (which URL, and why), and whether the
    cause may be chained: not when its own text holds a header value."""
    import httpx

    cause = safe_cause(error, args.headers.values())
    chain = cause == (str(error) or type(error).__name__)
    hint = None
    if isinstance(error, httpx.TimeoutException):
        message = f"{args.where()}: no answer within {args.timeout:g}s ({type(error).__name__})"
    elif isinstance(error, httpx.ConnectError):
        message = f"{args.where()}: could not connect: {cause}"
        if "CERTIFICATE_VERIFY_FAILED" in cause:
            hint = "for a self-signed test server set verify: false"
    else:
        message = f"{args.where()}: request failed: {cause}"
    return DriverError(message, hint=hint), chain


def tls(verify: bool, ctx: contract.RunContext) -> ssl.SSLContext:
    """One TLS context per run and setting: building one costs more than a local request."""
    import httpx

    return ctx.resource(f"http.tls.verify={verify}", lambda: httpx.create_ssl_context(verify=verify))


def tls_for(args: RequestArgs, ctx: contract.RunContext) -> ssl.SSLContext:
    """The TLS context for one request. Loading the CA bundle costs ~20 ms, more than a whole
    local probe; a plain ``http://`` request that follows no redirect through no proxy never uses
    TLS, so it gets an empty context, which would refuse every certificate if it ever were used."""
    import ssl
    import urllib.request

    if (
        urlsplit(args.url).scheme.lower() == "http"
        and not args.follow_redirects
        and not urllib.request.getproxies()
    ):
        return ctx.resource("http.tls.unused", lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    return tls(args.verify, ctx)


class RequestProbe(contract.Probe[RequestArgs], args=RequestArgs):
    name = "http.request"
    summary = "One HTTP request: {status, headers, body, json, elapsed_ms}."

    def run(self, args: RequestArgs, ctx: contract.RunContext) -> contract.JsonValue:
        import httpx

        with httpx.Client(verify=tls_for(args, ctx), follow_redirects=args.follow_redirects) as client:
            started = time.perf_counter()
            try:
                with client.stream(
                    args.method,
                    args.url,
                    headers=args.headers,
                    params=args.params,
                    timeout=args.timeout,
                    **args.content(),
                ) as response:
                    raw, complete = _read(response, started + args.timeout)
            except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError) as e:
                error, chain = failure(args, e)
                raise error from (e if chain else None)
            elapsed_ms = (time.perf_counter() - started) * 1000
        return answer(response, raw, complete, elapsed_ms)


def _read(response: httpx.Response, deadline: float) -> tuple[bytes, bool]:
    """The body, at most ``READ_LIMIT`` bytes, and whether that is all of it. ``deadline`` bounds
    the whole read: httpx's timeout is per socket read, which a trickling server never trips."""
    import httpx

    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.perf_counter() > deadline:
            raise httpx.ReadTimeout("the whole answer did not arrive in time", request=response.request)
        chunks.append(chunk)
        size += len(chunk)
        if size > READ_LIMIT:
            return b"".join(chunks)[:READ_LIMIT], False
    return b"".join(chunks), True


def headers_of(response: httpx.Response) -> dict[str, contract.JsonValue]:
    out: dict[str, str] = {}
    for raw_key, value in response.headers.multi_items():
        key = raw_key.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return dict(out)


def answer(response: httpx.Response, raw: bytes, complete: bool, elapsed_ms: float) -> contract.JsonValue:
    text = raw.decode(response.encoding or "utf-8", "replace")
    if not complete:
        text += f"\n[... body longer than {READ_LIMIT} bytes, not read further]"
    elif len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + f"\n[... truncated {len(text) - BODY_LIMIT} more characters]"
    parsed: contract.JsonValue = None
    if complete and "json" in response.headers.get("content-type", "").lower():
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    return {
        "status": response.status_code,
        "headers": headers_of(response),
        "body": text,
        "json": parsed,
        "elapsed_ms": round(elapsed_ms, 3),
    }


class RequestAction(contract.Action[RequestArgs], args=RequestArgs):
    """The same request as a one-shot change (a Chaos Toolkit http *action*, a webhook, an admin call)."""

    name = "http.request"
    summary = "One HTTP request as an action: {status, headers, body, json, elapsed_ms}."

    def run(self, args: RequestArgs, ctx: contract.RunContext) -> contract.ActionResult:
        return contract.ActionResult(output=RequestProbe().run(args, ctx))
