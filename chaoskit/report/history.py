"""The run history: every finished run, one row in SQLite under the state dir (``history.sqlite3``),
so ``chaoskit history`` can show verdicts, recovery times and scores over time.

``record`` is idempotent per run id: recording the same journal twice keeps one row.
``record_recovery`` notes that ``chaoskit recover`` took back what a dead run left applied, and
gives a run that crashed before its journal a row of its own (verdict ``crashed``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from chaoskit import errors
from chaoskit.engine import journals, verdicts
from chaoskit.report import scores

DB_NAME = "history.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    file TEXT,
    sha256 TEXT,
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    verdict TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    reason TEXT NOT NULL,
    recovery_required REAL,
    recovery_measured REAL,
    score REAL,
    journal TEXT,
    gameday TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment, started);
"""
_RECOVERIES = """
CREATE TABLE IF NOT EXISTS recoveries (
    run_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    taken_back INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
"""
# Recoveries are a table of their own, not columns of ``runs``: a history from before them gains
# the table when opened (and reads as before when it can't be written), and an older chaoskit,
# whose ``INSERT INTO runs VALUES`` names no columns, still records its runs in a history this one
# has touched.

CRASHED = "crashed"
"""The verdict of a run that ended without a journal (killed, or its machine went down), as
``chaoskit recover`` records it; not a ``journals.Verdict``: no run reaches it by itself."""

_COLUMNS = (
    "run_id, experiment, file, sha256, started, ended, verdict, exit_code, reason, recovery_required, "
    "recovery_measured, score, journal, gameday"
)


@dataclass(frozen=True)
class Run:
    run_id: str
    experiment: str
    file: str | None
    started: str
    ended: str
    verdict: str
    exit_code: int
    reason: str
    recovery_required: float | None
    recovery_measured: float | None
    score: float | None
    journal: str | None
    gameday: str | None
    recovered_at: str | None = None
    """When ``chaoskit recover`` last took back what this run left applied; None if it never had to."""
    recover_failed: int = 0
    """How many of those it could not take back that time (``chaoskit recover`` again)."""

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def path_of(state_dir: Path) -> Path:
    return state_dir / DB_NAME


@contextlib.contextmanager
def _connect(state_dir: Path) -> Iterator[sqlite3.Connection]:
    path = path_of(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
    except (OSError, sqlite3.Error) as e:
        raise errors.ChaoskitError(
            f"can't open the run history {path}: {e}",
            hint="pass a writable --state-dir or set CHAOSKIT_STATE_DIR",
        ) from e
    try:
        db.executescript(_SCHEMA)
        with contextlib.suppress(sqlite3.OperationalError):
            db.executescript(_RECOVERIES)  # a read-only history from before recoveries still reads
        with db:
            yield db
    except sqlite3.DatabaseError as e:
        raise errors.ChaoskitError(
            f"the run history {path} is unreadable: {e}",
            hint="move the file away; a new one is created on the next run",
        ) from e
    finally:
        db.close()


def record(
    journal: journals.Journal,
    state_dir: Path,
    *,
    journal_path: Path | None = None,
    gameday: str | None = None,
) -> float | None:
    """Add (or replace) the run's row; returns its score."""
    score = scores.of_journal(journal)
    recovery = journal.recovery
    with _connect(state_dir) as db:
        db.execute(
            f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                journal.run_id,
                journal.experiment.title,
                journal.experiment.file,
                journal.experiment.sha256,
                journal.started.isoformat(),
                journal.ended.isoformat(),
                journal.verdict.value,
                journal.exit_code,
                journal.reason,
                recovery.required if recovery else None,
                recovery.measured if recovery else None,
                score,
                str(journal_path.resolve()) if journal_path else None,
                gameday,
            ),
        )
    return score


def record_recovery(
    state_dir: Path,
    *,
    run_id: str,
    at: datetime,
    taken_back: int,
    failed: int,
    experiment: str,
    file: str | None,
    started: datetime,
    ended: datetime,
    verdict: str = CRASHED,
) -> None:
    """Note that ``chaoskit recover`` took back ``taken_back`` of what run ``run_id`` left applied
    (``failed`` it could not). A run that has no row yet (it crashed before its journal) gets one
    with ``verdict`` (``crashed``, or the verdict its ledger recorded) and what its ledger says; a
    row the run recorded itself is kept as it is."""
    reason = (
        "the run ended without a journal (killed, or its machine went down)"
        if verdict == CRASHED
        else f"the run ended ({verdict}) but did not record itself"
    )
    reason += f"; chaoskit recover took back {taken_back} of what it left applied"
    if failed:
        reason += f", {failed} not (run chaoskit recover again)"
    known = _verdict(verdict)
    exit_code = int(verdicts.EXIT_CODES[known] if known is not None else errors.ExitCode.ERROR)
    with _connect(state_dir) as db:
        db.execute(
            f"INSERT OR IGNORE INTO runs ({_COLUMNS}) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, NULL,"
            " NULL, NULL)",
            (run_id, experiment, file, started.isoformat(), ended.isoformat(), verdict, exit_code, reason),
        )
        db.execute(
            "INSERT OR REPLACE INTO recoveries (run_id, at, taken_back, failed) VALUES (?, ?, ?, ?)",
            (run_id, at.isoformat(), taken_back, failed),
        )


def _verdict(value: str) -> journals.Verdict | None:
    try:
        return journals.Verdict(value)
    except ValueError:
        return None


def runs(state_dir: Path, experiment: str | None = None, *, limit: int = 100) -> list[Run]:
    """Runs oldest first (the newest ``limit``); ``experiment`` matches a title, a file or its name."""
    if not path_of(state_dir).exists():
        return []
    query = "SELECT runs.run_id, experiment, file, started, ended, verdict, exit_code, reason,"
    query += " recovery_required, recovery_measured, score, journal, gameday, {recovered} FROM runs{join}"
    args: tuple[object, ...] = ()
    if experiment:
        query += " WHERE experiment = ? OR file = ? OR file LIKE ? OR gameday = ?"
        args = (experiment, experiment, f"%/{experiment}", experiment)
    query += " ORDER BY started DESC LIMIT ?"
    with _connect(state_dir) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recoveries'").fetchone():
            recovered, join = (
                "recoveries.at, COALESCE(recoveries.failed, 0)",
                " LEFT JOIN recoveries USING (run_id)",
            )
        else:
            recovered, join = "NULL, 0", ""  # read-only, from before recoveries
        rows = db.execute(query.format(recovered=recovered, join=join), (*args, limit)).fetchall()
    return [Run(*row) for row in reversed(rows)]


def started(run: Run) -> datetime:
    return datetime.fromisoformat(run.started)
