"""The toxiproxy driver: network faults (latency, bandwidth, timeouts, resets, "down") through a
Toxiproxy API - chaoskit's embedded server (``chaoskit proxy serve``) or a real Toxiproxy."""

from __future__ import annotations

import functools

from pydantic import BaseModel, ConfigDict, Field

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients, toxics


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


class ProxyAction(contract.Action[ProxySpec]):
    name = "toxiproxy.proxy"
    summary = "Create a proxy (or update the one with that name); outputs it, incl. its listen address."
    args = ProxySpec

    def run(self, args: ProxySpec, ctx: contract.RunContext) -> contract.ActionResult:
        api = toxics.client(args.url, ctx)
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
        deleted = toxics.client(created.url, ctx).delete_proxy(created.proxy)
        return contract.RevertOutcome.REVERTED if deleted else contract.RevertOutcome.ALREADY_CLEAN


class ProxyRead(contract.Args):
    name: str = Field(min_length=1)
    """The proxy's name."""
    url: str = clients.DEFAULT_URL
    """The Toxiproxy API."""


class ProxyProbe(contract.Probe[ProxyRead]):
    name = "toxiproxy.proxy"
    summary = "A proxy as the server shows it: {exists, enabled, listen, upstream, toxics}."
    args = ProxyRead

    def run(self, args: ProxyRead, ctx: contract.RunContext) -> contract.JSONValue:
        try:
            proxy = toxics.client(args.url, ctx).proxy(args.name)
        except clients.ApiError as e:
            if e.status == 404:
                return {"exists": False, "name": args.name}
            raise
        return {"exists": True, **proxy}  # type: ignore[dict-item]


def driver() -> contract.Driver:
    return contract.Driver(
        name="toxiproxy",
        summary="Network faults through a Toxiproxy API (chaoskit's embedded proxy or a real Toxiproxy).",
        faults=toxics.FAULTS,
        probes=[ProxyProbe()],
        actions=[ProxyAction()],
        sweep=functools.partial(toxics.sweep, urls=None),
    )
