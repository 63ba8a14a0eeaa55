"""Probes on containers: running, healthy, restart counts, and a command's exit code and output."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chaoskit.drivers import contract
from chaoskit.drivers.docker import connecting, targets
from chaoskit.errors import TargetError


def _state(container: Any) -> dict[str, Any]:
    return dict(container.attrs.get("State") or {})


class Running(contract.Probe[targets.Match]):
    name = "docker.container.running"
    summary = (
        "Whether the matching containers run: "
        "{running: all of them, count, total, containers: {name: status}}."
    )
    args = targets.Match

    def run(self, args: targets.Match, ctx: contract.RunContext) -> contract.JSONValue:
        found = targets.find(args, ctx, include_stopped=True)
        statuses: dict[str, contract.JSONValue] = {c.name: str(c.status) for c in found}
        count = sum(1 for c in found if c.status == "running")
        return {
            "running": bool(found) and count == len(found),
            "count": count,
            "total": len(found),
            "containers": statuses,
        }


class Healthy(contract.Probe[targets.Match]):
    name = "docker.container.healthy"
    summary = (
        "Health-check status of the matching containers: {healthy: all healthy, containers: {name: status}}."
    )
    args = targets.Match

    def run(self, args: targets.Match, ctx: contract.RunContext) -> contract.JSONValue:
        found = targets.find(args, ctx, include_stopped=True)
        statuses: dict[str, contract.JSONValue] = {
            c.name: str((_state(c).get("Health") or {}).get("Status") or "none") for c in found
        }
        healthy = bool(found) and all(s == "healthy" for s in statuses.values())
        return {"healthy": healthy, "containers": statuses}


class Restarts(contract.Probe[targets.Match]):
    name = "docker.container.restarts"
    summary = (
        "How often the engine restarted the matching containers: {restarts: total, containers: {name: n}}."
    )
    args = targets.Match

    def run(self, args: targets.Match, ctx: contract.RunContext) -> contract.JSONValue:
        found = targets.find(args, ctx, include_stopped=True)
        counts: dict[str, contract.JSONValue] = {c.name: int(c.attrs.get("RestartCount") or 0) for c in found}
        return {"restarts": sum(int(n) for n in counts.values() if isinstance(n, int)), "containers": counts}


class ExecArgs(targets.Match):
    command: list[str] | str
    """The command, as an argv list; a string runs through ``sh -c`` inside the container."""
    user: str | None = None
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class Exec(contract.Probe[ExecArgs]):
    name = "docker.container.exec"
    summary = "Run a command in one running container: {exit_code, output}."
    args = ExecArgs

    def run(self, args: ExecArgs, ctx: contract.RunContext) -> contract.JSONValue:
        found = targets.find(args, ctx, include_stopped=False)
        if len(found) != 1:
            raise TargetError(
                f"docker.container.exec needs exactly one running container, {len(found)} matched "
                f"({args.describe()})",
                hint="narrow the selector, e.g. name: <container>",
            )
        container = found[0]
        argv = ["sh", "-c", args.command] if isinstance(args.command, str) else args.command
        try:
            result = container.exec_run(
                argv, user=args.user or "", workdir=args.workdir, environment=args.env or None
            )
        except Exception as e:
            connecting.fail(f"running {argv[0]} in", f"container {container.name}", e)
        output = (result.output or b"").decode("utf-8", "replace")
        return {"exit_code": int(result.exit_code), "output": output}
