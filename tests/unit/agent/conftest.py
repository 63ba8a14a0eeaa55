"""Real processes on this host as the agent's targets: its mechanics work on any pid."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoskit.agent import records, working
from tests.conftest import require


class Clock:
    """Wall-clock seconds the test moves by hand (lease expiry without waiting)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def root() -> None:
    """The agent enters namespaces and cgroups: it runs as root with nsenter (as its DaemonSet does)."""
    require("root and nsenter", os.geteuid() == 0 and shutil.which("nsenter") is not None, "run as root")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def agent(tmp_path: Path, clock: Clock) -> working.Agent:
    return working.Agent(records.Book(tmp_path / "state"), host_targets=True, clock=clock)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``sleep`` processes (optionally under a prefix, e.g. ``unshare --net``) with a unique
    argument a pattern can match; all killed after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*prefix: str, token: str | None = None) -> subprocess.Popen[bytes]:
        seconds = f"600.{token or uuid.uuid4().int % 10**9}"
        child = subprocess.Popen([*prefix, "sleep", seconds], start_new_session=True)
        started.append(child)
        # Found by its command line: only once the exec happened.
        assert wait(lambda: seconds.encode() in Path(f"/proc/{child.pid}/cmdline").read_bytes())
        return child

    yield start
    for child in started:
        child.kill()
        child.wait(timeout=10)


def wait(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :][:1]
