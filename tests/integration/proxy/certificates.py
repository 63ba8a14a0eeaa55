"""Certificates made for a test with ``openssl`` (a private CA, and leaves it signs)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    require("openssl", shutil.which("openssl") is not None, "apt-get install openssl")
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def authority(folder: Path, name: str = "ca") -> Pair:
    """A self-signed CA."""
    pair = Pair(folder / f"{name}.pem", folder / f"{name}-key.pem")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "2", "-subj", f"/CN=chaoskit test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    return pair


def leaf(folder: Path, ca: Pair, name: str, sans: str = "DNS:localhost,IP:127.0.0.1") -> Pair:
    """A server certificate for ``sans``, signed by ``ca``."""
    pair = Pair(folder / f"{name}.pem", folder / f"{name}-key.pem")
    request = folder / f"{name}.csr"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pair.key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(pair.cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return pair
