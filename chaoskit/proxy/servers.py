"""Running the proxy: in the foreground (``chaoskit proxy serve``) or embedded in a process.

``ProxyServer`` runs the API and every proxy on an event loop in a background thread, so tests,
the demo and the pytest plugin can use it as a context manager::

    with ProxyServer() as server:          # API on 127.0.0.1, a free port
        httpx.post(f"{server.url}/proxies", json={...})
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from chaoskit import errors
from chaoskit.proxy import api, proxies

T = TypeVar("T")

_EXAMPLE = (
    'write a JSON array like [{"name": "db", "listen": "127.0.0.1:5433", "upstream": "127.0.0.1:5432"}]'
)


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (the ``fast`` extra), else the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def read_config(path: Path) -> list[Any]:
    """The proxies of a ``--config`` file: the same JSON array ``POST /populate`` takes."""
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise errors.UsageError(f"{path}: can't read the proxy config: {e.strerror}") from e
    except ValueError as e:
        raise errors.UsageError(
            f"{path}: not valid JSON: {e}",
            hint=_EXAMPLE,
        ) from e
    if not isinstance(data, list):
        raise errors.UsageError(
            f"{path}: the proxy config must be a JSON array of proxies, got {type(data).__name__}",
            hint=_EXAMPLE,
        )
    return data


class Running:
    """The API server and proxy table of one running server, on the current event loop."""

    def __init__(self, table: proxies.Table, handler: api.Api, server: asyncio.Server) -> None:
        self.table = table
        self.handler = handler
        self.server = server
        sockname = server.sockets[0].getsockname()
        self.host = str(sockname[0])
        self.port = int(sockname[1])

    @classmethod
    async def start(
        cls, host: str, port: int, config: list[Any] | None = None, seed: int | None = None
    ) -> Running:
        proxies.raise_nofile_limit()
        table = proxies.Table(seed)
        handler = api.Api(table)
        try:
            server = await asyncio.start_server(
                handler.serve_connection, host, port, reuse_address=True, limit=api.MAX_LINE
            )
        except OSError as e:
            raise errors.UsageError(
                f"can't listen on {host}:{port} for the proxy API: {e.strerror or e}",
                hint="pick another --port, or stop what is using it",
            ) from e
        if config:
            _, failure = await table.populate(config)
            if failure is not None:
                table.close()
                server.close()
                raise errors.UsageError(f"proxy config: {failure.message}")
        return cls(table, handler, server)

    async def stop(self) -> None:
        self.server.close()
        self.table.close()
        self.handler.close_connections()
        # Wait (boundedly) until every connection has really closed - splice threads included -
        # so that no socket outlives the server.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.connections for p in self.table.proxies.values()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)


async def serve(
    host: str,
    port: int,
    config: list[Any] | None = None,
    ready: Callable[[Running], None] = lambda running: None,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every proxy and connection."""
    running = await Running.start(host, port, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ready(running)
    try:
        await stop.wait()
    finally:
        await running.stop()


class ProxyServer:
    """An in-process proxy server on a background thread. Use it as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: list[Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self._config = config
        self._seed = seed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: Running | None = None

    @property
    def port(self) -> int:
        if self._running is None:
            raise RuntimeError("the proxy server is not started")
        return self._running.port

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:8474``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def table(self) -> proxies.Table:
        if self._running is None:
            raise RuntimeError("the proxy server is not started")
        return self._running.table

    def start(self) -> ProxyServer:
        if self._thread is not None:
            return self
        loop = new_loop()
        started: list[Running | BaseException] = []
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                try:
                    started.append(await Running.start(self.host, self._port, self._config, self._seed))
                except BaseException as e:
                    started.append(e)
                ready.set()

            loop.run_until_complete(boot())
            if isinstance(started[0], Running):
                loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="chaoskit-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if isinstance(started[0], BaseException):
            self._thread.join()
            self._thread = None
            raise started[0]
        self._running = started[0]
        return self

    def call(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop from another thread and return its result."""
        if self._loop is None:
            raise RuntimeError("the proxy server is not started")
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(timeout)

    def close(self) -> None:
        """Stop the API, every proxy and every connection; wait for the thread to end."""
        if self._thread is None or self._loop is None or self._running is None:
            return
        running = self._running
        self.call(running.stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None
        self._running = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
