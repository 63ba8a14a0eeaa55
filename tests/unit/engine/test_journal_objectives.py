"""The journal keeps the RPO/RTO a probe reports (``data.verify``): the last reading of each step,
from checks and method probes alike; outputs without the three numbers are not readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import JsonValue

from chaoskit.engine import events, journaling, journals
from chaoskit.engine.phases import Phase, StepKind

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _check(step: str, phase: Phase, value: JsonValue, seconds: int) -> events.CheckDone:
    return events.CheckDone(
        journals.CheckRecord(
            phase=phase,
            step=step,
            activity="data.verify",
            value=value,
            ok=True,
            elapsed=0.01,
            at=T0 + timedelta(seconds=seconds),
        )
    )


def _journal(builder: journaling.JournalBuilder) -> journals.Journal:
    return builder.journal(
        run_id="r",
        info=journals.ExperimentInfo(title="t"),
        started=T0,
        ended=T0,
        verdict=journals.Verdict.COMPLETED,
        reason="held",
        seed=1,
        ledger="l",
        secrets=(),
    )


def test_the_after_reading_replaces_the_before_one() -> None:
    builder = journaling.JournalBuilder()
    builder(_check("rpo", Phase.BEFORE, {"rpo_writes": 0, "rpo_seconds": 0, "rto_seconds": 0}, 0))
    builder(_check("rpo", Phase.AFTER, {"rpo_writes": 0, "rpo_seconds": 0, "rto_seconds": None}, 5))
    builder(
        _check(
            "rpo",
            Phase.AFTER,
            {
                "rpo_writes": 7,
                "rpo_seconds": 1.25,
                "rto_seconds": 3.5,
                "fault_at": "2026-12-07T09:00:02+00:00",
                "accepted_again_at": None,
            },
            6,
        )
    )
    (reading,) = _journal(builder).objectives
    assert (reading.phase, reading.rpo_writes, reading.rpo_seconds, reading.rto_seconds) == (
        Phase.AFTER,
        7,
        1.25,
        3.5,
    )
    assert reading.fault_at == T0 + timedelta(seconds=2)


def test_a_method_probe_reading_is_kept_and_other_outputs_are_not() -> None:
    builder = journaling.JournalBuilder()
    builder(_check("status", Phase.BEFORE, {"status": 200}, 0))
    builder(_check("odd", Phase.BEFORE, {"rpo_writes": "many", "rpo_seconds": 0, "rto_seconds": 0}, 0))
    builder(
        events.StepEnded(
            journals.StepRecord(
                phase=Phase.METHOD,
                index=2,
                name="read back",
                kind=StepKind.PROBE,
                activity="data.verify",
                status=journals.StepStatus.OK,
                started=T0,
                ended=T0,
                output={"rpo_writes": 0, "rpo_seconds": 0.0, "rto_seconds": 1.0},
            )
        )
    )
    assert [(r.step, r.rto_seconds) for r in _journal(builder).objectives] == [("read back", 1.0)]
