"""A simulated kubelet (like kwok) for a control plane that has none: keeps a few fake Nodes Ready
(with zone labels and lease heartbeats), binds Pending pods to them through the binding
subresource (it is the scheduler too), marks bound pods Running and Ready (leaving pods a test
marked Succeeded or Failed as they are), and finalises pods
that have a deletionTimestamp. Runs in a thread; ``stop()`` ends it within one tick."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

SIM_LABEL = "chaoskit.io/simulated"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedKubelet:
    def __init__(self, api_client: Any, zones: dict[str, str], tick: float = 0.3) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.zones = zones  # node name -> zone
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-kubelet", daemon=True)
        self._next = itertools.cycle(sorted(zones))
        self._heartbeat = 0.0
        self.errors: list[str] = []

    def start(self) -> SimulatedKubelet:
        for name in self.zones:
            if self._create(name) is None:
                # Left by an earlier session that was killed: start it schedulable again.
                self._call(self.core.patch_node, name, {"spec": {"unschedulable": False}})
        self._beat()
        self._thread.start()
        return self

    def _create(self, name: str) -> Any:
        zone = self.zones[name]
        labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone, SIM_LABEL: "true"}
        return self._call(
            self.core.create_node, {"metadata": {"name": name, "labels": labels}, "spec": {}}, ok=(409,)
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _call(self, method: Any, *args: Any, ok: tuple[int, ...] = (404, 409), **kwargs: Any) -> Any:
        from kubernetes.client import ApiException

        try:
            response = method(*args, _preload_content=False, **kwargs)
            return json.loads(response.data or b"{}")
        except ApiException as e:
            if e.status not in ok:
                self.errors.append(f"{method.__name__}: {e.status} {e.body}"[:300])
            return None

    def _beat(self) -> None:
        """Ready condition and lease renewal, so the node lifecycle controller keeps the nodes Ready."""
        now = _now()
        for i, name in enumerate(sorted(self.zones)):
            ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated"}
            status = {
                "conditions": [{**ready, "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "addresses": [{"type": "InternalIP", "address": f"10.99.0.{i + 1}"}],
            }
            if self._call(self.core.patch_node_status, name, {"status": status}) is None:
                # Another test session on the same cluster deletes the simulated nodes when it
                # ends (they share the names): put them back, or this session's pods stay Pending.
                self._create(name)
                self._call(self.core.patch_node_status, name, {"status": status})
            renewed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renewed}
            lease = {"metadata": {"name": name}, "spec": spec}
            if self._call(self.coordination.patch_namespaced_lease, name, "kube-node-lease", lease) is None:
                self._call(self.coordination.create_namespaced_lease, "kube-node-lease", lease)
        self._heartbeat = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self._sync()
            except Exception as e:  # the API server restarting, a 500: the next tick retries
                self.errors.append(f"sync: {type(e).__name__}: {e}"[:300])

    def _sync(self) -> None:
        if time.monotonic() - self._heartbeat > 5:
            self._beat()
        nodes = self._call(self.core.list_node, label_selector=SIM_LABEL) or {"items": []}
        schedulable = [n["metadata"]["name"] for n in nodes["items"] if not n["spec"].get("unschedulable")]
        pods = self._call(self.core.list_pod_for_all_namespaces) or {"items": []}
        for pod in pods["items"]:
            meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
            ns, name, node = meta["namespace"], meta["name"], spec.get("nodeName")
            if meta.get("deletionTimestamp"):
                if not node or node in self.zones:
                    self._call(self.core.delete_namespaced_pod, name, ns, grace_period_seconds=0)
            elif (
                not node
                and schedulable
                and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            ):
                target = next(n for n in self._next if n in schedulable)
                binding = {"metadata": {"name": name}, "target": {"kind": "Node", "name": target}}
                self._call(self.core.create_namespaced_binding, ns, binding)
            elif node in self.zones and status.get("phase") not in ("Running", "Succeeded", "Failed"):
                now = _now()
                conditions = [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ]
                containers = [
                    {"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
                     "started": True, "state": {"running": {"startedAt": now}}}
                    for c in spec["containers"]
                ]  # fmt: skip
                address = f"10.99.0.{sorted(self.zones).index(node) + 1}"
                patch = {
                    "status": {"phase": "Running", "conditions": conditions, "containerStatuses": containers,
                               "hostIP": address, "podIP": f"10.244.{hash(name) % 250}.{hash(ns) % 250}",
                               "startTime": now}
                }  # fmt: skip
                self._call(self.core.patch_namespaced_pod_status, name, ns, patch)
