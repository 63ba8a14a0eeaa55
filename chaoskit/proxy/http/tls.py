"""TLS termination for a proxy whose ``http_*`` toxics must see inside HTTPS.

A proxy created with ``"tls": {"cert": ..., "key": ...}`` accepts TLS from its clients with that
certificate, hands the decrypted bytes to its toxics, and speaks TLS (verified) or plain HTTP to
its upstream. Without it, a TLS connection meets the HTTP toxics' refusal (``sessions``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KEYS = ("cert", "key", "upstream_tls", "upstream_ca", "upstream_name")
ALPN = ["http/1.1"]
"""Offered and accepted in ALPN: the HTTP toxics speak HTTP/1.1, so a client that could speak h2
(curl, browsers) is told to speak 1.1 instead."""


FIX = {
    "client": "does the client trust the proxy's certificate (tls.cert), and speak TLS?",
    "upstream": "does tls.upstream_ca hold the CA of the upstream's certificate, and does that name "
    "tls.upstream_name (or the upstream's host)? For a plain upstream: tls.upstream_tls false",
}
"""What to check when a handshake with that side fails (logged once per proxy and side)."""


class Invalid(ValueError):
    """The ``tls`` field can't be used; the message names the key and says what it may be."""


@dataclass(frozen=True)
class Termination:
    """How one proxy terminates TLS; the certificate files are read when the proxy is created."""

    cert: str
    """PEM file: the certificate (chain) the proxy shows its clients."""
    key: str
    """PEM file with its private key (the ``cert`` file itself when not given)."""
    upstream_tls: bool = True
    """Speak TLS to the upstream (verified); false: plain HTTP."""
    upstream_ca: str | None = None
    """PEM file of the CAs the upstream's certificate is verified with, instead of the system's."""
    upstream_name: str | None = None
    """The name the upstream's certificate must carry (and SNI); default: the upstream's host."""
    server: ssl.SSLContext = field(compare=False, repr=False, default_factory=ssl.SSLContext)
    client: ssl.SSLContext | None = field(compare=False, repr=False, default=None)

    def server_hostname(self, upstream_host: str) -> str | None:
        """What the upstream's certificate is checked against (None: plain upstream)."""
        if self.client is None:
            return None
        return self.upstream_name or upstream_host

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"cert": self.cert, "key": self.key, "upstream_tls": self.upstream_tls}
        if self.upstream_ca is not None:
            shown["upstream_ca"] = self.upstream_ca
        if self.upstream_name is not None:
            shown["upstream_name"] = self.upstream_name
        return shown


def parse(value: object) -> Termination | None:
    """The termination a proxy's ``tls`` field asks for (None: absent or null), its files loaded.

    ``Invalid`` names what is wrong: a missing or unreadable file, a key that doesn't fit the
    certificate, an unknown key (a misspelt ``upstream_ca`` would otherwise verify against the
    system's CAs and fail far from here)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise Invalid('tls must be an object like {"cert": "proxy.pem", "key": "proxy-key.pem"}')
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise Invalid(f"unknown key {str(unknown[0])[:40]!r} in tls (it takes: {', '.join(KEYS)})")
    for key_name in ("cert", "key", "upstream_ca", "upstream_name"):
        given = value.get(key_name)
        if given is not None and (not isinstance(given, str) or not given):
            raise Invalid(f"tls.{key_name} must be a non-empty string")
    upstream_tls = value.get("upstream_tls", True)
    if not isinstance(upstream_tls, bool):
        raise Invalid("tls.upstream_tls must be true (verified TLS to the upstream) or false (plain)")
    cert = value.get("cert")
    if cert is None:
        raise Invalid("tls.cert is missing: the PEM certificate file the proxy shows its clients")
    key = str(value.get("key") or cert)
    ca, name = value.get("upstream_ca"), value.get("upstream_name")
    if not upstream_tls and (ca is not None or name is not None):
        raise Invalid("tls.upstream_ca and tls.upstream_name need tls.upstream_tls true")
    return Termination(
        cert=str(cert),
        key=key,
        upstream_tls=upstream_tls,
        upstream_ca=None if ca is None else str(ca),
        upstream_name=None if name is None else str(name),
        server=_server_context(str(cert), key),
        client=_client_context(None if ca is None else str(ca)) if upstream_tls else None,
    )


def _server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as e:
        raise Invalid(f"tls: no such file {e.filename or cert!r} (paths are read by the proxy server)") from e
    except OSError as e:  # ssl.SSLError included: not PEM, or the key isn't the certificate's
        raise Invalid(
            f"tls: can't use certificate {cert!r} with key {key!r}: {_reason(e)} "
            "(both PEM; the key must be the certificate's and not encrypted)"
        ) from e
    return context


def _client_context(ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(ALPN)
    if ca is not None:
        try:
            context = ssl.create_default_context(cafile=ca)
        except FileNotFoundError as e:
            raise Invalid(f"tls.upstream_ca: no such file {ca!r}") from e
        except OSError as e:
            raise Invalid(f"tls.upstream_ca: can't read CA certificates from {ca!r}: {_reason(e)}") from e
        context.set_alpn_protocols(ALPN)
    return context


def _reason(e: OSError) -> str:
    if isinstance(e, ssl.SSLError):
        return str(e.reason or e).lower().replace("_", " ")
    return e.strerror or str(e)
