"""The checks of a run, as reports count them: one per steady-state probe before and after, per
method probe, per guard, and the recovery time — read from a journal.

Every report format (JUnit, HTML, Markdown), the score and the gate work from this list, so they
agree on what a check is and whether it held.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime

from chaoskit import durations, wording
from chaoskit.engine import journals, phases
from chaoskit.spec import paths


class Kind(enum.StrEnum):
    BEFORE = "before"
    """A steady-state probe before anything was injected."""
    METHOD = "method"
    """A probe in the method, with the fault in place."""
    GUARD = "guard"
    """A guard: one check for all its polls; fails when it tripped."""
    AFTER = "after"
    """A steady-state probe after the last revert: its last poll decides."""
    RECOVERY = "recovery"
    """The measured recovery time against ``recovery.within``."""


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    """The probe answered and the expectation did not hold."""
    ERROR = "error"
    """The probe raised or timed out."""
    NO_DATA = "no_data"
    """The probe answered nothing (no value) and the expectation could not hold."""


@dataclass(frozen=True)
class Check:
    kind: Kind
    name: str
    activity: str
    status: Status
    expected: str
    """In words: ``status equals 200``; ``recovered within 30s``."""
    got: str
    message: str
    """For a check that did not hold: "expected X, got Y" (and the error, if any)."""
    elapsed: float
    at: datetime | None
    polls: int = 1

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def show(value: object) -> str:
    """A probe value in one short line."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def judged(record: journals.CheckRecord) -> str:
    """What the check looked at, not the whole output: the value at each path its expectations
    name (``latency_ms.p99 182.4``); for a probe judged on nothing but running, a few numbers of
    a load's output, or the output itself when it is short."""
    if record.error is not None:
        return f"error: {record.error}"
    seen: list[str] = []
    for expected in record.expected:
        where = expected.split(" ", 1)[0]
        if where == "output":
            text = show(record.value)
        else:
            try:
                text = f"{where} {show(paths.lookup(record.value, paths.parse(where)))}"
            except (paths.PathError, ValueError):
                text = f"{where} missing"
        if text not in seen:
            seen.append(text)
    if seen:
        return "; ".join(seen)
    if isinstance(record.value, dict):
        from chaoskit.engine import measuring  # the engine's planning, only for unjudged outputs

        numbers = measuring.values_of(record.activity, record.value, {})
        if record.activity == "http.load" and any(v is not None for v in numbers.values()):
            return _load_summary(numbers)
        keys = ", ".join(sorted(record.value))
        return show(record.value) if len(show(record.value)) <= 80 else f"(not judged) keys: {keys}"[:200]
    return show(record.value)


def _load_summary(numbers: dict[str, float | None]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3g} ms"

    ratio = numbers.get("error_ratio")
    errors = "-" if ratio is None else f"{ratio * 100:.3g} %"
    requests = numbers.get("requests")
    count = "" if requests is None else f"{requests:.0f} requests, "
    latency = f"p50 {ms(numbers.get('p50_ms'))}, p99 {ms(numbers.get('p99_ms'))}"
    return f"(not judged) {count}{latency}, errors {errors}"


def _status(record: journals.CheckRecord) -> Status:
    if record.ok:
        return Status.OK
    if record.error is not None:
        return Status.ERROR
    if record.value is None:
        return Status.NO_DATA
    return Status.FAILED


def _expected(record: journals.CheckRecord) -> str:
    return " and ".join(record.expected) or "the probe runs without error"


def _message(record: journals.CheckRecord, status: Status) -> str:
    if status is Status.OK:
        return ""
    if record.message:
        return record.message if record.error is None else f"{record.message} ({record.error})"
    if record.error is not None:
        return f"expected {_expected(record)}, got an error: {record.error}"
    return f"expected {_expected(record)}, got {show(record.value)}"


def _from_record(kind: Kind, record: journals.CheckRecord, polls: int = 1) -> Check:
    status = _status(record)
    return Check(
        kind=kind,
        name=record.step,
        activity=record.activity,
        status=status,
        expected=_expected(record),
        got=judged(record),
        message=_message(record, status),
        elapsed=record.elapsed,
        at=record.at,
        polls=polls,
    )


def _by_step(records: list[journals.CheckRecord]) -> dict[str, list[journals.CheckRecord]]:
    grouped: dict[str, list[journals.CheckRecord]] = {}
    for record in records:
        grouped.setdefault(record.step, []).append(record)
    return grouped


def _method_checks(records: list[journals.CheckRecord]) -> list[Check]:
    """One check per method probe; a probe with ``until`` is one check, decided by its last poll."""
    rounds: list[list[journals.CheckRecord]] = []
    polling: dict[str, list[journals.CheckRecord]] = {}  # step → its polls so far (steps may overlap)
    for record in records:
        if record.poll is None or record.poll == 0 or record.step not in polling:
            rounds.append([record])
            if record.poll is not None:
                polling[record.step] = rounds[-1]
        else:
            polling[record.step].append(record)
    return [_from_record(Kind.METHOD, polls[-1], polls=len(polls)) for polls in rounds]


def from_journal(journal: journals.Journal) -> list[Check]:
    """The run's checks, in the order the run met them."""
    result: list[Check] = []
    of = {phase: [c for c in journal.checks if c.phase is phase] for phase in phases.Phase}
    result.extend(_from_record(Kind.BEFORE, r) for r in of[phases.Phase.BEFORE])
    result.extend(_method_checks(of[phases.Phase.METHOD]))
    trips = {t.guard: t for t in journal.guard_trips}
    for name, polls in _by_step(of[phases.Phase.GUARD]).items():
        trip = trips.pop(name, None)
        last = polls[-1]
        failed = sum(not p.ok for p in polls)
        if trip is None:
            status = Status.OK
            message = ""
        else:
            status = Status.ERROR if last.error is not None else Status.FAILED
            message = trip.message or _message(last, status)
        result.append(
            Check(
                kind=Kind.GUARD,
                name=name,
                activity=last.activity,
                status=status,
                expected=_expected(last),
                got=f"{wording.counted(len(polls), 'poll')}, {failed} failed; last: {judged(last)}",
                message=message,
                elapsed=sum(p.elapsed for p in polls),
                at=trip.at if trip else last.at,
                polls=len(polls),
            )
        )
    for trip in trips.values():  # a trip whose polls were not journaled still counts
        result.append(
            Check(
                kind=Kind.GUARD,
                name=trip.guard,
                activity="guard",
                status=Status.FAILED,
                expected="holds on every poll",
                got=f"{trip.failures} failed polls in a row",
                message=trip.message,
                elapsed=0.0,
                at=trip.at,
            )
        )
    for polls in _by_step(of[phases.Phase.AFTER]).values():
        result.append(_from_record(Kind.AFTER, polls[-1], polls=len(polls)))
    if journal.recovery is not None:
        result.append(recovery_check(journal.recovery, journal))
    return result


def recovery_check(recovery: journals.RecoveryRecord, journal: journals.Journal) -> Check:
    expected = f"recovered within {durations.format(recovery.required)}"
    if recovery.measured is None:
        got = f"not recovered after {wording.counted(recovery.polls, 'poll')}"
    else:
        got = f"recovered in {recovery.measured:.3f}s"
    ok = recovery.met and recovery.measured is not None
    return Check(
        kind=Kind.RECOVERY,
        name="recovery time",
        activity="recovery",
        status=Status.OK if ok else Status.FAILED,
        expected=expected,
        got=got,
        message="" if ok else f"expected {expected}, got {got}",
        elapsed=recovery.measured or 0.0,
        at=journal.ended,
        polls=recovery.polls,
    )
