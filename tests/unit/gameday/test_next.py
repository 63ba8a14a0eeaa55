"""`chaoskit gameday next`: the times the daemon will use, and the mean they really produce."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli.main import cli
from chaoskit.gameday import daemons, plans, schedules

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "experiments" / "gameday-chaos-monkey.yaml"
EFFECTIVE = re.compile(r"effective mean over the next 1000 runs: one run per ([\d.]+) eligible days")


def next_lines(plan: Path, state_dir: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["gameday", "next", str(plan), "--state-dir", str(state_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


@pytest.mark.parametrize("since", ["2026-11-02", "2027-03-01", "2028-06-05"])
def test_the_shipped_chaos_monkey_example_runs_as_often_as_its_comment_says(
    tmp_path: Path, since: str
) -> None:
    text = EXAMPLE.read_text()
    assert "on average one run every two work days" in " ".join(text.split())
    assert "chaoskit.io/monkey=enabled" in text
    # Resume from a fixed point, as a daemon that first started then.
    states = daemons.States(tmp_path)
    states.anchor("chaos-monkey", dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC))
    states.close()
    lines = next_lines(EXAMPLE, tmp_path, "-n", "1000")
    assert len([line for line in lines if re.match(r"\w{3} \d{4}-", line)]) == 1000
    found = EFFECTIVE.search(lines[-1])
    assert found, lines[-3:]
    assert 1.8 <= float(found.group(1)) <= 2.2


def test_next_shows_the_planned_duration_it_fits_into_the_window(tmp_path: Path) -> None:
    lines = next_lines(EXAMPLE, tmp_path, "-n", "3")
    assert "each run ends inside its window (planned to take 2m)" in lines
    loaded = plans.load(EXAMPLE)
    assert plans.planned_duration(loaded) == 120.0


def test_the_plans_planned_duration_adds_stages_and_takes_the_longest_of_a_parallel_group(
    tmp_path: Path,
) -> None:
    def experiment(name: str, method: str, recovery: str) -> None:
        (tmp_path / f"{name}.yaml").write_text(
            f"title: {name}\nconfig: {{hold: 1s}}\nmethod:\n{method}\nrecovery: {{within: {recovery}}}\n"
        )

    # A fault held 5m while a 1m pause runs: the method lasts 5m, then 2m of recovery.
    experiment(
        "long",
        "  - {fault: process.stop, with: {pid: 1}, duration: 5m}\n  - pause: 1m",
        "2m",
    )
    # Paused ${hold} (a plan var makes it 3m), a probe polled up to 1m: 4m, then 10s.
    experiment(
        "vars",
        "  - pause: ${hold}\n"
        "  - {probe: http.request, with: {url: 'http://127.0.0.1:1/'}, until: {within: 1m}}",
        "10s",
    )
    (tmp_path / "plan.yaml").write_text(
        "title: p\nexperiments:\n  - file: long.yaml\n"
        "  - parallel: [{file: long.yaml}, {file: vars.yaml, vars: {hold: 3m}}]\n"
        "schedule: {cron: '0 10 * * *'}\n"
    )
    assert plans.planned_duration(plans.load(tmp_path / "plan.yaml")) == 420 + max(420, 250)


def test_a_schedule_no_window_can_hold_a_run_of_the_plan_exits_2_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text("title: slow\nmethod:\n  - pause: 2h\n")
    (tmp_path / "plan.yaml").write_text(
        "title: p\nexperiments: [{file: slow.yaml}]\n"
        "schedule: {random: {mean: 1d}, windows: [{start: '09:00', end: '10:00'}]}\n"
    )
    result = CliRunner().invoke(
        cli, ["gameday", "next", str(tmp_path / "plan.yaml"), "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "planned to take 2h1m" in result.output and "fit: start" in result.output
    assert "Traceback" not in result.output
    (tmp_path / "plan.yaml").write_text(
        "title: p\nexperiments: [{file: slow.yaml}]\n"
        "schedule: {random: {mean: 1d}, fit: start, windows: [{start: '09:00', end: '10:00'}]}\n"
    )
    lines = next_lines(tmp_path / "plan.yaml", tmp_path, "-n", "2")
    assert not any("planned to take" in line for line in lines)
    assert schedules.Fit.START.value == "start"
