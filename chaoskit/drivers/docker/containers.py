"""Containers (``docker.container.*``): faults on their lives (kill, stop, pause, restart, remove),
probes (running, healthy, restarts, exec) and the ``run`` action that starts the system under test
in setup; the engine removes it again after teardown (or ``chaoskit recover`` does, after a crash)."""

from __future__ import annotations

import contextlib
import os
import signal as signals
import socket
import time
import urllib.request
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import Field, model_validator

from chaoskit import durations
from chaoskit.drivers import contract
from chaoskit.drivers.docker import engines, matching, namespacing
from chaoskit.errors import DriverError, TargetError


def _container(target: contract.Target, ctx: contract.RunContext) -> Any:
    container = matching.get(target.id, ctx)
    if container is None:
        engines.fail("finding", f"container {target.name}", LookupError("it no longer exists"))
    return container


STATE_LEASE = "docker.container.state"
"""The lease every fault on a container's life holds. Kill, stop, pause, restart and remove all
change whether the container's processes run, and one silently undoes another: a restart, or a
kill its restart policy answers, resumes a paused container, so the pause's revert finds nothing
to do and the experiment measured something else than it says; a stop of a paused container
leaves the pause's revert nothing to unpause. So one of them at a time per container, unless a
step says ``allow_overlap: true``.

Only stop and pause hold it until reverted (kill, restart and remove are not reversible: the
engine releases their lease once injected). When a stop and a pause overlap, the last one out
restores the first one's state, which both read the same way - running - so all five share one
revert model, and ``Stop.revert`` restores running from paused as well as from stopped."""


def _state_lease(target: contract.Target) -> str:
    return f"{STATE_LEASE}@{target.kind}:{target.id}"


ContainerRevert = matching.ContainerRevert

S = TypeVar("S", bound=matching.Selector)


class _ContainerFault(contract.Fault[S, ContainerRevert], revert=ContainerRevert):
    """A fault on containers chosen by a selector, holding the state lease; revert finds them again
    by id."""

    def lease(self, args: S, target: contract.Target) -> str:
        return _state_lease(target)

    def targets(self, args: S, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(self, args: S, target: contract.Target, ctx: contract.RunContext) -> ContainerRevert:
        return ContainerRevert(container_id=target.id, name=target.name)


class KillArgs(matching.Selector):
    signal: str | int = "SIGKILL"
    """The signal to send, by name (``SIGTERM``) or number."""
    via: Literal["auto", "process", "api"] = "auto"
    """``process``: signal the main process from the host like a crash, so the restart policy applies
    (root on the Docker host). ``api``: the Engine API's kill, a manual stop that restart policies
    ignore. ``auto``: process where possible."""


def _signal_number(signal: str | int) -> int:
    if isinstance(signal, int):
        return signal
    name = signal.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signals.Signals[name])
    except KeyError:
        raise DriverError(
            f"docker.container.kill: unknown signal {signal!r}", hint="e.g. SIGKILL, SIGTERM, 9"
        ) from None


class Kill(_ContainerFault[KillArgs], args=KillArgs):
    name = "docker.container.kill"
    summary = "Crash containers with a signal (default SIGKILL); their restart policy brings them back."
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False  # nothing is restored: the container's restart policy brings it back

    def prepare(self, args: KillArgs, target: contract.Target, ctx: contract.RunContext) -> ContainerRevert:
        _signal_number(args.signal)  # an unknown signal name fails before anything is written
        return super().prepare(args, target, ctx)

    def inject(
        self, args: KillArgs, target: contract.Target, revert: ContainerRevert, ctx: contract.RunContext
    ) -> ContainerRevert:
        container = _container(target, ctx)
        number = _signal_number(args.signal)
        pid = namespacing.local_pid(container) if args.via != "api" else None
        if args.via == "process" and pid is None:
            raise DriverError(
                f"docker.container.kill: can't signal the main process of container {target.name} from here",
                hint="run chaoskit as root on the Docker host, or use via: api",
            )
        if pid is not None:
            # The engine sees the main process die as a crash, so the restart policy applies.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)
            return revert
        if args.via == "auto":
            ctx.log(f"docker: killing {target.name} through the Engine API; its restart policy won't apply")
        try:
            container.kill(signal=number)
        except Exception as e:
            engines.fail(f"sending signal {number} to", f"container {target.name}", e)
        return revert


class StopArgs(matching.Selector):
    grace: int = Field(default=10, ge=0)
    """Seconds between SIGTERM and SIGKILL."""


class Stop(_ContainerFault[StopArgs], args=StopArgs):
    name = "docker.container.stop"
    summary = "Stop containers; reverted by starting them unless they came back by themselves."

    def inject(
        self,
        args: StopArgs,
        target: contract.Target,
        revert: ContainerRevert,
        ctx: contract.RunContext,
    ) -> ContainerRevert:
        container = _container(target, ctx)
        try:
            container.stop(timeout=args.grace)
        except Exception as e:
            engines.fail("stopping", f"container {target.name}", e)
        return revert

    def revert(self, revert: ContainerRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = matching.get(revert.container_id, ctx)
        if container is None or container.status in {"running", "restarting"}:
            return contract.RevertOutcome.ALREADY_CLEAN
        if container.status == "paused":
            # Handed a pause's state (a stop and a pause overlapped, this one ended last): running
            # is what both found, so unpause too.
            return _unpause(container, revert)
        try:
            container.start()
        except Exception as e:
            engines.fail("starting", f"container {revert.name}", e)
        return contract.RevertOutcome.REVERTED


class PauseArgs(matching.Selector):
    """Which containers to pause."""


class Pause(_ContainerFault[PauseArgs], args=PauseArgs):
    name = "docker.container.pause"
    summary = "Freeze every process of containers (cgroup freezer); reverted by unpausing."

    def inject(
        self,
        args: PauseArgs,
        target: contract.Target,
        revert: ContainerRevert,
        ctx: contract.RunContext,
    ) -> ContainerRevert:
        container = _container(target, ctx)
        try:
            container.pause()
        except Exception as e:
            engines.fail("pausing", f"container {target.name}", e)
        return revert

    def revert(self, revert: ContainerRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = matching.get(revert.container_id, ctx)
        if container is None or container.status != "paused":
            return contract.RevertOutcome.ALREADY_CLEAN
        return _unpause(container, revert)


def _unpause(container: Any, revert: ContainerRevert) -> contract.RevertOutcome:
    try:
        container.unpause()
    except Exception as e:
        engines.fail("unpausing", f"container {revert.name}", e)
    return contract.RevertOutcome.REVERTED


class Restart(_ContainerFault[StopArgs], args=StopArgs):
    name = "docker.container.restart"
    summary = "Restart containers (stop with a grace period, then start)."
    reversibility = contract.Reversibility.SELF_HEALING
    captures_state = False  # nothing is restored: the restart is over when inject returns

    def inject(
        self,
        args: StopArgs,
        target: contract.Target,
        revert: ContainerRevert,
        ctx: contract.RunContext,
    ) -> ContainerRevert:
        container = _container(target, ctx)
        try:
            container.restart(timeout=args.grace)
        except Exception as e:
            engines.fail("restarting", f"container {target.name}", e)
        return revert


class RemoveArgs(matching.Selector):
    volumes: bool = False
    """Also remove the container's anonymous volumes."""


class Remove(_ContainerFault[RemoveArgs], args=RemoveArgs):
    # Nothing can bring it back; the ledger's target (with its image) says what was lost.
    name = "docker.container.remove"
    summary = "Force-remove containers. Irreversible: the step must say `irreversible: ok`."
    reversibility: ClassVar[contract.Reversibility] = contract.Reversibility.IRREVERSIBLE
    captures_state = False  # nothing can be restored

    def targets(self, args: RemoveArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx, include_stopped=True)

    def inject(
        self, args: RemoveArgs, target: contract.Target, revert: ContainerRevert, ctx: contract.RunContext
    ) -> ContainerRevert:
        container = _container(target, ctx)
        try:
            container.remove(force=True, v=args.volumes)
        except Exception as e:
            engines.fail("removing", f"container {target.name}", e)
        return revert


# ---- probes ----------------------------------------------------------------------------------


def _state(container: Any) -> dict[str, Any]:
    return dict(container.attrs.get("State") or {})


class Running(contract.Probe[matching.Match], args=matching.Match):
    name = "docker.container.running"
    summary = (
        "Whether the matching containers run: "
        "{running: all of them, count, total, containers: {name: status}}."
    )

    def run(self, args: matching.Match, ctx: contract.RunContext) -> contract.JsonValue:
        found = matching.find(args, ctx, include_stopped=True)
        statuses: dict[str, contract.JsonValue] = {c.name: str(c.status) for c in found}
        count = sum(1 for c in found if c.status == "running")
        return {
            "running": bool(found) and count == len(found),
            "count": count,
            "total": len(found),
            "containers": statuses,
        }


class Healthy(contract.Probe[matching.Match], args=matching.Match):
    name = "docker.container.healthy"
    summary = (
        "Health-check status of the matching containers: {healthy: all healthy, containers: {name: status}}."
    )

    def run(self, args: matching.Match, ctx: contract.RunContext) -> contract.JsonValue:
        found = matching.find(args, ctx, include_stopped=True)
        statuses: dict[str, contract.JsonValue] = {
            c.name: str((_state(c).get("Health") or {}).get("Status") or "none") for c in found
        }
        healthy = bool(found) and all(s == "healthy" for s in statuses.values())
        return {"healthy": healthy, "containers": statuses}


class Restarts(contract.Probe[matching.Match], args=matching.Match):
    name = "docker.container.restarts"
    summary = (
        "How often the engine restarted the matching containers: {restarts: total, containers: {name: n}}."
    )

    def run(self, args: matching.Match, ctx: contract.RunContext) -> contract.JsonValue:
        found = matching.find(args, ctx, include_stopped=True)
        counts: dict[str, contract.JsonValue] = {c.name: int(c.attrs.get("RestartCount") or 0) for c in found}
        return {"restarts": sum(int(n) for n in counts.values() if isinstance(n, int)), "containers": counts}


class ExecArgs(matching.Match):
    command: list[str] | str
    """The command, as an argv list; a string runs through ``sh -c`` inside the container."""
    user: str | None = None
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class Exec(contract.Probe[ExecArgs], args=ExecArgs):
    name = "docker.container.exec"
    summary = "Run a command in one running container: {exit_code, output}."

    def run(self, args: ExecArgs, ctx: contract.RunContext) -> contract.JsonValue:
        found = matching.find(args, ctx, include_stopped=False)
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
            engines.fail(f"running {argv[0]} in", f"container {container.name}", e)
        output = (result.output or b"").decode("utf-8", "replace")
        return {"exit_code": int(result.exit_code), "output": output}


# ---- docker.container.run: the system under test, started in setup ------------------------------


class RunArgs(contract.Args):
    image: str
    """The image to run; it must already be on the engine (chaoskit does not pull)."""
    name: str | None = None
    """The container's name; the engine picks one when omitted."""
    command: list[str] | None = None
    """Overrides the image's command."""
    ports: dict[str, str | int] = Field(default_factory=dict)
    """Container port → host address, e.g. ``{"80/tcp": "127.0.0.1:18080"}`` or ``{"80": 18080}``."""
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    """A network to attach it to (instead of the default bridge)."""
    aliases: list[str] = Field(default_factory=list)
    """Network aliases on ``network``."""
    restart: str | None = None
    """Restart policy: ``no``, ``always``, ``unless-stopped`` or ``on-failure``."""
    wait_for_port: int | None = Field(default=None, ge=1, le=65535)
    """Ready when a TCP connection to 127.0.0.1 on this host port succeeds."""
    wait_for_url: str | None = None
    """Ready when an HTTP GET of this URL answers 2xx."""
    timeout: durations.Duration = 30.0
    """How long to wait until it is ready."""

    @model_validator(mode="after")
    def _aliases_need_network(self) -> Self:
        if self.aliases and self.network is None:
            raise ValueError("aliases need a network: give network: NAME too")
        return self


def _binding(value: str | int) -> tuple[str, int] | int:
    if isinstance(value, int):
        return ("127.0.0.1", value)
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port))


def _ready(args: RunArgs) -> bool:
    try:
        if args.wait_for_port is not None:
            with socket.create_connection(("127.0.0.1", args.wait_for_port), timeout=1.0):
                pass
        if args.wait_for_url is not None:
            with urllib.request.urlopen(args.wait_for_url, timeout=2.0) as response:
                return 200 <= int(response.status) < 300
    except OSError:
        return False
    return True


class Run(contract.Action[RunArgs], args=RunArgs):
    name = "docker.container.run"
    summary = "Start a container (setup); removed after teardown. Published ports default to 127.0.0.1."

    def run(self, args: RunArgs, ctx: contract.RunContext) -> contract.ActionResult:
        client = engines.client(ctx)
        network_options: dict[str, object] = {}
        if args.network is not None and args.aliases:
            network_options["networking_config"] = {
                args.network: client.api.create_endpoint_config(aliases=args.aliases)
            }
        try:
            container = client.containers.run(
                args.image,
                args.command,
                name=args.name,
                detach=True,
                environment=args.env or None,
                labels={**args.labels, engines.RUN_LABEL: ctx.run_id},
                ports={port: _binding(host) for port, host in args.ports.items()} or None,
                network=args.network,
                restart_policy={"Name": args.restart} if args.restart else None,
                **network_options,
            )
        except Exception as e:
            engines.fail(f"starting image {args.image} as", f"container {args.name or ''}".strip(), e)
        undo: contract.RevertData = {"container_id": str(container.id), "name": str(container.name)}
        deadline = time.monotonic() + args.timeout
        while not _ready(args):
            container.reload()
            if container.status == "exited" or ctx.cancel.is_set() or time.monotonic() > deadline:
                logs = container.logs(tail=20).decode("utf-8", "replace").strip()
                self.undo(undo, ctx)
                why = (
                    "it exited"
                    if container.status == "exited"
                    else f"it was not ready within {args.timeout:g}s"
                )
                raise DriverError(
                    f"docker.container.run: container {container.name} ({args.image}): {why}"
                    + (f"; its last log lines:\n{logs}" if logs else "")
                )
            time.sleep(0.2)
        target = matching.to_target(container)
        return contract.ActionResult(output={"id": target.id, "name": target.name}, undo=undo)

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = matching.get(str(data["container_id"]), ctx)
        if container is None:
            return contract.RevertOutcome.ALREADY_CLEAN
        try:
            container.remove(force=True)
        except Exception as e:
            if engines.is_not_found(e):
                return contract.RevertOutcome.ALREADY_CLEAN
            engines.fail("removing", f"container {data['name']}", e)
        return contract.RevertOutcome.REVERTED
