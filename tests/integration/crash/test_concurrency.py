"""Concurrency on one state directory: two runs faulting one target at once (the second is
refused; the target ends as it began), ``chaoskit recover`` during a live run (it leaves the live
run's faults to it), two ``recover``s at once on one dead run (each fault taken back once)."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

from tests.integration.crash import killing


def freeze(pid: int, seconds: str, extra: str = "") -> str:
    step = f"name: freeze {pid}, fault: process.stop, with: {{pid: {pid}}}, duration: {seconds}{extra}"
    return f"  - {{{step}}}\n"


def test_two_runs_faulting_one_target_at_once_refuse_the_second(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(1) as (pid,):
        long, short = (f"title: freeze\nmethod:\n{freeze(pid, t)}" for t in ("10s", "1s"))
        with killing.running(tmp_path / "one", long, state=state) as first:
            assert first.until(lambda: first.lines("applied"), timeout=60), first.log()
            with killing.running(tmp_path / "two", short, state=state) as second:
                refused = second.finish(timeout=60)
            assert first.alive(), "the first run ended before the second tried: the test proves nothing"
            assert killing.process_state(pid) == "T", "the second run took back the first run's fault"
            done = first.finish(timeout=60)
        assert refused == 4, f"the second run was not refused (exit {refused}):\n{second.log()[-3000:]}"
        assert done == 0, first.log()[-3000:]
        assert killing.process_state(pid) not in {"T", "gone"}
        assert killing.outstanding(state) == killing.CLEAN


def test_one_experiment_faulting_one_target_twice_is_refused_at_validation(tmp_path: Path) -> None:
    with killing.sleepers(1) as (pid,):
        experiment = f"title: freeze twice\nmethod:\n{freeze(pid, '3s')}{freeze(pid, '1s')}"
        with killing.running(tmp_path, experiment) as run:
            code = run.finish(timeout=60)
        assert code == 2, f"exit {code}:\n{run.log()[-3000:]}"
        assert not run.lines("intent"), "a refused experiment injected something"
        assert killing.process_state(pid) not in {"T", "gone"}


def test_allowed_overlap_restores_the_original_state_whatever_order_the_faults_end_in(
    tmp_path: Path,
) -> None:
    with killing.sleepers(1) as (pid,):
        # The outer freeze ends first (1 s after the inner one began), the inner one last.
        experiment = (
            f"title: nested freezes\nmethod:\n{freeze(pid, '1500ms')}  - pause: 500ms\n"
            f"{freeze(pid, '3s', ', allow_overlap: true')}"
        )
        with killing.running(tmp_path, experiment) as run:
            assert run.until(lambda: len(run.lines("applied")) == 2, timeout=60), run.log()
            outer_ended = run.until(lambda: len(run.lines("reverted")) >= 1, timeout=10)
            assert outer_ended
            assert killing.process_state(pid) == "T", "the inner freeze was lifted with the outer one"
            code = run.finish(timeout=60)
        assert code == 0, run.log()[-3000:]
        assert killing.process_state(pid) not in {"T", "gone"}


def test_recover_during_a_live_run_leaves_its_faults_to_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(1) as (pid,):
        with killing.running(tmp_path, f"title: freeze\nmethod:\n{freeze(pid, '4s')}", state=state) as run:
            assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
            shown = killing.chaoskit("status", "--state-dir", str(state), "--output", "json")
            recovered = killing.chaoskit("recover", "--state-dir", str(state))
            assert run.alive(), "the run ended before recover ran: the test proves nothing"
            assert killing.process_state(pid) == "T", f"recover took a live run's fault:\n{recovered.stdout}"
            code = run.finish(timeout=60)
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert "live" in recovered.stdout + recovered.stderr, recovered.stdout + recovered.stderr
        entries = json.loads(shown.stdout)
        assert entries and all(e["live"] is True for e in entries), shown.stdout
        assert code == 0, run.log()[-3000:]
        outcomes = [(r.get("outcome"), r.get("by")) for r in run.lines("reverted")]
        assert outcomes == [("reverted", "run")], outcomes
        assert killing.process_state(pid) not in {"T", "gone"}


def test_two_recovers_at_once_take_each_fault_back_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(4) as pids:
        experiment = "title: four freezes\nmethod:\n" + "".join(freeze(p, "1h") for p in pids)
        with killing.running(tmp_path, experiment, state=state) as run:
            assert run.until(lambda: len(run.lines("applied")) == len(pids), timeout=60), run.log()
            run.signal(9)
            run.finish(timeout=30)
        argv = [sys.executable, "-m", "chaoskit", "recover", "--state-dir", str(state)]
        both = [
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in "ab"
        ]
        outputs = [p.communicate(timeout=120)[0] for p in both]
        assert [p.returncode for p in both] == [0, 0], outputs
        counted = collections.Counter(r.get("id") for r in run.lines("reverted"))
        assert counted and set(counted.values()) == {1}, f"reverted lines per fault: {counted}\n{outputs}"
        for pid in pids:
            assert killing.process_state(pid) not in {"T", "gone"}
        assert killing.outstanding(state) == killing.CLEAN
