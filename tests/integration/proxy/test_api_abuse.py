"""The embedded proxy's HTTP API under abuse: races, oversized or endless headers, slow clients,
awkward names, absurd numbers and malformed requests. A real server on 127.0.0.1, raw sockets
where a well-behaved client library would refuse to send the request."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from chaoskit.proxy import api as http_api
from chaoskit.proxy import servers
from tests.integration.proxy import upstreams

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


@pytest.fixture(autouse=True)
def no_server_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing a client sends may make the server log an error (an unhandled exception)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def settles(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def port_is_free(listen: str) -> bool:
    host, _, port = listen.rpartition(":")
    with socket.socket() as sock:  # no SO_REUSEADDR: a leftover listener makes this fail
        try:
            sock.bind((host, int(port)))
        except OSError:
            return False
    return True


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer ends it too)."""
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def exchange(server: servers.ProxyServer, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, then read until the server closes the connection (bounded in time)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        return read_until_closed(sock)


def status_of(answer: bytes) -> int:
    """The status of the first response in ``answer``; it must be a well-formed HTTP response."""
    match = STATUS_LINE.match(answer)
    assert match is not None, f"not an HTTP response: {answer[:200]!r}"
    head, sep, body = answer.partition(b"\r\n\r\n")
    assert sep, f"no end of headers: {answer[:200]!r}"
    lengths = re.findall(rb"(?im)^content-length: *(\d+)\r?$", head)
    if lengths:
        assert len(body) >= int(lengths[0]), answer[:300]
    return int(match.group(1))


def in_parallel(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job at once (threads released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait(10)
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# -- 1. races on one name


def test_concurrent_creates_of_one_name_make_exactly_one_proxy(
    server: servers.ProxyServer, echo: upstreams.Upstream
) -> None:
    url = f"{server.url}/proxies"
    # localhost is resolved by the server (an await), which is where a racing create slipped in.
    body = {"name": "same", "upstream": echo.address, "listen": "localhost:0"}
    baseline = fd_count()
    for _ in range(5):

        def create() -> tuple[int, str | None]:
            response = httpx.post(url, json=body, timeout=30)
            return response.status_code, response.json().get("listen")

        results = in_parallel([create] * 20)
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [409] * 19, statuses
        listen = next(listen for status, listen in results if status == 201)
        assert listen is not None
        assert httpx.get(f"{url}/same").json()["listen"] == listen
        assert httpx.delete(f"{url}/same").status_code == 204
        assert port_is_free(listen)
    assert settles(lambda: fd_count() <= baseline), (fd_count(), baseline)


def test_concurrent_create_update_and_delete_leave_no_orphan_listener(
    server: servers.ProxyServer, echo: upstreams.Upstream
) -> None:
    url = f"{server.url}/proxies"
    body = {"name": "racy", "upstream": echo.address, "listen": "localhost:0"}
    baseline = fd_count()
    seen: set[str] = set()
    for _ in range(5):

        def create() -> None:
            response = httpx.post(url, json=body, timeout=30)
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                seen.add(response.json()["listen"])

        def toggle() -> None:
            off = httpx.patch(f"{url}/racy", json={"enabled": False}, timeout=30)
            on = httpx.patch(f"{url}/racy", json={"enabled": True}, timeout=30)
            assert {off.status_code, on.status_code} <= {200, 404}, (off.text, on.text)

        def delete() -> None:
            assert httpx.delete(f"{url}/racy", timeout=30).status_code in (204, 404)

        in_parallel([create, delete, toggle] * 7)
        current = httpx.get(f"{url}/racy")
        if current.status_code == 200:
            # Whatever survived is the only listener: every other port ever handed out is free.
            listen = current.json()["listen"]
            assert all(port_is_free(other) for other in seen - {listen})
            assert httpx.delete(f"{url}/racy").status_code == 204
    assert seen and all(port_is_free(listen) for listen in seen)
    assert settles(lambda: fd_count() <= baseline), (fd_count(), baseline)


# -- 2. headers are bounded


def test_too_many_header_lines_get_431_and_a_close(server: servers.ProxyServer) -> None:
    headers = b"".join(b"X-Filler-%d: yes\r\n" % i for i in range(1000))
    answer = exchange(server, b"GET /version HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431
    assert b"Connection: close" in answer


def test_one_huge_header_line_gets_431(server: servers.ProxyServer) -> None:
    answer = exchange(server, b"GET /version HTTP/1.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    assert status_of(answer) == 431


def test_a_huge_request_line_gets_414(server: servers.ProxyServer) -> None:
    answer = exchange(server, b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n\r\n")
    assert status_of(answer) == 414


def test_a_never_ending_header_section_is_answered_and_cut_off(server: servers.ProxyServer) -> None:
    sent = 0
    limit = 64 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:

        def flood() -> None:
            nonlocal sent
            line = b"X-More: " + b"b" * 100 + b"\r\n"
            chunk = line * 600
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /version HTTP/1.1\r\n")
                while sent < limit:
                    sock.sendall(chunk)
                    sent += len(chunk)

        sender = threading.Thread(target=flood)
        sender.start()
        answer = read_until_closed(sock)
        sender.join(30)
    assert status_of(answer) == 431
    # The server stopped reading long before the client stopped sending.
    assert sent < limit


def test_a_slow_loris_is_cut_off_in_bounded_time(
    server: servers.ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_api, "READ_TIMEOUT", 1.0)
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\n")
        with contextlib.suppress(OSError):
            for _ in range(80):  # one header byte every 100 ms: never finishes
                sock.sendall(b"X")
                if select.select([sock], [], [], 0.1)[0]:
                    break  # the server answered or closed
        answer = read_until_closed(sock)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert answer == b"" or status_of(answer) == 408


def test_a_body_shorter_than_its_content_length_gets_408(
    server: servers.ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_api, "READ_TIMEOUT", 1.0)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}")
        answer = read_until_closed(sock)
    assert status_of(answer) == 408
    assert time.monotonic() - started < 5


def test_a_body_cut_short_by_a_half_close_gets_400(server: servers.ProxyServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        answer = read_until_closed(sock)
    assert status_of(answer) == 400


# -- 3. names


@pytest.mark.parametrize(
    "name",
    ["a/b", "/", "a%2Fb", "p q", "é/ü", "x?y#z", "a;b=c", "%", "+plus+", "tab\\tnot", "x" * 1024],
)
def test_names_with_awkward_characters_work_end_to_end(
    api: httpx.Client, echo: upstreams.Upstream, name: str
) -> None:
    quoted = urllib.parse.quote(name, safe="")
    created = api.post("/proxies", json={"name": name, "upstream": echo.address, "listen": "127.0.0.1:0"})
    assert created.status_code == 201, created.text
    assert api.get(f"/proxies/{quoted}").json()["name"] == name
    assert api.patch(f"/proxies/{quoted}", json={"enabled": False}).json()["enabled"] is False
    assert api.patch(f"/proxies/{quoted}", json={"enabled": True}).json()["enabled"] is True
    toxic = api.post(f"/proxies/{quoted}/toxics", json={"name": name, "type": "latency"})
    assert toxic.status_code == 200, toxic.text
    assert api.get(f"/proxies/{quoted}/toxics/{quoted}").json()["name"] == name
    updated = api.patch(f"/proxies/{quoted}/toxics/{quoted}", json={"attributes": {"latency": 5}})
    assert updated.json()["attributes"]["latency"] == 5
    assert api.delete(f"/proxies/{quoted}/toxics/{quoted}").status_code == 204
    assert api.get(f"/proxies/{quoted}/toxics").json() == []
    assert api.delete(f"/proxies/{quoted}").status_code == 204
    assert api.get(f"/proxies/{quoted}").status_code == 404
    assert name not in api.get("/proxies").json()


@pytest.mark.parametrize("name", [".", "..", "a\nb", "nul\x00", "bell\x07", "del\x7f", "c1\x85", "x" * 1025])
def test_names_that_cannot_be_addressed_are_refused_saying_what_is_allowed(
    api: httpx.Client, echo: upstreams.Upstream, name: str
) -> None:
    response = api.post("/proxies", json={"name": name, "upstream": echo.address, "listen": "127.0.0.1:0"})
    assert response.status_code == 400
    message = response.json()["error"]
    assert "name" in message and ("control characters" in message or "1024" in message), message
    assert api.get("/proxies").json() == {}
    api.post("/proxies", json={"name": "ok", "upstream": echo.address, "listen": "127.0.0.1:0"})
    toxic = api.post("/proxies/ok/toxics", json={"name": name, "type": "noop"})
    assert toxic.status_code == 400 and "name" in toxic.json()["error"]
    populated = api.post("/populate", json=[{"name": name, "upstream": echo.address}])
    assert populated.status_code == 400 and "name" in populated.json()["error"]


# -- 4. absurd numbers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type": "latency", "attributes": {"latency": 1e309}}', "latency"),
        ('{"type": "latency", "attributes": {"latency": ' + "9" * 400 + "}}", "latency"),
        ('{"type": "latency", "attributes": {"latency": 9223372036854775807}}', "latency"),
        ('{"type": "latency", "attributes": {"jitter": ' + "9" * 400 + "}}", "jitter"),
        ('{"type": "latency", "attributes": {"latency": NaN}}', "latency"),
        ('{"type": "latency", "attributes": {"latency": -Infinity}}', "latency"),
        ('{"type": "latency", "attributes": {"latency": -1}}', "latency"),
        ('{"type": "latency", "toxicity": 1e309}', "toxicity"),
        ('{"type": "latency", "toxicity": -1e309}', "toxicity"),
        ('{"type": "latency", "toxicity": NaN}', "toxicity"),
        ('{"type": "latency", "toxicity": ' + "9" * 400 + "}", "toxicity"),
        ('{"type": "timeout", "attributes": {"timeout": ' + "9" * 400 + "}}", "timeout"),
        ('{"type": "reset_peer", "attributes": {"timeout": 1e400}}', "timeout"),
        ('{"type": "slow_close", "attributes": {"delay": 100000000000}}', "delay"),
        ('{"type": "slicer", "attributes": {"average_size": 10, "delay": ' + "9" * 400 + "}}", "delay"),
        ('{"type": "slicer", "attributes": {"average_size": ' + "9" * 400 + "}}", "average_size"),
        ('{"type": "slicer", "attributes": {"average_size": 5, "size_variation": -3}}', "size_variation"),
        ('{"type": "bandwidth", "attributes": {"rate": ' + "9" * 400 + "}}", "rate"),
        ('{"type": "limit_data", "attributes": {"bytes": ' + "9" * 400 + "}}", "bytes"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_field(
    api: httpx.Client, echo: upstreams.Upstream, body: str, field: str
) -> None:
    api.post("/proxies", json={"name": "n", "upstream": echo.address, "listen": "127.0.0.1:0"})
    created = api.post("/proxies/n/toxics", content=body)
    assert created.status_code == 400, created.text
    assert field in created.json()["error"], created.text
    assert api.get("/proxies/n/toxics").json() == []
    # The same values in an update are refused too, and leave the toxic as it was.
    kind = json.loads(body)["type"]
    base = {"slicer": {"average_size": 10}, "bandwidth": {"rate": 10}}.get(kind, {})
    made = api.post("/proxies/n/toxics", json={"name": "t", "type": kind, "attributes": base})
    before = made.json()
    patched = api.patch("/proxies/n/toxics/t", content=body)
    assert patched.status_code == 400, patched.text
    assert field in patched.json()["error"], patched.text
    assert api.get("/proxies/n/toxics/t").json() == before
    assert api.get("/version").status_code == 200


def test_a_day_of_latency_is_the_most_a_toxic_may_wait(api: httpx.Client, echo: upstreams.Upstream) -> None:
    api.post("/proxies", json={"name": "d", "upstream": echo.address, "listen": "127.0.0.1:0"})
    day = 24 * 60 * 60 * 1000
    ok = api.post("/proxies/d/toxics", json={"type": "latency", "attributes": {"latency": day}})
    assert ok.status_code == 200
    too_long = api.patch("/proxies/d/toxics/latency_downstream", json={"attributes": {"latency": day + 1}})
    assert too_long.status_code == 400 and str(day) in too_long.json()["error"]


# -- 5. malformed requests


MALFORMED: list[tuple[bytes, set[int]]] = [
    (b"GET /version\r\n\r\n", {400}),
    (b"GET /version HTTP/9.9\r\n\r\n", {400}),
    (b"GET  HTTP/1.1\r\n\r\n", {400}),
    (b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", {400}),
    (b"G\xe9T /version HTTP/1.1\r\n\r\n", {400}),
    (b"GET version HTTP/1.1\r\n\r\n", {400}),
    (b"BREW /proxies HTTP/1.1\r\n\r\n", {405}),
    (b"PUT /proxies HTTP/1.1\r\n\r\n", {405}),
    (b"GET /nowhere HTTP/1.1\r\n\r\n", {404}),
    (b"GET /proxies/ HTTP/1.1\r\n\r\n", {404}),
    (b"GET /proxies/a/toxics/b/c HTTP/1.1\r\n\r\n", {404}),
    (b"GET /version HTTP/1.1\r\nno colon here\r\n\r\n", {400}),
    (b"GET /version HTTP/1.1\r\nBad Name: x\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: -1\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: abc\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", {400, 413}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", {413}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", {400}),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\n", {400, 413}),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 5\r\n\r\n[1,2]", {400}),
    (b'POST /proxies HTTP/1.1\r\nContent-Length: 7\r\n\r\n{"a":}', {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 2\r\n\r\n\xff\xfe", {400}),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + b"[" * 200_000, {400}),
    (b"POST /populate HTTP/1.1\r\nContent-Length: 4\r\n\r\n[[]]", {400}),
    (b"POST /populate HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", {400}),
    (b"POST /reset HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", {204}),
]


@pytest.mark.parametrize(("request_bytes", "expected"), MALFORMED, ids=lambda v: repr(v)[:60])
def test_malformed_requests_get_a_4xx_answer(
    server: servers.ProxyServer, request_bytes: bytes, expected: set[int]
) -> None:
    answer = exchange(server, request_bytes + b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")
    status = status_of(answer)
    assert status in expected, answer[:300]
    assert httpx.get(f"{server.url}/version").status_code == 200


WRONG_TYPES: list[Any] = [1, -1, 1.5, True, None, "s", [], {}, [1], {"a": 1}, "", 10**30]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_every_field_of_every_body_with_the_wrong_type_gets_4xx(
    api: httpx.Client, echo: upstreams.Upstream, value: Any
) -> None:
    api.post("/proxies", json={"name": "w", "upstream": echo.address, "listen": "127.0.0.1:0"})
    api.post("/proxies/w/toxics", json={"name": "t", "type": "latency"})
    proxy = {"name": "w2", "upstream": echo.address, "listen": "127.0.0.1:0", "enabled": True}
    toxic = {"name": "t2", "type": "latency", "stream": "downstream", "toxicity": 0.5, "attributes": {}}
    requests: list[tuple[str, str, Any]] = [("POST", "/proxies", value), ("POST", "/populate", value)]
    for field in proxy:
        requests.append(("POST", "/proxies", {**proxy, field: value}))
        requests.append(("POST", "/populate", [{**proxy, field: value}]))
        requests.append(("PATCH", "/proxies/w", {field: value}))
    for field in toxic:
        requests.append(("POST", "/proxies/w/toxics", {**toxic, field: value}))
        requests.append(("PATCH", "/proxies/w/toxics/t", {field: value}))
    for attribute in ("latency", "jitter"):
        requests.append(("PATCH", "/proxies/w/toxics/t", {"attributes": {attribute: value}}))
    for method, path, body in requests:
        response = api.request(method, path, json=body)
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"], response.text
        for name in ("w2", "t2"):  # undo what a valid combination created
            api.delete(f"/proxies/{name}")
            api.delete(f"/proxies/w/toxics/{name}")
    assert api.get("/version").status_code == 200


def test_a_number_too_long_to_parse_is_a_400_without_python_advice(
    api: httpx.Client, echo: upstreams.Upstream
) -> None:
    api.post("/proxies", json={"name": "n", "upstream": echo.address, "listen": "127.0.0.1:0"})
    response = api.post("/proxies/n/toxics", content='{"type": "latency", "toxicity": ' + "9" * 5000 + "}")
    assert response.status_code == 400
    assert "digits" in response.json()["error"] and "sys." not in response.json()["error"]
