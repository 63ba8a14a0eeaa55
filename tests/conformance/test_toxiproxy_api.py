"""The Toxiproxy HTTP API as clients rely on it (status codes, bodies, headers, live toxics).

Runs against the server at ``TOXIPROXY_URL`` when it is set (e.g. a real Toxiproxy), otherwise
against an embedded chaoskit proxy this module starts. The assertions are the same for both; the
places where chaoskit deliberately differs (docs/proxy.md) are tested in tests/integration/proxy.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.proxy import upstreams


@pytest.fixture
def proxy(api: httpx.Client, echo: upstreams.Upstream) -> Iterator[dict[str, object]]:
    name = f"conf-{uuid.uuid4().hex[:8]}"
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": echo.address})
    assert response.status_code == 201, response.text
    yield response.json()
    api.delete(f"/proxies/{name}")


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert json.loads(response.text) == {"error": message, "status": status}


def test_version_is_json_with_a_version(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.json()["version"].count(".") == 2


def test_unknown_path_and_wrong_method(api: httpx.Client) -> None:
    response = api.get("/nothing-here")
    assert (response.status_code, response.text) == (404, "404 page not found\n")
    assert api.put("/proxies").status_code == 405
    assert api.get("/proxies/").status_code == 404


def test_matched_routes_carry_a_request_id_and_refuse_browsers(api: httpx.Client) -> None:
    assert api.get("/proxies").headers.get("x-toxiproxy-request-id")
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert (response.status_code, response.text) == (403, "User agent not allowed\n")


def test_create_proxy_shows_the_real_port(proxy: dict[str, object], echo: upstreams.Upstream) -> None:
    assert proxy["enabled"] is True
    assert proxy["upstream"] == echo.address
    assert proxy["toxics"] == []
    host, _, port = str(proxy["listen"]).rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0


def test_create_proxy_errors(api: httpx.Client, proxy: dict[str, object], echo: upstreams.Upstream) -> None:
    assert_error(api.post("/proxies", content=b""), 400, "bad request body: EOF")
    assert_error(api.post("/proxies", json={"upstream": echo.address}), 400, "missing required field: name")
    assert_error(
        api.post("/proxies", json={"name": "x-no-upstream"}), 400, "missing required field: upstream"
    )
    again = {"name": proxy["name"], "listen": "127.0.0.1:0", "upstream": echo.address}
    assert_error(api.post("/proxies", json=again), 409, "proxy already exists")
    busy = {"name": f"busy-{uuid.uuid4().hex[:6]}", "listen": proxy["listen"], "upstream": echo.address}
    response = api.post("/proxies", json=busy)
    assert response.status_code == 500
    assert "address already in use" in response.json()["error"]
    assert api.get(f"/proxies/{busy['name']}").status_code == 404


def test_list_get_and_delete(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = str(proxy["name"])
    assert api.get("/proxies").json()[name]["listen"] == proxy["listen"]
    assert api.get(f"/proxies/{name}").json()["name"] == name
    assert_error(api.get("/proxies/no-such-proxy"), 404, "proxy not found")
    response = api.delete(f"/proxies/{name}")
    assert (response.status_code, response.content) == (204, b"")
    assert_error(api.delete(f"/proxies/{name}"), 404, "proxy not found")


def test_toxic_defaults_and_echo_of_every_attribute(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    response = api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert response.status_code == 200
    assert response.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    body = {"type": "slicer", "stream": "upstream", "attributes": {"average_size": 64, "unknown": 1}}
    response = api.post(f"/proxies/{name}/toxics", json=body)
    assert response.json()["name"] == "slicer_upstream"
    assert response.json()["attributes"] == {"average_size": 64, "size_variation": 0, "delay": 0}


def test_toxic_errors(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    assert_error(api.post("/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found")
    assert_error(api.post(f"/proxies/{name}/toxics", content=b""), 400, "bad request body: EOF")
    assert_error(
        api.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "sideways"}),
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert_error(api.post(f"/proxies/{name}/toxics", json={}), 400, "invalid toxic type")
    assert_error(api.post(f"/proxies/{name}/toxics", json={"type": "bogus"}), 400, "invalid toxic type")
    api.post(f"/proxies/{name}/toxics", json={"name": "same", "type": "noop", "stream": "upstream"})
    assert_error(
        api.post(f"/proxies/{name}/toxics", json={"name": "same", "type": "noop", "stream": "downstream"}),
        409,
        "toxic already exists",
    )
    response = api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": "abc"}})
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body")
    assert_error(api.get(f"/proxies/{name}/toxics/none"), 404, "toxic not found")
    assert_error(api.delete(f"/proxies/{name}/toxics/none"), 404, "toxic not found")


def test_toxics_list_upstream_first_and_patch_merges(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    api.post(f"/proxies/{name}/toxics", json={"name": "d1", "type": "latency", "attributes": {"latency": 5}})
    api.post(f"/proxies/{name}/toxics", json={"name": "u1", "type": "noop", "stream": "upstream"})
    api.post(f"/proxies/{name}/toxics", json={"name": "d2", "type": "noop"})
    assert [t["name"] for t in api.get(f"/proxies/{name}/toxics").json()] == ["u1", "d1", "d2"]
    assert [t["name"] for t in api.get(f"/proxies/{name}").json()["toxics"]] == ["u1", "d1", "d2"]
    response = api.post(f"/proxies/{name}/toxics/d1", json={"attributes": {"jitter": 7}, "type": "noop"})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 5, "jitter": 7}
    assert response.json()["type"] == "latency"
    assert api.get(f"/proxies/{name}/toxics/d1").json()["attributes"]["jitter"] == 7
    response = api.delete(f"/proxies/{name}/toxics/d1")
    assert (response.status_code, response.content) == (204, b"")


def test_update_proxy_with_post_or_patch(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    assert api.post(f"/proxies/{name}", json={}).json()["enabled"] is True
    disabled = api.post(f"/proxies/{name}", json={"enabled": False})
    assert (disabled.status_code, disabled.json()["enabled"]) == (200, False)
    enabled = api.patch(f"/proxies/{name}", json={"enabled": True})
    assert enabled.json()["enabled"] is True
    assert enabled.json()["listen"] == proxy["listen"]
    assert_error(api.patch("/proxies/nope", json={}), 404, "proxy not found")


def test_populate(api: httpx.Client, echo: upstreams.Upstream) -> None:
    names = [f"pop-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    body = [{"name": n, "listen": "127.0.0.1:0", "upstream": echo.address} for n in names]
    try:
        response = api.post("/populate", json=body)
        assert response.status_code == 201
        created = {p["name"]: p for p in response.json()["proxies"]}
        assert set(created) == set(names)
        api.post(f"/proxies/{names[0]}/toxics", json={"type": "noop"})
        again = [{"name": names[0], "listen": created[names[0]]["listen"], "upstream": echo.address}]
        assert api.post("/populate", json=again).status_code == 201
        assert len(api.get(f"/proxies/{names[0]}/toxics").json()) == 1  # unchanged entry keeps toxics
        response = api.post(
            "/populate", json=[{"name": "ok-entry", "upstream": echo.address}, {"upstream": "x:1"}]
        )
        assert response.status_code == 400
        assert response.json()["error"] == "missing required field: name at proxy 2"
        assert api.get("/proxies/ok-entry").status_code == 404  # validated before anything is created
        assert api.post("/populate", json={"name": "x"}).status_code == 400
        assert api.post("/populate", json=[]).json() == {"proxies": None}
    finally:
        for name in names:
            api.delete(f"/proxies/{name}")


def test_reset_enables_and_removes_toxics(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    api.post(f"/proxies/{name}/toxics", json={"type": "noop"})
    api.post(f"/proxies/{name}", json={"enabled": False})
    response = api.post("/reset")
    assert (response.status_code, response.content) == (204, b"")
    state = api.get(f"/proxies/{name}").json()
    assert state["enabled"] is True and state["toxics"] == []


def _rtt(sock: socket.socket) -> float:
    started = time.monotonic()
    sock.sendall(b"ping")
    assert upstreams.recv_exactly(sock, 4) == b"ping"
    return time.monotonic() - started


def test_live_connection_semantics(api: httpx.Client, proxy: dict[str, object]) -> None:
    name = proxy["name"]
    with upstreams.connect(str(proxy["listen"])) as sock:
        # Latencies of a second, "fast" = under half a second: robust on a loaded machine.
        assert _rtt(sock) < 0.5
        api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 1000}})
        assert _rtt(sock) >= 0.99
        api.post(
            f"/proxies/{name}/toxics",
            json={"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}},
        )
        assert _rtt(sock) >= 1.99
        api.patch(f"/proxies/{name}/toxics/latency_downstream", json={"attributes": {"latency": 0}})
        assert 0.99 <= _rtt(sock) < 1.9
        api.post("/reset")
        assert _rtt(sock) < 0.5
        api.post(f"/proxies/{name}", json={"enabled": False})
        assert sock.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        upstreams.connect(str(proxy["listen"]))
