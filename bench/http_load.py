"""``http.load`` beside wrk, on the same local servers with the same connection counts: closed
loop (tiny answers), open loop at fixed rates, and a server that answers in exactly 10 ms (what a
p50/p99 reading can resolve). Prints one table; no pass/fail.

    python -m bench http_load [-- --seconds 5 --rounds 3]

The closed-loop rows run wrk and chaoskit in turns ``--rounds`` times and show the medians and each
round's ratio: the machine is shared, and only runs side by side compare.

wrk is Debian's ``wrk`` package (scripts/test installs it); without it, its column says how to get
it. wrk 4.1 has no fixed-rate mode (wrk2 does), so its open-loop cells stay empty.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from chaoskit.drivers import contract
from chaoskit.drivers.http import traffic

SERVER = r"""
import asyncio, sys
try:
    import uvloop
except ImportError:
    uvloop = None

class Answer(asyncio.Protocol):
    # GET /delay/MS answers "ok" MS milliseconds after the request arrived, without blocking others.
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            path = head.split(b" ", 2)[1]
            ms = int(path.rsplit(b"/", 1)[1] or 0) if path.startswith(b"/delay/") else 0
            if ms:
                asyncio.get_running_loop().call_later(ms / 1000, self.answer)
            else:
                self.answer()
    def answer(self):
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

(uvloop.run if uvloop else asyncio.run)(main())
"""


def missing() -> str | None:
    return None


@contextlib.contextmanager
def serve() -> Iterator[int]:
    """A keep-alive HTTP/1.1 server (asyncio, uvloop when installed) in its own process, so that
    it shares no interpreter with the generator; yields its port."""
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        _wait_port(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()


def _wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the benchmark server did not listen on {port} within {seconds}s")


@dataclass
class Figures:
    rps: float | None = None
    p50: float | None = None
    p99: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        if self.rps is None:
            return [self.note or "—", "", ""]
        return [f"{self.rps:,.0f}", _ms(self.p50), _ms(self.p99)]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


WRK_MISSING = "wrk not installed (apt-get install wrk)"


def wrk(url: str, connections: int, seconds: float) -> Figures:
    binary = shutil.which("wrk")
    if binary is None:
        return Figures(note=WRK_MISSING)
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        return Figures(note="wrk gave no figures")

    def percentile(label: str) -> float | None:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            return None
        return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]

    return Figures(float(rps[1]), percentile("50"), percentile("99"))


def chaoskit(url: str, seconds: float, **load: float) -> tuple[Figures, dict[str, contract.JsonValue]]:
    args = traffic.LoadArgs.model_validate({"url": url, "duration": seconds, "timeout": 10, **load})
    out = traffic.LoadProbe().run(args, contract.RunContext(run_id="bench"))
    assert isinstance(out, dict) and isinstance(out["latency_ms"], dict)
    lat = out["latency_ms"]
    rps = out["rate_rps"]
    assert isinstance(rps, float | int)
    p50, p99 = lat["p50"], lat["p99"]
    return Figures(
        float(rps),
        float(p50) if isinstance(p50, float | int) else None,
        float(p99) if isinstance(p99, float | int) else None,
    ), out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench http_load")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="closed-loop runs of wrk and chaoskit, taken in turns"
    )
    options = parser.parse_args(argv)
    seconds, rounds = options.seconds, max(1, options.rounds)
    load_before = os.getloadavg()[0]
    with serve() as port:
        base = f"http://127.0.0.1:{port}/delay"
        chaoskit(f"{base}/0", 0.5, concurrency=8)  # warm up: imports, first connections
        rows = [
            *(_closed_row(f"{base}/0", c, seconds, rounds) for c in (8, 64)),
            *(_open_row(f"{base}/0", rate, seconds) for rate in (1000, 2000, 5000)),
            _closed_row(f"{base}/10", 32, seconds, 1),
            _open_row(f"{base}/10", 2000, seconds),
        ]
    _print(rows)
    print(f"\nload average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    if shutil.which("wrk") is None:
        print(f"{WRK_MISSING}: scripts/test installs it (Debian package 'wrk').")
    return 0


def _closed_row(url: str, connections: int, seconds: float, rounds: int) -> list[str]:
    """wrk and chaoskit in turns, ``rounds`` times: medians, and each round's ratio (the machine
    is shared, so only runs side by side compare)."""
    theirs: list[Figures] = []
    ours: list[Figures] = []
    for _ in range(rounds):
        theirs.append(wrk(url, connections, seconds))
        ours.append(chaoskit(url, seconds, concurrency=connections, requests=10_000_000)[0])
    ratios = [o.rps / t.rps for o, t in zip(ours, theirs, strict=True) if o.rps and t.rps]
    share = ""
    if ratios:
        share = f"{statistics.median(ratios):.0%}"
        if len(ratios) > 1:
            share += " (" + ", ".join(f"{r:.0%}" for r in ratios) + ")"
    delay = url.rsplit("/", 1)[1]
    what = "2-byte answers" if delay == "0" else f"{delay} ms server"
    name = f"closed loop, {connections} connections, {what}" + (f", {rounds} rounds" if rounds > 1 else "")
    return [name, *_median(theirs).cells(), *_median(ours).cells(), share]


def _median(runs: list[Figures]) -> Figures:
    measured = [r for r in runs if r.rps is not None]
    if not measured:
        return runs[0]

    def middle(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return Figures(
        middle([r.rps for r in measured]),
        middle([r.p50 for r in measured]),
        middle([r.p99 for r in measured]),
    )


def _open_row(url: str, rate: int, seconds: float) -> list[str]:
    ours, out = chaoskit(url, seconds, rate=rate)
    delay = url.rsplit("/", 1)[1]
    what = "2-byte answers" if delay == "0" else f"{delay} ms server"
    return [
        f"open loop {rate:,} req/s, {what}",
        *Figures(note="(no fixed rate)").cells(),
        *ours.cells(),
        _open_note(out, rate),
    ]


def _print(rows: list[list[str]]) -> None:
    header = [
        "run",
        "wrk req/s",
        "wrk p50 ms",
        "wrk p99 ms",
        "chaoskit req/s",
        "chaoskit p50 ms",
        "chaoskit p99 ms",
        "chaoskit/wrk or rate",
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _open_note(out: dict[str, contract.JsonValue], rate: float) -> str:
    achieved = out["rate_rps"]
    assert isinstance(achieved, float | int)
    note = f"{achieved / rate:.1%} of target"
    if out.get("generator_saturated"):
        note += ", generator saturated"
    return note
