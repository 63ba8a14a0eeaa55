"""A runner killed with SIGKILL while ``process.stop`` is applied leaves the process stopped; the
ledger lets ``chaoskit recover`` continue it. Real processes, real ``chaoskit`` subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _chaoskit(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(["sleep", "300"]) as process:
        try:
            yield process
        finally:
            process.kill()
            process.wait(timeout=30)


def _applied_lines(state: Path) -> list[dict[str, object]]:
    folder = state / "ledgers"
    if not folder.is_dir():
        return []
    lines = []
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                lines.append(json.loads(line))
    return [line for line in lines if line.get("type") == "applied"]


def test_recover_continues_a_process_left_stopped_by_a_killed_runner(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = tmp_path / "state"
    experiment = tmp_path / "freeze.yaml"
    experiment.write_text(
        f"title: freeze and crash\n"
        f"method:\n"
        f"  - name: freeze\n"
        f"    fault: process.stop\n"
        f"    with: {{pid: {sleeper.pid}}}\n"
        f"  - pause: 1h\n"
    )
    log = (tmp_path / "runner.log").open("wb")
    with (
        log,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaoskit",
                "run",
                str(experiment),
                "--state-dir",
                str(state),
                "--journal",
                str(tmp_path / "j.json"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as runner,
    ):
        try:
            _wait(
                "the applied line in the ledger",
                lambda: bool(_applied_lines(state)) or runner.poll() is not None,
            )
            assert runner.poll() is None, (tmp_path / "runner.log").read_text()
            os.kill(runner.pid, signal.SIGKILL)
        finally:
            if runner.poll() is None:
                runner.kill()
            runner.wait(timeout=30)

    _wait("the process to be stopped", lambda: _state_of(sleeper.pid) == "T", timeout=10)
    status = _chaoskit("status", state=state)
    assert "process.stop on process" in status.stdout and "applied" in status.stdout

    recovered = _chaoskit("recover", state=state)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "process.stop" in recovered.stdout and "reverted" in recovered.stdout
    _wait("the process to run again", lambda: _state_of(sleeper.pid) != "T", timeout=10)

    assert _chaoskit("status", state=state).stdout.strip() == "No outstanding faults."
    assert _chaoskit("recover", state=state).stdout.strip() == "Nothing to recover."
