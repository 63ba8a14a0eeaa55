"""The http driver against a real threaded HTTP server on 127.0.0.1: request shapes, load
percentiles and error kinds, and the rule that header values never reach errors."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pydantic
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.http import driver as http_driver
from chaoskit.drivers.http import latencies, requesting
from tests.conftest import require
from tests.servers import serving_protocol

DRIVER = http_driver()
REQUEST = next(p for p in DRIVER.probes if p.name == "http.request")
LOAD = next(p for p in DRIVER.probes if p.name == "http.load")

SECRET = "Bearer s3cr3t-token-value"


class Handler(BaseHTTPRequestHandler):
    """Routes: /status/N, /json, /delay/MS, /redirect, /echo, /big, /trickle, /chunked, /close (then
    drops the connection), /flaky (every 4th is a 503)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are written apart; don't wait for delayed ACKs
    counter = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length) if length else b""
        if parts[0] == "status":
            self.send(int(parts[1]), f"status {parts[1]}".encode())
        elif parts[0] == "json":
            self.send(
                200, b'{"ok": true, "items": [1, 2, 3]}', "application/json; charset=utf-8", X_Multi="a"
            )
        elif parts[0] == "delay":
            time.sleep(int(parts[1]) / 1000)
            self.send(200, b"slept")
        elif parts[0] == "redirect":
            self.send(302, b"", Location="/json")
        elif parts[0] == "echo":
            echo = {
                "method": self.command,
                "query": parse_qs(url.query),
                "body": received.decode(),
                "content_type": self.headers.get("Content-Type"),
                "x_token": self.headers.get("X-Token"),
            }
            self.send(200, json.dumps(echo).encode(), "application/json")
        elif parts[0] == "big":
            self.send(200, b"y" * (requesting.BODY_LIMIT + 100))
        elif parts[0] == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b".")
                time.sleep(0.1)
        elif parts[0] == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        elif parts[0] == "close":
            # Answers, then closes the kept-alive connection without saying so: the next request
            # on it finds it gone.
            self.send(200, b"bye")
            self.close_connection = True
        elif parts[0] == "flaky":
            with Handler.lock:
                Handler.counter += 1
                n = Handler.counter
            self.send(503 if n % 4 == 0 else 200, b"maybe")
        else:
            self.send(404, b"no such route")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that time out on purpose close early; that is not a failure here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ctx() -> contract.RunContext:
    return contract.RunContext(run_id="test", rng=random.Random(0))


def request(**kwargs: object) -> dict[str, object]:
    out = REQUEST.run(REQUEST.args.model_validate(kwargs), ctx())
    assert isinstance(out, dict)
    return out


# -- http.request ------------------------------------------------------------------------------------


def test_request_answers_status_headers_body_and_parsed_json(server: str) -> None:
    out = request(url=f"{server}/json")
    assert out["status"] == 200
    assert out["json"] == {"ok": True, "items": [1, 2, 3]}
    assert out["body"] == '{"ok": true, "items": [1, 2, 3]}'
    headers = out["headers"]
    assert isinstance(headers, dict)
    assert headers["content-type"].startswith("application/json")
    assert headers["x-multi"] == "a"
    assert all(k == k.lower() for k in headers)
    assert isinstance(out["elapsed_ms"], float) and out["elapsed_ms"] >= 0


def test_non_json_bodies_have_null_json_and_any_status_is_an_answer(server: str) -> None:
    out = request(url=f"{server}/status/503")
    assert out["status"] == 503 and out["json"] is None and out["body"] == "status 503"


def test_request_sends_method_params_json_body_and_headers(server: str) -> None:
    out = request(
        url=f"{server}/echo",
        method="post",
        params={"q": "x", "n": 3, "on": True, "ids": [1, 2]},
        json={"a": [1, 2]},
        headers={"X-Token": "abc"},
    )
    echo = out["json"]
    assert echo == {
        "method": "POST",
        "query": {"q": ["x"], "n": ["3"], "on": ["true"], "ids": ["1", "2"]},
        "body": '{"a":[1,2]}',
        "content_type": "application/json",
        "x_token": "abc",
    }
    text = request(url=f"{server}/echo", method="PUT", body="plain")["json"]
    assert isinstance(text, dict) and text["body"] == "plain" and text["method"] == "PUT"


def test_redirects_are_answers_unless_followed(server: str) -> None:
    assert request(url=f"{server}/redirect")["status"] == 302
    followed = request(url=f"{server}/redirect", follow_redirects=True)
    assert followed["status"] == 200 and followed["json"] == {"ok": True, "items": [1, 2, 3]}


def test_only_a_request_that_can_reach_tls_loads_the_ca_bundle(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)

    def context(**kwargs: object) -> ssl.SSLContext:
        return requesting.tls_for(requesting.RequestArgs.model_validate(kwargs), ctx())

    plain = context(url=server)
    # Never used for plain http; if it ever were, it would trust no certificate at all.
    assert plain.cert_store_stats()["x509_ca"] == 0 and plain.verify_mode == ssl.CERT_REQUIRED
    assert request(url=f"{server}/status/200")["status"] == 200
    assert context(url="https://127.0.0.1:1/").cert_store_stats()["x509_ca"] > 0
    assert context(url=server, follow_redirects=True).cert_store_stats()["x509_ca"] > 0
    monkeypatch.setenv("HTTP_PROXY", "https://127.0.0.1:1")
    assert context(url=server).cert_store_stats()["x509_ca"] > 0


def test_long_bodies_are_truncated_with_a_marker(server: str) -> None:
    body = request(url=f"{server}/big")["body"]
    assert isinstance(body, str)
    assert body.startswith("y" * 1000) and body.endswith("[... truncated 100 more characters]")


def test_connection_refused_names_the_url_and_not_the_headers() -> None:
    port = closed_port()
    with pytest.raises(errors.DriverError) as caught:
        request(url=f"http://127.0.0.1:{port}/health", headers={"Authorization": SECRET})
    message = caught.value.render()
    assert f"GET http://127.0.0.1:{port}/health: could not connect" in message
    assert SECRET not in message and "s3cr3t" not in message


def test_timeout_is_a_driver_error_naming_the_url(server: str) -> None:
    with pytest.raises(errors.DriverError, match=r"GET .*/delay/3000: no answer within 0\.2s"):
        request(url=f"{server}/delay/3000", timeout="200ms", headers={"Authorization": SECRET})


def test_a_trickling_answer_still_times_out(server: str) -> None:
    # Every byte comes well within the timeout; the whole answer (4 s) does not.
    with pytest.raises(errors.DriverError, match=r"/trickle: no answer within 0\.5s"):
        request(url=f"{server}/trickle", timeout="500ms")


def test_a_header_value_that_breaks_the_request_is_never_shown(server: str) -> None:
    # An illegal header value (a newline) makes the HTTP library complain, quoting the value.
    bad = "secret-value-with\nnewline"
    with pytest.raises(errors.DriverError) as caught:
        request(url=f"{server}/json", headers={"X-Api-Key": bad})
    text = caught.value.render()
    assert "secret-value-with" not in text and "request failed" in text
    chain: BaseException | None = caught.value
    while chain is not None:
        assert "secret-value-with" not in str(chain)
        chain = chain.__cause__


def test_password_in_the_url_is_masked_in_errors() -> None:
    port = closed_port()
    with pytest.raises(errors.DriverError) as caught:
        request(url=f"http://user:pa55word@127.0.0.1:{port}/")
    assert "pa55word" not in caught.value.render() and "user:***@127.0.0.1" in caught.value.render()


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "ftp://x/"},
        {"url": "no-scheme"},
        {"url": "http://x/", "json": {}, "body": "b"},
        {"url": "http://x/", "method": "GE T"},
    ],
)
def test_bad_request_args_are_refused_at_validation(bad: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        REQUEST.args.model_validate(bad)


# -- http.load ---------------------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    samples = [float(n) for n in range(1, 101)]
    random.Random(1).shuffle(samples)
    out = latencies.summary(samples)
    assert out == {
        "p50": 50.0,
        "p90": 90.0,
        "p99": 99.0,
        "p99_9": 100.0,
        "mean": 50.5,
        "max": 100.0,
        "min": 1.0,
    }
    assert latencies.nearest_rank([7.0], 99.9) == 7.0
    assert latencies.summary([])["p99"] is None


def test_load_counts_requests_and_orders_percentiles_against_a_slow_server(server: str) -> None:
    out = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/delay/20", "requests": 40, "concurrency": 4}), ctx()
    )
    assert isinstance(out, dict)
    assert out["requests"] == 40 and out["successes"] == 40 and out["success_ratio"] == 1.0
    assert out["errors"] == {}
    lat = out["latency_ms"]
    assert isinstance(lat, dict)
    # Every request slept 20 ms on the server, so none can be faster.
    assert 20 <= lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert out["duration_s"] > 0 and out["rate_rps"] > 0


def test_load_reports_errors_by_kind(server: str) -> None:
    Handler.counter = 0
    out = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/flaky", "requests": 40, "concurrency": 1}), ctx()
    )
    assert out["requests"] == 40 and out["errors"] == {"status_503": 10}  # type: ignore[index]
    assert out["success_ratio"] == 0.75  # type: ignore[index]

    listed = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/status/404", "requests": 5, "expect_status": [404]}),
        ctx(),
    )
    assert listed["success_ratio"] == 1.0  # type: ignore[index]

    refused = LOAD.run(
        LOAD.args.model_validate(
            {"url": f"http://127.0.0.1:{closed_port()}/", "requests": 6, "concurrency": 2}
        ),
        ctx(),
    )
    assert refused["errors"] == {"connect": 6} and refused["successes"] == 0  # type: ignore[index]

    slow = LOAD.run(
        LOAD.args.model_validate(
            {"url": f"{server}/delay/2000", "requests": 2, "concurrency": 2, "timeout": "100ms"}
        ),
        ctx(),
    )
    assert slow["errors"] == {"timeout": 2}  # type: ignore[index]


def test_load_at_a_rate_for_a_duration_is_bounded_by_both(server: str) -> None:
    out = LOAD.run(LOAD.args.model_validate({"url": f"{server}/json", "rate": 20, "duration": "1s"}), ctx())
    assert isinstance(out, dict)
    assert 1 <= out["requests"] <= 20  # rate * duration at most, whatever the machine's load
    assert out["success_ratio"] == 1.0


def test_load_stops_when_the_run_is_cancelled(server: str) -> None:
    c = ctx()
    threading.Timer(0.5, c.cancel.set).start()
    out = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/delay/50", "requests": 100_000, "concurrency": 2}), c
    )
    assert isinstance(out, dict)
    assert 0 < out["requests"] < 100_000


def test_load_at_a_rate_stops_when_the_run_is_cancelled(server: str) -> None:
    c = ctx()
    threading.Timer(0.5, c.cancel.set).start()
    started = time.monotonic()
    out = LOAD.run(LOAD.args.model_validate({"url": f"{server}/delay/50", "rate": 50, "duration": "60s"}), c)
    assert time.monotonic() - started < 5
    assert isinstance(out, dict) and 0 < out["requests"] < 100  # type: ignore[operator]
    assert out["errors"] == {}  # requests cut short by the cancel are not counted as timeouts


def test_load_runs_from_async_code_too(server: str) -> None:
    async def caller() -> contract.JsonValue:
        # A loop already runs in this thread: the load gets a thread and a loop of its own.
        return LOAD.run(LOAD.args.model_validate({"url": f"{server}/json", "requests": 10}), ctx())

    out = asyncio.run(caller())
    assert isinstance(out, dict) and out["successes"] == 10


def test_load_never_shows_header_values(server: str) -> None:
    out = LOAD.run(
        LOAD.args.model_validate(
            {"url": f"http://127.0.0.1:{closed_port()}/", "requests": 2, "headers": {"Authorization": SECRET}}
        ),
        ctx(),
    )
    assert "s3cr3t" not in json.dumps(out)


def test_load_output_has_status_classes_and_a_plottable_histogram(server: str) -> None:
    Handler.counter = 0
    out = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/flaky", "requests": 40, "concurrency": 2}), ctx()
    )
    assert isinstance(out, dict)
    assert out["statuses"] == {"2xx": 30, "5xx": 10}
    assert out["generator_saturated"] is False and out["protocol"] == "HTTP/1.1"
    histogram = out["histogram"]
    assert isinstance(histogram, dict) and histogram["unit"] == "ms"
    bounds, counts = histogram["le"], histogram["counts"]
    assert isinstance(bounds, list) and isinstance(counts, list)
    assert sum(counts) == 40 and bounds == sorted(bounds)  # type: ignore[arg-type]
    lat = out["latency_ms"]
    assert isinstance(lat, dict) and lat["p99_99"] == lat["max"] == bounds[-1]


def test_load_reads_chunked_answers_and_survives_dropped_keep_alive_connections(server: str) -> None:
    chunked = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/chunked", "requests": 20, "concurrency": 2}), ctx()
    )
    assert chunked["successes"] == 20 and chunked["errors"] == {}  # type: ignore[index]
    # Every answer ends its connection; the next request on it is sent again on a new one.
    dropped = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/close", "requests": 20, "concurrency": 2}), ctx()
    )
    assert dropped["successes"] == 20 and dropped["errors"] == {}  # type: ignore[index]


def test_load_sends_the_method_body_query_and_headers(server: str) -> None:
    seen: list[dict[str, object]] = []
    original = Handler.send

    def spy(self: Handler, status: int, body: bytes, *args: object, **kwargs: str) -> None:
        if self.path.startswith("/echo"):
            seen.append(json.loads(body))
        original(self, status, body, *args, **kwargs)  # type: ignore[arg-type]

    Handler.send = spy  # type: ignore[method-assign]
    try:
        out = LOAD.run(
            LOAD.args.model_validate(
                {
                    "url": f"{server}/echo?a=1",
                    "method": "post",
                    "params": {"b": ["2", "3"]},
                    "json": {"x": 1},
                    "headers": {"X-Token": "t"},
                    "requests": 3,
                }
            ),
            ctx(),
        )
    finally:
        Handler.send = original  # type: ignore[method-assign]
    assert out["successes"] == 3  # type: ignore[index]
    assert seen[0] == {
        "method": "POST",
        "query": {"a": ["1"], "b": ["2", "3"]},
        "body": '{"x":1}',
        "content_type": "application/json",
        "x_token": "t",
    }


def test_load_follows_redirects_when_asked(server: str) -> None:
    kept = LOAD.run(LOAD.args.model_validate({"url": f"{server}/redirect", "requests": 4}), ctx())
    assert kept["statuses"] == {"3xx": 4}  # type: ignore[index]
    followed = LOAD.run(
        LOAD.args.model_validate({"url": f"{server}/redirect", "requests": 4, "follow_redirects": True}),
        ctx(),
    )
    assert followed["statuses"] == {"2xx": 4} and followed["successes"] == 4  # type: ignore[index]


@pytest.mark.parametrize("tail", ["\r\nX: y", " caf\u00e9"])
def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it(server: str, tail: str) -> None:
    with pytest.raises(errors.DriverError) as caught:
        LOAD.run(
            LOAD.args.model_validate({"url": server, "headers": {"Authorization": SECRET + tail}}),
            ctx(),
        )
    assert "Authorization" in str(caught.value) and "s3cr3t" not in str(caught.value)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1 that no CA signed."""
    require("openssl", shutil.which("openssl") is not None, "apt-get install openssl")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    key, cert = self_signed(tmp_path_factory.mktemp("tls"))
    httpd = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def test_load_over_tls_checks_the_certificate_unless_told_not_to(tls_server: str) -> None:
    checked = LOAD.run(LOAD.args.model_validate({"url": f"{tls_server}/json", "requests": 4}), ctx())
    assert checked["errors"] == {"connect": 4}  # type: ignore[index]  # self-signed: refused
    trusted = LOAD.run(
        LOAD.args.model_validate(
            {"url": f"{tls_server}/json", "requests": 20, "concurrency": 2, "verify": False}
        ),
        ctx(),
    )
    assert trusted["successes"] == 20 and trusted["protocol"] == "HTTP/1.1"  # type: ignore[index]


@pytest.fixture(scope="module")
def h2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP/2-only server over TLS (ALPN h2), on the h2 library: every stream answers 200 "ok"."""
    try:
        import h2.connection as h2_connection
    except ImportError:
        require("h2", False, "pip install 'chaoskit[http2]'")
    import h2.config
    import h2.events

    key, cert = self_signed(tmp_path_factory.mktemp("h2"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])

    class H2(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.h2 = h2_connection.H2Connection(h2.config.H2Configuration(client_side=False))
            self.h2.initiate_connection()
            transport.write(self.h2.data_to_send())

        def data_received(self, data: bytes) -> None:
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    self.h2.send_headers(event.stream_id, [(":status", "200"), ("content-length", "2")])
                    self.h2.send_data(event.stream_id, b"ok", end_stream=True)
            self.transport.write(self.h2.data_to_send())

    with serving_protocol(H2, tls=context) as port:
        yield f"https://127.0.0.1:{port}"


def test_load_speaks_http2_when_the_server_picks_it(h2_server: str) -> None:
    out = LOAD.run(
        LOAD.args.model_validate({"url": f"{h2_server}/", "requests": 20, "concurrency": 2, "verify": False}),
        ctx(),
    )
    assert out["protocol"] == "HTTP/2"  # type: ignore[index]
    assert out["successes"] == 20 and out["errors"] == {}  # type: ignore[index]
