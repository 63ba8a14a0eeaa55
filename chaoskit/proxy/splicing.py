"""The zero-copy path for connections that have no toxic: the kernel moves the bytes.

A connection accepted while its proxy has no toxic is piped by two threads (one per direction)
with ``splice(2)`` through a pipe, so the bytes never enter Python. When a toxic is added to the
proxy, the threads finish the chunk they hold, stop, and hand both sockets to the event loop,
where ``connections.Connection`` runs the toxics (a connection stays there once moved). Linux only;
elsewhere every connection takes the event-loop path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
from collections.abc import Callable

CHUNK = 1 << 20
"""Bytes asked of one splice; the pipe's capacity bounds what really moves."""
PIPE_SIZE = 256 * 1024
F_SETPIPE_SZ = 1031

_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR
_WRITABLE = select.POLLOUT | select.POLLHUP | select.POLLERR

AVAILABLE = hasattr(os, "splice") and hasattr(os, "eventfd")


class _Stop(Exception):
    """The wake event fired: stop at a chunk boundary."""


class Pump:
    """One direction: ``source`` → pipe → ``destination``, on its own thread."""

    def __init__(self, source: socket.socket, destination: socket.socket, wake: int) -> None:
        self.source = source
        self.destination = destination
        self.wake = wake
        self.received = 0
        self.sent = 0
        self.eof = False
        self.failed = False

    def run(self) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError, ImportError):
            import fcntl

            # Fewer, larger moves; refused (and harmless) past the user's pipe-buffer allowance.
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
        readable = select.poll()
        readable.register(self.source.fileno(), _READABLE)
        readable.register(self.wake, select.POLLIN)
        try:
            while True:
                events = dict(readable.poll())
                if self.wake in events:
                    return  # between chunks: nothing is left in the pipe
                try:
                    count = os.splice(self.source.fileno(), write_end, CHUNK, flags=_FLAGS)
                except BlockingIOError:
                    continue
                if count == 0:
                    self.eof = True
                    with contextlib.suppress(OSError):
                        self.destination.shutdown(socket.SHUT_WR)
                    return
                self.received += count
                self._drain(read_end, count)
        except (OSError, _Stop):
            self.failed = True
        finally:
            os.close(read_end)
            os.close(write_end)

    def _drain(self, read_end: int, count: int) -> None:
        writable: select.poll | None = None
        while count:
            try:
                moved = os.splice(read_end, self.destination.fileno(), count, flags=_FLAGS)
            except BlockingIOError:
                if writable is None:
                    writable = select.poll()
                    writable.register(self.destination.fileno(), _WRITABLE)
                writable.poll()
                continue
            count -= moved
            self.sent += moved


class SplicedConnection:
    """A client socket and its upstream socket, piped by two ``Pump`` threads."""

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        finished: Callable[[SplicedConnection], None],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.moving = False
        """A toxic arrived: the pumps stop and ``finished`` hands the sockets to the event loop."""
        self._finished = finished
        self._loop = asyncio.get_running_loop()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.pumps = {
            "upstream": Pump(client, upstream, self._wake),
            "downstream": Pump(upstream, client, self._wake),
        }
        self._running = 2
        for socket_ in (client, upstream):
            socket_.setblocking(False)

    def start(self) -> bool:
        """Start both pumps; False if none could start (the caller then uses the event loop)."""
        started = 0
        for direction, pump in self.pumps.items():
            thread = threading.Thread(target=self._pump, args=(pump,), name=f"chaoskit-splice-{direction}")
            thread.daemon = True
            try:
                thread.start()
            except RuntimeError:  # out of threads: this connection goes through the event loop
                break
            started += 1
        if started == len(self.pumps):
            return True
        self._running = started
        if not started:
            os.close(self._wake)
            return False
        self.move()  # the one pump that runs stops, and the event loop takes both sockets
        return True

    def _pump(self, pump: Pump) -> None:
        pump.run()
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server is shutting down
            self._loop.call_soon_threadsafe(self._pump_done, pump)

    def _pump_done(self, pump: Pump) -> None:
        self._running -= 1
        if pump.failed and not self.closed:
            self.close()  # a reset or a broken pipe on one side ends both
        if self._running:
            return  # the other direction goes on (a half-closed connection still answers)
        os.close(self._wake)
        if not self.moving or self.closed or all(p.eof for p in self.pumps.values()):
            self.closed = True
            self._close_sockets()
        self._finished(self)

    def move(self) -> None:
        """Stop the pumps at a chunk boundary and hand the sockets over (a toxic was added)."""
        if self.closed or self.moving:
            return
        self.moving = True
        os.eventfd_write(self._wake, 1)

    def close(self) -> None:
        """Close both sockets: the pumps wake up and end; the client sees EOF."""
        if self.closed:
            return
        self.closed = True
        if self._running:
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake, 1)
            for socket_ in (self.client, self.upstream):
                with contextlib.suppress(OSError):
                    socket_.shutdown(socket.SHUT_RDWR)
        else:
            self._close_sockets()

    def _close_sockets(self) -> None:
        for socket_ in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                socket_.close()

    def counts(self) -> dict[str, tuple[int, int]]:
        return {d: (p.received, p.sent) for d, p in self.pumps.items()}

    def ended(self) -> frozenset[str]:
        """The directions whose EOF has been passed on (their destination's write side is shut)."""
        return frozenset(d for d, p in self.pumps.items() if p.eof)
