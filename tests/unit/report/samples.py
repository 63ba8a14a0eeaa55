"""Journals as the engine writes them, for the report tests: built through the real Journal model,
so a renamed field breaks these tests too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaoskit.engine import journals, phases

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def check(
    phase: phases.Phase,
    step: str,
    seconds: float,
    value: journals.JsonValue,
    ok: bool,
    *,
    expected: str = "status equals 200",
    poll: int | None = None,
    error: str | None = None,
) -> journals.CheckRecord:
    message = "" if ok else f"expected {expected}, got {value}"
    return journals.CheckRecord(
        phase=phase,
        step=step,
        activity="http.request",
        value=value,
        expected=[expected],
        ok=ok,
        message=message,
        elapsed=0.05,
        at=at(seconds),
        error=error,
        poll=poll,
    )


def journal(
    verdict: journals.Verdict = journals.Verdict.DEVIATED,
    *,
    title: str = "Checkout survives a stopped worker",
    file: str = "experiments/checkout.yaml",
    run_id: str = "run-1",
    recovered_in: float | None = 4.0,
    within: float = 30.0,
    started: datetime = T0,
    after_ok: bool = True,
    method_ok: bool = False,
) -> journals.Journal:
    P = phases.Phase
    checks = [
        check(P.BEFORE, "health ok", 0.5, {"status": 200, "elapsed": 0.01}, True),
        check(P.GUARD, "not on fire", 2.0, {"status": 200}, True, poll=0),
        check(P.GUARD, "not on fire", 3.0, {"status": 200}, True, poll=1),
        check(
            P.METHOD,
            "under fault",
            5.0,
            {"success_ratio": 0.93 if not method_ok else 1.0},
            method_ok,
            expected="success_ratio above 0.99",
        ),
        check(P.AFTER, "health ok", 11.0, {"status": 503}, False, poll=0),
        check(P.AFTER, "health ok", 12.0, {"status": 503}, False, poll=1),
        check(P.AFTER, "health ok", 14.0, {"status": 200 if after_ok else 503}, after_ok, poll=2),
    ]
    recovery = journals.RecoveryRecord(
        required=within,
        measured=recovered_in,
        met=recovered_in is not None and recovered_in <= within,
        polls=3,
    )
    exit_codes = {
        journals.Verdict.COMPLETED: 0,
        journals.Verdict.DEVIATED: 1,
        journals.Verdict.NOT_STEADY: 3,
        journals.Verdict.ERROR: 4,
        journals.Verdict.INTERRUPTED: 130,
    }
    return journals.Journal(
        run_id=run_id,
        chaoskit_version="0.1.0",
        experiment=journals.ExperimentInfo(title=title, file=file, tags=["checkout"]),
        started=started,
        ended=started + timedelta(seconds=16),
        verdict=verdict,
        exit_code=exit_codes[verdict],
        reason="a method probe's expect failed: under fault",
        seed=42,
        checks=[c.model_copy(update={"at": c.at - T0 + started}) for c in checks],
        faults=[
            journals.FaultRecord(
                step="stop worker",
                activity="process.stop",
                target=journals.TargetInfo(kind="process", id="4242", name="worker"),
                injected_at=started + timedelta(seconds=1),
                duration=9.0,
                reverted_at=started + timedelta(seconds=10),
                revert=journals.RevertStatus.REVERTED,
            )
        ],
        recovery=recovery,
    )


def not_steady() -> journals.Journal:
    return journals.Journal(
        run_id="run-ns",
        chaoskit_version="0.1.0",
        experiment=journals.ExperimentInfo(title="Not steady", file="x.yaml"),
        started=T0,
        ended=at(1),
        verdict=journals.Verdict.NOT_STEADY,
        exit_code=3,
        reason="the steady state did not hold before: health ok",
        seed=1,
        checks=[check(phases.Phase.BEFORE, "health ok", 0.5, None, False, error="connection refused")],
    )


def errored() -> journals.Journal:
    return journals.Journal(
        run_id="run-err",
        chaoskit_version="0.1.0",
        experiment=journals.ExperimentInfo(title="Broken driver", file="y.yaml"),
        started=T0,
        ended=at(1),
        verdict=journals.Verdict.ERROR,
        exit_code=4,
        reason="process.stop could not be injected",
        seed=1,
        checks=[check(phases.Phase.BEFORE, "health ok", 0.5, {"status": 200}, True)],
        errors=[
            journals.ErrorRecord(
                phase=phases.Phase.METHOD, step="stop worker", message="no such process 4242"
            )
        ],
    )


def measured(*, tripped: bool = True) -> journals.Journal:
    """A run with an ``http.load`` measure sampled every second for 16 s: latency rises from 5 ms
    while the fault (1 s to 10 s) holds, errors appear, a sample fails, then it settles."""
    samples = []
    for second in range(17):
        faulted = 1 <= second < 10
        if second == 6:
            samples.append(
                journals.Sample(measure="shop load", at=at(second), elapsed=1.0, error="connection refused")
            )
            continue
        samples.append(
            journals.Sample(
                measure="shop load",
                at=at(second),
                elapsed=0.2,
                values={
                    "p50_ms": 40.0 if faulted else 5.0,
                    "p99_ms": 320.0 if faulted else 12.0,
                    "error_ratio": 0.04 if faulted else 0.0,
                    "requests": 20.0,
                },
            )
        )
    base = journal(verdict=journals.Verdict.DEVIATED)
    trips = [journals.GuardTrip(guard="not on fire", at=at(8), failures=2, message="guard tripped")]
    return base.model_copy(
        update={
            "measures": [
                journals.MeasureRecord(
                    name="shop load", activity="http.load", every=1.0, samples=17, skipped=2
                )
            ],
            "samples": samples,
            "guard_trips": trips if tripped else [],
        }
    )
