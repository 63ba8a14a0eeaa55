"""``recover --sweep`` stops what ``process.start`` left running, found by ``CHAOSKIT_RUN_ID``
without any ledger entry, but never a live run's processes (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit import testing
from chaoskit.drivers import registry
from chaoskit.engine import ledgers, recovering


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def started() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Two processes as process.start leaves them: their own session, the run id in their env."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    for run_id in ("dead-run", "live-run", "elsewhere"):
        children[run_id] = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"],
            env={**os.environ, "CHAOSKIT_RUN_ID": run_id},
            start_new_session=True,
        )
    yield children
    for child in children.values():
        child.kill()
        child.wait(timeout=10)


def test_sweep_stops_a_dead_runs_processes_and_leaves_live_and_unknown_runs_alone(
    tmp_path: Path, started: dict[str, subprocess.Popen[bytes]]
) -> None:
    ledgers.Ledger.create(tmp_path, "dead-run").close()  # its ledger is all that is left of it
    live = ledgers.Ledger.create(tmp_path, "live-run")
    drivers = registry.build(
        [*registry.load(only=["process"]).drivers.values(), testing.FakeDriver().driver()]
    )
    try:
        report = recovering.recover(tmp_path, drivers, sweep=True)
    finally:
        live.close()
    swept = "\n".join(report.swept)
    deadline = time.monotonic() + 15
    while _alive(started["dead-run"].pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(started["dead-run"].pid), swept
    assert "stopped process group" in swept and "of run dead-run" in swept
    assert _alive(started["live-run"].pid) and "run live-run: it is live" in swept
    assert _alive(started["elsewhere"].pid)
    assert "chaoskit recover elsewhere --sweep" in swept

    # By name, a run with no ledger here is swept: the user says it is dead.
    named = recovering.recover(tmp_path, drivers, "elsewhere", sweep=True)
    assert any("of run elsewhere" in line for line in named.swept)
    deadline = time.monotonic() + 15
    while _alive(started["elsewhere"].pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(started["elsewhere"].pid)
