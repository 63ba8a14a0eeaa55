"""The GameDay notification: a JSON summary POSTed to a webhook when the GameDay ends.

A webhook that fails does not change the GameDay's verdict; it is retried, then reported. Webhook
URLs often embed a token (Slack, Teams), so messages name only the scheme and host.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.gameday import plans


@dataclass(frozen=True)
class Delivery:
    ok: bool
    status: int | None
    attempts: int
    error: str | None = None


def where(url: str) -> str:
    """The URL without path, query or credentials: safe to log."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _headers(webhook: plans.Webhook) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": "chaoskit-gameday", **webhook.headers}
    for name, ref in webhook.secret_headers.items():
        if ref.env is not None:
            if ref.env not in os.environ:
                raise errors.UsageError(
                    f"notify.webhook.secret_headers.{name}: ${ref.env} is not set",
                    hint=f"export {ref.env}=... or remove the header",
                )
            headers[name] = os.environ[ref.env]
        elif ref.file is not None:
            try:
                headers[name] = Path(ref.file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as e:
                raise errors.UsageError(
                    f"notify.webhook.secret_headers.{name}: can't read {ref.file}: {e.strerror}"
                ) from e
    return headers


def send(webhook: plans.Webhook, summary: dict[str, JsonValue], *, backoff: float = 1.0) -> Delivery:
    """POST ``summary``; retries on connection errors and 5xx answers, not on 4xx."""
    body = json.dumps(summary).encode()
    headers = _headers(webhook)
    error = "not attempted"
    status: int | None = None
    for attempt in range(1, webhook.attempts + 1):
        try:
            response = httpx.post(webhook.url, content=body, headers=headers, timeout=webhook.timeout)
        except httpx.HTTPError as e:
            status, error = None, f"{type(e).__name__} talking to {where(webhook.url)}"
        else:
            status = response.status_code
            if response.is_success:
                return Delivery(ok=True, status=status, attempts=attempt)
            error = f"{where(webhook.url)} answered HTTP {status}"
            if status < 500:
                return Delivery(ok=False, status=status, attempts=attempt, error=error)
        if attempt < webhook.attempts:
            time.sleep(backoff * attempt)
    return Delivery(ok=False, status=status, attempts=webhook.attempts, error=error)
