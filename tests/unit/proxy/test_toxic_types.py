"""The toxic type design, through the API and real sockets: the registry, per-connection state,
and a two-way toxic that answers the client itself (the hook the HTTP toxics build on)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator, Mapping
from typing import ClassVar

import httpx
import pytest

from chaoskit.proxy import servers, tcp_toxics, toxic_types
from tests.integration.proxy import upstreams


def test_the_registry_names_every_tcp_type_with_its_attributes_in_echo_order() -> None:
    registry = toxic_types.registry()
    assert all(registry[t.kind] is t for t in tcp_toxics.TYPES)
    assert {t.kind: [a.name for a in t.schema] for t in tcp_toxics.TYPES} == {
        "latency": ["latency", "jitter"],
        "bandwidth": ["rate"],
        "slow_close": ["delay"],
        "timeout": ["timeout"],
        "reset_peer": ["timeout"],
        "slicer": ["average_size", "size_variation", "delay"],
        "limit_data": ["bytes"],
        "noop": [],
    }
    assert [t.kind for t in tcp_toxics.TYPES if t.resets] == ["reset_peer"]


def test_time_attributes_read_in_seconds_in_their_unit() -> None:
    slicer = toxic_types.build({"type": "slicer", "attributes": {"average_size": 1, "delay": 1500}}, set())
    latency = toxic_types.build({"type": "latency", "attributes": {"latency": 250}}, set())
    assert (slicer.seconds("delay"), latency.seconds("latency")) == (0.0015, 0.25)


@dataclasses.dataclass
class Knock(toxic_types.Toxic):
    """Test type: counts a connection's client chunks (state shared by both directions), answers
    ``knock`` itself, and tags every answer from the server with the count so far."""

    kind: ClassVar[str] = "knock"
    both_ways: ClassVar[bool] = True
    stage: ClassVar[type[toxic_types.Stage[toxic_types.Toxic]]]


class Count:
    def __init__(self) -> None:
        self.chunks = 0


class KnockStage(toxic_types.Stage[toxic_types.Toxic]):
    async def pipe(self, chunk: toxic_types.Chunk, forward: toxic_types.Forward) -> None:
        count = self.link.shared(self.toxic, Count)
        if self.link.direction == "downstream":
            await forward(dataclasses.replace(chunk, data=b"[%d]" % count.chunks + chunk.data))
            return
        count.chunks += 1
        if chunk.data == b"knock":
            self.link.send_back(b"who is there %d" % count.chunks)
        else:
            await forward(chunk)


Knock.stage = KnockStage


@pytest.fixture
def knocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[servers.ProxyServer, str]]:
    known: Mapping[str, type[toxic_types.Toxic]] = {**toxic_types.registry(), "knock": Knock}
    monkeypatch.setattr(toxic_types, "registry", lambda: known)
    with (
        servers.ProxyServer() as server,
        upstreams.Upstream(upstreams.echo) as echo,
        httpx.Client(base_url=server.url) as api,
    ):
        made = api.post("/proxies", json={"name": "p", "upstream": echo.address, "listen": "127.0.0.1:0"})
        answer = api.post("/proxies/p/toxics", json={"type": "knock", "stream": "upstream"})
        assert answer.status_code == 200, answer.text
        yield server, str(made.json()["listen"])


def ask(sock: socket.socket, data: bytes, expect: int) -> bytes:
    sock.sendall(data)
    return upstreams.recv_exactly(sock, expect)


def test_a_two_way_toxic_keeps_state_per_connection_and_answers_the_client_itself(
    knocking: tuple[servers.ProxyServer, str],
) -> None:
    _, listen = knocking
    with upstreams.connect(listen) as first:
        assert ask(first, b"hello", 8) == b"[1]hello"  # the server's echo, tagged downstream
        assert ask(first, b"knock", 14) == b"who is there 2"  # answered by the proxy
        assert ask(first, b"again", 8) == b"[3]again"
        with upstreams.connect(listen) as second:  # a connection of its own: its own count
            assert ask(second, b"hi", 5) == b"[1]hi"
        assert ask(first, b"more", 7) == b"[4]more"


def test_removing_a_two_way_toxic_drops_it_from_both_directions(
    knocking: tuple[servers.ProxyServer, str],
) -> None:
    server, listen = knocking
    with upstreams.connect(listen) as sock:
        assert ask(sock, b"x", 4) == b"[1]x"
        with httpx.Client(base_url=server.url) as api:
            assert api.delete("/proxies/p/toxics/knock_upstream").status_code == 204
        assert ask(sock, b"knock", 5) == b"knock"  # the server's plain echo, untagged


def test_two_types_of_one_name_are_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class OtherLatency(toxic_types.Toxic):
        kind: ClassVar[str] = "latency"

    monkeypatch.setattr(tcp_toxics, "TYPES", (*tcp_toxics.TYPES, OtherLatency))
    with pytest.raises(RuntimeError, match=r"two toxic types are named 'latency'.*OtherLatency"):
        toxic_types.registry.__wrapped__()
