"""``chaoskit gameday`` given files it can't use, and outputs it must not write over: exit 2 with
the file named, before any experiment runs, never a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chaoskit.cli.main import cli

EXPERIMENT = "title: short\nmethod:\n  - pause: 10ms\n"
PLAN = "title: plan\nexperiments:\n  - file: short.yaml\nschedule: {cron: '0 10 * * *'}\n"


def gameday(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["gameday", *args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def plan(tmp_path: Path, text: str = PLAN) -> Path:
    (tmp_path / "short.yaml").write_text(EXPERIMENT, encoding="utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["run", "next", "validate", "schedule"])
@pytest.mark.parametrize(
    ("content", "where"),
    [("title: caf\u00e9\n".encode("latin-1"), "1:11"), (bytes(range(256)), "2:118")],
    ids=["latin-1", "random-bytes"],
)
def test_a_plan_that_is_not_utf8_exits_2_at_its_first_bad_byte(
    tmp_path: Path, command: str, content: bytes, where: str
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(content)
    state = [] if command == "validate" else ["--state-dir", str(tmp_path / "state")]
    result = gameday(command, str(path), *state)
    assert result.exit_code == 2, result.output
    assert f"{path}:{where}: not UTF-8 text (byte 0x" in result.stderr


def test_a_plan_nested_hundreds_deep_exits_2_located(tmp_path: Path) -> None:
    path = plan(tmp_path, f"title: x\nexperiments: []\nvars: {{a: {'[' * 500}{']' * 500}}}\n")
    result = gameday("validate", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:3:" in result.stderr and "nested more than 100 levels deep" in result.stderr


def test_validate_checks_the_plan_and_every_experiment(tmp_path: Path) -> None:
    path = plan(tmp_path)
    ok = gameday("validate", str(path))
    assert ok.exit_code == 0, ok.output
    assert ok.output == f"{path}: valid (1 experiment in 1 stage, a schedule)\n"
    (tmp_path / "short.yaml").write_bytes(b"title: caf\xe9\nmethod: []\n")
    bad = gameday("validate", str(path))
    assert bad.exit_code == 2, bad.output
    assert f"{tmp_path / 'short.yaml'}:1:11: not UTF-8 text" in bad.stderr
    (tmp_path / "short.yaml").write_text("title: t\nmethod:\n  - pause: 1e309\n", encoding="utf-8")
    absurd = gameday("validate", str(path))
    assert absurd.exit_code == 2, absurd.output
    assert f"{tmp_path / 'short.yaml'}:3:5: method[0].pause: a duration can be at most 30d" in absurd.stderr


@pytest.mark.parametrize("option", ["--report", "--markdown", "--junit"])
def test_run_refuses_outputs_that_are_pipes_devices_or_folders_before_running(
    tmp_path: Path, option: str
) -> None:
    path = plan(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    for target in (fifo, null, tmp_path / "folder"):
        (tmp_path / "folder").mkdir(exist_ok=True)
        result = gameday("run", str(path), "--state-dir", str(tmp_path / "state"), option, str(target))
        assert result.exit_code == 2, result.output
        assert f"{option} {target}: " in result.stderr
        assert not (tmp_path / "state" / "journals").exists(), "an experiment ran"
    assert stat.S_ISFIFO(fifo.stat().st_mode) and null.resolve() == Path("/dev/null")
