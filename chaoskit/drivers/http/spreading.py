"""Worker processes for a big closed loop: its connections shared among a few child processes, each
running the same closed loop on an event loop of its own, their counts merged at the end.

One Python process spends about as much CPU per request as wrk does, but it gets one core's share
of a busy machine and waits on its own wake-ups: a few processes keep pace with wrk where one does
not, and the engine's event loop (in the parent) has the interpreter to itself meanwhile.

Starting a process takes a few tenths of a second here, so the load starts in this process and is
handed over once every child is ready: the requests in flight here complete, then the children get
what is left of the count and the same time limit, never more connections in all than asked for.
Only plain-HTTP loads big enough to repay the start are spread; TLS and httpx stay in-process.

A child says ``ready`` on stdout, reads its share as one JSON line on stdin and writes its counts as
JSON on stdout; the end of its stdin (the parent cancelled, or is gone) stops it at once, its
requests in flight uncounted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from chaoskit.drivers.http import connections, tallies, targets
from chaoskit.errors import DriverError

perf = time.perf_counter
MIN_REQUESTS = 50_000
"""A closed loop of fewer requests stays in one process (it would end before children start)."""
MIN_SECONDS = 2.0
"""Nor is one spread whose time limit is nearer than this."""
MOST_PROCESSES = 4
READY = b"ready\n"
END_GRACE = 10.0
"""Seconds a child gets to report after it was told to stop, before it is killed."""


def plan(
    senders: Sequence[connections.Sender], total: int, seconds: float
) -> tuple[targets.Target, int] | None:
    """The target and the number of processes to spread a closed loop over, or None to keep it
    in this process."""
    # One CPU is left to the rest of this machine: the engine's loop and, as often as not, the
    # system under test. On 2 cores two workers beside a local server reached 65-73% of wrk where
    # one process reached 100% (python -m bench http_load, a quiet machine).
    processes = min(cpus() - 1, len(senders), MOST_PROCESSES)
    if processes < 2 or total < MIN_REQUESTS or seconds < MIN_SECONDS:
        return None
    first = senders[0]
    if not isinstance(first, connections.Connection) or first.target.tls is not None:
        return None
    return first.target, processes


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def shares(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` as even as whole numbers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def spread(
    target: targets.Target,
    processes: int,
    here: Coroutine[Any, Any, None],
    *,
    workers: int,
    budget: connections.Budget,
    cancel: threading.Event,
    tick: float,
    tally: tallies.Tally,
) -> None:
    """Send in this process (``here``, on ``budget``) while ``processes`` children start; once
    they are all ready, stop here and hand them what is left of the budget. A load that ends
    first, or a child that fails to start, leaves it all here."""
    sending = asyncio.ensure_future(here)
    children: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(processes):
            children.append(await _start())
        ready = asyncio.ensure_future(_ready(children))
        await asyncio.wait([sending, ready], return_when=asyncio.FIRST_COMPLETED)
        if not ready.done() or not ready.result():
            ready.cancel()
            await _end(children)  # not needed: the load ended first, or one of them failed
            await sending
            return
        budget.stopped = True  # the requests in flight here complete and count
        await sending
        if budget.remaining <= 0 or cancel.is_set() or perf() >= budget.stop_at:
            return
        deadline = time.monotonic() + (budget.stop_at - perf())  # the clock every process reads alike
        for child, requests, connections_ in zip(
            children, shares(budget.remaining, processes), shares(workers, processes), strict=True
        ):
            assert child.stdin is not None
            child.stdin.write(
                json.dumps(_share(target, requests, connections_, deadline, tick)).encode() + b"\n"
            )
        for report in await _reports(children, cancel, tick):
            tally.absorb(report)
    finally:
        if not sending.done():
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        await _end(children)


async def _end(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.wait()


async def _start() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chaoskit.drivers.http.spreading",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _ready(children: list[asyncio.subprocess.Process]) -> bool:
    for child in children:
        assert child.stdout is not None
        if await child.stdout.readline() != READY:
            return False
    return True


def _share(target: targets.Target, total: int, workers: int, deadline: float, tick: float) -> dict[str, Any]:
    return {
        "host": target.host,
        "port": target.port,
        "request": base64.b64encode(target.request).decode(),
        "head_only": target.head_only,
        "timeout": target.timeout,
        "total": total,
        "workers": workers,
        "deadline": deadline,
        "tick": tick,
    }


async def _reports(
    children: list[asyncio.subprocess.Process], cancel: threading.Event, tick: float
) -> list[dict[str, Any]]:
    """What each child counted, once it is done; a cancel ends their input, which stops them."""
    outputs = [asyncio.ensure_future(_output(child)) for child in children]
    stopped_at: float | None = None
    while not all(o.done() for o in outputs):
        await asyncio.wait(outputs, timeout=tick)
        if cancel.is_set() and stopped_at is None:
            stopped_at = perf()
            for child in children:
                if child.stdin is not None:
                    child.stdin.close()
        if stopped_at is not None and perf() - stopped_at > END_GRACE:
            for output in outputs:
                output.cancel()
            raise DriverError("http.load: a worker process did not stop when asked; it was killed")
    reports: list[dict[str, Any]] = []
    for child, output in zip(children, outputs, strict=True):
        out, err = output.result()
        try:
            reports.append(json.loads(out))
        except ValueError:
            last = err.decode(errors="replace").strip().splitlines()[-1:]
            why = last[0] if last else f"exit status {child.returncode}"
            raise DriverError(f"http.load: a worker process failed: {why}") from None
    return reports


async def _output(child: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    assert child.stdout is not None and child.stderr is not None
    out, err = await asyncio.gather(child.stdout.read(), child.stderr.read())
    await child.wait()
    return out, err


def main() -> int:
    """A child: say it is ready, read its share, run it, write what it counted."""
    from chaoskit.drivers.http import generating  # before READY: the parent waits for this

    os.write(1, READY)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            return 0  # the load ended before it needed this process
        line += chunk
    share = json.loads(line)
    target = targets.Target(
        host=share["host"],
        port=share["port"],
        tls=None,
        server_hostname=None,
        request=base64.b64decode(share["request"]),
        head_only=share["head_only"],
        timeout=share["timeout"],
    )
    tally = tallies.Tally()
    cancel = threading.Event()

    async def load() -> generating.Outcome:
        loop = asyncio.get_running_loop()

        def read() -> None:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:  # the parent cancelled the run, or is gone
                loop.remove_reader(0)
                cancel.set()

        loop.add_reader(0, read)
        return await generating.closed_loop(
            lambda: connections.Connection(target, tally),
            total=share["total"],
            workers=share["workers"],
            stop_at=perf() + share["deadline"] - time.monotonic(),
            cancel=cancel,
            tick=share["tick"],
            tally=tally,
            spread=False,
        )

    generating.run(load)
    os.write(1, json.dumps(tally.state()).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
