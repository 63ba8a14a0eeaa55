"""The toxiproxy driver's proxy activities: ``toxiproxy.proxy`` (the action that creates or
updates one, and the probe that reads one) and ``toxiproxy.down``, which disables one.

``toxiproxy.down`` records whether the proxy was enabled and its revert restores exactly that.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients


class ProxyArgs(contract.Args):
    proxy: str = Field(min_length=1)
    """The proxy's name on the server, e.g. ``backend``."""
    url: str = clients.DEFAULT_URL
    """The Toxiproxy API (chaoskit's embedded server by default)."""


class ProxyRevert(contract.Revert):
    """A proxy on one Toxiproxy server."""

    model_config = ConfigDict(strict=True)
    url: str = Field(min_length=1)
    """The Toxiproxy API the fault was made through."""
    proxy: str = Field(min_length=1)
    """The proxy's name on that server."""


class DownRevert(ProxyRevert):
    """A disabled proxy, and the state to put back."""

    was_enabled: bool
    """Whether the proxy was enabled before the fault: the revert sets exactly this again."""


def find(url: str, proxy: str, ctx: contract.RunContext) -> clients.ProxyInfo:
    """The proxy as the server shows it; a ``TargetError`` naming the proxies it has if none."""
    try:
        return clients.client(url, ctx).proxy(proxy)
    except clients.ApiError as e:
        if e.status != 404:
            raise
        known = ", ".join(sorted(clients.client(url, ctx).proxies())) or "none"
        raise errors.TargetError(
            f"toxiproxy at {url} has no proxy named {proxy!r} (it has: {known})",
            hint="create it in setup: with the toxiproxy.proxy action, or fix `proxy:`",
        ) from e


def target(args: ProxyArgs, ctx: contract.RunContext) -> contract.Target:
    """The proxy ``args`` names; it must exist (not checked in a dry run)."""
    if not ctx.dry_run:
        find(args.url, args.proxy, ctx)
    return contract.Target(
        kind="toxiproxy proxy", id=f"{args.url}#{args.proxy}", name=args.proxy, detail={"url": args.url}
    )


def set_enabled(api: clients.Client, proxy: str, enabled: bool) -> contract.RevertOutcome:
    """Put the proxy's ``enabled`` back to ``enabled``: REVERTED if that changed it, ALREADY_CLEAN
    if it already was so or the proxy is gone. ``Unreachable`` propagates: the revert is not done."""
    try:
        current = api.proxy(proxy)
    except clients.ApiError as e:
        if e.status == 404:
            return contract.RevertOutcome.ALREADY_CLEAN
        raise
    if current["enabled"] is enabled:
        return contract.RevertOutcome.ALREADY_CLEAN
    try:
        api.update_proxy(proxy, enabled=enabled)
    except clients.ApiError as e:
        if e.status == 404:  # deleted in between
            return contract.RevertOutcome.ALREADY_CLEAN
        raise
    return contract.RevertOutcome.REVERTED


class Down(contract.Fault[ProxyArgs, DownRevert], args=ProxyArgs, revert=DownRevert):
    name = "toxiproxy.down"
    summary = "Disable a proxy: open connections close, new ones are refused."
    # ``enabled`` is one state per proxy: overlapping downs (allowed explicitly) hand the first
    # one's ``was_enabled`` to the last one out.
    captures_state = True

    def lease(self, args: ProxyArgs, target: contract.Target) -> str:
        return f"{self.name}@{clients.server_key(args.url)}#{args.proxy}"

    def endpoint(self, revert: DownRevert) -> str:
        return clients.endpoint(revert.url)

    def targets(self, args: ProxyArgs, ctx: contract.RunContext) -> list[contract.Target]:
        return [target(args, ctx)]

    def prepare(self, args: ProxyArgs, target: contract.Target, ctx: contract.RunContext) -> DownRevert:
        was_enabled = find(args.url, args.proxy, ctx)["enabled"]
        return DownRevert(url=args.url, proxy=args.proxy, was_enabled=was_enabled)

    def inject(
        self, args: ProxyArgs, target: contract.Target, revert: DownRevert, ctx: contract.RunContext
    ) -> DownRevert:
        clients.client(args.url, ctx).update_proxy(args.proxy, enabled=False)
        ctx.log(f"proxy {args.proxy} at {args.url} disabled")
        return revert

    def revert(self, revert: DownRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        # Exactly the recorded state, whatever the proxy shows now: which record reaches the last
        # revert of overlapping downs is the engine's hand-over (captures_state), not ours to guess.
        return set_enabled(clients.client(revert.url, ctx), revert.proxy, revert.was_enabled)


class ProxySpec(contract.Args):
    name: str = Field(min_length=1)
    """The proxy's name, e.g. ``backend``."""
    upstream: str = Field(min_length=1)
    """Where it forwards to, ``host:port``."""
    listen: str = ""
    """Where it listens, ``host:port``; default: 127.0.0.1 and a free port (see the output)."""
    enabled: bool = True
    url: str = clients.DEFAULT_URL
    """The Toxiproxy API."""
    keep: bool = False
    """Leave a proxy this action created in place after teardown (default: delete it)."""


class Created(BaseModel):
    """``toxiproxy.proxy``'s undo data: a proxy it created, which the undo deletes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    url: str
    """The Toxiproxy API."""
    proxy: str
    """The proxy's name."""


class ProxyAction(contract.Action[ProxySpec], args=ProxySpec):
    name = "toxiproxy.proxy"
    summary = "Create a proxy (or update the one with that name); outputs it, incl. its listen address."

    def run(self, args: ProxySpec, ctx: contract.RunContext) -> contract.ActionResult:
        api = clients.client(args.url, ctx)
        try:
            api.proxy(args.name)
        except clients.ApiError as e:
            if e.status != 404:
                raise
            created = api.create_proxy(args.name, args.upstream, args.listen, args.enabled)
            undo: contract.RevertData | None = None
            if not args.keep:
                undo = {"url": args.url, "proxy": args.name}
            return contract.ActionResult(output=dict(created), undo=undo)  # type: ignore[arg-type]
        fields: dict[str, object] = {"upstream": args.upstream, "enabled": args.enabled}
        if args.listen:
            fields["listen"] = args.listen
        updated = api.update_proxy(args.name, **fields)
        return contract.ActionResult(output=dict(updated))  # type: ignore[arg-type]

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        try:
            created = Created.model_validate(data)
        except ValueError as e:
            raise errors.DriverError(f"toxiproxy.proxy undo data is damaged: {e}") from e
        deleted = clients.client(created.url, ctx).delete_proxy(created.proxy)
        return contract.RevertOutcome.REVERTED if deleted else contract.RevertOutcome.ALREADY_CLEAN


class ProxyRead(contract.Args):
    name: str = Field(min_length=1)
    """The proxy's name."""
    url: str = clients.DEFAULT_URL
    """The Toxiproxy API."""


class ProxyProbe(contract.Probe[ProxyRead], args=ProxyRead):
    name = "toxiproxy.proxy"
    summary = "A proxy as the server shows it: {exists, enabled, listen, upstream, toxics}."

    def run(self, args: ProxyRead, ctx: contract.RunContext) -> contract.JsonValue:
        try:
            proxy = clients.client(args.url, ctx).proxy(args.name)
        except clients.ApiError as e:
            if e.status == 404:
                return {"exists": False, "name": args.name}
            raise
        return {"exists": True, **proxy}  # type: ignore[dict-item]
