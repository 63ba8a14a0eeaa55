"""Small real HTTP servers on 127.0.0.1 for tests: one place that starts and stops them."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator


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
