"""The demo's HTTP services and the wiring between them.

    client ──▶ frontend :18080 ─┬─▶ proxy "backend" :18082 ─────────────▶ backend :18081
      /  /reviews  /balanced    ├─▶ proxy "reviews" ─────────────────────▶ backend
      /health  /metrics         └─▶ proxies "instance-0..2" (a balancer) ▶ backend
                                     (all in the embedded proxy, API :8474)

``/`` needs the backend, ``/reviews`` a second dependency (for the bulkhead), ``/balanced`` one of
several instances (health checks, hedging). The proxies other than ``backend`` listen on free ports
the frontend asks the proxy for. Which resilience patterns the frontend uses is
``Settings.patterns`` (``chaoskit demo --pattern NAME=on|off``; see ``resilience.PATTERNS``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import http.server
import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from chaoskit import wording
from chaoskit.demo import exposition, resilience
from chaoskit.proxy import servers

DEPENDENCIES = ("backend", "reviews", "instances")
ROUTES = {"/reviews": "reviews", "/balanced": "instances"}
"""The dependency each path needs; any other path needs ``backend``."""
UNBOUNDED = 30.0
"""Seconds a call waits with the timeout pattern off: long enough to outlast any fault a pattern
experiment applies, finite so that no thread waits forever."""
CHECK_TIMEOUT = 0.25
"""Seconds a health check waits for an instance's answer."""


@dataclass(frozen=True)
class Settings:
    """Where the demo listens, how the frontend calls its dependencies, and which patterns it uses."""

    host: str = "127.0.0.1"
    frontend_port: int = 18080
    """The service users (and the quickstart) call."""
    backend_port: int = 18081
    proxy_port: int = 18082
    """Where the proxy named ``backend`` listens; the frontend calls the backend through it."""
    api_port: int = 8474
    """The embedded proxy's Toxiproxy API; the toxiproxy driver's default URL."""
    timeout: float = 1.0
    """Seconds per dependency attempt (with the timeout pattern on)."""
    attempts: int = 3
    """Dependency attempts per frontend request (the first plus retries)."""
    patterns: tuple[str, ...] = ()
    """``NAME=on|off`` items over the defaults of ``resilience.PATTERNS``."""
    capacity: int = 64
    """Requests the frontend works on at once; more wait (or, with shedding on, are refused)."""
    pool: int = 16
    """Connection slots per dependency (bulkhead on) or for all of them (off)."""
    instances: int = 3
    """Instances behind the balancer (``/balanced``): proxies ``instance-0``..."""
    hedge_after: float = 0.05
    """Seconds before a hedged call asks a second instance."""

    def states(self) -> dict[str, bool]:
        """Each pattern on (True) or off; ``ValueError`` for a malformed ``patterns`` item."""
        return resilience.parse_patterns(list(self.patterns))


def instance_names(settings: Settings) -> list[str]:
    return [f"instance-{i}" for i in range(settings.instances)]


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One send per answer, and no Nagle: an answer written as headers then body in two small
    # sends waits for the client's delayed ACK (~40 ms) before the body leaves, so a keep-alive
    # client would measure the stall, not the service.
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered: the handler loop flushes headers and body together

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Backend(_Quiet):
    def do_GET(self) -> None:
        if self.path.startswith("/item"):
            item = {"id": random.randrange(1000), "name": "widget", "price_cents": 1999}
            self.reply(200, json.dumps(item).encode())
        elif self.path == "/health":
            self.reply(200, b'{"status": "ok"}')
        else:
            self.reply(404, b'{"error": "not found"}')


class Failed(RuntimeError):
    """A dependency call failed (timeout, connection error, non-200 answer)."""


class Caller:
    """How the frontend calls its dependencies, with the patterns ``settings.patterns`` switches on."""

    def __init__(self, settings: Settings, counters: exposition.Metrics, ports: dict[str, int]) -> None:
        self.settings = settings
        self.on = settings.states()
        self.counters = counters
        self.ports = ports
        """Each proxy's port: ``backend``, ``reviews``, ``instance-N``."""
        self.breakers = {dependency: resilience.Breaker() for dependency in DEPENDENCIES}
        self.budget = resilience.RetryBudget()
        self.pools = resilience.Pools(settings.pool, list(DEPENDENCIES), bulkhead=self.on["bulkhead"])
        self.rotation = resilience.Rotation(instance_names(settings))
        self.hedges = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="demo-hedge")

    def attempt(
        self, dependency: str, proxy: str, opened: list[http.client.HTTPConnection] | None = None
    ) -> dict[str, Any]:
        """One GET /item through ``proxy``, holding a slot of ``dependency``'s pool; the connection
        is added to ``opened``, for a hedge that won to cut it short."""
        timeout = self.settings.timeout if self.on["timeout"] else UNBOUNDED
        with self.pools.slot(dependency):
            self.counters.called(proxy)
            connection = http.client.HTTPConnection(self.settings.host, self.ports[proxy], timeout=timeout)
            if opened is not None:
                opened.append(connection)
            try:
                connection.request("GET", "/item")
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise Failed(f"{proxy} answered {response.status}")
                result: dict[str, Any] = json.loads(body)
                return result
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise Failed(f"{proxy}: {e}") from e
            finally:
                connection.close()

    def once(self, dependency: str) -> dict[str, Any]:
        """One call to ``dependency``: through its proxy, or to an instance in rotation (and, with
        hedging, to a second one if the first has not answered within ``hedge_after``)."""
        if dependency != "instances":
            return self.attempt(dependency, dependency)
        picked = self.rotation.pick(2 if self.on["hedging"] else 1)
        if len(picked) == 1:
            return self.attempt(dependency, picked[0])
        slow: list[http.client.HTTPConnection] = []
        first = self.hedges.submit(self.attempt, dependency, picked[0], slow)
        try:
            return first.result(timeout=self.settings.hedge_after)
        except concurrent.futures.TimeoutError:
            pass
        hedge: list[http.client.HTTPConnection] = []
        second = self.hedges.submit(self.attempt, dependency, picked[1], hedge)
        failure: BaseException | None = None
        for done in concurrent.futures.as_completed((first, second)):
            failure = done.exception()
            if failure is None:
                # The loser would hold its connection slot until it answers or times out: with
                # one slow instance, enough of those fill the pool and everyone waits.
                _abort(hedge if done is first else slow)
                return done.result()
        raise Failed(str(failure))

    def call(self, dependency: str) -> dict[str, Any]:
        """``once``, retried up to ``attempts`` times; raises ``resilience.Open`` when the breaker
        refuses, ``Failed`` when every attempt failed."""
        breaker = self.breakers[dependency] if self.on["breaker"] else None
        self.budget.deposit()
        last: Exception | None = None
        made = 0
        for attempt in range(self.settings.attempts):
            if attempt:
                if self.on["retry"]:
                    if not self.budget.withdraw():
                        break
                    time.sleep(resilience.backoff(attempt))
                self.counters.retried()
            if breaker is not None:
                breaker.allow()
            made += 1
            try:
                result = self.once(dependency)
            except Failed as e:
                last = e
                if breaker is not None:
                    breaker.record(False)
                continue
            if breaker is not None:
                breaker.record(True)
            return result
        raise Failed(f"{dependency} failed after {wording.counted(made, 'attempt')}: {last}")

    def check(self, instance: str) -> bool:
        """Whether ``instance`` answers GET /health through its proxy within ``CHECK_TIMEOUT``."""
        connection = http.client.HTTPConnection(
            self.settings.host, self.ports[instance], timeout=CHECK_TIMEOUT
        )
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def gauges(self) -> tuple[str, ...]:
        """The breakers' and instances' state, as metric lines."""
        return (
            "# HELP demo_breaker_state Circuit breaker state by dependency: 0 closed, 1 open, 2 half-open.",
            "# TYPE demo_breaker_state gauge",
            *(f'demo_breaker_state{{dependency="{d}"}} {int(b.state)}' for d, b in self.breakers.items()),
            "# HELP demo_breaker_opened_total Times the circuit breaker opened, by dependency.",
            "# TYPE demo_breaker_opened_total counter",
            *(f'demo_breaker_opened_total{{dependency="{d}"}} {b.opened}' for d, b in self.breakers.items()),
            "# HELP demo_instance_up Whether an instance is in the balancer's rotation.",
            "# TYPE demo_instance_up gauge",
            *(f'demo_instance_up{{instance="{i}"}} {int(up)}' for i, up in self.rotation.up.items()),
        )


def _abort(connections: list[http.client.HTTPConnection]) -> None:
    """End the calls on ``connections`` now: their reads fail at once, from any thread."""
    for connection in connections:
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)


def frontend_handler(settings: Settings, counters: exposition.Metrics, caller: Caller) -> type[_Quiet]:
    capacity = threading.BoundedSemaphore(settings.capacity)
    shedding = caller.on["shedding"]

    class Frontend(_Quiet):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                text = counters.render(caller.gauges())
                self.reply(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
                return
            if self.path == "/health":
                self.reply(200, b'{"status": "ok"}')
                return
            started = time.monotonic()
            if not capacity.acquire(blocking=not shedding):
                counters.refused()
                counters.observe(503, time.monotonic() - started)
                self.reply(503, b'{"error": "over capacity, try again later"}')
                return
            try:
                status, body = answer(caller, ROUTES.get(self.path.partition("?")[0], "backend"))
            finally:
                capacity.release()
            counters.observe(status, time.monotonic() - started)
            self.reply(status, body)

    return Frontend


def answer(caller: Caller, dependency: str) -> tuple[int, bytes]:
    """The status and body for a request that needs ``dependency``."""
    try:
        item = caller.call(dependency)
    except resilience.Open:
        return 503, json.dumps({"error": f"circuit to {dependency} is open"}).encode()
    except Failed as e:
        return 502, json.dumps({"error": str(e)}).encode()
    return 200, json.dumps({"item": item}).encode()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Demo:
    """The running demo: backend, embedded proxy with a proxy per dependency link, and frontend."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = exposition.Metrics()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.proxy: servers.ProxyServer | None = None
        self.caller: Caller | None = None

    def start(self) -> Demo:
        s = self.settings
        try:
            backend = self._serve(s.backend_port, Backend)
            upstream = f"{s.host}:{backend.server_address[1]}"
            links = {"backend": s.proxy_port, "reviews": 0, **dict.fromkeys(instance_names(s), 0)}
            self.proxy = servers.ProxyServer(
                s.host,
                s.api_port,
                config=[
                    {"name": name, "listen": f"{s.host}:{port}", "upstream": upstream}
                    for name, port in links.items()
                ],
            ).start()
            # A proxy asked for port 0 listens on a free one; the proxy reports which.
            ports = {name: int(self.proxy.table.get(name).listen.rpartition(":")[2]) for name in links}
            self.caller = Caller(s, self.metrics, ports)
            if self.caller.on["health"]:
                self._watch(self.caller)
            self._serve(s.frontend_port, frontend_handler(s, self.metrics, self.caller))
        except BaseException:
            self.close()
            raise
        return self

    def _watch(self, caller: Caller) -> None:
        thread = threading.Thread(
            target=resilience.check_forever,
            args=(caller.rotation, caller.check, self._stop),
            name="demo-health-checks",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def _serve(self, port: int, handler: type[http.server.BaseHTTPRequestHandler]) -> _Server:
        try:
            server = _Server((self.settings.host, port), handler)
        except OSError as e:
            raise OSError(e.errno, f"can't listen on {self.settings.host}:{port}: {e.strerror}") from e
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    @property
    def frontend_url(self) -> str:
        return f"http://{self.settings.host}:{self._servers[-1].server_address[1]}"

    def close(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        if self.caller is not None:
            self.caller.hedges.shutdown(wait=False, cancel_futures=True)
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
