"""``http.load``'s own HTTP/1.1 client against a scripted local server: every answer is counted under
its own status however often the same bytes come back, a closed loop sends exactly the requests
asked for, and answers that arrive in pieces or close their connection are read right."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.http import traffic


def answer(status: int, body: bytes = b"ok", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


CHUNKED = b"HTTP/1.1 404 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"


@dataclass
class Script:
    """What the server answers, request by request (cycling), and what it saw."""

    answers: list[bytes | tuple[bytes, bytes]]
    """An answer, or one in two pieces written 5 ms apart."""
    requests: int = 0
    connections: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    open: list[asyncio.Transport] = field(default_factory=list)


class Answering(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        with self.script.lock:
            self.script.connections += 1
        self.script.open.append(transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            with self.script.lock:
                n = self.script.requests
                self.script.requests += 1
            reply = self.script.answers[n % len(self.script.answers)]
            if isinstance(reply, tuple):
                self.transport.write(reply[0])
                asyncio.get_running_loop().call_later(0.005, self.transport.write, reply[1])
            else:
                self.transport.write(reply)
            if b"Connection: close" in (reply if isinstance(reply, bytes) else reply[0]):
                self.transport.close()


@pytest.fixture
def serve() -> Iterator[Script]:
    script = Script(answers=[])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()

    async def start() -> asyncio.Server:
        return await loop.create_server(lambda: Answering(script), "127.0.0.1", 0)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    script.port = server.sockets[0].getsockname()[1]
    yield script

    async def stop() -> None:
        server.close()
        for transport in script.open:
            transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)  # the aborted transports' sockets close on the next turn

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def load(script: Script, **args: object) -> dict[str, contract.JSONValue]:
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
