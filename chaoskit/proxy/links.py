"""The data plane: one direction of a proxied connection, through that direction's toxics.

A connection (``connections.Connection``) has two one-way links, ``upstream`` (client → server)
and ``downstream``. While no toxic acting on a link changes its bytes (none, ``noop``,
``slow_close``, or toxics that lost their toxicity roll), bytes go straight from one transport to
the other inside the event loop's read callback (no per-chunk task, no copy); as soon as one does
they queue up with their read time and a per-link task runs them through the toxics, in the order
they were added. The toxic list is read afresh for every chunk, so adding, changing or removing a
toxic acts on open connections; a toxic that is waiting (latency, bandwidth, slicer, slow_close)
wakes up on any change and, if it was removed, forwards what it holds at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from chaoskit.proxy import toxic_types
from chaoskit.proxy.http import sessions
from chaoskit.proxy.sides import Side

if TYPE_CHECKING:
    from chaoskit.proxy.connections import Connection

QUEUE_CHUNKS = 1024
"""Chunks a link may hold ahead of its toxics before it stops reading (the latency toxic's buffer)."""

Chunk = toxic_types.Chunk
Closing = toxic_types.Closing
_EOF = Chunk(b"", -1.0, -1.0)
S = TypeVar("S")
_OUTBOX = Chunk(b"", -2.0, -2.0)
"""Wakes a link whose outbox the other link added to (an HTTP answer read upstream goes downstream)."""

# uvloop's loop.time() ticks in whole milliseconds; the latency toxic needs better than that.
now = time.monotonic


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
        self._stages: dict[str, toxic_types.Stage[toxic_types.Toxic]] = {}
        """Each toxic's state on this link, by name: kept when it is updated, dropped when removed."""
        self.outbox: collections.deque[sessions.Out] = collections.deque()
        """What the connection's HTTP session sends to this link's destination, in session order."""
        self.task: asyncio.Task[None] | None = None
        self._http_only_of: list[toxic_types.Toxic] | None = None
        self._http_only_now = False
        self._untouched_of: list[toxic_types.Toxic] | None = None
        """The toxic list for which no toxic acting on this link changes its bytes (None: unknown)."""

    # -- toxics

    @property
    def rng(self) -> random.Random:
        return self.connection.owner.rng

    def _toxics(self) -> list[toxic_types.Toxic]:
        return self.connection.owner.chains[self.direction]

    def active(self) -> list[toxic_types.Toxic]:
        """The toxics that act on this link now: present, and won their toxicity roll."""
        result = []
        for toxic in self._toxics():
            if self.rolled(toxic):
                result.append(toxic)
        return result

    def rolled(self, toxic: toxic_types.Toxic) -> bool:
        """Whether ``toxic`` won its toxicity roll on this link (rolled now if it has not been)."""
        won = self._rolls.get(toxic.name)
        if won is None:
            if toxic.direction == self.direction:
                # Rolled once per stub run, like the real server: not per chunk.
                won = self.connection.owner.rng.random() < toxic.toxicity
            else:  # a two-way toxic acts on both links of a connection, or on neither
                won = self.connection.links[toxic.direction].rolled(toxic)
            self._rolls[toxic.name] = won
            self._started[toxic.name] = now()
        return won

    def stage(self, toxic: toxic_types.Toxic) -> toxic_types.Stage[toxic_types.Toxic]:
        """``toxic``'s stage on this link, made when it first acts here."""
        stage = self._stages.get(toxic.name)
        if stage is None or stage.toxic is not toxic:
            stage = self._stages[toxic.name] = toxic.stage(toxic, self)
        return stage

    def is_active(self, toxic: toxic_types.Toxic) -> bool:
        return any(t is toxic for t in self._toxics()) and self._rolls.get(toxic.name, False)

    def started(self, toxic: toxic_types.Toxic) -> float:
        return self._started[toxic.name]

    def restart(self, toxic: toxic_types.Toxic) -> None:
        self._started[toxic.name] = now()

    def close(self) -> None:
        self.connection.close()

    def shared(self, toxic: toxic_types.Toxic, make: Callable[[], S]) -> S:
        """``toxic``'s state on this connection, one for both links: made by ``make`` on first use,
        kept when the toxic is updated, dropped when it is removed."""
        found = self.connection.shared.get(toxic.name)
        if found is None or found[0] is not toxic:
            found = self.connection.shared[toxic.name] = (toxic, make())
        return cast(S, found[1])

    def send_back(self, data: bytes) -> bool:
        """Write ``data`` to the side this link reads from (an answer the toxic makes up);
        False if that side is closed. It goes after what the other link has already written."""
        other = self.connection.links["downstream" if self.direction == "upstream" else "upstream"]
        if not self.source.write(data):
            return False
        other.sent += len(data)
        return True

    def changed(self, toxic: toxic_types.Toxic, removed: bool) -> None:
        """A toxic of this direction was added, updated (re-rolled, timers restarted) or removed."""
        was_active = self._rolls.pop(toxic.name, False)
        self._untouched_of = None
        self._started.pop(toxic.name, None)
        if removed:
            stage = self._stages.pop(toxic.name, None)
            if was_active:
                (stage or toxic.stage(toxic, self)).removed()
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

    async def hold(self, toxic: toxic_types.Toxic, until: float) -> bool:
        """Wait until ``until``; False if ``toxic`` was removed or updated first (it lets go)."""
        # Loop until the time has really passed: a timer may fire a fraction of a millisecond
        # early, and a change to another toxic wakes us without concerning this one.
        while self.is_active(toxic):
            left = until - now()
            if left <= 0:
                return True
            await self.sleep(left)
        return False

    # -- the read side (event-loop callbacks)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self._idle and not self._buffer:
            http = self.connection.http
            if http is None:
                if self._untouched():
                    if self.destination.write(data):
                        self.sent += len(data)
                    return
            elif not self.outbox and self._http_only():
                self._converse_now(http, data)
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
                http = self.connection.http
                if chunk is _EOF:
                    if http is not None:
                        await self._converse(
                            http.client_eof() if self.direction == "upstream" else http.server_eof()
                        )
                    await self._eof()
                    return
                if chunk is _OUTBOX:
                    await self._converse([])
                elif http is not None:
                    reading = http.from_client if self.direction == "upstream" else http.from_server
                    await self._converse(reading(chunk.data))
                else:
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
        deadlines = [d for t in self.active() if (d := self.stage(t).deadline()) is not None]
        return min(deadlines) if deadlines else None

    async def _eof(self) -> None:
        for toxic in self.active():
            await self.stage(toxic).end()
        self.done = True
        transport = self.destination.transport
        if transport is not None and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        self.connection.link_done()

    def quiet(self) -> bool:
        """Nothing is queued on this link or being carried out by its task."""
        return self._idle and not self._buffer and not self.outbox

    def _untouched(self) -> bool:
        """Whether no toxic acting on this link changes its bytes: none, or all lost their
        toxicity roll here, or all act only at the end (``slow_close``) or not at all (``noop``).
        Then bytes go on inside the read callback, as with no toxic, instead of through the task."""
        toxics = self._toxics()
        if not toxics:
            return True
        if toxics is not self._untouched_of:
            if any(self.stage(t).touches_data for t in self.active()):
                return False
            self._untouched_of = toxics
        return True

    def _http_only(self) -> bool:
        """Whether every toxic of this link is an http_* one (its bytes need no task)."""
        toxics = self._toxics()
        if toxics is not self._http_only_of:  # the proxy makes a new list on every change
            self._http_only_of = toxics
            self._http_only_now = all(t.kind.startswith("http_") for t in toxics)
        return self._http_only_now

    def _converse_now(self, http: sessions.Session, data: bytes) -> None:
        """The HTTP session's fast path, inside the read callback like the TCP one: when all it
        says is bytes for this link's destination (a request or response it passes), they are
        written at once; anything else goes to the task, in order."""
        said = http.client_chunk(data) if self.direction == "upstream" else http.server_chunk(data)
        if said is None:  # the usual chunk: it passes as it came
            if self.destination.write(data):
                self.sent += len(data)
            return
        mine = self.destination.role
        passed = [out for out in said if type(out) is sessions.Send and out.to == mine]
        if len(passed) == len(said):
            # One write for a head and its body: one segment on the wire, one system call.
            data = passed[0].data if len(passed) == 1 else b"".join(out.data for out in passed)
            if data and self.destination.write(data):
                self.sent += len(data)
            return
        self._route(said)
        if self.outbox:
            self._buffer.append(_OUTBOX)
            self._wake.set()

    async def _converse(self, said: list[sessions.Out]) -> None:
        """Hand what the HTTP session said to the link it is for, then carry out this link's part:
        bytes through this link's TCP toxics, holds, the end of the connection."""
        self._route(said)
        while self.outbox:
            out = self.outbox.popleft()
            if isinstance(out, sessions.Send):
                await self._chain(self.active())(Chunk(out.data, now(), now()))
            elif isinstance(out, sessions.Hold):
                # Woken by any toxic change: let go at once if the delays holding it are all gone.
                while (left := out.until - now()) > 0 and any(t.name in out.by for t in self._toxics()):
                    await self.sleep(left)
            elif out.reset:
                self.connection.reset_capable = True
                raise Closing(reset=True)
            else:
                self.connection.linger()

    def _route(self, said: list[sessions.Out]) -> None:
        """Each item to the outbox of the link that carries it out (waking the other link)."""
        for out in said:
            to_client = isinstance(out, sessions.Close) or out.to == "client"
            link = self.connection.links["downstream" if to_client else "upstream"]
            link.outbox.append(out)
            if link is not self and not (link._buffer and link._buffer[-1] is _OUTBOX):
                link._buffer.append(_OUTBOX)
                link._wake.set()

    def _chain(self, active: Sequence[toxic_types.Toxic]) -> toxic_types.Forward:
        forward: toxic_types.Forward = self._write
        for toxic in reversed(active):
            stage = self.stage(toxic)
            if stage.touches_data:
                forward = functools.partial(stage.pipe, forward=forward)
        return forward

    async def _write(self, chunk: Chunk) -> None:
        if not chunk.data:
            return
        if not self.destination.write(chunk.data):
            raise Closing()
        self.sent += len(chunk.data)
        await self.destination.drained()
