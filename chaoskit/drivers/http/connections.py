"""The connections ``http.load`` sends on: a lean keep-alive HTTP/1.1 client that parses answers as
their bytes arrive, and the same interface through httpx (redirects, HTTP/2)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from chaoskit.drivers.http import tallies, targets

perf = time.perf_counter
INFINITY = float("inf")


class RequestError(Exception):
    """One request failed; ``kind`` is how (``connect``, ``timeout``, ``reset``, ``protocol``...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Budget:
    """What a closed loop may still send: a count, a time limit, and a stop. It also writes the
    loop's next requests, together once the event loop has read every answer of its turn (as wrk
    does): a server reads them in one wake-up rather than one each."""

    def __init__(self, total: int, stop_at: float) -> None:
        self.remaining = total
        self.stop_at = stop_at
        self.stopped = False
        self.pending: list[Connection] = []
        self.loop = asyncio.get_running_loop()

    def queue(self, connection: Connection) -> None:
        """Write ``connection``'s next request once this turn of the loop has read its answers."""
        pending = self.pending
        if not pending:
            self.loop.call_soon(self.flush)
        pending.append(connection)

    def flush(self) -> None:
        now = perf()
        for c in self.pending:
            transport = c.transport
            if c.busy and transport is not None:  # not timed out or cancelled meanwhile
                c.due = c.sent = now
                c.deadline = now + c.timeout
                transport.write(c.request)
        self.pending.clear()

    def take(self, now: float) -> bool:
        if self.remaining <= 0 or self.stopped or now >= self.stop_at:
            return False
        self.remaining -= 1
        return True


HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILERS, TO_EOF = range(6)
HEAD_LIMIT = 64 * 1024
"""Bytes of an answer's head (status line and headers) read at most."""
MEMO_BYTES = 1024
"""Answers up to this long that came whole in one read are remembered with what parsing them
gave: the same bytes again (a server's usual answer) complete without being parsed."""
MEMO_ENTRIES = 64
"""Answers remembered at most (forgotten all at once: a ``Date`` header changes every second)."""


class _Link(asyncio.Protocol):
    """One transport's events, passed on while it is still its connection's current one (a late
    ``connection_lost`` from an aborted transport must not end the next)."""

    def __init__(self, owner: Connection) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        if self.owner.link is self:
            self.owner.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.link is self:
            self.owner.lost()


class Connection:
    """One keep-alive HTTP/1.1 connection, parsed as bytes arrive; it reconnects after any
    failure. In a closed loop the callback that completes an answer queues the next request on the
    budget: no task switch per request, which is what lets Python keep pace with wrk."""

    def __init__(self, target: targets.Target, tally: tallies.Tally) -> None:
        self.target = target
        self.tally = tally
        self.link: _Link | None = None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.state = HEAD
        self.remaining = 0
        self.status = 0
        self.keep = True
        self.received = False
        """Whether any byte of the answer in flight has come."""
        self.fresh = True
        """Whether the request in flight is the first on its connection (a reused one may have
        been closed by the server while idle: that request is sent again)."""
        self.retried = False
        self.waiter: asyncio.Future[None] | None = None
        self.budget: Budget | None = None
        self.due = self.sent = 0.0
        self.deadline = INFINITY
        """When the request in flight times out; the watchdog aborts the connection then."""
        self.timed_out = False
        self.dropped = False
        """Set when the run is cancelled: the request in flight is not counted."""
        # Read once per answer: kept at hand.
        self.memo = target.answers
        self.request = target.request
        self.timeout = target.timeout
        self.record = tally.latency.record

    async def send(self, due: float, budget: Budget | None = None) -> None:
        """Send one request due at ``due`` and record its answer or failure; with ``budget``, go
        on sending on this connection while the budget allows and the connection holds."""
        self.due = due
        self.deadline = due + self.target.timeout
        self.timed_out = False
        self.budget = budget
        self.retried = False
        loop = asyncio.get_running_loop()
        while True:
            self.sent = perf()
            try:
                if self.transport is None:
                    await self._connect(loop)
                    self.fresh = True
                else:
                    self.fresh = False
                waiter = self.waiter = loop.create_future()
                self._write()
                await waiter
                return
            except _Stale:
                self._drop()
                if self.retried or self.timed_out:
                    error = "timeout" if self.timed_out else "reset"
                else:
                    # A kept-alive connection the server had closed before this request reached
                    # it: send it once more on a new connection (what browsers and httpx do).
                    self.retried = True
                    continue
            except RequestError as e:
                self._drop()
                error = "timeout" if self.timed_out else e.kind
            finally:
                self.waiter = None
            self.deadline = INFINITY
            if self.dropped:
                return
            now = perf()
            waited = self.sent - self.due
            if error == "timeout" and self.tally.service is not None and waited > self.timeout / 10:
                # Much of its time went by in line for a connection (open loop): a timeout for its
                # user, but no measure of the server when the generator is what fell behind.
                self.tally.cut_short(self.due, now)
            else:
                self.tally.fail(error, self.due, self.sent, now)
            return

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        target = self.target
        link = self.link = _Link(self)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: link,
                    target.host,
                    target.port,
                    ssl=target.tls,
                    server_hostname=target.server_hostname,
                ),
                max(self.deadline - perf(), 0.0),
            )
        except TimeoutError as e:
            raise RequestError("timeout") from e
        except (OSError, ssl.SSLError, ValueError) as e:
            raise RequestError("connect") from e
        if self.link is not link:  # aborted (timed out, cancelled) while connecting
            transport.abort()
            raise RequestError("timeout")
        self.transport = transport
        self.buffer.clear()

    def _write(self) -> None:
        self.busy = True
        self.state = HEAD
        self.received = False
        assert self.transport is not None
        self.transport.write(self.target.request)

    def feed(self, data: bytes) -> None:
        if not self.busy:
            self._drop()  # bytes nobody asked for: the connection is out of step
            return
        self.received = True
        if self.state == HEAD and not self.buffer:
            # The usual case, a whole small answer in one read: parsed without buffering, or
            # not at all when the same bytes came before.
            known = self.memo.get(data) if len(data) <= MEMO_BYTES else None
            if known is not None:
                self.status, self.keep = known
                self._complete()
                return
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                try:
                    self._head(data[: end + 2])
                except RequestError as e:
                    self._fail(e)
                    return
                if self.state == BODY and self.busy and len(data) - end - 4 == self.remaining:
                    self._remember(data)
                    self._complete()
                    return
                data = data[end + 4 :]
        self.buffer += data
        try:
            self._parse()
        except RequestError as e:
            self._fail(e)

    def _remember(self, answer: bytes) -> None:
        if len(answer) <= MEMO_BYTES:
            memo = self.memo
            if len(memo) >= MEMO_ENTRIES:
                memo.clear()
            memo[answer] = (self.status, self.keep)

    def lost(self) -> None:
        self.transport = None
        self.link = None
        if not self.busy:
            return
        if self.state == TO_EOF:
            self.buffer.clear()
            self._complete()
        elif not self.received and not self.fresh:
            self._fail(_Stale())
        else:
            self._fail(RequestError("reset"))

    def _fail(self, error: Exception) -> None:
        self.busy = False
        self._drop()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _head(self, head: bytes) -> None:
        """Take an answer's status line and headers: complete it when it has no body, else set
        how its body is read. An interim answer (100 Continue) leaves the state as it was."""
        if head[:5] != b"HTTP/" or len(head) < 12:
            raise RequestError("protocol")
        try:
            status = int(head[9:12])
        except ValueError:
            raise RequestError("protocol") from None
        if 100 <= status < 200 and status != 101:
            return
        lower = head.lower()
        self.status = status
        self.keep = (
            b"\r\nconnection: close" not in lower
            if head[5:8] != b"1.0"
            else b"\r\nconnection: keep-alive" in lower
        )
        if self.target.head_only or status in (204, 304) or status < 200:
            self._complete()
        elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower:
            self.state = CHUNK_SIZE
        else:
            at = lower.find(b"\r\ncontent-length:")
            if at < 0:
                self.state, self.keep = TO_EOF, False
                return
            try:
                self.remaining = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
            except ValueError:
                raise RequestError("protocol") from None
            self.state = BODY

    def _parse(self) -> None:
        buffer = self.buffer
        while self.busy:
            state = self.state
            if state == HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > HEAD_LIMIT:
                        raise RequestError("protocol")
                    return
                head = bytes(buffer[: end + 2])
                del buffer[: end + 4]
                self._head(head)
            elif state in (BODY, CHUNK_DATA):
                if len(buffer) < self.remaining:
                    self.remaining -= len(buffer)
                    buffer.clear()
                    return
                del buffer[: self.remaining]
                if state == BODY:
                    self._complete()
                else:
                    self.state = CHUNK_SIZE
            elif state == CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > HEAD_LIMIT:
                        raise RequestError("protocol")
                    return
                try:
                    size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise RequestError("protocol") from None
                del buffer[: end + 2]
                self.state, self.remaining = (TRAILERS, 0) if size == 0 else (CHUNK_DATA, size + 2)
            elif state == TRAILERS:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._complete()
            else:  # TO_EOF: the body runs until the server closes
                buffer.clear()
                return

    def _complete(self) -> None:
        # The hot path of a closed loop: every answer comes through here, so it stays flat.
        self.busy = False
        now = perf()
        tally = self.tally
        self.record(now - self.due)
        if tally.service is not None:
            tally.service.record(now - self.sent)
        codes = tally.codes
        codes[self.status] = codes.get(self.status, 0) + 1
        self.deadline = INFINITY
        if not self.keep:
            self._drop()
        budget = self.budget
        transport = self.transport
        if budget is not None and transport is not None and budget.take(now):
            self.fresh = self.retried = self.received = False
            self.state = HEAD
            self.busy = True
            budget.queue(self)
            return
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self, drop: bool = False) -> None:
        """Time the request in flight out (the watchdog calls this), or with ``drop`` end it
        uncounted."""
        self.timed_out = True
        self.dropped = self.dropped or drop
        if self.busy:
            self._fail(RequestError("timeout"))
        else:
            self._drop()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.transport = None
        self.link = None

    def close(self) -> None:
        self._drop()


class _Stale(Exception):
    """The connection was closed before any byte of an answer came back."""


class HttpxConnection:
    """The same interface through httpx, for redirects and HTTP/2."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        request: Callable[[], Awaitable[httpx.Response]],
        tally: tallies.Tally,
    ) -> None:
        self.client = client
        self.request = request
        self.tally = tally
        self.deadline = INFINITY

    async def send(self, due: float, budget: Budget | None = None) -> None:
        from chaoskit.drivers.http import traffic

        sent = perf()
        try:
            response = await self.request()
        except Exception as e:  # every failed request is counted, none ends the load
            self.tally.fail(traffic.error_kind(e), due, sent, perf())
            return
        done = perf()
        tally = self.tally
        tally.latency.record(done - due)
        if tally.service is not None:
            tally.service.record(done - sent)
        status = response.status_code
        tally.codes[status] = tally.codes.get(status, 0) + 1

    def abort(self, drop: bool = False) -> None:
        """httpx keeps its own per-request timeout."""

    def close(self) -> None:
        """The shared client is closed once, by its owner."""


Sender = Connection | HttpxConnection
