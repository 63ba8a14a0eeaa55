"""Killing a real ``chaoskit run`` with SIGKILL while its fault is applied, then ``chaoskit recover``.

A moment is a delay after the ledger's ``applied`` line; moments are drawn from a seeded random
generator (``CHAOSKIT_CRASH_SEED``, default 9), ``CHAOSKIT_CRASH_MOMENTS`` per fault (default 5;
``bench/crash_soak.py`` uses 50). The moments of one fault run side by side, each against its own
target and state directory, so the matrix stays within a few minutes on two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import pytest

SEED = int(os.environ.get("CHAOSKIT_CRASH_SEED", "9"))
MOMENTS = int(os.environ.get("CHAOSKIT_CRASH_MOMENTS", "5"))
PARALLEL = int(os.environ.get("CHAOSKIT_CRASH_PARALLEL", "5"))
LATEST = 1.5
"""The latest moment, in seconds after ``applied``: every fault lasts far longer (1 h)."""


def moments(fault: str, count: int = MOMENTS) -> list[float]:
    """``count`` kill delays for ``fault``: the same for the same seed, different per fault."""
    rng = random.Random(f"{SEED}:{fault}")
    return [round(rng.uniform(0.0, LATEST), 3) for _ in range(count)]


def chaoskit(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ledger_lines(state: Path) -> list[dict[str, object]]:
    lines = []
    for path in (state / "ledgers").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                lines.append(json.loads(line))
    return lines


def wait_for(what: str, check: Callable[[], object], timeout: float = 90.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


@dataclass(frozen=True)
class Crash:
    """What one moment saw: the runner's output and what ``recover`` said."""

    delay: float
    runner_log: str
    recover_output: str


def crash_and_recover(
    folder: Path,
    experiment: str,
    delay: float,
    left_behind: Callable[[], bool],
    applied: int = 1,
) -> Crash:
    """Run ``experiment`` (YAML text), SIGKILL the runner ``delay`` s after ``applied`` faults are
    in the ledger; the fault must still be in place (``left_behind``, observed on the system), then
    ``chaoskit recover`` must take everything back. The caller then checks the system itself."""
    folder.mkdir(parents=True, exist_ok=True)
    state, path, log_path = folder / "state", folder / "experiment.yaml", folder / "runner.log"
    path.write_text(experiment)
    argv = [sys.executable, "-m", "chaoskit", "run", str(path), "--state-dir", str(state)]
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            [*argv, "--journal", str(folder / "journal.json"), "--seed", str(SEED)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        ) as runner,
    ):
        try:

            def injected() -> bool:
                done = sum(1 for line in ledger_lines(state) if line.get("type") == "applied")
                return done >= applied or runner.poll() is not None

            wait_for("the applied line in the ledger", injected)
            assert runner.poll() is None, f"the run ended before the kill:\n{log_path.read_text()}"
            time.sleep(delay)
            assert runner.poll() is None, f"the run ended before the kill:\n{log_path.read_text()}"
            os.kill(runner.pid, signal.SIGKILL)
        finally:
            if runner.poll() is None:
                runner.kill()
            runner.wait(timeout=60)
    assert runner.returncode == -signal.SIGKILL
    # Without this the test could pass with a fault that never took effect.
    assert left_behind(), (
        f"the fault is not in place after the kill (moment {delay}s):\n{log_path.read_text()}"
    )
    left = chaoskit("status", "--state-dir", str(state))
    assert "applied" in left.stdout or "intent" in left.stdout, left.stdout + left.stderr
    recovered = chaoskit("recover", "--state-dir", str(state))
    detail = f"recover exit {recovered.returncode}:\n{recovered.stdout}{recovered.stderr}"
    assert recovered.returncode == 0, detail
    assert chaoskit("status", "--state-dir", str(state)).stdout.strip() == "No outstanding faults.", detail
    return Crash(delay, log_path.read_text(), recovered.stdout)


def each_moment(delays: Sequence[float], one: Callable[[int, float], None], parallel: int = PARALLEL) -> None:
    """Run ``one(index, delay)`` for every moment, ``parallel`` at a time; the first failure fails."""
    with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running = [pool.submit(one, i, delay) for i, delay in enumerate(delays)]
        for done in running:
            done.result()
