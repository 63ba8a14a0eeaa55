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
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- Whole runs of real experiments: phases, signals, leftovers ----------------------------------
# The matrices over shipped experiments (test_experiments.py), signals, storage and concurrency use
# these; the bench (bench/crash.py) runs the same moments at length.

PHASES = ("setup", "inject", "hold", "revert", "teardown")
"""Where a SIGKILL can land in a run, in order; ``teardown`` covers rollbacks and teardown."""

HEADINGS = {"rollbacks": "rollbacks ─", "teardown": "teardown ─", "after": "steady state after"}
"""Section headings the console prints (plain text when it is not a terminal)."""

EXPERIMENT_MOMENTS = int(os.environ.get("CHAOSKIT_CRASH_EXPERIMENT_MOMENTS", "3"))
"""SIGKILL moments per shipped experiment in CI (``bench/crash.py`` does 100)."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (each bound and released, so another process may still win one)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def environment(run_id: str) -> dict[str, str]:
    """The runner's environment: the run id (inherited by what it starts, as a mark to find them
    by) and this interpreter's bin directory first, so that ``chaoskit`` in an argv is this one."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "CHAOSKIT_RUN_ID": run_id, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def records(state: Path, run_id: str) -> list[dict[str, Any]]:
    """The complete lines of one run's ledger (a line being written is skipped)."""
    path = state / "ledgers" / f"{run_id}.jsonl"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if isinstance(record, dict):
                found.append(record)
    return found


@dataclass
class Run:
    """One real ``chaoskit run`` in its own process (and process group, so that a signal for the
    test runner never reaches it by accident)."""

    run_id: str
    folder: Path
    state: Path
    journal: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        return records(self.state, self.run_id)

    def lines(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("type") == kind]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def until(self, check: Callable[[], object], timeout: float = 90.0, interval: float = 0.003) -> bool:
        """Poll ``check`` until it holds (True) or the run ends first or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            if not self.alive():
                return bool(check())
            time.sleep(interval)
        return False

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signum)

    def finish(self, timeout: float = 120.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            pytest.fail(f"run {self.run_id} did not end within {timeout:g}s:\n{self.log()[-3000:]}")

    def read_journal(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.journal.read_text())
        return data


STARTED: list[str] = []
"""Every run id ``running`` used, so that a failed test's leftovers can be cleaned after it."""


def clean_up(run_ids: Sequence[str]) -> None:
    """Kill (by pid) what these runs started and recover did not stop: after a failure only, so
    that one failed moment does not leave servers on a shared machine."""
    for run_id in run_ids:
        for pid in processes_marked(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    folder: Path,
    experiment: Path | str,
    *,
    run_id: str | None = None,
    variables: dict[str, object] | None = None,
    state: Path | None = None,
    journal: Path | None = None,
    extra: Sequence[str] = (),
) -> Iterator[Run]:
    """Start ``chaoskit run`` on ``experiment`` (a path, or YAML text written to the folder); the
    runner is killed on the way out if it is still running, never anything it started."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(experiment, str):
        path = folder / "experiment.yaml"
        path.write_text(experiment)
        experiment = path
    run_id = run_id or f"t{random.randrange(16**8):08x}"
    state = state or folder / "state"
    journal = journal or folder / "journal.json"
    log_path = folder / f"runner-{re.sub(r'[^A-Za-z0-9_-]', '_', run_id)}.log"  # even for a bad run id
    argv = [sys.executable, "-m", "chaoskit", "run", str(experiment), "--state-dir", str(state)]
    argv += ["--run-id", run_id, "--journal", str(journal), "--seed", str(SEED)]
    for name, value in (variables or {}).items():
        argv += ["--var", f"{name}={value}"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=environment(run_id),
            start_new_session=True,
        )
    STARTED.append(run_id)
    run = Run(run_id, folder, state, journal, log_path, process)
    try:
        yield run
    finally:
        if run.alive():
            process.kill()
        process.wait(timeout=60)


def observed_phase(run: Run) -> str:
    """Where the run was, read from what it left: its ledger and its console output."""
    lines = run.records()
    faults = {r.get("id") for r in lines if r.get("type") == "intent"}
    reverted = {r.get("id") for r in lines if r.get("type") == "reverted"}
    log = run.log()
    if any(HEADINGS[h] in log for h in ("rollbacks", "teardown")):
        return "teardown"
    if faults & reverted:
        return "revert"
    applied = {r.get("id") for r in lines if r.get("type") == "applied"}
    if faults - applied:
        return "inject"
    if faults:
        return "hold"
    return "setup" if any(r.get("type") == "undo" for r in lines) else "start"


def undos(run: Run) -> set[str]:
    """The ids of the run's ``undo`` entries (what its actions left, such as a started process)."""
    return {str(r.get("id")) for r in run.records() if r.get("type") == "undo"}


def undone(run: Run) -> set[str]:
    """Those of ``undos`` the run has already undone itself."""
    return undos(run) & {str(r.get("id")) for r in run.records() if r.get("type") == "reverted"}


def trigger(phase: str) -> Callable[[Run], bool]:
    """When ``phase`` has begun, seen from outside the runner."""

    def seen(run: Run) -> bool:
        lines = run.records()
        kinds = [r.get("type") for r in lines]
        if phase == "setup":
            return "undo" in kinds
        if phase == "inject":
            return "intent" in kinds
        if phase == "hold":
            return "applied" in kinds
        if phase == "revert":
            faults = {r.get("id") for r in lines if r.get("type") == "intent"}
            return any(r.get("type") == "reverted" and r.get("id") in faults for r in lines)
        log = run.log()
        return any(HEADINGS[h] in log for h in ("rollbacks", "teardown"))

    return seen


LATEST_IN = {"setup": 0.5, "inject": 0.0, "hold": 2.0, "revert": 0.5, "teardown": 0.0}
"""The latest kill after a phase's trigger, in seconds: short phases are hit at their start."""


def plan(name: str, phases: Sequence[str], count: int = EXPERIMENT_MOMENTS) -> list[tuple[str, float]]:
    """``count`` (phase, delay) moments for ``name``: the same for the same seed; the phases are a
    seeded rotation, so that a few moments per experiment still cover every phase across them."""
    rng = random.Random(f"{SEED}:{name}")
    start = rng.randrange(len(phases))
    return [
        (phase, round(rng.uniform(0.0, LATEST_IN[phase]), 3))
        for phase in (phases[(start + i) % len(phases)] for i in range(count))
    ]


def kill_in(run: Run, phase: str, delay: float, timeout: float = 120.0) -> str:
    """SIGKILL the runner (only it) ``delay`` s after ``phase`` began; the phase it was really in,
    or ``ended`` when the run finished first."""
    seen = trigger(phase)
    if not run.until(lambda: seen(run), timeout=timeout):
        if run.alive():
            pytest.fail(f"{phase} never began within {timeout:g}s:\n{run.log()[-3000:]}")
        return "ended"
    time.sleep(delay)
    if not run.alive():
        return "ended"
    run.signal(signal.SIGKILL)
    run.process.wait(timeout=60)
    return observed_phase(run)


def processes_marked(run_id: str) -> list[int]:
    """Processes whose environment carries the run's ``CHAOSKIT_RUN_ID`` (what it started)."""
    mark = f"CHAOSKIT_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def listening(ports: Sequence[int]) -> set[int]:
    """Which of ``ports`` have a TCP listener (from /proc/net, as ``ss -ltn`` would say)."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) in ports:
                    found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def outstanding(state: Path) -> str:
    """``chaoskit status``'s text; it must not fail."""
    shown = chaoskit("status", "--state-dir", str(state))
    assert shown.returncode == 0, f"status exit {shown.returncode}:\n{shown.stdout}{shown.stderr}"
    return shown.stdout.strip()


CLEAN = "No outstanding faults."


def recover_all(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``chaoskit recover`` must take everything back (exit 0) and leave ``status`` clean."""
    done = chaoskit("recover", "--state-dir", str(state), *args)
    detail = f"recover exit {done.returncode}:\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, detail
    assert outstanding(state) == CLEAN, detail
    return done


def assert_nothing_left(run_id: str, ports: Sequence[int], seconds: float = 15.0) -> None:
    """No process of the run, no listener on its ports (stopping can take a moment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (processes_marked(run_id) or listening(ports)):
        time.sleep(0.1)
    left = processes_marked(run_id)
    assert not left, f"processes of run {run_id} still alive: {[_cmdline(p) for p in left]}"
    assert not listening(ports), f"still listening after recover: {sorted(listening(ports))}"


def _cmdline(pid: int) -> str:
    try:
        return f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid}: gone"


def process_state(pid: int) -> str:
    """The one-letter state in /proc (``T`` stopped, ``S`` sleeping...), or ``gone``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


@contextlib.contextmanager
def sleepers(count: int) -> Iterator[list[int]]:
    """``count`` real processes to freeze; killed (by pid) on the way out."""
    started = [subprocess.Popen(["sleep", "300"]) for _ in range(count)]
    try:
        yield [p.pid for p in started]
    finally:
        for process in started:
            process.kill()
            process.wait(timeout=30)


def crashed(folder: Path, pid: int, state: Path) -> Run:
    """A run SIGKILLed while ``pid`` is frozen: its ledger says applied, the process is stopped."""
    step = f"{{name: freeze, fault: process.stop, with: {{pid: {pid}}}, duration: 1h}}"
    experiment = f"title: freeze\nmethod:\n  - {step}\n"
    with running(folder, experiment, state=state) as run:
        assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
        run.signal(signal.SIGKILL)
        run.finish(timeout=30)
    assert process_state(pid) == "T"
    return run
