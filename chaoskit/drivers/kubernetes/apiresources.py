"""Any kind of object, found through discovery: the ``kubernetes.resource`` probe."""

from __future__ import annotations

from urllib.parse import quote

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import clusters
from chaoskit.errors import DriverError
from chaoskit.kube import apis


class ResourceArgs(clusters.ClusterArgs):
    api_version: str = "v1"
    """``v1``, ``apps/v1``, ``networking.k8s.io/v1``, a CRD's ``group/version``."""
    kind: str
    """``Pod``, ``Deployment``, ``ConfigMap``..."""
    name: str | None = None
    """One object; without it, the list of objects (``label_selector`` narrows it)."""
    namespace: str | None = None
    label_selector: str | None = None
    allow_protected: bool = True
    """Reading is harmless; kept for symmetry with the faults."""


def resource_path(api: apis.Api, api_version: str, kind: str) -> tuple[str, bool]:
    """The collection path of ``kind`` in ``api_version`` and whether it is namespaced (discovery)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    listing = api.get(base, what=f"discovering the resources of {api_version}")
    for resource in listing.get("resources") or []:
        if resource.get("kind") == kind and "/" not in str(resource.get("name")):
            return f"{base}/{resource['name']}", bool(resource.get("namespaced"))
    raise DriverError(
        f"the API server has no kind {kind!r} in {api_version}",
        hint="check kind: and api_version: (kubectl api-resources lists them)",
    )


class Resource(contract.Probe[ResourceArgs], args=ResourceArgs):
    name = "kubernetes.resource"
    summary = "Any object (or list of objects) as JSON, for `expect` with a path like status.phase."

    def run(self, args: ResourceArgs, ctx: contract.RunContext) -> contract.JsonValue:
        api = clusters.connect(args, ctx)
        collection, namespaced = resource_path(api, args.api_version, args.kind)
        if namespaced:
            namespace = args.namespace or api.default_namespace
            prefix, rest = collection.rsplit("/", 1)
            collection = f"{prefix}/namespaces/{quote(namespace)}/{rest}"
        if args.name:
            obj: contract.JsonValue = api.get(
                f"{collection}/{quote(args.name)}", what=f"reading {args.kind} {args.name}"
            )
            return obj
        items: list[contract.JsonValue] = list(
            api.list(collection, what=f"listing {args.kind}", labelSelector=args.label_selector)
        )
        return {"items": items, "count": len(items)}


_GROUPS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def _group_of(kind: str) -> str:
    return _GROUPS.get(kind, "v1")
