"""The http_* toxics through the embedded proxy, with real clients (httpx, http.client, curl) and a
real HTTP/1.1 upstream: every toxic, match kind and framing case of issue #20."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.proxy import servers
from tests.integration.proxy import http_upstream, upstreams
from tests.unit.proxy import test_http_sessions


@pytest.fixture
def web() -> Iterator[http_upstream.Server]:
    with http_upstream.Server() as upstream:
        yield upstream


@pytest.fixture
def proxied(api: httpx.Client, web: http_upstream.Server) -> str:
    """The proxy's base URL; the proxy is called ``web``."""
    created = api.post("/proxies", json={"name": "web", "upstream": web.address})
    created.raise_for_status()
    return f"http://{created.json()['listen']}"


def add(
    api: httpx.Client, kind: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: Any
) -> str:
    name = f"{kind}-{stream}-{len(attributes)}-{time.monotonic_ns()}"
    body = {"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}
    response = api.post("/proxies/web/toxics", json=body)
    assert response.status_code == 200, response.text
    return name


# -- http_abort


def test_abort_answers_with_status_body_and_headers_for_every_client(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", status=503, body="try later", headers={"Retry-After": "2"}, match={"path": "/pay"})
    answer = httpx.post(f"{proxied}/pay", content=b"x" * 1000)
    assert (answer.status_code, answer.text, answer.headers["retry-after"]) == (503, "try later", "2")
    host, port = proxied.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/pay")
    got = conn.getresponse()
    assert (got.status, got.read()) == (503, b"try later")
    conn.request("GET", "/other")  # the same connection goes on: the abort kept it alive
    assert conn.getresponse().status == 200
    conn.close()
    result = http_upstream.curl("--write-out", "%{http_code}", f"{proxied}/pay")
    assert result.stdout == "try later503"


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ({"method": ["PUT", "PATCH"]}, ("PATCH", "/x", {}), ("POST", "/x", {})),
        ({"path": "/exact"}, ("GET", "/exact?q=1", {}), ("GET", "/exact/more", {})),
        ({"path_prefix": "/v2/"}, ("GET", "/v2/items", {}), ("GET", "/v1/items", {})),
        ({"path_regex": "/items/[0-9]+"}, ("GET", "/items/42", {}), ("GET", "/items/42x", {})),
        ({"headers": {"X-Canary": True}}, ("GET", "/", {"X-Canary": "any"}), ("GET", "/", {})),
        (
            {"headers": {"X-Tenant": "blue"}},
            ("GET", "/", {"X-Tenant": "blue"}),
            ("GET", "/", {"X-Tenant": "red"}),
        ),
        ({"query": {"debug": True}}, ("GET", "/?debug", {}), ("GET", "/?other=1", {})),
        ({"query": {"page": "2"}}, ("GET", "/?page=2", {}), ("GET", "/?page=3", {})),
    ],
)
def test_each_match_kind_picks_its_requests(
    api: httpx.Client,
    proxied: str,
    match: dict[str, Any],
    hit: tuple[str, str, dict[str, str]],
    miss: tuple[str, str, dict[str, str]],
) -> None:
    add(api, "http_abort", status=503, match=match)
    with httpx.Client(base_url=proxied) as client:
        assert client.request(hit[0], hit[1], headers=hit[2]).status_code == 503
        assert client.request(miss[0], miss[1], headers=miss[2]).status_code == 200
    header_args = [arg for name, value in hit[2].items() for arg in ("-H", f"{name}: {value}")]
    assert (
        http_upstream.curl(
            "-X", hit[0], *header_args, "--write-out", "%{http_code}", "-o", "/dev/null", f"{proxied}{hit[1]}"
        ).stdout
        == "503"
    )


def test_aborted_requests_never_reach_the_upstream_and_keep_alive_goes_on(
    api: httpx.Client, proxied: str, web: http_upstream.Server
) -> None:
    add(api, "http_abort", status=500, match={"method": "DELETE"})
    with httpx.Client(base_url=proxied) as client:
        statuses = [client.request(m, "/item").status_code for m in ("GET", "DELETE", "PUT", "DELETE", "GET")]
    assert statuses == [200, 500, 200, 500, 200]
    assert [s["method"] for s in web.seen] == ["GET", "PUT", "GET"]


def test_abort_with_reset_resets_the_connection(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", reset=True, match={"path_prefix": "/boom"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(f"{proxied}/boom/1")
    assert http_upstream.curl(f"{proxied}/boom").returncode in (52, 56)  # empty reply / connection reset
    assert httpx.get(f"{proxied}/fine").status_code == 200


def test_toxicity_is_rolled_per_request_on_one_connection(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", toxicity=0.3, status=502)
    with httpx.Client(base_url=proxied) as client:
        statuses = [client.get("/x").status_code for _ in range(200)]
    assert set(statuses) == {200, 502}
    assert 30 < statuses.count(502) < 90
    metrics = api.get("/metrics").text
    faulted = [
        line for line in metrics.splitlines() if line.startswith("chaoskit_proxy_http_toxic_faulted_total")
    ]
    assert faulted and faulted[0].endswith(f" {statuses.count(502)}")


def test_pipelined_requests_get_their_answers_in_order(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", status=418, body="teapot", match={"query": {"fail": "1"}})
    host, port = proxied.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /b?fail=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
            b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", data)
    assert statuses == [b"200", b"418", b"200"]
    assert data.index(b'"/a"') < data.index(b"teapot") < data.index(b'"/c"')


def test_expect_100_continue_passes_and_can_be_aborted(api: httpx.Client, proxied: str) -> None:
    payload = "x" * 5000
    passed = http_upstream.curl("-H", "Expect: 100-continue", "--data-binary", payload, f"{proxied}/upload")
    assert json.loads(passed.stdout)["body"] == payload
    add(api, "http_abort", status=413, match={"path": "/upload"})
    refused = http_upstream.curl(
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        payload,
        "--write-out",
        "%{http_code}",
        f"{proxied}/upload",
    )
    assert refused.stdout.endswith("413")


# -- http_delay


def test_delay_holds_matched_requests_or_responses_only(api: httpx.Client, proxied: str) -> None:
    add(api, "http_delay", stream="upstream", latency=300, match={"path": "/slow"})
    add(api, "http_delay", stream="downstream", latency=300, jitter=20, match={"headers": {"X-Slow": True}})
    with httpx.Client(base_url=proxied) as client:
        client.get("/warm")
        timings = {}
        for name, kwargs in (("fast", {}), ("request", {}), ("response", {"headers": {"X-Slow": "1"}})):
            path = "/slow" if name == "request" else "/fast"
            started = time.monotonic()
            assert client.get(path, **kwargs).status_code == 200
            timings[name] = time.monotonic() - started
    assert timings["fast"] < 0.2
    assert timings["request"] >= 0.29
    assert timings["response"] >= 0.27
    timed = http_upstream.curl(
        "-H", "X-Slow: 1", "--write-out", "%{time_total}", "-o", "/dev/null", f"{proxied}/fast"
    )
    assert float(timed.stdout) >= 0.27


def test_removing_a_delay_lets_what_it_holds_go_at_once(api: httpx.Client, proxied: str) -> None:
    name = add(api, "http_delay", stream="upstream", latency=30_000)
    with (
        httpx.Client(base_url=proxied, timeout=20) as client,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        started = time.monotonic()
        held = pool.submit(client.get, "/held")
        time.sleep(0.3)
        assert not held.done()
        api.delete(f"/proxies/web/toxics/{name}").raise_for_status()  # what a fault's revert does
        assert held.result(timeout=10).status_code == 200
    assert time.monotonic() - started < 5


# -- http_modify


def test_modify_sets_and_removes_request_headers(
    api: httpx.Client, proxied: str, web: http_upstream.Server
) -> None:
    add(api, "http_modify", stream="upstream", set_headers={"X-Chaos": "on"}, remove_headers=["User-Agent"])
    httpx.get(f"{proxied}/h", headers={"User-Agent": "me"})
    headers = {k.lower(): v for k, v in web.seen[-1]["headers"].items()}  # type: ignore[attr-defined]
    assert headers["x-chaos"] == "on" and "user-agent" not in headers


@pytest.mark.parametrize("path", ["/plain", "/chunked"])
def test_modify_replaces_the_response_body_with_valid_framing(
    api: httpx.Client, proxied: str, path: str
) -> None:
    add(
        api,
        "http_modify",
        body='{"error": "injected"}',
        set_headers={"X-Chaos": "1"},
        remove_headers=["X-Upstream"],
    )
    with httpx.Client(base_url=proxied) as client:
        for _ in range(3):  # keep-alive: the next response still frames right
            got = client.get(path)
            assert got.json() == {"error": "injected"}
            assert got.headers["x-chaos"] == "1" and "x-upstream" not in got.headers
    host, port = proxied.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    assert conn.getresponse().read() == b'{"error": "injected"}'
    conn.close()


@pytest.mark.parametrize("path", ["/plain", "/chunked"])
def test_modify_truncates_the_response_body_with_valid_framing(
    api: httpx.Client, proxied: str, path: str
) -> None:
    add(api, "http_modify", truncate=10, match={"path_regex": "/(plain|chunked)"})
    with httpx.Client(base_url=proxied) as client:
        assert len(client.get(path).content) == 10
        assert client.get("/untouched").json()["path"] == "/untouched"
    result = http_upstream.curl("--write-out", " %{http_code}", f"{proxied}{path}")
    assert (result.returncode, result.stdout) == (0, '{"method": 200')


# -- passed through untouched


def test_chunked_request_bodies_pass_byte_exact(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", match={"path": "/never"})
    pieces = [b"alpha", b"", b"\r\n0\r\n", b"omega" * 1000]
    got = httpx.post(f"{proxied}/echo", content=iter(pieces))
    assert got.json()["body"] == b"".join(pieces).decode()


def test_an_upgraded_connection_is_a_tunnel(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort")  # matches every request, but not an upgrade
    host, port = proxied.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /upgrade HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        tunnelled = b"GET / HTTP/1.1\r\n\r\n not http any more"
        sock.sendall(tunnelled)
        echoed = b""
        while len(echoed) < len(tunnelled):
            echoed += sock.recv(4096)
    assert echoed == tunnelled


def test_tls_is_refused_clearly(api: httpx.Client, proxied: str) -> None:
    add(api, "http_delay", latency=1)
    host, port = proxied.removeprefix("http://").split(":")
    context = ssl.create_default_context()
    with (
        socket.create_connection((host, int(port)), timeout=10) as sock,
        pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"),
    ):
        context.wrap_socket(sock, server_hostname="localhost")
    assert 'chaoskit_proxy_http_tls_refused_total{proxy="web"} 1' in api.get("/metrics").text


# -- live changes, and the TCP path


def test_a_toxic_added_to_an_open_connection_acts_on_its_next_request(
    api: httpx.Client, proxied: str
) -> None:
    with httpx.Client(base_url=proxied) as client:
        assert client.get("/before").status_code == 200
        name = add(api, "http_abort", status=503)
        assert client.get("/during").status_code == 503
        api.delete(f"/proxies/web/toxics/{name}").raise_for_status()
        assert client.get("/after").status_code == 200


def test_without_http_toxics_connections_are_not_parsed(
    server: servers.ProxyServer, api: httpx.Client, proxied: str
) -> None:
    add(api, "noop")
    with httpx.Client(base_url=proxied) as client:
        assert client.get("/tcp").status_code == 200
        proxy = server.table.proxies["web"]
        assert all(getattr(c, "http", None) is None for c in proxy.connections)
    assert "chaoskit_proxy_http_requests_total" not in api.get("/metrics").text


def requests_parsed(api: httpx.Client) -> int:
    found = re.search(r'chaoskit_proxy_http_requests_total\{proxy="web"\} (\d+)', api.get("/metrics").text)
    return int(found.group(1)) if found else 0


def test_removing_the_last_http_toxic_stops_parsing_open_connections(api: httpx.Client, proxied: str) -> None:
    name = add(api, "http_abort", match={"path": "/never"})
    slow = add(api, "http_delay", latency=400, match={"path": "/slow"})
    with (
        httpx.Client(base_url=proxied) as idle,
        httpx.Client(base_url=proxied) as busy,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        assert idle.get("/parsed").status_code == 200
        held = pool.submit(busy.get, "/slow")  # a fault under way when the toxics go
        time.sleep(0.1)
        api.delete(f"/proxies/web/toxics/{name}").raise_for_status()
        api.delete(f"/proxies/web/toxics/{slow}").raise_for_status()
        assert held.result(timeout=10).status_code == 200
        time.sleep(0.3)  # the busy connection is let go once its fault is over
        parsed = requests_parsed(api)
        for client in (idle, busy):
            for _ in range(3):
                assert client.get("/after").status_code == 200
        assert requests_parsed(api) == parsed  # both take the TCP path again: nothing parsed
        add(api, "http_abort", status=503)  # and a new toxic acts on them from their next request
        assert idle.get("/again").status_code == 503
        assert busy.get("/again").status_code == 503


def test_metrics_count_seen_matched_and_faulted(api: httpx.Client, proxied: str) -> None:
    add(api, "http_abort", toxicity=0.0, match={"method": "POST"})
    with httpx.Client(base_url=proxied) as client:
        client.get("/1")
        client.post("/2")
    text = api.get("/metrics").text
    assert 'chaoskit_proxy_http_requests_total{proxy="web"} 2' in text
    assert (
        "chaoskit_proxy_http_toxic_seen_total{" in text and "chaoskit_proxy_http_toxic_matched_total{" in text
    )


def test_bad_attributes_are_refused_by_the_api(api: httpx.Client, proxied: str) -> None:
    body = {"type": "http_modify", "stream": "upstream", "attributes": {"body": "x"}}
    refused = api.post("/proxies/web/toxics", json=body)
    assert refused.status_code == 400
    assert "use stream 'downstream'" in refused.json()["error"]


# -- byte-exact through the real data plane


class _Recorder:
    """Reads a connection to EOF, keeps the bytes, then sends its canned responses and closes."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.replies = b""

    def __call__(self, conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        self.got.append(data)
        conn.sendall(self.replies)
        conn.shutdown(socket.SHUT_WR)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=st.lists(test_http_sessions.request(), min_size=1, max_size=5),
    replies=st.lists(test_http_sessions.response(), min_size=5, max_size=5),
)
def test_pipelined_requests_and_responses_pass_the_proxy_byte_exact_when_nothing_matches(
    server: servers.ProxyServer, requests: list[bytes], replies: list[bytes]
) -> None:
    recorder = _Recorder()
    recorder.replies = b"".join(replies[: len(requests)])
    sent = b"".join(requests)
    with upstreams.Upstream(recorder) as upstream, httpx.Client(base_url=server.url) as api:
        api.delete("/proxies/exact")
        listen = api.post("/proxies", json={"name": "exact", "upstream": upstream.address}).json()["listen"]
        body = {"type": "http_abort", "attributes": {"match": {"path": "/never", "method": "TRACE"}}}
        api.post("/proxies/exact/toxics", json=body).raise_for_status()
        host, port = listen.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(sent)
            sock.shutdown(socket.SHUT_WR)  # the upstream answers once it has read everything
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        api.delete("/proxies/exact")
    assert recorder.got == [sent]
    assert received == recorder.replies
