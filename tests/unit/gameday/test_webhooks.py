"""The GameDay webhook against a real local HTTP server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.gameday import plans, webhooks
from tests import servers


@dataclass
class Receiver:
    """Answers each POST with the next status from ``answers`` (then 200), recording what came in."""

    answers: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(servers.Quiet):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    with servers.serving(Handler) as url:
        state.port = int(url.rsplit(":", 1)[1])
        yield state


SUMMARY: dict[str, JsonValue] = {
    "kind": "chaoskit.gameday",
    "title": "Q4",
    "verdict": "deviated",
    "score": 71.25,
}


def hook(receiver: Receiver, **fields: object) -> plans.Webhook:
    return plans.Webhook.model_validate({"url": f"http://127.0.0.1:{receiver.port}/hooks/T0KEN", **fields})


def test_posts_the_json_summary_with_headers_and_secret_headers(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "Bearer s3cret")
    webhook = hook(
        receiver, headers={"X-Team": "sre"}, secret_headers={"Authorization": {"env": "HOOK_TOKEN"}}
    )
    delivery = webhooks.send(webhook, SUMMARY)
    assert delivery == webhooks.Delivery(ok=True, status=200, attempts=1)
    ((path, headers, body),) = receiver.received
    assert path == "/hooks/T0KEN"
    assert headers["content-type"] == "application/json"
    assert headers["x-team"] == "sre" and headers["authorization"] == "Bearer s3cret"
    assert json.loads(body) == SUMMARY


def test_retries_server_errors_but_not_client_errors(receiver: Receiver) -> None:
    receiver.answers = [503, 502]
    delivery = webhooks.send(hook(receiver, attempts=3), SUMMARY, backoff=0.01)
    assert delivery.ok and delivery.attempts == 3 and len(receiver.received) == 3
    receiver.answers = [404]
    receiver.received.clear()
    refused = webhooks.send(hook(receiver, attempts=3), SUMMARY, backoff=0.01)
    assert not refused.ok and refused.attempts == 1 and refused.status == 404
    assert refused.error == f"http://127.0.0.1:{receiver.port} answered HTTP 404"


def test_an_unreachable_webhook_is_reported_without_its_token() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    webhook = plans.Webhook.model_validate({"url": f"http://127.0.0.1:{port}/hooks/T0KEN", "attempts": 2})
    delivery = webhooks.send(webhook, SUMMARY, backoff=0.01)
    assert not delivery.ok and delivery.attempts == 2
    assert delivery.error is not None and "T0KEN" not in delivery.error
    assert f"127.0.0.1:{port}" in delivery.error


def test_a_missing_secret_header_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    webhook = plans.Webhook.model_validate(
        {"url": "http://127.0.0.1:9/x", "secret_headers": {"Authorization": {"env": "NOPE_TOKEN"}}}
    )
    with pytest.raises(errors.UsageError, match=r"\$NOPE_TOKEN is not set"):
        webhooks.send(webhook, SUMMARY)
