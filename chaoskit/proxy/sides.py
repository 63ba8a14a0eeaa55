"""One socket of a proxied connection (the client's or the upstream's) as an asyncio protocol.

It only hands what happens on its socket to its connection (``connections.Connection``): bytes read, end
of stream, loss, and the transport's flow control.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from chaoskit.proxy.connections import Connection


class Side(asyncio.Protocol):
    """One socket of a connection: the client's or the upstream's."""

    def __init__(self, connection: Connection, role: str) -> None:
        self.connection = connection
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self._drained: asyncio.Event | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are one in behaviour.
        self.transport = cast(asyncio.Transport, transport)
        self.connection.side_ready(self)

    def data_received(self, data: bytes) -> None:
        self.connection.reading(self).feed(data)

    def eof_received(self) -> bool:
        self.connection.reading(self).feed_eof()
        # Keep our write side open: half-close is passed through. TLS has no half-close (its
        # transport closes after EOF whatever we answer, and warns if we answer True).
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.connection.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.connection.writing(self).update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._drained is not None:
            self._drained.set()
        self.connection.writing(self).update_reading()

    async def drained(self) -> None:
        while self.write_paused and self.transport is not None:
            self._drained = asyncio.Event()
            await self._drained.wait()

    def write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True
