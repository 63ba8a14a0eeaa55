"""The proxies a server holds: listeners, their toxics, their live connections, and byte counters.

Everything here runs on the server's event loop thread; the HTTP API calls into ``Table``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoskit.proxy import connections, metrics, splicing, toxic_types
from chaoskit.proxy.http import http_toxic_types, rules, sessions, tls

MAX_SPLICED = 256
"""Connections per proxy piped by splice threads (two threads each); more take the event loop."""

DIAL_TIMEOUT = 30.0
"""Seconds to wait for the upstream to accept; the client is closed if it doesn't."""

log = logging.getLogger("chaoskit.proxy")
RequestError = toxic_types.RequestError
shown = toxic_types.shown


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    family: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def split(hostport: str, what: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port``; a malformed one is the client's mistake (400)."""
    host, sep, port = hostport.rpartition(":")
    # Not str.isdigit(): it accepts '²', which int() refuses, and any number of digits.
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise RequestError(f"{what} {hostport[:80]!r} is not host:port (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


async def resolve(listen: str) -> Address:
    """The address ``listen`` binds to. An empty host means 127.0.0.1, never all interfaces."""
    host, port = split(listen, "listen") if listen else ("", 0)
    host = host or "127.0.0.1"
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise RequestError(f"listen tcp {listen}: lookup {host}: {e.strerror or e}", status=500) from e
    family, _, _, _, sockaddr = infos[0]
    return Address(str(sockaddr[0]), int(sockaddr[1]), family)


def raise_nofile_limit() -> None:
    """Let the server hold thousands of connections: soft RLIMIT_NOFILE up to the hard limit."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )


class Proxy:
    """One listener forwarding to one upstream, with toxics per direction."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        rng: random.Random,
        counters: metrics.Counters,
        *,
        termination: tls.Termination | None = None,
    ) -> None:
        self.name = name
        self.tls = termination
        """TLS terminated here (``http/tls.py``): every connection then takes the event loop."""
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.counters = counters
        self.splice = True
        """Pipe toxic-free connections with splice(2) (Linux); the benchmark compares both paths."""
        self._http_rules: list[rules.Rule] | None = None
        self.toxics: dict[str, list[toxic_types.Toxic]] = {"upstream": [], "downstream": []}
        """The toxics by their stream, in creation order (as the API lists them)."""
        self.chains: dict[str, list[toxic_types.Toxic]] = {"upstream": [], "downstream": []}
        """The toxics each direction's bytes go through: its own, then the other stream's
        two-way toxics (``Toxic.both_ways``). Rebuilt on every change, read for every chunk."""
        self.connections: set[connections.Connection | splicing.SplicedConnection] = set()
        self.accepted = 0
        """Clients accepted so far (including those still waiting for their upstream)."""
        self._address: Address | None = None
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._dials: set[asyncio.Task[None]] = set()
        self._spliced = 0

    # -- lifecycle

    async def start(self) -> None:
        if self._listener is not None:
            return
        address = self._address or await resolve(self.listen)
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            reason = os.strerror(e.errno) if e.errno else str(e)
            if e.errno == errno.EADDRINUSE:
                reason = "address already in use"
            raise RequestError(f"listen tcp {address}: bind: {reason}", status=500) from e
        bound = sock.getsockname()
        self._address = Address(str(bound[0]), int(bound[1]), address.family)
        self.listen = str(self._address)
        self._listener = sock
        self._accepting = asyncio.get_running_loop().create_task(self._accept(sock))
        self.enabled = True

    def stop(self) -> None:
        """Stop listening and close every connection (clients see EOF)."""
        self.enabled = False
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for task in list(self._dials):
            task.cancel()
        for connection in list(self.connections):
            connection.close()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await asyncio.sleep(0.1)  # out of descriptors: let connections close first
                    continue
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            self.accepted += 1
            client.setblocking(False)
            task = loop.create_task(self._dial(client))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)

    async def _dial(self, client: socket.socket) -> None:
        # Each dial is its own task, so a slow upstream never holds up other accepts.
        loop = asyncio.get_running_loop()
        upstream: socket.socket | None = None
        try:
            host, port = split(self.upstream, "upstream")
            infos = await loop.getaddrinfo(host or "127.0.0.1", port, type=socket.SOCK_STREAM)
            family, _, _, _, address = infos[0]
            upstream = socket.socket(family, socket.SOCK_STREAM)
            upstream.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(upstream, address), DIAL_TIMEOUT)
        except (OSError, TimeoutError, RequestError, asyncio.CancelledError) as e:
            client.close()
            if upstream is not None:
                upstream.close()
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if (
            splicing.AVAILABLE
            and self.splice
            and self.tls is None
            and not self.toxic_list()
            and self._spliced < MAX_SPLICED
        ):
            spliced = splicing.SplicedConnection(client, upstream, self._splice_finished)
            self.connections.add(spliced)
            self._spliced += 1
            if spliced.start():
                return
            self._spliced -= 1
            self.connections.discard(spliced)
        await self._attach(client, upstream, reset_capable=any(t.resets for t in self.toxic_list()))

    async def _attach(
        self,
        client: socket.socket,
        upstream: socket.socket,
        reset_capable: bool,
        counts: dict[str, tuple[int, int]] | None = None,
        ended: frozenset[str] = frozenset(),
    ) -> None:
        connection = connections.Connection(owner=self, reset_capable=reset_capable)
        if any(isinstance(t, http_toxic_types.HttpToxic) for t in self.toxic_list()):
            # Bytes the splice path moved before a toxic arrived: the session joins mid-stream.
            connection.http = self.http_session(fresh=not any(r for r, _ in (counts or {}).values()))
        self.connections.add(connection)
        await connection.attach(client, upstream, counts, ended, self._tls_contexts())

    def _tls_contexts(self) -> connections.Tls | None:
        if self.tls is None:
            return None
        name = self.tls.server_hostname(split(self.upstream, "upstream")[0] or "127.0.0.1")
        return connections.Tls(self.tls.server, self.tls.client, name)

    def _splice_finished(self, spliced: splicing.SplicedConnection) -> None:
        self._spliced -= 1
        if spliced.closed:
            self.connection_closed(spliced, spliced.counts())
            return
        # A toxic arrived: the event loop takes the sockets over and runs the toxics.
        self.connections.discard(spliced)
        task = asyncio.get_running_loop().create_task(
            self._attach(
                spliced.client,
                spliced.upstream,
                reset_capable=False,
                counts=spliced.counts(),
                ended=spliced.ended(),
            )
        )
        self._dials.add(task)
        task.add_done_callback(self._dials.discard)

    def connection_closed(self, connection: object, counts: dict[str, tuple[int, int]]) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            for direction, (received, sent) in counts.items():
                self.counters.add((direction, self.name, self.listen, self.upstream), received, sent)

    def tls_failed(self, side: str, error: OSError) -> None:
        failed = self.counters.http.tls_failed
        if (self.name, side) not in failed:  # once per proxy and side: a port scan mustn't flood the log
            log.warning(
                "chaoskit proxy %r: TLS with the %s failed: %s; %s", self.name, side, error, tls.FIX[side]
            )
        failed[self.name, side] = failed.get((self.name, side), 0) + 1

    # -- toxics

    def toxic_list(self) -> list[toxic_types.Toxic]:
        return [*self.toxics["upstream"], *self.toxics["downstream"]]

    def find_toxic(self, name: str) -> toxic_types.Toxic:
        for toxic in self.toxic_list():
            if toxic.name == name:
                return toxic
        raise RequestError("toxic not found", status=404)

    def add_toxic(self, body: object) -> toxic_types.Toxic:
        toxic = toxic_types.build(body, {t.name for t in self.toxic_list()})
        self.toxics[toxic.direction].append(toxic)
        self._notify(toxic, removed=False)
        return toxic

    def update_toxic(self, name: str, body: object) -> toxic_types.Toxic:
        toxic = self.find_toxic(name)
        toxic.toxicity, toxic.attributes = toxic_types.update(toxic, body)
        self._notify(toxic, removed=False)
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        self.toxics[toxic.direction].remove(toxic)
        self._notify(toxic, removed=True)

    def _notify(self, toxic: toxic_types.Toxic, removed: bool) -> None:
        self._http_rules = None
        for direction, other in (("upstream", "downstream"), ("downstream", "upstream")):
            self.chains[direction] = [
                *self.toxics[direction],
                *(t for t in self.toxics[other] if t.both_ways),
            ]
        for connection in list(self.connections):
            if isinstance(connection, splicing.SplicedConnection):
                if not removed:
                    connection.move()
                continue
            if isinstance(toxic, http_toxic_types.HttpToxic) and not removed and connection.http is None:
                fresh = not any(link.received for link in connection.links.values())
                connection.http = self.http_session(fresh)
            connection.toxic_changed(toxic, removed)
            if removed and connection.http is not None and not self.http_rules():
                connection.end_http()

    def http_rules(self) -> list[rules.Rule]:
        """The http_* toxics as sessions use them, read for every request (so changes act at once);
        made again after every change of the toxics (``_notify``)."""
        if self._http_rules is None:
            self._http_rules = [
                t.rule() for t in self.toxic_list() if isinstance(t, http_toxic_types.HttpToxic)
            ]
        return self._http_rules

    def http_session(self, fresh: bool) -> sessions.Session:
        """An HTTP view of one connection; ``fresh`` if no byte has passed yet (else it joins at
        the next request it recognises)."""
        return sessions.Session(self.name, self.http_rules, self.rng, self.counters.http, fresh=fresh)

    def to_json(self) -> dict[str, Any]:
        shown = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxic_list()],
        }
        if self.tls is not None:
            shown["tls"] = self.tls.to_json()
        return shown


_Entry = tuple[str, str, str, bool, tls.Termination | None]


def _fields(body: object, index: int | None = None) -> _Entry:
    """name, listen, upstream, enabled, tls of a create/populate entry, checked in the real order."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    at = f" at proxy {index}" if index is not None else ""
    name, listen, upstream, enabled = (
        body.get("name"),
        body.get("listen"),
        body.get("upstream"),
        body.get("enabled"),
    )
    for field, value in (("name", name), ("listen", listen), ("upstream", upstream)):
        if value is not None and not isinstance(value, str):
            raise RequestError(f"bad request body: {field} must be a string, got {shown(value)}")
    if enabled is not None and not isinstance(enabled, bool):
        raise RequestError(f"bad request body: enabled must be true or false, got {shown(enabled)}")
    if not name:
        raise RequestError(f"missing required field: name{at}")
    if not upstream:
        raise RequestError(f"missing required field: upstream{at}")
    toxic_types.check_name(name, f"proxy name{at}")
    if listen:
        split(listen, f"listen{at}")
    try:
        termination = tls.parse(body.get("tls"))
    except tls.Invalid as e:
        raise RequestError(f"bad request body: {e}{at}") from None
    return str(name), str(listen or ""), str(upstream), enabled is not False, termination


class Table:
    """Every proxy of one server, by name, in creation order."""

    def __init__(self, seed: int | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.counters = metrics.Counters()
        self.rng = random.Random(seed)
        self.changing = asyncio.Lock()
        """Held by every change that awaits (a resolve, a bind) so that no other change of the
        table interleaves with it: two creates of one name would both bind, and one listener
        would be orphaned; a delete in the middle of an update would be undone by its bind."""

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise RequestError("proxy not found", status=404) from None

    async def create(self, body: object) -> Proxy:
        entry = _fields(body)
        async with self.changing:
            if entry[0] in self.proxies:
                raise RequestError("proxy already exists", status=409)
            return await self._add(*entry)

    async def _add(
        self, name: str, listen: str, upstream: str, enabled: bool, termination: tls.Termination | None
    ) -> Proxy:
        proxy = Proxy(
            name, listen or "127.0.0.1:0", upstream, self.rng, self.counters, termination=termination
        )
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def populate(self, body: object) -> tuple[list[Proxy], RequestError | None]:
        """Create or replace each listed proxy; what was applied, and the error that stopped it."""
        if not isinstance(body, list):
            raise RequestError("bad request body: expected a JSON array of proxies")
        entries = [_fields(entry, i) for i, entry in enumerate(body, start=1)]
        async with self.changing:
            return await self._populate(entries)

    async def _populate(self, entries: list[_Entry]) -> tuple[list[Proxy], RequestError | None]:
        done: list[Proxy] = []
        for name, listen, upstream, enabled, termination in entries:
            try:
                existing = self.proxies.get(name)
                if existing is not None:
                    same = upstream == existing.upstream and termination == existing.tls
                    if same and await self._same_listen(listen, existing):
                        done.append(existing)
                        continue
                    existing.stop()
                    del self.proxies[name]
                done.append(await self._add(name, listen, upstream, enabled, termination))
            except RequestError as e:
                return done, e
        return done, None

    @staticmethod
    async def _same_listen(listen: str, proxy: Proxy) -> bool:
        if listen == proxy.listen:
            return True
        try:
            return str(await resolve(listen)) == proxy.listen
        except RequestError:
            return False

    async def update(self, name: str, body: object) -> Proxy:
        async with self.changing:
            return await self._update(name, body)

    async def _update(self, name: str, body: object) -> Proxy:
        proxy = self.get(name)
        if not isinstance(body, Mapping):
            raise RequestError("bad request body: expected a JSON object")
        listen, upstream, enabled = body.get("listen"), body.get("upstream"), body.get("enabled")
        current_tls = proxy.tls.to_json() if proxy.tls is not None else None
        if body.get("tls", current_tls) != current_tls:
            raise RequestError("bad request body: tls is set at create: delete the proxy and create it again")
        for field, value in (("listen", listen), ("upstream", upstream)):
            if value is not None and not isinstance(value, str):
                raise RequestError(f"bad request body: {field} must be a string, got {shown(value)}")
        if enabled is not None and not isinstance(enabled, bool):
            raise RequestError(f"bad request body: enabled must be true or false, got {shown(enabled)}")
        new_address = None
        if listen and listen != proxy.listen:
            new_address = await resolve(listen)  # unresolvable: 500 and nothing changes
            if str(new_address) == proxy.listen:
                new_address = None
        changed = new_address is not None or (bool(upstream) and upstream != proxy.upstream)
        want = proxy.enabled if enabled is None else enabled
        if changed:
            proxy.stop()
            if new_address is not None:
                proxy._address = new_address
                proxy.listen = str(new_address)
            if upstream:
                proxy.upstream = upstream
        if want and not proxy.enabled:
            await proxy.start()
        elif not want and proxy.enabled:
            proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        async with self.changing:
            self.get(name).stop()
            del self.proxies[name]

    async def reset(self) -> None:
        async with self.changing:
            await self._reset()

    async def _reset(self) -> None:
        for proxy in list(self.proxies.values()):
            if not proxy.enabled:
                await proxy.start()
            for toxic in proxy.toxic_list():
                proxy.remove_toxic(toxic.name)

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
