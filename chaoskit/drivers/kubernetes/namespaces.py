"""Which namespaces a kubernetes activity may act in: the ``namespace``/``namespaces`` keys,
and the protected ones (kube-system, ...) refused unless a step allows them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Self

from pydantic import model_validator

from chaoskit.drivers.kubernetes import clusters
from chaoskit.errors import TargetError
from chaoskit.kube import apis

PROTECTED_DEFAULT = ("kube-system", "kube-public", "kube-node-lease")


def protected_namespaces() -> frozenset[str]:
    """kube-system, kube-public, kube-node-lease and ``$CHAOSKIT_PROTECTED_NAMESPACES`` (comma-separated)."""
    extra = os.environ.get("CHAOSKIT_PROTECTED_NAMESPACES", "")
    return frozenset([*PROTECTED_DEFAULT, *(n.strip() for n in extra.split(",") if n.strip())])


def refuse_protected(namespaces: Iterable[str], allow_protected: bool) -> None:
    if allow_protected:
        return
    hit = sorted(set(namespaces) & protected_namespaces())
    if hit:
        raise TargetError(
            f"namespace {', '.join(hit)} is protected",
            hint="add allow_protected: true to the step's with: if you really mean it",
        )


class NamespacedArgs(clusters.ClusterArgs):
    """Which namespaces; protected ones only with ``allow_protected``."""

    namespace: str | None = None
    """One namespace; default the kubeconfig context's namespace."""
    namespaces: list[str] | None = None
    """Several namespaces instead of one."""
    allow_protected: bool = False
    """Allow kube-system, kube-public, kube-node-lease and $CHAOSKIT_PROTECTED_NAMESPACES."""

    @model_validator(mode="after")
    def _namespaces_allowed(self) -> Self:
        if self.namespace is not None and self.namespaces is not None:
            raise ValueError("give namespace or namespaces, not both")
        given = [self.namespace] if self.namespace else list(self.namespaces or [])
        hit = sorted(set(given) & protected_namespaces())
        if hit and not self.allow_protected:
            raise ValueError(
                f"namespace {', '.join(hit)} is protected; add allow_protected: true to target it"
            )
        return self

    def resolved_namespaces(self, api: apis.Api) -> list[str]:
        names = self.namespaces or [self.namespace or api.default_namespace]
        refuse_protected(names, self.allow_protected)
        return names


class ReadArgs(NamespacedArgs):
    allow_protected: bool = True
    """Reading changes nothing, so probes may look into kube-system and the like."""
