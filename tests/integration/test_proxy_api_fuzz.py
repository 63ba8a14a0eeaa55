"""The embedded proxy's HTTP API under random methods, paths and JSON bodies, and under random raw
requests (broken request lines, header floods, bad Content-Lengths, short bodies, absurd numbers,
awkward names): every answer is a well-formed HTTP response below 500 (for JSON bodies, 500 only
when an address can't be bound or resolved, as Toxiproxy does), nothing is logged as an error,
and the server still proxies traffic afterwards. A real server on 127.0.0.1, real HTTP."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.proxy import api as http_api
from chaoskit.proxy import servers
from tests.integration.proxy import upstreams

NAMES = ["p", "q", "", "p q", "../p", "%2F", "é", "p.toxics", "x" * 300, "a/b", "/", "..", "a\nb", "\x00"]
KEYS = [
    "name", "listen", "upstream", "enabled", "type", "stream", "toxicity", "attributes", "latency",
    "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes", "proxies",
]  # fmt: skip
# Only port 0 or unusable addresses: the fuzzer must never take a port another test relies on.
ADDRESSES = ["127.0.0.1:0", "localhost:0", ":0", "", "127.0.0.1", "nohost.invalid:0", "[::1]:0", "1.2.3.4:x"]
TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop", "x"]

absurd = st.sampled_from([10**400, -(10**400), 2**63, -1, float("inf"), float("-inf"), float("nan"), 1e308])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    absurd,
    st.text(max_size=10),
    st.sampled_from(NAMES + ADDRESSES + TYPES + ["upstream", "downstream"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=15,
)
proxy_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(NAMES) | scalars,
        "listen": st.sampled_from(ADDRESSES) | scalars,
        "upstream": st.sampled_from(ADDRESSES) | scalars,
        "enabled": scalars,
    },
)
toxic_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(NAMES) | scalars,
        "type": st.sampled_from(TYPES) | scalars,
        "stream": st.sampled_from(["upstream", "downstream", "x"]) | scalars,
        "toxicity": scalars,
        "attributes": st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4) | scalars,
    },
)
plausible = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(TYPES),
            "attributes": st.dictionaries(st.sampled_from(KEYS), st.integers(0, 2000)),
        },
        optional={"stream": st.sampled_from(["upstream", "downstream"]), "toxicity": st.floats(0, 1)},
    ),
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["q", "r"]),
            "listen": st.just("127.0.0.1:0"),
            "upstream": st.just("127.0.0.1:9"),
        },
        optional={"enabled": st.booleans()},
    ),
)
bodies = st.one_of(
    plausible.map(json.dumps),
    json_values.map(json.dumps),
    proxy_bodies.map(json.dumps),
    toxic_bodies.map(json.dumps),
    st.lists(proxy_bodies, max_size=3).map(json.dumps),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    st.just(""),
)
quoted = st.text(max_size=6).map(lambda s: urllib.parse.quote(s, safe=""))
# Mostly names that exist (proxy "p", toxics named as the server names them), so handlers are reached.
proxy_names = st.sampled_from(["p", "p", "p", "q"]) | st.sampled_from(NAMES).map(
    lambda s: urllib.parse.quote(s, safe="")
)
toxic_names = st.sampled_from(["latency_downstream", "t", "bandwidth_upstream"]) | quoted
paths = st.one_of(
    st.sampled_from(
        ["/proxies", "/populate", "/reset", "/version", "/metrics", "/", "/proxies//", "/proxies/"]
    ),
    proxy_names.map(lambda n: f"/proxies/{n}"),
    proxy_names.map(lambda n: f"/proxies/{n}/toxics"),
    proxy_names.map(lambda n: f"/proxies/{n}/toxics"),
    st.tuples(proxy_names, toxic_names).map(lambda t: f"/proxies/{t[0]}/toxics/{t[1]}"),
    # httpx refuses a path starting with "//" (it would read a host from it).
    st.lists(quoted, max_size=4)
    .map(lambda parts: "/" + "/".join(parts))
    .filter(lambda p: not p.startswith("//")),
)
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PATCH", "DELETE", "PUT", "HEAD"])


def _address_failure(response: httpx.Response) -> bool:
    """A 500 the real Toxiproxy also sends: an address that can't be bound or resolved."""
    try:
        message = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        return False
    return message.startswith("listen tcp ")


@pytest.fixture(scope="module")
def server() -> Iterator[servers.ProxyServer]:
    with servers.ProxyServer() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: servers.ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        yield api


@pytest.fixture(scope="module")
def echo() -> Iterator[upstreams.Upstream]:
    with upstreams.Upstream(upstreams.echo) as upstream:
        yield upstream


def _still_serves(client: httpx.Client, echo: upstreams.Upstream, name: str) -> None:
    assert client.get("/version").status_code == 200
    made = client.post("/proxies", json={"name": name, "upstream": echo.address, "listen": "127.0.0.1:0"})
    assert made.status_code == 201, made.text
    payload = os.urandom(100_000)
    with upstreams.connect(str(made.json()["listen"])) as sock:
        sock.sendall(payload)
        assert upstreams.recv_exactly(sock, len(payload)) == payload
    assert client.delete(f"/proxies/{name}").status_code == 204


# The same requests on every CI run: a new finding must not turn someone else's change red.
@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(method=methods, path=paths, body=bodies, with_echo=st.booleans())
def test_random_requests_never_crash_the_api(
    client: httpx.Client, echo: upstreams.Upstream, method: str, path: str, body: str, with_echo: bool
) -> None:
    if with_echo:
        # Half the time a proxy with a live upstream exists, so toxic routes reach their handlers.
        client.post("/proxies", json={"name": "p", "upstream": echo.address, "listen": "127.0.0.1:0"})
    response = client.request(method, path, content=body.encode("utf-8", "surrogatepass"))
    shown = f"{method} {path} {body!r} -> {response.status_code} {response.text!r}"
    assert response.status_code < 500 or (response.status_code == 500 and _address_failure(response)), shown
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error: Any = response.json()
        assert isinstance(error, dict) and error.get("error"), shown


# -- raw requests: what a client library would never send

STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5]\d\d) [^\r\n]*\r\n")
header_names = st.sampled_from(["Host", "X-A", "Content-Type", "User-Agent", "Connection", "Bad Name", ""])
header_lines = st.one_of(
    st.tuples(header_names, st.text(max_size=20)).map(lambda t: f"{t[0]}: {t[1]}".encode()),
    st.binary(max_size=30),
    st.integers(1, 200_000).map(lambda n: b"X-Big: " + b"a" * n),
)
header_blocks = st.one_of(
    st.lists(header_lines, max_size=6),
    st.integers(90, 3000).map(lambda n: [b"X-N: %d" % i for i in range(n)]),
)
content_lengths = st.one_of(
    st.none(),  # the real length
    st.sampled_from(["-1", "abc", "\xb2", "1, 2", "9" * 5000, "99999999999", " 5 ", "0x10", ""]),
    st.integers(0, 200).map(str),  # usually not the body's length: short or long bodies
)
absurd_json = st.sampled_from(
    ["1e309", "-1e309", "NaN", "Infinity", "9" * 400, "-" + "9" * 400, "-1", "1.5", '"1"', "[]", "{}", "null"]
)
raw_bodies = st.one_of(
    bodies.map(lambda b: b.encode("utf-8", "surrogatepass")),
    st.tuples(st.sampled_from(TYPES), st.sampled_from(KEYS), absurd_json).map(
        lambda t: f'{{"type": "{t[0]}", "attributes": {{"{t[1]}": {t[2]}}}}}'.encode()
    ),
    absurd_json.map(lambda v: f'{{"type": "latency", "toxicity": {v}}}'.encode()),
    st.sampled_from([b"[" * 100_000, b"{" * 5000, b'{"name": "' + b"\xff" * 10 + b'"}']),
)
raw_names = st.sampled_from(NAMES).map(lambda s: urllib.parse.quote(s, safe="")) | st.text(max_size=8).map(
    lambda s: urllib.parse.quote(s, safe="")
)
raw_targets = st.one_of(
    paths.map(str.encode),
    raw_names.map(lambda n: f"/proxies/{n}".encode()),
    st.tuples(raw_names, raw_names).map(lambda t: f"/proxies/{t[0]}/toxics/{t[1]}".encode()),
    st.sampled_from(
        [b"", b"*", b"version", b"/%zz", b"/proxies/%ff", b"http://x/version", b"/" + b"a" * 70_000]
    ),
    st.binary(min_size=1, max_size=12),
)
raw_methods = st.sampled_from([b"GET", b"POST", b"PATCH", b"DELETE", b"PUT", b"BREW", b"G T", b"", b"\x00"])
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""])
chunked = st.booleans()


@pytest.fixture(scope="module")
def short_timeouts() -> Iterator[None]:
    """A client that never finishes its request is cut off in a second, not in 15."""
    saved = http_api.READ_TIMEOUT, http_api.IDLE_TIMEOUT
    http_api.READ_TIMEOUT, http_api.IDLE_TIMEOUT = 0.5, 1.0
    yield
    http_api.READ_TIMEOUT, http_api.IDLE_TIMEOUT = saved


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """What the server logs at ERROR (an unhandled exception in a connection is logged so)."""
    handler = _Errors()
    loggers = [logging.getLogger("asyncio"), logging.getLogger("chaoskit")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def _read_until_closed(sock: socket.socket) -> bytes:
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=raw_methods,
    target=raw_targets,
    version=versions,
    headers=header_blocks,
    length=content_lengths,
    body=raw_bodies,
    use_chunked=chunked,
    half_close=st.sampled_from([True] * 9 + [False]),
    with_echo=st.booleans(),
)
def test_random_raw_requests_get_well_formed_answers_below_500(
    server: servers.ProxyServer,
    client: httpx.Client,
    echo: upstreams.Upstream,
    short_timeouts: None,
    server_errors: list[logging.LogRecord],
    method: bytes,
    target: bytes,
    version: bytes,
    headers: list[bytes],
    length: str | None,
    body: bytes,
    use_chunked: bool,
    half_close: bool,
    with_echo: bool,
) -> None:
    if with_echo:
        client.post("/proxies", json={"name": "p", "upstream": echo.address, "listen": "127.0.0.1:0"})
    head = [method + b" " + target + b" " + version, *headers]
    if use_chunked:
        head.append(b"Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        head.append(b"Content-Length: " + (str(len(body)) if length is None else length).encode("latin-1"))
        payload = body
    request = b"\r\n".join(head) + b"\r\n\r\n" + payload
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        answer = _read_until_closed(sock)
    shown = f"{request[:300]!r} -> {answer[:300]!r}"
    # Each answer on the connection is a status line, headers, and the body its Content-Length says.
    rest = answer
    while rest:
        match = STATUS_LINE.match(rest)
        assert match is not None, shown
        assert int(match.group(1)) < 500, shown
        response_head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, shown
        lengths = re.findall(rb"(?im)^content-length: *(\d+)\r?$", response_head)
        size = int(lengths[0]) if lengths else 0
        assert len(rest) >= size, shown
        rest = rest[size:]
    assert not server_errors, [r.getMessage() for r in server_errors]
    assert client.get("/version").status_code == 200


def test_the_server_serves_traffic_after_the_fuzzing(client: httpx.Client, echo: upstreams.Upstream) -> None:
    # Runs after the fuzz test in file order; on its own it still checks a fresh server.
    _still_serves(client, echo, "after-fuzz")
    assert client.post("/reset").status_code == 204
    _still_serves(client, echo, "after-reset")
