"""The Kubernetes halt lever: a ConfigMap (``kubernetes://<namespace>/<name>``) whose data says
``halted: "true"`` with ``reason``, ``by`` and ``at``. The CLI pulls it (``chaoskit halt
--kubernetes``), the operator's Jobs and any run with ``CHAOSKIT_HALT`` naming it watch it, so one
command stops a whole cluster's experiments."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from urllib.parse import quote

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.kube import apis, kubeconfigs

SCHEME = "kubernetes"
NAMESPACE = "chaoskit"
NAME = "chaoskit-halt"
DEFAULT_URI = f"{SCHEME}://{NAMESPACE}/{NAME}"
LABELS = {"app.kubernetes.io/managed-by": "chaoskit", "app.kubernetes.io/component": "halt-lever"}
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def uri(namespace: str = NAMESPACE, name: str = NAME) -> str:
    return f"{SCHEME}://{namespace}/{name}"


def parse(text: str) -> tuple[str, str]:
    """``(namespace, name)`` of ``kubernetes://<namespace>/<name>``; a ``UsageError`` otherwise."""
    rest = text.removeprefix(f"{SCHEME}://")
    namespace, _, name = rest.partition("/")
    if rest == text or not _NAMESPACE.fullmatch(namespace) or not _NAME.fullmatch(name):
        raise errors.UsageError(
            f"halt lever {text!r} is not kubernetes://<namespace>/<configmap name>",
            hint=f"e.g. {DEFAULT_URI} (lowercase names, as Kubernetes spells them)",
        )
    return namespace, name


class ConfigMapLever(contract.Lever):
    """A ConfigMap in the cluster of ``$KUBECONFIG`` (or in-cluster, for the operator's Jobs)."""

    def __init__(
        self, text: str, connection: kubeconfigs.Connection | None = None, api: apis.Api | None = None
    ) -> None:
        """``api``: an open one to use (the operator's; not closed here), else one is opened on
        ``connection`` (default: ``$KUBECONFIG``, then in-cluster) at the first read."""
        super().__init__(text)
        self.namespace, self.name = parse(text)
        self._connection = connection
        self._api: apis.Api | None = api
        self._owned = api is None
        self._lock = threading.Lock()

    def _path(self, name: str | None = None) -> str:
        base = f"/api/v1/namespaces/{quote(self.namespace)}/configmaps"
        return f"{base}/{quote(name)}" if name else base

    def api(self) -> apis.Api:
        with self._lock:
            if self._api is None:
                connection = self._connection or kubeconfigs.resolve()
                self._api = apis.open_api(connection)
            return self._api

    def read(self, timeout: float) -> Mapping[str, str] | None:
        api = self.api()
        try:
            found = api.request("GET", self._path(self.name), what=f"reading {self.uri}", timeout=timeout)
        except apis.ApiError as e:
            if e.status == 404:
                return None
            raise
        return {str(k): str(v) for k, v in (found.get("data") or {}).items()}

    def write(self, fields: Mapping[str, str], timeout: float) -> None:
        api = self.api()
        data = dict(fields)
        try:
            api.request(
                "PATCH",
                self._path(self.name),
                what=f"setting {self.uri}",
                body={"data": data},
                content_type="application/merge-patch+json",
                timeout=timeout,
            )
            return
        except apis.ApiError as e:
            if e.status != 404:
                raise
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": LABELS},
            "data": data,
        }
        try:
            api.request("POST", self._path(), what=f"creating {self.uri}", body=body, timeout=timeout)
        except apis.ApiError as e:
            if e.status != 404:
                raise
            # The namespace is missing: in an emergency, make it rather than fail the halt.
            api.request(
                "POST",
                "/api/v1/namespaces",
                what=f"creating namespace {self.namespace} for {self.uri}",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
                timeout=timeout,
            )
            api.request("POST", self._path(), what=f"creating {self.uri}", body=body, timeout=timeout)

    def close(self) -> None:
        if not self._owned:
            return
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.client.close()


def lever(text: str) -> contract.Lever:
    return ConfigMapLever(text)
