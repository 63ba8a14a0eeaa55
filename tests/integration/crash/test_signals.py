"""The signal matrix: every terminating signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2)
sent to a real ``chaoskit run`` in every phase makes it revert what it applied, run its rollbacks,
write its journal (verdict ``interrupted``) and exit 130; three quick signals never skip the
journal. The experiment is small and real: a ``python3 -m http.server`` it starts, frozen by
``process.stop``, with pauses long enough to land in each phase.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import pytest

from tests.integration.crash import killing

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2]

EXPERIMENT = """\
title: a small server, frozen, with a rollback
config: {port: 0}
setup:
  - id: server
    name: start the server
    action: process.start
    with:
      argv: [python3, -m, http.server, --bind, 127.0.0.1, "${port}"]
      wait_for: {port: "${port}"}
      timeout: 30s
  - pause: 1500ms
steady_state:
  - name: the server answers
    probe: http.load
    with: {url: "http://127.0.0.1:${port}/", duration: 1500ms, rate: 4, timeout: 2s}
method:
  - name: freeze the server
    fault: process.stop
    with: {pid: "${steps.server.output.pid}"}
    duration: 2s
recovery: {within: 10s, interval: 500ms}
rollbacks:
  - name: rollback marker
    action: process.command
    with: {argv: [python3, -c, "print('rolled back')"]}
  - pause: 1500ms
teardown:
  - pause: 1500ms
  - name: teardown probe
    probe: http.request
    with: {url: "http://127.0.0.1:${port}/", timeout: 2s}
"""


def _after_heading(heading: str) -> Callable[[killing.Run], bool]:
    return lambda run: heading in run.log()


PHASES: dict[str, Callable[[killing.Run], bool]] = {
    "setup": killing.trigger("setup"),
    "before": _after_heading("steady state before ─"),
    "method": killing.trigger("hold"),
    "after": _after_heading("steady state after"),
    "rollbacks": _after_heading("rollbacks ─"),
    "teardown": _after_heading("teardown ─"),
}


def interrupted(folder: Path, phase: str, signals: list[signal.Signals], gap: float = 0.0) -> killing.Run:
    """Run the experiment, send ``signals`` (``gap`` s apart) 0.3 s into ``phase``, and check
    everything a user relies on after an interrupt."""
    port = killing.free_port()
    with killing.running(folder, EXPERIMENT, variables={"port": port}) as run:
        seen = PHASES[phase]
        assert run.until(lambda: seen(run), timeout=60), f"{phase} never began:\n{run.log()[-3000:]}"
        time.sleep(0.3)
        assert run.alive(), f"the run ended before {phase} could be interrupted:\n{run.log()[-3000:]}"
        for sig in signals:
            run.signal(sig)
            time.sleep(gap)
        code = run.finish(timeout=90)
    what = f"{[s.name for s in signals]} in {phase} (exit {code}):\n{run.log()[-3000:]}"
    assert code == 130, what
    assert run.journal.exists(), f"no journal at {run.journal}: {what}"
    journal = run.read_journal()
    assert journal["verdict"] == "interrupted", what
    if phase in {"method", "after", "rollbacks"}:  # the method ran: its rollbacks must too
        marks = [s for s in journal["rollbacks"] if s.get("name") == "rollback marker"]
        assert marks and marks[0]["status"] == "ok", f"no rollback: {journal['rollbacks']}\n{what}"
    assert all(f.get("revert") in {"reverted", "gone-with-host"} for f in journal["faults"]), what
    assert killing.outstanding(run.state) == killing.CLEAN, what
    killing.assert_nothing_left(run.run_id, [port], seconds=5)
    return run


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_in_any_phase_reverts_runs_rollbacks_and_writes_the_journal(
    sig: signal.Signals, tmp_path: Path
) -> None:
    with futures.ThreadPoolExecutor(max_workers=len(PHASES)) as pool:
        done = [pool.submit(interrupted, tmp_path / phase, phase, [sig]) for phase in PHASES]
        for each in done:
            each.result()


@pytest.mark.parametrize(
    "signals",
    [
        [signal.SIGINT] * 3,
        [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
        [signal.SIGUSR1, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR2],
    ],
    ids=["three-SIGINTs", "TERM-INT-HUP", "USR1-QUIT-TERM-USR2"],
)
def test_quick_repeated_signals_never_skip_the_journal(signals: list[signal.Signals], tmp_path: Path) -> None:
    """Ctrl-C pressed three times while a fault is applied: still reverted, journaled, exit 130."""
    interrupted(tmp_path, "method", signals, gap=0.05)
