"""The process/HTTP demo experiment end to end through ``chaoskit run`` in a subprocess; a
runner killed mid-fault whose server is continued and stopped by ``chaoskit recover``; and one
killed while a process was starting, whose process recover finds by its mark."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from chaoskit.drivers.process import processes

ROOT = Path(__file__).resolve().parents[2]
# The demo's p99 budget is a user's SLO; on a CI machine shared by many builds one scheduling
# hiccup would breach it, and this test is about the flow, so it runs with a roomier budget.
BUDGET = "p99_ms=3000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def demo_servers(port: int) -> list[processes.Info]:
    """The experiment's web server for ``port``: its command line ends with the port."""
    return [
        p
        for p in processes.all_live()
        if "ThreadingHTTPServer" in p.cmdline and p.cmdline.endswith(f" {port}")
    ]


def chaoskit(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args, "--state-dir", str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_process_http_demo_completes(tmp_path: Path) -> None:
    experiment = "experiments/process-http.yaml"
    port = free_port()
    journal = tmp_path / "journal.json"
    done = chaoskit(
        "run",
        experiment,
        "--var",
        f"port={port}",
        "--var",
        BUDGET,
        "--journal",
        str(journal),
        state=tmp_path / "state",
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"

    record = json.loads(journal.read_text())
    assert record["verdict"] == "completed"
    assert record["exit_code"] == 0
    (fault,) = record["faults"]
    assert fault["activity"] == "process.stop" and fault["revert"] == "reverted"
    assert record["recovery"]["met"] is True
    assert [u["outcome"] for u in record["undo"]] == ["reverted"]
    # Under the fault the server answered nothing: the probe recorded timeouts, not successes.
    frozen = [c for c in record["checks"] if c["phase"] == "method"]
    assert frozen and frozen[0]["value"]["successes"] == 0
    # The server started in setup is gone after the run.
    assert wait_until(lambda: not demo_servers(port), 30)


def test_recover_continues_and_stops_the_server_of_a_killed_run(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    # A long freeze, so that the runner is surely killed while the server is stopped.
    experiment = (
        (ROOT / "experiments" / "process-http.yaml").read_text().replace("duration: 3s", "duration: 120s")
    )
    path = tmp_path / "long-freeze.yaml"
    path.write_text(experiment)
    runner = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "chaoskit",
                "run",
                str(path),
                "--var",
                f"port={port}",
                "--var",
                BUDGET,
                "-q",
            ),
            *("--journal", str(tmp_path / "j.json"), "--state-dir", str(state)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: any(p.state == "T" for p in demo_servers(port)), 120), (
            "server never stopped"
        )
        (server,) = demo_servers(port)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)

    # Nobody is left to revert: the server stays frozen.
    time.sleep(0.5)
    assert processes.same(server.pid, server.starttime) is not None
    assert demo_servers(port)[0].state == "T"

    done = chaoskit("recover", state=state)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert wait_until(lambda: not demo_servers(port), 30), "recover left the server running"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # A second recover has nothing left to do.
    again = chaoskit("recover", state=state)
    assert again.returncode == 0, again.stdout + again.stderr


def test_recover_stops_a_process_whose_runner_died_while_it_was_starting(tmp_path: Path) -> None:
    # The runner is killed inside process.start (waiting for a port that never opens), so the only
    # record is the write-ahead one: the mark in the child's environment, no pid.
    marker = f"ck-never-ready-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    path = tmp_path / "never-ready.yaml"
    path.write_text(
        "title: a server that never gets ready\n"
        "setup:\n"
        "  - id: server\n"
        "    action: process.start\n"
        "    with:\n"
        f"      argv: [{sys.executable}, -c, 'import time; time.sleep(300)', {marker}]\n"
        f"      wait_for: {{port: {free_port()}}}\n"
        "      timeout: 200s\n"
        "method:\n"
        "  - pause: 1s\n"
    )

    def started() -> list[processes.Info]:
        return [p for p in processes.all_live() if p.cmdline.endswith(f" {marker}")]

    runner = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "run", str(path), "-q", "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: bool(started()), 120), "the process was never started"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    (child,) = started()
    environ = processes.environ(child.pid)
    assert environ is not None and environ["CHAOSKIT_ENTRY"].startswith(environ["CHAOSKIT_RUN_ID"] + "/")
    time.sleep(0.5)
    assert processes.same(child.pid, child.starttime) is not None, "nobody should have stopped it yet"

    done = chaoskit("recover", state=state)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert wait_until(lambda: not started(), 30), "recover left the half-started process running"
    again = chaoskit("recover", state=state)
    assert again.returncode == 0, again.stdout + again.stderr
