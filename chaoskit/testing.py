"""Run the engine without a network: a fake clock (virtual time), a scriptable fake driver, and
``run_experiment`` to run a whole experiment with them. For users' tests and for ours.

    fake = testing.FakeDriver()
    fake.script("latency", lambda t: 120 if t < 5 else 40)      # a probe value over virtual time
    journal = testing.run_experiment(yaml_text, drivers=[fake.driver()], clock=fake.clock)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import Field, JsonValue, StrictBool

from chaoskit import errors
from chaoskit.drivers import contract, registry, targeting
from chaoskit.engine import clocks, events, journals, planning, running
from chaoskit.spec import models, reading, templates

T = TypeVar("T")

_QUIET_ROUNDS = 30
"""Event-loop turns with nothing happening before virtual time may move: enough for any chain of
wake-ups (a task ending, the one awaiting it resuming, ...) to settle."""


class FakeClock:
    """Virtual time for ``clocks.Clock``: ``sleep`` returns as soon as every task is waiting on the
    clock and no driver call is in flight, with time moved forward to the earliest wake-up. A run
    with ``duration: 1h`` finishes in milliseconds, and the order of events is exact."""

    def __init__(self, start: float = 0.0, wall_start: datetime | None = None) -> None:
        self._now = start
        self._wall0 = (wall_start or datetime(2026, 1, 1, tzinfo=UTC)).timestamp() - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._activity = 0
        self._advancer: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall0 + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (for probes that read ``now`` outside a run)."""
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self._activity += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        if self._advancer is None or self._advancer.done():
            self._advancer = asyncio.ensure_future(self._advance())
        try:
            await future
        finally:
            self._activity += 1

    async def blocking(self, call: Callable[[], T]) -> T:
        self._busy += 1
        self._activity += 1
        try:
            return await asyncio.to_thread(call)
        finally:
            self._busy -= 1
            self._activity += 1

    async def _advance(self) -> None:
        while True:
            quiet = 0
            seen = self._activity
            while quiet < _QUIET_ROUNDS:
                if self._busy:
                    await asyncio.sleep(0.001)  # real time: a driver call is running in a thread
                    quiet = 0
                else:
                    await asyncio.sleep(0)
                    quiet += 1
                if self._activity != seen:
                    seen, quiet = self._activity, 0
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleeps
            if not self._sleepers:
                return
            wake = self._sleepers[0][0]
            self._now = max(self._now, wake)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)


# ---- the fake driver -------------------------------------------------------------------------


class ValueArgs(contract.Args):
    key: str = "value"
    """Which scripted value to return (``FakeDriver.script``)."""
    echo: JsonValue = None
    """Returned as is instead, when given (e.g. to check that a secret is redacted)."""


class StatusArgs(contract.Args):
    pass


class BreakArgs(contract.Args):
    targets: list[str] = Field(default_factory=lambda: ["t1"])
    count: int | None = None
    """Pick this many of ``targets`` at random, with the step's seeded RNG."""
    fail_inject: bool = False
    fail_revert: bool = False


class MarkerArgs(contract.Args):
    path: str
    """A file created on inject and removed on revert: a fault that outlives its process."""


class DoArgs(contract.Args):
    output: JsonValue = None
    fail: bool = False
    leave: str | None = None
    """Leave something behind under this name, undone after teardown."""


@dataclass
class FakeDriver:
    """A ``contract.Driver`` named ``fake`` whose behaviour the test scripts, with a call log.

    * probe ``fake.value``  returns ``script(key)``'s function of virtual time (or ``echo``).
    * probe ``fake.status`` returns 503 while any ``fake.break`` fault is applied and for
      ``recovery_delay`` seconds after the last revert, else 200.
    * fault ``fake.break``  on ``targets``; ``fail_inject``/``fail_revert`` make it raise.
    * fault ``fake.marker`` creates a file, removed on revert (survives a crash of the runner).
    * fault ``fake.kill``   self-healing; ``fake.destroy`` irreversible.
    * action ``fake.do``    returns ``output``; ``leave: name`` leaves an undo record.
    """

    clock: FakeClock = field(default_factory=FakeClock)
    recovery_delay: float = 0.0
    calls: list[tuple[str, str]] = field(default_factory=list)
    """``(what, detail)`` in call order: ``("inject", "t1")``, ``("revert", "t1")``, ``("probe", key)``."""
    applied: set[str] = field(default_factory=set)
    last_revert: float | None = None
    scripts: dict[str, Callable[[float], JsonValue]] = field(default_factory=dict)

    def script(self, key: str, value: Callable[[float], JsonValue]) -> None:
        self.scripts[key] = value

    def healthy(self) -> bool:
        if self.applied:
            return False
        return self.last_revert is None or self.clock.now() >= self.last_revert + self.recovery_delay

    def driver(self) -> contract.Driver:
        return contract.Driver(
            name="fake",
            summary="a scriptable fake for tests (chaoskit.testing)",
            faults=[_Break(self), _Marker(self), _Kill(self), _Destroy(self)],
            probes=[_Value(self), _Status(self)],
            actions=[_Do(self)],
            sweep=self._sweep,
        )

    def _sweep(self, run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
        self.calls.append(("sweep", run_id or "*"))
        return [f"fake: nothing left of run {run_id}"] if run_id else ["fake: nothing left"]

    def registry(self, *extra: contract.Driver) -> registry.Registry:
        return registry.build([self.driver(), *extra])


class _Value(contract.Probe[ValueArgs], args=ValueArgs):
    name = "fake.value"
    summary = "a scripted value of virtual time"

    def __init__(self, fake: FakeDriver) -> None:
        self.fake = fake

    def run(self, args: ValueArgs, ctx: contract.RunContext) -> contract.JsonValue:
        self.fake.calls.append(("probe", args.key))
        if args.echo is not None:
            return args.echo
        if args.key not in self.fake.scripts:
            raise errors.DriverError(f"fake.value: nothing scripted for {args.key!r}")
        return self.fake.scripts[args.key](self.fake.clock.now())


class _Status(contract.Probe[StatusArgs], args=StatusArgs):
    name = "fake.status"
    summary = "200 when healthy, 503 while broken or recovering"

    def __init__(self, fake: FakeDriver) -> None:
        self.fake = fake

    def run(self, args: StatusArgs, ctx: contract.RunContext) -> contract.JsonValue:
        self.fake.calls.append(("probe", "status"))
        return {"status": 200 if self.fake.healthy() else 503}


class BreakRevert(contract.Revert):
    """What undoes ``fake.break`` (and ``fake.kill``, ``fake.destroy``) on one target."""

    target: str
    """The id of the fake target that was broken."""
    fail_revert: StrictBool = False
    """Make the revert raise (the step's ``fail_revert``), to test a revert that fails."""


class MarkerRevert(contract.Revert):
    """What undoes ``fake.marker``."""

    path: str
    """The file inject created, removed on revert."""


class _Break(contract.Fault[BreakArgs, BreakRevert], args=BreakArgs, revert=BreakRevert):
    name = "fake.break"
    summary = "marks targets broken until reverted"

    def __init__(self, fake: FakeDriver) -> None:
        self.fake = fake

    def targets(self, args: BreakArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        found = [contract.Target(kind="fake", id=t, name=t) for t in args.targets]
        if args.count is None:
            return found
        return targeting.choose(found, targeting.Selection(count=args.count), ctx.rng)

    def prepare(self, args: BreakArgs, target: contract.Target, ctx: contract.RunContext) -> BreakRevert:
        return BreakRevert(target=target.id, fail_revert=args.fail_revert)

    def inject(
        self, args: BreakArgs, target: contract.Target, revert: BreakRevert, ctx: contract.RunContext
    ) -> BreakRevert:
        self.fake.calls.append(("inject", target.id))
        if args.fail_inject:
            raise errors.DriverError(f"fake.break on {target.id}: the fake was told to fail")
        self.fake.applied.add(target.id)
        return revert

    def revert(self, revert: BreakRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        target = revert.target
        self.fake.calls.append(("revert", target))
        if revert.fail_revert:
            raise errors.DriverError(f"fake.break on {target}: revert told to fail")
        if target not in self.fake.applied:
            return contract.RevertOutcome.ALREADY_CLEAN
        self.fake.applied.discard(target)
        self.fake.last_revert = self.fake.clock.now()
        return contract.RevertOutcome.REVERTED


class _Marker(contract.Fault[MarkerArgs, MarkerRevert], args=MarkerArgs, revert=MarkerRevert):
    name = "fake.marker"
    summary = "creates a file, removed on revert"

    def __init__(self, fake: FakeDriver) -> None:
        self.fake = fake

    def targets(self, args: MarkerArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return [contract.Target(kind="file", id=args.path, name=args.path)]

    def prepare(self, args: MarkerArgs, target: contract.Target, ctx: contract.RunContext) -> MarkerRevert:
        return MarkerRevert(path=args.path)

    def inject(
        self, args: MarkerArgs, target: contract.Target, revert: MarkerRevert, ctx: contract.RunContext
    ) -> MarkerRevert:
        self.fake.calls.append(("inject", revert.path))
        Path(revert.path).write_text(ctx.run_id)
        return revert

    def revert(self, revert: MarkerRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        path = Path(revert.path)
        self.fake.calls.append(("revert", str(path)))
        if not path.exists():
            return contract.RevertOutcome.ALREADY_CLEAN
        path.unlink()
        return contract.RevertOutcome.REVERTED


class _Kill(_Break):
    name = "fake.kill"
    summary = "self-healing: nothing to revert"
    reversibility = contract.Reversibility.SELF_HEALING


class _Destroy(_Break):
    name = "fake.destroy"
    summary = "irreversible"
    reversibility = contract.Reversibility.IRREVERSIBLE


class _Do(contract.Action[DoArgs], args=DoArgs):
    name = "fake.do"
    summary = "returns its output; may leave something to undo"

    def __init__(self, fake: FakeDriver) -> None:
        self.fake = fake

    def run(self, args: DoArgs, ctx: contract.RunContext) -> contract.ActionResult:
        self.fake.calls.append(("action", str(args.output)))
        if args.fail:
            raise errors.DriverError("fake.do: told to fail")
        undo: contract.RevertData | None = {"left": args.leave} if args.leave else None
        return contract.ActionResult(output=args.output, undo=undo)

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        self.fake.calls.append(("undo", str(data["left"])))
        return contract.RevertOutcome.REVERTED


# ---- running a whole experiment --------------------------------------------------------------


def source(
    doc_or_yaml: str | Mapping[str, Any] | models.Experiment,
    name: str = "<experiment>",
    *,
    variables: Mapping[str, JsonValue] | None = None,
) -> planning.Source:
    """An experiment from YAML text, a dict or a model, loaded as ``chaoskit run`` loads a file
    (variables, templates, problems with positions), for ``planning.plan``."""
    if isinstance(doc_or_yaml, models.Experiment):
        return planning.Document(doc_or_yaml, name)
    text = doc_or_yaml if isinstance(doc_or_yaml, str) else yaml.safe_dump(dict(doc_or_yaml), sort_keys=False)
    return reading.load_text(text, name=name, variables=variables)


def run_experiment(
    doc_or_yaml: str | Mapping[str, Any] | models.Experiment,
    drivers: Sequence[contract.Driver] = (),
    clock: clocks.Clock | None = None,
    *,
    seed: int = 0,
    state_dir: Path | None = None,
    secrets: Mapping[str, str] | None = None,
    subscribers: Sequence[events.Subscriber] = (),
    run_id: str | None = None,
) -> journals.Journal:
    """Plan and run an experiment with the given drivers (default: a fresh ``FakeDriver``) and a
    ``FakeClock``; returns the journal. The ledger goes to ``state_dir`` (a temp dir by default);
    secrets are read as the experiment declares them unless ``secrets`` gives their values."""
    if not drivers:
        fake = FakeDriver()
        drivers = [fake.driver()]
        clock = clock or fake.clock
    loaded = source(doc_or_yaml)
    planned = planning.plan(loaded, registry.build(drivers))
    secret_values = dict(secrets) if secrets is not None else templates.resolve_secrets(loaded.experiment)
    bus = events.Bus()
    for subscriber in subscribers:
        bus.subscribe(subscriber)
    with tempfile.TemporaryDirectory(prefix="chaoskit-state-") as tmp:
        settings = running.Settings(
            state_dir=state_dir or Path(tmp), seed=seed, secrets=secret_values, run_id=run_id
        )
        runner = running.Runner(planned, settings, clock=clock or FakeClock(), bus=bus)
        return asyncio.run(runner.run())
