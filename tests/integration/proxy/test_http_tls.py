"""A proxy that terminates TLS: real TLS clients (httpx, curl --cacert) and real TLS upstreams
(Python's ``ssl``), certificates made by the test; the http_* toxics act on the decrypted requests."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from click.testing import CliRunner

from chaoskit import errors
from chaoskit.cli import main
from chaoskit.drivers.toxiproxy import clients
from chaoskit.proxy import servers
from tests.integration.proxy import certificates, http_upstream


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, certificates.Pair]:
    folder = tmp_path_factory.mktemp("pki")
    ca = certificates.authority(folder)
    other = certificates.authority(folder, "other-ca")
    return {
        "ca": ca,
        "proxy": certificates.leaf(folder, ca, "proxy"),
        "upstream": certificates.leaf(folder, ca, "upstream"),
        "stranger": certificates.leaf(folder, other, "stranger"),
    }


def tls_upstream(pair: certificates.Pair) -> http_upstream.Server:
    server = http_upstream.Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


@pytest.fixture
def secure_web(pki: dict[str, certificates.Pair]) -> Iterator[http_upstream.Server]:
    with tls_upstream(pki["upstream"]) as upstream:
        yield upstream


def create(api: httpx.Client, upstream: str, **tls: Any) -> str:
    """An https:// URL for a new proxy ``web`` that terminates TLS as ``tls`` says."""
    created = api.post("/proxies", json={"name": "web", "upstream": upstream, "tls": tls})
    assert created.status_code == 201, created.text
    return f"https://{created.json()['listen']}"


def abort_pay(api: httpx.Client) -> None:
    toxic = {"type": "http_abort", "attributes": {"status": 503, "body": "busy", "match": {"path": "/pay"}}}
    assert api.post("/proxies/web/toxics", json=toxic).status_code == 200


def test_toxics_act_inside_https_and_the_upstream_is_spoken_to_in_verified_tls(
    api: httpx.Client, pki: dict[str, certificates.Pair], secure_web: http_upstream.Server
) -> None:
    ca = pki["ca"].cert
    url = create(
        api, secure_web.address, cert=str(pki["proxy"].cert), key=str(pki["proxy"].key), upstream_ca=str(ca)
    )
    abort_pay(api)
    with httpx.Client(verify=ssl.create_default_context(cafile=ca)) as client:
        aborted = client.post(f"{url}/pay", content=b"card")
        assert (aborted.status_code, aborted.text) == (503, "busy")
        passed = client.get(f"{url}/orders?page=2", headers={"X-Trace": "t1"})  # same connection
    assert passed.status_code == 200 and passed.headers["x-upstream"] == "yes"
    assert passed.json()["path"] == "/orders?page=2" and passed.json()["headers"]["X-Trace"] == "t1"
    assert [seen["path"] for seen in secure_web.seen] == ["/orders?page=2"]  # the abort never left
    result = http_upstream.curl(
        "--cacert", str(ca), "--write-out", " %{http_code} %{http_version}", f"{url}/pay"
    )
    assert result.stdout == "busy 503 1.1", result.stderr  # ALPN: http/1.1 even for an h2 client
    result = http_upstream.curl(
        "--cacert", str(ca), "--write-out", " %{http_code}", "-d", "x=1", f"{url}/submit"
    )
    assert result.stdout.endswith(" 200") and json.loads(result.stdout[:-4])["body"] == "x=1"
    shown = api.get("/proxies/web").json()["tls"]
    assert shown == {
        "cert": str(pki["proxy"].cert),
        "key": str(pki["proxy"].key),
        "upstream_tls": True,
        "upstream_ca": str(ca),
    }


def test_a_plain_upstream_behind_https_gets_modified_requests(
    api: httpx.Client, pki: dict[str, certificates.Pair]
) -> None:
    with http_upstream.Server() as web:
        # One PEM file with both certificate and key: "key" may be left out.
        both = pki["proxy"].cert.with_name("proxy-both.pem")
        both.write_bytes(pki["proxy"].cert.read_bytes() + pki["proxy"].key.read_bytes())
        url = create(api, web.address, cert=str(both), upstream_tls=False)
        toxic = {
            "type": "http_modify",
            "stream": "upstream",
            "attributes": {"set_headers": {"X-Injected": "1"}, "match": {"method": "GET"}},
        }
        assert api.post("/proxies/web/toxics", json=toxic).status_code == 200
        answer = httpx.get(f"{url}/a", verify=ssl.create_default_context(cafile=pki["ca"].cert))
    assert answer.status_code == 200 and answer.json()["headers"]["X-Injected"] == "1"


def test_an_upstream_whose_certificate_is_not_trusted_is_not_spoken_to(
    api: httpx.Client, pki: dict[str, certificates.Pair], caplog: pytest.LogCaptureFixture
) -> None:
    with tls_upstream(pki["stranger"]) as stranger:
        url = create(api, stranger.address, cert=str(pki["proxy"].cert), key=str(pki["proxy"].key))
        with pytest.raises(httpx.HTTPError):  # verified against the system's CAs: refused
            httpx.get(f"{url}/secret", verify=ssl.create_default_context(cafile=pki["ca"].cert))
        assert stranger.seen == []
    metrics = api.get("/metrics").text
    assert 'chaoskit_proxy_tls_handshake_failed_total{proxy="web",side="upstream"} 1' in metrics
    assert any("TLS with the upstream failed" in r.getMessage() for r in caplog.records)


def test_the_upstream_name_is_checked_against_its_certificate(
    api: httpx.Client, pki: dict[str, certificates.Pair], secure_web: http_upstream.Server
) -> None:
    proxy = pki["proxy"]
    ca = str(pki["ca"].cert)
    url = create(
        api, secure_web.address, cert=str(proxy.cert), key=str(proxy.key), upstream_ca=ca, upstream_name="db"
    )
    with pytest.raises(httpx.HTTPError):  # the upstream's certificate names localhost, not db
        httpx.get(f"{url}/x", verify=ssl.create_default_context(cafile=ca))
    assert secure_web.seen == []


def test_a_client_that_does_not_speak_tls_is_closed_and_counted(
    api: httpx.Client, pki: dict[str, certificates.Pair], secure_web: http_upstream.Server
) -> None:
    url = create(api, secure_web.address, cert=str(pki["proxy"].cert), key=str(pki["proxy"].key))
    host, port = url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert not sock.recv(4096).startswith(b"HTTP/")  # no answer in clear: closed
    assert secure_web.seen == []
    metrics = api.get("/metrics").text
    assert 'chaoskit_proxy_tls_handshake_failed_total{proxy="web",side="client"} 1' in metrics


@pytest.mark.parametrize(
    ("tls", "says"),
    [
        ({}, "tls.cert is missing"),
        ({"cert": "/nonexistent/proxy.pem"}, "no such file '/nonexistent/proxy.pem'"),
        ({"cert": "PROXY_CERT", "key": "CA_KEY"}, "key must be the certificate's"),
        ({"cert": "PROXY_CERT", "key": "PROXY_KEY", "upstream_ca": "/nonexistent/ca.pem"}, "tls.upstream_ca"),
        ({"cert": "PROXY_CERT", "upstream_verify": False}, "unknown key 'upstream_verify'"),
        ({"cert": "PROXY_CERT", "upstream_tls": "no"}, "tls.upstream_tls must be true"),
        ({"cert": "PROXY_CERT", "key": "PROXY_KEY", "upstream_tls": False, "upstream_ca": "CA_CERT"}, "need"),
        ("yes", "tls must be an object"),
    ],
)
def test_a_tls_field_that_cant_be_used_is_refused_naming_what_to_fix(
    api: httpx.Client, pki: dict[str, certificates.Pair], tls: Any, says: str
) -> None:
    files = {
        "PROXY_CERT": pki["proxy"].cert,
        "PROXY_KEY": pki["proxy"].key,
        "CA_CERT": pki["ca"].cert,
        "CA_KEY": pki["ca"].key,
    }
    if isinstance(tls, dict):
        tls = {k: str(files[v]) if v in files else v for k, v in tls.items()}
    refused = api.post("/proxies", json={"name": "web", "upstream": "127.0.0.1:1", "tls": tls})
    assert refused.status_code == 400
    assert says in refused.json()["error"]
    assert api.get("/proxies").json() == {}


def test_tls_cant_be_changed_on_a_live_proxy(api: httpx.Client, pki: dict[str, certificates.Pair]) -> None:
    create(api, "127.0.0.1:1", cert=str(pki["proxy"].cert), key=str(pki["proxy"].key))
    shown = api.get("/proxies/web").json()
    assert api.patch("/proxies/web", json={"enabled": True, "tls": shown["tls"]}).status_code == 200
    refused = api.patch("/proxies/web", json={"tls": None})
    assert refused.status_code == 400 and "delete the proxy and create it again" in refused.json()["error"]


class _PlainToxiproxy(http.server.BaseHTTPRequestHandler):
    """Answers as a real Toxiproxy does: a field it doesn't know (``tls``) is ignored."""

    protocol_version = "HTTP/1.1"
    deleted: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        known = {k: sent[k] for k in ("name", "upstream", "enabled")}
        self._answer(201, {**known, "listen": "127.0.0.1:20000", "toxics": []})

    def do_DELETE(self) -> None:
        self.deleted.append(self.path)
        self._answer(204, None)

    def _answer(self, status: int, value: object) -> None:
        body = b"" if value is None else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_real_toxiproxy_asked_to_terminate_tls_is_refused_and_cleaned_up(
    pki: dict[str, certificates.Pair],
) -> None:
    stand_in = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainToxiproxy)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    try:
        with (
            clients.Client(f"http://127.0.0.1:{stand_in.server_port}") as api,
            pytest.raises(errors.DriverError) as caught,
        ):
            api.create_proxy("web", "127.0.0.1:1", tls={"cert": str(pki["proxy"].cert)})
    finally:
        stand_in.shutdown()
        stand_in.server_close()
    assert "can't terminate TLS" in caught.value.message and "embedded proxy" in caught.value.message
    assert caught.value.hint is not None and "chaoskit proxy serve" in caught.value.hint
    assert _PlainToxiproxy.deleted == ["/proxies/web"]  # no plain proxy left where TLS was asked


def test_the_driver_client_creates_a_terminating_proxy_on_the_embedded_server(
    server: servers.ProxyServer, pki: dict[str, certificates.Pair], secure_web: http_upstream.Server
) -> None:
    tls = {"cert": str(pki["proxy"].cert), "key": str(pki["proxy"].key), "upstream_ca": str(pki["ca"].cert)}
    with clients.Client(server.url) as api:
        created = api.create_proxy("web", secure_web.address, tls=tls)
    answer = httpx.get(
        f"https://{created['listen']}/ok", verify=ssl.create_default_context(cafile=tls["upstream_ca"])
    )
    assert answer.status_code == 200 and answer.json()["path"] == "/ok"


def test_the_cli_creates_a_terminating_proxy_from_relative_paths(
    server: servers.ProxyServer,
    pki: dict[str, certificates.Pair],
    secure_web: http_upstream.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(pki["proxy"].cert.parent)  # the files named as a user in that folder would
    cert, key, ca = (pki["proxy"].cert.name, pki["proxy"].key.name, pki["ca"].cert.name)
    made = CliRunner().invoke(
        main.cli,
        [
            "proxy",
            "create",
            "web",
            "--upstream",
            secure_web.address,
            "--url",
            server.url,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--upstream-ca",
            ca,
        ],
    )
    assert made.exit_code == 0, made.output
    assert "(terminates TLS)" in made.output
    with httpx.Client(base_url=server.url) as api:
        listen = api.get("/proxies/web").json()["listen"]
        abort_pay(api)
    verify = ssl.create_default_context(cafile=pki["ca"].cert)
    assert httpx.post(f"https://{listen}/pay", verify=verify).status_code == 503
    assert httpx.get(f"https://{listen}/ok", verify=verify).json()["path"] == "/ok"


@pytest.mark.parametrize("flag", [["--tls-key", "k.pem"], ["--upstream-plain"], ["--upstream-name", "x"]])
def test_a_tls_option_without_a_certificate_is_one_message_and_exit_2(
    server: servers.ProxyServer, flag: list[str]
) -> None:
    result = CliRunner().invoke(
        main.cli, ["proxy", "create", "web", "--upstream", "127.0.0.1:9", "--url", server.url, *flag]
    )
    assert result.exit_code == 2
    assert f"{flag[0]} only goes with --tls-cert" in result.output
    with httpx.Client(base_url=server.url) as api:
        assert api.get("/proxies").json() == {}  # nothing was created


def test_a_certificate_the_server_cant_read_is_one_message_naming_it_and_exit_2(
    server: servers.ProxyServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    args = ["proxy", "create", "web", "--upstream", "127.0.0.1:9", "--tls-cert", str(missing)]
    result = CliRunner().invoke(main.cli, [*args, "--url", server.url])
    assert result.exit_code == 2
    assert f"no such file '{missing}'" in result.output and "--tls-cert" in result.output  # the hint
    assert "Traceback" not in result.output
