"""Reaching the node agent (``chaoskit agent``) on a pod's node: finding the agent's pod there,
authenticating with the token of its Secret, calling its HTTP API through the API server's pod
proxy (or straight at the node's IP), and keeping the run's lease alive while the run lives.

The token is read from the Secret each time a run needs it and never written to the ledger: the
revert data names the Secret, so ``recover`` reads it again.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.errors import ComponentMissing, DriverError
from chaoskit.kube import apis

TOKEN_HEADER = "X-Chaoskit-Agent-Token"
"""The agent's own header: through the pod proxy, ``Authorization`` is the API server's."""
TIMEOUT = 150.0
"""A stressor may take a while to have its load in place (memory touched, a file written)."""


class AgentArgs(contract.Args):
    """Where the node agents run and how to reach them (the defaults match operators/agent/)."""

    agent_namespace: str = "chaoskit-system"
    """The namespace of the agent's DaemonSet."""
    agent_selector: str = "app.kubernetes.io/name=chaoskit-agent"
    """The labels of the agent's pods."""
    agent_port: int = Field(default=9737, ge=1, le=65535)
    agent_token_secret: str = "chaoskit-agent-token"
    """The Secret (in ``agent_namespace``, key ``token``) holding the agent's token."""
    via: Literal["proxy", "node"] = "proxy"
    """``proxy``: through the API server (``pods/proxy`` rights); ``node``: straight to the node's IP."""
    lease: Duration = Field(default=30.0, ge=5, le=3600)
    """The agent reverts the run's faults this long after the run stopped renewing (a crash)."""


class Endpoint(contract.Revert):
    """The agent on one node, as the revert data records it (the Secret by name, never the token)."""

    namespace: str
    selector: str
    port: int
    secret: str
    via: Literal["proxy", "node"]
    node: str

    @classmethod
    def of(cls, args: AgentArgs, node: str) -> Endpoint:
        return cls(
            namespace=args.agent_namespace,
            selector=args.agent_selector,
            port=args.agent_port,
            secret=args.agent_token_secret,
            via=args.via,
            node=node,
        )


def _token(api: apis.Api, endpoint: Endpoint) -> str:
    secret = api.get(
        f"/api/v1/namespaces/{quote(endpoint.namespace)}/secrets/{quote(endpoint.secret)}",
        what=f"reading the agent's token Secret {endpoint.namespace}/{endpoint.secret}",
    )
    encoded = (secret.get("data") or {}).get("token")
    if not encoded:
        raise ComponentMissing(
            f"Secret {endpoint.namespace}/{endpoint.secret} has no key 'token'",
            hint="create it as docs/agent.md shows (kubectl create secret generic ... --from-literal=token=)",
        )
    return base64.b64decode(encoded).decode().strip()


def _agent_pod(api: apis.Api, endpoint: Endpoint) -> apis.JSON:
    found = api.list(
        f"/api/v1/namespaces/{quote(endpoint.namespace)}/pods",
        what=f"finding the chaoskit agent on node {endpoint.node}",
        labelSelector=endpoint.selector,
        fieldSelector=f"spec.nodeName={endpoint.node}",
    )
    running = [p for p in found if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        raise ComponentMissing(
            f"no chaoskit agent runs on node {endpoint.node} "
            f"(pods {endpoint.selector} in namespace {endpoint.namespace})",
            hint="deploy it: kubectl apply -k operators/agent (docs/agent.md)",
        )
    return running[0]


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"error": raw[:300].decode("utf-8", "replace")}


def _through_proxy(
    api: apis.Api, pod: str, endpoint: Endpoint, *, method: str, path: str, body: object, token: str
) -> tuple[int, Any]:
    headers = {"Accept": "application/json", TOKEN_HEADER: token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    serialized = api.client.param_serialize(
        method=method,
        resource_path=f"/api/v1/namespaces/{quote(endpoint.namespace)}/pods/{pod}:{endpoint.port}/proxy{path}",
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.client.call_api(*serialized, _request_timeout=TIMEOUT)
    return int(response.status), _decode(response.read())


def _to_node(
    ip: str, endpoint: Endpoint, *, method: str, path: str, body: object, token: str
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{ip}:{endpoint.port}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status), _decode(response.read())
    except urllib.error.HTTPError as e:
        return int(e.code), _decode(e.read())


def call(api: apis.Api, endpoint: Endpoint, method: str, path: str, body: object = None) -> Any:
    """One request to the agent on ``endpoint.node``; its JSON answer, or a ``DriverError`` saying
    what the agent (or the way to it) answered."""
    pod = _agent_pod(api, endpoint)
    name = str(pod["metadata"]["name"])
    token = _token(api, endpoint)
    try:
        if endpoint.via == "proxy":
            status, answer = _through_proxy(
                api, name, endpoint, method=method, path=path, body=body, token=token
            )
        else:
            ip = str((pod.get("status") or {}).get("hostIP") or "")
            status, answer = _to_node(ip, endpoint, method=method, path=path, body=body, token=token)
    except (OSError, ValueError) as e:
        raise DriverError(f"chaoskit agent {name} on node {endpoint.node}: no answer ({e})") from e
    except Exception as e:  # the client's own errors (urllib3)
        raise DriverError(
            f"chaoskit agent {name} on node {endpoint.node}: no answer ({type(e).__name__}: {e})"
        ) from e
    if not 200 <= status <= 299:
        said = answer.get("error") if isinstance(answer, dict) else None
        hint = answer.get("hint") if isinstance(answer, dict) else None
        raise DriverError(
            f"chaoskit agent {name} on node {endpoint.node} answered {status}: {said or answer}", hint=hint
        )
    return answer


class Heartbeat:
    """Renews a run's lease at one agent every third of the lease while the run has faults there;
    when the run dies, it stops and the agent reverts what is left once the lease runs out."""

    def __init__(self, api: apis.Api, endpoint: Endpoint, run_id: str, lease: float, log: Any) -> None:
        self.api, self.endpoint, self.run_id, self.lease, self.log = api, endpoint, run_id, lease, log
        self.held: set[str] = set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"agent-lease-{endpoint.node}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.lease / 3):
            if not self.held:
                continue
            try:
                call(
                    self.api,
                    self.endpoint,
                    "PUT",
                    f"/v1/leases/{quote(self.run_id)}",
                    {"seconds": self.lease},
                )
            except DriverError as e:
                self.log(f"could not renew the lease at the chaoskit agent on {self.endpoint.node}: {e}")

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def heartbeat(ctx: contract.RunContext, api: apis.Api, endpoint: Endpoint, lease: float) -> Heartbeat:
    """The run's heartbeat to ``endpoint`` (one per agent, stopped at the end of the run)."""
    key = f"chaoskit-agent-heartbeat:{api.connection.key}:{endpoint.namespace}:{endpoint.node}"
    return ctx.resource(
        key, lambda: Heartbeat(api, endpoint, ctx.run_id, lease, ctx.log), close=Heartbeat.stop
    )
