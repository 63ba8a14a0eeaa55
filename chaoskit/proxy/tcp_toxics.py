"""The TCP toxic types (Toxiproxy's ``toxics/*.go``): each one's attributes and what it does to
the bytes, the end of the stream, and idle connections. See docs/proxy.md for the semantics.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import ClassVar

from chaoskit.proxy.toxic_types import Attribute, Chunk, Closing, Forward, Link, Stage, Toxic
from chaoskit.units import Unit, bytes_per_second, seconds

# uvloop's loop.time() ticks in whole milliseconds; the latency toxic needs better than that.
now = time.monotonic


class Paced(Stage[Toxic]):
    """A stage that holds chunks: it takes one on when it arrives or when the previous one is
    released, whichever is later (its own clock, as a goroutine per toxic would have)."""

    def __init__(self, toxic: Toxic, link: Link) -> None:
        super().__init__(toxic, link)
        self.free = 0.0
        """When this toxic released its previous chunk."""

    def start(self, chunk: Chunk) -> float:
        return max(chunk.ready, self.free)


@dataclass
class Noop(Toxic):
    kind: ClassVar[str] = "noop"


class LatencyStage(Paced):
    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        jitter = self.toxic.attributes["jitter"]
        # Whole milliseconds in [-jitter, jitter), rolled per chunk, as the real server does; a
        # jitter larger than the latency waits no time (it doesn't move the chunk's time back).
        offset = self.link.rng.randrange(-jitter, jitter) if jitter else 0
        delay = max(0, self.toxic.attributes["latency"] + offset)
        at = chunk.at + seconds(delay, Unit.MS)
        release = max(self.start(chunk), at)
        if await self.link.hold(self.toxic, release):
            self.free = release
            await forward(Chunk(chunk.data, at, release))
        else:
            # Removed or updated while holding: released now, its time not moved (as Toxiproxy).
            await forward(Chunk(chunk.data, chunk.at, now()))


@dataclass
class Latency(Toxic):
    kind: ClassVar[str] = "latency"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("latency", Unit.MS), Attribute("jitter", Unit.MS))
    stage: ClassVar[type[Stage[Toxic]]] = LatencyStage


class BandwidthStage(Paced):
    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        rate = bytes_per_second(self.toxic.attributes["rate"])
        step = rate // 10
        data = chunk.data
        release = self.start(chunk)
        # A chunk bigger than 100 ms worth goes out in 100 ms slices, like the real server; the
        # times are kept absolute, so a late wake-up is made up on the next slice.
        while len(data) > step:
            release += 0.1
            if not await self.link.hold(self.toxic, release):
                break
            await forward(Chunk(data[:step], chunk.at, release))
            data = data[step:]
        else:
            release += len(data) / rate
            if await self.link.hold(self.toxic, release):
                self.free = release
                await forward(Chunk(data, chunk.at, release))
                return
        await forward(Chunk(data, chunk.at, now()))  # removed or updated: the rest goes at once


@dataclass
class Bandwidth(Toxic):
    kind: ClassVar[str] = "bandwidth"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("rate", Unit.KB_PER_S, positive=True),)
    stage: ClassVar[type[Stage[Toxic]]] = BandwidthStage


class SlowCloseStage(Stage[Toxic]):
    async def end(self) -> None:
        await self.link.hold(self.toxic, now() + self.toxic.seconds("delay"))


@dataclass
class SlowClose(Toxic):
    kind: ClassVar[str] = "slow_close"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("delay", Unit.MS),)
    stage: ClassVar[type[Stage[Toxic]]] = SlowCloseStage


class TimeoutStage(Stage[Toxic]):
    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        # Data is dropped; each dropped chunk restarts the idle timer.
        self.link.restart(self.toxic)

    def deadline(self) -> float | None:
        if self.toxic.attributes["timeout"] <= 0:
            return None
        return self.link.started(self.toxic) + self.toxic.seconds("timeout")

    def removed(self) -> None:
        # The real server's timeout toxic closes its connections when it is removed.
        self.link.close()


@dataclass
class Timeout(Toxic):
    kind: ClassVar[str] = "timeout"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("timeout", Unit.MS),)
    stage: ClassVar[type[Stage[Toxic]]] = TimeoutStage


class ResetPeerStage(Stage[Toxic]):
    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        await self.end()

    async def end(self) -> None:
        await asyncio.sleep(self.toxic.seconds("timeout"))
        raise Closing(reset=True)


@dataclass
class ResetPeer(Toxic):
    kind: ClassVar[str] = "reset_peer"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("timeout", Unit.MS),)
    stage: ClassVar[type[Stage[Toxic]]] = ResetPeerStage
    resets: ClassVar[bool] = True


class SlicerStage(Paced):
    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        attributes = self.toxic.attributes
        pieces = slices(
            len(chunk.data), attributes["average_size"], attributes["size_variation"], self.link.rng
        )
        view = memoryview(chunk.data)
        release = self.start(chunk)
        delay = self.toxic.seconds("delay")
        for start, end in pieces:
            if not await self.link.hold(self.toxic, release):
                await forward(Chunk(bytes(view[start:]), chunk.at, now()))  # removed: the rest at once
                return
            await forward(Chunk(bytes(view[start:end]), chunk.at, release))
            # The real slicer waits ``delay`` µs after every piece, the last one included.
            release += delay
        self.free = release


@dataclass
class Slicer(Toxic):
    kind: ClassVar[str] = "slicer"
    schema: ClassVar[tuple[Attribute, ...]] = (
        Attribute("average_size", Unit.BYTES, positive=True),
        Attribute("size_variation", Unit.BYTES),
        Attribute("delay", Unit.US),
    )
    stage: ClassVar[type[Stage[Toxic]]] = SlicerStage


def slices(length: int, average: int, variation: int, rng: random.Random) -> list[tuple[int, int]]:
    """Cut ``[0, length)`` by halving, the midpoint shifted in [-variation, variation), until each
    piece is at most ``average + variation`` bytes (the real slicer's algorithm, without recursion)."""
    result: list[tuple[int, int]] = []
    pending = [(0, length)]
    while pending:
        start, end = pending.pop()
        if (end - start) - average <= variation or end - start <= 1:
            result.append((start, end))
            continue
        middle = start + (end - start) // 2
        if variation > 0:
            middle += rng.randrange(-variation, variation)
        middle = min(max(middle, start + 1), end - 1)
        pending.append((middle, end))
        pending.append((start, middle))
    return result


class LimitDataStage(Stage[Toxic]):
    def __init__(self, toxic: Toxic, link: Link) -> None:
        super().__init__(toxic, link)
        self.passed = 0
        """Bytes let through on this link so far (kept when the toxic is updated)."""

    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        limit = self.toxic.attributes["bytes"]
        data = chunk.data[: max(0, limit - self.passed)]
        if data:
            await forward(Chunk(data, chunk.at, chunk.ready))
            self.passed += len(data)
        if self.passed >= limit:
            raise Closing()


@dataclass
class LimitData(Toxic):
    kind: ClassVar[str] = "limit_data"
    schema: ClassVar[tuple[Attribute, ...]] = (Attribute("bytes", Unit.BYTES),)
    stage: ClassVar[type[Stage[Toxic]]] = LimitDataStage


TYPES: tuple[type[Toxic], ...] = (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, Noop)
"""In the order the API documents them."""
