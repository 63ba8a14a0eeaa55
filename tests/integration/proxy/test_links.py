"""The proxy's data plane against real sockets: bytes in equal bytes out, toxics on live
connections, half-close, closes, slow dials, many connections and file descriptors."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.proxy import links, listeners, servers, splicing
from tests.integration.proxy import upstreams


def make_proxy(api: httpx.Client, upstream: str, name: str = "p") -> str:
    response = api.post("/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0"})
    assert response.status_code == 201, response.text
    return str(response.json()["listen"])


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(payload)
    assert upstreams.recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


def exchange(listen: str, payload: bytes, writes: list[int]) -> bytes:
    """Send ``payload`` in writes of the given sizes, half-close, and read the echo to EOF."""
    with upstreams.connect(listen, timeout=30) as sock:
        view, start, i = memoryview(payload), 0, 0
        while start < len(payload):
            size = writes[i % len(writes)]
            sock.sendall(view[start : start + size])
            start += size
            i += 1
        sock.shutdown(socket.SHUT_WR)
        return upstreams.recv_all(sock)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[servers.ProxyServer, upstreams.Upstream]]:
    with servers.ProxyServer() as server, upstreams.Upstream(upstreams.echo) as echo:
        yield server, echo


# Every toxic that passes data, on both directions, with attributes that keep the test quick.
PASSING = {
    "noop": {},
    "latency": {"latency": 2, "jitter": 2},
    "bandwidth": {"rate": 200_000},
    "slicer": {"average_size": 700, "size_variation": 300, "delay": 10},
    "slow_close": {"delay": 5},
    "limit_data": {"bytes": 10_000_000},
}


@pytest.mark.parametrize("kind", sorted(PASSING))
def test_every_data_passing_toxic_is_byte_exact(
    shared: tuple[servers.ProxyServer, upstreams.Upstream], kind: str
) -> None:
    server, echo = shared
    with httpx.Client(base_url=server.url, timeout=10) as api:
        listen = make_proxy(api, echo.address, name=f"exact-{kind}")
        for stream in ("upstream", "downstream"):
            body = {"type": kind, "stream": stream, "attributes": PASSING[kind]}
            assert api.post(f"/proxies/exact-{kind}/toxics", json=body).status_code == 200

        @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            payload=st.binary(min_size=1, max_size=20_000) | st.integers(1, 400_000).map(os.urandom),
            writes=st.lists(st.integers(1, 70_000), min_size=1, max_size=5),
        )
        def check(payload: bytes, writes: list[int]) -> None:
            assert exchange(listen, payload, writes) == payload

        check()
        api.delete(f"/proxies/exact-{kind}")


@pytest.mark.parametrize("splice", [True, False], ids=["splice", "event-loop"])
def test_without_toxics_bytes_come_back_in_order(
    shared: tuple[servers.ProxyServer, upstreams.Upstream], splice: bool
) -> None:
    server, echo = shared
    name = f"plain-{splice}"
    with httpx.Client(base_url=server.url) as api:
        listen = make_proxy(api, echo.address, name)
    server.table.proxies[name].splice = splice  # both no-toxic paths: kernel splice and event loop

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        payload=st.binary(min_size=1, max_size=300_000), writes=st.lists(st.integers(1, 100_000), min_size=1)
    )
    def check(payload: bytes, writes: list[int]) -> None:
        assert exchange(listen, payload, writes) == payload

    check()


def test_when_no_thread_can_start_connections_take_the_event_loop(
    api: httpx.Client, echo: upstreams.Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: running out of threads can't safely be done for real on a shared machine.
    started: list[int] = []
    real_start = threading.Thread.start

    def second_fails(thread: threading.Thread) -> None:
        if thread.name.startswith("chaoskit-splice-"):
            started.append(1)
            if len(started) % 2 == 0:
                raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", second_fails)
    listen = make_proxy(api, echo.address)
    payload = os.urandom(200_000)
    assert exchange(listen, payload, [4096]) == payload
    assert len(started) == 2  # one pump ran, the second could not: moved to the event loop


def test_limit_data_passes_exactly_the_first_bytes(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    api.post("/proxies/p/toxics", json={"type": "limit_data", "attributes": {"bytes": 300}})
    payload = os.urandom(1000)
    with upstreams.connect(listen) as sock:
        sock.sendall(payload)
        got = upstreams.recv_all(sock)
    assert got == payload[:300]


def test_half_close_is_passed_through() -> None:
    with servers.ProxyServer() as server, upstreams.Upstream(upstreams.count_after_eof) as upstream:
        with httpx.Client(base_url=server.url) as api:
            listen = make_proxy(api, upstream.address)
        with upstreams.connect(listen) as sock:
            sock.sendall(b"x" * 1000)
            sock.shutdown(socket.SHUT_WR)
            assert upstreams.recv_all(sock) == b"GOT 1000"


def test_toxics_act_on_an_open_connection(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    with upstreams.connect(listen) as sock:
        # Toxics of a second or more, "fast" = under half a second: robust on a loaded machine.
        assert round_trip(sock) < 0.5
        api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 1000}})
        assert round_trip(sock) >= 0.99
        api.post(
            "/proxies/p/toxics",
            json={"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}},
        )
        assert round_trip(sock) >= 1.99
        api.patch("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 0}})
        slowed = round_trip(sock)
        assert 0.99 <= slowed < 1.9
        assert api.post("/reset").status_code == 204
        assert round_trip(sock) < 0.5  # still the same connection, fast again


def test_removing_a_toxic_releases_what_it_holds(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    api.post("/proxies/p/toxics", json={"name": "slow", "type": "latency", "attributes": {"latency": 60_000}})
    with upstreams.connect(listen) as sock:
        sock.sendall(b"held")
        time.sleep(0.2)
        started = time.monotonic()
        assert api.delete("/proxies/p/toxics/slow").status_code == 204
        assert upstreams.recv_exactly(sock, 4) == b"held"
        assert time.monotonic() - started < 10  # not the 60 s the toxic asked for


def test_toxicity_zero_never_applies(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    body = {"type": "latency", "toxicity": 0, "attributes": {"latency": 2000}}
    assert api.post("/proxies/p/toxics", json=body).status_code == 200
    with upstreams.connect(listen) as sock:
        assert round_trip(sock) < 1.0


def test_disable_closes_connections_refuses_new_ones_and_enable_reuses_the_port(
    api: httpx.Client, echo: upstreams.Upstream
) -> None:
    listen = make_proxy(api, echo.address)
    with upstreams.connect(listen) as sock:
        round_trip(sock)
        assert api.post("/proxies/p", json={"enabled": False}).json()["enabled"] is False
        assert sock.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        upstreams.connect(listen)
    assert api.patch("/proxies/p", json={"enabled": True}).json()["listen"] == listen
    with upstreams.connect(listen) as sock:
        round_trip(sock)


def test_changing_the_upstream_or_deleting_closes_connections(
    api: httpx.Client, echo: upstreams.Upstream
) -> None:
    listen = make_proxy(api, echo.address)
    with upstreams.Upstream(upstreams.echo) as other:
        with upstreams.connect(listen) as sock:
            round_trip(sock)
            api.patch("/proxies/p", json={"upstream": other.address})
            assert sock.recv(10) == b""
        with upstreams.connect(listen) as sock:
            round_trip(sock)
            assert api.delete("/proxies/p").status_code == 204
            assert sock.recv(10) == b""


def test_timeout_toxic_drops_data_closes_idle_and_closes_on_removal(
    api: httpx.Client, echo: upstreams.Upstream
) -> None:
    listen = make_proxy(api, echo.address)
    api.post("/proxies/p/toxics", json={"name": "t", "type": "timeout", "attributes": {"timeout": 300}})
    with upstreams.connect(listen) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started >= 0.25
    api.patch("/proxies/p/toxics/t", json={"attributes": {"timeout": 0}})
    with upstreams.connect(listen) as sock:
        sock.sendall(b"lost")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(10)  # the echo is black-holed
        sock.settimeout(10)
        api.delete("/proxies/p/toxics/t")
        assert sock.recv(10) == b""


def test_reset_peer_resets_after_the_first_data(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    api.post(
        "/proxies/p/toxics", json={"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 200}}
    )
    with upstreams.connect(listen) as sock:
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)  # nothing happens before data arrives
        sock.settimeout(10)
        started = time.monotonic()
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert time.monotonic() - started >= 0.15


def test_slow_close_holds_back_the_close(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    api.post("/proxies/p/toxics", json={"type": "slow_close", "attributes": {"delay": 400}})
    with upstreams.connect(listen) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert upstreams.recv_all(sock) == b"bye"
        assert time.monotonic() - started >= 0.35


def test_bandwidth_limits_throughput(api: httpx.Client, echo: upstreams.Upstream) -> None:
    listen = make_proxy(api, echo.address)
    api.post("/proxies/p/toxics", json={"type": "bandwidth", "attributes": {"rate": 500}})
    payload = os.urandom(500_000)
    started = time.monotonic()
    assert exchange(listen, payload, [65536]) == payload
    assert time.monotonic() - started >= 0.8  # 500 KB at 500 KB/s: about a second


def test_unreachable_upstream_accepts_then_closes(api: httpx.Client) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    listen = make_proxy(api, f"127.0.0.1:{port}")
    with upstreams.connect(listen) as sock:
        assert sock.recv(10) == b""


def test_omitted_listen_binds_loopback_only(api: httpx.Client, echo: upstreams.Upstream) -> None:
    response = api.post("/proxies", json={"name": "nolisten", "upstream": echo.address})
    assert response.status_code == 201
    assert response.json()["listen"].startswith("127.0.0.1:")


def test_a_slow_upstream_dial_does_not_block_other_accepts(
    api: httpx.Client, server: servers.ProxyServer
) -> None:
    # A listener whose accept queue is full drops SYNs, so a dial to it hangs.
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(stuck.getsockname())
        fillers.append(filler)
    try:
        listen = make_proxy(api, f"127.0.0.1:{stuck.getsockname()[1]}")
        clients = [upstreams.connect(listen) for _ in range(3)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.table.proxies["p"].accepted < 3:
            time.sleep(0.05)
        # All three were accepted although the first one's dial is still hanging.
        assert server.table.proxies["p"].accepted == 3
        for client in clients:
            client.close()
    finally:
        for filler in fillers:
            filler.close()
        stuck.close()


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_a_thousand_concurrent_connections_and_fds_back_to_baseline(
    server: servers.ProxyServer, api: httpx.Client, echo: upstreams.Upstream
) -> None:
    listen = make_proxy(api, echo.address)
    time.sleep(0.2)
    baseline = _fd_count()
    socks = [upstreams.connect(listen, timeout=60) for _ in range(1000)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(i.to_bytes(4, "big"))
        for i, sock in enumerate(socks):
            assert upstreams.recv_exactly(sock, 4) == i.to_bytes(4, "big")

        async def paths() -> tuple[int, int]:
            connections = server.table.proxies["p"].connections
            spliced = sum(isinstance(c, splicing.SplicedConnection) for c in connections)
            return spliced, len(connections)

        # Both data paths carried traffic: the kernel-spliced ones up to their cap, the rest on the loop.
        assert server.call(paths) == (listeners.MAX_SPLICED if splicing.AVAILABLE else 0, 1000)
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _fd_count() > baseline:
        time.sleep(0.1)
    assert _fd_count() <= baseline


def test_adding_a_toxic_mid_stream_moves_the_connection_without_losing_a_byte(
    api: httpx.Client, echo: upstreams.Upstream
) -> None:
    # A toxic-free connection is piped by the kernel (splice); a toxic moves it to the event loop.
    listen = make_proxy(api, echo.address)
    payload = os.urandom(8_000_000)
    baseline = _fd_count()
    received = bytearray()
    with upstreams.connect(listen, timeout=60) as sock:

        def send() -> None:
            for start in range(0, len(payload), 32_768):
                sock.sendall(payload[start : start + 32_768])
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        toxics = [
            (1_000_000, {"type": "latency", "attributes": {"latency": 1}}),
            (3_000_000, {"type": "slicer", "attributes": {"average_size": 4096}}),
        ]
        while chunk := sock.recv(65536):
            received += chunk
            if toxics and len(received) >= toxics[0][0]:
                assert api.post("/proxies/p/toxics", json=toxics.pop(0)[1]).status_code == 200
        sender.join(60)
    assert not toxics  # both were added while bytes were flowing
    assert bytes(received) == payload
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _fd_count() > baseline:
        time.sleep(0.1)
    assert _fd_count() <= baseline


def test_a_connection_half_closed_on_the_splice_path_keeps_its_reply_after_the_move(
    api: httpx.Client,
) -> None:
    reply = os.urandom(2_000_000)

    def answer_then_close(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)

    with upstreams.Upstream(answer_then_close) as upstream:
        listen = make_proxy(api, upstream.address)
        host, _, port = listen.rpartition(":")
        with socket.socket() as sock:
            # A small receive buffer keeps most of the reply, and the upstream's EOF, in the proxy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(60)
            sock.connect((host, int(port)))
            sock.sendall(b"request")
            sock.shutdown(socket.SHUT_WR)  # passed on by the splice path: no toxic exists yet
            time.sleep(0.3)
            assert api.post("/proxies/p/toxics", json={"type": "noop"}).status_code == 200
            assert upstreams.recv_all(sock) == reply


def test_bytes_held_by_a_toxic_still_arrive_after_the_other_side_half_closed(api: httpx.Client) -> None:
    got: list[int] = []
    done = threading.Event()

    def reply_early_then_read(conn: socket.socket) -> None:
        total = len(conn.recv(65536))
        conn.sendall(b"hello")
        conn.shutdown(socket.SHUT_WR)  # done talking, still listening
        while data := conn.recv(65536):
            total += len(data)
        got.append(total)
        done.set()

    with upstreams.Upstream(reply_early_then_read) as upstream:
        listen = make_proxy(api, upstream.address)
        body = {"type": "latency", "stream": "upstream", "attributes": {"latency": 300}}
        assert api.post("/proxies/p/toxics", json=body).status_code == 200
        with upstreams.connect(listen) as sock:
            sock.sendall(b"first")
            time.sleep(0.1)
            sock.sendall(b"x" * 99_995)  # still held by the latency when the upstream half-closes
            sock.shutdown(socket.SHUT_WR)
            assert upstreams.recv_all(sock) == b"hello"
            assert done.wait(30)
    assert got == [100_000]


def test_toxics_that_leave_the_bytes_alone_cost_no_trip_through_the_task(
    api: httpx.Client, echo: upstreams.Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A noop toxic, one acting only at the close (slow_close), or one that lost its toxicity roll:
    # the bytes go on inside the read callback, as with no toxic; the link's task (a wake-up and
    # a chain of stages per chunk) is for toxics that change them.
    chains = 0
    build = links.Link._chain

    def counted(self: links.Link, active: Sequence[Any]) -> Any:
        nonlocal chains
        chains += 1
        return build(self, active)

    monkeypatch.setattr(links.Link, "_chain", counted)
    listen = make_proxy(api, echo.address)
    for body in (
        {"type": "noop"},
        {"type": "slow_close", "attributes": {"delay": 1}},
        {"type": "latency", "toxicity": 0, "attributes": {"latency": 2000}},
    ):
        assert api.post("/proxies/p/toxics", json=body).status_code == 200
    with upstreams.connect(listen) as sock:
        round_trip(sock, b"first")  # bytes that come before the upstream dial completes queue up
        first = chains
        for i in range(20):
            round_trip(sock, b"alone %d" % i)
        assert chains == first <= 1
        api.post("/proxies/p/toxics", json={"name": "slow", "type": "latency", "attributes": {"latency": 1}})
        round_trip(sock, b"slowed")
        assert chains > 0  # a toxic that holds the bytes takes them through the task
        assert api.delete("/proxies/p/toxics/slow").status_code == 204
        before = chains
        for i in range(20):
            round_trip(sock, b"alone again %d" % i)
        assert chains == before
