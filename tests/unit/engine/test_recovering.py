"""The ledger after a crash, and ``recover``: a real child process runs an experiment with the fake
file-marker fault and is SIGKILLed while the fault is applied; recover then takes it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaoskit import errors, testing
from chaoskit.engine import ledgers, recovering

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from chaoskit import testing
    from chaoskit.engine import clocks

    state, marker = Path(sys.argv[1]), sys.argv[2]
    doc = {
        "title": "crash me",
        "method": [
            {"name": "mark", "fault": "fake.marker", "with": {"path": marker}},
            {"pause": "1h"},
        ],
    }
    # Real time: the parent kills this process while the pause runs.
    testing.run_experiment(doc, clock=clocks.RealClock(), state_dir=state, run_id="crashed")
    """
)


def _wait_for_applied(path: Path, child: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and '"applied"' in path.read_text():
            return
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child exited"
        time.sleep(0.05)
    pytest.fail(f"no applied line in {path} after {timeout}s")


def test_recover_takes_back_a_fault_left_by_a_killed_runner(tmp_path: Path) -> None:
    marker = tmp_path / "fault-is-on"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(marker)], stderr=subprocess.PIPE
    ) as child:
        try:
            _wait_for_applied(ledgers.path_of(tmp_path, "crashed"), child)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert marker.exists(), "the fault is still applied after the crash"
    [left] = ledgers.outstanding(tmp_path)
    assert (left.run_id, left.activity, left.state) == ("crashed", "fake.marker", "applied")

    report = recovering.recover(tmp_path, testing.FakeDriver().registry())
    assert not marker.exists()
    assert [o.status for o in report.outcomes] == ["reverted"]
    assert ledgers.outstanding(tmp_path) == []
    again = recovering.recover(tmp_path, testing.FakeDriver().registry())
    assert again.outcomes == []


def test_intent_without_applied_is_reverted_best_effort(tmp_path: Path) -> None:
    marker = tmp_path / "maybe"
    marker.write_text("x")  # the crash came after inject but before the applied line
    ledger = ledgers.Ledger.create(tmp_path, "r2")
    from chaoskit.drivers import contract

    target = contract.Target(kind="file", id=str(marker), name=str(marker))
    ledger.intent("f1", "fake.marker", "mark", target, {"v": 1, "path": str(marker)})
    ledger.close()
    [entry] = ledgers.outstanding(tmp_path, "r2")
    assert entry.state == "intent"
    report = recovering.recover(tmp_path, testing.FakeDriver().registry(), "r2")
    assert [o.status for o in report.outcomes] == ["reverted"]
    assert not marker.exists()


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "r3")
    from chaoskit.drivers import contract

    ledger.intent("f1", "fake.break", "s", contract.Target("fake", "a", "a"), {"target": "a"})
    ledger.applied("f1", {"target": "a"})
    with ledger.path.open("a") as f:
        f.write('{"type": "reverted", "id": "f1", "outc')
    [entry] = ledgers.outstanding(tmp_path)
    assert entry.state == "applied"


def test_a_garbled_middle_line_is_skipped_and_named(tmp_path: Path) -> None:
    path = ledgers.path_of(tmp_path, "r4")
    path.parent.mkdir(parents=True)
    path.write_text('{"type": "run-start"}\nnot json\n{"type": "run-end"}\n')
    assert ledgers.outstanding(tmp_path) == []
    [problem] = ledgers.survey(tmp_path, set_aside=False).problems
    assert "r4.jsonl:2: not a ledger line" in problem


def test_unknown_activity_is_reported_not_dropped(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "r5")
    from chaoskit.drivers import contract

    ledger.intent("f1", "gone.fault", "s", contract.Target("x", "1", "1"), {})
    ledger.applied("f1", {})
    ledger.close()
    report = recovering.recover(tmp_path, testing.FakeDriver().registry())
    assert [o.status for o in report.outcomes] == ["unknown-activity"]
    assert not report.ok
    assert len(ledgers.outstanding(tmp_path)) == 1


def test_recover_of_an_unknown_run_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(errors.LedgerError, match="no ledger for run 'nope'"):
        recovering.recover(tmp_path, testing.FakeDriver().registry(), "nope")


def test_ledger_lines_are_json_with_run_id_and_time(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "r6")
    ledger.start("t", None)
    [line] = [json.loads(x) for x in ledger.path.read_text().splitlines()]
    assert line["run_id"] == "r6" and line["type"] == "run-start" and "at" in line


def test_sweep_asks_each_driver_for_leftovers_without_the_ledger(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    report = recovering.recover(tmp_path, fake.registry(), sweep=True)
    assert report.outcomes == []
    assert report.swept == ["fake: fake: nothing left"]
    assert ("sweep", "*") in fake.calls


def test_sweep_of_a_run_whose_ledger_is_lost_still_sweeps(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    report = recovering.recover(tmp_path, fake.registry(), "lost-run", sweep=True)
    assert report.swept == ["fake: fake: nothing left of run lost-run"]
