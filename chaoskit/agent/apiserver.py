"""The agent's view of its cluster: reading the pods it is asked to reach into, and TokenReviews of
the ServiceAccount tokens callers present. The kubernetes client is imported only here."""

from __future__ import annotations

from typing import Any

from chaoskit.errors import TargetError
from chaoskit.kube import apis, kubeconfigs


class Cluster:
    def __init__(self, kubeconfig: str | None, node: str | None) -> None:
        self.api = apis.open_api(kubeconfigs.resolve(kubeconfig))
        self.node = node
        """This agent's node: a pod elsewhere is refused (its containers are not here)."""

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        pod = self.api.get(
            f"/api/v1/namespaces/{namespace}/pods/{name}", what=f"reading pod {namespace}/{name}"
        )
        where = (pod.get("spec") or {}).get("nodeName")
        if self.node and where != self.node:
            raise TargetError(
                f"agent: pod {namespace}/{name} is on node {where}, not on {self.node}",
                hint="ask the agent on the pod's node",
            )
        return pod

    def review(self, token: str) -> dict[str, Any]:
        """The API server's verdict on ``token`` (a TokenReview's status)."""
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        answer = self.api.post(
            "/apis/authentication.k8s.io/v1/tokenreviews", review, what="reviewing a token"
        )
        return dict(answer.get("status") or {})
