"""``docker.network.dns``: inside a container, resolving the chosen names fails (NXDOMAIN, SERVFAIL)
or returns a chosen address; other names resolve as before.

A small responder (``chaoskit/stressors/resolver.py``, the host's interpreter) runs in the
container's network and pid namespaces, entered with ``nsenter``, and an iptables rule in the
container's ``nat`` table redirects its DNS queries (UDP port 53) to it. It forwards what it does
not answer to the container's own resolver (its ``/etc/resolv.conf``), with a firewall mark the rule
lets through. The revert deletes the rule and stops the responder, found by the mark in its
environment; both go with the container if it stops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from chaoskit.drivers import contract
from chaoskit.drivers.docker import matching, namespacing, networks
from chaoskit.errors import ComponentMissing, DriverError
from chaoskit.stressors import inside, spawning

FORWARD_MARK = inside.FORWARD_MARK
_NAME = re.compile(r"[A-Za-z0-9*_.-]+")


class DnsArgs(matching.Selector, inside.DnsAnswer):
    pass


class DnsRevert(matching.ContainerRevert):
    """The redirect rule and the responder's mark."""

    mark: str = Field(min_length=1)
    """``CHAOSKIT_ENTRY`` in the responder's environment: the revert stops what carries it."""
    rule: tuple[str, ...] = Field(min_length=1)
    """The ``nat`` table rule, chain first, as ``iptables -t nat -D`` takes it."""


def _running_pid(container: Any | None, what: str) -> int:
    if container is None or container.status != "running":
        raise DriverError(f"{what}: the container is not running")
    pid = namespacing.local_pid(container)
    if pid is None:
        raise ComponentMissing(
            f"{what}: can't enter container {container.name} from here",
            hint="run chaoskit as root on the Docker host (the engine must be local), with nsenter installed",
        )
    return pid


def _iptables(container: Any, argv: list[str], ctx: contract.RunContext) -> namespacing.Result:
    (result,) = namespacing.run(container, [argv], ctx, mechanism=namespacing.Mechanism.NSENTER)
    return result


class Dns(contract.Fault[DnsArgs, DnsRevert], args=DnsArgs, revert=DnsRevert):
    name = "docker.network.dns"
    summary = (
        "Make chosen names fail to resolve (NXDOMAIN/SERVFAIL) or resolve to an address inside containers."
    )
    captures_state = False  # its own rule and responder, removed by its own revert

    def targets(self, args: DnsArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(self, args: DnsArgs, target: contract.Target, ctx: contract.RunContext) -> DnsRevert:
        mark = spawning.mark(ctx)
        rule = ["OUTPUT", "-p", "udp", "--dport", "53", "-m", "mark", "!", "--mark", FORWARD_MARK]
        rule += ["-m", "comment", "--comment", networks.comment_for(ctx.run_id)]
        rule += ["-j", "REDIRECT", "--to-ports", str(inside.responder_port(mark))]
        return DnsRevert(container_id=target.id, name=target.name, mark=mark, rule=tuple(rule))

    def inject(
        self, args: DnsArgs, target: contract.Target, revert: DnsRevert, ctx: contract.RunContext
    ) -> DnsRevert:
        container = matching.get(target.id, ctx)
        pid = _running_pid(container, f"{self.name} in {target.name}")
        argv = inside.responder_command(pid, revert.mark, args, "the container")
        spawning.start(argv, kind="dns", mark=revert.mark, ctx=ctx, what=f"{self.name} in {target.name}")
        added = _iptables(container, ["iptables", "-w", "-t", "nat", "-I", *revert.rule], ctx)
        if not added.ok:
            spawning.stop(revert.mark, ())
            raise DriverError(
                f"{self.name}: redirecting DNS in container {target.name} failed: {added.output}",
                hint="the kernel needs the iptables nat table and REDIRECT target (nf_nat)",
            )
        ctx.log(f"{self.name}: {', '.join(args.domains)} answer {args.answer} in container {target.name}")
        return revert

    def revert(self, revert: DnsRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = matching.get(revert.container_id, ctx)
        deleted = 0
        # A stopped or removed container's namespace, rule and responder are gone with it.
        if container is not None and container.status in {"running", "paused"}:
            for _ in range(4):  # a rule inserted twice needs two deletes; bounded
                if not _iptables(container, ["iptables", "-w", "-t", "nat", "-D", *revert.rule], ctx).ok:
                    break
                deleted += 1
        stopped = spawning.stop(revert.mark, ())
        if deleted or stopped is contract.RevertOutcome.REVERTED:
            return contract.RevertOutcome.REVERTED
        return contract.RevertOutcome.ALREADY_CLEAN
