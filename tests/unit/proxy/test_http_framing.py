"""HTTP/1.1 framing of a byte stream: messages found wherever the reads are cut, bytes kept exact."""

from __future__ import annotations

import itertools

import pytest

from chaoskit.proxy.http import framing

PIPELINE = (
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    b"\r\n"  # a stray CRLF between requests
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n"
    b"HEAD /d HTTP/1.0\r\n\r\n"
)


def feed_cut(framer: framing.Framer, data: bytes, cuts: list[int]) -> list[framing.Event]:
    events: list[framing.Event] = []
    points = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(points):
        events.extend(framer.feed(data[start:end]))
    return events


def raw_of(events: list[framing.Event]) -> bytes:
    parts = []
    for e in events:
        if isinstance(e, framing.HeadEvent):
            parts.append(e.head.raw)
        elif isinstance(e, framing.Body | framing.Raw):
            parts.append(e.raw if isinstance(e, framing.Body) else e.data)
    return b"".join(parts)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 50, 10_000])
def test_pipelined_requests_are_found_wherever_reads_are_cut(step: int) -> None:
    framer = framing.Framer(True, framing.request_framing)
    events = feed_cut(framer, PIPELINE, list(range(step, len(PIPELINE), step)))
    assert raw_of(events) == PIPELINE
    heads = [e.head for e in events if isinstance(e, framing.HeadEvent)]
    assert [(h.method, h.target) for h in heads] == [
        ("GET", "/a"),
        ("POST", "/b"),
        ("PUT", "/c"),
        ("HEAD", "/d"),
    ]
    assert sum(isinstance(e, framing.End) for e in events) == 4
    bodies = b"".join(e.data for e in events if isinstance(e, framing.Body))
    assert bodies == b"hello" + b"abc" + b"0123456789abcdef"  # chunk framing decoded


def test_a_protocol_that_is_not_http_passes_at_once() -> None:
    framer = framing.Framer(True, framing.request_framing)
    startup = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # a PostgreSQL SSLRequest: never ends in CRLF CRLF
    assert list(framer.feed(startup)) == [framing.Raw(startup)]
    assert list(framer.feed(b"GET / HTTP/1.1\r\n\r\n")) == [framing.Raw(b"GET / HTTP/1.1\r\n\r\n")]


def test_an_incomplete_request_head_is_held_until_it_completes() -> None:
    framer = framing.Framer(True, framing.request_framing)
    assert list(framer.feed(b"GET /x HT")) == []
    assert list(framer.feed(b"TP/1.1\r\nHost: a")) == []
    events = list(framer.feed(b"\r\n\r\n"))
    assert isinstance(events[0], framing.HeadEvent)
    assert events[0].head.raw == b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize(
    "prefix",
    [
        b"GET /x HTTP/2.0\r\n",
        b"G\xffT / HTTP/1.1",
        b"GET /x HTTP/1.1 extra",
        b"GETTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT",
    ],
)
def test_a_head_that_cannot_be_http_is_let_go(prefix: bytes) -> None:
    framer = framing.Framer(True, framing.request_framing)
    assert raw_of(list(framer.feed(prefix))) == prefix


def test_two_content_lengths_make_the_stream_raw() -> None:
    framer = framing.Framer(True, framing.request_framing)
    data = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    assert list(framer.feed(data)) == [framing.Raw(data)]


@pytest.mark.parametrize(
    ("status", "method", "kind"),
    [
        (200, "HEAD", framing.Kind.NONE),
        (204, "GET", framing.Kind.NONE),
        (304, "GET", framing.Kind.NONE),
        (100, "POST", framing.Kind.NONE),
        (101, "GET", framing.Kind.TUNNEL),
        (200, "CONNECT", framing.Kind.TUNNEL),
        (200, "GET", framing.Kind.UNTIL_CLOSE),
    ],
)
def test_response_bodies_are_delimited_as_rfc_9112_says(status: int, method: str, kind: framing.Kind) -> None:
    head = framing.parse_head(f"HTTP/1.1 {status} X\r\nContent-Type: a\r\n\r\n".encode(), request=False)
    assert head is not None
    assert framing.response_framing(head, method).kind is kind


def test_a_body_delimited_by_the_close_ends_at_eof() -> None:
    framer = framing.Framer(False, lambda head: framing.response_framing(head, "GET"))
    events = list(framer.feed(b"HTTP/1.0 200 OK\r\n\r\nsome"))
    events += framer.feed(b" more")
    events += framer.feed_eof()
    assert b"".join(e.data for e in events if isinstance(e, framing.Body)) == b"some more"
    assert isinstance(events[-1], framing.End)


def test_upgrade_turns_the_rest_of_the_stream_into_a_tunnel() -> None:
    framer = framing.Framer(True, framing.request_framing)
    data = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    events = list(framer.feed(data))
    assert isinstance(events[0], framing.HeadEvent)
    assert events[1:] == [framing.END, framing.Raw(b"\x81\x05hello")]
    assert framer.raw


def test_a_framer_joining_mid_stream_waits_for_a_message_start() -> None:
    framer = framing.Framer(True, framing.request_framing, syncing=True)
    assert list(framer.feed(b"rest of a body")) == [framing.Raw(b"rest of a body")]
    events = list(framer.feed(b"GET / HTTP/1.1\r\n\r\n"))
    assert isinstance(events[0], framing.HeadEvent)
