"""The Toxiproxy-compatible HTTP API: a small asyncio HTTP/1.1 server in front of a ``listeners.Table``.

It speaks just enough HTTP for API clients: keep-alive, Content-Length and chunked request bodies,
and answers with the status codes, headers and bodies the real server sends (see docs/proxy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chaoskit.proxy import listeners

VERSION = "2.12.0"
"""The Toxiproxy API version this server implements (clients pick PATCH over POST from it)."""

MAX_BODY = 16 * 1024 * 1024
MAX_LINE = 64 * 1024
"""Bytes in one request line, header line or chunk-size line (the stream reader's limit)."""
MAX_HEADER_BYTES = 64 * 1024
"""Bytes in the header section (or the trailers) of one request."""
MAX_HEADERS = 100
"""Header lines in one request."""
IDLE_TIMEOUT = 60.0
"""Seconds an open connection may wait for the first byte of its next request."""
READ_TIMEOUT = 15.0
"""Seconds from a request's first byte to the end of its body (Toxiproxy's ReadTimeout): a client
that trickles its headers or never sends all of its body gets a 408 and is cut off."""
WRITE_TIMEOUT = 30.0
"""Seconds an answer may take to be sent to a client that doesn't read it."""
LINGER_BYTES = 256 * 1024
LINGER_TIMEOUT = 1.0
"""After refusing a request, what the client is still sending is read and dropped - at most this
much, for at most this long - so that the close doesn't reset the connection before the client
has read the answer."""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_CONTENT_LENGTH = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_STRAY_LINES = 8

log = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
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
            raise listeners.RequestError("bad request body: EOF")
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as e:
            raise listeners.RequestError(f"bad request body: {e}") from None
        except UnicodeDecodeError as e:
            raise listeners.RequestError(f"bad request body: not UTF-8 (byte {e.start})") from None
        except ValueError:  # Python's limit on the digits of an integer
            raise listeners.RequestError("bad request body: a number of more than 4300 digits") from None
        except RecursionError:
            raise listeners.RequestError("bad request body: nested too deeply") from None


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

    def __init__(self, table: listeners.Table) -> None:
        self.table = table
        self._ids = itertools.count(1)
        self._prefix = os.urandom(6).hex()
        self.writers: set[asyncio.StreamWriter] = set()
        # Routes match path segments, each percent-decoded on its own: a name may contain "/"
        # when its client encodes it as "%2F" (gorilla/mux, which decodes first, can't do that).
        self.routes: list[tuple[tuple[str | None, ...], dict[str, Handler]]] = [
            (("proxies",), {"GET": self.list_proxies, "POST": self.create_proxy}),
            (("populate",), {"POST": self.populate}),
            (("reset",), {"POST": self.reset}),
            (("version",), {"GET": self.version}),
            (("metrics",), {"*": self.metrics}),
            (
                ("proxies", None),
                {
                    "GET": self.get_proxy,
                    "POST": self.update_proxy,
                    "PATCH": self.update_proxy,
                    "DELETE": self.delete_proxy,
                },
            ),
            (("proxies", None, "toxics"), {"GET": self.list_toxics, "POST": self.create_toxic}),
            (
                ("proxies", None, "toxics", None),
                {
                    "GET": self.get_toxic,
                    "POST": self.update_toxic,
                    "PATCH": self.update_toxic,
                    "DELETE": self.delete_toxic,
                },
            ),
        ]

    def route(self, target: str) -> tuple[dict[str, Handler], list[str]] | None:
        """The handlers for ``target``'s path and the names in it, or None (404)."""
        try:
            segments = [
                urllib.parse.unquote(part, errors="strict") for part in target.split("?", 1)[0].split("/")[1:]
            ]
        except UnicodeDecodeError:
            return None  # not UTF-8 once decoded: no name can be spelled like that
        for pattern, methods in self.routes:
            if len(pattern) != len(segments):
                continue
            names: list[str] = []
            for want, got in zip(pattern, segments, strict=True):
                if want is None and got:
                    names.append(got)
                elif want != got:
                    break
            else:
                return methods, names
        return None

    async def handle(self, request: Request) -> Response:
        found = self.route(request.path)
        if found is None:
            return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        methods, names = found
        headers = {"X-Toxiproxy-Request-Id": f"{self._prefix}{next(self._ids):010d}"}
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            response = Response(
                403, b"User agent not allowed\n", {"Content-Type": "text/plain; charset=utf-8"}
            )
        elif (handler := methods.get(request.method) or methods.get("*")) is None:
            response = Response(405)
        else:
            try:
                response = await handler(request, names)
            except listeners.RequestError as e:
                response = error(e.message, e.status)
            except Exception:
                # A bug, not the client's fault: say so, keep serving, and leave the traceback.
                log.exception("chaoskit proxy: %s %s failed", request.method, request.path[:200])
                response = error("internal error (a bug in chaoskit's proxy; see its log)", 500)
        response.headers.update(headers)
        return response

    # -- handlers

    async def list_proxies(self, request: Request, _: list[str]) -> Response:
        return ok({name: proxy.to_json() for name, proxy in self.table.proxies.items()})

    async def create_proxy(self, request: Request, _: list[str]) -> Response:
        proxy = await self.table.create(request.json())
        return ok(proxy.to_json(), 201)

    async def populate(self, request: Request, _: list[str]) -> Response:
        try:
            done, failure = await self.table.populate(request.json())
        except listeners.RequestError as e:
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
        await self.table.delete(names[0])
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
                    read = await read_request(reader)
                except BadRequest as e:
                    await refuse(reader, writer, e)
                    return
                if read is None:
                    return
                request, keep_alive = read
                response = await self.handle(request)
                head_only = request.method == "HEAD"
                writer.write(render(response, keep_alive=keep_alive, head_only=head_only))
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
                if not keep_alive:
                    return
        except (ConnectionError, OSError, TimeoutError):
            return
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class BadRequest(Exception):
    """The request can't be read; ``status`` is the answer, and the connection is closed after it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, e: BadRequest) -> None:
    """Answer ``e`` and close, reading (and dropping) a bounded amount of what is still coming."""
    body = f"{e}\n".encode()
    writer.write(
        render(Response(e.status, body, {"Content-Type": "text/plain; charset=utf-8"}), keep_alive=False)
    )
    with contextlib.suppress(ConnectionError, OSError, RuntimeError, TimeoutError):
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_TIMEOUT):
            dropped = 0
            while dropped < LINGER_BYTES and (chunk := await reader.read(65536)):
                dropped += len(chunk)


async def read_request(reader: asyncio.StreamReader) -> tuple[Request, bool] | None:
    """One request from the stream and whether the connection stays open after it; None when the
    client closed, or stayed idle too long, between requests."""
    loop = asyncio.get_running_loop()
    started = False
    try:
        async with asyncio.timeout(IDLE_TIMEOUT) as deadline:
            first = await reader.readexactly(1)
            started = True
            deadline.reschedule(loop.time() + READ_TIMEOUT)
            return await _read_rest(reader, first)
    except asyncio.IncompleteReadError:
        if not started:
            return None
        raise BadRequest("the connection was closed in the middle of the request") from None
    except TimeoutError:
        if not started:
            return None
        raise BadRequest(f"the request was not received within {READ_TIMEOUT:g}s", 408) from None


async def _line(reader: asyncio.StreamReader, status: int, what: str) -> bytes:
    """One CRLF-terminated line; a longer one than the reader's limit is refused with ``status``."""
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(f"{what} longer than {MAX_LINE} bytes", status) from None


async def _read_rest(reader: asyncio.StreamReader, first: bytes) -> tuple[Request, bool]:
    line = first + await _line(reader, 414, "request line")
    for _ in range(_STRAY_LINES):  # tolerate stray CRLF between requests (RFC 9112 §2.2)
        if line != b"\r\n":
            break
        line = await _line(reader, 414, "request line")
    parts = line[:-2].split(b" ")
    if (
        len(parts) != 3
        or not _TOKEN.fullmatch(parts[0])
        or not _TARGET.fullmatch(parts[1])
        or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0")
    ):
        raise BadRequest("malformed request line: expected METHOD /path HTTP/1.1")
    method, version = parts[0].decode("ascii"), parts[2].decode("ascii")
    target = parts[1].decode("ascii")
    if target.startswith(("http://", "https://")):  # absolute form (RFC 9112 §3.2.2)
        split = urllib.parse.urlsplit(target)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    if not target.startswith("/"):
        raise BadRequest("malformed request line: the path must start with /")
    headers = await _read_fields(reader, "header")
    if "transfer-encoding" in headers:
        if headers["transfer-encoding"].strip().lower() != "chunked":
            raise BadRequest("unsupported Transfer-Encoding: only chunked is understood")
        body = await read_chunked(reader)
    else:
        length_text = headers.get("content-length", "0").strip()
        if not _CONTENT_LENGTH.fullmatch(length_text):
            raise BadRequest("bad Content-Length: expected one non-negative integer")
        if len(length_text) > len(str(MAX_BODY)) or int(length_text) > MAX_BODY:
            raise BadRequest(f"request body too large (at most {MAX_BODY} bytes)", 413)
        length = int(length_text)
        body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return Request(method, target, headers, body), keep_alive


async def _read_fields(reader: asyncio.StreamReader, what: str) -> dict[str, str]:
    """A header (or trailer) section, bounded in lines and bytes; repeated fields are joined."""
    fields: dict[str, str] = {}
    size = 0
    for _ in range(MAX_HEADERS + 1):
        raw = await _line(reader, 431, f"a {what} line")
        if raw == b"\r\n":
            return fields
        size += len(raw)
        if size > MAX_HEADER_BYTES:
            break
        name, sep, value = raw[:-2].partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(f"malformed {what} line: expected Name: value")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        # Joined as HTTP lists are, so two different Content-Lengths make an invalid one (400).
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
    raise BadRequest(
        f"request {what} fields too large (at most {MAX_HEADERS} lines, {MAX_HEADER_BYTES} bytes)", 431
    )


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await _line(reader, 400, "a chunk size line")).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_line):
            raise BadRequest("bad chunk size")
        size = int(size_line, 16)
        if size == 0:
            await _read_fields(reader, "trailer")
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequest(f"request body too large (at most {MAX_BODY} bytes)", 413)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("a chunk is not followed by CRLF")


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
