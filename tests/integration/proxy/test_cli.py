"""``chaoskit proxy serve`` and ``chaoskit demo`` as processes: start, serve, stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chaoskit import faults
from tests.integration.proxy import upstreams


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited early with {process.returncode}: {process.communicate()[1]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {seconds}s")


def chaoskit(*args: str) -> list[str]:
    return [sys.executable, "-m", "chaoskit", *args]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_loads_a_config_and_stops_gracefully_on_a_signal(
    tmp_path: Path, echo: upstreams.Upstream, sig: signal.Signals
) -> None:
    port, listen_port = free_port(), free_port()
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "db", "listen": f"127.0.0.1:{listen_port}", "upstream": echo.address}])
    )
    process = subprocess.Popen(
        chaoskit("proxy", "serve", "--port", str(port), "--config", str(config)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/version", process)
        assert httpx.get(f"http://127.0.0.1:{port}/proxies/db").json()["listen"] == f"127.0.0.1:{listen_port}"
        with upstreams.connect(f"127.0.0.1:{listen_port}") as sock:
            sock.sendall(b"hi")
            assert upstreams.recv_exactly(sock, 2) == b"hi"
            process.send_signal(sig)
            assert process.wait(30) == 0
            assert sock.recv(10) == b""  # open connections were closed on the way out
        assert "Toxiproxy API on http://127.0.0.1:" in (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_serve_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text('{"name": "db"}')
    result = subprocess.run(
        chaoskit("proxy", "serve", "--port", "0", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "must be a JSON array of proxies" in result.stderr and "Traceback" not in result.stderr


def test_demo_serves_rides_out_latency_and_exports_metrics() -> None:
    port, backend, proxy, api = (free_port() for _ in range(4))
    process = subprocess.Popen(
        chaoskit(
            "demo",
            "--port",
            str(port),
            "--backend-port",
            str(backend),
            "--proxy-port",
            str(proxy),
            "--api-port",
            str(api),
        ),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert "item" in client.get("/").json()
            with faults.latency(proxy="backend", latency="300ms", url=f"http://127.0.0.1:{api}"):
                slow = client.get("/")
                assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.29
            with faults.down(proxy="backend", url=f"http://127.0.0.1:{api}"):
                assert client.get("/").status_code == 502
            metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = metrics.text
        assert 'demo_requests_total{status="200"} 2' in text
        assert 'demo_requests_total{status="502"} 1' in text
        assert "demo_errors_total 1" in text
        assert "demo_backend_retries_total 2" in text
        buckets = {
            line.split('"')[1]: int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("demo_request_duration_seconds_bucket")
        }
        assert buckets["0.3"] <= 2 and buckets["+Inf"] == 3  # the 300 ms one is above 0.3 s
        assert "demo_request_duration_seconds_count 3" in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[{"name": "db", "upstream": "127.0.0.1:1"}, {"name": "x", "upstream": "h:1", "listen": 5}]',
         ": [1].listen: must be a string"),
        (b'[{"name": "db"}]', ": [0].upstream: missing"),
        (b"[[]]", ": [0]: must be an object"),
        (b'[{"name": "\xff", "upstream": "h:1"}]', ": not UTF-8"),
        (b"[{", ":1:3: not valid JSON"),
    ],
)  # fmt: skip
def test_serve_refuses_a_config_of_wrong_types_naming_the_file_and_entry(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    config = tmp_path / "proxies.json"
    config.write_bytes(content)
    result = subprocess.run(
        chaoskit("proxy", "serve", "--port", "0", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert f"{config}{expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_names_the_entry_whose_listen_is_busy(tmp_path: Path, echo: upstreams.Upstream) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        config = tmp_path / "proxies.json"
        config.write_text(
            json.dumps(
                [
                    {"name": "ok", "listen": "127.0.0.1:0", "upstream": echo.address},
                    {"name": "db", "listen": taken, "upstream": echo.address},
                ]
            )
        )
        result = subprocess.run(
            chaoskit("proxy", "serve", "--port", "0", "--config", str(config)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert f"{config}: [1].listen: listen tcp {taken}: bind: address already in use" in result.stderr
    assert "Traceback" not in result.stderr
