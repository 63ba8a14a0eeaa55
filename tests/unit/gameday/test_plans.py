"""GameDay plans: the format, and errors located FILE:LINE:COL with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.drivers import registry
from chaoskit.gameday import plans, playing

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "a.yaml").write_text("title: a\nmethod: []\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("title: b\nmethod: []\n", encoding="utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_plan_has_sequential_and_parallel_stages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: Quarterly GameDay\n"
        "vars: {port: 1}\n"
        "experiments:\n"
        "  - file: a.yaml\n"
        "    vars: {port: 2}\n"
        "  - parallel:\n"
        "      - file: a.yaml\n"
        "      - {file: b.yaml, name: second}\n"
        "stop_on: deviated\n",
    )
    loaded = plans.load(path)
    assert loaded.key == "plan"
    assert [[r.file for r in group] for group in loaded.plan.groups()] == [["a.yaml"], ["a.yaml", "b.yaml"]]
    assert loaded.plan.stop_on is plans.StopOn.DEVIATED
    assert loaded.resolve("a.yaml") == tmp_path / "a.yaml"


def test_the_example_plans_load() -> None:
    examples = sorted((REPO / "experiments").glob("gameday-*.yaml"))
    assert examples
    for path in examples:
        loaded = plans.load(path)
        assert loaded.plan.schedule is not None
        # Every experiment of the plan loads and plans with the plan's variables and the real drivers.
        stages = playing.prepare(loaded, registry.load())
        assert sum(len(stage) for stage in stages) == sum(1 for group in loaded.plan.groups() for _ in group)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(errors.SpecError) as caught:
        plans.load(path)
    assert caught.value.exit_code == 2
    return [p.render() for p in caught.value.problems]


def test_errors_name_file_line_column_and_suggest_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: x\n"
        "experiments:\n"
        "  - file: a.yaml\n"
        "    varz: {port: 2}\n"
        "  - parallel:\n"
        "      - file: missing.yaml\n"
        "stop_on: sometimes\n"
        "schedule:\n"
        "  cron: '0 10 * * *'\n"
        "  timezone: Europe/Berlim\n"
        "  windws: []\n",
    )
    found = problems_of(path)
    assert f"{path}:4:5: experiments[0]: unknown key 'varz' (did you mean 'vars'?)" in found
    assert any(p.startswith(f"{path}:7:1: stop_on:") and "deviated" in p for p in found)
    assert any(
        p.startswith(f"{path}:10:3: schedule.timezone: unknown time zone 'Europe/Berlim'") for p in found
    )
    assert f"{path}:11:3: schedule: unknown key 'windws' (did you mean 'windows'?)" in found


def test_a_missing_experiment_file_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "title: x\nexperiments:\n  - parallel:\n      - file: missing.yaml\n")
    (found,) = problems_of(path)
    assert found == (
        f"{path}:4:9: experiments[0].parallel[0].file: no such experiment file: {tmp_path / 'missing.yaml'}"
    )


def test_malformed_yaml_and_missing_keys(tmp_path: Path) -> None:
    broken = write(tmp_path, "title: x\nexperiments: [\n")
    assert problems_of(broken)[0].startswith(f"{broken}:")
    empty = write(tmp_path, "description: nothing\n")
    found = problems_of(empty)
    assert any("missing required key 'title'" in p for p in found)
    assert any("missing required key 'experiments'" in p for p in found)


def test_webhook_url_and_plan_name_errors_say_what_is_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: x\nname: my plan\nexperiments: [{file: a.yaml}]\n"
        "notify: {webhook: {url: hooks.example.com}}\n",
    )
    found = problems_of(path)
    assert any(":2:1: name: use letters, digits" in p for p in found)
    assert any("notify.webhook.url: a webhook url starts with http:// or https://" in p for p in found)
