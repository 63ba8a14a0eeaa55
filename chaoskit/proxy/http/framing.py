"""Incremental HTTP/1.1 framing of a byte stream: where each message's head and body begin and end.

``Framer.feed`` takes bytes as they arrive and returns events. The raw bytes of the events, put
together, are exactly the bytes fed: a stream that nothing changes passes byte-exact. A stream
that is not HTTP/1.1 (or stops being parseable) turns into ``Raw`` events for good.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
"""Bytes in one message head; a longer one is not parsed (the connection passes through)."""
MAX_METHOD = 32

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
_FIELD_LINES = rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n)*\r\n"
_REQUEST_HEAD = re.compile(
    rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,"
    + str(MAX_METHOD).encode()
    + rb"} [\x21-\x7e]+ HTTP/1\.[01]\r\n"
    + _FIELD_LINES
)
_RESPONSE_HEAD = re.compile(rb"HTTP/1\.[01] [0-9]{3}(?: [\t\x20-\x7e\x80-\xff]*)?\r\n" + _FIELD_LINES)
_FIELD = re.compile(rb"([^:\r\n]+):([^\r\n]*)\r\n")


class Kind(enum.Enum):
    """How a message's body is delimited (RFC 9112 §6)."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until close"
    TUNNEL = "tunnel"
    """No body, and every byte after this head is not HTTP (CONNECT, a 101 upgrade)."""


# The events and framings below are made for every message: plain slotted dataclasses, not
# frozen ones, whose __init__ (object.__setattr__ per field) costs three times as much.


@dataclass(slots=True)
class Framing:
    kind: Kind
    length: int = 0


class Unframeable(Exception):
    """The head can't be framed (two Content-Lengths, an unknown Transfer-Encoding on a request)."""


@dataclass(slots=True)
class Head:
    """A message's start line and header fields, and the exact bytes they came in.

    Fields are split and indexed only when something asks for them: a request no toxic looks at
    closely costs one scan in C (``parse_head``) and a few ``in`` tests (``framing``)."""

    raw: bytes
    first: bytes
    """The start line without its CRLF."""
    _fields: list[tuple[bytes, bytes]] | None = field(default=None, repr=False)
    _index: dict[str, list[str]] | None = field(default=None, init=False, repr=False)
    _lowered: bytes | None = field(default=None, init=False, repr=False)
    framing: Framing | None = field(default=None, init=False, repr=False)
    """How its body is delimited, once the framer has worked it out."""
    _status: int = field(default=-1, init=False, repr=False)

    @property
    def fields(self) -> list[tuple[bytes, bytes]]:
        """(name, value) in order, as sent; the value without surrounding whitespace."""
        if self._fields is None:
            block = self.raw[len(self.first) + 2 : -2]
            self._fields = [(n, v.strip(b" \t")) for n, v in _FIELD.findall(block)]
        return self._fields

    @property
    def lowered(self) -> bytes:
        """The raw head, lowercased: for quick tests of which fields are present."""
        if self._lowered is None:
            self._lowered = self.raw.lower()
        return self._lowered

    @property
    def index(self) -> dict[str, list[str]]:
        """Values by lowercased name."""
        if self._index is None:
            index: dict[str, list[str]] = {}
            for name, value in self.fields:
                index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            self._index = index
        return self._index

    def values(self, name: str) -> list[str]:
        """``name``'s values (``name`` lowercased)."""
        return self.index.get(name, [])

    def get(self, name: str) -> str | None:
        values = self.index.get(name)
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        """A comma-separated list field's items, lowercased (``connection``, ``transfer-encoding``)."""
        values = self.index.get(name)
        if not values:
            return []
        return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]

    # -- requests

    @property
    def method(self) -> str:
        return self.first[: self.first.find(b" ")].decode("latin-1")

    @property
    def target(self) -> str:
        return self.first.split(b" ", 2)[1].decode("latin-1")

    @property
    def version(self) -> bytes:
        """``HTTP/1.1`` or ``HTTP/1.0``, for requests and responses alike."""
        return self.first[:8] if self.first.startswith(b"HTTP/") else self.first[-8:]

    # -- responses

    @property
    def status(self) -> int:
        if self._status < 0:
            self._status = int(self.first[9:12])
        return self._status

    def keeps_alive(self) -> bool:
        """Whether the connection stays open after this message, as its sender declared."""
        connection = self.tokens("connection")
        if self.version == b"HTTP/1.1":
            return "close" not in connection
        return "keep-alive" in connection

    def rebuilt(self, fields: list[tuple[bytes, bytes]], first: bytes | None = None) -> Head:
        """This head with other fields (the start line kept unless given)."""
        start = self.first if first is None else first
        raw = b"".join([start, b"\r\n", *(n + b": " + v + b"\r\n" for n, v in fields), b"\r\n"])
        head = Head(raw, start, fields)
        head.framing = self.framing
        return head


def parse_head(raw: bytes, request: bool) -> Head | None:
    """The head in ``raw`` (ending with CRLF CRLF), or None if it is not a valid HTTP/1.x head."""
    # One pass in C over the start line and every field line. Obsolete line folding and bare CR or
    # LF inside a head are refused by every modern server; such a stream is passed through
    # untouched, not guessed at.
    if not (_REQUEST_HEAD if request else _RESPONSE_HEAD).fullmatch(raw):
        return None
    return Head(raw, raw[: raw.find(b"\r\n")])


def could_start_request(prefix: bytes) -> bool:
    """Whether ``prefix`` (no complete head yet) may still become an HTTP/1.x request head.

    Asked while bytes are held waiting for the end of a head, so that a protocol that is not HTTP
    (a database's binary handshake) is passed on at once instead of waiting for a CRLF CRLF."""
    end = prefix.find(b"\r\n")
    line = prefix.removesuffix(b"\r") if end < 0 else prefix[:end]
    parts = line.split(b" ")
    if len(parts) > 3 or not parts[0] or len(parts[0]) > MAX_METHOD:
        return False
    if any(c not in _TOKEN_CHARS for c in parts[0]) or (len(parts) == 1 and end >= 0):
        return False
    if len(parts) >= 2 and parts[1] and not _TARGET.fullmatch(parts[1]):
        return False
    if len(parts) == 3:
        version = parts[2]
        if end >= 0:
            return version in _VERSIONS
        return any(v.startswith(version) for v in _VERSIONS)
    return end < 0


def could_start_response(prefix: bytes) -> bool:
    """Whether ``prefix`` may still become an HTTP/1.x status line."""
    probe = prefix[:13]
    template = b"HTTP/1.1 200 "
    for i, c in enumerate(probe):
        want = template[i]
        if i == 7:
            if c not in b"01":
                return False
        elif 9 <= i <= 11:
            if c not in b"0123456789":
                return False
        elif i == 12:
            if c not in b" \r":
                return False
        elif c != want:
            return False
    return True


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


def request_framing(head: Head) -> Framing:
    """How a request's body is delimited (RFC 9112 §6.3): CONNECT and upgrades end the HTTP part."""
    lowered = head.lowered
    if head.first.startswith(b"CONNECT ") or (
        b"\nupgrade:" in lowered and "upgrade" in head.tokens("connection")
    ):
        return Framing(Kind.TUNNEL)
    if b"\ntransfer-encoding:" not in lowered and b"\ncontent-length:" not in lowered:
        return _NO_BODY  # a GET, a DELETE: most requests end at their head
    return _length_or_chunked(head, request=True)


def response_framing(head: Head, method: str) -> Framing:
    """How the response to a ``method`` request is delimited."""
    status = head.status
    if status == 101 or (method == "CONNECT" and 200 <= status < 300):
        return Framing(Kind.TUNNEL)
    if method == "HEAD" or status < 200 or status in (204, 304):
        return _NO_BODY
    return _length_or_chunked(head, request=False)


_NO_BODY = Framing(Kind.NONE)
_UNTIL_CLOSE = Framing(Kind.UNTIL_CLOSE)
_CHUNKED = Framing(Kind.CHUNKED)
_LENGTHS: dict[bytes, Framing] = {}
"""Framings by ``Content-Length`` as written: an API's responses come in few sizes, and a cached
framing saves checking the digits and making one per message (they are never changed)."""
_MAX_LENGTHS = 4096


def _length_or_chunked(head: Head, request: bool) -> Framing:
    lowered = head.lowered
    if b"\ntransfer-encoding:" in lowered:
        codings = head.tokens("transfer-encoding")
        if codings and codings[-1] == "chunked":
            return _CHUNKED
        if request:
            raise Unframeable("a request body must end with the chunked coding")
        return _UNTIL_CLOSE
    at = lowered.find(b"\ncontent-length:")
    if at < 0:
        return _NO_BODY if request else _UNTIL_CLOSE
    if lowered.find(b"\ncontent-length:", at + 16) < 0:  # the usual case: one field, read in place
        value = head.raw[at + 16 : head.raw.index(b"\r", at + 16)].strip(b" \t")
        known = _LENGTHS.get(value)
        if known is not None:
            return known
        if value.isdigit() and len(value) <= 18:  # bytes.isdigit: ASCII digits only
            made = Framing(_KIND_LENGTH, int(value))
            if len(_LENGTHS) < _MAX_LENGTHS:
                _LENGTHS[value] = made
            return made
    lengths = {v.strip() for v in (head.get("content-length") or "").split(",") if v.strip()}
    if len(lengths) != 1 or not _DIGITS.fullmatch((length := lengths.pop()).encode()):
        raise Unframeable("Content-Length is not one number")
    return Framing(Kind.LENGTH, int(length))
