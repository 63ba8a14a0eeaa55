"""Talking JSON to a cluster's API server: requests, lists across pages, watches, errors.

Requests go through the official client's ``ApiClient`` (its TLS, token and client-certificate
handling), but bodies stay plain JSON: the generated models are strict about fields an older or
newer API server may leave out, and JSON is what revert data, probes and ``expect`` need anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from chaoskit.errors import ComponentMissing, DriverError
from chaoskit.kube import kubeconfigs

DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take before it fails (a watch gets its own length plus a margin)."""

JSON = dict[str, Any]
"""An API object or list as the server sent it."""


def _query_params(query: dict[str, str | int | bool | None] | None) -> list[tuple[str, str | int]]:
    """Query parameters as the client serialises them: booleans as Kubernetes spells them, None left out."""
    items = (query or {}).items()
    return [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in items if v is not None]


class ApiError(DriverError):
    """The API server refused a request; carries its HTTP status and Status reason."""

    def __init__(self, what: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{what}: the API server answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.api_message = message


class Api:
    """A JSON view of one cluster's REST API; ``client`` is the official client's ``ApiClient``."""

    def __init__(self, client: Any, connection: kubeconfigs.Connection, default_namespace: str) -> None:
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
        serialized = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=_query_params(query),
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

    def watch(self, path: str, *, seconds: int, label_selector: str | None = None) -> Iterator[bytes]:
        """The raw event lines of one watch on ``path``; the server ends it after ``seconds``.
        Raises whatever the client raises (a watch is retried by its caller, not here)."""
        query: dict[str, str | int | bool | None] = {
            "watch": True,
            "timeoutSeconds": seconds,
            "labelSelector": label_selector,
        }
        serialized = self.client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=_query_params(query),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.client.call_api(*serialized, _request_timeout=seconds + 10)
        try:
            yield from response.response.stream(amt=None, decode_content=True)
        finally:
            response.response.release_conn()

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


def open_api(connection: kubeconfigs.Connection) -> Api:
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
    return Api(api_client, connection, kubeconfigs.default_namespace(connection))
