"""Guardrails on real ``chaoskit run`` processes holding real faults (``process.stop`` of real
sleepers): the halt lever pulled during a guard poll, during rollbacks and between two injects;
resume; a preflight veto; a ramp; ``max_duration``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from chaoskit.engine import halts
from tests.integration.crash import killing


def _pull(state: Path, reason: str) -> None:
    halts.write_file(halts.local_path(state), halts.new(reason))


def test_a_halt_during_a_guard_poll_reverts_and_ends_halted(tmp_path: Path) -> None:
    with killing.sleepers(1) as (pid,):
        experiment = (
            "title: halt during a guard poll\n"
            "method:\n"
            f"  - {{name: freeze, fault: process.stop, with: {{pid: {pid}}}}}\n"
            "  - pause: 1m\n"
            "guards:\n"
            "  - {name: slow guard, probe: process.command, with: {argv: [sleep, '2']}, interval: 100ms}\n"
        )
        with killing.running(tmp_path, experiment) as run:
            assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
            assert killing.process_state(pid) == "T"
            _pull(run.state, "incident 42")
            code = run.finish(timeout=60)
        assert code == 5, run.log()
        journal = run.read_journal()
        assert journal["verdict"] == "halted" and "incident 42" in journal["reason"]
        assert killing.process_state(pid) != "T"
        assert killing.outstanding(run.state).endswith(killing.CLEAN)  # under the halt in force


def test_a_halt_during_rollbacks_lets_them_finish_and_ends_halted(tmp_path: Path) -> None:
    with killing.sleepers(1) as (pid,):
        marker = tmp_path / "rolled-back"
        experiment = (
            "title: halt during rollbacks\n"
            "method:\n"
            f"  - {{name: freeze, fault: process.stop, with: {{pid: {pid}}}, duration: 500ms}}\n"
            "rollbacks:\n"
            "  - {name: slow rollback, action: process.command,\n"
            f"     with: {{argv: [sh, -c, 'sleep 2; touch {marker}']}}}}\n"
        )
        with killing.running(tmp_path, experiment) as run:
            assert run.until(lambda: "rollbacks ─" in run.log(), timeout=60), run.log()
            _pull(run.state, "stop everything")
            code = run.finish(timeout=60)
        assert code == 5, run.log()
        assert marker.exists(), "the rollback was cut short"
        assert run.read_journal()["verdict"] == "halted"
        assert killing.process_state(pid) != "T"


def test_a_halt_between_two_injects_keeps_the_second_out_and_resume_lets_runs_start(tmp_path: Path) -> None:
    with killing.sleepers(2) as (first, second):
        experiment = (
            "title: halt between injects\n"
            "method:\n"
            f"  - {{name: first, fault: process.stop, with: {{pid: {first}}}}}\n"
            "  - pause: 3s\n"
            f"  - {{name: second, fault: process.stop, with: {{pid: {second}}}}}\n"
        )
        with killing.running(tmp_path / "a", experiment) as run:
            assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
            _pull(run.state, "not now")
            code = run.finish(timeout=60)
        assert code == 5, run.log()
        assert [r["step"] for r in run.lines("intent")] == ["first"], "the second fault was injected"
        assert killing.process_state(first) != "T" and killing.process_state(second) != "T"

        # While halted, a new run is refused; after resume it runs.
        refused = killing.chaoskit(
            "run", str(tmp_path / "a" / "experiment.yaml"), "--state-dir", str(run.state)
        )
        assert refused.returncode == 5 and "not now" in refused.stderr, refused.stderr
        resumed = killing.chaoskit("resume", "--state-dir", str(run.state))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        quick = tmp_path / "quick.yaml"
        quick.write_text(f"title: q\nmethod:\n  - {{fault: process.stop, with: {{pid: {first}}}}}\n")
        ran = killing.chaoskit("run", str(quick), "--state-dir", str(run.state), "-q")
        assert ran.returncode == 0, ran.stdout + ran.stderr


def test_a_preflight_veto_a_ramp_and_max_duration_through_the_cli(tmp_path: Path) -> None:
    with killing.sleepers(3) as pids:
        vetoed = tmp_path / "vetoed.yaml"
        vetoed.write_text(
            "title: vetoed\n"
            "preflight:\n"
            "  - {name: no incident open, probe: process.command, with: {argv: ['false']},\n"
            "     expect: {path: exit_code, equals: 0}}\n"
            "method:\n"
            f"  - {{fault: process.stop, with: {{pid: {pids[0]}}}}}\n"
        )
        result = killing.chaoskit("run", str(vetoed), "--state-dir", str(tmp_path / "s"), "-q")
        assert result.returncode == 6, result.stdout + result.stderr
        assert "vetoed" in result.stdout and "no incident open" in result.stdout
        assert killing.process_state(pids[0]) != "T"

        # A ramp over three sleepers of its own (one command line): each stage checked; it holds.
        token = f"{os.getpid()}{len(str(tmp_path))}"
        ramp_pids = [subprocess.Popen(["sleep", f"30{i}.{token}"]) for i in range(3)]
        try:
            ramped = tmp_path / "ramp.yaml"
            ramped.write_text(
                "title: ramp\n"
                "steady_state:\n"
                "  - {name: ok, probe: process.command, with: {argv: ['true']}}\n"
                "method:\n"
                f"  - {{name: grow, fault: process.stop, with: {{cmdline: '^sleep 30[0-9][.]{token}$'}}, "
                "ramp: {stages: [1, 2, 3], hold: 200ms}}\n"
            )
            result = killing.chaoskit("run", str(ramped), "--state-dir", str(tmp_path / "s"))
            assert result.returncode == 0, result.stdout + result.stderr
            for stage in ("1/3", "2/3", "3/3"):
                assert f"ramp stage {stage}" in result.stdout + result.stderr
            assert all(killing.process_state(p.pid) != "T" for p in ramp_pids)
        finally:
            for process in ramp_pids:
                process.kill()
                process.wait(timeout=30)

        forgotten = tmp_path / "forgotten.yaml"
        forgotten.write_text(
            "title: forgotten\nmethod:\n"
            f"  - {{fault: process.stop, with: {{pid: {pids[0]}}}}}\n  - pause: 1h\n"
        )
        result = killing.chaoskit(
            "run", str(forgotten), "--state-dir", str(tmp_path / "s"), "-q", "--max-duration", "2s"
        )
        assert result.returncode == 5, result.stdout + result.stderr
        assert "max_duration 2s reached" in result.stdout
        assert killing.process_state(pids[0]) != "T"
