"""The toxiproxy driver's toxic faults: one toxic on one proxy, named after the run so leftovers
can be found (``sweeping.py``).

A toxic is named ``chaoskit-<run id>-<random>-<type>``; ``prepare`` records the server URL, the
proxy and that name, so ``revert`` (here or in ``chaoskit recover``) deletes exactly it. Each
toxic is its own object, so toxic faults capture no state. Durations typed by users become the
API's integers through ``chaoskit.units`` (the embedded proxy reads them back the same way).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import Field

from chaoskit import units
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients, proxies
from chaoskit.durations import Duration

PREFIX = "chaoskit-"


def toxic_name(run_id: str, kind: str) -> str:
    return f"{PREFIX}{run_id}-{os.urandom(3).hex()}-{kind}"


def owner_of(toxic: str) -> str | None:
    """The run id in a toxic name ``chaoskit-<run id>-<hex>-<type>``, or None for another name."""
    if not toxic.startswith(PREFIX):
        return None
    parts = toxic[len(PREFIX) :].rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None


class ToxicRevert(proxies.ProxyRevert):
    """One toxic, which the revert deletes."""

    toxic: str = Field(min_length=1)
    """The toxic's name, ``chaoskit-<run id>-<random>-<type>``."""


class ToxicArgs(proxies.ProxyArgs):
    stream: Literal["upstream", "downstream"] = "downstream"
    """``downstream``: server → client (what a caller waits on); ``upstream``: client → server."""
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    """The probability that a connection gets the toxic (rolled per connection)."""


class LatencyArgs(ToxicArgs):
    latency: Duration
    """Added to every chunk of data, e.g. ``300ms``."""
    jitter: Duration = 0.0
    """Plus or minus up to this much, uniformly."""


class BandwidthArgs(ToxicArgs):
    rate: int = Field(gt=0)
    """KB/s (1 KB = 1000 bytes)."""


class SlowCloseArgs(ToxicArgs):
    delay: Duration
    """How long a close is held back."""


class TimeoutArgs(ToxicArgs):
    timeout: Duration = 0.0
    """Drop all data; close the connection after this long without data (0: never close)."""


class ResetPeerArgs(ToxicArgs):
    timeout: Duration = 0.0
    """After the first data arrives, wait this long, then reset the connection (TCP RST)."""


class SlicerArgs(ToxicArgs):
    average_size: int = Field(gt=0)
    """Bytes per slice, on average."""
    size_variation: int = Field(default=0, ge=0)
    """Slices vary by up to this many bytes."""
    delay: Duration = 0.0
    """Pause between slices."""


class LimitDataArgs(ToxicArgs):
    bytes: int = Field(ge=0)
    """Close the connection once this many bytes have passed."""


class GenericToxicArgs(ToxicArgs):
    type: str = Field(min_length=1)
    """Any toxic type the server knows (``latency``, ``noop``, ...)."""
    attributes: dict[str, int] = Field(default_factory=dict)
    """Its attributes, as the server takes them (times in ms, slicer delay in µs)."""


TA = TypeVar("TA", bound=ToxicArgs)


class ToxicFault(contract.Fault[TA, ToxicRevert], Generic[TA], revert=ToxicRevert):
    """Adds one toxic; reverting deletes it."""

    kind: ClassVar[str]
    # Each toxic is its own named object, removed by its own revert: nothing to hand over.
    captures_state = False

    @abstractmethod
    def attributes(self, args: TA) -> dict[str, int]:
        """The toxic's attributes as the server takes them."""

    def toxic_type(self, args: TA) -> str:
        return self.kind

    def lease(self, args: TA, target: contract.Target) -> str:
        return f"toxiproxy.{self.toxic_type(args)}@{clients.server_key(args.url)}#{args.proxy}/{args.stream}"

    def endpoint(self, revert: ToxicRevert) -> str:
        return clients.endpoint(revert.url)

    def targets(self, args: TA, ctx: contract.RunContext) -> list[contract.Target]:
        return [proxies.target(args, ctx)]

    def prepare(self, args: TA, target: contract.Target, ctx: contract.RunContext) -> ToxicRevert:
        return ToxicRevert(
            url=args.url, proxy=args.proxy, toxic=toxic_name(ctx.run_id, self.toxic_type(args))
        )

    def inject(
        self, args: TA, target: contract.Target, revert: ToxicRevert, ctx: contract.RunContext
    ) -> ToxicRevert:
        clients.client(args.url, ctx).add_toxic(
            args.proxy,
            self.toxic_type(args),
            self.attributes(args),
            name=revert.toxic,
            stream=args.stream,
            toxicity=args.toxicity,
        )
        ctx.log(f"toxic {revert.toxic} added to proxy {args.proxy} at {args.url}")
        return revert

    def revert(self, revert: ToxicRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        # A 404 (toxic or proxy gone) is already clean; an unreachable server is not: it propagates.
        removed = clients.client(revert.url, ctx).remove_toxic(revert.proxy, revert.toxic)
        return contract.RevertOutcome.REVERTED if removed else contract.RevertOutcome.ALREADY_CLEAN


class Latency(ToxicFault[LatencyArgs], args=LatencyArgs):
    name = "toxiproxy.latency"
    summary = "Delay data through a proxy (latency ± jitter)."
    kind = "latency"

    def attributes(self, args: LatencyArgs) -> dict[str, int]:
        return {"latency": units.to_ms(args.latency), "jitter": units.to_ms(args.jitter)}


class Bandwidth(ToxicFault[BandwidthArgs], args=BandwidthArgs):
    name = "toxiproxy.bandwidth"
    summary = "Limit a proxy's throughput to `rate` KB/s."
    kind = "bandwidth"

    def attributes(self, args: BandwidthArgs) -> dict[str, int]:
        return {"rate": args.rate}


class SlowClose(ToxicFault[SlowCloseArgs], args=SlowCloseArgs):
    name = "toxiproxy.slow_close"
    summary = "Hold back connection closes by `delay`."
    kind = "slow_close"

    def attributes(self, args: SlowCloseArgs) -> dict[str, int]:
        return {"delay": units.to_ms(args.delay)}


class Timeout(ToxicFault[TimeoutArgs], args=TimeoutArgs):
    name = "toxiproxy.timeout"
    summary = "Black-hole data; close idle connections after `timeout` (0: never)."
    kind = "timeout"

    def attributes(self, args: TimeoutArgs) -> dict[str, int]:
        return {"timeout": units.to_ms(args.timeout)}


class ResetPeer(ToxicFault[ResetPeerArgs], args=ResetPeerArgs):
    name = "toxiproxy.reset_peer"
    summary = "Reset connections (TCP RST) `timeout` after data arrives."
    kind = "reset_peer"

    def attributes(self, args: ResetPeerArgs) -> dict[str, int]:
        return {"timeout": units.to_ms(args.timeout)}


class Slicer(ToxicFault[SlicerArgs], args=SlicerArgs):
    name = "toxiproxy.slicer"
    summary = "Cut data into small slices, with a delay between them."
    kind = "slicer"

    def attributes(self, args: SlicerArgs) -> dict[str, int]:
        return {
            "average_size": args.average_size,
            "size_variation": args.size_variation,
            "delay": units.to_us(args.delay),
        }


class LimitData(ToxicFault[LimitDataArgs], args=LimitDataArgs):
    name = "toxiproxy.limit_data"
    summary = "Close connections after `bytes` bytes."
    kind = "limit_data"

    def attributes(self, args: LimitDataArgs) -> dict[str, int]:
        return {"bytes": args.bytes}


class Toxic(ToxicFault[GenericToxicArgs], args=GenericToxicArgs):
    name = "toxiproxy.toxic"
    summary = "Any toxic by type and raw attributes."
    kind = "toxic"

    def toxic_type(self, args: GenericToxicArgs) -> str:
        return args.type

    def attributes(self, args: GenericToxicArgs) -> dict[str, int]:
        return dict(args.attributes)


FAULTS = (Latency(), Bandwidth(), SlowClose(), Timeout(), ResetPeer(), Slicer(), LimitData(), Toxic())
