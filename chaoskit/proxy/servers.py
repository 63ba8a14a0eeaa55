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
from chaoskit.proxy import api, listeners, toxic_types

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
    """The proxies of a ``--config`` file: the same JSON array ``POST /populate`` takes.

    Every entry is checked before anything starts; all problems are reported at once, each as
    ``FILE: [i].field: what is wrong`` (``i`` counts from 0).
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise errors.UsageError(f"{path}: can't read the proxy config: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise errors.SpecError(
            [errors.Problem(str(path), 0, 0, "", f"not UTF-8 (byte {e.start}: {e.reason}); {_EXAMPLE}")]
        ) from e
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        line, col = (e.lineno, e.colno) if isinstance(e, json.JSONDecodeError) else (0, 0)
        reason = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise errors.SpecError(
            [errors.Problem(str(path), line, col, "", f"not valid JSON: {reason}; {_EXAMPLE}")]
        ) from e
    except RecursionError as e:
        raise errors.SpecError(
            [errors.Problem(str(path), 0, 0, "", f"not valid JSON: nested too deeply; {_EXAMPLE}")]
        ) from e
    if not isinstance(data, list):
        raise errors.SpecError(
            [
                errors.Problem(
                    str(path),
                    0,
                    0,
                    "",
                    f"the proxy config must be a JSON array of proxies, got {_kind(data)}; {_EXAMPLE}",
                )
            ]
        )
    found = [errors.Problem(str(path), 0, 0, where, message) for where, message in _entry_problems(data)]
    if found:
        raise errors.SpecError(found)
    return data


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _value_problem(field: str, value: str) -> str | None:
    if field == "listen" and not value:
        return None  # 127.0.0.1 on a free port
    if not value:
        return "can't be empty"
    try:
        if field == "name":
            toxic_types.check_name(value, "the name")
        else:
            listeners.split(value, "")
    except listeners.RequestError as e:
        return e.message.strip()
    return None


def _entry_problems(entries: list[Any]) -> list[tuple[str, str]]:
    """``(path, message)`` for every thing wrong with the entries of a config."""
    found: list[tuple[str, str]] = []
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            found.append(
                (f"[{i}]", f'must be an object like {{"name": ..., "upstream": ...}}, got {_kind(entry)}')
            )
            continue
        for field in ("name", "upstream"):
            if field not in entry:
                found.append((f"[{i}].{field}", "missing; every proxy needs a name and an upstream"))
        for field in ("name", "listen", "upstream"):
            if field not in entry:
                continue
            value = entry[field]
            if not isinstance(value, str):
                found.append((f"[{i}].{field}", f"must be a string, got {_kind(value)}"))
            elif problem := _value_problem(field, value):
                found.append((f"[{i}].{field}", problem))
        if "enabled" in entry and not isinstance(entry["enabled"], bool):
            found.append((f"[{i}].enabled", f"must be true or false, got {_kind(entry['enabled'])}"))
        name = entry.get("name")
        if isinstance(name, str) and name:
            if name in first:
                found.append((f"[{i}].name", f"{name[:80]!r} is also the name of [{first[name]}]"))
            else:
                first[name] = i
    return found


class Running:
    """The API server and proxy table of one running server, on the current event loop."""

    def __init__(self, table: listeners.Table, handler: api.Api, server: asyncio.Server) -> None:
        self.table = table
        self.handler = handler
        self.server = server
        sockname = server.sockets[0].getsockname()
        self.host = str(sockname[0])
        self.port = int(sockname[1])

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        config: list[Any] | None = None,
        seed: int | None = None,
        source: str = "proxy config",
    ) -> Running:
        """Listen and create the proxies of ``config``; ``source`` names it (a file) in errors."""
        listeners.raise_nofile_limit()
        table = listeners.Table(seed)
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
            try:
                done, failure = await table.populate(config)
            except listeners.RequestError as e:  # only when read_config didn't check the list
                done, failure = [], e
            if failure is not None:
                table.close()
                server.close()
                # populate stops at the first entry it can't apply: the one after those done.
                where = f"[{len(done)}].listen: " if failure.status == 500 else ""
                raise errors.UsageError(f"{source}: {where}{failure.message}")
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
    source: str = "proxy config",
) -> None:
    """Serve until SIGINT or SIGTERM, then close every proxy and connection."""
    running = await Running.start(host, port, config, source=source)
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
    def table(self) -> listeners.Table:
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
