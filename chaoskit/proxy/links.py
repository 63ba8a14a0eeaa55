"""The data plane: one client connection piped to its upstream, through each direction's toxics.

A connection has two one-way links, ``upstream`` (client → server) and ``downstream``. While a
link has no toxic, bytes go straight from one transport to the other inside the event loop's
read callback (no per-chunk task, no copy); as soon as a toxic is present they queue up with their
read time and a per-link task runs them through the toxics, in the order they were added. The
toxic list is read afresh for every chunk, so adding, changing or removing a toxic acts on open
connections; a toxic that is waiting (latency, bandwidth, slicer, slow_close) wakes up on any
change and, if it was removed, forwards what it holds at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from chaoskit.proxy import toxics

QUEUE_CHUNKS = 1024
"""Chunks a link may hold ahead of its toxics before it stops reading (the latency toxic's buffer)."""

_LINGER_RESET = struct.pack("ii", 1, 0)


class Owner(Protocol):
    """What a connection needs from the proxy it belongs to."""

    toxics: dict[str, list[toxics.Toxic]]
    rng: random.Random

    def connection_closed(self, connection: object, counts: dict[str, tuple[int, int]]) -> None:
        """``connection`` is gone; ``counts`` are its (received, sent) bytes per direction."""


class Closing(Exception):
    """A toxic decided the connection ends now (limit_data, timeout, reset_peer)."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__("closing")
        self.reset = reset


@dataclass
class Chunk:
    """Bytes on their way through a link's toxics, with two clocks (``time.monotonic()``).

    A link runs its toxics one chunk at a time, where Toxiproxy runs each toxic in its own
    goroutine so that one holds a chunk while the next holds another. The two times let the
    serial chain keep the pipelined timing: every toxic works out when it would release a chunk
    from these times, and sleeps only until then (not at all if that time has passed).
    """

    data: bytes
    at: float
    """The chunk's timestamp: when the bytes were read, moved on by each latency toxic by the
    latency it applied (Toxiproxy's ``StreamChunk.Timestamp``). A latency toxic releases a chunk at
    ``at`` + its latency, so stacked latency toxics add up; bandwidth and slicer pieces keep it."""
    ready: float
    """When the previous toxic handed the chunk on, had each toxic run on its own: a toxic starts
    on a chunk at ``ready`` or when it is done with the previous one, whichever is later, so a
    bandwidth toxic keeps its pace while a latency toxic after it holds the slices."""


_EOF = Chunk(b"", -1.0, -1.0)

# uvloop's loop.time() ticks in whole milliseconds; the latency toxic needs better than that.
now = time.monotonic
Stage = Callable[[Chunk], Awaitable[None]]


class Side(asyncio.Protocol):
    """One socket of a connection: the client's or the upstream's."""

    def __init__(self, connection: Connection, role: str) -> None:
        self.connection = connection
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self._drained: asyncio.Event | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are one in behaviour.
        self.transport = cast(asyncio.Transport, transport)
        self.connection.side_ready(self)

    def data_received(self, data: bytes) -> None:
        self.connection.reading(self).feed(data)

    def eof_received(self) -> bool:
        self.connection.reading(self).feed_eof()
        return True  # keep our write side open: half-close is passed through

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.connection.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.connection.writing(self).update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._drained is not None:
            self._drained.set()
        self.connection.writing(self).update_reading()

    async def drained(self) -> None:
        while self.write_paused and self.transport is not None:
            self._drained = asyncio.Event()
            await self._drained.wait()

    def write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True


class Link:
    """One direction of a connection, with its per-link toxic state."""

    def __init__(self, connection: Connection, direction: str, source: Side, destination: Side) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.destination = destination
        self.received = 0
        self.sent = 0
        self.done = False
        self.loop = asyncio.get_running_loop()
        self._buffer: collections.deque[Chunk] = collections.deque()
        self._idle = False  # until run() starts: bytes that arrive before the dial completes queue up
        self._reading_paused = False
        self._wake = asyncio.Event()
        self._change = asyncio.Event()
        self._rolls: dict[str, bool] = {}
        self._started: dict[str, float] = {}
        self._state: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    # -- toxics

    def _toxics(self) -> list[toxics.Toxic]:
        return self.connection.owner.toxics[self.direction]

    def active(self) -> list[toxics.Toxic]:
        """The toxics that act on this link now: present, and won their toxicity roll."""
        result = []
        for toxic in self._toxics():
            if toxic.name not in self._rolls:
                # Rolled once per stub run, like the real server: not per chunk.
                self._rolls[toxic.name] = self.connection.owner.rng.random() < toxic.toxicity
                self._started[toxic.name] = now()
            if self._rolls[toxic.name]:
                result.append(toxic)
        return result

    def is_active(self, toxic: toxics.Toxic) -> bool:
        return any(t is toxic for t in self._toxics()) and self._rolls.get(toxic.name, False)

    def changed(self, toxic: toxics.Toxic, removed: bool) -> None:
        """A toxic of this direction was added, updated (re-rolled, timers restarted) or removed."""
        was_active = self._rolls.pop(toxic.name, False)
        self._started.pop(toxic.name, None)
        if removed:
            for key in [k for k in self._state if k.startswith(f"{toxic.name}\0")]:
                del self._state[key]
            if toxic.type == "timeout" and was_active:
                # The real server's timeout toxic closes its connections when it is removed.
                self.connection.close()
        self._wake.set()
        change, self._change = self._change, asyncio.Event()
        change.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless a toxic changes first; True if the full time passed."""
        if seconds <= 0:
            return True
        change = self._change
        try:
            await asyncio.wait_for(change.wait(), seconds)
        except TimeoutError:
            return True
        return False

    # -- the read side (event-loop callbacks)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self._idle and not self._buffer and not self._toxics():
            if self.destination.write(data):
                self.sent += len(data)
            return
        read = now()
        self._buffer.append(Chunk(data, read, read))
        self._wake.set()
        self.update_reading()

    def feed_eof(self) -> None:
        if self.done:
            return  # the splice path already passed this EOF on (see Connection.attach)
        self._buffer.append(_EOF)
        self._wake.set()

    def update_reading(self) -> None:
        """Read from the source only while the destination keeps up and the queue has room."""
        transport = self.source.transport
        if transport is None:
            return
        pause = self.destination.write_paused or len(self._buffer) >= QUEUE_CHUNKS
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # -- the toxic pipeline (a task)

    async def run(self) -> None:
        if self.done:
            return
        try:
            while True:
                chunk = await self._next()
                self._idle = False
                self.update_reading()
                if chunk is _EOF:
                    await self._eof()
                    return
                await self._chain(self.active())(chunk)
                self._idle = True
        except Closing as closing:
            self.connection.close(reset=closing.reset)
        except OSError:
            self.connection.close()

    async def _next(self) -> Chunk:
        while not self._buffer:
            self._idle = True
            deadline = self._timeout_deadline()
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - now()))
            except TimeoutError:
                if self._buffer:
                    break
                if (current := self._timeout_deadline()) is not None and current <= now():
                    raise Closing() from None
        return self._buffer.popleft()

    def _timeout_deadline(self) -> float | None:
        deadlines = [
            self._started[t.name] + t.attributes["timeout"] / 1000
            for t in self.active()
            if t.type == "timeout" and t.attributes["timeout"] > 0
        ]
        return min(deadlines) if deadlines else None

    async def _eof(self) -> None:
        for toxic in self.active():
            if toxic.type == "slow_close":
                until = now() + toxic.attributes["delay"] / 1000
                while self.is_active(toxic) and not await self.sleep(until - now()):
                    pass
            elif toxic.type == "reset_peer":
                await asyncio.sleep(toxic.attributes["timeout"] / 1000)
                raise Closing(reset=True)
        self.done = True
        transport = self.destination.transport
        if transport is not None and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        self.connection.link_done()

    def _chain(self, active: Sequence[toxics.Toxic]) -> Stage:
        stage: Stage = self._write
        for toxic in reversed(active):
            stage = self._stage(toxic, stage)
        return stage

    async def _write(self, chunk: Chunk) -> None:
        if not chunk.data:
            return
        if not self.destination.write(chunk.data):
            raise Closing()
        self.sent += len(chunk.data)
        await self.destination.drained()

    def _stage(self, toxic: toxics.Toxic, forward: Stage) -> Stage:
        kind = toxic.type
        if kind == "latency":
            return lambda chunk: self._latency(toxic, chunk, forward)
        if kind == "bandwidth":
            return lambda chunk: self._bandwidth(toxic, chunk, forward)
        if kind == "slicer":
            return lambda chunk: self._slicer(toxic, chunk, forward)
        if kind == "timeout":
            return lambda chunk: self._timeout(toxic)
        if kind == "reset_peer":
            return lambda chunk: self._reset_peer(toxic)
        if kind == "limit_data":
            return lambda chunk: self._limit_data(toxic, chunk, forward)
        return forward  # noop, slow_close: data passes untouched

    async def _hold(self, toxic: toxics.Toxic, until: float) -> bool:
        """Wait until ``until``; False if ``toxic`` was removed or updated first (it lets go)."""
        # Loop until the time has really passed: a timer may fire a fraction of a millisecond
        # early, and a change to another toxic wakes us without concerning this one.
        while self.is_active(toxic):
            left = until - now()
            if left <= 0:
                return True
            await self.sleep(left)
        return False

    def _start(self, toxic: toxics.Toxic, chunk: Chunk) -> float:
        """When ``toxic`` takes ``chunk`` on: once it is handed over and the previous one is done."""
        return max(chunk.ready, self._state.get(f"{toxic.name}\0free", 0.0))

    def _done(self, toxic: toxics.Toxic, at: float) -> None:
        self._state[f"{toxic.name}\0free"] = at

    async def _latency(self, toxic: toxics.Toxic, chunk: Chunk, forward: Stage) -> None:
        jitter = toxic.attributes["jitter"]
        # Whole milliseconds in [-jitter, jitter), rolled per chunk, as the real server does; a
        # jitter larger than the latency waits no time (it doesn't move the chunk's time back).
        offset = self.connection.owner.rng.randrange(-jitter, jitter) if jitter else 0
        delay = max(0, toxic.attributes["latency"] + offset)
        at = chunk.at + delay / 1000
        release = max(self._start(toxic, chunk), at)
        if await self._hold(toxic, release):
            self._done(toxic, release)
            await forward(Chunk(chunk.data, at, release))
        else:
            # Removed or updated while holding: released now, its time not moved (as Toxiproxy).
            await forward(Chunk(chunk.data, chunk.at, now()))

    async def _bandwidth(self, toxic: toxics.Toxic, chunk: Chunk, forward: Stage) -> None:
        rate = toxic.attributes["rate"]  # KB/s, 1 KB = 1000 bytes: ``rate`` bytes per millisecond
        step = rate * 100
        data = chunk.data
        release = self._start(toxic, chunk)
        # A chunk bigger than 100 ms worth goes out in 100 ms slices, like the real server; the
        # times are kept absolute, so a late wake-up is made up on the next slice.
        while len(data) > step:
            release += 0.1
            if not await self._hold(toxic, release):
                break
            await forward(Chunk(data[:step], chunk.at, release))
            data = data[step:]
        else:
            release += len(data) / (rate * 1000)
            if await self._hold(toxic, release):
                self._done(toxic, release)
                await forward(Chunk(data, chunk.at, release))
                return
        await forward(Chunk(data, chunk.at, now()))  # removed or updated: the rest goes at once

    async def _slicer(self, toxic: toxics.Toxic, chunk: Chunk, forward: Stage) -> None:
        pieces = slices(
            len(chunk.data),
            toxic.attributes["average_size"],
            toxic.attributes["size_variation"],
            self.connection.owner.rng,
        )
        view = memoryview(chunk.data)
        release = self._start(toxic, chunk)
        for start, end in pieces:
            if not await self._hold(toxic, release):
                await forward(Chunk(bytes(view[start:]), chunk.at, now()))  # removed: the rest at once
                return
            await forward(Chunk(bytes(view[start:end]), chunk.at, release))
            # The real slicer waits ``delay`` µs after every piece, the last one included.
            release += toxic.attributes["delay"] / 1_000_000
        self._done(toxic, release)

    async def _timeout(self, toxic: toxics.Toxic) -> None:
        # Data is dropped; each dropped chunk restarts the idle timer.
        self._started[toxic.name] = now()

    async def _reset_peer(self, toxic: toxics.Toxic) -> None:
        await asyncio.sleep(toxic.attributes["timeout"] / 1000)
        raise Closing(reset=True)

    async def _limit_data(self, toxic: toxics.Toxic, chunk: Chunk, forward: Stage) -> None:
        key = f"{toxic.name}\0sent"
        limit = toxic.attributes["bytes"]
        passed = int(self._state.get(key, 0))
        data = chunk.data[: max(0, limit - passed)]
        if data:
            await forward(Chunk(data, chunk.at, chunk.ready))
            passed += len(data)
            self._state[key] = passed
        if passed >= limit:
            raise Closing()


def slices(length: int, average: int, variation: int, rng: random.Random) -> list[tuple[int, int]]:
    """Cut ``[0, length)`` by halving, the midpoint shifted in [-variation, variation), until each
    piece is at most ``average + variation`` bytes (the real slicer's algorithm, without recursion)."""
    result: list[tuple[int, int]] = []
    pending = [(0, length)]
    while pending:
        start, end = pending.pop()
        if (end - start) - average <= variation or end - start <= 1:
            result.append((start, end))
            continue
        middle = start + (end - start) // 2
        if variation > 0:
            middle += rng.randrange(-variation, variation)
        middle = min(max(middle, start + 1), end - 1)
        pending.append((middle, end))
        pending.append((start, middle))
    return result


@dataclass(eq=False)
class Connection:
    """A client socket and its upstream socket, joined by two links."""

    owner: Owner
    reset_capable: bool
    """A reset_peer toxic existed at accept, so its close is a RST (SO_LINGER 0), as in the real server."""
    client: Side = field(init=False)
    server: Side = field(init=False)
    links: dict[str, Link] = field(init=False, default_factory=dict)
    closed: bool = field(init=False, default=False)

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
            await loop.connect_accepted_socket(lambda: self.client, client)
            await loop.connect_accepted_socket(lambda: self.server, upstream)
        except OSError:
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

    def toxic_changed(self, toxic: toxics.Toxic, removed: bool) -> None:
        link = self.links.get(toxic.direction)
        if link is not None:
            link.changed(toxic, removed)

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
