"""Which local processes an activity means: by pid, pidfile, or a regex on the name or command line;
and the ``process.running`` probe, which reports what matches.

chaoskit's own process and its parents never match, so an experiment can't stop the runner that
would have to revert it.
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.process import processes
from chaoskit.errors import TargetError
from chaoskit.patterns import Regex


class Selector(contract.Args):
    """Give ``pid``, ``pidfile``, or ``name`` and/or ``cmdline``."""

    pid: int | None = Field(default=None, ge=1)
    """This process id."""
    pidfile: str | None = None
    """The process whose id is written in this file."""
    name: Regex | None = None
    """A regular expression searched in the process name (the kernel's ``comm``, or the base name
    of the program); anchor it (``^nginx$``) for an exact match."""
    cmdline: Regex | None = None
    """A regular expression searched in the full command line (arguments joined by spaces)."""

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        given = [k for k in ("pid", "pidfile", "name", "cmdline") if getattr(self, k) is not None]
        if not given:
            raise ValueError("say which processes: give pid, pidfile, name or cmdline")
        exact = [k for k in given if k in {"pid", "pidfile"}]
        if exact and len(given) > 1:
            raise ValueError(f"{exact[0]} names one process; don't combine it with {', '.join(given[1:])}")
        return self

    def describe(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.pidfile is not None:
            return f"pidfile {self.pidfile}"
        parts = [f"name ~ /{self.name}/"] if self.name is not None else []
        parts += [f"cmdline ~ /{self.cmdline}/"] if self.cmdline is not None else []
        return " and ".join(parts)


def matching(selector: Selector, *, strict: bool) -> list[processes.Info]:
    """The live processes ``selector`` means, chaoskit and its parents left out.

    With ``strict`` (faults), a pid or pidfile that names no live process, or names chaoskit
    itself, is a ``TargetError``; without it (probes), it simply matches nothing.
    """
    protected = processes.protected()
    if selector.pid is not None or selector.pidfile is not None:
        pid = selector.pid
        if pid is None:
            assert selector.pidfile is not None
            pid = processes.read_pidfile(selector.pidfile)
            if pid is None:
                if strict:
                    raise TargetError(
                        f"pidfile {selector.pidfile} is missing or holds no pid",
                        hint="check the path, and that the process has started and written it",
                    )
                return []
        info = processes.read(pid)
        if info is None or info.state in {"Z", "X"}:
            if strict:
                raise TargetError(f"no running process has pid {pid} ({selector.describe()})")
            return []
        if strict and pid in protected:
            raise TargetError(
                f"pid {pid} is chaoskit itself or one of its parents; refusing to target it",
                hint="point the fault at the system under test, not at the process running chaoskit",
            )
        return [info]
    name = re.compile(selector.name) if selector.name is not None else None
    cmdline = re.compile(selector.cmdline) if selector.cmdline is not None else None
    found = []
    for info in processes.all_live():
        if info.pid in protected or not info.cmdline:  # kernel threads have no command line
            continue
        if name is not None and not (name.search(info.name) or name.search(info.argv0)):
            continue
        if cmdline is not None and not cmdline.search(info.cmdline):
            continue
        found.append(info)
    return sorted(found, key=lambda p: p.pid)


def target(info: processes.Info) -> contract.Target:
    cmdline = info.cmdline if len(info.cmdline) <= 120 else info.cmdline[:117] + "..."
    return contract.Target(
        kind="process",
        id=str(info.pid),
        name=info.name,
        detail={"cmdline": cmdline, "starttime": str(info.starttime), "state": info.state},
    )


class Running(contract.Probe[Selector], args=Selector):
    name = "process.running"
    summary = "Whether matching processes run: {running, count, pids}."

    def run(self, args: Selector, ctx: contract.RunContext) -> contract.JsonValue:
        pids: list[contract.JsonValue] = [p.pid for p in matching(args, strict=False)]
        return {"running": bool(pids), "count": len(pids), "pids": pids}
