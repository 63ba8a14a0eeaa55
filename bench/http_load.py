"""``http.load`` figures: how many requests per second the generator sustains against a local
server, and how much it adds to a known server-side delay (so you know what a p99 reading can
resolve). Prints JSON lines; no pass/fail.

    python -m bench http_load [-- --requests N]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time

from chaoskit.drivers import contract
from chaoskit.drivers.http import loading

SERVER = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on the client's delayed ACK (40 ms)
    def do_GET(self):
        ms = int(self.path.rsplit("/", 1)[1] or 0)
        if ms:
            time.sleep(ms / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def missing() -> str | None:
    return None


def _wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the benchmark server did not listen on {port} within {seconds}s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench http_load")
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    options = parser.parse_args(argv)
    # The server runs in its own process so that it does not share the generator's interpreter.
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        _wait_port(port)
        probe = loading.LoadProbe()
        ctx = contract.RunContext(run_id="bench")
        runs = [(f"/delay/0 x{options.requests}", 0, options.requests, c) for c in (1, 4, 16)]
        runs += [("/delay/50 x200", 50, 200, 8)]
        for label, delay, requests, concurrency in runs:
            args = loading.LoadArgs.model_validate(
                {
                    "url": f"http://127.0.0.1:{port}/delay/{delay}",
                    "requests": requests,
                    "concurrency": concurrency,
                }
            )
            out = probe.run(args, ctx)
            assert isinstance(out, dict) and isinstance(out["latency_ms"], dict)
            lat = out["latency_ms"]
            figures: dict[str, object] = {
                "run": label,
                "concurrency": concurrency,
                "requests": out["requests"],
                "success_ratio": out["success_ratio"],
                "rate_rps": out["rate_rps"],
                "p50_ms": lat["p50"],
                "p99_ms": lat["p99"],
                "max_ms": lat["max"],
            }
            if delay and isinstance(lat["p50"], float):
                figures["p50_over_server_delay_ms"] = round(lat["p50"] - delay, 3)
            print(json.dumps(figures))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0
