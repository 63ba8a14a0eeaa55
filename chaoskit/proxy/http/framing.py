"""Incremental HTTP/1.1 framing of a byte stream: where each message's head and body begin and end.

``Framer.feed`` takes bytes as they arrive and returns events. The raw bytes of the events, put
together, are exactly the bytes fed: a stream that nothing changes passes byte-exact. A stream
that is not HTTP/1.1 (or stops being parseable) turns into ``Raw`` events for good.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chaoskit.proxy.http.heads import (
    MAX_HEAD,
    Framing,
    Head,
    Kind,
    Unframeable,
    could_start_request,
    could_start_response,
    parse_head,
)

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


@dataclass(slots=True)
class HeadEvent:
    head: Head


@dataclass(slots=True)
class Body:
    raw: bytes
    """The bytes as they came (chunk sizes and CRLFs included)."""
    data: bytes
    """The body bytes they carry (``raw`` without chunked framing)."""


@dataclass(slots=True)
class End:
    """The message is complete (its head and, if any, its body)."""


@dataclass(slots=True)
class Raw:
    """Bytes outside any message: stray CRLFs between messages, a tunnel, a stream that is not HTTP."""

    data: bytes


Event = HeadEvent | Body | End | Raw
END = End()


# A framer's state, and the kinds as the hot paths read them: module constants, since reading an
# Enum member through its class costs ~0.1 µs on Python 3.11, a dozen times per message.
_HEAD, _BODY, _RAW = 1, 2, 3
_KIND_NONE, _KIND_LENGTH, _KIND_CHUNKED = Kind.NONE, Kind.LENGTH, Kind.CHUNKED
_KIND_UNTIL_CLOSE, _KIND_TUNNEL = Kind.UNTIL_CLOSE, Kind.TUNNEL


class _Chunked:
    """Reads a chunked body: sizes, data, CRLFs, the last chunk and the trailer section."""

    def __init__(self) -> None:
        self.remaining = -1  # -1: a size line is next; -2: the CRLF after data; -3: trailers
        self.trailer_bytes = 0

    def feed(self, buf: bytes, pos: int) -> tuple[int, bytes, bytes, bool] | None:
        """(new pos, raw, data, done) for what can be read from ``buf[pos:]``; None if malformed.

        Stops before an incomplete line (the caller keeps it for the next feed)."""
        start = pos
        data: list[bytes] = []
        n = len(buf)
        while pos < n:
            if self.remaining > 0:
                take = min(self.remaining, n - pos)
                data.append(buf[pos : pos + take])
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.remaining = -2
            elif self.remaining == -2:
                if n - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    return None
                pos += 2
                self.remaining = -1
            else:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > MAX_HEAD:
                        return None
                    break
                line = buf[pos:end]
                pos = end + 2
                if self.remaining == -3:
                    self.trailer_bytes += len(line) + 2
                    if self.trailer_bytes > MAX_HEAD:
                        return None
                    if not line:
                        return pos, buf[start:pos], b"".join(data), True
                    continue
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _CHUNK_SIZE.fullmatch(size):
                    return None
                self.remaining = int(size, 16) or -3
        return pos, buf[start:pos], b"".join(data), False


class Framer:
    """One direction of a connection, cut into messages. ``framing`` tells, from a head, how its
    body is delimited (it differs for requests and responses, and for responses depends on the
    request); raising ``Unframeable`` turns the stream into raw bytes."""

    def __init__(self, request: bool, framing: Callable[[Head], Framing], syncing: bool = False) -> None:
        self.request = request
        self._framing = framing
        self._state = _HEAD
        self._pending = b""
        self._remaining = 0
        self._kind = _KIND_NONE
        self._chunked: _Chunked | None = None
        self.syncing = syncing
        """Joined mid-stream: pass feeds through until one starts with a message head."""

    @property
    def raw(self) -> bool:
        return self._state is _RAW

    @property
    def in_message(self) -> bool:
        """A head has been seen and its body is not complete yet."""
        return self._state is _BODY

    @property
    def idle(self) -> bool:
        """At a message boundary with nothing held: the next byte fed starts a head."""
        return self._state is _HEAD and not self._pending and not self.syncing

    def begin_body(self, remaining: int) -> None:
        """A head the caller framed itself (``whole_response``) has been passed with part of its
        body: ``remaining`` body bytes (more than none) follow, delimited by ``Content-Length``."""
        assert self.idle and remaining > 0
        self._state, self._kind, self._remaining = _BODY, _KIND_LENGTH, remaining

    def skip_body(self, count: int) -> bool:
        """Pass ``count`` bytes of a ``Content-Length`` body without events, if they don't end it
        (the caller forwards them as they are); False, and nothing changed, otherwise."""
        if self._state is not _BODY or self._kind is not _KIND_LENGTH or self._remaining <= count:
            return False
        self._remaining -= count
        return True

    def go_raw(self) -> list[Event]:
        """Stop parsing: what is held is handed back, and every later byte passes as ``Raw``."""
        self._state = _RAW
        held, self._pending = self._pending, b""
        return [Raw(held)] if held else []

    def feed_eof(self) -> list[Event]:
        """The stream ended: a body delimited by the close is complete; anything held goes raw."""
        if self._state is _BODY and self._kind is _KIND_UNTIL_CLOSE:
            self._state = _HEAD
            return [END]
        return self.go_raw()

    def feed(self, data: bytes) -> list[Event]:
        """The events in ``data``; ``framing`` is called for each head, in order."""
        if self._state is _RAW:
            return [Raw(data)] if data else []
        if self.syncing:
            starts = could_start_request if self.request else could_start_response
            if not starts(data[:MAX_HEAD]):
                return [Raw(data)] if data else []
            self.syncing = False
        buf = self._pending + data if self._pending else data
        self._pending = b""
        events: list[Event] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._state is _HEAD:
                pos = self._head(buf, pos, events)
            elif self._state is _BODY:
                pos = self._body(buf, pos, events)
            else:
                events.append(Raw(buf[pos:]))
                pos = n
            if pos < 0:
                break
        return events

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        """Reads a head at ``pos``; the new position, or -1 when the rest is held or went raw."""
        n = len(buf)
        if buf[pos] == 13:  # a CR where a head starts: stray CRLFs between messages (RFC 9112 §2.2)
            if buf.startswith(b"\r\n", pos):
                events.append(Raw(b"\r\n"))
                return pos + 2
            if pos == n - 1:  # half of a stray CRLF (no copy of the rest)
                self._pending = b"\r"
                return -1
        end = buf.find(b"\r\n\r\n", pos, pos + MAX_HEAD + 4)
        head = None
        if end >= 0:
            # The usual chunk is one whole head (a GET, a response head): no copy of it.
            head = parse_head(buf if pos == 0 and end + 4 == n else buf[pos : end + 4], self.request)
        elif n - pos <= MAX_HEAD:
            starts = could_start_request if self.request else could_start_response
            if starts(buf[pos:]):
                self._pending = buf[pos:]
                return -1
        if head is None:
            self._state = _RAW
            events.append(Raw(buf[pos:]))
            return -1
        try:
            framing = head.framing = self._framing(head)
        except Unframeable:
            self._state = _RAW
            events.append(Raw(buf[pos:]))
            return -1
        events.append(HeadEvent(head))
        self._kind = framing.kind
        if framing.kind is _KIND_TUNNEL:
            events.append(END)
            self._state = _RAW
        elif framing.kind is _KIND_NONE or (framing.kind is _KIND_LENGTH and framing.length == 0):
            events.append(END)
        else:
            self._state = _BODY
            self._remaining = framing.length
            self._chunked = _Chunked() if framing.kind is _KIND_CHUNKED else None
        return end + 4

    def _body(self, buf: bytes, pos: int, events: list[Event]) -> int:
        n = len(buf)
        if self._kind is _KIND_UNTIL_CLOSE:
            piece = buf[pos:] if pos else buf
            events.append(Body(piece, piece))
            return n
        if self._kind is _KIND_LENGTH:
            take = min(self._remaining, n - pos)
            piece = buf[pos : pos + take] if (pos or take != n) else buf
            events.append(Body(piece, piece))
            self._remaining -= take
            if self._remaining == 0:
                events.append(END)
                self._state = _HEAD
            return pos + take
        assert self._chunked is not None
        read = self._chunked.feed(buf, pos)
        if read is None:
            self._state = _RAW
            events.append(Raw(buf[pos:]))
            return -1
        new, raw, body, done = read
        if raw:
            events.append(Body(raw, body))
        if done:
            events.append(END)
            self._state = _HEAD
            return new
        if new < n:
            self._pending = buf[new:]
            return -1
        return new
