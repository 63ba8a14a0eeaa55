"""The run history: every finished run, one row in SQLite under the state dir (``history.sqlite3``),
so ``chaoskit history`` can show verdicts, recovery times and scores over time.

``record`` is idempotent per run id: recording the same journal twice keeps one row.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from chaoskit import errors
from chaoskit.engine import journals
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
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def runs(state_dir: Path, experiment: str | None = None, *, limit: int = 100) -> list[Run]:
    """Runs oldest first (the newest ``limit``); ``experiment`` matches a title, a file or its name."""
    if not path_of(state_dir).exists():
        return []
    query = "SELECT run_id, experiment, file, started, ended, verdict, exit_code, reason,"
    query += " recovery_required, recovery_measured, score, journal, gameday FROM runs"
    args: tuple[object, ...] = ()
    if experiment:
        query += " WHERE experiment = ? OR file = ? OR file LIKE ? OR gameday = ?"
        args = (experiment, experiment, f"%/{experiment}", experiment)
    query += " ORDER BY started DESC LIMIT ?"
    with _connect(state_dir) as db:
        rows = db.execute(query, (*args, limit)).fetchall()
    return [Run(*row) for row in reversed(rows)]


def started(run: Run) -> datetime:
    return datetime.fromisoformat(run.started)
