"""The journal of one run, assembled from its events: every check, step, fault, trip, sample and
error as it happened, then the verdict."""

from __future__ import annotations

from datetime import datetime

from pydantic import JsonValue

import chaoskit
from chaoskit.engine import events, journals, phases, verdicts

Phase = phases.Phase


class JournalBuilder:
    """Subscribes to a run's events and assembles the journal."""

    def __init__(self) -> None:
        self.checks: list[journals.CheckRecord] = []
        self.steps: list[journals.StepRecord] = []
        self.rollbacks: list[journals.StepRecord] = []
        self.teardown: list[journals.StepRecord] = []
        self.faults: list[journals.FaultRecord] = []
        self.trips: list[journals.GuardTrip] = []
        self.undo: list[journals.UndoRecord] = []
        self.errors: list[journals.ErrorRecord] = []
        self.recovery: journals.RecoveryRecord | None = None
        self.measures: list[journals.MeasureRecord] = []
        self.samples: list[journals.Sample] = []
        self.objectives: dict[str, journals.ObjectivesRecord] = {}
        self._open: dict[tuple[str, str, str], list[int]] = {}

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.CheckDone(record=record):
                self.checks.append(record)
                self._objectives(record.value, record.step, record.activity, record.phase, record.at)
            case events.StepEnded(record=record):
                self._objectives(record.output, record.name, record.activity, record.phase, record.ended)
                {Phase.ROLLBACKS: self.rollbacks, Phase.TEARDOWN: self.teardown}.get(
                    record.phase, self.steps
                ).append(record)
            case events.FaultInjected():
                key = (event.step, event.activity, event.target.id)
                self._open.setdefault(key, []).append(len(self.faults))
                self.faults.append(
                    journals.FaultRecord(
                        step=event.step,
                        activity=event.activity,
                        target=journals.TargetInfo.model_validate(event.target.to_json()),
                        injected_at=event.at,
                        duration=event.duration,
                    )
                )
            case events.FaultReverted():
                key = (event.step, event.activity, event.target.id)
                if self._open.get(key):
                    index = self._open[key].pop(0)
                    self.faults[index] = self.faults[index].model_copy(
                        update={"reverted_at": event.at, "revert": event.status, "revert_error": event.error}
                    )
            case events.GuardTripped(trip=trip):
                self.trips.append(trip)
            case events.RecoveryDone(record=record):
                self.recovery = record
            case events.UndoDone(record=record):
                self.undo.append(record)
            case events.ErrorRaised(record=record):
                self.errors.append(record)
            case events.Sampled(sample=sample):
                self.samples.append(sample)
            case events.MeasureEnded(record=record):
                self.measures.append(record)
            case _:
                pass

    def _objectives(self, value: JsonValue, step: str, activity: str, phase: Phase, at: datetime) -> None:
        reading = journals.objectives_of(value, step=step, activity=activity, phase=phase, at=at)
        if reading is not None:
            self.objectives.pop(step, None)  # the last reading of a step, in reading order
            self.objectives[step] = reading

    def journal(
        self,
        *,
        run_id: str,
        info: journals.ExperimentInfo,
        started: datetime,
        ended: datetime,
        verdict: journals.Verdict,
        reason: str,
        seed: int,
        ledger: str,
        secrets: tuple[str, ...],
    ) -> journals.Journal:
        """The journal so far, with the verdict, every secret's value redacted."""
        journal = journals.Journal(
            run_id=run_id,
            chaoskit_version=chaoskit.__version__,
            experiment=info,
            started=started,
            ended=ended,
            verdict=verdict,
            exit_code=int(verdicts.EXIT_CODES[verdict]),
            reason=reason,
            seed=seed,
            ledger=ledger,
            checks=self.checks,
            steps=self.steps,
            faults=self.faults,
            guard_trips=self.trips,
            recovery=self.recovery,
            rollbacks=self.rollbacks,
            teardown=self.teardown,
            undo=self.undo,
            errors=self.errors,
            measures=self.measures,
            samples=self.samples,
            objectives=list(self.objectives.values()),
        )
        return journals.redact(journal, secrets)
