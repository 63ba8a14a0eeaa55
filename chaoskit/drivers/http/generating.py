"""The load generator behind ``http.load``: one asyncio event loop (uvloop when installed) in the
calling thread, one keep-alive connection per worker, no pipelining.

Closed loop: ``workers`` connections each send their next request as soon as the last one is
answered. Open loop: requests are due at a fixed rate; each is handed to an idle connection (a new
one is opened while fewer than ``workers`` are open), and its latency counts from when it was due,
so time spent waiting for a busy server shows up as latency (wrk2's coordinated-omission
correction). Time the generator itself loses (its event loop too busy to start a request on time)
is never blamed on the server: it is measured apart, and a generator that falls behind says so.

HTTP/1.1 is spoken by a lean client here; redirects and HTTP/2 go through httpx on the same loop.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from chaoskit.drivers.http import latencies

if TYPE_CHECKING:
    import httpx

perf = time.perf_counter
INFINITY = float("inf")
NO_BODY_METHODS = frozenset({"HEAD"})
URL_SAFE = "/%:@!$&'()*+,;=-._~?"
SEND_BODY_LENGTH = frozenset({"POST", "PUT", "PATCH"})
BATCH = 64
"""Requests the open-loop dispatcher starts before it lets answers be read: bounds how long a
late dispatcher can keep the loop to itself."""
SATURATION_LAG = 1.0
"""The dispatcher more than this many seconds behind its schedule (plus 2% of the schedule's
span) skips what it missed: the generator cannot keep up. A shorter stall (the machine busy
elsewhere) is caught up in a burst, its delay left out of latency."""


class RequestError(Exception):
    """One request failed; ``kind`` is how (``connect``, ``timeout``, ``reset``, ``protocol``...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Target:
    """Everything about the request that is the same every time, prepared once."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    server_hostname: str | None
    request: bytes
    """The request as it goes on the wire (head and body)."""
    head_only: bool
    timeout: float


def target_of(
    *,
    url: str,
    method: str,
    headers: dict[str, str],
    params: dict[str, str | list[str]],
    body: bytes | None,
    content_type: str | None,
    timeout: float,
    tls: ssl.SSLContext | None,
) -> Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    query = parts.query
    if params:
        extra = urlencode(params, doseq=True)
        query = f"{query}&{extra}" if query else extra
    # Already-encoded URLs pass unchanged; anything else is percent-encoded as UTF-8, as httpx does.
    path = quote(parts.path or "/", safe=URL_SAFE) + (f"?{quote(query, safe=URL_SAFE)}" if query else "")
    authority = host if ":" not in host else f"[{host}]"
    if parts.port is not None:
        authority = f"{authority}:{parts.port}"
    lines = {
        "host": ("Host", authority),
        "user-agent": ("User-Agent", "chaoskit"),
        "accept": ("Accept", "*/*"),
    }
    if parts.username is not None:
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        lines["authorization"] = ("Authorization", f"Basic {token}")
    if content_type is not None:
        lines["content-type"] = ("Content-Type", content_type)
    for name, value in headers.items():
        lines[name.lower()] = (name, value)
    if body is not None or method in SEND_BODY_LENGTH:
        lines["content-length"] = ("Content-Length", str(len(body or b"")))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.values()) + "\r\n"
    return Target(
        host=host,
        port=port,
        tls=tls,
        server_hostname=host if tls is not None else None,
        request=head.encode("latin-1") + (body or b""),
        head_only=method in NO_BODY_METHODS,
        timeout=timeout,
    )


def json_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class Tally:
    """What the answers were: counts, and latencies in histograms."""

    latency: latencies.Histogram = field(default_factory=latencies.Histogram)
    """From when each request was due (open loop) or started (closed loop) to its answer."""
    service: latencies.Histogram | None = None
    """From when each request was written to its answer: the server's time alone (open loop only;
    in a closed loop it is ``latency``)."""
    codes: dict[int, int] = field(default_factory=dict)
    """Answers by status code; which of them are successes is decided at the end."""
    failures: dict[str, int] = field(default_factory=dict)
    """Requests that got no answer, by kind."""
    expired: int = 0
    """Of the ``timeout`` failures, those never sent: no connection came free in time."""

    @property
    def requests(self) -> int:
        return self.latency.total

    def successes(self, accepts: Callable[[int], bool]) -> int:
        return sum(n for code, n in self.codes.items() if accepts(code))

    def errors(self, accepts: Callable[[int], bool]) -> dict[str, int]:
        """Failures by kind, and answers ``accepts`` refuses as ``status_<code>``."""
        out = dict(self.failures)
        for code, n in self.codes.items():
            if not accepts(code):
                out[f"status_{code}"] = out.get(f"status_{code}", 0) + n
        return dict(sorted(out.items()))

    def statuses(self) -> dict[str, int]:
        """Answers by status class (``2xx``...)."""
        out: dict[str, int] = {}
        for code, n in sorted(self.codes.items()):
            out[f"{code // 100}xx"] = out.get(f"{code // 100}xx", 0) + n
        return out

    def expire(self, due: float, now: float) -> None:
        """A request that waited for a free connection until its timeout, and was never sent."""
        self.expired += 1
        self.failures["timeout"] = self.failures.get("timeout", 0) + 1
        self.latency.record(now - due)

    def fail(self, kind: str, due: float, sent: float, done: float) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
        self.latency.record(done - due)
        if self.service is not None:
            self.service.record(done - sent)


class Budget:
    """What a closed loop may still send: a count, a time limit, and a stop."""

    def __init__(self, total: int, stop_at: float, stopping: asyncio.Event) -> None:
        self.remaining = total
        self.stop_at = stop_at
        self.stopping = stopping

    def take(self) -> bool:
        if self.remaining <= 0 or self.stopping.is_set() or perf() >= self.stop_at:
            return False
        self.remaining -= 1
        return True


HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILERS, TO_EOF = range(6)
HEAD_LIMIT = 64 * 1024
"""Bytes of an answer's head (status line and headers) read at most."""


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
    failure. In a closed loop the next request is written from the callback that completes the
    last answer: no task switch per request, which is what lets Python keep pace with wrk."""

    def __init__(self, target: Target, tally: Tally) -> None:
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
            if not self.dropped:
                self.tally.fail(error, self.due, self.sent, perf())
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
        try:
            if self.state == HEAD and not self.buffer:
                # The usual case, a whole small answer in one read: parsed without buffering.
                end = data.find(b"\r\n\r\n")
                if end >= 0:
                    self._head(data[: end + 2])
                    data = data[end + 4 :]
                    if self.state == BODY and self.busy and len(data) == self.remaining:
                        self._complete()
                        return
            self.buffer += data
            self._parse()
        except RequestError as e:
            self._fail(e)

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
        self.busy = False
        now = perf()
        tally = self.tally
        tally.latency.record(now - self.due)
        if tally.service is not None:
            tally.service.record(now - self.sent)
        codes = tally.codes
        codes[self.status] = codes.get(self.status, 0) + 1
        self.deadline = INFINITY
        if not self.keep:
            self._drop()
        budget = self.budget
        if budget is not None and self.transport is not None and budget.take():
            self.due = self.sent = now
            self.deadline = now + self.target.timeout
            self.fresh = self.retried = False
            self._write()
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
        tally: Tally,
    ) -> None:
        self.client = client
        self.request = request
        self.tally = tally
        self.deadline = INFINITY

    async def send(self, due: float, budget: Budget | None = None) -> None:
        from chaoskit.drivers.http import loading

        sent = perf()
        try:
            response = await self.request()
        except Exception as e:  # every failed request is counted, none ends the load
            self.tally.fail(loading.error_kind(e), due, sent, perf())
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


@dataclass
class Outcome:
    tally: Tally
    elapsed: float
    connections: int
    saturated: bool = False
    lag: latencies.Histogram | None = None
    """How late the open-loop dispatcher started each request."""
    skipped: int = 0
    """Open-loop requests never sent because the generator was too far behind to send them on time."""


async def _watch(
    senders: list[Sender], cancel: threading.Event, stopping: asyncio.Event, tick: float
) -> None:
    """Time out requests past their deadline, and end everything when the run is cancelled."""
    while not stopping.is_set():
        await asyncio.sleep(tick)
        now = perf()
        cancelled = cancel.is_set()
        for sender in senders:
            if cancelled or sender.deadline < now:
                sender.abort(drop=cancelled)
        if cancelled:
            stopping.set()


def tick_for(timeout: float) -> float:
    return min(max(timeout / 20, 0.005), 0.05)


async def closed_loop(
    make: Callable[[], Sender],
    *,
    total: int,
    workers: int,
    stop_at: float,
    cancel: threading.Event,
    tick: float,
    tally: Tally,
) -> Outcome:
    senders = [make() for _ in range(workers)]
    stopping = asyncio.Event()
    budget = Budget(total, stop_at, stopping)
    started = perf()

    async def work(sender: Sender) -> None:
        while budget.take():
            await sender.send(perf(), budget)

    watcher = asyncio.create_task(_watch(senders, cancel, stopping, tick))
    try:
        await asyncio.gather(*(work(s) for s in senders))
    finally:
        stopping.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for sender in senders:
            sender.close()
    return Outcome(tally, perf() - started, len(senders))


async def open_loop(
    make: Callable[[], Sender],
    *,
    total: int,
    rate: float,
    most: int,
    stop_at: float,
    cancel: threading.Event,
    tick: float,
    timeout: float,
    tally: Tally,
) -> Outcome:
    loop = asyncio.get_running_loop()
    senders: list[Sender] = []
    tasks: list[asyncio.Task[None]] = []
    due_queue: collections.deque[float] = collections.deque()
    idle: collections.deque[asyncio.Future[float | None]] = collections.deque()
    stopping = asyncio.Event()
    lag = latencies.Histogram()
    finished = False

    async def work(sender: Sender) -> None:
        while not stopping.is_set():
            if due_queue:
                due = due_queue.popleft()
            elif finished:
                return
            else:
                waiting: asyncio.Future[float | None] = loop.create_future()
                idle.append(waiting)
                got = await waiting
                if got is None:
                    return
                due = got
            now = perf()
            if now - due >= timeout:
                # Waited for a free connection longer than its whole timeout: it timed out unsent.
                tally.expire(due, now)
                continue
            await sender.send(due)

    def hand(due: float) -> None:
        while idle:
            waiting = idle.popleft()
            if not waiting.done():
                waiting.set_result(due)
                return
        due_queue.append(due)
        if len(senders) < most:
            sender = make()
            senders.append(sender)
            tasks.append(asyncio.create_task(work(sender)))

    def release_idle() -> None:
        for waiting in idle:
            if not waiting.done():
                waiting.set_result(None)
        idle.clear()

    watcher = asyncio.create_task(_watch(senders, cancel, stopping, tick))
    started = perf()
    interval = 1.0 / rate
    saturated = False
    index = skipped = 0
    try:
        while index < total and not stopping.is_set():
            due = started + index * interval
            now = perf()
            if due >= stop_at:
                break
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if now - due > SATURATION_LAG + 0.02 * (due - started):
                # The generator is this far behind its own schedule: it cannot keep up. Sending the
                # missed requests late would measure its backlog, not the server: skip them.
                saturated = True
                missed = min(int((now - due) / interval), total - index)
                skipped += missed
                index += missed
                continue
            batch = 0
            while index < total and batch < BATCH:
                due = started + index * interval
                if due > now or due >= stop_at:
                    break
                # Time the generator lost before starting a request (its timers fire up to a
                # millisecond late) is its own, not the server's: latency counts from then.
                lag.record(now - due)
                hand(now)
                index += 1
                batch += 1
            await asyncio.sleep(0)
        dispatched_at = perf()
        finished = True
        release_idle()
        if tasks:
            # Every request still queued or in flight is past its timeout by then.
            await asyncio.wait(tasks, timeout=max(0.0, dispatched_at + timeout + 2 * tick - perf()))
    finally:
        finished = True
        stopping.set()
        release_idle()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for sender in senders:
            sender.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sender in senders:
            sender.close()
        if not cancel.is_set():
            now = perf()
            while due_queue:
                tally.expire(due_queue.popleft(), now)
    elapsed = perf() - started
    scheduled = min(total, max(0, int((min(stop_at, started + elapsed) - started) * rate)))
    # Fell short of the schedule. (Not "on the CPU all the time": between requests due less than
    # a millisecond apart the loop's timers can't sleep, so a generator that keeps up spins.)
    if not cancel.is_set() and index - skipped < 0.98 * scheduled:
        saturated = True
    return Outcome(tally, elapsed, len(senders), saturated, lag, skipped)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Callable[[], Coroutine[Any, Any, Outcome]]) -> Outcome:
    """Run ``main`` on a new event loop of its own, in this thread, or in a new thread when this
    one already runs a loop (the Python API called from async code)."""
    if not _loop_running():
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    result: list[Outcome] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(run(main))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=target, name="http.load")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
