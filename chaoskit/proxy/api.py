"""The Toxiproxy-compatible HTTP API: a small asyncio HTTP/1.1 server in front of a ``proxies.Table``.

It speaks just enough HTTP for API clients: keep-alive, Content-Length and chunked request bodies,
and answers with the status codes, headers and bodies the real server sends (see docs/proxy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chaoskit.proxy import proxies

VERSION = "2.12.0"
"""The Toxiproxy API version this server implements (clients pick PATCH over POST from it)."""

MAX_BODY = 16 * 1024 * 1024
REQUEST_TIMEOUT = 60.0
"""Seconds an idle keep-alive connection may wait for its next request."""

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            raise proxies.RequestError("bad request body: EOF")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise proxies.RequestError(f"bad request body: {e}") from None


def ok(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json"})


def error(message: str, status: int) -> Response:
    body = json.dumps({"error": message, "status": status}, separators=(",", ":")).encode() + b"\n"
    return Response(
        status,
        body,
        {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


Handler = Callable[[Request, list[str]], Awaitable[Response]]


class Api:
    """Routes requests to the proxy table; one instance per server."""

    def __init__(self, table: proxies.Table) -> None:
        self.table = table
        self._ids = itertools.count(1)
        self._prefix = os.urandom(6).hex()
        self.writers: set[asyncio.StreamWriter] = set()
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/proxies"), {"GET": self.list_proxies, "POST": self.create_proxy}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/version"), {"GET": self.version}),
            (re.compile(r"/metrics"), {"*": self.metrics}),
            (
                re.compile(r"/proxies/([^/]+)"),
                {
                    "GET": self.get_proxy,
                    "POST": self.update_proxy,
                    "PATCH": self.update_proxy,
                    "DELETE": self.delete_proxy,
                },
            ),
            (re.compile(r"/proxies/([^/]+)/toxics"), {"GET": self.list_toxics, "POST": self.create_toxic}),
            (
                re.compile(r"/proxies/([^/]+)/toxics/([^/]+)"),
                {
                    "GET": self.get_toxic,
                    "POST": self.update_toxic,
                    "PATCH": self.update_toxic,
                    "DELETE": self.delete_toxic,
                },
            ),
        ]

    async def handle(self, request: Request) -> Response:
        path = urllib.parse.unquote(request.path.split("?", 1)[0])
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            headers = {"X-Toxiproxy-Request-Id": f"{self._prefix}{next(self._ids):010d}"}
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                response = Response(
                    403, b"User agent not allowed\n", {"Content-Type": "text/plain; charset=utf-8"}
                )
            elif (handler := methods.get(request.method) or methods.get("*")) is None:
                response = Response(405)
            else:
                try:
                    response = await handler(request, list(match.groups()))
                except proxies.RequestError as e:
                    response = error(e.message, e.status)
            response.headers.update(headers)
            return response
        return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})

    # -- handlers

    async def list_proxies(self, request: Request, _: list[str]) -> Response:
        return ok({name: proxy.to_json() for name, proxy in self.table.proxies.items()})

    async def create_proxy(self, request: Request, _: list[str]) -> Response:
        proxy = await self.table.create(request.json())
        return ok(proxy.to_json(), 201)

    async def populate(self, request: Request, _: list[str]) -> Response:
        try:
            done, failure = await self.table.populate(request.json())
        except proxies.RequestError as e:
            failure, done = e, []
        listed = [p.to_json() for p in done] or None
        if failure is None:
            return ok({"proxies": listed}, 201)
        response = ok({"error": failure.message, "status": failure.status, "proxies": listed}, failure.status)
        return response

    async def reset(self, request: Request, _: list[str]) -> Response:
        await self.table.reset()
        return Response(204)

    async def version(self, request: Request, _: list[str]) -> Response:
        body = f'{{"version": "{VERSION}"}}\n'.encode()
        return Response(200, body, {"Content-Type": "application/json;charset=utf-8"})

    async def metrics(self, request: Request, _: list[str]) -> Response:
        body = self.table.counters.render().encode()
        return Response(200, body, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def get_proxy(self, request: Request, names: list[str]) -> Response:
        return ok(self.table.get(names[0]).to_json())

    async def update_proxy(self, request: Request, names: list[str]) -> Response:
        self.table.get(names[0])
        proxy = await self.table.update(names[0], request.json())
        return ok(proxy.to_json())

    async def delete_proxy(self, request: Request, names: list[str]) -> Response:
        self.table.delete(names[0])
        return Response(204)

    async def list_toxics(self, request: Request, names: list[str]) -> Response:
        return ok([t.to_json() for t in self.table.get(names[0]).toxic_list()])

    async def create_toxic(self, request: Request, names: list[str]) -> Response:
        proxy = self.table.get(names[0])
        return ok(proxy.add_toxic(request.json()).to_json())

    async def get_toxic(self, request: Request, names: list[str]) -> Response:
        return ok(self.table.get(names[0]).find_toxic(names[1]).to_json())

    async def update_toxic(self, request: Request, names: list[str]) -> Response:
        proxy = self.table.get(names[0])
        proxy.find_toxic(names[1])
        return ok(proxy.update_toxic(names[1], request.json()).to_json())

    async def delete_toxic(self, request: Request, names: list[str]) -> Response:
        self.table.get(names[0]).remove_toxic(names[1])
        return Response(204)

    def close_connections(self) -> None:
        for writer in list(self.writers):
            writer.close()

    # -- HTTP/1.1

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one client connection until it closes or asks to."""
        self.writers.add(writer)
        try:
            while True:
                try:
                    request, keep_alive = await asyncio.wait_for(read_request(reader), REQUEST_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except BadRequest as e:
                    writer.write(render(Response(e.status, f"{e}\n".encode()), keep_alive=False))
                    await writer.drain()
                    return
                response = await self.handle(request)
                head_only = request.method == "HEAD"
                writer.write(render(response, keep_alive=keep_alive, head_only=head_only))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, OSError):
            return
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> tuple[Request, bool]:
    """One request from the stream, and whether the connection stays open after it."""
    line = await reader.readuntil(b"\r\n")
    while line == b"\r\n":  # tolerate stray CRLF between requests (RFC 9112 §2.2)
        line = await reader.readuntil(b"\r\n")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readuntil(b"\r\n")
        if raw == b"\r\n":
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("malformed header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await read_chunked(reader)
    else:
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise BadRequest("bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            raise BadRequest("request body too large", 413)
        body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return Request(method, target, headers, body), keep_alive


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequest("request body too large", 413)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def render(response: Response, keep_alive: bool, head_only: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
    headers = dict(response.headers)
    if response.status != 204:
        headers["Content-Length"] = str(len(response.body))
    if not keep_alive:
        headers["Connection"] = "close"
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only or response.status == 204 else head + response.body
