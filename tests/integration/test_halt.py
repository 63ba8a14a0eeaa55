"""``chaoskit halt`` against real ``chaoskit run`` processes holding a real fault (``process.stop``
of a sleeper): a run that reacts ends ``halted`` (exit 5) with the fault taken back; a run hung in
a driver call (a ``python.call`` that ignores cancellation) is stopped by its lock and its fault
recovered from the ledger; a run started while halted is refused naming who, when and why."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoskit.engine import halts

ROOT = Path(__file__).parents[2]
RUN = [sys.executable, "-m", "chaoskit", "run"]


def hang(size: int = 30) -> bool:
    """A driver call hung so hard that the whole runner is: a catastrophic regex holds the GIL
    (for minutes at ``size`` 30, bounded), so neither ``ctx.cancel`` nor a SIGTERM handler runs."""
    import re

    return re.fullmatch(r"(a+)+b", "a" * size) is not None


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _chaoskit(*args: str, state: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, "CHAOSKIT_HALT": ""},
    )


def _applied(state: Path) -> bool:
    for path in (state / "ledgers").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if json.loads(line).get("type") == "applied":
                    return True
    return False


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(["sleep", "300"]) as process:
        try:
            yield process
        finally:
            process.kill()
            process.wait(timeout=30)


@contextlib.contextmanager
def running(experiment: Path, state: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [*RUN, str(experiment), "--state-dir", str(state), "--journal", str(log.with_suffix(".json"))],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "CHAOSKIT_HALT": ""},
        ) as runner,
    ):
        try:
            yield runner
        finally:
            if runner.poll() is None:
                runner.kill()
            runner.wait(timeout=30)


def _freeze(tmp_path: Path, pid: int, then: str) -> Path:
    experiment = tmp_path / "freeze.yaml"
    experiment.write_text(
        f"title: freeze then wait\n"
        f"method:\n"
        f"  - name: freeze\n"
        f"    fault: process.stop\n"
        f"    with: {{pid: {pid}}}\n"
        f"{then}"
    )
    return experiment


def test_a_run_that_sees_the_lever_ends_halted_with_its_fault_reverted(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = tmp_path / "state"
    experiment = _freeze(tmp_path, sleeper.pid, "  - pause: 1h\n")
    with running(experiment, state, tmp_path / "run.log") as runner:
        _wait("the fault applied", lambda: _applied(state) or runner.poll() is not None)
        assert _state_of(sleeper.pid) == "T"
        halted = _chaoskit("halt", "--reason", "incident 42", state=state)
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert runner.wait(timeout=30) == 5, (tmp_path / "run.log").read_text()
    assert "ended: halted; nothing left applied" in halted.stdout
    assert "SIGTERM" not in halted.stdout
    assert _state_of(sleeper.pid) != "T"
    status = _chaoskit("status", state=state)
    assert status.stdout.splitlines()[0].endswith(": incident 42")
    assert status.stdout.splitlines()[-1] == "No outstanding faults."


def test_a_run_started_while_halted_is_refused_naming_who_when_why(tmp_path: Path) -> None:
    state = tmp_path / "state"
    halts.write_file(halts.local_path(state), halts.Halt("incident 42", "ana@ops", "2030-01-01T00:00:00"))
    experiment = tmp_path / "e.yaml"
    experiment.write_text("title: nothing\nmethod:\n  - pause: 10ms\n")
    journal = str(tmp_path / "j.json")
    refused = _chaoskit("run", str(experiment), "--journal", journal, state=state)
    assert refused.returncode == 5
    assert "halted by ana@ops at 2030-01-01T00:00:00: incident 42" in refused.stderr + refused.stdout
    _chaoskit("resume", state=state)
    assert _chaoskit("run", str(experiment), "--journal", journal, state=state).returncode == 0


def test_a_runner_hung_in_a_driver_call_is_stopped_by_its_lock_and_its_fault_recovered(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = tmp_path / "state"
    step = (
        "  - name: stuck\n    action: python.call\n    with: {function: 'tests.integration.test_halt:hang'}\n"
    )
    experiment = _freeze(tmp_path, sleeper.pid, step)
    with running(experiment, state, tmp_path / "run.log") as runner:
        _wait("the fault applied", lambda: _applied(state) or runner.poll() is not None)
        time.sleep(0.5)  # into the hung call
        assert runner.poll() is None, (tmp_path / "run.log").read_text()
        halted = _chaoskit("halt", "--wait", "2", "--grace", "2", state=state)
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert runner.wait(timeout=30) != 0
    assert f"SIGTERM to pid {runner.pid}" in halted.stdout, halted.stdout
    assert f"SIGKILL to pid {runner.pid}" in halted.stdout, halted.stdout
    assert "process.stop on process sleep" in halted.stdout and "reverted" in halted.stdout
    _wait("the process to run again", lambda: _state_of(sleeper.pid) != "T", timeout=10)
    status = _chaoskit("status", state=state)
    assert status.stdout.splitlines()[-1] == "No outstanding faults.", status.stdout


def test_the_halt_bench_takes_every_fault_back() -> None:
    bench = subprocess.run(
        [sys.executable, "-m", "bench", "halt"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert "faults reverted:" in bench.stdout and "run exit codes: [5, 5" in bench.stdout, bench.stdout
