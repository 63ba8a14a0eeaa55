"""One proxied connection seen as HTTP/1.1: which requests the ``http_*`` toxics act on, and how.

``Session`` is sans-I/O. Feed it what each side sent (``from_client``, ``from_server``); it
answers with what to send where and when (``Send``, ``Hold``, ``Close``). The caller carries
the items addressed to one side out **in the order given, across calls**: a synthetic answer is
returned by whichever call completes the response before it, so responses keep request order
(pipelining). Requests no toxic acts on pass byte-exact; so do upgrades, CONNECT tunnels and
anything that is not HTTP/1.1. The data plane calls ``client_chunk``/``server_chunk``: None for
a chunk that goes on as it came (one whole message: read without events, by ``heads``' quick
readers; anything else goes through the ``Framer``, with the same result).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chaoskit.proxy.http import counting, framing, heads, rules

log = logging.getLogger("chaoskit.proxy")
_TUNNEL = heads.Kind.TUNNEL
"""Read per message: a module constant costs less than the Enum member through its class."""

TLS_ALERT = bytes([21, 3, 1, 0, 2, 2, 40])
"""A fatal TLS ``handshake_failure`` alert: what a TLS client is told when the proxy can't
terminate TLS (it won't intercept without a certificate)."""


# Made for every message: slotted, not frozen (see heads.Framing).


@dataclass(slots=True)
class Send:
    to: str
    """``server`` or ``client``."""
    data: bytes


@dataclass(slots=True)
class Hold:
    """Send nothing more to ``to`` before ``until`` (``time.monotonic()``), unless every toxic in
    ``by`` is removed first: a removed delay lets what it holds go at once, as TCP toxics do."""

    to: str
    until: float
    by: tuple[str, ...] = ()


@dataclass(slots=True)
class Close:
    """Once what comes before it is sent to the client, end the connection: a TCP RST if
    ``reset``, else the server side is closed and the client's gets an orderly close."""

    reset: bool


Out = Send | Hold | Close


@dataclass(slots=True)
class _Slot:
    """One request's place in the order of responses."""

    method: str
    on_response: list[rules.Rule] = field(default_factory=list)
    answer: bytes | None = None
    """The answer an abort gives instead of forwarding the request (None: forwarded)."""
    reset: bool = False
    ready: bool = False
    """The answer may go out (the request has been read, or the answer can't wait for it)."""
    close_after: bool = False


_PASSED = _Slot("")
"""The place of every request forwarded untouched (the usual case): one shared slot, never changed,
so that a request no toxic acts on costs no object of its own."""


@dataclass(slots=True)
class _Reply:
    """The response being passed to the client and what is done to its body."""

    slot: _Slot | None
    interim: bool = False
    replace: bool = False
    left: int | None = None
    """Body bytes still to pass under a truncate."""
    chunked: bool = False
    until_close: bool = False
    ended: bool = False


class Session:
    """One connection's HTTP view; ``rules`` is read afresh for every request."""

    def __init__(
        self,
        proxy: str,
        rule_list: Callable[[], Sequence[rules.Rule]],
        rng: random.Random,
        counters: counting.Counters,
        *,
        fresh: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proxy = proxy
        self._rules = rule_list
        self._rng = rng
        self._counters = counters
        self._clock = clock
        self._first = fresh
        self._requests = framing.Framer(True, heads.request_framing, syncing=not fresh)
        self._responses = framing.Framer(False, self._response_framing, syncing=not fresh)
        self._slots: deque[_Slot] = deque()
        self._methods: deque[str] = deque()
        """Methods of the forwarded requests whose responses the framer has not met yet."""
        self._reading: _Slot | None = None
        self._reply: _Reply | None = None
        self._client_done = False
        self._known_request: heads.Head | None = None
        """The last whole request read by the quick path: the same bytes again are not parsed again."""
        self._known_response: tuple[bytes, str, tuple[int, int]] | None = None
        """The last response head the quick path framed, the method it answered, and its sizes."""
        self.closed = False
        """A ``Close`` was given: later bytes are dropped."""

    def at_rest(self) -> bool:
        """Nothing decided is under way, nothing half read: dropped now, nothing would be lost."""
        return (
            not self.closed
            and not self._client_done
            and self._reading is None
            and self._reply is None
            and (self._requests.idle or self._requests.raw)
            and (self._responses.idle or self._responses.raw)
            and all(slot is _PASSED for slot in self._slots)
        )

    # -- client → server

    def client_chunk(self, data: bytes) -> list[Out] | None:
        """What to do with ``data`` the client sent; None: send it to the server as it is.

        The usual chunk, one whole request without a body that no toxic acts on, is decided here
        without making an event or an item (the proxy's per-request cost)."""
        head = self._whole_request(data)
        if head is None:
            return self._read_client(data)
        self._first = False
        out: list[Out] = []
        if self._act(head, out):
            self._reading = None
            return None
        self._request_end(out)
        return out

    def from_client(self, data: bytes) -> list[Out]:
        """``client_chunk`` as items: what to send where, in order."""
        said = self.client_chunk(data)
        return [Send("server", data)] if said is None else said

    def _whole_request(self, data: bytes) -> heads.Head | None:
        """``data``'s head if it is exactly one request without a body, read at a message boundary."""
        if self.closed or self._client_done or not self._requests.idle:
            return None
        known = self._known_request
        if known is not None and data == known.raw:
            return known  # the same request again: a client polling, a load generator
        head = heads.whole_request(data)
        if head is not None:
            self._known_request = head
        return head

    def _read_client(self, data: bytes) -> list[Out]:
        if self.closed:
            return []
        if self._first:
            self._first = False
            if data[:1] == b"\x16" and data[1:2] in (b"", b"\x03"):
                return self._refuse_tls()
        out: list[Out] = []
        for event in self._requests.feed(data):
            self._request_event(event, out)
        return out

    def client_eof(self) -> list[Out]:
        """The client half-closed: bytes held for an incomplete head go on as they are."""
        if self.closed:
            return []
        out: list[Out] = []
        for event in self._requests.feed_eof():
            self._request_event(event, out)
        return out

    def _refuse_tls(self) -> list[Out]:
        refused = self._counters.tls_refused
        if self.proxy not in refused:
            log.warning(
                "chaoskit proxy %r: a TLS connection was refused: its http_* toxics can't see inside "
                "TLS, and the proxy does not intercept it. Point the client at plain HTTP, create the "
                "proxy with a certificate to terminate TLS with (tls, see docs/proxy.md), or remove "
                "the http_* toxics (TCP toxics work on TLS). Further refusals are counted in /metrics.",
                self.proxy,
            )
        refused[self.proxy] = refused.get(self.proxy, 0) + 1
        self.closed = True
        return [Send("client", TLS_ALERT), Close(reset=False)]

    # Events are told apart by ``type(event) is``: the framer makes exactly these classes, and it
    # costs less than isinstance on every message.

    def _request_event(self, event: framing.Event, out: list[Out]) -> None:
        if self._client_done and type(event) in (framing.Raw, framing.HeadEvent):
            return  # an abort ends the connection: what the client sends after it is dropped
        if type(event) is framing.HeadEvent:
            self._request_head(event.head, out)
        elif type(event) is framing.Raw:
            out.append(Send("server", event.data))
        elif type(event) is framing.Body:
            if self._reading is None or self._reading.answer is None:
                out.append(Send("server", event.raw))
        else:
            self._request_end(out)

    def _request_end(self, out: list[Out]) -> None:
        slot, self._reading = self._reading, None
        if slot is not None and slot.answer is not None and not slot.ready:
            slot.ready = True
            self._answer_ready(out)

    def _request_head(self, head: heads.Head, out: list[Out]) -> None:
        tunnel = head.framing is not None and head.framing.kind is _TUNNEL  # CONNECT, an upgrade
        if self._act(head, out, untouched=tunnel):
            out.append(Send("server", head.raw))

    def _act(self, head: heads.Head, out: list[Out], untouched: bool = False) -> bool:
        """Roll the toxics for ``head`` (unless ``untouched``) and add what they do to ``out``; True
        if none acts on it, so that it is forwarded as it came (added to ``out`` by the caller)."""
        slot: _Slot | None = None
        request_delay = 0
        delayed_by: list[str] = []
        abort: rules.Abort | None = None
        counters = self._counters
        counters.requests[self.proxy] = counters.requests.get(self.proxy, 0) + 1
        seen, matched = counters.seen, counters.matched
        for rule in () if untouched else self._rules():
            key = (self.proxy, rule.name)
            seen[key] = seen.get(key, 0) + 1
            if not rule.match.matches(head):
                continue
            matched[key] = matched.get(key, 0) + 1
            if abort is not None or self._rng.random() >= rule.toxicity:
                continue
            counters.add(counters.faulted, key)
            if slot is None:
                slot = _Slot(head.method)
            fault = rule.fault
            if isinstance(fault, rules.Abort):
                abort = fault
            elif rule.response:
                slot.on_response.append(rule)
            elif isinstance(fault, rules.Delay):
                request_delay += self._delay(fault)
                delayed_by.append(rule.name)
            else:
                head = head.rebuilt(fault.fields(head.fields))
        if slot is None:
            self._slots.append(_PASSED)
            self._reading = _PASSED
            self._methods.append(head.method)
            return True
        self._slots.append(slot)
        self._reading = slot
        if request_delay:
            out.append(Hold("server", self._clock() + request_delay / 1000, tuple(delayed_by)))
        if abort is None:
            self._methods.append(slot.method)
            out.append(Send("server", head.raw))
        else:
            self._abort(abort, head, slot, out)
        return False

    def _abort(self, abort: rules.Abort, head: heads.Head, slot: _Slot, out: list[Out]) -> None:
        # 100-continue: the client waits for us before sending its body, so the answer goes now
        # and the connection closes after it (the body may or may not follow).
        early = abort.reset or "100-continue" in head.tokens("expect")
        slot.reset = abort.reset
        slot.close_after = early or not head.keeps_alive()
        slot.answer = b"" if abort.reset else rules.answer(abort, head.method, close=slot.close_after)
        if slot.close_after:
            self._client_done = True  # nothing after this request reaches the server
        if early:
            slot.ready = True
            self._answer_ready(out)

    def _delay(self, fault: rules.Delay) -> int:
        jitter = fault.jitter
        # Whole ms in [-jitter, jitter), as the latency toxic rolls it.
        return max(0, fault.latency + (self._rng.randrange(-jitter, jitter) if jitter else 0))

    def _answer_ready(self, out: list[Out]) -> None:
        """Send the synthetic answers now due: those whose turn has come in response order."""
        while self._slots and self._slots[0].answer is not None and self._slots[0].ready:
            slot = self._slots.popleft()
            if slot.reset:
                out.append(Close(reset=True))
                self.closed = True
                return
            delays = [(r.name, r.fault) for r in slot.on_response if isinstance(r.fault, rules.Delay)]
            if delay := sum(self._delay(fault) for _, fault in delays):
                out.append(Hold("client", self._clock() + delay / 1000, tuple(name for name, _ in delays)))
            out.append(Send("client", slot.answer or b""))
            if slot.close_after:
                out.append(Close(reset=False))
                self.closed = True
                return

    # -- server → client

    def server_chunk(self, data: bytes) -> list[Out] | None:
        """What to do with ``data`` the server sent; None: send it to the client as it is (the
        usual chunk: a whole response, or part of a body, that no toxic acts on)."""
        if self._passes_whole(data):
            return None
        return self._read_server(data)

    def from_server(self, data: bytes) -> list[Out]:
        """``server_chunk`` as items: what to send where, in order."""
        said = self.server_chunk(data)
        return [Send("client", data)] if said is None else said

    def _passes_whole(self, data: bytes) -> bool:
        """Whether ``data`` is (part of) the body of a response passed untouched, or one whole
        response to a request no toxic acts on, with nothing due after it; if so it is taken."""
        responses = self._responses
        reply = self._reply
        if self.closed or not data:
            return False
        if reply is not None:
            return not reply.replace and reply.left is None and responses.skip_body(len(data))
        slots = self._slots
        if not responses.idle or not slots or slots[0] is not _PASSED or not self._methods:
            return False
        if len(slots) > 1 and slots[1].answer is not None:
            return False  # an answer is due after this response: the full path sends it
        method = self._methods[0]
        known = self._known_response
        if known is not None and known[1] == method and data.startswith(known[0]):
            head, body = known[2]  # the same head again (it ends at its CRLF CRLF, so it is all of it)
        else:
            sizes = heads.whole_response(data, method)
            if sizes is None:
                return False
            head, body = sizes
            self._known_response = (data[:head], method, sizes)
        left = body - (len(data) - head)
        if left < 0:
            return False  # more than this response: pipelined ones follow
        self._methods.popleft()
        if left == 0:
            slots.popleft()
        else:
            self._reply = _Reply(_PASSED)
            responses.begin_body(left)
        return True

    def _read_server(self, data: bytes) -> list[Out]:
        if self.closed:
            return []
        out: list[Out] = []
        for event in self._responses.feed(data):
            self._response_event(event, out)
            if self.closed:
                break
        return out

    def server_eof(self) -> list[Out]:
        """The server half-closed: a body delimited by the close is complete."""
        if self.closed:
            return []
        out: list[Out] = []
        for event in self._responses.feed_eof():
            self._response_event(event, out)
        return out

    def _response_framing(self, head: heads.Head) -> heads.Framing:
        # Called as the framer meets each head, before the session has seen the events ahead of
        # it: the methods of forwarded requests, in order, say which request a response answers.
        status = head.status
        if 100 <= status < 200 and status != 101:
            method = self._methods[0] if self._methods else "GET"  # interim: the final one follows
        else:
            method = self._methods.popleft() if self._methods else "GET"
        return heads.response_framing(head, method)

    def _response_event(self, event: framing.Event, out: list[Out]) -> None:
        if type(event) is framing.HeadEvent:
            self._response_head(event.head, out)
        elif type(event) is framing.Body:
            self._response_body(event, out)
        elif type(event) is framing.Raw:
            out.append(Send("client", event.data))
        else:
            reply, self._reply = self._reply, None
            if reply is None or reply.interim:
                return
            if reply.chunked and reply.left is not None and not reply.ended:
                out.append(Send("client", b"0\r\n\r\n"))
            slots = self._slots
            if reply.slot is not None and slots and slots[0] is reply.slot:
                slots.popleft()
            if slots and slots[0].answer is not None:  # (checked here: most responses have none)
                self._answer_ready(out)

    def _response_head(self, head: heads.Head, out: list[Out]) -> None:
        slot = self._slots[0] if self._slots and self._slots[0].answer is None else None
        status = head.status
        reply = _Reply(slot, interim=100 <= status < 200 and status != 101)
        self._reply = reply
        if slot is None or reply.interim or not slot.on_response:
            out.append(Send("client", head.raw))
            return
        delay = 0
        delayed_by: list[str] = []
        fields = head.fields
        body: rules.Modify | None = None
        for rule in slot.on_response:
            if isinstance(rule.fault, rules.Delay):
                delay += self._delay(rule.fault)
                delayed_by.append(rule.name)
            elif isinstance(rule.fault, rules.Modify):
                fields = rule.fault.fields(fields)
                if body is None and (rule.fault.body is not None or rule.fault.truncate is not None):
                    body = rule.fault
        if delay:
            out.append(Hold("client", self._clock() + delay / 1000, tuple(delayed_by)))
        kind = head.framing.kind if head.framing is not None else heads.Kind.NONE
        if body is None or kind in (heads.Kind.NONE, heads.Kind.TUNNEL):
            out.append(Send("client", head.rebuilt(fields).raw if fields is not head.fields else head.raw))
            return
        out.append(Send("client", self._body_head(head, fields, body, kind, reply)))

    def _body_head(
        self,
        head: heads.Head,
        fields: list[tuple[bytes, bytes]],
        modify: rules.Modify,
        kind: heads.Kind,
        reply: _Reply,
    ) -> bytes:
        """The head of a response whose body is replaced or truncated (and, for a replacement, the
        new body), framed so that the client reads exactly that body."""
        framing_fields = {b"content-length", b"transfer-encoding"}
        kept = [(n, v) for n, v in fields if n.lower() not in framing_fields]
        if modify.body is not None:
            reply.replace = True
            kept = [(n, v) for n, v in kept if n.lower() != b"content-encoding"]
            kept.append((b"Content-Length", str(len(modify.body)).encode()))
            if kind is heads.Kind.UNTIL_CLOSE:
                kept.append((b"Connection", b"close"))  # the server will close: don't reuse it
            return head.rebuilt(kept).raw + modify.body
        assert modify.truncate is not None
        reply.left = modify.truncate
        if kind is heads.Kind.LENGTH:
            length = head.framing.length if head.framing is not None else 0
            reply.left = min(length, modify.truncate)
            kept.append((b"Content-Length", str(reply.left).encode()))
        elif kind is heads.Kind.CHUNKED:
            reply.chunked = True
            kept.append((b"Transfer-Encoding", b"chunked"))
        else:
            reply.until_close = True
        return head.rebuilt(kept).raw

    def _response_body(self, event: framing.Body, out: list[Out]) -> None:
        reply = self._reply
        if reply is None or (not reply.replace and reply.left is None):
            out.append(Send("client", event.raw))
            return
        if reply.replace or reply.ended:
            return
        assert reply.left is not None
        data = event.data[: reply.left]
        reply.left -= len(data)
        if reply.chunked:
            if data:
                out.append(Send("client", b"%x\r\n%s\r\n" % (len(data), data)))
            if reply.left == 0:
                out.append(Send("client", b"0\r\n\r\n"))
                reply.ended = True
        elif data:
            out.append(Send("client", data))
        if reply.left == 0 and reply.until_close:
            out.append(Close(reset=False))  # the body ends where the connection does
            self.closed = True
            reply.ended = True
