"""Network faults: disconnect a container from a network, partition it with iptables DROP rules,
and delay or lose its packets with tc netem - each inside the target's own network namespace."""

from __future__ import annotations

import ipaddress
import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, model_validator

from chaoskit import durations
from chaoskit.drivers import contract
from chaoskit.drivers.docker import engines, matching, namespacing
from chaoskit.errors import ComponentMissing, DriverError

COMMENT_PREFIX = "chaoskit:"
"""Every iptables rule chaoskit adds carries ``chaoskit:<run id>`` as its comment."""
NETEM_HANDLE = "4c4b:"
"""The root qdisc handle chaoskit's netem uses ("CK"), so that sweep recognises its own."""


def comment_for(run_id: str) -> str:
    # iptables comments are at most 256 bytes and must survive `iptables -S` quoting unchanged.
    return COMMENT_PREFIX + re.sub(r"[^A-Za-z0-9_.:-]", "_", run_id)[:200]


def _container(revert: matching.ContainerRevert, ctx: contract.RunContext) -> Any | None:
    return matching.get(revert.container_id, ctx)


def _running(target: contract.Target, ctx: contract.RunContext) -> Any:
    container = matching.get(target.id, ctx)
    if container is None or container.status not in {"running", "paused"}:
        raise DriverError(
            f"docker: container {target.name} is not running, so it has no network namespace to change"
        )
    return container


class Mechanism(contract.Args):
    mechanism: namespacing.Mechanism = namespacing.Mechanism.AUTO
    """``nsenter`` (root on the Docker host), ``helper`` (a helper container), or ``auto``."""
    helper_image: str | None = None
    """Image with sh, iptables and tc for the helper; default ``$CHAOSKIT_DOCKER_HELPER_IMAGE``."""


class InNamespaceRevert(matching.ContainerRevert):
    """A change made inside a container's network namespace, and how to get in there again."""

    mechanism: namespacing.Mechanism
    """How the change was made (``auto``, ``nsenter`` or ``helper``); the revert uses the same."""
    helper_image: str
    """The helper image, resolved when preparing, so that a later ``chaoskit recover`` without the
    same environment still reverts with the image that injected."""


def _in_namespace(args: Mechanism, target: contract.Target) -> dict[str, object]:
    return {
        "container_id": target.id,
        "name": target.name,
        "mechanism": args.mechanism,
        "helper_image": namespacing.helper_image(args.helper_image),
    }


def _run(
    container: Any,
    commands: Sequence[Sequence[str]],
    revert: InNamespaceRevert,
    ctx: contract.RunContext,
    *,
    stop_on_error: bool = False,
) -> list[namespacing.Result]:
    return namespacing.run(
        container,
        commands,
        ctx,
        mechanism=revert.mechanism,
        image=revert.helper_image,
        stop_on_error=stop_on_error,
    )


# --- disconnect -------------------------------------------------------------------------------


class DisconnectArgs(matching.Selector):
    network: str
    """The network (name or id) to disconnect the containers from."""


class DisconnectRevert(matching.ContainerRevert):
    """The container's endpoint on the network as it was, to reconnect it the same way."""

    network_id: str
    """The network's id; revert finds it by this (a network re-created under the name is another)."""
    network_name: str
    """Its name, for messages."""
    aliases: tuple[str, ...]
    """The endpoint's aliases, without the short container id Docker adds by itself."""
    ipv4_address: str | None
    """The IPv4 address to pin again (None on the default bridge, which takes no fixed address)."""
    ipv6_address: str | None
    """The IPv6 address to pin again, likewise."""
    links: tuple[str, ...]
    """Legacy links, as ``container:alias``."""
    driver_opt: dict[str, str]
    """The endpoint's driver options."""
    ip_seen: str
    """The address the container had (empty if none), so the journal says it even on the default
    bridge, where it is not pinned again."""


class Disconnect(
    contract.Fault[DisconnectArgs, DisconnectRevert], args=DisconnectArgs, revert=DisconnectRevert
):
    name = "docker.network.disconnect"
    summary = "Disconnect containers from a network; reverted by reconnecting with the same aliases and IPs."

    def lease(self, args: DisconnectArgs, target: contract.Target) -> str:
        # Per network: disconnecting one container from two networks are two independent faults.
        # (A network named once by name and once by id gets two keys; reconnecting twice then fails
        # loudly, it does not stack silently.)
        return f"{self.name}@{target.kind}:{target.id}/network:{args.network}"

    def targets(self, args: DisconnectArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(
        self, args: DisconnectArgs, target: contract.Target, ctx: contract.RunContext
    ) -> DisconnectRevert:
        container = _running(target, ctx)
        client = engines.client(ctx)
        try:
            network = client.networks.get(args.network)
        except Exception as e:
            engines.fail("looking up network", args.network, e)
        attached = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        endpoint = next(
            (ep for key, ep in attached.items() if key == network.name or ep.get("NetworkID") == network.id),
            None,
        )
        if endpoint is None:
            raise DriverError(
                f"docker: container {target.name} is not connected to network {network.name}",
                hint=f"connected to: {', '.join(attached) or 'nothing'}",
            )
        short_id = str(container.id)[:12]
        aliases = [a for a in endpoint.get("Aliases") or [] if a != short_id]
        ipam = endpoint.get("IPAMConfig") or {}
        # The default bridge never takes a fixed address; elsewhere try to pin the one it had.
        user_defined = network.name != "bridge"
        ipv4 = ipam.get("IPv4Address") or (endpoint.get("IPAddress") if user_defined else None)
        ipv6 = ipam.get("IPv6Address") or (endpoint.get("GlobalIPv6Address") if user_defined else None)
        # Validated, not constructed: what the engine API answered is checked like a ledger read.
        return DisconnectRevert.model_validate(
            {
                "container_id": target.id,
                "name": target.name,
                "network_id": network.id,
                "network_name": network.name,
                "aliases": aliases,
                "ipv4_address": ipv4 or None,
                "ipv6_address": ipv6 or None,
                "links": endpoint.get("Links") or [],
                "driver_opt": endpoint.get("DriverOpts") or {},
                "ip_seen": endpoint.get("IPAddress") or "",
            }
        )

    def inject(
        self,
        args: DisconnectArgs,
        target: contract.Target,
        revert: DisconnectRevert,
        ctx: contract.RunContext,
    ) -> DisconnectRevert:
        client = engines.client(ctx)
        try:
            client.networks.get(revert.network_id).disconnect(target.id, force=True)
        except Exception as e:
            engines.fail(f"disconnecting from network {revert.network_name}", f"container {target.name}", e)
        return revert

    def revert(self, revert: DisconnectRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = _container(revert, ctx)
        if container is None:
            return contract.RevertOutcome.ALREADY_CLEAN
        attached = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        if any(ep.get("NetworkID") == revert.network_id for ep in attached.values()):
            return contract.RevertOutcome.ALREADY_CLEAN
        client = engines.client(ctx)
        try:
            network = client.networks.get(revert.network_id)
        except Exception as e:
            if engines.is_not_found(e):
                return contract.RevertOutcome.ALREADY_CLEAN
            engines.fail("looking up network", revert.network_name, e)
        options: dict[str, Any] = {
            "aliases": list(revert.aliases) or None,
            "ipv4_address": revert.ipv4_address,
            "ipv6_address": revert.ipv6_address,
            "links": [tuple(link.split(":", 1)) for link in revert.links] or None,
            "driver_opt": dict(revert.driver_opt) or None,
        }
        try:
            try:
                network.connect(revert.container_id, **options)
            except Exception as e:
                # Only networks created with an explicit subnet accept a fixed address; and while
                # the container was away, another may have been given its (dynamic) address. Either
                # way the container goes back on the network, with an address the network picks.
                why = str(getattr(e, "explanation", "") or e)
                if "user configured subnets" in why:
                    reason = f"network {revert.network_name} has no configured subnet"
                elif "Address already in use" in why:
                    reason = f"{revert.ipv4_address} went to another container while it was away"
                else:
                    raise
                ctx.log(
                    f"docker: {reason}, so container {revert.name} is reconnected without pinning "
                    f"{revert.ipv4_address}"
                )
                network.connect(
                    revert.container_id, **{**options, "ipv4_address": None, "ipv6_address": None}
                )
        except Exception as e:
            engines.fail(
                f"reconnecting to network {revert.network_name} (ip {revert.ipv4_address})",
                f"container {revert.name}",
                e,
            )
        return contract.RevertOutcome.REVERTED


# --- partition --------------------------------------------------------------------------------


class PartitionArgs(matching.Selector, Mechanism):
    peers: list[str] = Field(default_factory=list)
    """Container names, IPv4 addresses or CIDRs to cut off; empty cuts off everything but loopback."""
    ports: list[int] = Field(default_factory=list)
    """Only traffic to or from these ports; empty means every port."""
    protocol: Literal["tcp", "udp", "all"] = "all"
    """With ``ports``, ``all`` means tcp and udp."""

    @model_validator(mode="after")
    def _ports_valid(self) -> Self:
        bad = [p for p in self.ports if not 0 < p < 65536]
        if bad:
            raise ValueError(f"ports must be 1-65535, got {bad}")
        return self


def _peer_cidrs(peers: Sequence[str], ctx: contract.RunContext) -> list[str]:
    cidrs: list[str] = []
    for peer in peers:
        try:
            net = ipaddress.ip_network(peer, strict=False)
        except ValueError:
            net = None
        if net is not None:
            if net.version != 4:
                raise DriverError(f"docker.network.partition: peer {peer} is IPv6; only IPv4 is supported")
            cidrs.append(str(net))
            continue
        found = matching.find(matching.Match(name=peer), ctx, include_stopped=False)
        if not found:
            raise DriverError(
                f"docker.network.partition: peer {peer!r} is neither an IPv4 address/CIDR "
                "nor a running container"
            )
        for endpoint in (found[0].attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
            if endpoint.get("IPAddress"):
                cidrs.append(f"{endpoint['IPAddress']}/32")
    return sorted(set(cidrs))


def partition_rules(args: PartitionArgs, cidrs: Sequence[str], comment: str) -> list[list[str]]:
    """The iptables rule specs (chain first) that cut the target off from ``cidrs`` (or everything)."""
    protocols = ["tcp", "udp"] if args.protocol == "all" else [args.protocol]
    if args.ports:
        matches = [
            ["-p", proto, f"--{side}", str(port)]
            for proto in protocols
            for port in args.ports
            for side in ("dport", "sport")
        ]
    else:
        matches = [[]] if args.protocol == "all" else [["-p", args.protocol]]
    rules: list[list[str]] = []
    for chain, flag, iface in (("INPUT", "-s", "-i"), ("OUTPUT", "-d", "-o")):
        peers = [[flag, cidr] for cidr in cidrs] or [["!", iface, "lo"]]
        for peer in peers:
            for match in matches:
                rules.append([chain, *peer, *match, "-m", "comment", "--comment", comment, "-j", "DROP"])
    return rules


def _delete_rules(
    container: Any, rules: Sequence[Sequence[str]], revert: InNamespaceRevert, ctx: contract.RunContext
) -> int:
    """Delete every rule (each as often as it is there); how many were deleted."""
    deleted = 0
    # A rule added twice needs two deletes; bounded so a failing `-D` can't loop.
    for _ in range(4):
        results = _run(container, [["iptables", "-w", "-D", *rule] for rule in rules], revert, ctx)
        gone = [r for r in results if r.ok]
        deleted += len(gone)
        if not gone:
            break
    return deleted


class PartitionRevert(InNamespaceRevert):
    """The iptables rules a partition added, to delete exactly those."""

    rules: tuple[tuple[str, ...], ...] = Field(min_length=1)
    """Each rule's spec, chain first (``INPUT -s 10.0.0.5/32 ... -j DROP``), as ``iptables -D`` takes it."""


class Partition(contract.Fault[PartitionArgs, PartitionRevert], args=PartitionArgs, revert=PartitionRevert):
    name = "docker.network.partition"
    summary = "Drop traffic between containers and peers (or everything) with iptables in their namespace."
    # Its own rules, deleted by its own revert: there is no earlier state to hand on. (Two steps of one
    # run that add the very same rules to one container share them: the first revert deletes every
    # copy. The default lease refuses that overlap unless a step allows it.)
    captures_state = False

    def targets(self, args: PartitionArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    def prepare(
        self, args: PartitionArgs, target: contract.Target, ctx: contract.RunContext
    ) -> PartitionRevert:
        cidrs = _peer_cidrs(args.peers, ctx)
        rules = partition_rules(args, cidrs, comment_for(ctx.run_id))
        return PartitionRevert.model_validate({**_in_namespace(args, target), "rules": rules})

    def inject(
        self,
        args: PartitionArgs,
        target: contract.Target,
        revert: PartitionRevert,
        ctx: contract.RunContext,
    ) -> PartitionRevert:
        container = _running(target, ctx)
        rules = revert.rules
        results = _run(
            container, [["iptables", "-w", "-I", *rule] for rule in rules], revert, ctx, stop_on_error=True
        )
        failed = next((r for r in results if not r.ok), None)
        if failed is not None or len(results) != len(rules):
            # Leave nothing half-applied: take back the rules that did go in.
            _delete_rules(container, rules, revert, ctx)
            answer = failed.output if failed else "not every rule ran"
            if "not found" in answer or "No such file" in answer:
                raise ComponentMissing(
                    f"docker: iptables is not available for container {target.name}: {answer}"
                )
            raise DriverError(
                f"docker: adding iptables rules in container {target.name} failed: {answer}",
                hint="chaoskit needs NET_ADMIN in the target's namespace (root on the host, or the helper)",
            )
        return revert

    def revert(self, revert: PartitionRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = _container(revert, ctx)
        # A stopped or removed container's namespace, and its rules, are gone with it.
        if container is None or container.status not in {"running", "paused"}:
            return contract.RevertOutcome.ALREADY_CLEAN
        deleted = _delete_rules(container, revert.rules, revert, ctx)
        return contract.RevertOutcome.REVERTED if deleted else contract.RevertOutcome.ALREADY_CLEAN


# --- netem ------------------------------------------------------------------------------------


class NetemArgs(matching.Selector, Mechanism):
    interface: str = "eth0"
    """The container's interface to shape."""


class DelayArgs(NetemArgs):
    delay: durations.Duration
    """Added latency, e.g. ``100ms``."""
    jitter: durations.Duration | None = None
    """Random variation around ``delay``."""


class LossArgs(NetemArgs):
    loss_percent: float = Field(gt=0, le=100)
    """Share of packets dropped, in percent (``percent`` is the selector's: the share of matching
    containers to hit)."""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


class NetemRevert(InNamespaceRevert):
    """The netem qdisc a delay or loss put on an interface."""

    interface: str
    """The interface whose root qdisc (handle ``4c4b:``) is removed again."""
    netem: tuple[str, ...]
    """The netem parameters that were applied (``delay 100ms``), for the journal."""


N = TypeVar("N", bound=NetemArgs)


class _Netem(contract.Fault[N, NetemRevert], revert=NetemRevert):
    # Its own qdisc, removed by its own revert; a second one on the interface is refused by tc.
    captures_state = False

    def lease(self, args: N, target: contract.Target) -> str:
        # Delay and loss both own the interface's root qdisc: one of them at a time per interface.
        return f"docker.network.netem@{target.kind}:{target.id}/{args.interface}"

    def targets(self, args: N, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return matching.resolve(args, ctx)

    @abstractmethod
    def netem(self, args: N) -> list[str]:
        """The ``tc qdisc ... netem`` parameters for ``args``."""

    def prepare(self, args: N, target: contract.Target, ctx: contract.RunContext) -> NetemRevert:
        return NetemRevert.model_validate(
            {**_in_namespace(args, target), "interface": args.interface, "netem": self.netem(args)}
        )

    def inject(
        self, args: N, target: contract.Target, revert: NetemRevert, ctx: contract.RunContext
    ) -> NetemRevert:
        container = _running(target, ctx)
        iface = revert.interface
        add = ["tc", "qdisc", "add", "dev", iface, "root", "handle", NETEM_HANDLE, "netem", *revert.netem]
        (result,) = _run(container, [add], revert, ctx)
        if result.ok:
            return revert
        # `add` is all or nothing, so a failure leaves the interface as it was.
        if "qdisc kind is unknown" in result.output or "No such file" in result.output:
            raise ComponentMissing(
                f"docker: tc netem is not available for container {target.name}: {result.output}",
                hint="the kernel needs the sch_netem module (modprobe sch_netem); nothing was applied",
            )
        if "Exclusivity flag on" in result.output or "File exists" in result.output:
            raise DriverError(
                f"docker: {iface} of container {target.name} already has a root qdisc; "
                "chaoskit won't replace it",
                hint="remove it first (tc qdisc del dev IFACE root) or shape another interface",
            )
        raise DriverError(f"docker: tc on {iface} of container {target.name} failed: {result.output}")

    def revert(self, revert: NetemRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = _container(revert, ctx)
        if container is None or container.status not in {"running", "paused"}:
            return contract.RevertOutcome.ALREADY_CLEAN
        iface = revert.interface
        (shown,) = _run(container, [["tc", "qdisc", "show", "dev", iface]], revert, ctx)
        if f"netem {NETEM_HANDLE}" not in shown.output:
            return contract.RevertOutcome.ALREADY_CLEAN
        (deleted,) = _run(
            container, [["tc", "qdisc", "del", "dev", iface, "root", "handle", NETEM_HANDLE]], revert, ctx
        )
        if not deleted.ok:
            raise DriverError(
                f"docker: removing netem from {iface} of container {revert.name} failed: {deleted.output}"
            )
        return contract.RevertOutcome.REVERTED


class Delay(_Netem[DelayArgs], args=DelayArgs):
    name = "docker.network.delay"
    summary = "Add latency (tc netem) to a container's interface."

    def netem(self, args: DelayArgs) -> list[str]:
        return ["delay", _ms(args.delay), *([_ms(args.jitter)] if args.jitter else [])]


class Loss(_Netem[LossArgs], args=LossArgs):
    name = "docker.network.loss"
    summary = "Drop a share of a container's packets (tc netem)."

    def netem(self, args: LossArgs) -> list[str]:
        return ["loss", f"{args.loss_percent:g}%"]
