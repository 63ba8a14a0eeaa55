"""The demo's two HTTP services and the wiring between them.

    client ──▶ frontend :18080 ──▶ proxy "backend" :18082 ──▶ backend :18081
                 /  /health  /metrics       (embedded, API :8474)

The frontend calls the backend with a per-attempt timeout and retries, so it rides out a slow
backend (up to its timeout) but not a dead one.
"""

from __future__ import annotations

import http.client
import http.server
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from chaoskit import wording
from chaoskit.demo import metrics
from chaoskit.proxy import servers


@dataclass(frozen=True)
class Settings:
    """Where the demo listens and how the frontend calls the backend."""

    host: str = "127.0.0.1"
    frontend_port: int = 18080
    """The service users (and the quickstart) call."""
    backend_port: int = 18081
    proxy_port: int = 18082
    """Where the proxy named ``backend`` listens; the frontend calls the backend through it."""
    api_port: int = 8474
    """The embedded proxy's Toxiproxy API; the toxiproxy driver's default URL."""
    timeout: float = 1.0
    """Seconds per backend attempt."""
    attempts: int = 3
    """Backend attempts per frontend request (the first plus retries)."""


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
        else:
            self.reply(404, b'{"error": "not found"}')


def call_backend(settings: Settings, counters: metrics.Metrics) -> dict[str, Any]:
    """GET /item through the proxy; retried on timeouts and connection errors."""
    last: Exception | None = None
    for attempt in range(settings.attempts):
        if attempt:
            counters.retried()
            time.sleep(0.05 * attempt)
        connection = http.client.HTTPConnection(settings.host, settings.proxy_port, timeout=settings.timeout)
        try:
            connection.request("GET", "/item")
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                result: dict[str, Any] = json.loads(body)
                return result
            last = RuntimeError(f"backend answered {response.status}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        finally:
            connection.close()
    raise RuntimeError(f"backend failed after {wording.counted(settings.attempts, 'attempt')}: {last}")


def frontend_handler(settings: Settings, counters: metrics.Metrics) -> type[_Quiet]:
    class Frontend(_Quiet):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self.reply(200, counters.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
                return
            if self.path == "/health":
                self.reply(200, b'{"status": "ok"}')
                return
            started = time.monotonic()
            try:
                item = call_backend(settings, counters)
                status, body = 200, json.dumps({"item": item}).encode()
            except RuntimeError as e:
                status, body = 502, json.dumps({"error": str(e)}).encode()
            counters.observe(status, time.monotonic() - started)
            self.reply(status, body)

    return Frontend


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Demo:
    """The running demo: backend, embedded proxy with a ``backend`` proxy, and frontend."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = metrics.Metrics()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.proxy: servers.ProxyServer | None = None

    def start(self) -> Demo:
        s = self.settings
        try:
            backend = self._serve(s.backend_port, Backend)
            self.proxy = servers.ProxyServer(
                s.host,
                s.api_port,
                config=[
                    {
                        "name": "backend",
                        "listen": f"{s.host}:{s.proxy_port}",
                        "upstream": f"{s.host}:{backend.server_address[1]}",
                    }
                ],
            ).start()
            self._serve(s.frontend_port, frontend_handler(s, self.metrics))
        except BaseException:
            self.close()
            raise
        return self

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
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
