"""The http_* toxics on one connection, without sockets: what reaches the server and the client.

The client's view is checked with h11 (httpx's HTTP/1.1 parser): every faulted response must be
valid framing for a real client.
"""

from __future__ import annotations

import itertools
import random

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit.proxy.http import counting, rules, sessions


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rule(kind: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: object) -> rules.Rule:
    return rules.rule(f"t-{kind}", kind, stream, toxicity, attributes)


def session(
    *toxics: rules.Rule, seed: int = 1, **options: object
) -> tuple[sessions.Session, counting.Counters]:
    counters = counting.Counters()
    listed = list(toxics)
    return sessions.Session("p", lambda: listed, random.Random(seed), counters, **options), counters  # type: ignore[arg-type]


def sent(out: list[sessions.Out], to: str) -> bytes:
    return b"".join(o.data for o in out if isinstance(o, sessions.Send) and o.to == to)


def responses(data: bytes, methods: list[bytes]) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The responses a real client (h11) reads from ``data``, for requests of ``methods``."""
    found = []
    for method in methods:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"response {len(found)} is incomplete for a client: {event!r}")
        found.append((status, headers, body))
        data = data[len(data) - len(conn.trailing_data[0]) :] if conn.trailing_data[0] else b""
    return found


GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


# -- byte-exact when nothing matches

header_names = st.sampled_from(["X-A", "Accept", "User-Agent", "X-Trace-Id"])
header_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)


@st.composite
def request(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    path = "/" + draw(st.text(st.sampled_from("abc/-_.~%0123?=&"), max_size=30))
    fields = [f"{n}: {v}" for n, v in draw(st.lists(st.tuples(header_names, header_values), max_size=4))]
    body = draw(st.binary(max_size=300))
    coding = draw(st.sampled_from(["length", "chunked", "none"] if not body else ["length", "chunked"]))
    if draw(st.booleans()):
        fields.append("Expect: 100-continue")
    if coding == "length":
        fields.append(f"Content-Length: {len(body)}")
        payload = body
    elif coding == "chunked":
        fields.append("Transfer-Encoding: chunked")
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        pieces, rest = [], body
        for size in sizes:
            if rest:
                pieces.append(rest[:size])
                rest = rest[size:]
        if rest:
            pieces.append(rest)
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        payload = b""
    head = f"{method} {path} HTTP/1.1\r\nHost: h\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    return head.encode() + payload


@st.composite
def response(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    chunks = [body[i : i + 50] for i in range(0, len(body), 50)]
    return (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
        + b"0\r\n\r\n"
    )


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


NOTHING = [
    rule("http_abort", match={"path": "/never"}),
    rule("http_delay", latency=50, match={"method": "TRACE"}),
    rule("http_modify", stream="upstream", set_headers={"X-Hit": "1"}, match={"headers": {"X-Absent": True}}),
    rule("http_modify", truncate=1, match={"query": {"never": "1"}}),
]


@given(
    requests=st.lists(request(), min_size=1, max_size=6),
    replies=st.lists(response(), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
)
def test_pipelined_requests_and_bodies_pass_byte_exact_when_nothing_matches(
    requests: list[bytes], replies: list[bytes], cuts: list[int]
) -> None:
    s, counters = session(*NOTHING)
    upstream = b"".join(requests)
    downstream = b"".join(replies[: len(requests)])
    to_server: list[sessions.Out] = []
    for piece in cut(upstream, cuts):
        to_server += s.from_client(piece)
    to_client: list[sessions.Out] = []
    for piece in cut(downstream, cuts):
        to_client += s.from_server(piece)
    assert sent(to_server, "server") == upstream
    assert sent(to_client, "client") == downstream
    assert not [o for o in to_server + to_client if not isinstance(o, sessions.Send)]
    assert counters.requests["p"] == len(requests)
    assert not counters.matched


# -- http_abort


def test_an_abort_answers_in_its_place_among_pipelined_responses() -> None:
    s, counters = session(
        rule("http_abort", match={"path": "/b"}, status=503, body="busy", headers={"Retry-After": "1"})
    )
    pipeline = GET + b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + GET
    out = s.from_client(pipeline)
    assert sent(out, "server") == GET + GET  # the aborted request (and its body) never reach it
    assert sent(out, "client") == b""  # its answer waits for the response before it
    to_client = sent(s.from_server(OK), "client")
    to_client += sent(s.from_server(OK), "client")
    got = responses(to_client, [b"GET", b"POST", b"GET"])
    assert [(status, body) for status, _, body in got] == [(200, b"hi"), (503, b"busy"), (200, b"hi")]
    assert got[1][1][b"retry-after"] == b"1"
    assert (counters.seen[("p", "t-http_abort")], counters.matched[("p", "t-http_abort")]) == (3, 1)


def test_an_abort_of_a_request_that_closes_closes_after_its_answer() -> None:
    s, _ = session(rule("http_abort", status=500))
    out = s.from_client(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + GET)
    assert sent(out, "server") == b""
    assert b"Connection: close" in sent(out, "client")
    assert out[-1] == sessions.Close(reset=False)


def test_an_abort_answers_a_100_continue_request_at_once_and_closes() -> None:
    s, _ = session(rule("http_abort", status=413))
    out = s.from_client(b"PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n")
    assert responses(sent(out, "client"), [b"PUT"])[0][0] == 413
    assert out[-1] == sessions.Close(reset=False)
    assert s.from_client(b"123456789") == []


def test_a_reset_abort_resets_after_the_responses_before_it() -> None:
    s, _ = session(rule("http_abort", match={"path": "/r"}, reset=True))
    assert sent(s.from_client(GET + b"GET /r HTTP/1.1\r\n\r\n"), "server") == GET
    out = s.from_server(OK)
    assert sent(out, "client") == OK
    assert out[-1] == sessions.Close(reset=True)


def test_an_abort_of_a_head_request_has_no_body() -> None:
    s, _ = session(rule("http_abort", status=503, body="busy"))
    out = sent(s.from_client(b"HEAD / HTTP/1.1\r\n\r\n"), "client")
    assert out.endswith(b"Content-Length: 4\r\n\r\n")


def test_toxicity_is_rolled_per_request_on_one_connection() -> None:
    s, counters = session(rule("http_abort", toxicity=0.5), seed=7)
    out = s.from_client(GET * 200)
    forwarded = sent(out, "server").count(b"GET /a")
    faulted = counters.faulted[("p", "t-http_abort")]
    assert forwarded + faulted == 200
    assert 60 < faulted < 140  # both outcomes, on one connection


# -- http_delay


def test_a_request_delay_holds_the_request_and_what_follows_it() -> None:
    clock = Clock()
    s, _ = session(rule("http_delay", stream="upstream", latency=250, match={"path": "/a"}), clock=clock)
    out = s.from_client(GET + b"GET /z HTTP/1.1\r\n\r\n")
    assert out[0] == sessions.Hold("server", 100.25, by=("t-http_delay",))
    assert sent(out[1:], "server") == GET + b"GET /z HTTP/1.1\r\n\r\n"
    assert not [o for o in out[2:] if isinstance(o, sessions.Hold)]  # /z itself is not delayed


def test_a_response_delay_holds_the_matched_response_only() -> None:
    clock = Clock()
    s, _ = session(rule("http_delay", latency=1000, jitter=10, match={"path": "/a"}), clock=clock)
    s.from_client(GET + b"GET /z HTTP/1.1\r\n\r\n")
    clock.now = 101.0
    out = s.from_server(OK + OK)
    assert isinstance(out[0], sessions.Hold)
    assert 101.99 <= out[0].until < 102.01
    assert [o for o in out if isinstance(o, sessions.Hold)] == [out[0]]
    assert sent(out, "client") == OK + OK


def test_a_delay_with_jitter_varies_per_request_within_its_bounds() -> None:
    clock = Clock()
    s, _ = session(rule("http_delay", stream="upstream", latency=100, jitter=40), clock=clock)
    held = []
    for _ in range(60):
        out = s.from_client(GET)
        held += [round((o.until - clock.now) * 1000) for o in out if isinstance(o, sessions.Hold)]
        s.from_server(OK)
    assert len(held) == 60 and all(60 <= ms < 140 for ms in held)  # latency ± jitter, whole ms
    assert len(set(held)) > 10  # rolled per request, not once per connection


# -- http_modify


def test_request_headers_are_set_and_removed() -> None:
    s, _ = session(
        rule(
            "http_modify",
            stream="upstream",
            set_headers={"host": "other", "X-New": "1"},
            remove_headers=["Accept"],
        )
    )
    out = s.from_client(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: u\r\n\r\n")
    assert sent(out, "server") == b"GET / HTTP/1.1\r\nhost: other\r\nUser-Agent: u\r\nX-New: 1\r\n\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        OK,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        b"2\r\nhi\r\n0\r\n\r\n",
    ],
)
def test_a_replaced_body_is_framed_with_its_own_length(reply: bytes) -> None:
    s, _ = session(rule("http_modify", body='{"fault": true}', set_headers={"Server": "chaos"}))
    s.from_client(GET + GET)
    to_client = sent(s.from_server(reply + OK), "client")
    got = responses(to_client, [b"GET", b"GET"])
    assert got[0][0] == 200 and got[0][2] == b'{"fault": true}'
    assert got[0][1][b"server"] == b"chaos" and b"content-encoding" not in got[0][1]
    assert got[1][2] == b'{"fault": true}'


@pytest.mark.parametrize(
    ("reply", "framing_field"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", b"content-length"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n012\r\n7\r\n3456789\r\n0\r\n\r\n",
            b"transfer-encoding",
        ),
    ],
)
def test_a_truncated_body_is_cut_with_valid_framing(reply: bytes, framing_field: bytes) -> None:
    s, _ = session(rule("http_modify", truncate=4))
    s.from_client(GET + GET)
    to_client = b""
    for piece in cut(reply + OK, list(range(0, 200, 3))):
        to_client += sent(s.from_server(piece), "client")
    got = responses(to_client, [b"GET", b"GET"])
    assert [body for _, _, body in got] == [b"0123", b"hi"]
    assert framing_field in got[0][1]


def test_a_truncated_body_delimited_by_the_close_ends_the_connection() -> None:
    s, _ = session(rule("http_modify", truncate=3))
    s.from_client(GET)
    out = s.from_server(b"HTTP/1.0 200 OK\r\n\r\nabcdef")
    assert sent(out, "client") == b"HTTP/1.0 200 OK\r\n\r\nabc"
    assert out[-1] == sessions.Close(reset=False)


# -- what is passed through untouched


def test_an_upgrade_is_passed_through_even_when_a_toxic_matches_it() -> None:
    s, counters = session(rule("http_abort"))
    upgrade = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert sent(s.from_client(upgrade + b"\x81\x01x"), "server") == upgrade + b"\x81\x01x"
    switched = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert sent(s.from_server(switched + b"\x81\x01y"), "client") == switched + b"\x81\x01y"
    assert sent(s.from_client(GET), "server") == GET  # the tunnel is not parsed
    assert not counters.faulted


def test_responses_in_one_read_are_framed_by_their_own_requests_method() -> None:
    s, _ = session(rule("http_modify", set_headers={"X-Seen": "1"}))
    s.from_client(b"HEAD /a HTTP/1.1\r\n\r\n" + GET)
    # The HEAD response has a Content-Length but no body: the next bytes are the next response.
    head_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    got = responses(sent(s.from_server(head_reply + OK), "client"), [b"HEAD", b"GET"])
    assert [(status, headers[b"x-seen"], body) for status, headers, body in got] == [
        (200, b"1", b""),
        (200, b"1", b"hi"),
    ]


def test_a_connect_tunnel_is_passed_through_both_ways() -> None:
    s, counters = session(rule("http_abort"))
    connect = b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"
    assert sent(s.from_client(connect), "server") == connect
    established = b"HTTP/1.1 200 Connection Established\r\n\r\n"
    binary = bytes(range(256))
    assert sent(s.from_server(established + binary), "client") == established + binary
    assert (
        sent(s.from_client(b"GET / HTTP/1.1\r\n\r\n" + binary), "server")
        == b"GET / HTTP/1.1\r\n\r\n" + binary
    )
    assert not counters.faulted


def test_a_protocol_where_the_server_speaks_first_passes_untouched() -> None:
    s, _ = session(rule("http_abort"))
    banner = b"220 mail.example ESMTP ready\r\n"
    assert s.from_server(banner) == [sessions.Send("client", banner)]
    assert sent(s.from_client(b"EHLO me\r\n"), "server") == b"EHLO me\r\n"


def test_an_http_1_0_request_is_answered_with_a_close() -> None:
    s, _ = session(rule("http_abort", status=503))
    out = s.from_client(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Connection: close\r\n" in sent(out, "client")
    assert out[-1] == sessions.Close(reset=False)


def test_interim_responses_pass_and_the_final_one_is_faulted() -> None:
    s, _ = session(rule("http_modify", body="x"))
    s.from_client(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz")
    out = sent(s.from_server(b"HTTP/1.1 100 Continue\r\n\r\n" + OK), "client")
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert out.endswith(b"Content-Length: 1\r\n\r\nx")


def test_tls_is_refused_with_an_alert_not_intercepted() -> None:
    s, counters = session(rule("http_abort"))
    out = s.from_client(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert out == [sessions.Send("client", sessions.TLS_ALERT), sessions.Close(reset=False)]
    assert counters.tls_refused == {"p": 1}
    assert 'chaoskit_proxy_http_tls_refused_total{proxy="p"} 1' in counters.render()


def test_a_connection_joined_mid_stream_is_faulted_from_its_next_request() -> None:
    s, _ = session(rule("http_abort", status=502), fresh=False)
    assert sent(s.from_client(b"tail of a body"), "server") == b"tail of a body"
    assert s.from_server(b"ail of a response") == [sessions.Send("client", b"ail of a response")]
    assert responses(sent(s.from_client(GET), "client"), [b"GET"])[0][0] == 502


# -- the counters


def test_counters_render_per_proxy_and_toxic() -> None:
    s, counters = session(rule("http_abort", match={"method": "POST"}, toxicity=0.0))
    s.from_client(GET + b"POST / HTTP/1.1\r\n\r\n")
    text = counters.render()
    assert 'chaoskit_proxy_http_requests_total{proxy="p"} 2' in text
    assert 'chaoskit_proxy_http_toxic_seen_total{proxy="p",toxic="t-http_abort"} 2' in text
    assert 'chaoskit_proxy_http_toxic_matched_total{proxy="p",toxic="t-http_abort"} 1' in text
    assert "chaoskit_proxy_http_toxic_faulted_total{" not in text


# -- whole messages (the proxy's quick path) are treated exactly as the same bytes cut up


def merged(out: list[sessions.Out]) -> list[object]:
    """``out`` with the bytes of consecutive sends to one side joined: what the sides see."""
    result: list[object] = []
    for item in out:
        last = result[-1] if result else None
        if isinstance(item, sessions.Send) and isinstance(last, sessions.Send) and last.to == item.to:
            result[-1] = sessions.Send(item.to, last.data + item.data)
            continue
        result.append(sessions.Send(item.to, item.data) if isinstance(item, sessions.Send) else item)
    return [item for item in result if not (isinstance(item, sessions.Send) and not item.data)]


SOMETIMES = [
    rule("http_abort", stream="upstream", toxicity=0.3, match={"path_prefix": "/a"}),
    rule("http_delay", latency=20, toxicity=0.5, match={"method": "GET"}),
    rule("http_modify", stream="upstream", toxicity=0.5, set_headers={"X-Hit": "1"}, match={"path": "/b"}),
    rule("http_modify", truncate=3, toxicity=0.3, match={"headers": {"X-A": True}}),
]

plain_requests = st.builds(
    lambda method, path, extra: f"{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode(),
    st.sampled_from(["GET", "HEAD", "DELETE"]),
    st.sampled_from(["/a", "/b", "/c?x=1", "/a/deep"]),
    st.sampled_from(["", "X-A: 1\r\n", "Accept: */*\r\n"]),
)
plain_responses = st.builds(
    lambda status, body: b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body),
    st.sampled_from([b"200 OK", b"404 Not Found", b"204 No Content"]),
    st.sampled_from([b"", b"hi", b"0123456789" * 30]),
)


@given(
    turns=st.lists(
        st.lists(st.tuples(plain_requests, plain_responses, st.integers(0, 400)), min_size=1, max_size=3),
        min_size=1,
        max_size=5,
    ),
    seed=st.integers(0, 2**16),
    repeat=st.booleans(),
)
def test_whole_messages_are_treated_as_the_same_bytes_cut_up(
    turns: list[list[tuple[bytes, bytes, int]]], seed: int, repeat: bool
) -> None:
    """Each request in one read and each response in one or two (the reads the proxy's quick path
    takes without events), against the same bytes with their first byte read apart (the full path).
    A turn is up to three requests pipelined, then the responses of those the server got."""
    if repeat:  # the same request and response again and again: read once, remembered after
        turns = [[turns[0][0]] * len(turn) for turn in turns]
    seen: list[list[object]] = []
    for whole in (True, False):
        s, counters = session(*SOMETIMES, seed=seed, clock=Clock())
        out: list[sessions.Out] = []
        for turn in turns:
            forwarded = []
            for request, reply, split in turn:
                said = (
                    s.from_client(request)
                    if whole
                    else s.from_client(request[:1]) + s.from_client(request[1:])
                )
                out += said
                if b"Host: h" in sent(said, "server"):  # else answered by the proxy: the server never saw it
                    forwarded.append((request, reply, split))
            for request, full_reply, split in forwarded:
                if s.closed:
                    break
                reply = full_reply
                if b"204" in reply[:12] or request.startswith(b"HEAD"):
                    reply = reply[: reply.index(b"\r\n\r\n") + 4]
                cut_at = 1 if not whole else max(1, min(split, len(reply)))
                out += s.from_server(reply[:cut_at])
                out += s.from_server(reply[cut_at:])
            if s.closed:
                break
        seen.append([*merged(out), counters.requests, counters.matched, counters.faulted])
    assert seen[0] == seen[1]
