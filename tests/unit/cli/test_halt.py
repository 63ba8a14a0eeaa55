"""``chaoskit halt`` / ``resume`` / ``status`` as a user sees them: the levers pulled and released
with who, when and why; live runs (real processes holding a ledger's lock) waited for, and one that
ignores SIGTERM killed; a GameDay refused while halted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chaoskit.cli import main
from chaoskit.engine import halts, ledgers

# A stand-in runner: holds its ledger's lock like a live run, and (unless told to hang) ends as
# "halted" once the local lever says so.
RUNNER = r"""
import fcntl, json, os, signal, sys, time
state, run_id, hang = sys.argv[1], sys.argv[2], sys.argv[3] == "hang"
path = os.path.join(state, "ledgers", run_id + ".jsonl")
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, (json.dumps({"type": "run-start", "run_id": run_id, "pid": os.getpid()}) + "\n").encode())
if hang:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # hung in a driver call: deaf to the polite stop
print("live", flush=True)
for _ in range(600):
    if not hang and os.path.exists(os.path.join(state, "halt.json")):
        os.write(fd, (json.dumps({"type": "run-end", "verdict": "halted"}) + "\n").encode())
        break
    time.sleep(0.05)
"""


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main.cli, list(args), catch_exceptions=False, env=env or {"CHAOSKIT_HALT": ""})


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def start_runner(
    state: Path, run_id: str, runners: list[subprocess.Popen[str]], *, hang: bool = False
) -> int:
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(state), run_id, "hang" if hang else "react"],
        stdout=subprocess.PIPE,
        text=True,
    )
    runners.append(process)
    assert process.stdout is not None and process.stdout.readline().strip() == "live"
    return process.pid


def test_halt_status_resume_say_who_when_why(tmp_path: Path) -> None:
    halted = cli("halt", "--reason", "incident 42", "--state-dir", str(tmp_path))
    assert halted.exit_code == 0, halted.output
    lines = halted.stdout.splitlines()
    assert lines[0].startswith("halted by ") and lines[0].endswith(": incident 42")
    assert f"lever pulled: {tmp_path}/halt.json" in lines
    assert "no run was live" in lines
    assert lines[-1] == "new runs are refused until `chaoskit resume`"

    status = cli("status", "--state-dir", str(tmp_path))
    first = status.stdout.splitlines()[0]
    assert first.startswith("HALTED by ") and first.endswith(": incident 42")
    assert status.stdout.splitlines()[-1] == "No outstanding faults."

    as_json = cli("status", "--state-dir", str(tmp_path), "--output", "json")
    assert json.loads(as_json.stdout) == []  # the list stays what it was
    halt = json.loads(as_json.stderr.removeprefix("halt: "))
    assert (halt["reason"], halt["lever"]) == ("incident 42", f"{tmp_path}/halt.json")

    resumed = cli("resume", "--state-dir", str(tmp_path), "--reason", "db back")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.splitlines()[0].startswith(f"{tmp_path}/halt.json: lifted the halt by ")
    assert resumed.stdout.splitlines()[0].endswith(": incident 42")
    assert resumed.stdout.splitlines()[-1].endswith(": db back")
    assert cli("status", "--state-dir", str(tmp_path)).stdout == "No outstanding faults.\n"


def test_a_named_file_lever_is_pulled_and_released(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "halt.json"
    assert cli("halt", "--state-dir", str(tmp_path / "s"), "--lever", str(shared)).exit_code == 0
    assert json.loads(shared.read_text())["halted"] is True
    # Another machine's state dir, watching the same shared lever, sees it.
    other = cli("status", "--state-dir", str(tmp_path / "other"), env={"CHAOSKIT_HALT": str(shared)})
    assert other.stdout.splitlines()[1].startswith(f"  lever: {shared}")
    assert cli("resume", "--state-dir", str(tmp_path / "s"), "--lever", str(shared)).exit_code == 0
    assert json.loads(shared.read_text())["halted"] is False


def test_resume_exits_5_while_a_lever_it_cant_release_still_says_halted(tmp_path: Path) -> None:
    shared = tmp_path / "elsewhere.json"
    halts.write_file(shared, halts.Halt("zone down", "ana@ops", "2030-01-01T00:00:00"))
    result = cli("resume", "--state-dir", str(tmp_path), env={"CHAOSKIT_HALT": str(shared)})
    assert result.exit_code == 5
    assert "warning: still halted by ana@ops at 2030-01-01T00:00:00: zone down" in result.stderr


def test_bad_lever_uris_are_refused_before_anything_is_pulled(tmp_path: Path) -> None:
    result = cli("halt", "--state-dir", str(tmp_path), "--lever", "ftp://x/y")
    assert result.exit_code == 2
    assert "unknown scheme 'ftp'" in result.stderr
    assert not halts.local_path(tmp_path).exists()
    url = cli("halt", "--state-dir", str(tmp_path), "--lever", "http://127.0.0.1:9/halt")
    assert url.exit_code == 2 and "chaoskit only reads it" in url.stderr


def test_help_documents_the_exit_codes() -> None:
    for command, codes in (("halt", (0, 2, 4)), ("resume", (0, 2, 4, 5))):
        text = cli(command, "--help").stdout
        assert "Exit codes:" in text
        assert all(re.search(rf"\n\s+{code}\s", text) for code in codes), text


def test_halt_waits_for_live_runs_and_prints_how_each_ended(
    tmp_path: Path, runners: list[subprocess.Popen[str]]
) -> None:
    start_runner(tmp_path, "run-a", runners)
    start_runner(tmp_path, "run-b", runners)
    result = cli("halt", "--state-dir", str(tmp_path), "--wait", "20")
    assert result.exit_code == 0, result.output
    assert "waiting up to 20s for 2 live runs to stop" in result.stdout
    assert "run run-a ended: halted; nothing left applied" in result.stdout
    assert "run run-b ended: halted; nothing left applied" in result.stdout
    assert "SIGTERM" not in result.stdout


def test_a_hung_runner_gets_sigterm_then_sigkill_found_by_its_lock(
    tmp_path: Path, runners: list[subprocess.Popen[str]]
) -> None:
    pid = start_runner(tmp_path, "stuck", runners, hang=True)
    started = time.monotonic()
    result = cli("halt", "--state-dir", str(tmp_path), "--wait", "0.3", "--grace", "0.5")
    assert result.exit_code == 0, result.output
    assert f"run stuck did not stop: SIGTERM to pid {pid} (it holds stuck.jsonl)" in result.stdout
    assert f"run stuck did not stop: SIGKILL to pid {pid} (it holds stuck.jsonl)" in result.stdout
    assert "run stuck ended: no verdict (it died); nothing left applied" in result.stdout
    assert time.monotonic() - started < 10
    assert runners[0].wait(timeout=10) == -9
    assert not ledgers.is_live(ledgers.path_of(tmp_path, "stuck"))


def test_gameday_run_is_refused_while_halted(tmp_path: Path) -> None:
    plan = Path(__file__).parents[3] / "experiments" / "gameday-demo.yaml"
    halts.write_file(halts.local_path(tmp_path), halts.Halt("incident 42", "ana@ops", "2030-01-01T00:00:00"))
    result = cli("gameday", "run", str(plan), "--state-dir", str(tmp_path))
    assert result.exit_code == 5
    assert "refused: halted by ana@ops at 2030-01-01T00:00:00: incident 42" in result.stderr
