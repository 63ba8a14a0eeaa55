"""From what a run asks for (a pod, a container id or a host pid) to the host pid the agent enters:
the container's main process, found in ``/proc`` by the container id in its cgroup. On a dockershim
node each container of a pod is a Docker container, named in the pod's status as ``docker://<id>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoskit.errors import TargetError

PROC = Path("/proc")
_CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")
PodReader = Callable[[str, str], Mapping[str, Any]]
"""Reads a pod (namespace, name) as the API server returns it."""


@dataclass(frozen=True)
class Located:
    pid: int
    starttime: int
    """Field 22 of ``/proc/PID/stat``: with the pid, names the process for good."""
    what: str
    """How a person would name the target (``pod ns/name container c``, ``container 1a2b``)."""


def starttime(pid: int) -> int | None:
    """The process's start time, or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _parent(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def container_pid(container_id: str) -> int | None:
    """The main process of the container whose id (or a 12+ digit prefix of it) is in its cgroup."""
    members = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        if container_id in cgroup:
            members.add(int(entry.name))
    # The main process is the member whose parent (the runtime's shim) is outside the container.
    mains = sorted(pid for pid in members if _parent(pid) not in members)
    return mains[0] if mains else None


def pod_container_id(pod: Mapping[str, Any], container: str | None) -> tuple[str, str]:
    """(the container's name, its id) of a running container of ``pod``: ``container``, or the first."""
    statuses = list((pod.get("status") or {}).get("containerStatuses") or [])
    name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    for status in statuses:
        if container is not None and status.get("name") != container:
            continue
        runtime, _, found = str(status.get("containerID") or "").partition("://")
        if not found or "running" not in (status.get("state") or {}):
            raise TargetError(f"agent: container {status.get('name')} of pod {name} is not running")
        if runtime != "docker":
            raise TargetError(
                f"agent: pod {name} is on the {runtime} runtime; this agent finds containers of Docker "
                "(dockershim) only"
            )
        return str(status.get("name")), found
    raise TargetError(
        f"agent: pod {name} has no container {container!r}"
        if container
        else f"agent: pod {name} has no containers"
    )


def locate(
    target: Mapping[str, Any],
    *,
    read_pod: PodReader | None,
    namespaces: Collection[str],
    host_targets: bool,
) -> Located:
    """The host pid of ``target``: ``{"pod": {"namespace", "name", "container"?}}``, or - only when the
    agent allows host targets - ``{"container_id": ...}`` or ``{"pid": ...}``."""
    if "pod" in target:
        pod_ref = target["pod"]
        namespace, name = str(pod_ref.get("namespace") or ""), str(pod_ref.get("name") or "")
        if namespaces and namespace not in namespaces:
            raise TargetError(
                f"agent: namespace {namespace!r} is not one this agent may touch",
                hint=f"it may touch: {', '.join(sorted(namespaces))} (its --namespace options)",
            )
        if read_pod is None:
            raise TargetError(
                "agent: this agent has no Kubernetes access to find pods (run it in the cluster)"
            )
        container, container_id = pod_container_id(read_pod(namespace, name), pod_ref.get("container"))
        what = f"pod {namespace}/{name} container {container}"
    elif not host_targets:
        raise TargetError(
            "agent: only pods may be targeted here",
            hint="start the agent with --allow-host-targets to accept container ids and pids",
        )
    elif "container_id" in target:
        container_id = str(target["container_id"])
        what = f"container {container_id[:12]}"
    elif "pid" in target:
        pid = int(target["pid"])
        started = starttime(pid) if pid > 0 and pid != os.getpid() else None
        if started is None:
            raise TargetError(f"agent: no process {pid} on this host")
        return Located(pid, started, f"process {pid}")
    else:
        raise TargetError("agent: say which target: pod, container_id or pid")
    if _CONTAINER_ID.fullmatch(container_id) is None:
        raise TargetError(f"agent: {container_id!r} is not a container id")
    main = container_pid(container_id)
    started = starttime(main) if main is not None else None
    if main is None or started is None:
        raise TargetError(f"agent: {what} has no process on this node", hint="is it running, on this node?")
    return Located(main, started, what)
