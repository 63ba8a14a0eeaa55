"""The embedded proxy's HTTP API under random methods, paths and JSON bodies: it never crashes,
never answers 500 except when an address can't be bound or resolved (as Toxiproxy does), and
still proxies traffic afterwards. A real server on 127.0.0.1, real HTTP."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.proxy import servers
from tests.integration.proxy import upstreams

NAMES = ["p", "q", "", "p q", "../p", "%2F", "é", "p.toxics", "x" * 300]
KEYS = [
    "name", "listen", "upstream", "enabled", "type", "stream", "toxicity", "attributes", "latency",
    "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes", "proxies",
]  # fmt: skip
# Only port 0 or unusable addresses: the fuzzer must never take a port another test relies on.
ADDRESSES = ["127.0.0.1:0", "localhost:0", ":0", "", "127.0.0.1", "nohost.invalid:0", "[::1]:0", "1.2.3.4:x"]
TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop", "x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
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
    return any(part in message for part in ("listen tcp", "is not host:port", "lookup"))


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


def test_the_server_serves_traffic_after_the_fuzzing(client: httpx.Client, echo: upstreams.Upstream) -> None:
    # Runs after the fuzz test in file order; on its own it still checks a fresh server.
    _still_serves(client, echo, "after-fuzz")
    assert client.post("/reset").status_code == 204
    _still_serves(client, echo, "after-reset")
