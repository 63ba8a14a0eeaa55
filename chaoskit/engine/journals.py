"""The journal: the versioned record of one run that CI, reports, the gate and history read.

Field names are a contract (schema ``schemas/journal.schema.json``, ``schema_version`` 1): extend,
don't rename. ``redact`` keeps secret values out of it and out of everything printed.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from chaoskit import describing
from chaoskit.engine.phases import Phase, StepKind

SCHEMA_VERSION: Literal[1] = 1
REDACTED = "***"


class Verdict(enum.StrEnum):
    """How the run ended; each verdict has one exit code (``errors.ExitCode``)."""

    COMPLETED = "completed"
    DEVIATED = "deviated"
    INVALID = "invalid"
    NOT_STEADY = "not_steady"
    ERROR = "error"
    HALTED = "halted"
    VETOED = "vetoed"
    INTERRUPTED = "interrupted"


class StepStatus(enum.StrEnum):
    OK = "ok"
    """It ran; for a probe, every ``expect`` held."""
    FAILED = "failed"
    """A probe ran but an ``expect`` did not hold (or the probe could not read the system)."""
    ERROR = "error"
    """The activity raised or timed out."""
    CANCELLED = "cancelled"
    """The run stopped (guard trip, interruption) while it was running."""


class RevertStatus(enum.StrEnum):
    REVERTED = "reverted"
    ALREADY_CLEAN = "already-clean"
    FAILED = "failed"
    """Revert raised: the fault may still be in place; ``chaoskit recover`` retries it."""
    NOT_NEEDED = "not-needed"
    """A self-healing fault: nothing to take back."""
    HANDED_OVER = "handed-over"
    """Another applied fault holds the same lease (``allow_overlap``): the last one out restores
    the original state."""
    GONE_WITH_HOST = "gone-with-host"
    """The server that held it was a process this run started and has stopped: it went with it."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ExperimentInfo(Record):
    title: str
    file: str | None = None
    """The path as given on the command line; None when run from a document in memory."""
    kind: str = "chaoskit"
    """``chaoskit`` or ``chaostoolkit`` (the format the file was written in)."""
    tags: list[str] = Field(default_factory=list)
    sha256: str | None = None
    """Of the file's bytes, so a history can tell runs of different versions apart."""


class TargetInfo(Record):
    kind: str
    id: str
    name: str
    detail: dict[str, str] = Field(default_factory=dict)


class CheckRecord(Record):
    """One probe evaluation: a steady-state probe, a method probe, a guard poll, an after poll."""

    phase: Phase
    step: str
    """The step's name (or its activity when it has none)."""
    activity: str
    value: JsonValue = None
    """What the probe returned (redacted)."""
    expected: list[str] = Field(default_factory=list)
    """Each ``expect`` in words, e.g. ``status equals 200``."""
    ok: bool
    message: str = ""
    """Why it failed: "expected X, got Y"."""
    elapsed: float
    """Seconds the probe took."""
    at: datetime
    error: str | None = None
    """The probe raised or timed out; the check then is not ok."""
    poll: int | None = None
    """For ``after`` and ``guard`` checks and probes with ``until``: which poll round (0-based)."""


class StepRecord(Record):
    phase: Phase
    index: int
    name: str
    kind: StepKind
    activity: str
    status: StepStatus
    started: datetime
    ended: datetime
    background: bool = False
    output: JsonValue = None
    error: str | None = None


class FaultRecord(Record):
    """One fault on one target."""

    step: str
    activity: str
    target: TargetInfo
    injected_at: datetime
    duration: float | None = None
    reverted_at: datetime | None = None
    revert: RevertStatus | None = None
    """None when the run ended with it still applied (see ``chaoskit status``)."""
    revert_error: str | None = None


class GuardTrip(Record):
    guard: str
    at: datetime
    failures: int
    """Failed polls in a row that tripped it."""
    message: str


class RecoveryRecord(Record):
    required: float
    """``recovery.within`` in seconds."""
    measured: float | None
    """Seconds from the last revert until the hypothesis held again; None when it never did."""
    met: bool
    polls: int


class UndoRecord(Record):
    """An action's leftover (a started process), undone after teardown."""

    step: str
    activity: str
    outcome: RevertStatus
    at: datetime
    error: str | None = None
    detail: str | None = None
    """What was undone, in a few words (``python3 pid 4242``)."""


class ErrorRecord(Record):
    phase: Phase | None
    step: str | None
    message: str


class Sample(Record):
    """One sample of a ``measure``: a few numbers, never judged."""

    measure: str
    at: datetime
    """When the probe started."""
    elapsed: float
    """Seconds the probe took."""
    values: dict[str, float | None] = Field(default_factory=dict)
    """``p50_ms``, ``p99_ms``, ``error_ratio`` for ``http.load``; ``value`` for one number; the
    ``keep`` labels when given. A label ending in ``_ms`` is milliseconds, ``_ratio`` 0 to 1."""
    error: str | None = None
    """The probe raised or timed out: no values."""


class MeasureRecord(Record):
    """One ``measure`` of the run: how it was sampled."""

    name: str
    activity: str
    every: float
    """Seconds between two ticks."""
    samples: int
    """Samples taken (and journaled in ``Journal.samples``)."""
    skipped: int
    """Ticks that found the previous sample still running, so took none."""


class ObjectivesRecord(Record):
    """Recovery objectives a probe measured on a data store (``data.verify``): the last reading of
    one step, from any probe whose output has ``rpo_writes``, ``rpo_seconds`` and ``rto_seconds``."""

    step: str
    activity: str
    phase: Phase
    at: datetime
    """When the reading was taken."""
    rpo_writes: int
    """Acknowledged writes missing when the store was read back after recovery."""
    rpo_seconds: float
    """The seconds of writes they span (how far back the recovered data goes)."""
    rto_seconds: float | None
    """Seconds from the fault until writes were accepted again; None when they were not yet."""
    fault_at: datetime | None = None
    """Where the RTO starts (the fault, or where the writes show the outage began)."""
    accepted_again_at: datetime | None = None
    lost_since: datetime | None = None
    """The window of lost writes (the RPO in seconds), for the report's timeline."""
    lost_until: datetime | None = None


OBJECTIVE_KEYS = frozenset({"rpo_writes", "rpo_seconds", "rto_seconds"})


def objectives_of(
    value: JsonValue, *, step: str, activity: str, phase: Phase, at: datetime
) -> ObjectivesRecord | None:
    """The recovery objectives in a probe's output, or None when it reports none."""
    if not isinstance(value, dict) or not value.keys() >= OBJECTIVE_KEYS:
        return None
    optional = ("fault_at", "accepted_again_at", "lost_since", "lost_until")
    fields = {k: value.get(k) for k in (*OBJECTIVE_KEYS, *optional)}
    try:
        return ObjectivesRecord.model_validate(
            {"step": step, "activity": activity, "phase": phase, "at": at, **fields}
        )
    except ValueError:  # a probe's output that only looks like it: not a reading
        return None


class Journal(Record):
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    chaoskit_version: str
    experiment: ExperimentInfo
    started: datetime
    ended: datetime
    verdict: Verdict
    exit_code: int
    reason: str
    """One sentence on why this verdict."""
    seed: int
    """Seeds every step's random choices; ``--seed`` repeats them."""
    ledger: str | None = None
    """The fault ledger of this run (``chaoskit recover <run_id>`` reads it)."""
    checks: list[CheckRecord] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    """Setup and method steps, in the order they started."""
    faults: list[FaultRecord] = Field(default_factory=list)
    guard_trips: list[GuardTrip] = Field(default_factory=list)
    recovery: RecoveryRecord | None = None
    """None when the run did not get to the after-hypothesis."""
    rollbacks: list[StepRecord] = Field(default_factory=list)
    teardown: list[StepRecord] = Field(default_factory=list)
    undo: list[UndoRecord] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)
    measures: list[MeasureRecord] = Field(default_factory=list)
    """The experiment's ``measure`` probes, sampled from the start of the method until recovery."""
    samples: list[Sample] = Field(default_factory=list)
    """Their samples, in the order they started."""
    objectives: list[ObjectivesRecord] = Field(default_factory=list)
    """RPO and RTO measured on data stores (``data.verify``): the last reading of each step."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the journal, as committed in ``schemas/journal.schema.json``."""
    schema = describing.json_schema(Journal, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://chaoskit.dev/schemas/journal.schema.json"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


V = TypeVar("V")


def redact(value: V, secrets: Iterable[str]) -> V:
    """``value`` with every occurrence of every secret replaced by ``***``, in strings, keys and
    nested lists/dicts/models. Longer secrets first, so one that contains another goes whole."""
    hidden = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not hidden:
        return value
    return _redact(value, hidden)  # type: ignore[no-any-return]


def _redact(value: Any, hidden: list[str]) -> Any:
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, BaseModel):
        data = _redact(value.model_dump(mode="json"), hidden)
        return type(value).model_validate(data)
    if isinstance(value, Mapping):
        return {_redact(k, hidden): _redact(v, hidden) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, hidden) for v in value)
    return value


def dumps(journal: Journal) -> str:
    return journal.model_dump_json(indent=2) + "\n"


def load(path: Path) -> Journal:
    return Journal.model_validate_json(path.read_text(encoding="utf-8"))


def write(journal: Journal, path: Path) -> None:
    """Write atomically: a reader (CI, the gate) sees the old file or the whole new one.

    Raises ``OSError`` when ``path`` is a symlink or exists and is not a regular file (a device,
    a FIFO, a directory): the rename would replace the link or device itself. /dev/stdout is a
    symlink, to a regular file when stdout is redirected to one, and root may replace it."""
    path = path.expanduser()
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # Callers show ``e.strerror or e``: this message, then say where the journal went instead.
        raise FileExistsError(
            "it is a symlink, or exists and is not a regular file; a journal won't replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(journal))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
