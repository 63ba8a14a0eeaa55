"""TLS to a real Prometheus serving HTTPS (``--web.config.file``) with a self-signed certificate:
verified against a CA bundle, refused by default with a hint, and accepted with ``verify: false``."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import queries
from tests.conftest import require
from tests.integration.prometheus.conftest import BINARY, free_port

pytestmark = pytest.mark.prometheus


def _run(args: dict[str, object]) -> dict:
    parsed = queries.QueryArgs.model_validate(args)
    out = queries.Query().run(parsed, contract.RunContext(run_id="t"))
    assert isinstance(out, dict)
    return out


@pytest.fixture(scope="module")
def https_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    require("prometheus", Path(BINARY).exists(), "install Debian's prometheus package (scripts/test does)")
    require(
        "openssl", shutil.which("openssl") is not None, "install Debian's openssl package (scripts/test does)"
    )
    home = tmp_path_factory.mktemp("tls")
    cert, key = home / "cert.pem", home / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    (home / "web.yml").write_text(f"tls_server_config: {{cert_file: {cert}, key_file: {key}}}\n")
    (home / "prometheus.yml").write_text("global: {scrape_interval: 1s}\n")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with (home / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={home / 'prometheus.yml'}",
                f"--web.config.file={home / 'web.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", verify=trusted, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                home / "prometheus.log"
            ).read_text()
            time.sleep(0.3)
        yield url, cert
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_tls_is_verified_against_a_ca_bundle(https_prometheus: tuple[str, Path]) -> None:
    url, cert = https_prometheus
    assert _run({"url": url, "query": "vector(7)", "verify": str(cert)})["value"] == 7.0


def test_an_unknown_certificate_is_refused_with_a_hint(https_prometheus: tuple[str, Path]) -> None:
    url, _ = https_prometheus
    with pytest.raises(
        errors.DriverError, match=r"TLS verification of https://127.0.0.1:\d+ failed"
    ) as caught:
        _run({"url": url, "query": "vector(7)"})
    assert caught.value.hint is not None and "verify:" in caught.value.hint


def test_verify_false_accepts_it_without_warnings(https_prometheus: tuple[str, Path]) -> None:
    url, _ = https_prometheus
    # filterwarnings=error: an InsecureRequestWarning would fail this test.
    assert _run({"url": url, "query": "vector(7)", "verify": False})["value"] == 7.0
