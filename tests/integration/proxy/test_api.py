"""The embedded server's HTTP layer and the places where it deliberately differs from Toxiproxy."""

from __future__ import annotations

import json
import socket
import time

import httpx

from chaoskit.proxy import servers
from tests.integration.proxy import upstreams


def raw(server: servers.ProxyServer, request: bytes) -> bytes:
    """Send raw bytes to the API and read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        return upstreams.recv_all(sock)


def test_chunked_request_bodies_and_keep_alive(server: servers.ProxyServer, echo: upstreams.Upstream) -> None:
    body = json.dumps({"name": "chunky", "upstream": echo.address}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:])) + b"0\r\n\r\n"
    request = (
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"GET /proxies/chunky HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = raw(server, request)
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 201 Created")
    assert b"HTTP/1.1 200 OK" in rest  # the second request on the same connection
    assert b'"name":"chunky"' in rest


def test_malformed_requests_get_400_and_a_close(server: servers.ProxyServer) -> None:
    assert raw(server, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_populate_errors_are_json_with_what_was_created(api: httpx.Client, echo: upstreams.Upstream) -> None:
    first = api.post("/proxies", json={"name": "first", "upstream": echo.address, "listen": "127.0.0.1:0"})
    taken = first.json()["listen"]
    body = [
        {"name": "ok", "upstream": echo.address, "listen": "127.0.0.1:0"},
        {"name": "clash", "upstream": echo.address, "listen": taken},
    ]
    response = api.post("/populate", json=body)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert "address already in use" in data["error"] and data["status"] == 500
    assert [p["name"] for p in data["proxies"]] == ["ok"]


def test_populate_resolves_listen_before_comparing(api: httpx.Client, echo: upstreams.Upstream) -> None:
    created = api.post("/populate", json=[{"name": "db", "upstream": echo.address, "listen": "localhost:0"}])
    listen = created.json()["proxies"][0]["listen"]
    port = listen.rpartition(":")[2]
    api.post("/proxies/db/toxics", json={"type": "noop"})
    again = api.post(
        "/populate", json=[{"name": "db", "upstream": echo.address, "listen": f"localhost:{port}"}]
    )
    assert again.json()["proxies"][0]["listen"] == listen
    assert len(again.json()["proxies"][0]["toxics"]) == 1  # the same, live proxy: not restarted


def test_unresolvable_listen_on_update_changes_nothing(api: httpx.Client, echo: upstreams.Upstream) -> None:
    before = api.post(
        "/proxies", json={"name": "p", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    response = api.patch("/proxies/p", json={"listen": "no-such-host.invalid:1"})
    assert response.status_code == 500
    assert api.get("/proxies/p").json() == before


def test_metrics_count_bytes_when_connections_close(
    server: servers.ProxyServer, api: httpx.Client, echo: upstreams.Upstream
) -> None:
    listen = api.post(
        "/proxies", json={"name": "m", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()["listen"]
    with upstreams.connect(listen) as sock:
        sock.sendall(b"x" * 1234)
        sock.shutdown(socket.SHUT_WR)
        assert len(upstreams.recv_all(sock)) == 1234
    text = ""
    for _ in range(50):
        text = api.get("/metrics").text
        if 'direction="downstream"' in text:
            break
        time.sleep(0.1)  # the counters are added as the proxy finishes closing the connection
    labels = f'listener="{listen}",proxy="m",upstream="{echo.address}"'
    assert f'toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 1234' in text
    assert f'toxiproxy_proxy_sent_bytes_total{{direction="downstream",{labels}}} 1234' in text
    assert api.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")


def test_validation_gaps_of_the_real_server_are_400s(api: httpx.Client, echo: upstreams.Upstream) -> None:
    api.post("/proxies", json={"name": "v", "upstream": echo.address, "listen": "127.0.0.1:0"})
    for body in (
        {"type": "bandwidth", "attributes": {"rate": -1}},
        {"type": "bandwidth", "attributes": {"rate": 0}},
        {"type": "slicer", "attributes": {"average_size": 0}},
        {"type": "latency", "toxicity": 1.5},
        {"type": "latency", "attributes": {"latency": -100}},
    ):
        response = api.post("/proxies/v/toxics", json=body)
        assert response.status_code == 400, body
        assert response.json()["status"] == 400
    assert api.get("/proxies/v/toxics").json() == []
    # The server is still alive and well (the real one crashes on the first two).
    assert api.get("/version").status_code == 200
