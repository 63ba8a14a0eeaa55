"""Pods: choosing them (by label or field selector, or names; one list call per namespace), the
``kubernetes.pods.delete`` and ``kubernetes.pods.evict`` faults (through the eviction API, so
PodDisruptionBudgets are respected) and the ``kubernetes.pods.ready`` probe."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Self, TypeVar
from urllib.parse import quote

from pydantic import Field, model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, namespaces
from chaoskit.durations import Duration
from chaoskit.errors import DriverError
from chaoskit.kube import apis

JSON = apis.JSON
Target = contract.Target


def is_terminating(obj: JSON) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_ready(pod: JSON) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def owner_kinds(obj: JSON) -> set[str]:
    return {str(o.get("kind")) for o in (obj.get("metadata") or {}).get("ownerReferences") or []}


class PodArgs(namespaces.NamespacedArgs):
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


TOO_MANY_REQUESTS = 429
PDB_HINT = "a PodDisruptionBudget forbids it: relax the budget, add replicas, or raise timeout"


class EvictionRefused(DriverError):
    """The API server answered 429: evicting now would break a PodDisruptionBudget."""


def pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"


def evict(
    api: apis.Api,
    namespace: str,
    name: str,
    grace_period: int | None = None,
    *,
    dry_run: bool = False,
) -> bool:
    """Ask to evict one pod; False when it is already gone. Raises ``EvictionRefused`` on 429.
    With ``dry_run`` the API server only judges the eviction (PDBs included) and evicts nothing."""
    # policy/v1 Evictions exist from Kubernetes 1.22; older servers only take v1beta1.
    version = "v1" if "v1" in api.versions("policy") else "v1beta1"
    body: JSON = {
        "apiVersion": f"policy/{version}",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if grace_period is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
    try:
        api.request(
            "POST",
            f"{pod_path(namespace, name)}/eviction",
            what=f"evicting pod {namespace}/{name}" + (" (dry run)" if dry_run else ""),
            query={"dryRun": "All"} if dry_run else None,
            body=body,
        )
    except apis.ApiError as e:
        if e.status == 404:
            return False
        if e.status == 403 and "being terminated" in e.api_message:
            # No new object (an Eviction) can be made in a terminating namespace; like kubectl
            # draining.drain, delete the pod instead: its namespace is going away anyway.
            return delete_pod(api, namespace, name, grace_period)
        if e.status == TOO_MANY_REQUESTS:
            raise EvictionRefused(
                f"pod {namespace}/{name}: eviction refused (429 {e.reason or 'TooManyRequests'}): "
                f"{e.api_message}",
                hint=PDB_HINT,
            ) from e
        raise
    return True


def delete_pod(api: apis.Api, namespace: str, name: str, grace_period: int | None) -> bool:
    body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period is not None:
        body["gracePeriodSeconds"] = grace_period
    try:
        api.delete(pod_path(namespace, name), what=f"deleting pod {namespace}/{name}", body=body)
    except apis.ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


class PodsArgs(SelectedPodArgs):
    grace_period: int | None = Field(default=None, ge=0)
    """Seconds the pod gets to stop; default the pod's own terminationGracePeriodSeconds."""


class PodRevert(clusters.ClusterRevert):
    """Which pod was deleted or evicted. Nothing is undone (its controller replaces it); kept so the
    journal and ``recover`` say exactly which pod it was."""

    namespace: str
    """The pod's namespace."""
    name: str
    """The pod's name."""
    uid: str | None
    """The pod's uid (None when the API server did not give one): a newer pod that took the name
    (StatefulSets reuse names) is another pod."""


P = TypeVar("P", bound=PodsArgs)


class _PodFault(contract.Fault[P, PodRevert], revert=PodRevert):
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False  # nothing is restored: the pod's controller replaces it

    def lease(self, args: P, target: Target) -> None:
        # A deleted pod holds nothing that another fault could undo or stack on: it is gone, and
        # its replacement is a new pod with a new uid. Refusing a second delete of "the same" pod
        # would only get in the way of steps that delete pods again and again.
        return None

    def targets(self, args: P, ctx: contract.RunContext) -> Sequence[Target]:
        api = clusters.connect(args, ctx)
        candidates = [pod_target(p) for p in candidate_pods(args, api)]
        return targeting.choose(candidates, args, ctx.rng, what="pods")

    def prepare(self, args: P, target: Target, ctx: contract.RunContext) -> PodRevert:
        return PodRevert(
            connection=clusters.connection(args, ctx),
            namespace=target.detail["namespace"],
            name=target.name,
            uid=target.detail.get("uid") or None,
        )


class PodsDelete(_PodFault[PodsArgs], args=PodsArgs):
    name = "kubernetes.pods.delete"
    summary = "Delete pods chosen by label/field selector or name; their controllers replace them."

    def inject(
        self, args: PodsArgs, target: Target, revert: PodRevert, ctx: contract.RunContext
    ) -> PodRevert:
        api = clusters.connect(args, ctx)
        namespace, name = revert.namespace, revert.name
        body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if args.grace_period is not None:
            body["gracePeriodSeconds"] = args.grace_period
        if revert.uid is not None:
            # Never delete a newer pod that took the chosen one's name (StatefulSets reuse names).
            body["preconditions"] = {"uid": revert.uid}
        try:
            api.delete(pod_path(namespace, name), what=f"deleting pod {namespace}/{name}", body=body)
        except apis.ApiError as e:
            if e.status not in (404, 409):
                raise
            ctx.log(f"pod {namespace}/{name} was already gone")
        return revert


class EvictArgs(PodsArgs):
    timeout: Duration = 60.0
    """How long to keep retrying an eviction that a PodDisruptionBudget refuses because an earlier
    eviction of the step used up its budget (it allows more once the replacement is ready), as
    ``kubectl drain`` does; ``0s``: refuse at once."""


class PodsEvict(_PodFault[EvictArgs], args=EvictArgs):
    name = "kubernetes.pods.evict"
    summary = "Evict pods through the eviction API, so PodDisruptionBudgets are respected (429: refused)."

    def targets(self, args: EvictArgs, ctx: contract.RunContext) -> Sequence[Target]:
        chosen = super().targets(args, ctx)
        # Ask the API server to judge every chosen eviction first (dryRun=All evicts nothing), so
        # that each pod a PodDisruptionBudget protects is named - in the dry run too - before any
        # pod is evicted, instead of the run stopping at the first refusal with the rest unknown.
        api = clusters.connect(args, ctx)
        refused = []
        for target in chosen:
            try:
                evict(api, target.detail["namespace"], target.name, args.grace_period, dry_run=True)
            except EvictionRefused as e:
                refused.append(e.message)
        if refused:
            raise EvictionRefused(
                f"{len(refused)} of {len(chosen)} chosen pods can't be evicted now; nothing was evicted:\n  "
                + "\n  ".join(refused),
                hint=PDB_HINT,
            )
        return chosen

    def inject(
        self, args: EvictArgs, target: Target, revert: PodRevert, ctx: contract.RunContext
    ) -> PodRevert:
        api = clusters.connect(args, ctx)
        namespace = revert.namespace
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                if not evict(api, namespace, target.name, args.grace_period):
                    ctx.log(f"pod {target.id} was already gone")
                return revert
            except EvictionRefused as e:
                # Every eviction was judged allowed before the first; a refusal now means this
                # step's own evictions used up the budget until their replacements are ready.
                if time.monotonic() >= deadline or ctx.cancel.is_set():
                    raise EvictionRefused(
                        f"{e.message} (still refused after {args.timeout:g}s)", hint=PDB_HINT
                    ) from e
            ctx.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


class PodsReadyArgs(namespaces.ReadArgs):
    label_selector: str | None = None
    field_selector: str | None = None
    min_ready: int | None = Field(default=None, ge=0)
    """With ``wait``: poll until at least this many pods are Ready."""
    wait: Duration = 0.0
    """Poll until ``min_ready`` pods are Ready or this long has passed (0: answer at once)."""


class PodsReady(contract.Probe[PodsReadyArgs], args=PodsReadyArgs):
    name = "kubernetes.pods.ready"
    summary = "How many of the selected pods are Ready: {ready, total, ratio, not_ready, terminating}."

    def run(self, args: PodsReadyArgs, ctx: contract.RunContext) -> contract.JsonValue:
        api = clusters.connect(args, ctx)
        deadline = time.monotonic() + args.wait
        while True:
            counts = self.count(args, api)
            ready = counts["ready"]
            enough = args.min_ready is None or (isinstance(ready, int) and ready >= args.min_ready)
            if enough or time.monotonic() >= deadline or not ctx.sleep(0.5):
                return counts

    def count(self, args: PodsReadyArgs, api: apis.Api) -> dict[str, contract.JsonValue]:
        pods = list_pods(
            api,
            args.resolved_namespaces(api),
            label_selector=args.label_selector,
            field_selector=args.field_selector,
        )
        live = sorted((p for p in pods if not is_terminating(p)), key=lambda p: str(p["metadata"]["name"]))
        ready = [p for p in live if is_ready(p)]
        return {
            "ready": len(ready),
            "total": len(live),
            "ratio": len(ready) / len(live) if live else 0.0,
            "terminating": len(pods) - len(live),
            "not_ready": [str(p["metadata"]["name"]) for p in live if not is_ready(p)],
        }
