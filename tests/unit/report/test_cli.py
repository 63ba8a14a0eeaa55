"""``chaoskit gate``, ``report`` and ``history`` through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import junitparser
import pytest
from click.testing import CliRunner

from chaoskit.cli.main import cli
from chaoskit.engine import journals
from chaoskit.report import history, scores
from tests.unit.report import samples

V = journals.Verdict


def save(tmp_path: Path, journal: journals.Journal, name: str | None = None) -> Path:
    path = tmp_path / (name or f"{journal.run_id}.json")
    journals.write(journal, path)
    return path


def gate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["gate", *args])
    return result.exit_code, result.output


def test_gate_passes_completed_runs(tmp_path: Path) -> None:
    path = save(tmp_path, samples.journal(V.COMPLETED, method_ok=True))
    code, output = gate(str(path))
    assert code == 0, output
    assert "PASS" in output and "gate passed: 1 of 1" in output


@pytest.mark.parametrize(
    ("verdict", "code"), [(V.DEVIATED, 1), (V.NOT_STEADY, 3), (V.ERROR, 4), (V.INTERRUPTED, 130)]
)
def test_gate_exits_with_the_verdicts_code(tmp_path: Path, verdict: journals.Verdict, code: int) -> None:
    path = save(tmp_path, samples.journal(verdict))
    exit_code, output = gate(str(path))
    assert exit_code == code
    assert f"verdict {verdict.value}: a method probe's expect failed" in output


def test_gate_takes_the_worst_verdict_of_several(tmp_path: Path) -> None:
    paths = [
        save(tmp_path, samples.journal(V.COMPLETED, run_id="a", method_ok=True)),
        save(tmp_path, samples.journal(V.ERROR, run_id="b")),
        save(tmp_path, samples.journal(V.DEVIATED, run_id="c")),
    ]
    code, output = gate(*map(str, paths))
    assert code == 4
    assert "gate failed: 1 of 3 runs pass (exit 4)" in output


def test_allow_deviated_lets_a_deviated_run_pass(tmp_path: Path) -> None:
    path = save(tmp_path, samples.journal(V.DEVIATED))
    assert gate(str(path), "--allow", "deviated")[0] == 0
    assert gate(str(path), "--allow", "not-steady")[0] == 1


def test_thresholds_fail_the_gate_with_exit_1_and_say_why(tmp_path: Path) -> None:
    journal = samples.journal(V.COMPLETED, method_ok=True, recovered_in=12.0)
    path = save(tmp_path, journal)
    score = scores.of_journal(journal)
    assert score is not None
    code, output = gate(str(path), "--min-score", str(score + 1))
    assert code == 1 and f"score {score:.2f} is below the minimum" in output
    assert gate(str(path), "--min-score", str(score - 1))[0] == 0
    code, output = gate(str(path), "--max-recovery", "10s")
    assert code == 1 and "recovery took 12.000s; the gate allows at most 10s" in output
    assert gate(str(path), "--max-recovery", "15s")[0] == 0


def test_a_bad_journal_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"run_id": "x", "verdict": ', encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    good = save(tmp_path, samples.journal(V.COMPLETED, method_ok=True))
    result = CliRunner().invoke(
        cli, ["gate", str(good), str(broken), str(other), str(tmp_path / "missing.json")]
    )
    assert result.exit_code == 2
    assert f"{broken}:1:" in result.output and "not JSON" in result.output
    assert f"{other}: not a chaoskit journal" in result.output
    assert "missing.json: can't read the journal" in result.output
    assert "Traceback" not in result.output
    assert gate(str(good), "--max-recovery", "soon")[0] == 2


def test_gate_as_a_subprocess_gives_ci_its_exit_code(tmp_path: Path) -> None:
    path = save(tmp_path, samples.journal(V.NOT_STEADY))
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "gate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "FAIL" in done.stdout


def test_report_command_writes_each_format(tmp_path: Path) -> None:
    path = save(tmp_path, samples.journal())
    runner = CliRunner()
    out = tmp_path / "r.xml"
    assert runner.invoke(cli, ["report", str(path), "--format", "junit", "-o", str(out)]).exit_code == 0
    suite = next(iter(junitparser.JUnitXml.fromfile(str(out))))
    assert suite.tests == 5
    md = runner.invoke(cli, ["report", str(path), "--format", "md"])
    assert md.exit_code == 0 and "**Verdict: deviated**" in md.output
    page = runner.invoke(cli, ["report", str(path), "--format", "html"])
    assert page.exit_code == 0 and page.output.startswith("<!DOCTYPE html>") and "<svg" in page.output
    bad = runner.invoke(cli, ["report", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "can't read the journal" in bad.output


def test_history_records_runs_and_shows_them_over_time(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for day, (verdict, recovered) in enumerate([(V.COMPLETED, 3.0), (V.DEVIATED, 40.0), (V.COMPLETED, 2.0)]):
        journal = samples.journal(
            verdict,
            run_id=f"run-{day}",
            recovered_in=recovered,
            method_ok=verdict is V.COMPLETED,
            started=samples.T0 + timedelta(days=day),
        )
        history.record(journal, state)
        history.record(journal, state)  # recording twice keeps one row
    history.record(samples.not_steady().model_copy(update={"started": samples.T0 + timedelta(days=9)}), state)
    result = CliRunner().invoke(
        cli, ["history", "Checkout survives a stopped worker", "--output", "json", "--state-dir", str(state)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["run_id"], r["verdict"], r["recovery_measured"]) for r in rows] == [
        ("run-0", "completed", 3.0),
        ("run-1", "deviated", 40.0),
        ("run-2", "completed", 2.0),
    ]
    assert rows[1]["score"] < rows[0]["score"] and rows[2]["score"] > rows[0]["score"]
    by_file = CliRunner().invoke(
        cli, ["history", "checkout.yaml", "--output", "json", "--state-dir", str(state)]
    )
    assert len(json.loads(by_file.output)) == 3
    text = CliRunner().invoke(
        cli, ["history", "--state-dir", str(state)], env={"CHAOSKIT_STATE_DIR": "/nonexistent"}
    )
    assert text.exit_code == 0
    assert text.output.count("\n") == 1 + 4 + 1
    assert "not_steady" in text.output and "score trend:" in text.output
    empty = CliRunner().invoke(cli, ["history"], env={"CHAOSKIT_STATE_DIR": str(tmp_path / "empty")})
    assert empty.exit_code == 0 and "no runs recorded" in empty.output


@pytest.mark.parametrize("command", ["gate", "report"])
@pytest.mark.parametrize(
    ("content", "byte"),
    [('{"run_id": "caf\u00e9"}'.encode("latin-1"), "0xe9"), (bytes(range(256)), "0x80")],
    ids=["latin-1", "random-bytes"],
)
def test_a_journal_that_is_not_utf8_exits_2_naming_the_file(
    tmp_path: Path, command: str, content: bytes, byte: str
) -> None:
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"chaoskit {command}: {path}: not a chaoskit journal: not UTF-8 text (byte {byte}" in result.stderr
    assert "hint: pass the file `chaoskit run --journal PATH` wrote" in result.stderr


@pytest.mark.parametrize("command", ["gate", "report"])
def test_a_journal_nested_thousands_deep_exits_2_naming_the_file(tmp_path: Path, command: str) -> None:
    path = tmp_path / "journal.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = CliRunner().invoke(cli, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}: not a chaoskit journal (nested too deeply)" in result.stderr


def test_report_refuses_to_write_over_a_pipe_or_device(tmp_path: Path) -> None:
    journal = save(tmp_path, samples.journal(V.COMPLETED, method_ok=True))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    for target in (fifo, null, tmp_path):
        result = CliRunner().invoke(cli, ["report", str(journal), "-o", str(target)])
        assert result.exit_code == 2, result.output
        assert f"-o {target}: " in result.stderr and "omit -o to print on stdout" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode) and null.resolve() == Path("/dev/null")
