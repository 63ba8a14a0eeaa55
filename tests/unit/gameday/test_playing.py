"""Running a GameDay plan through the real engine, with chaoskit.testing's fake driver as the system."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.engine import journals
from chaoskit.gameday import plans, playing
from chaoskit.report import history, scores
from chaoskit.testing import FakeDriver

HOLDS = """
title: holds
steady_state:
  - {name: healthy, probe: fake.status, expect: {path: status, equals: 200}}
method:
  - {name: break it, fault: fake.break, with: {targets: [t1]}, duration: 200ms}
  - pause: 300ms
recovery: {within: 5s, interval: 100ms}
"""

DEVIATES = """
title: deviates
steady_state:
  - {name: healthy, probe: fake.status, expect: {path: status, equals: 200}}
method:
  - {name: break it, fault: fake.break, with: {targets: [t2]}}
  - {name: under fault, probe: fake.status, expect: {path: status, equals: 200}}
  - pause: 400ms
recovery: {within: 5s, interval: 100ms}
"""

QUIET = """
title: quiet ${n}
config: {n: 0}
method:
  - {name: read, probe: fake.value, with: {echo: "${n}"}, expect: {equals: "${n}"}}
  - pause: 400ms
"""


def make_plan(tmp_path: Path, body: str) -> plans.Loaded:
    for name, text in (("holds", HOLDS), ("deviates", DEVIATES), ("quiet", QUIET)):
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(body, encoding="utf-8")
    return plans.load(path)


def run(tmp_path: Path, loaded: plans.Loaded, fake: FakeDriver) -> playing.Result:
    return playing.run(
        loaded, state_dir=tmp_path / "state", journal_dir=tmp_path / "journals", drivers=fake.registry()
    )


PLAN = """
title: Q4 GameDay
name: q4
experiments:
  - file: holds.yaml
  - parallel:
      - file: deviates.yaml
      - {file: quiet.yaml, name: quiet one, vars: {n: 1}}
  - {file: quiet.yaml, vars: {n: 2}}
"""


def test_stages_run_in_order_parallel_groups_together_each_with_its_journal(tmp_path: Path) -> None:
    fake = FakeDriver()
    result = run(tmp_path, make_plan(tmp_path, PLAN), fake)
    assert [(o.label, o.journal.verdict) for o in result.outcomes] == [
        ("holds", journals.Verdict.COMPLETED),
        ("deviates", journals.Verdict.DEVIATED),
        ("quiet one", journals.Verdict.COMPLETED),
        ("quiet 2", journals.Verdict.COMPLETED),
    ]
    holds, deviates, quiet, last = (o.journal for o in result.outcomes)
    assert holds.ended <= deviates.started and quiet.ended <= last.started
    assert deviates.started < quiet.ended and quiet.started < deviates.ended, "the parallel group overlapped"
    assert result.verdict is journals.Verdict.DEVIATED and result.exit_code == 1
    assert result.skipped == []
    for outcome in result.outcomes:
        assert journals.load(outcome.journal_path).run_id == outcome.journal.run_id
    assert result.score == pytest.approx(
        scores.of_gameday(scores.of_journal(o.journal) for o in result.outcomes)
    )
    rows = history.runs(tmp_path / "state", "q4")
    assert sorted(r.run_id for r in rows) == sorted(o.journal.run_id for o in result.outcomes)
    assert fake.applied == set(), "every fault was reverted"


def test_stop_on_deviated_skips_the_later_stages(tmp_path: Path) -> None:
    loaded = make_plan(tmp_path, PLAN + "stop_on: deviated\n")
    result = run(tmp_path, loaded, FakeDriver())
    assert [o.label for o in result.outcomes] == ["holds", "deviates", "quiet one"]
    assert result.skipped == ["quiet 2"]
    summary = result.summary()
    assert summary["verdict"] == "deviated" and summary["skipped"] == ["quiet 2"]
    assert isinstance(summary["score"], float)


def test_stop_on_error_lets_a_deviation_continue(tmp_path: Path) -> None:
    result = run(tmp_path, make_plan(tmp_path, PLAN + "stop_on: error\n"), FakeDriver())
    assert len(result.outcomes) == 4


def test_an_invalid_experiment_stops_the_gameday_before_any_fault(tmp_path: Path) -> None:
    loaded = make_plan(tmp_path, PLAN)
    (tmp_path / "quiet.yaml").write_text("title: q\nmethod:\n  - probe: fake.valeu\n", encoding="utf-8")
    fake = FakeDriver()
    with pytest.raises(errors.SpecError) as caught:
        run(tmp_path, loaded, fake)
    assert any(p.file.endswith("quiet.yaml") and p.line == 3 for p in caught.value.problems)
    assert fake.calls == []


def test_a_stop_request_interrupts_the_running_stage_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "long.yaml").write_text(
        "title: long\nmethod:\n"
        "  - {name: break it, fault: fake.break, with: {targets: [t3]}}\n"
        "  - pause: 120s\n",
        encoding="utf-8",
    )
    loaded = make_plan(tmp_path, "title: t\nexperiments:\n  - file: long.yaml\n  - file: holds.yaml\n")
    fake = FakeDriver()
    stop = threading.Event()
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    try:
        result = playing.run(
            loaded,
            state_dir=tmp_path / "state",
            journal_dir=tmp_path / "journals",
            drivers=fake.registry(),
            stop=stop,
        )
    finally:
        timer.cancel()
    assert [o.journal.verdict for o in result.outcomes] == [journals.Verdict.INTERRUPTED]
    assert result.skipped == ["holds"]
    assert fake.applied == set()


def test_a_journal_folder_that_takes_no_files_moves_the_journals_to_the_state_dir_and_exits_4(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "journals"
    blocked.write_text("a file where the folder should be")  # a daemon's folder can go bad mid-way
    said: list[str] = []
    loaded = make_plan(tmp_path, "title: t\nname: t\nexperiments: [{file: holds.yaml}]\n")
    fake = FakeDriver()
    result = playing.run(
        loaded, state_dir=tmp_path / "state", journal_dir=blocked, drivers=fake.registry(), log=said.append
    )
    [outcome] = result.outcomes
    assert outcome.journal.verdict is journals.Verdict.COMPLETED
    assert outcome.journal_moved and outcome.journal_path is not None
    assert outcome.journal_path.parent == tmp_path / "state" / "journals"
    assert journals.load(outcome.journal_path).run_id == outcome.journal.run_id
    assert any(f"saved it as {outcome.journal_path} instead" in line for line in said)
    assert result.exit_code == 4  # completed, but the journal is not where CI looks for it
    assert result.summary()["experiments"][0]["journal"] == str(outcome.journal_path)  # type: ignore[index]


def test_a_journal_nowhere_will_take_is_said_to_be_lost_and_the_summary_has_null(tmp_path: Path) -> None:
    blocked = tmp_path / "journals"
    blocked.write_text("a file")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "journals").write_text("a file too")
    said: list[str] = []
    loaded = make_plan(tmp_path, "title: t\nname: t\nexperiments: [{file: holds.yaml}]\n")
    result = playing.run(
        loaded,
        state_dir=tmp_path / "state",
        journal_dir=blocked,
        drivers=FakeDriver().registry(),
        log=said.append,
    )
    [outcome] = result.outcomes
    assert outcome.journal_path is None and outcome.journal_moved
    assert any(line.endswith("; it is lost") for line in said)
    assert result.exit_code == 4
    assert result.summary()["experiments"][0]["journal"] is None  # type: ignore[index]
