"""The embedded server driven only through ``toxiproxy-python`` 0.1.1, a client nobody here wrote,
with the effect of each call checked on real traffic."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaoskit.proxy import servers
from tests.integration.proxy import upstreams

toxiproxy = pytest.importorskip("toxiproxy")

FAST = 0.5
"""Seconds: well under the 1 s toxic, with room for a loaded machine."""


@pytest.fixture
def client(server: servers.ProxyServer) -> Iterator[Any]:
    tp = toxiproxy.Toxiproxy()
    # The client keeps its server address in class attributes: point it at ours, then restore.
    saved = (toxiproxy.api.APIConsumer.host, toxiproxy.api.APIConsumer.port)
    tp.update_api_consumer("127.0.0.1", server.port)
    try:
        yield tp
    finally:
        tp.update_api_consumer(*saved)


def rtt(sock: socket.socket) -> float:
    started = time.monotonic()
    sock.sendall(b"hello")
    assert upstreams.recv_exactly(sock, 5) == b"hello"
    return time.monotonic() - started


def test_the_python_client_drives_the_embedded_server(client: Any, echo: upstreams.Upstream) -> None:
    tp = client
    assert tp.running()
    assert b"version" in tp.version()

    proxy = tp.create(upstream=echo.address, name="shop")
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert set(tp.proxies()) == {"shop"}
    assert tp.get_proxy("shop").upstream == echo.address

    with upstreams.connect(proxy.listen) as sock:
        assert rtt(sock) < FAST
        proxy.add_toxic(type="latency", attributes={"latency": 1000})
        assert list(proxy.toxics()) == ["latency_downstream"]
        assert proxy.get_toxic("latency_downstream").attributes == {"latency": 1000, "jitter": 0}
        assert rtt(sock) >= 0.99  # the open connection slowed down
        proxy.destroy_toxic("latency_downstream")
        assert proxy.toxics() == {}
        assert rtt(sock) < FAST

        proxy.disable()
        assert sock.recv(10) == b""  # disabling closed the connection
    assert tp.get_proxy("shop").enabled is False
    with pytest.raises(ConnectionRefusedError):
        upstreams.connect(proxy.listen)
    proxy.enable()
    with upstreams.connect(proxy.listen) as sock:
        assert rtt(sock) < FAST

    with proxy.down(), pytest.raises(ConnectionRefusedError):
        upstreams.connect(proxy.listen)

    proxy.add_toxic(type="limit_data", name="cap", stream="upstream", attributes={"bytes": 3})
    proxy.disable()
    assert tp.reset()
    state = tp.get_proxy("shop")
    assert state.enabled is True and proxy.toxics() == {}
    with upstreams.connect(proxy.listen) as sock:
        assert rtt(sock) < FAST  # limit_data is gone: all five bytes came back

    populated = tp.populate([{"name": "db", "upstream": echo.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in populated] == ["db"]
    with upstreams.connect(tp.get_proxy("db").listen) as sock:
        assert rtt(sock) < FAST

    assert tp.destroy(proxy)
    tp.destroy_all()
    assert tp.proxies() == {}
