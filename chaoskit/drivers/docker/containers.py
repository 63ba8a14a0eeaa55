"""Faults on containers' lives: kill, stop, pause, restart, remove."""

from __future__ import annotations

import contextlib
import os
import signal as signals
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from chaoskit.drivers import contract
from chaoskit.drivers.docker import connecting, namespacing, targets
from chaoskit.errors import DriverError


def _container(target: contract.Target, ctx: contract.RunContext) -> Any:
    container = targets.get(target.id, ctx)
    if container is None:
        connecting.fail("finding", f"container {target.name}", LookupError("it no longer exists"))
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


ContainerRevert = targets.ContainerRevert
# (A name of this module's own: inside the fault classes, ``targets`` is their method.)

S = TypeVar("S", bound=targets.Selector)


class _ContainerFault(contract.Fault[S, ContainerRevert]):
    """A fault on containers chosen by a selector, holding the state lease; revert finds them again
    by id."""

    revert_type = ContainerRevert

    def lease(self, args: S, target: contract.Target) -> str:
        return _state_lease(target)

    def targets(self, args: S, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return targets.resolve(args, ctx)

    def prepare(self, args: S, target: contract.Target, ctx: contract.RunContext) -> ContainerRevert:
        return ContainerRevert(container_id=target.id, name=target.name)


class KillArgs(targets.Selector):
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


class Kill(_ContainerFault[KillArgs]):
    name = "docker.container.kill"
    summary = "Crash containers with a signal (default SIGKILL); their restart policy brings them back."
    args = KillArgs
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
            connecting.fail(f"sending signal {number} to", f"container {target.name}", e)
        return revert


class StopArgs(targets.Selector):
    grace: int = Field(default=10, ge=0)
    """Seconds between SIGTERM and SIGKILL."""


class Stop(_ContainerFault[StopArgs]):
    name = "docker.container.stop"
    summary = "Stop containers; reverted by starting them unless they came back by themselves."
    args = StopArgs

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
            connecting.fail("stopping", f"container {target.name}", e)
        return revert

    def revert(self, revert: ContainerRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = targets.get(revert.container_id, ctx)
        if container is None or container.status in {"running", "restarting"}:
            return contract.RevertOutcome.ALREADY_CLEAN
        if container.status == "paused":
            # Handed a pause's state (a stop and a pause overlapped, this one ended last): running
            # is what both found, so unpause too.
            return _unpause(container, revert)
        try:
            container.start()
        except Exception as e:
            connecting.fail("starting", f"container {revert.name}", e)
        return contract.RevertOutcome.REVERTED


class PauseArgs(targets.Selector):
    """Which containers to pause."""


class Pause(_ContainerFault[PauseArgs]):
    name = "docker.container.pause"
    summary = "Freeze every process of containers (cgroup freezer); reverted by unpausing."
    args = PauseArgs

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
            connecting.fail("pausing", f"container {target.name}", e)
        return revert

    def revert(self, revert: ContainerRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = targets.get(revert.container_id, ctx)
        if container is None or container.status != "paused":
            return contract.RevertOutcome.ALREADY_CLEAN
        return _unpause(container, revert)


def _unpause(container: Any, revert: ContainerRevert) -> contract.RevertOutcome:
    try:
        container.unpause()
    except Exception as e:
        connecting.fail("unpausing", f"container {revert.name}", e)
    return contract.RevertOutcome.REVERTED


class Restart(_ContainerFault[StopArgs]):
    name = "docker.container.restart"
    summary = "Restart containers (stop with a grace period, then start)."
    args = StopArgs
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
            connecting.fail("restarting", f"container {target.name}", e)
        return revert


class RemoveArgs(targets.Selector):
    volumes: bool = False
    """Also remove the container's anonymous volumes."""


class Remove(_ContainerFault[RemoveArgs]):
    # Nothing can bring it back; the ledger's target (with its image) says what was lost.
    name = "docker.container.remove"
    summary = "Force-remove containers. Irreversible: the step must say `irreversible: ok`."
    args = RemoveArgs
    reversibility: ClassVar[contract.Reversibility] = contract.Reversibility.IRREVERSIBLE
    captures_state = False  # nothing can be restored

    def targets(self, args: RemoveArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return targets.resolve(args, ctx, include_stopped=True)

    def inject(
        self, args: RemoveArgs, target: contract.Target, revert: ContainerRevert, ctx: contract.RunContext
    ) -> ContainerRevert:
        container = _container(target, ctx)
        try:
            container.remove(force=True, v=args.volumes)
        except Exception as e:
            connecting.fail("removing", f"container {target.name}", e)
        return revert
