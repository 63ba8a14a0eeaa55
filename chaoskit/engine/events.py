"""The typed events a run emits, and the bus that hands them to subscribers (console, journal,
metrics, report timeline). Subscribing is one line: ``bus.subscribe(callback)``.

Events are already redacted when a subscriber sees them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from chaoskit.drivers import contract
from chaoskit.engine import journals, phases

Phase = phases.Phase


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    title: str
    file: str | None
    seed: int
    ledger: str
    at: datetime


@dataclass(frozen=True)
class PhaseStarted:
    phase: Phase
    at: datetime


@dataclass(frozen=True)
class StepStarted:
    phase: Phase
    index: int
    name: str
    kind: phases.StepKind
    activity: str
    background: bool
    at: datetime


@dataclass(frozen=True)
class StepEnded:
    record: journals.StepRecord


@dataclass(frozen=True)
class FaultInjected:
    step: str
    activity: str
    target: contract.Target
    duration: float | None
    at: datetime


@dataclass(frozen=True)
class FaultReverted:
    step: str
    activity: str
    target: contract.Target
    status: journals.RevertStatus
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class CheckDone:
    record: journals.CheckRecord


@dataclass(frozen=True)
class GuardTripped:
    trip: journals.GuardTrip


@dataclass(frozen=True)
class RecoveryPolled:
    poll: int
    held: bool
    elapsed: float
    """Seconds since the last revert."""
    at: datetime


@dataclass(frozen=True)
class RecoveryDone:
    record: journals.RecoveryRecord


@dataclass(frozen=True)
class Sampled:
    """A ``measure`` took one sample."""

    sample: journals.Sample


@dataclass(frozen=True)
class MeasureEnded:
    """A ``measure`` stopped sampling (recovery was judged, or the run stopped)."""

    record: journals.MeasureRecord


@dataclass(frozen=True)
class UndoDone:
    record: journals.UndoRecord


@dataclass(frozen=True)
class ErrorRaised:
    record: journals.ErrorRecord


@dataclass(frozen=True)
class Log:
    message: str
    at: datetime


@dataclass(frozen=True)
class StillApplied:
    """A second Ctrl-C while reverting: what is still applied, and the command that takes it back."""

    faults: list[str]
    command: str


@dataclass(frozen=True)
class Halted:
    """The run saw a halt lever pulled (it stops, or was refused): who, when, why, which lever."""

    by: str
    reason: str
    since: str
    """When the lever was pulled (ISO 8601, as the lever says)."""
    lever: str
    at: datetime


@dataclass(frozen=True)
class VerdictReached:
    verdict: journals.Verdict
    exit_code: int
    reason: str
    at: datetime


Event: TypeAlias = (
    RunStarted
    | PhaseStarted
    | StepStarted
    | StepEnded
    | FaultInjected
    | FaultReverted
    | CheckDone
    | GuardTripped
    | RecoveryPolled
    | RecoveryDone
    | Sampled
    | MeasureEnded
    | UndoDone
    | ErrorRaised
    | Log
    | StillApplied
    | Halted
    | VerdictReached
)
Subscriber: TypeAlias = Callable[[Event], None]


@dataclass
class Bus:
    """Hands every event, redacted, to every subscriber in subscription order."""

    secrets: tuple[str, ...] = ()
    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    failures: list[str] = field(default_factory=list)
    """Subscribers that raised: a broken console or exporter must not stop faults reverting, so
    the error is kept here (the runner turns it into an ``error`` verdict) and delivery goes on."""

    def emit(self, event: Event) -> None:
        event = redact(event, self.secrets)
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as e:
                self.failures.append(
                    f"{type(event).__name__} subscriber {subscriber!r}: {type(e).__name__}: {e}"
                )


def redact(event: Event, secrets: Iterable[str]) -> Event:
    secrets = tuple(secrets)
    if not secrets:
        return event
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, contract.Target):
            value = contract.Target.from_json(journals.redact(value.to_json(), secrets))
        else:
            value = journals.redact(value, secrets)
        changes[f.name] = value
    return dataclasses.replace(event, **changes)
