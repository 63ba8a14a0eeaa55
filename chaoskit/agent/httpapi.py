"""The agent's HTTP API and its sweeper.

    GET    /healthz                   200 ``ok`` (no token needed: for the kubelet's probes)
    GET    /v1/faults[?run_id=R]      the faults held, as recorded
    POST   /v1/faults                 {run_id, kind, target, args, lease_seconds} -> 201 {id, said}
    DELETE /v1/faults/ID              revert it -> {outcome}
    PUT    /v1/leases/RUN_ID          {seconds} -> {expires}: the run is alive

Every ``/v1`` request carries ``Authorization: Bearer <token>`` (or ``X-Chaoskit-Agent-Token``,
through the API server's pod proxy): the agent's shared token (a Secret
mounted as a file), or a ServiceAccount token the API server's TokenReview says belongs to an
allowed account. Errors are JSON ``{"error", "hint"}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Collection
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chaoskit.agent import working
from chaoskit.errors import ChaoskitError, ComponentMissing, TargetError, UsageError

MAX_BODY = 1 << 20
TOKEN_HEADER = "X-Chaoskit-Agent-Token"
"""Where the token travels when ``Authorization`` is taken (requests through the API server's proxy)."""
Authenticate = Callable[[str], bool]
"""True when a bearer token may use the agent."""


def shared_token(expected: str) -> Authenticate:
    def check(token: str) -> bool:
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    return check


def token_review(review: Callable[[str], dict[str, Any]], users: Collection[str]) -> Authenticate:
    """Accept a token the API server authenticates (``review`` posts a TokenReview and returns its
    status) as one of ``users`` (``system:serviceaccount:<namespace>:<name>``)."""

    def check(token: str) -> bool:
        status = review(token)
        user = str((status.get("user") or {}).get("username") or "")
        return bool(status.get("authenticated")) and user in users

    return check


def either(*checks: Authenticate) -> Authenticate:
    return lambda token: any(check(token) for check in checks)


def _status(e: ChaoskitError) -> HTTPStatus:
    if isinstance(e, UsageError):
        return HTTPStatus.BAD_REQUEST
    if isinstance(e, TargetError):
        return HTTPStatus.UNPROCESSABLE_ENTITY
    if isinstance(e, ComponentMissing):
        return HTTPStatus.SERVICE_UNAVAILABLE
    return HTTPStatus.INTERNAL_SERVER_ERROR


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the agent logs what it does, not every request

    def _send(self, status: HTTPStatus, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise UsageError("agent: request body too large")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as e:
            raise UsageError(f"agent: the body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise UsageError("agent: the body must be a JSON object")
        return body

    def _authorized(self) -> bool:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            # Through the API server's pod proxy the caller's own Authorization is the API server's.
            scheme, token = "bearer", self.headers.get(TOKEN_HEADER) or ""
        try:
            return bool(token) and self.server.authenticate(token.strip())
        except Exception as e:  # a TokenReview that can't be made refuses, never lets through
            self.server.agent.log(f"authentication failed: {e}")
            return False

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if method == "GET" and parts == ["healthz"]:
            data = b"ok"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "agent: a valid bearer token is needed"})
            return
        try:
            self._route(method, parts, parse_qs(url.query))
        except ChaoskitError as e:
            self._send(_status(e), {"error": str(e), "hint": e.hint})
        except (ValueError, TypeError, KeyError) as e:
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"agent: bad request: {e}"})

    def _route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        agent = self.server.agent
        if parts == ["v1", "faults"] and method == "GET":
            run_id = query.get("run_id", [None])[0]
            self._send(HTTPStatus.OK, [r.model_dump(mode="json") for r in agent.faults(run_id)])
        elif parts == ["v1", "faults"] and method == "POST":
            body = self._body()
            record, said = agent.create(
                str(body["run_id"]),
                str(body["kind"]),
                dict(body.get("target") or {}),
                dict(body.get("args") or {}),
                lease=float(body.get("lease_seconds") or working.DEFAULT_LEASE),
                record_id=str(body["id"]) if body.get("id") is not None else None,
            )
            self._send(HTTPStatus.CREATED, {"id": record.id, "said": said, "target": record.target})
        elif len(parts) == 3 and parts[:2] == ["v1", "faults"] and method == "DELETE":
            self._send(HTTPStatus.OK, {"outcome": agent.revert(parts[2]).value})
        elif len(parts) == 3 and parts[:2] == ["v1", "leases"] and method == "PUT":
            seconds = float(self._body().get("seconds") or working.DEFAULT_LEASE)
            self._send(HTTPStatus.OK, {"expires": agent.renew(parts[2], seconds)})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"agent: no {method} {self.path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: working.Agent, authenticate: Authenticate) -> None:
        self.agent = agent
        self.authenticate = authenticate
        super().__init__(address, Handler)


class Sweeper(threading.Thread):
    """Sweeps every ``every`` seconds until ``stop`` is set (once at once: what a crashed agent held)."""

    def __init__(self, agent: working.Agent, every: float) -> None:
        super().__init__(name="chaoskit-agent-sweeper", daemon=True)
        self.agent, self.every = agent, every
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.agent.sweep()
            except Exception as e:  # the sweeper must outlive one bad pass
                self.agent.log(f"sweep failed: {e}")
            if self.stop.wait(self.every):
                return
