"""HTTP/1.1 framing of a byte stream: messages found wherever the reads are cut, bytes kept exact."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaoskit.proxy.http import framing, heads

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
    framer = framing.Framer(True, heads.request_framing)
    events = feed_cut(framer, PIPELINE, list(range(step, len(PIPELINE), step)))
    assert raw_of(events) == PIPELINE
    found = [e.head for e in events if isinstance(e, framing.HeadEvent)]
    assert [(h.method, h.target) for h in found] == [
        ("GET", "/a"),
        ("POST", "/b"),
        ("PUT", "/c"),
        ("HEAD", "/d"),
    ]
    assert sum(isinstance(e, framing.End) for e in events) == 4
    bodies = b"".join(e.data for e in events if isinstance(e, framing.Body))
    assert bodies == b"hello" + b"abc" + b"0123456789abcdef"  # chunk framing decoded


def test_a_protocol_that_is_not_http_passes_at_once() -> None:
    framer = framing.Framer(True, heads.request_framing)
    startup = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # a PostgreSQL SSLRequest: never ends in CRLF CRLF
    assert list(framer.feed(startup)) == [framing.Raw(startup)]
    assert list(framer.feed(b"GET / HTTP/1.1\r\n\r\n")) == [framing.Raw(b"GET / HTTP/1.1\r\n\r\n")]


def test_an_incomplete_request_head_is_held_until_it_completes() -> None:
    framer = framing.Framer(True, heads.request_framing)
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
    framer = framing.Framer(True, heads.request_framing)
    assert raw_of(list(framer.feed(prefix))) == prefix


def test_two_content_lengths_make_the_stream_raw() -> None:
    framer = framing.Framer(True, heads.request_framing)
    data = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    assert list(framer.feed(data)) == [framing.Raw(data)]


@pytest.mark.parametrize(
    ("status", "method", "kind"),
    [
        (200, "HEAD", heads.Kind.NONE),
        (204, "GET", heads.Kind.NONE),
        (304, "GET", heads.Kind.NONE),
        (100, "POST", heads.Kind.NONE),
        (101, "GET", heads.Kind.TUNNEL),
        (200, "CONNECT", heads.Kind.TUNNEL),
        (200, "GET", heads.Kind.UNTIL_CLOSE),
    ],
)
def test_response_bodies_are_delimited_as_rfc_9112_says(status: int, method: str, kind: heads.Kind) -> None:
    head = heads.parse_head(f"HTTP/1.1 {status} X\r\nContent-Type: a\r\n\r\n".encode(), request=False)
    assert head is not None
    assert heads.response_framing(head, method).kind is kind


def test_a_body_delimited_by_the_close_ends_at_eof() -> None:
    framer = framing.Framer(False, lambda head: heads.response_framing(head, "GET"))
    events = list(framer.feed(b"HTTP/1.0 200 OK\r\n\r\nsome"))
    events += framer.feed(b" more")
    events += framer.feed_eof()
    assert b"".join(e.data for e in events if isinstance(e, framing.Body)) == b"some more"
    assert isinstance(events[-1], framing.End)


def test_upgrade_turns_the_rest_of_the_stream_into_a_tunnel() -> None:
    framer = framing.Framer(True, heads.request_framing)
    data = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    events = list(framer.feed(data))
    assert isinstance(events[0], framing.HeadEvent)
    assert events[1:] == [framing.END, framing.Raw(b"\x81\x05hello")]
    assert framer.raw


def test_a_framer_joining_mid_stream_waits_for_a_message_start() -> None:
    framer = framing.Framer(True, heads.request_framing, syncing=True)
    assert list(framer.feed(b"rest of a body")) == [framing.Raw(b"rest of a body")]
    events = list(framer.feed(b"GET / HTTP/1.1\r\n\r\n"))
    assert isinstance(events[0], framing.HeadEvent)


# -- the quick readers the proxy uses for whole messages agree with the full ones

field_lines = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Host",
                "Accept",
                "content-length",
                "Content-Length",
                "Transfer-Encoding",
                "Upgrade",
                "Connection",
                "Upgrade-Insecure-Requests",
                "X-Content-Length",
                "Date",
                "Bad Name",
                "E",
            ]
        ),
        st.sampled_from(
            ["", " 5", "0", "12", " chunked", "websocket", "upgrade", "1, 1", "x\ty", "-1", "7 "]
        ),
    ),
    max_size=5,
)


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "CONNECT", "DELETE", "G@T", "", "A" * 33]))
    target = draw(st.sampled_from(["/", "/a?b=c", "x:443", "/ sp", "http://h/p"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]))
    fields = "".join(f"{n}:{v}\r\n" for n, v in draw(field_lines))
    end = draw(st.sampled_from(["\r\n", "", "\n", "\r\nextra"]))
    return f"{method} {target} {version}\r\n{fields}{end}".encode()


@st.composite
def response_heads(draw: st.DrawFn) -> bytes:
    status = draw(
        st.sampled_from(["200 OK", "204 No Content", "304", "100 Continue", "101 Switching", "404 x", "2000"])
    )
    fields = "".join(f"{n}:{v}\r\n" for n, v in draw(field_lines))
    body = draw(st.sampled_from(["", "hello", "hello, world and more"]))
    return f"HTTP/1.1 {status}\r\n{fields}\r\n{body}".encode()


@settings(max_examples=400)
@given(request_heads())
def test_a_whole_request_is_read_as_the_full_reader_reads_it(data: bytes) -> None:
    quick = heads.whole_request(data)
    full = heads.parse_head(data, request=True) if data.find(b"\r\n\r\n") == len(data) - 4 else None
    try:
        framed = heads.request_framing(full) if full is not None else None
    except heads.Unframeable:
        framed = None
    if quick is not None:  # never a different answer ...
        assert full is not None and framed is heads.NO_BODY
        assert (quick.raw, quick.first, quick.method, quick.target) == (
            full.raw,
            full.first,
            full.method,
            full.target,
        )
    elif framed is heads.NO_BODY:  # ... only declined where a field could matter
        assert full is not None and (b"\nupgrade:" in full.lowered or full.method == "CONNECT")


@settings(max_examples=400)
@given(response_heads(), st.sampled_from(["GET", "HEAD", "CONNECT"]))
def test_a_whole_response_is_framed_as_the_full_reader_frames_it(data: bytes, method: str) -> None:
    quick = heads.whole_response(data, method)
    end = data.find(b"\r\n\r\n")
    full = heads.parse_head(data[: end + 4], request=False) if end >= 0 else None
    if quick is None:
        return
    assert full is not None
    framed = heads.response_framing(full, method)
    assert quick[0] == end + 4
    assert (framed.kind, framed.length) in ((heads.Kind.LENGTH, quick[1]), (heads.Kind.NONE, 0))
    assert full.status >= 200
