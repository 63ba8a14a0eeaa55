"""The ``toxiproxy-cli`` verbs of ``chaoskit proxy`` against a real embedded proxy and real upstreams:
what each verb changes on the server, what it prints, and the one-line errors (exit 2 for a wrong
request, exit 4 for an unreachable server) instead of a traceback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner, Result

from chaoskit.cli import main, proxy
from chaoskit.drivers.toxiproxy import clients
from chaoskit.proxy import servers
from tests.integration.proxy import upstreams


def run(server: servers.ProxyServer, *args: str) -> Result:
    return CliRunner().invoke(main.cli, ["proxy", *args, "--url", server.url])


def ok(server: servers.ProxyServer, *args: str) -> Result:
    result = run(server, *args)
    assert result.exit_code == 0, result.output
    return result


def as_json(server: servers.ProxyServer, *args: str) -> object:
    return json.loads(ok(server, *args, "--output", "json").stdout)


def listen_of(server: servers.ProxyServer, name: str) -> str:
    with clients.Client(server.url) as client:
        return client.proxy(name)["listen"]


def roundtrip(address: str, payload: bytes = b"ping") -> tuple[bytes, float]:
    """Echo ``payload`` through ``address``; the answer and the seconds it took."""
    host, port = address.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        answer = sock.recv(1024)
    return answer, time.monotonic() - started


def test_create_list_inspect_and_delete_a_proxy_that_really_forwards(
    server: servers.ProxyServer, echo: upstreams.Upstream
) -> None:
    assert "no proxies" in ok(server, "list").stdout
    created = ok(server, "create", "db", "--upstream", echo.address).stdout
    listen = listen_of(server, "db")
    assert created.strip() == f"created proxy db: {listen} → {echo.address}"
    assert roundtrip(listen)[0] == b"ping"

    table = ok(server, "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "LISTEN", "UPSTREAM", "ENABLED", "TOXICS"]
    assert table[1].split() == ["db", listen, echo.address, "yes", "0"]
    assert as_json(server, "list") == [
        {"name": "db", "listen": listen, "upstream": echo.address, "enabled": True, "toxics": []}
    ]
    assert ok(server, "inspect", "db").stdout.splitlines() == [
        f"db: {listen} → {echo.address} (enabled)",
        "no toxics",
    ]

    assert ok(server, "delete", "db").stdout.strip() == "deleted proxy db"
    with clients.Client(server.url) as client:
        assert client.proxies() == {}
    with pytest.raises(OSError):
        roundtrip(listen)


def test_create_listens_where_told(server: servers.ProxyServer, echo: upstreams.Upstream) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = as_json(server, "create", "db", "--upstream", echo.address, "--listen", f"127.0.0.1:{port}")
    assert isinstance(proxy, dict)
    assert proxy["listen"] == f"127.0.0.1:{port}"
    assert roundtrip(f"127.0.0.1:{port}")[0] == b"ping"


def test_toggle_disables_then_enables(server: servers.ProxyServer, echo: upstreams.Upstream) -> None:
    ok(server, "create", "db", "--upstream", echo.address)
    listen = listen_of(server, "db")
    assert ok(server, "toggle", "db").stdout.strip() == "proxy db is now disabled"
    with pytest.raises(OSError):
        roundtrip(listen)
    assert "(disabled)" in ok(server, "inspect", "db").stdout
    assert ok(server, "toggle", "db").stdout.strip() == "proxy db is now enabled"
    assert roundtrip(listen)[0] == b"ping"


def test_toxic_add_update_remove_change_what_the_connection_sees(
    server: servers.ProxyServer, echo: upstreams.Upstream
) -> None:
    ok(server, "create", "db", "--upstream", echo.address)
    listen = listen_of(server, "db")

    added = ok(server, "toxic", "add", "db", "--type", "latency", "--attribute", "latency=300").stdout
    assert added.splitlines()[0] == "added toxic latency_downstream on proxy db"
    assert "latency=300" in added
    assert roundtrip(listen)[1] >= 0.29

    updated = as_json(
        server,
        "toxic",
        "update",
        "db",
        "--toxic-name",
        "latency_downstream",
        "-a",
        "latency=0",
        "-a",
        "jitter=0",
    )
    assert updated == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
        "attributes": {"latency": 0, "jitter": 0},
    }
    assert roundtrip(listen)[1] < 0.25

    upstream = as_json(
        server,
        "toxic", "add", "db", "--type", "bandwidth", "-a", "rate=1",
        "--upstream", "--toxic-name", "slow-up", "--toxicity", "0.5",
    )  # fmt: skip
    assert isinstance(upstream, dict)
    assert (upstream["name"], upstream["stream"], upstream["toxicity"]) == ("slow-up", "upstream", 0.5)
    lines = ok(server, "inspect", "db").stdout.splitlines()
    assert lines[1].split() == ["TOXIC", "TYPE", "STREAM", "TOXICITY", "ATTRIBUTES"]
    assert sorted(line.split()[:4] for line in lines[2:]) == [
        ["latency_downstream", "latency", "downstream", "1"],
        ["slow-up", "bandwidth", "upstream", "0.5"],
    ]

    removed = ok(server, "toxic", "remove", "db", "--toxic-name", "slow-up").stdout
    assert removed.strip() == "removed toxic slow-up from proxy db"
    with clients.Client(server.url) as client:
        assert [t["name"] for t in client.toxics("db")] == ["latency_downstream"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inspect", "nope"), "inspect proxy nope: proxy not found (HTTP 404"),
        (("toggle", "nope"), "toggle proxy nope: proxy not found (HTTP 404"),
        (("delete", "nope"), "delete proxy nope: no proxy named 'nope'"),
        (("toxic", "add", "nope", "--type", "latency", "-a", "latency=1"), "proxy not found (HTTP 404"),
        (("toxic", "remove", "db", "--toxic-name", "nope"), "proxy db has no toxic 'nope'"),
        (("toxic", "remove", "nope", "--toxic-name", "x"), "proxy not found (HTTP 404"),
        (("toxic", "update", "db", "--toxic-name", "nope", "-a", "latency=1"), "toxic not found (HTTP 404"),
        (("create", "db", "--upstream", "127.0.0.1:1"), "create proxy db: proxy already exists (HTTP 409"),
        (("toxic", "add", "db", "--type", "nosuch"), "(HTTP 400"),
        (
            ("toxic", "add", "db", "--type", "latency", "-a", "latency=300ms"),
            "'latency=300ms' is not KEY=VALUE with an integer or JSON value",
        ),
        (("toxic", "update", "db", "--toxic-name", "x"), "toxic update: nothing to change"),
    ],
)
def test_a_wrong_request_is_one_message_and_exit_2(
    server: servers.ProxyServer, echo: upstreams.Upstream, args: tuple[str, ...], message: str
) -> None:
    ok(server, "create", "db", "--upstream", echo.address)
    with clients.Client(server.url) as client:
        before = client.proxies()
    result = run(server, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert "hint: " in result.stderr
    assert "Traceback" not in result.output
    with clients.Client(server.url) as client:
        assert client.proxies() == before


def test_a_second_toxic_of_the_same_name_says_how_to_change_the_first(
    server: servers.ProxyServer, echo: upstreams.Upstream
) -> None:
    ok(server, "create", "db", "--upstream", echo.address)
    ok(server, "toxic", "add", "db", "--type", "latency", "-a", "latency=10")
    result = run(server, "toxic", "add", "db", "--type", "latency", "-a", "latency=20")
    assert result.exit_code == 2
    assert "toxic already exists (HTTP 409" in result.stderr
    assert "--toxic-name" in result.stderr and "toxic update" in result.stderr


def test_an_unreachable_server_names_the_url_and_how_to_start_one() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        result = CliRunner().invoke(main.cli, ["proxy", "list", "--url", url])
    assert result.exit_code == 4
    assert f"no Toxiproxy API answers at {url}" in result.stderr
    assert "chaoskit proxy serve" in result.stderr
    assert "Traceback" not in result.output


def test_the_url_comes_from_toxiproxy_url_and_defaults_to_the_drivers(
    server: servers.ProxyServer, echo: upstreams.Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(server, "create", "db", "--upstream", echo.address)
    monkeypatch.setenv("TOXIPROXY_URL", server.url)
    result = CliRunner().invoke(main.cli, ["proxy", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split()[0] == "db"

    (option,) = (p for p in proxy.list_.params if p.name == "url")
    assert option.default == clients.DEFAULT_URL


class NotToxiproxy(BaseHTTPRequestHandler):
    """A web server that is not a Toxiproxy API: 200 with HTML everywhere, 404 under /missing."""

    def do_GET(self) -> None:
        status = 404 if self.path.startswith("/proxies/missing") else 200
        body = b"<html><body>" + b"hello " * 100 + b"</body></html>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_toxiproxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotToxiproxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_server_that_is_not_toxiproxy_is_one_message(not_toxiproxy: str) -> None:
    listed = CliRunner().invoke(main.cli, ["proxy", "list", "--url", not_toxiproxy])
    assert listed.exit_code == 4, listed.output
    assert f"{not_toxiproxy} answered, but not as a Toxiproxy API does" in listed.stderr
    assert "Traceback" not in listed.output

    missing = CliRunner().invoke(main.cli, ["proxy", "inspect", "missing", "--url", not_toxiproxy])
    assert missing.exit_code == 2, missing.output
    first = missing.stderr.splitlines()[0]
    assert first.startswith("error: inspect proxy missing: <html><body>hello hello")
    assert len(first) < 300  # the body's start, not the whole page
