"""A run that died with faults applied shows in the history once ``chaoskit recover`` took them
back: a row of its own (verdict ``crashed``) when it crashed before its journal, a mark on its row
when it had recorded itself; a history from before recoveries were recorded still reads."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit import testing
from chaoskit.cli import main
from chaoskit.drivers import contract
from chaoskit.engine import journals, ledgers, recovering
from chaoskit.report import history, outputs
from tests.unit.report import samples


def _dead_run(
    state: Path, run_id: str, marker: Path, *, title: str = "nightly checkout", end: str | None = None
) -> None:
    """A run that applied a ``fake.marker`` fault for real and died without taking it back."""
    ledger = ledgers.Ledger.create(state, run_id)
    ledger.start(title, "experiments/nightly.yaml")
    entry = ledger.new_entry("f")
    target = contract.Target(kind="file", id=str(marker), name=str(marker))
    data = {"v": 1, "path": str(marker)}
    ledger.intent(entry, "fake.marker", "mark", target, data)
    marker.write_text("on")
    ledger.applied(entry, data)
    if end is not None:
        ledger.end(end)
    ledger.close()


def _recover(state: Path, run_id: str | None = None, *, force: bool = False) -> recovering.RecoveryReport:
    report = recovering.recover(state, testing.FakeDriver().registry(), run_id, force=force)
    outputs.after_recover(report, state_dir=state)
    return report


def _history(state: Path, *args: str) -> str:
    shown = CliRunner().invoke(main.cli, ["history", "--state-dir", str(state), *args])
    assert shown.exit_code == 0, shown.output
    return shown.output


def test_a_crashed_run_gets_a_row_saying_it_crashed_and_was_recovered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _dead_run(state, "died-1", tmp_path / "m")
    assert history.runs(state) == []  # it never got to record itself
    report = _recover(state)
    assert report.ok and not (tmp_path / "m").exists()

    [row] = json.loads(_history(state, "--output", "json"))
    assert row["run_id"] == "died-1"
    assert row["verdict"] == "crashed" and row["exit_code"] == 4
    assert row["experiment"] == "nightly checkout" and row["file"] == "experiments/nightly.yaml"
    assert row["recovered_at"] is not None and row["recover_failed"] == 0
    assert "without a journal" in row["reason"] and "took back 1" in row["reason"]
    assert row["journal"] is None
    text = _history(state, "nightly checkout")
    assert "crashed, recovered" in text
    assert "nightly checkout" in text


def test_a_run_that_recorded_itself_keeps_its_verdict_and_is_marked_recovered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = samples.journal(journals.Verdict.ERROR, run_id="ended-1", method_ok=False)
    history.record(journal, state, journal_path=tmp_path / "j.json")
    _dead_run(state, "ended-1", tmp_path / "m", end="error")  # its revert failed; it ended anyway
    _recover(state)
    [row] = history.runs(state)
    assert row.verdict == "error" and row.reason == journal.reason
    assert row.journal == str((tmp_path / "j.json").resolve())
    assert row.recovered_at is not None
    assert "error, recovered" in _history(state)


def test_a_recover_that_could_not_take_everything_back_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ledger = ledgers.Ledger.create(state, "died-2")
    ledger.start("gone driver", None)
    entry = ledger.new_entry("f")
    ledger.intent(entry, "nowhere.fault", "x", contract.Target(kind="k", id="1", name="1"), {"v": 1})
    ledger.applied(entry, {"v": 1})
    ledger.close()
    report = _recover(state)
    assert not report.ok
    [row] = history.runs(state)
    assert row.verdict == "crashed" and row.recover_failed == 1
    assert "crashed, recover incomplete (1 left)" in _history(state)


def test_a_live_run_taken_back_by_force_is_not_called_crashed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    live = ledgers.Ledger.create(state, "live-1")
    live.start("still running", None)
    entry = live.new_entry("f")
    marker = tmp_path / "m"
    data = {"v": 1, "path": str(marker)}
    live.intent(entry, "fake.marker", "mark", contract.Target(kind="file", id="m", name="m"), data)
    marker.write_text("on")
    live.applied(entry, data)
    try:
        _recover(state, "live-1", force=True)
    finally:
        live.close()
    assert not marker.exists()
    assert history.runs(state) == []  # it records itself when it ends


OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, file TEXT, sha256 TEXT, started TEXT NOT NULL,
    ended TEXT NOT NULL, verdict TEXT NOT NULL, exit_code INTEGER NOT NULL, reason TEXT NOT NULL,
    recovery_required REAL, recovery_measured REAL, score REAL, journal TEXT, gameday TEXT
);
CREATE INDEX runs_by_experiment ON runs (experiment, started);
"""
OLD_INSERT = "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
"""How chaoskit before recoveries wrote its rows: no column names."""


def _old_row(run_id: str) -> tuple[object, ...]:
    started = samples.T0.isoformat()
    return (
        run_id,
        "old one",
        "old.yaml",
        None,
        started,
        started,
        "completed",
        0,
        "held",
        15.0,
        2.0,
        95.0,
        None,
        None,
    )


def test_a_history_from_before_recoveries_reads_and_takes_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / history.DB_NAME)) as db, db:
        db.executescript(OLD_SCHEMA)
        db.execute(OLD_INSERT, _old_row("old-1"))
    [old] = history.runs(state)
    assert (old.run_id, old.verdict, old.recovered_at, old.recover_failed) == ("old-1", "completed", None, 0)

    _dead_run(state, "died-3", tmp_path / "m")
    _recover(state)
    assert [(r.run_id, r.verdict) for r in history.runs(state)][-1] == ("died-3", "crashed")
    # An older chaoskit sharing this state dir still records its runs the way it always did.
    with contextlib.closing(sqlite3.connect(state / history.DB_NAME)) as db, db:
        db.execute(OLD_INSERT, _old_row("old-2"))
    assert {r.run_id for r in history.runs(state)} == {"old-1", "old-2", "died-3"}


def test_a_read_only_history_from_before_recoveries_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / history.DB_NAME)) as db, db:
        db.executescript(OLD_SCHEMA)
        db.execute(OLD_INSERT, _old_row("old-1"))
    connect = sqlite3.connect

    def read_only(path: Path, timeout: float) -> sqlite3.Connection:
        # Root writes through file modes: open it the way a read-only mount or file would.
        return connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    assert [r.run_id for r in history.runs(state)] == ["old-1"]
    assert "completed" in _history(state)
