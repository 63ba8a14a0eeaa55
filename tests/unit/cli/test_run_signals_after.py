"""After a run, chaoskit holds terminating signals only until its journal is written, and never
leaves them ignored: a process started later (a test running the command in-process, a library
user) must still die from SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from chaoskit.cli import main


def test_signals_are_handled_as_before_once_the_run_command_returns(tmp_path: Path) -> None:
    experiment = tmp_path / "e.yaml"
    experiment.write_text("title: t\nmethod:\n  - pause: 0s\n")
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)}
    result = CliRunner().invoke(
        main.cli,
        [
            "run",
            str(experiment),
            "-q",
            "--state-dir",
            str(tmp_path / "s"),
            "--journal",
            str(tmp_path / "j.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert {sig: signal.getsignal(sig) for sig in before} == before
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == -signal.SIGTERM, (
            "SIGTERM is ignored in a process started after a run"
        )
    finally:
        child.kill()
        child.wait(timeout=10)
