"""A proxied connection: the client's socket and the upstream's, joined by two ``links.Link``.

It takes over two connected sockets (from the accept loop, or from the splice path when a toxic
arrives), sets up TLS if the proxy terminates it, and closes both sides together: orderly, or
with a reset when a toxic asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Protocol

from chaoskit.proxy import toxic_types
from chaoskit.proxy.http import sessions
from chaoskit.proxy.links import Link
from chaoskit.proxy.sides import Side

_LINGER_RESET = struct.pack("ii", 1, 0)
HTTP_REST_CHECK = 0.1
"""Seconds between checks whether a connection whose proxy lost its last http_* toxic can stop
being read as HTTP (``Connection.end_http``)."""
HTTP_LINGER = 1.0
"""Seconds an http_abort that ends a connection keeps reading (and dropping) what the client still
sends after the answer, so that the close doesn't reset the connection before the answer is read."""


class Owner(Protocol):
    """What a connection needs from the proxy it belongs to."""

    chains: dict[str, list[toxic_types.Toxic]]
    """The toxics each direction's bytes go through, in order."""
    rng: random.Random

    def connection_closed(self, connection: object, counts: dict[str, tuple[int, int]]) -> None:
        """``connection`` is gone; ``counts`` are its (received, sent) bytes per direction."""

    def tls_failed(self, side: str, error: OSError) -> None:
        """TLS with the ``client`` or the ``upstream`` could not be set up; the connection is closed."""


@dataclass(frozen=True)
class Tls:
    """TLS on a connection's sockets: ``server`` with the client, ``client`` (if any) with the
    upstream, whose certificate must name ``upstream_name``."""

    server: ssl.SSLContext
    client: ssl.SSLContext | None
    upstream_name: str | None


@dataclass(eq=False)
class Connection:
    """A client socket and its upstream socket, joined by two links."""

    owner: Owner
    reset_capable: bool
    """A reset_peer toxic existed at accept, so its close is a RST (SO_LINGER 0), as in the real server."""
    client: Side = field(init=False)
    server: Side = field(init=False)
    links: dict[str, Link] = field(init=False, default_factory=dict)
    shared: dict[str, tuple[toxic_types.Toxic, object]] = field(init=False, default_factory=dict)
    """Per-connection state of toxics, by name, for both links (``Link.shared``)."""
    closed: bool = field(init=False, default=False)
    http: sessions.Session | None = field(init=False, default=None)
    """Set while the proxy has http_* toxics: both links' bytes go through it (see http/sessions.py)."""

    def __post_init__(self) -> None:
        self.client = Side(self, "client")
        self.server = Side(self, "server")
        self.links["upstream"] = Link(self, "upstream", self.client, self.server)
        self.links["downstream"] = Link(self, "downstream", self.server, self.client)
        self._tasks: list[asyncio.Task[None]] = []

    def reading(self, side: Side) -> Link:
        return self.links["upstream" if side is self.client else "downstream"]

    def writing(self, side: Side) -> Link:
        return self.links["downstream" if side is self.client else "upstream"]

    def side_ready(self, side: Side) -> None:
        transport = side.transport
        assert transport is not None
        if side is self.client:
            # Hold the client's bytes until the upstream is dialled.
            transport.pause_reading()

    async def attach(
        self,
        client: socket.socket,
        upstream: socket.socket,
        counts: dict[str, tuple[int, int]] | None = None,
        ended: frozenset[str] = frozenset(),
        tls: Tls | None = None,
    ) -> None:
        """Take over two connected sockets (from the accept loop or the splice path) and pipe them.

        ``counts`` carries the bytes a previous path already moved, for the metrics; ``ended`` the
        directions whose EOF it already passed on (shutting the destination's write side again
        would fail and take the connection down)."""
        loop = asyncio.get_running_loop()
        for direction, (received, sent) in (counts or {}).items():
            self.links[direction].received += received
            self.links[direction].sent += sent
        for direction in ended:
            self.links[direction].done = True
        try:
            if tls is None:
                await loop.connect_accepted_socket(lambda: self.client, client)
                await loop.connect_accepted_socket(lambda: self.server, upstream)
            else:  # handshakes (ssl.SSLError is an OSError, a timeout too) before any byte moves
                side = "client"
                await loop.connect_accepted_socket(lambda: self.client, client, ssl=tls.server)
                side = "upstream"
                await loop.create_connection(
                    lambda: self.server, sock=upstream, ssl=tls.client, server_hostname=tls.upstream_name
                )
        except OSError as e:
            if tls is not None:
                self.owner.tls_failed(side, e)
            for sock in (client, upstream):
                sock.close()
            self.close()
            return
        if self.closed:
            self.closed = False  # closed while attaching: close what is attached now
            self.close()
            return
        self.start()

    def start(self) -> None:
        """Both sockets are connected: begin piping."""
        for link in self.links.values():
            link.task = asyncio.get_running_loop().create_task(link.run())
            self._tasks.append(link.task)
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def toxic_changed(self, toxic: toxic_types.Toxic, removed: bool) -> None:
        if removed:
            self.shared.pop(toxic.name, None)
        for link in self.links.values() if toxic.both_ways else [self.links[toxic.direction]]:
            link.changed(toxic, removed)

    def end_http(self) -> None:
        """The proxy's last http_* toxic is gone: stop reading this connection as HTTP as soon as
        nothing its session decided is under way (usually at once), so that its bytes take the
        TCP path again. Checked again every ``HTTP_REST_CHECK`` s until then, or until closed."""
        http = self.http
        if http is None or self.closed:
            return
        if any(t.kind.startswith("http_") for chain in self.owner.chains.values() for t in chain):
            return  # an http_* toxic came back: the session goes on
        if http.at_rest() and all(link.quiet() for link in self.links.values()):
            self.http = None
            return
        asyncio.get_running_loop().call_later(HTTP_REST_CHECK, self.end_http)

    def linger(self) -> None:
        """End the connection after an HTTP answer that closes it: the client gets EOF after the
        answer and, a moment later (or when it closes first), the full close."""
        transport = self.client.transport
        if transport is not None and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        asyncio.get_running_loop().call_later(HTTP_LINGER, self.close)

    def link_done(self) -> None:
        if all(link.done for link in self.links.values()):
            self.close()

    def close(self, reset: bool = False) -> None:
        """Close both sockets now (a RST if ``reset`` and SO_LINGER 0 was set at accept)."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for side in (self.client, self.server):
            if side.transport is not None:
                if reset and self.reset_capable:
                    sock = side.transport.get_extra_info("socket")
                    with contextlib.suppress(OSError, AttributeError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    side.transport.abort()
                else:
                    side.transport.close()
        self.owner.connection_closed(
            self, {direction: (link.received, link.sent) for direction, link in self.links.items()}
        )
