"""``http.load``'s own HTTP/1.1 client against a scripted local server: every answer is counted under
its own status however often the same bytes come back, a closed loop sends exactly the requests
asked for, and answers that arrive in pieces or close their connection are read right; a big closed
loop handed over to worker processes counts every request once, and stops them when cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import threading
import time
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.http import spreading, traffic
from tests.servers import serving_protocol


def answer(status: int, body: bytes = b"ok", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


CHUNKED = b"HTTP/1.1 404 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"


@dataclass
class Script:
    """What the server answers, request by request (cycling), and what it saw."""

    answers: list[bytes | tuple[bytes, bytes]]
    """An answer, or one in two pieces written 5 ms apart."""
    delay: float = 0.0
    """Seconds each answer waits before it is written."""
    requests: int = 0
    connections: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Answering(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        with self.script.lock:
            self.script.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            with self.script.lock:
                n = self.script.requests
                self.script.requests += 1
            reply = self.script.answers[n % len(self.script.answers)]
            if self.script.delay:
                assert isinstance(reply, bytes)
                asyncio.get_running_loop().call_later(self.script.delay, self.transport.write, reply)
            elif isinstance(reply, tuple):
                self.transport.write(reply[0])
                asyncio.get_running_loop().call_later(0.005, self.transport.write, reply[1])
            else:
                self.transport.write(reply)
            if b"Connection: close" in (reply if isinstance(reply, bytes) else reply[0]):
                self.transport.close()


@pytest.fixture
def serve() -> Iterator[Script]:
    script = Script(answers=[])
    with serving_protocol(lambda: Answering(script)) as port:
        script.port = port
        yield script


def load(script: Script, **args: object) -> dict[str, contract.JsonValue]:
    url = f"http://127.0.0.1:{script.port}/"
    out = traffic.LoadProbe().run(
        traffic.LoadArgs.model_validate({"url": url, **args}),
        contract.RunContext(run_id="test", rng=random.Random(0)),
    )
    assert isinstance(out, dict)
    return out


def test_repeated_answers_are_each_counted_under_their_own_status(serve: Script) -> None:
    # Byte-identical answers come back again and again, as from most servers: whatever the client
    # remembers of one answer must never be credited to another.
    serve.answers = [answer(200), answer(503), answer(200, b"ok", "Connection: close"), CHUNKED]
    out = load(serve, requests=400, concurrency=1)
    assert out["requests"] == 400 and out["statuses"] == {"2xx": 200, "4xx": 100, "5xx": 100}
    assert out["errors"] == {"status_404": 100, "status_503": 100}
    # Each "Connection: close" answer ends its connection: the client opened a new one each time.
    assert serve.connections == 101


def test_a_closed_loop_sends_exactly_the_requests_asked_for(serve: Script) -> None:
    serve.answers = [answer(200)]
    out = load(serve, requests=5_000, concurrency=8)
    assert out["requests"] == out["successes"] == 5_000
    assert serve.requests == 5_000 and serve.connections == 8


def test_answers_in_pieces_between_whole_ones_are_read_right(serve: Script) -> None:
    whole = answer(200, b"abcd")
    serve.answers = [whole, (whole[:-2], whole[-2:]), (whole[:10], whole[10:]), answer(201, b"abcd")]
    out = load(serve, requests=40, concurrency=2)
    assert out["requests"] == out["successes"] == 40 and out["errors"] == {}
    assert serve.requests == 40 and serve.connections == 2


def test_a_head_answer_that_repeats_is_complete_without_a_body(serve: Script) -> None:
    # The answer to HEAD announces a length but carries no body.
    serve.answers = [b"HTTP/1.1 200 X\r\nContent-Length: 5\r\n\r\n"]
    out = load(serve, requests=50, concurrency=1, method="HEAD", timeout="2s")
    assert out["successes"] == 50 and out["errors"] == {}


def test_a_saturated_generator_never_blames_its_backlog_on_the_server_as_timeouts(serve: Script) -> None:
    # One connection, 5 ms answers, a rate no generator keeps: requests wait in line for the
    # connection, and those sent with less than 5 ms of their timeout left time out. The server
    # answered each in 5 ms: those timeouts are the generator's backlog, not the server's.
    # The server is a thread of this process: with a 300 ms timeout the saturated loop held the
    # GIL long enough, about once in three runs, to make one answer really late; 1 s keeps that
    # out while the line still grows past the timeout (the old code: 1,874 timeouts).
    serve.answers, serve.delay = [answer(200)], 0.005
    out = load(serve, rate=2_000_000, duration="2.5s", concurrency=1, timeout="1s")
    assert out["generator_saturated"] is True and out["latency_from"] == "sent"
    assert out["errors"] == {} and out["success_ratio"] == 1.0
    assert isinstance(out["unsent"], int) and out["unsent"] > 0
    assert out["requests"] == out["successes"]


@pytest.fixture
def spread_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spread closed loops over worker processes however small (as a big load would be)."""
    monkeypatch.setattr(spreading, "MIN_REQUESTS", 0)
    monkeypatch.setattr(spreading, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(spreading, "cpus", lambda: 3)  # two workers, one CPU left


def children_left() -> list[str]:
    """Worker processes of this one still alive."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == os.getpid() and b"chaoskit.drivers.http.spreading" in cmdline:
                out.append(stat.parent.name)
    return out


@pytest.mark.usefixtures("spread_early")
def test_a_closed_loop_handed_over_to_worker_processes_counts_every_request_once(serve: Script) -> None:
    serve.answers = [answer(200), answer(503)]
    # 5 s: the workers start (import chaoskit) within it even on a loaded machine (3 s was not).
    out = load(serve, requests=10_000_000, concurrency=4, duration="5s")
    # 4 connections here until the workers were ready, then 2 in each of 2 workers.
    assert serve.connections == 8
    assert out["connections"] == 4
    assert out["requests"] == serve.requests > 1_000  # none lost or counted twice in the hand-over
    statuses = out["statuses"]
    assert isinstance(statuses, dict)
    ok, failed = statuses["2xx"], statuses["5xx"]
    assert isinstance(ok, int) and isinstance(failed, int) and abs(ok - failed) <= 8
    assert 4.5 < out["duration_s"] < 6.5  # type: ignore[operator]
    assert children_left() == []


@pytest.mark.usefixtures("spread_early")
def test_a_cancelled_run_stops_its_worker_processes(serve: Script) -> None:
    serve.answers = [answer(200)]
    url = f"http://127.0.0.1:{serve.port}/"
    context = contract.RunContext(run_id="test", rng=random.Random(0))

    def cancel_once_handed_over() -> None:
        deadline = time.monotonic() + 10
        while serve.connections < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        cancelled.append(time.monotonic())
        context.cancel.set()

    cancelled: list[float] = []
    threading.Thread(target=cancel_once_handed_over).start()
    out = traffic.LoadProbe().run(
        traffic.LoadArgs.model_validate({"url": url, "requests": 10_000_000, "concurrency": 4}), context
    )
    assert time.monotonic() - cancelled[0] < 2  # the workers stopped at once, not at the end
    assert isinstance(out, dict) and out["errors"] == {}  # requests cut short are not counted
    assert serve.connections == 8 and children_left() == []


@pytest.mark.usefixtures("spread_early")
def test_a_worker_process_that_cannot_start_leaves_the_load_here(
    serve: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", "raise SystemExit(3)", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )

    monkeypatch.setattr(spreading, "_start", broken)
    serve.answers = [answer(200)]
    out = load(serve, requests=3_000, concurrency=4)
    assert out["requests"] == out["successes"] == serve.requests == 3_000
    assert serve.connections == 4


def test_a_closed_loop_leaves_one_cpu_to_the_rest_of_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 2 cores two workers beside a local server reached 65-73% of wrk; one process, 100%."""
    from chaoskit.drivers.http import connections, tallies, targets

    target = targets.Target(
        host="127.0.0.1", port=9, tls=None, server_hostname=None, request=b"", head_only=False, timeout=1
    )
    sender = connections.Connection(target, tallies.Tally())  # never connected
    for cpus, expected in ((1, None), (2, None), (3, 2), (8, 4)):
        monkeypatch.setattr(spreading, "cpus", lambda cpus=cpus: cpus)
        chosen = spreading.plan([sender] * 8, 10_000_000, 60.0)
        assert (None if chosen is None else chosen[1]) == expected, cpus
