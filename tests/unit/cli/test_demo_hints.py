"""The demo's port-clash hint names flags that exist where the demo runs: its own when run as
``chaoskit demo``, ``--var`` when an experiment's ``process.start`` started it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from chaoskit.cli import demo


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def occupied() -> Iterator[socket.socket]:
    """A port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken


def _demo(flags: dict[str, int], *, in_run: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if in_run:
        env[demo.STARTED_BY_RUN] = "run-1"
    argv = [sys.executable, "-m", "chaoskit", "demo"]
    for flag, port in flags.items():
        argv += [flag, str(port)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def _flags(taken_flag: str, taken_port: int) -> dict[str, int]:
    free = _free_ports(4)
    flags = dict(zip(["--port", "--backend-port", "--proxy-port", "--api-port"], free, strict=True))
    flags[taken_flag] = taken_port
    return flags


@pytest.mark.parametrize("flag", ["--port", "--api-port", "--proxy-port"])
def test_alone_the_demo_names_its_own_flag_for_the_taken_port(occupied: socket.socket, flag: str) -> None:
    port = occupied.getsockname()[1]
    ran = _demo(_flags(flag, port), in_run=False)
    assert ran.returncode == 2, ran.stderr
    hint = ran.stderr.split("hint:", 1)[1]
    assert f"{port}: {flag} N" in hint
    assert hint.count(" N") == 1, hint  # only the port that is taken
    assert "--var" not in hint


@pytest.mark.parametrize(
    ("flag", "variable"),
    [("--port", "port"), ("--api-port", "proxy_api"), ("--backend-port", "backend_port")],
)
def test_started_by_a_run_the_demo_suggests_the_experiments_variable(
    occupied: socket.socket, flag: str, variable: str
) -> None:
    ran = _demo(_flags(flag, occupied.getsockname()[1]), in_run=True)
    assert ran.returncode == 2, ran.stderr
    hint = ran.stderr.split("hint:", 1)[1]
    assert f"--var {variable}=N" in hint
    assert hint.count("--var") == 1, hint
    # chaoskit run has none of the demo's flags.
    assert not any(f in hint for f in ("--port", "--api-port", "--backend-port", "--proxy-port")), hint
