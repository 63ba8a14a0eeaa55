"""What happens to every finished run's journal besides the journal file: the history row, and the
JUnit XML and HTML report when asked for (``chaoskit run --junit/--report``); and the history rows
of runs that ``chaoskit recover`` (or ``chaoskit halt``) took back after they died.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaoskit import errors
from chaoskit.engine import journals, recovering
from chaoskit.report import history


def after_run(
    journal: journals.Journal,
    *,
    state_dir: Path,
    journal_path: Path | None = None,
    junit_path: Path | None = None,
    report_path: Path | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> None:
    """Record the run in the history and write the requested reports. A failure here is a warning:
    it must not change the run's verdict or exit code, which CI trusts."""
    try:
        history.record(journal, state_dir, journal_path=journal_path)
    except errors.ChaoskitError as e:
        warn(f"warning: the run was not recorded in the history: {e.render()}")
    # The report modules are imported only when asked for: most runs write neither.
    if junit_path is not None:
        from chaoskit.report import junit

        _guarded(junit_path, lambda: junit.write([journal], junit_path), warn)
    if report_path is not None:
        from chaoskit.report import html

        _guarded(report_path, lambda: html.write(journal, report_path), warn)


def _guarded(path: Path, write: Callable[[], None], warn: Callable[[str], None]) -> None:
    try:
        write()
    except OSError as e:
        warn(f"warning: can't write {path}: {e.strerror or e}")


def after_recover(
    report: recovering.RecoveryReport, *, state_dir: Path, warn: Callable[[str], None] = lambda _: None
) -> None:
    """Record in the history that each dead run's leftovers were taken back; a run that crashed
    before its journal gets a row (verdict ``crashed``). A failure here is a warning: the faults
    are what matters, and they are back."""
    for run in report.runs:
        try:
            history.record_recovery(
                state_dir,
                run_id=run.run_id,
                at=run.at,
                taken_back=run.taken_back,
                failed=run.failed,
                experiment=run.title,
                file=run.file,
                started=run.started,
                ended=run.ended,
                verdict=run.verdict or history.CRASHED,
            )
        except errors.ChaoskitError as e:
            warn(f"warning: the recovery of run {run.run_id} was not recorded in the history: {e.render()}")
