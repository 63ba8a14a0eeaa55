"""HTTP/1.1 message heads: reading one (``parse_head``), and how its body is delimited.

A ``Head`` keeps the exact bytes it came in; its fields are split only when something asks. The
quick readers (``whole_request``, ``whole_response``) give the answer of the full ones for the
usual message in fewer steps: the proxy reads most messages with them, without a ``Framer``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
"""Bytes in one message head; a longer one is not parsed (the connection passes through)."""
MAX_METHOD = 32

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
_FIELD_LINES = rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n)*\r\n"
_REQUEST_HEAD = re.compile(
    rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,"
    + str(MAX_METHOD).encode()
    + rb"} [\x21-\x7e]+ HTTP/1\.[01]\r\n"
    + _FIELD_LINES
)
_BODILESS_REQUEST = re.compile(
    rb"(?!CONNECT )[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,"
    + str(MAX_METHOD).encode()
    + rb"} [\x21-\x7e]+ HTTP/1\.[01]\r\n"
    + rb"(?:(?!(?i:content-length|transfer-encoding|upgrade):)[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n)*\r\n"
)
"""A request head with no field that gives it a body or may open a tunnel: ``_REQUEST_HEAD`` and
``request_framing`` in one pass in C, for most requests (a GET, a DELETE)."""
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


def whole_request(data: bytes) -> Head | None:
    """``data``'s head if ``data`` is exactly one request head whose message has no body and opens
    no tunnel (framed ``NO_BODY``); None for anything else (the ``Framer`` reads it). Never a
    different answer from ``parse_head`` and ``request_framing``, only a quicker one."""
    if len(data) > MAX_HEAD + 4 or not _BODILESS_REQUEST.fullmatch(data):
        return None
    head = Head(data, data[: data.find(b"\r\n")])
    head.framing = NO_BODY
    return head


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


def request_framing(head: Head) -> Framing:
    """How a request's body is delimited (RFC 9112 §6.3): CONNECT and upgrades end the HTTP part."""
    lowered = head.lowered
    if head.first.startswith(b"CONNECT ") or (
        b"\nupgrade:" in lowered and "upgrade" in head.tokens("connection")
    ):
        return Framing(Kind.TUNNEL)
    if b"\ntransfer-encoding:" not in lowered and b"\ncontent-length:" not in lowered:
        return NO_BODY  # a GET, a DELETE: most requests end at their head
    return _length_or_chunked(head, request=True)


def response_framing(head: Head, method: str) -> Framing:
    """How the response to a ``method`` request is delimited."""
    status = head.status
    if status == 101 or (method == "CONNECT" and 200 <= status < 300):
        return Framing(Kind.TUNNEL)
    if method == "HEAD" or status < 200 or status in (204, 304):
        return NO_BODY
    return _length_or_chunked(head, request=False)


NO_BODY = Framing(Kind.NONE)
"""The framing of most requests (a GET, a DELETE): the message ends at its head."""
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
        return NO_BODY if request else _UNTIL_CLOSE
    known = _one_length(head.raw, lowered, at)
    if known is not None:
        return known
    lengths = {v.strip() for v in (head.get("content-length") or "").split(",") if v.strip()}
    if len(lengths) != 1 or not _DIGITS.fullmatch((length := lengths.pop()).encode()):
        raise Unframeable("Content-Length is not one number")
    return Framing(Kind.LENGTH, int(length))


def _one_length(raw: bytes, lowered: bytes, at: int) -> Framing | None:
    """The framing of the head ``raw`` whose one ``Content-Length`` field starts at ``at`` (its
    LF) with one plain number, read in place; None if it is written any other way."""
    if lowered.find(b"\ncontent-length:", at + 16) >= 0:
        return None
    value = raw[at + 16 : raw.index(b"\r", at + 16)].strip(b" \t")
    known = _LENGTHS.get(value)
    if known is not None:
        return known
    if not value.isdigit() or len(value) > 18:  # bytes.isdigit: ASCII digits only
        return None
    made = Framing(Kind.LENGTH, int(value))
    if len(_LENGTHS) < _MAX_LENGTHS:
        _LENGTHS[value] = made
    return made


def whole_response(data: bytes, method: str) -> tuple[int, int] | None:
    """(head size, body size) of the response at the start of ``data``, for the usual response: a
    valid head with a final status and a body that is absent or delimited by one plain
    ``Content-Length``; None for any other (the ``Framer`` reads those). ``method`` is the
    request's. The same answer as ``parse_head`` and ``response_framing``, with no ``Head`` made."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        return None
    size = end + 4
    raw = data if size == len(data) else data[:size]
    if not _RESPONSE_HEAD.fullmatch(raw):
        return None
    status = int(raw[9:12])
    if status < 200 or (method == "CONNECT" and status < 300):
        return None
    if method == "HEAD" or status in {204, 304}:
        return size, 0
    lowered = raw.lower()
    at = lowered.find(b"\ncontent-length:")
    if at < 0 or b"\ntransfer-encoding:" in lowered:
        return None
    framed = _one_length(raw, lowered, at)
    return None if framed is None else (size, framed.length)
