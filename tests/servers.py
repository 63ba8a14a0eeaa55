"""Small real servers on 127.0.0.1 for tests: one place that starts and stops them."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ssl
import threading
from collections.abc import Callable, Iterator


class Quiet(http.server.BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean (no line per request)."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded server with ``handler`` on a free port of 127.0.0.1; yields its base URL
    (``http://127.0.0.1:PORT``) and stops the server and its thread on the way out."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _Tracked(asyncio.Protocol):
    """Passes every callback to the protocol it wraps, and tells ``opened`` of its transport."""

    def __init__(self, inner: asyncio.Protocol, opened: list[asyncio.BaseTransport]) -> None:
        self.inner, self.opened = inner, opened

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.opened.append(transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


STOP_SECONDS = 10.0
"""How long a stopping server waits for connections it accepted but had not yet set up."""


@contextlib.contextmanager
def serving_protocol(
    make: Callable[[], asyncio.Protocol], *, tls: ssl.SSLContext | None = None
) -> Iterator[int]:
    """An asyncio server of ``make``'s protocol on a free port of 127.0.0.1, on an event loop of
    its own thread; yields the port. On the way out every connection it accepted is closed,
    including those it was still setting up: a server starved of the CPU (a saturated client in
    the same process) accepts dozens at once late, and a loop closed under them leaks their
    sockets (ResourceWarning, an error in these tests, on whichever test the collector runs in)."""
    opened: list[asyncio.BaseTransport] = []
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: _Tracked(make(), opened), "127.0.0.1", 0, ssl=tls)
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def stop() -> None:
        # Connections accepted already are set up before the server closes: on Python 3.11 a
        # transport made for a closed server fails half-made and leaks its socket.
        deadline = loop.time() + STOP_SECONDS
        for _ in range(100):
            setting_up = asyncio.all_tasks() - {asyncio.current_task()}
            if not setting_up:
                break
            if loop.time() >= deadline:
                for task in setting_up:
                    task.cancel()  # a task cancelled while setting up closes its transport
            await asyncio.wait(setting_up, timeout=max(deadline - loop.time(), 0.1))
        server.close()  # no turn of the loop since the last check: nothing accepted since
        for transport in opened:
            transport.abort()
        for _ in range(2):  # aborted transports close their sockets on the next turns
            await asyncio.sleep(0)

    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(STOP_SECONDS * 2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
