"""Connecting to a cluster (kubeconfig, context, in-cluster) and talking JSON to its API server.

Requests go through the official client's ``ApiClient`` (its TLS, token and client-certificate
handling), but bodies stay plain JSON: the generated models are strict about fields an older or
newer API server may leave out, and JSON is what revert data, probes and ``expect`` need anyway.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, StrictBool

from chaoskit.drivers import contract
from chaoskit.errors import ComponentMissing, DriverError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_TIMEOUT = 30.0

JSON = dict[str, Any]
"""An API object or list as the server sent it."""


class ClusterArgs(contract.Args):
    """Which cluster to talk to. Mixed into every kubernetes activity's ``with:``."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; default ``$KUBECONFIG``, then ``~/.kube/config``, then in-cluster."""
    context: str | None = None
    """A context of that kubeconfig; default ``$CHAOSKIT_KUBE_CONTEXT``, then its current context."""
    in_cluster: bool = False
    """Use the pod's service account (chaoskit running inside the cluster)."""


class Connection(BaseModel):
    """Where a cluster is, in a form that survives in the ledger (no secrets: only a path). Part of
    every kubernetes fault's revert data, so that ``recover`` reaches the same cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: str | None
    """The kubeconfig's absolute path (None in-cluster)."""
    context: str | None
    """The context of that kubeconfig (None: its current context)."""
    in_cluster: StrictBool
    """The pod's service account (chaoskit running inside the cluster)."""

    @property
    def key(self) -> str:
        return f"kubernetes:{self.kubeconfig}:{self.context}:{self.in_cluster}"


def resolve(args: ClusterArgs | None = None) -> Connection:
    """The cluster ``args`` point at, falling back to ``$KUBECONFIG``, ``~/.kube/config``, in-cluster."""
    if args is not None and args.in_cluster:
        return Connection(kubeconfig=None, context=None, in_cluster=True)
    candidates = []
    if args is not None and args.kubeconfig:
        candidates.append(args.kubeconfig)
    else:
        env = os.environ.get("KUBECONFIG", "")
        candidates.extend(p for p in env.split(os.pathsep) if p)
        candidates.append(str(Path.home() / ".kube" / "config"))
    context = (args.context if args is not None else None) or os.environ.get("CHAOSKIT_KUBE_CONTEXT") or None
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return Connection(kubeconfig=str(path.resolve()), context=context, in_cluster=False)
    if args is not None and args.kubeconfig:
        raise ComponentMissing(
            f"kubeconfig {args.kubeconfig!r} does not exist",
            hint="fix the kubeconfig: path in the step's with:, or drop it to use $KUBECONFIG",
        )
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return Connection(kubeconfig=None, context=None, in_cluster=True)
    raise ComponentMissing(
        "no Kubernetes cluster is configured",
        hint="set KUBECONFIG, give kubeconfig: in the step's with:, or run chaoskit inside the cluster",
    )


class ApiError(DriverError):
    """The API server refused a request; carries its HTTP status and Status reason."""

    def __init__(self, what: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{what}: the API server answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.api_message = message


class Api:
    """A JSON view of one cluster's REST API. One per connection per run (``api(ctx, conn)``)."""

    def __init__(self, client: Any, connection: Connection, default_namespace: str) -> None:
        self.client = client
        self.connection = connection
        self.default_namespace = default_namespace
        self._versions: dict[str, list[str]] = {}

    def versions(self, group: str) -> list[str]:
        """The versions the server serves of an API group, newest preferred first (asked once)."""
        if group not in self._versions:
            try:
                found = self.get(f"/apis/{group}", what=f"discovering API group {group}")
            except ApiError as e:
                if e.status != 404:
                    raise
                found = {}
            preferred = (found.get("preferredVersion") or {}).get("version")
            listed = [str(v.get("version")) for v in found.get("versions") or []]
            self._versions[group] = sorted(listed, key=lambda v: v != preferred)
        return self._versions[group]

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: dict[str, str | int | bool | None] | None = None,
        body: object = None,
        content_type: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> JSON:
        """Send one request; raise ``ApiError`` (naming ``what``) unless the answer is 2xx."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
        serialized = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=[(k, v) for k, v in params if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*serialized, _request_timeout=timeout)
            raw = response.read()
        except Exception as e:
            raise DriverError(f"{what}: no answer from the API server ({type(e).__name__}: {e})") from e
        text = raw.decode("utf-8", "replace") if raw else ""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {"message": text[:300]}
        if not 200 <= response.status <= 299:
            status = data if isinstance(data, dict) else {}
            raise ApiError(
                what,
                int(response.status),
                str(status.get("reason") or response.reason or ""),
                str(status.get("message") or text[:300]),
            )
        return cast(JSON, data) if isinstance(data, dict) else {"value": data}

    def get(self, path: str, *, what: str, **query: str | int | bool | None) -> JSON:
        return self.request("GET", path, what=what, query=query)

    def list(self, path: str, *, what: str, **query: str | int | bool | None) -> list[JSON]:
        """Every item of a list, following ``continue`` tokens (one call per 500 items)."""
        items: list[JSON] = []
        token: str | None = None
        while True:
            page = self.request("GET", path, what=what, query={**query, "limit": 500, "continue": token})
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    def patch(self, path: str, body: object, *, what: str, strategic: bool = False) -> JSON:
        kind = "strategic-merge-patch" if strategic else "merge-patch"
        return self.request("PATCH", path, what=what, body=body, content_type=f"application/{kind}+json")

    def post(self, path: str, body: object, *, what: str) -> JSON:
        return self.request("POST", path, what=what, body=body)

    def delete(self, path: str, *, what: str, body: object = None) -> JSON:
        return self.request("DELETE", path, what=what, body=body)


def _default_namespace(connection: Connection) -> str:
    if connection.in_cluster:
        try:
            return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"
    from kubernetes import config as kube_config

    config: Any = kube_config  # the client's config module is untyped
    try:
        contexts, current = config.list_kube_config_contexts(connection.kubeconfig)
    except Exception:
        return "default"
    chosen = current
    if connection.context:
        chosen = next((c for c in contexts if c.get("name") == connection.context), None)
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def open_api(connection: Connection) -> Api:
    """A new ``Api`` for ``connection``; the caller closes ``api.client``."""
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config  # the client's config module is untyped
    try:
        if connection.in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
        else:
            api_client = config.new_client_from_config(
                config_file=connection.kubeconfig, context=connection.context, persist_config=False
            )
    except Exception as e:
        where = "in-cluster config" if connection.in_cluster else f"kubeconfig {connection.kubeconfig}"
        detail = f" (context {connection.context!r})" if connection.context else ""
        raise ComponentMissing(
            f"can't load {where}{detail}: {e}",
            hint="check the kubeconfig:/context: in the step's with:, or KUBECONFIG",
        ) from e
    return Api(api_client, connection, _default_namespace(connection))


def api(ctx: contract.RunContext, connection: Connection) -> Api:
    """The run's shared ``Api`` for ``connection`` (made once, closed at the end of the run)."""
    return ctx.resource(connection.key, lambda: open_api(connection), close=lambda a: a.client.close())
