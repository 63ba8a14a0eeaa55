"""Which cluster to talk to: a kubeconfig and one of its contexts, or the pod's service account,
as a ``Connection`` that can be ledgered (a path and a context name, never a token)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool

from chaoskit.errors import ComponentMissing

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CONTEXT_ENV = "CHAOSKIT_KUBE_CONTEXT"
"""The environment variable naming the default context, when nothing more specific does."""
CONTEXT_SETTING = "kubernetes.context"
"""``RunContext.settings`` key: the context of kubernetes steps that name none (``chaoskit run
--context``)."""
KUBECONFIG_SETTING = "kubernetes.kubeconfig"
"""``RunContext.settings`` key: the kubeconfig of kubernetes steps that name none (the operator's
``--kubeconfig``, for its in-process sweep)."""


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


def resolve(
    kubeconfig: str | None = None, context: str | None = None, *, in_cluster: bool = False
) -> Connection:
    """The cluster these point at. Without ``kubeconfig``: ``$KUBECONFIG``, ``~/.kube/config``,
    then in-cluster; without ``context``: ``$CHAOSKIT_KUBE_CONTEXT``, then the current one."""
    if in_cluster:
        return Connection(kubeconfig=None, context=None, in_cluster=True)
    candidates = []
    if kubeconfig:
        candidates.append(kubeconfig)
    else:
        env = os.environ.get("KUBECONFIG", "")
        candidates.extend(p for p in env.split(os.pathsep) if p)
        candidates.append(str(Path.home() / ".kube" / "config"))
    context = context or os.environ.get(CONTEXT_ENV) or None
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return Connection(kubeconfig=str(path.resolve()), context=context, in_cluster=False)
    if kubeconfig:
        raise ComponentMissing(
            f"kubeconfig {kubeconfig!r} does not exist",
            hint="fix the kubeconfig: path in the step's with:, or drop it to use $KUBECONFIG",
        )
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return Connection(kubeconfig=None, context=None, in_cluster=True)
    raise ComponentMissing(
        "no Kubernetes cluster is configured",
        hint="set KUBECONFIG, give kubeconfig: in the step's with:, or run chaoskit inside the cluster",
    )


def default_namespace(connection: Connection) -> str:
    """The namespace of the connection's context (in-cluster: the pod's); ``default`` otherwise."""
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
