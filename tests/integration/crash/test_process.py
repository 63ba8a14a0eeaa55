"""Crash safety of ``process.stop``: the runner is SIGKILLed while real processes are frozen;
after ``chaoskit recover`` they run and work again (observed in /proc and by their output)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from chaoskit.drivers.process import processes
from tests.integration.crash import killing


def _working(ticks: Path, seconds: float = 10.0) -> bool:
    """The ticker writes a line every 50 ms: growing output means it really runs."""
    before = ticks.stat().st_size if ticks.exists() else 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if ticks.exists() and ticks.stat().st_size > before:
            return True
    return False


def _state(pid: int) -> str:
    info = processes.read(pid)
    return info.state if info else "gone"


@pytest.mark.parametrize("fault", ["process.stop"])
def test_process_fault_is_recovered_after_a_sigkill_at_any_moment(fault: str, tmp_path: Path) -> None:
    def moment(index: int, delay: float) -> None:
        folder = tmp_path / f"m{index}"
        folder.mkdir()
        ticks = folder / "ticks"
        script = f"while :; do echo tick >> {ticks}; sleep 0.05; done"
        with subprocess.Popen(["sh", "-c", script]) as ticker:
            try:
                assert _working(ticks), "the ticker never started"
                killing.crash_and_recover(
                    folder,
                    f"title: freeze then crash\n"
                    f"method:\n"
                    f"  - fault: {fault}\n"
                    f"    with: {{pid: {ticker.pid}}}\n"
                    f"    duration: 1h\n",
                    delay,
                    left_behind=lambda: _state(ticker.pid) == "T" and not _working(ticks, 1.0),
                )
                # recover has run: the freeze is lifted and the process works again.
                assert _state(ticker.pid) not in {"T", "gone"}, _state(ticker.pid)
                assert _working(ticks), f"the ticker does not work after recover (moment {delay}s)"
            finally:
                ticker.kill()
                ticker.wait(timeout=30)

    killing.each_moment(killing.moments(fault), moment)
