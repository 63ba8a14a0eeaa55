"""The tests' own asyncio server helper: stopping it closes every connection it accepted, even
the dozens a CPU-starved server accepts at once just before it stops (CI failed on the sockets
an older fixture leaked that way, as ResourceWarnings in unrelated tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

from tests.servers import serving_protocol


class Slow(asyncio.Protocol):
    """The first connection holds the server's loop for a while, as a starved thread would."""

    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Slow.made += 1
        if Slow.made == 1:
            time.sleep(0.5)


def test_stopping_closes_connections_still_being_accepted() -> None:
    clients: list[socket.socket] = []
    try:
        with serving_protocol(Slow) as port:
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.1)  # the server's loop is now held
            clients += [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        # Each client sees its connection closed by the server, none left open.
        for client in clients:
            with contextlib.suppress(ConnectionResetError):
                assert client.recv(1) == b""
    finally:
        for client in clients:
            client.close()
