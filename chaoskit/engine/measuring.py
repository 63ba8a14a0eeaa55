"""Continuous measurement: the experiment's ``measure`` probes, sampled every interval from the
start of the method until recovery is judged, each sample journaled and never judged.

Sampling runs beside the run as background tasks, through the runner's ``call`` and clock (so
``testing.FakeClock`` runs it in virtual time): it never holds up a step or a guard. One sample
of a measure is in flight at a time; a tick that finds it still running is skipped and counted,
so a slow probe thins the samples instead of piling up load on the system under test.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from chaoskit.drivers import contract
from chaoskit.engine import events, faultbooks, journals, planning
from chaoskit.spec import models, paths

Call = Callable[[Callable[[], Any], float | None], Awaitable[Any]]


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def values_of(activity: str, output: JsonValue, keep: Mapping[str, str]) -> dict[str, float | None]:
    """The few numbers of one probe output that a sample keeps: ``keep``'s paths when given, else
    p50/p99 latency and error ratio for ``http.load``, else the output's ``value`` or the output
    itself when it is a number. A path that is missing gives None (a gap in the plot)."""
    if keep:
        kept: dict[str, float | None] = {}
        for label, path in keep.items():
            try:
                kept[label] = _number(paths.lookup(output, paths.parse(path)))
            except paths.PathError:
                kept[label] = None
        return kept
    if activity == "http.load" and isinstance(output, dict):
        latency = output.get("latency_ms")
        latency = latency if isinstance(latency, dict) else {}
        requests = _number(output.get("requests"))
        successes = _number(output.get("successes"))
        ratio = None
        if requests and successes is not None:
            ratio = round(max(0.0, requests - successes) / requests, 6)
        return {
            "p50_ms": _number(latency.get("p50")),
            "p99_ms": _number(latency.get("p99")),
            "error_ratio": ratio,
            "requests": requests,
        }
    if isinstance(output, dict) and "value" in output:
        return {"value": _number(output["value"])}
    return {"value": _number(output)}


@dataclass
class _Sampler:
    planned: planning.PlannedStep
    measure: models.Measure
    ctx: contract.RunContext
    taken: int = 0
    skipped: int = 0
    task: asyncio.Task[None] | None = None
    in_flight: asyncio.Task[None] | None = None


@dataclass
class Measuring:
    """The run's measures: ``start`` when the method starts, ``stop`` once recovery is judged (or
    the run stops); each emits ``Sampled`` per sample and ``MeasureEnded`` at its end."""

    planned: Sequence[planning.PlannedStep]
    measures: Sequence[models.Measure]
    bus: events.Bus
    clock: Any
    call: Call
    arguments: Callable[[planning.PlannedStep], contract.Args]
    ctx: Callable[[int], contract.RunContext]
    """The context of measure ``index``: its own random seed and cancel event."""
    at: Callable[[], datetime]
    _samplers: list[_Sampler] = field(default_factory=list)
    _stopped: bool = False

    def start(self) -> None:
        if self._samplers or self._stopped:
            return
        for index, (planned, measure) in enumerate(zip(self.planned, self.measures, strict=True)):
            sampler = _Sampler(planned, measure, self.ctx(index))
            sampler.task = asyncio.ensure_future(self._loop(sampler))
            self._samplers.append(sampler)

    async def stop(self, *, wait: bool = True) -> None:
        """Stop every measure: no new tick; with ``wait``, a sample already running may finish
        (for at most one interval, so the last sample shows the recovered system), then it is
        abandoned and its probe asked to stop. A stopped run does not wait for it at all."""
        if self._stopped:
            return
        self._stopped = True
        for sampler in self._samplers:
            if sampler.task is not None:
                sampler.task.cancel()
        running = [s.in_flight for s in self._samplers if s.in_flight is not None and not s.in_flight.done()]
        if running and wait:
            finished = asyncio.gather(*running, return_exceptions=True)
            grace = asyncio.ensure_future(self.clock.sleep(max(s.measure.every for s in self._samplers)))
            try:
                await asyncio.wait({finished, grace}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                grace.cancel()
        for sampler in self._samplers:
            sampler.ctx.cancel.set()
            if sampler.in_flight is not None:
                sampler.in_flight.cancel()
        tasks = [t for s in self._samplers for t in (s.task, s.in_flight) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        for sampler in self._samplers:
            self.bus.emit(
                events.MeasureEnded(
                    journals.MeasureRecord(
                        name=sampler.planned.label,
                        activity=sampler.measure.activity,
                        every=sampler.measure.every,
                        samples=sampler.taken,
                        skipped=sampler.skipped,
                    )
                )
            )

    async def _loop(self, sampler: _Sampler) -> None:
        every = sampler.measure.every
        next_tick = self.clock.now()
        while True:
            if sampler.in_flight is None or sampler.in_flight.done():
                sampler.in_flight = asyncio.ensure_future(self._sample(sampler))
            else:
                sampler.skipped += 1
            next_tick += every  # a steady cadence, however long a sample takes
            await self.clock.sleep(max(0.0, next_tick - self.clock.now()))

    async def _sample(self, sampler: _Sampler) -> None:
        planned = sampler.planned
        probe = planned.activity
        assert isinstance(probe, contract.Probe)
        at = self.at()
        began = self.clock.now()
        values: dict[str, float | None] = {}
        error: str | None = None
        try:
            args = self.arguments(planned)
            output = await self.call(functools.partial(probe.run, args, sampler.ctx), planned.timeout)
            values = values_of(probe.name, output, sampler.measure.keep)
        except Exception as e:  # a sample is never judged: even a driver bug is only its error
            error = faultbooks.describe_error(e)
        sampler.taken += 1
        self.bus.emit(
            events.Sampled(
                journals.Sample(
                    measure=planned.label,
                    at=at,
                    elapsed=max(0.0, self.clock.now() - began),
                    values=values,
                    error=error,
                )
            )
        )
