"""Choosing what a kubernetes activity acts on: namespaces (protected ones refused), pods, nodes
and workloads by name, label or field selector — one list call per namespace, never a get per
candidate — and turning them into ``Target`` values."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Self
from urllib.parse import quote

from pydantic import model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters
from chaoskit.errors import DriverError, TargetError
from chaoskit.kube import apis

JSON = apis.JSON
PROTECTED_DEFAULT = ("kube-system", "kube-public", "kube-node-lease")
ZONE_LABEL = "topology.kubernetes.io/zone"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


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


class PodArgs(NamespacedArgs):
    """Pods by label selector, field selector or names (at least one: never "every pod" by default)."""

    label_selector: str | None = None
    """E.g. ``app=web,tier!=db``."""
    field_selector: str | None = None
    """E.g. ``status.phase=Running`` or ``spec.nodeName=node-1``."""
    names: list[str] | None = None
    """Pod names (within the namespaces)."""

    @model_validator(mode="after")
    def _something_selects(self) -> Self:
        if not (self.label_selector or self.field_selector or self.names):
            raise ValueError("give label_selector, field_selector or names to say which pods")
        return self


class SelectedPodArgs(PodArgs, targeting.Selection):
    """Pods, then how many of them (``count``/``percent``/``all``) and the blast-radius caps."""


def is_terminating(obj: JSON) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_ready(pod: JSON) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def owner_kinds(obj: JSON) -> set[str]:
    return {str(o.get("kind")) for o in (obj.get("metadata") or {}).get("ownerReferences") or []}


def list_pods(
    api: apis.Api,
    namespaces: Sequence[str] | None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> list[JSON]:
    """Pods in ``namespaces`` (every namespace when None): one list call per namespace."""
    query = {"labelSelector": label_selector, "fieldSelector": field_selector}
    if namespaces is None:
        return api.list("/api/v1/pods", what="listing pods in all namespaces", **query)
    pods: list[JSON] = []
    for namespace in namespaces:
        pods.extend(
            api.list(
                f"/api/v1/namespaces/{quote(namespace)}/pods",
                what=f"listing pods in namespace {namespace}",
                **query,
            )
        )
    return pods


def pod_target(pod: JSON) -> contract.Target:
    meta = pod.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    return contract.Target(
        kind="pod",
        id=f"{namespace}/{name}",
        name=name,
        detail={
            "namespace": namespace,
            "node": str((pod.get("spec") or {}).get("nodeName") or "-"),
            "uid": str(meta.get("uid") or ""),
        },
    )


def candidate_pods(args: PodArgs, api: apis.Api) -> list[JSON]:
    """The live (not terminating) pods ``args`` select."""
    pods = list_pods(
        api,
        args.resolved_namespaces(api),
        label_selector=args.label_selector,
        field_selector=args.field_selector,
    )
    wanted = set(args.names or [])
    return [
        p
        for p in pods
        if not is_terminating(p) and (not wanted or (p.get("metadata") or {}).get("name") in wanted)
    ]


def node_target(node: JSON) -> contract.Target:
    meta = node.get("metadata") or {}
    name = str(meta.get("name"))
    labels = meta.get("labels") or {}
    return contract.Target(
        kind="node",
        id=name,
        name=name,
        detail={
            "zone": str(labels.get(ZONE_LABEL, "-")),
            "unschedulable": str(bool((node.get("spec") or {}).get("unschedulable"))).lower(),
        },
    )


def list_nodes(api: apis.Api, *, label_selector: str | None = None) -> list[JSON]:
    return api.list("/api/v1/nodes", what="listing nodes", labelSelector=label_selector)


_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*"
)


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def label_selector_object(selector: str | None) -> JSON:
    """A label selector string (``app=web,tier in (a,b),!canary``) as a LabelSelector object, the
    form NetworkPolicies need; an empty selector selects every pod of the namespace."""
    if not selector or not selector.strip():
        return {}
    match_labels: dict[str, str] = {}
    expressions: list[JSON] = []
    for part in _split_requirements(selector):
        m = _REQUIREMENT.fullmatch(part)
        if not m or (m.group("neg") and (m.group("op") or m.group("setop"))):
            raise DriverError(
                f"label selector {selector!r}: can't read {part.strip()!r}",
                hint="write requirements like app=web, tier!=db, env in (a,b), !canary",
            )
        key = m.group("key")
        if m.group("neg"):
            expressions.append({"key": key, "operator": "DoesNotExist"})
        elif m.group("op") in ("=", "=="):
            match_labels[key] = m.group("value")
        elif m.group("op") == "!=":
            expressions.append({"key": key, "operator": "NotIn", "values": [m.group("value")]})
        elif m.group("setop"):
            values = [v.strip() for v in m.group("values").split(",") if v.strip()]
            operator = "In" if m.group("setop") == "in" else "NotIn"
            expressions.append({"key": key, "operator": operator, "values": values})
        else:
            expressions.append({"key": key, "operator": "Exists"})
    result: JSON = {}
    if match_labels:
        result["matchLabels"] = match_labels
    if expressions:
        result["matchExpressions"] = expressions
    return result
