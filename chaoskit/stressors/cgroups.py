"""Where a process's cgroups are on this host (v1, v2 or both), so that a stressor can join them and
its CPU time and memory are counted against that process's container."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def _mounts(mountinfo: str) -> list[tuple[str, str, frozenset[str]]]:
    """(mount point, root inside the hierarchy, controllers; empty for cgroup2) of each cgroup mount."""
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in {"cgroup", "cgroup2"}:
            continue
        options = frozenset(tail[2].split(",")) if tail[0] == "cgroup" else frozenset()
        mounts.append((fields[4], fields[3], options))
    return mounts


def procs_files(pid: int, *, mountinfo: str | None = None, cgroup: str | None = None) -> list[str]:
    """The ``cgroup.procs`` files of ``pid``'s cgroups, one per mounted hierarchy (those that exist).

    ``mountinfo`` and ``cgroup`` default to this process's mount table and ``pid``'s
    ``/proc/PID/cgroup``; tests pass their own."""
    mountinfo = mountinfo if mountinfo is not None else (PROC / "self" / "mountinfo").read_text()
    cgroup = cgroup if cgroup is not None else (PROC / str(pid) / "cgroup").read_text()
    mounts = _mounts(mountinfo)
    found: list[str] = []
    for line in cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not number or not path:
            continue
        wanted = frozenset(c for c in controllers.split(",") if c)
        for point, root, options in mounts:
            # v2 ("0::/path") lives on the cgroup2 mount; a v1 hierarchy on the mount of its controllers.
            if (not wanted and not options) or (wanted and wanted <= options):
                relative = path[len(root) :] if root != "/" and path.startswith(root) else path
                procs = Path(point) / relative.lstrip("/") / "cgroup.procs"
                if procs.exists() and str(procs) not in found:
                    found.append(str(procs))
                break
    return found
