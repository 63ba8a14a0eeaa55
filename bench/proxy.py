"""The embedded proxy's speed against direct loopback (and a real Toxiproxy at TOXIPROXY_URL).

    python -m bench.proxy [--gib 1] [--rounds 10000] [--json bench-proxy.json]

Each path is measured against the same upstream process: bulk throughput (GiB each direction),
64-byte ping-pong round trips (p50/p99), and the accuracy of a 100 ms latency toxic. The proxy
runs as its own process (``chaoskit proxy serve``), the upstream as another, the client here -
three processes sharing the machine's cores, as in the reference Toxiproxy figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

BUF = 1 << 20

UPSTREAM = r"""
import os, socket, sys, threading
BUF = 1 << 20
def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    mode = conn.recv(1)
    if mode == b"S":  # sink: read to EOF, answer the byte count
        total, buf = 0, bytearray(BUF)
        while n := conn.recv_into(buf):
            total += n
        conn.sendall(total.to_bytes(8, "big"))
    elif mode == b"R":  # source: send N bytes
        want = int.from_bytes(conn.recv(8), "big")
        block = memoryview(os.urandom(BUF))
        while want > 0:
            conn.sendall(block[: min(want, BUF)])
            want -= BUF
    elif mode == b"E":  # echo
        while data := conn.recv(65536):
            conn.sendall(data)
    conn.close()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def missing() -> str | None:
    return None if sys.platform.startswith("linux") else "needs Linux"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect(port: int, mode: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mode)
    return sock


def upload(port: int, size: int) -> float:
    block = memoryview(os.urandom(BUF))
    with connect(port, b"S") as sock:
        started = time.perf_counter()
        left = size
        while left > 0:
            sock.sendall(block[: min(left, BUF)])
            left -= BUF
        sock.shutdown(socket.SHUT_WR)
        got = int.from_bytes(sock.recv(8), "big")
        elapsed = time.perf_counter() - started
    assert got == size, f"upstream got {got} of {size} bytes"
    return size / elapsed


def download(port: int, size: int) -> float:
    buf = bytearray(BUF)
    with connect(port, b"R") as sock:
        started = time.perf_counter()
        sock.sendall(size.to_bytes(8, "big"))
        total = 0
        while total < size and (n := sock.recv_into(buf)):
            total += n
        elapsed = time.perf_counter() - started
    assert total == size, f"got {total} of {size} bytes"
    return size / elapsed


def ping_pong(port: int, rounds: int, size: int = 64) -> list[float]:
    payload = os.urandom(size)
    times: list[float] = []
    with connect(port, b"E") as sock:
        for _ in range(50):  # warm up
            sock.sendall(payload)
            _read(sock, size)
        for _ in range(rounds):
            started = time.perf_counter_ns()
            sock.sendall(payload)
            _read(sock, size)
            times.append((time.perf_counter_ns() - started) / 1000)
    return times


def _read(sock: socket.socket, size: int) -> None:
    got = 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            raise ConnectionError("closed")
        got += len(chunk)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure(name: str, port: int, size: int, rounds: int) -> dict[str, Any]:
    # Round trips first: right after moving GiBs the machine (direct path included) is noisier.
    rtt = ping_pong(port, rounds)
    up = upload(port, size)
    down = download(port, size)
    return {
        "path": name,
        "upload_bytes_per_s": up,
        "download_bytes_per_s": down,
        "rtt_us": {"p50": pct(rtt, 50), "p99": pct(rtt, 99), "mean": statistics.fmean(rtt)},
    }


def proxy_for(api: str, upstream: int, name: str) -> int:
    with httpx.Client(base_url=api, timeout=10) as client:
        client.delete(f"/proxies/{name}")
        response = client.post(
            "/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
        )
        response.raise_for_status()
        return int(response.json()["listen"].rpartition(":")[2])


def latency_accuracy(api: str, name: str, port: int, rounds: int) -> dict[str, float]:
    with httpx.Client(base_url=api, timeout=10) as client:
        body = {"name": "bench_latency", "type": "latency", "attributes": {"latency": 100}}
        client.post(f"/proxies/{name}/toxics", json=body).raise_for_status()
        try:
            times = [t / 1000 for t in ping_pong(port, rounds)]
        finally:
            client.delete(f"/proxies/{name}/toxics/bench_latency")
    return {"p50": pct(times, 50), "p99": pct(times, 99), "min": min(times), "max": max(times)}


def print_table(results: list[dict[str, Any]], accuracy: dict[str, dict[str, float]]) -> None:
    direct = results[0]
    head = ("path", "upload", "download", "% direct", "rtt p50", "rtt p99", "+p50", "+p99")
    print("{:<16} {:>11} {:>11} {:>9} {:>9} {:>9} {:>7} {:>7}".format(*head))
    for r in results:
        up, down, rtt = r["upload_bytes_per_s"], r["download_bytes_per_s"], r["rtt_us"]
        share = min(up / direct["upload_bytes_per_s"], down / direct["download_bytes_per_s"])
        added50 = rtt["p50"] - direct["rtt_us"]["p50"]
        added99 = rtt["p99"] - direct["rtt_us"]["p99"]
        print(
            f"{r['path']:<16} {up / 1e9:>6.2f} GB/s {down / 1e9:>6.2f} GB/s {share:>9.0%} "
            f"{rtt['p50']:>6.0f} µs {rtt['p99']:>6.0f} µs {added50:>+7.0f} {added99:>+7.0f}"
        )
    for path, a in accuracy.items():
        print(
            f"100 ms latency toxic via {path}: p50 {a['p50']:.2f} ms, p99 {a['p99']:.2f} ms, "
            f"min {a['min']:.2f} ms, max {a['max']:.2f} ms"
        )


@contextlib.contextmanager
def serving(upstream_source: str) -> Iterator[tuple[str, int]]:
    """(the API URL of a ``chaoskit proxy serve`` of its own, the port of an upstream run from
    ``upstream_source``, which prints its port): both stopped at the end."""
    upstream = subprocess.Popen([sys.executable, "-c", upstream_source], stdout=subprocess.PIPE, text=True)
    api_port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "proxy", "serve", "--port", str(api_port)],
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        assert upstream.stdout is not None
        upstream_port = int(upstream.stdout.readline())
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{api}/version", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield api, upstream_port
    finally:
        proxy.terminate()
        upstream.terminate()
        proxy.wait(30)
        upstream.wait(30)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per bulk direction (default 1)")
    parser.add_argument("--rounds", type=int, default=10_000, help="64 B round trips (default 10000)")
    parser.add_argument("--latency-rounds", type=int, default=200, help="round trips under 100 ms latency")
    parser.add_argument("--json", type=Path, default=Path("bench-proxy.json"), help="where to write results")
    args = parser.parse_args(argv)
    size = int(args.gib * (1 << 30))

    with serving(UPSTREAM) as (api, upstream_port):
        results = [measure("direct", upstream_port, size, args.rounds)]
        chaoskit_port = proxy_for(api, upstream_port, "bench")
        results.append(measure("chaoskit proxy", chaoskit_port, size, args.rounds))
        accuracy = {"chaoskit proxy": latency_accuracy(api, "bench", chaoskit_port, args.latency_rounds)}
        real = os.environ.get("TOXIPROXY_URL")
        if real:
            real_port = proxy_for(real, upstream_port, "chaoskit_bench")
            results.append(measure("TOXIPROXY_URL", real_port, size, args.rounds))
            accuracy["TOXIPROXY_URL"] = latency_accuracy(
                real, "chaoskit_bench", real_port, args.latency_rounds
            )

    print_table(results, accuracy)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "gib": args.gib,
        "rounds": args.rounds,
        "results": results,
        "latency_toxic_100ms": accuracy,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
