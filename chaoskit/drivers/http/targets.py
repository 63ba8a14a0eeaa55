"""What ``http.load`` sends: the request it repeats, prepared once as the bytes that go on the wire."""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

NO_BODY_METHODS = frozenset({"HEAD"})
URL_SAFE = "/%:@!$&'()*+,;=-._~?"
SEND_BODY_LENGTH = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class Target:
    """Everything about the request that is the same every time, prepared once."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    server_hostname: str | None
    request: bytes
    """The request as it goes on the wire (head and body)."""
    head_only: bool
    timeout: float
    answers: dict[bytes, tuple[int, bool]] = field(default_factory=dict)
    """Whole answers seen, with their status and whether they keep the connection: shared by
    every connection to the target, so each distinct answer is parsed once."""


def target_of(
    *,
    url: str,
    method: str,
    headers: dict[str, str],
    params: dict[str, str | list[str]],
    body: bytes | None,
    content_type: str | None,
    timeout: float,
    tls: ssl.SSLContext | None,
) -> Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    query = parts.query
    if params:
        extra = urlencode(params, doseq=True)
        query = f"{query}&{extra}" if query else extra
    # Already-encoded URLs pass unchanged; anything else is percent-encoded as UTF-8, as httpx does.
    path = quote(parts.path or "/", safe=URL_SAFE) + (f"?{quote(query, safe=URL_SAFE)}" if query else "")
    authority = host if ":" not in host else f"[{host}]"
    if parts.port is not None:
        authority = f"{authority}:{parts.port}"
    lines = {
        "host": ("Host", authority),
        "user-agent": ("User-Agent", "chaoskit"),
        "accept": ("Accept", "*/*"),
    }
    if parts.username is not None:
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        lines["authorization"] = ("Authorization", f"Basic {token}")
    if content_type is not None:
        lines["content-type"] = ("Content-Type", content_type)
    for name, value in headers.items():
        lines[name.lower()] = (name, value)
    if body is not None or method in SEND_BODY_LENGTH:
        lines["content-length"] = ("Content-Length", str(len(body or b"")))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.values()) + "\r\n"
    return Target(
        host=host,
        port=port,
        tls=tls,
        server_hostname=host if tls is not None else None,
        request=head.encode("latin-1") + (body or b""),
        head_only=method in NO_BODY_METHODS,
        timeout=timeout,
    )


def json_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
