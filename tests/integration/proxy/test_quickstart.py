"""The two quickstart experiments end to end, through ``chaoskit run`` as a user runs them:
the demo survives 300 ms of backend latency (completed, exit 0) but not its backend going down
(deviated, exit 1). Each starts its own demo on free ports and stops it again."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run(experiment: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    port, backend, proxy, api = free_ports(4)
    journal = tmp_path / "journal.json"
    env = dict(os.environ)
    # The experiment starts `chaoskit demo`: the one installed next to this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CHAOSKIT_STATE_DIR"] = str(tmp_path / "state")
    argv = [
        sys.executable,
        "-m",
        "chaoskit",
        "run",
        str(ROOT / "experiments" / experiment),
        "--journal",
        str(journal),
        "--var",
        f"port={port}",
        "--var",
        f"backend_port={backend}",
        "--var",
        f"proxy_port={proxy}",
        "--var",
        f"proxy_api={api}",
    ]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=110, check=False)
    data = json.loads(journal.read_text())
    # The demo was stopped after teardown: nothing listens on its frontend port any more
    # (SO_REUSEADDR: connections it closed may linger in TIME_WAIT, a listener may not).
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    return result, data


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quickstart_completes_with_a_measured_recovery(tmp_path: Path) -> None:
    result, journal = run("quickstart.yaml", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "completed"
    recovery = journal["recovery"]
    assert isinstance(recovery, dict) and recovery["met"] is True
    assert isinstance(recovery["measured"], float) and 0 <= recovery["measured"] <= recovery["required"]
    (fault,) = journal["faults"]  # type: ignore[misc]
    assert fault["activity"] == "toxiproxy.latency" and fault["revert"] == "reverted"
    assert "completed" in result.stdout and "recovered in" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quickstart_deviates_when_the_backend_goes_down(tmp_path: Path) -> None:
    result, journal = run("quickstart-deviates.yaml", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert journal["verdict"] == "deviated"
    assert journal["guard_trips"]
    (fault,) = journal["faults"]  # type: ignore[misc]
    assert fault["activity"] == "toxiproxy.down" and fault["revert"] == "reverted"
