"""``chaoskit history``: an experiment is found by its file's stem too, and times are shown whole."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli import main

HOLDS = """
title: {title}
steady_state:
  - name: true is true
    probe: process.command
    with: {{argv: ["true"]}}
    expect: {{path: exit_code, equals: 0}}
"""


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two experiments run once each: experiments/quickstart-deviates.yaml and other.yml."""
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    for name, title in (("experiments/quickstart-deviates.yaml", "deviates"), ("other.yml", "other")):
        (tmp_path / name).write_text(textwrap.dedent(HOLDS.format(title=title)))
        ran = CliRunner().invoke(main.cli, ["run", name, "--quiet", "--journal", f"{title}.json"])
        assert ran.exit_code == 0, ran.output
    return tmp_path / "state"


def _history(*args: str) -> str:
    shown = CliRunner().invoke(main.cli, ["history", *args])
    assert shown.exit_code == 0, shown.output
    return shown.output


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("quickstart-deviates", "deviates"),
        ("quickstart-deviates.yaml", "deviates"),
        ("experiments/quickstart-deviates", "deviates"),
        ("other", "other"),
        ("deviates", "deviates"),
    ],
)
def test_an_experiment_is_found_by_title_file_or_file_stem(runs: Path, name: str, title: str) -> None:
    found = json.loads(_history(name, "--output", "json"))
    assert [run["experiment"] for run in found] == [title]


def test_a_name_that_matches_nothing_says_so(runs: Path) -> None:
    assert "no runs recorded for 'quickstart'" in _history("quickstart")


def test_start_times_are_shown_whole(runs: Path) -> None:
    recorded = json.loads(_history("--output", "json"))
    text = _history()
    for run in recorded:
        assert len(run["started"]) > 25  # microseconds and the UTC offset
        assert run["started"] in text
