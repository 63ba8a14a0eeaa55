"""Proxy soak: many concurrent connections each echo a numbered byte stream through the embedded
proxy while latency and slicer toxics are added, changed and removed. Every byte must come back,
in order; open file descriptors must return to their baseline. Prints a table, writes JSON.

    python -m bench soak [-- --connections 1000 --mib 1 --json bench/results/soak.json]

``tests/integration/test_proxy_soak.py`` runs the same soak smaller (1,000 x 64 KiB) in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from chaoskit.proxy import servers

CHUNK = 4096
"""Each chunk starts with (connection, sequence) so that loss, duplication and reordering show."""
RESULTS = Path(__file__).parent / "results"


def missing() -> str | None:
    return None


def chunk(connection: int, sequence: int, pattern: bytes) -> bytes:
    head = struct.pack(">II", connection, sequence)
    return head + pattern[: CHUNK - len(head)]


@dataclass
class Soak:
    """What one soak measured."""

    connections: int
    bytes_each: int
    half_close: bool
    seconds: float = 0.0
    verified_bytes: int = 0
    broken: list[str] = field(default_factory=list)
    """One line per connection whose echo was short, wrong or out of order."""
    toxic_changes: int = 0
    toxic_errors: list[str] = field(default_factory=list)
    fds_baseline: int = 0
    fds_peak: int = 0
    """Open descriptors when every connection was open at once (the start barrier), or the most seen."""
    fds_after: int = 0

    @property
    def ok(self) -> bool:
        expected = self.connections * self.bytes_each
        return (
            not self.broken
            and not self.toxic_errors
            and self.verified_bytes == expected
            and self.fds_after <= self.fds_baseline
        )


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _connection(
    index: int, host: str, port: int, size: int, soak: Soak, half_close: bool, start: _Start
) -> None:
    pattern = random.Random(index).randbytes(CHUNK)
    chunks = size // CHUNK
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        soak.broken.append(f"connection {index}: could not connect: {e}")
        start.arrive(soak)
        return
    # No byte moves until every connection is open: they really are concurrent, whatever the
    # machine's speed, and the descriptors are counted at that moment.
    start.arrive(soak)
    await start.released.wait()

    async def send() -> None:
        for sequence in range(chunks):
            writer.write(chunk(index, sequence, pattern))
            if sequence % 4 == 3:
                await writer.drain()
        await writer.drain()
        if half_close:
            writer.write_eof()

    sending = asyncio.create_task(send())
    got = 0
    try:
        for sequence in range(chunks):
            data = await reader.readexactly(CHUNK)
            if data != chunk(index, sequence, pattern):
                conn, seq = struct.unpack(">II", data[:8])
                soak.broken.append(f"connection {index}: chunk {sequence} came back as {conn}/{seq}")
                return
            got += CHUNK
        if half_close and await reader.read(1):
            soak.broken.append(f"connection {index}: more than {size} bytes came back")
            return
        await sending
    except (OSError, asyncio.IncompleteReadError) as e:
        soak.broken.append(f"connection {index}: {type(e).__name__} after {got} bytes: {e}")
    finally:
        sending.cancel()
        soak.verified_bytes += got
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class _Start:
    """The start barrier: released when every connection is open (or failed to open)."""

    def __init__(self, connections: int) -> None:
        self.waiting = connections
        self.released = asyncio.Event()

    def arrive(self, soak: Soak) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            soak.fds_peak = max(soak.fds_peak, _fds())
            self.released.set()


async def _churn(api: str, proxy: str, done: asyncio.Event, soak: Soak, seed: int) -> None:
    """Add, change and remove latency and slicer toxics in both directions until ``done``."""
    rng = random.Random(seed)
    base = f"/proxies/{proxy}/toxics"
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        while not done.is_set():
            stream = rng.choice(["upstream", "downstream"])
            steps = [
                ("POST", base, {"name": "lat", "type": "latency", "stream": stream,
                                "attributes": {"latency": rng.randint(0, 5), "jitter": rng.randint(0, 5)}}),
                ("POST", f"{base}/lat", {"attributes": {"latency": rng.randint(0, 10), "jitter": 2}}),
                ("POST", base, {"name": "cut", "type": "slicer", "stream": stream,
                                "attributes": {"average_size": 512, "size_variation": 256, "delay": 50}}),
                ("POST", f"{base}/cut", {"attributes": {"average_size": rng.randint(64, 4096), "delay": 0}}),
                ("DELETE", f"{base}/lat", None),
                ("DELETE", f"{base}/cut", None),
            ]  # fmt: skip
            for method, path, body in steps:
                response = await client.request(method, path, json=body)
                if response.status_code >= 300:
                    soak.toxic_errors.append(f"{method} {path} -> {response.status_code} {response.text}")
                soak.toxic_changes += 1
                soak.fds_peak = max(soak.fds_peak, _fds())
                await asyncio.sleep(0.05)


async def _soak(connections: int, size: int, seed: int, timeout: float, half_close: bool) -> Soak:
    soak = Soak(connections, size, half_close)
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096)
    up_port = upstream.sockets[0].getsockname()[1]
    with servers.ProxyServer() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            made = await client.post(
                "/proxies", json={"name": "soak", "upstream": f"127.0.0.1:{up_port}", "listen": "127.0.0.1:0"}
            )
            made.raise_for_status()
            host, _, port = str(made.json()["listen"]).rpartition(":")
        await asyncio.sleep(0.2)
        soak.fds_baseline = _fds()
        done = asyncio.Event()
        start = _Start(connections)
        churn = asyncio.create_task(_churn(server.url, "soak", done, soak, seed))
        started = time.monotonic()
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        _connection(i, host, int(port), size, soak, half_close, start)
                        for i in range(connections)
                    )
                ),
                timeout,
            )
        except TimeoutError:
            soak.broken.append(f"not done after {timeout:g}s")
        soak.seconds = time.monotonic() - started
        done.set()
        await churn
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await client.post("/reset")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _fds() > soak.fds_baseline:
            await asyncio.sleep(0.1)
        soak.fds_after = _fds()
    upstream.close()
    await upstream.wait_closed()
    return soak


def run(connections: int, size: int, seed: int = 1, timeout: float = 600.0, half_close: bool = True) -> Soak:
    """One soak: ``connections`` at once, ``size`` bytes each way (a multiple of 4 KiB). With
    ``half_close`` each client shuts its sending side when done and expects the echo's EOF back;
    without, it closes once every byte came back."""
    return asyncio.run(_soak(connections, size - size % CHUNK, seed, timeout, half_close))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--mib", type=float, default=1.0, help="bytes each connection echoes, in MiB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-half-close", dest="half_close", action="store_false", help="close, don't shut down writes"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    soak = run(args.connections, int(args.mib * (1 << 20)), args.seed, half_close=args.half_close)
    total = soak.connections * soak.bytes_each
    rows = [
        ("connections", f"{soak.connections}"),
        ("bytes each way per connection", f"{soak.bytes_each:,}"),
        ("clients half-close", f"{soak.half_close}"),
        ("bytes verified in order", f"{soak.verified_bytes:,} of {total:,}"),
        ("broken connections", f"{len(soak.broken)}"),
        ("toxic changes (errors)", f"{soak.toxic_changes} ({len(soak.toxic_errors)})"),
        ("seconds", f"{soak.seconds:.1f}"),
        ("MiB/s each way", f"{total / (1 << 20) / max(soak.seconds, 1e-9):.1f}"),
        ("open fds: baseline / peak / after", f"{soak.fds_baseline} / {soak.fds_peak} / {soak.fds_after}"),
        ("verdict", "every byte, in order; fds back" if soak.ok else "FAILED"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for line in (soak.broken + soak.toxic_errors)[:10]:
        print(f"  {line}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"bench": "soak", **asdict(soak), "ok": soak.ok}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0 if soak.ok else 1
