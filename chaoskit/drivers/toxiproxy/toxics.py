"""The toxiproxy faults: one toxic on one proxy, named after the run so leftovers can be found;
and ``toxiproxy.down``, which disables a proxy.

A toxic is named ``chaoskit-<run id>-<random>-<type>``; ``prepare`` records the server URL, the
proxy and that name, so ``revert`` (here or in ``chaoskit recover``) deletes exactly it, and
``sweep`` finds any a crashed run left behind without its ledger. Each toxic is its own object,
so toxic faults capture no state; ``toxiproxy.down`` records whether the proxy was enabled and
its revert restores exactly that.
"""

from __future__ import annotations

import os
import urllib.parse
from abc import abstractmethod
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients
from chaoskit.durations import Duration

PREFIX = "chaoskit-"


def client(url: str, ctx: contract.RunContext) -> clients.Client:
    """The run's shared client for ``url``."""
    return ctx.resource(f"toxiproxy:{url}", lambda: clients.Client(url), clients.Client.close)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def toxic_name(run_id: str, kind: str) -> str:
    return f"{PREFIX}{run_id}-{os.urandom(3).hex()}-{kind}"


DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint(url: str) -> str:
    """``host:port`` of the Toxiproxy API at ``url``, as ``Action.serves`` names a listener:
    ``localhost`` is 127.0.0.1, IPv6 is in brackets, a missing port is the scheme's default."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "127.0.0.1").lower()
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:  # a port that is not a number: the client will say so when it is used
        return f"{host}:{parts.netloc.rpartition(':')[2]}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_key(url: str) -> str:
    """The API at ``url`` in lease keys: one server written two ways (``localhost``,
    ``127.0.0.1:8474/``) is one key."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    return f"{parts.scheme or 'http'}://{endpoint(url)}{parts.path.rstrip('/')}"


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


class ProxyRevert(contract.Revert):
    """A proxy on one Toxiproxy server."""

    model_config = ConfigDict(strict=True)
    url: str = Field(min_length=1)
    """The Toxiproxy API the fault was made through."""
    proxy: str = Field(min_length=1)
    """The proxy's name on that server."""


class ToxicRevert(ProxyRevert):
    """One toxic, which the revert deletes."""

    toxic: str = Field(min_length=1)
    """The toxic's name, ``chaoskit-<run id>-<random>-<type>``."""


class DownRevert(ProxyRevert):
    """A disabled proxy, and the state to put back."""

    was_enabled: bool
    """Whether the proxy was enabled before the fault: the revert sets exactly this again."""


class ProxyArgs(contract.Args):
    proxy: str = Field(min_length=1)
    """The proxy's name on the server, e.g. ``backend``."""
    url: str = clients.DEFAULT_URL
    """The Toxiproxy API (chaoskit's embedded server by default)."""


class ToxicArgs(ProxyArgs):
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


def _target(args: ProxyArgs, ctx: contract.RunContext) -> contract.Target:
    if not ctx.dry_run:
        find_proxy(args.url, args.proxy, ctx)
    return contract.Target(
        kind="toxiproxy proxy", id=f"{args.url}#{args.proxy}", name=args.proxy, detail={"url": args.url}
    )


class ToxicFault(contract.Fault[TA, ToxicRevert], Generic[TA]):
    """Adds one toxic; reverting deletes it."""

    kind: ClassVar[str]
    revert_type = ToxicRevert
    # Each toxic is its own named object, removed by its own revert: nothing to hand over.
    captures_state = False

    @abstractmethod
    def attributes(self, args: TA) -> dict[str, int]:
        """The toxic's attributes as the server takes them."""

    def toxic_type(self, args: TA) -> str:
        return self.kind

    def lease(self, args: TA, target: contract.Target) -> str:
        return f"toxiproxy.{self.toxic_type(args)}@{server_key(args.url)}#{args.proxy}/{args.stream}"

    def endpoint(self, revert: ToxicRevert) -> str:
        return endpoint(revert.url)

    def targets(self, args: TA, ctx: contract.RunContext) -> list[contract.Target]:
        return [_target(args, ctx)]

    def prepare(self, args: TA, target: contract.Target, ctx: contract.RunContext) -> ToxicRevert:
        return ToxicRevert(
            url=args.url, proxy=args.proxy, toxic=toxic_name(ctx.run_id, self.toxic_type(args))
        )

    def inject(
        self, args: TA, target: contract.Target, revert: ToxicRevert, ctx: contract.RunContext
    ) -> ToxicRevert:
        client(args.url, ctx).add_toxic(
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
        removed = client(revert.url, ctx).remove_toxic(revert.proxy, revert.toxic)
        return contract.RevertOutcome.REVERTED if removed else contract.RevertOutcome.ALREADY_CLEAN


def find_proxy(url: str, proxy: str, ctx: contract.RunContext) -> clients.ProxyInfo:
    try:
        return client(url, ctx).proxy(proxy)
    except clients.ApiError as e:
        if e.status != 404:
            raise
        known = ", ".join(sorted(client(url, ctx).proxies())) or "none"
        raise errors.TargetError(
            f"toxiproxy at {url} has no proxy named {proxy!r} (it has: {known})",
            hint="create it in setup: with the toxiproxy.proxy action, or fix `proxy:`",
        ) from e


class Latency(ToxicFault[LatencyArgs]):
    name = "toxiproxy.latency"
    summary = "Delay data through a proxy (latency ± jitter)."
    args = LatencyArgs
    kind = "latency"

    def attributes(self, args: LatencyArgs) -> dict[str, int]:
        return {"latency": ms(args.latency), "jitter": ms(args.jitter)}


class Bandwidth(ToxicFault[BandwidthArgs]):
    name = "toxiproxy.bandwidth"
    summary = "Limit a proxy's throughput to `rate` KB/s."
    args = BandwidthArgs
    kind = "bandwidth"

    def attributes(self, args: BandwidthArgs) -> dict[str, int]:
        return {"rate": args.rate}


class SlowClose(ToxicFault[SlowCloseArgs]):
    name = "toxiproxy.slow_close"
    summary = "Hold back connection closes by `delay`."
    args = SlowCloseArgs
    kind = "slow_close"

    def attributes(self, args: SlowCloseArgs) -> dict[str, int]:
        return {"delay": ms(args.delay)}


class Timeout(ToxicFault[TimeoutArgs]):
    name = "toxiproxy.timeout"
    summary = "Black-hole data; close idle connections after `timeout` (0: never)."
    args = TimeoutArgs
    kind = "timeout"

    def attributes(self, args: TimeoutArgs) -> dict[str, int]:
        return {"timeout": ms(args.timeout)}


class ResetPeer(ToxicFault[ResetPeerArgs]):
    name = "toxiproxy.reset_peer"
    summary = "Reset connections (TCP RST) `timeout` after data arrives."
    args = ResetPeerArgs
    kind = "reset_peer"

    def attributes(self, args: ResetPeerArgs) -> dict[str, int]:
        return {"timeout": ms(args.timeout)}


class Slicer(ToxicFault[SlicerArgs]):
    name = "toxiproxy.slicer"
    summary = "Cut data into small slices, with a delay between them."
    args = SlicerArgs
    kind = "slicer"

    def attributes(self, args: SlicerArgs) -> dict[str, int]:
        return {
            "average_size": args.average_size,
            "size_variation": args.size_variation,
            "delay": round(args.delay * 1_000_000),
        }


class LimitData(ToxicFault[LimitDataArgs]):
    name = "toxiproxy.limit_data"
    summary = "Close connections after `bytes` bytes."
    args = LimitDataArgs
    kind = "limit_data"

    def attributes(self, args: LimitDataArgs) -> dict[str, int]:
        return {"bytes": args.bytes}


class Toxic(ToxicFault[GenericToxicArgs]):
    name = "toxiproxy.toxic"
    summary = "Any toxic by type and raw attributes."
    args = GenericToxicArgs
    kind = "toxic"

    def toxic_type(self, args: GenericToxicArgs) -> str:
        return args.type

    def attributes(self, args: GenericToxicArgs) -> dict[str, int]:
        return dict(args.attributes)


class Down(contract.Fault[ProxyArgs, DownRevert]):
    name = "toxiproxy.down"
    summary = "Disable a proxy: open connections close, new ones are refused."
    args = ProxyArgs
    revert_type = DownRevert
    # ``enabled`` is one state per proxy: overlapping downs (allowed explicitly) hand the first
    # one's ``was_enabled`` to the last one out.
    captures_state = True

    def lease(self, args: ProxyArgs, target: contract.Target) -> str:
        return f"{self.name}@{server_key(args.url)}#{args.proxy}"

    def endpoint(self, revert: DownRevert) -> str:
        return endpoint(revert.url)

    def targets(self, args: ProxyArgs, ctx: contract.RunContext) -> list[contract.Target]:
        return [_target(args, ctx)]

    def prepare(self, args: ProxyArgs, target: contract.Target, ctx: contract.RunContext) -> DownRevert:
        was_enabled = find_proxy(args.url, args.proxy, ctx)["enabled"]
        return DownRevert(url=args.url, proxy=args.proxy, was_enabled=was_enabled)

    def inject(
        self, args: ProxyArgs, target: contract.Target, revert: DownRevert, ctx: contract.RunContext
    ) -> DownRevert:
        client(args.url, ctx).update_proxy(args.proxy, enabled=False)
        ctx.log(f"proxy {args.proxy} at {args.url} disabled")
        return revert

    def revert(self, revert: DownRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        # Exactly the recorded state, whatever the proxy shows now: which record reaches the last
        # revert of overlapping downs is the engine's hand-over (captures_state), not ours to guess.
        return set_enabled(client(revert.url, ctx), revert.proxy, revert.was_enabled)


FAULTS: list[contract.Fault[Any, Any]] = [
    Latency(),
    Bandwidth(),
    SlowClose(),
    Timeout(),
    ResetPeer(),
    Slicer(),
    LimitData(),
    Toxic(),
    Down(),
]


def sweep_urls() -> list[str]:
    """The servers ``sweep`` looks at: the default one, and any in CHAOSKIT_TOXIPROXY_URLS/TOXIPROXY_URL."""
    urls = [clients.DEFAULT_URL]
    for variable in ("CHAOSKIT_TOXIPROXY_URLS", "TOXIPROXY_URL"):
        urls.extend(u.strip().rstrip("/") for u in os.environ.get(variable, "").split(",") if u.strip())
    return list(dict.fromkeys(urls))


def owner_of(toxic: str) -> str | None:
    """The run id in a toxic name ``chaoskit-<run id>-<hex>-<type>``, or None for another name."""
    if not toxic.startswith(PREFIX):
        return None
    parts = toxic[len(PREFIX) :].rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None


def sweep(run_id: str | None, ctx: contract.RunContext, urls: list[str] | None = None) -> list[str]:
    """Delete toxics named for ``run_id`` on every known server; without a run id, those of runs
    whose ledger here is dead. A live run's toxics are its own; a run with no ledger here is named,
    with the command that sweeps it."""
    done: list[str] = []
    skipped: dict[str, str] = {}
    for url in urls or sweep_urls():
        api = clients.Client(url, attempts=1)
        try:
            for proxy in api.proxies().values():
                for toxic in proxy.get("toxics") or []:
                    owner = owner_of(toxic["name"])
                    if owner is None or (run_id is not None and owner != run_id):
                        continue
                    state = ctx.run_state(owner)
                    if state == "live" or (state == "unknown" and run_id is None):
                        skipped[owner] = state
                        continue
                    if api.remove_toxic(proxy["name"], toxic["name"]):
                        done.append(f"removed toxic {toxic['name']} from proxy {proxy['name']} at {url}")
        except clients.Unreachable:
            continue
        finally:
            api.close()
    for owner, state in sorted(skipped.items()):
        why = "it is live" if state == "live" else f"no ledger for it here (chaoskit recover {owner} --sweep)"
        done.append(f"skipped the toxics of run {owner}: {why}")
    return done
