"""Loading and planning for ``run`` and ``validate``: only the drivers the file names, planned once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors
from chaoskit.cli import loading
from chaoskit.engine import planning

HEAD = "title: t\nsteady_state: []\n"


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The drivers of every plan made."""
    made: list[set[str]] = []
    plan = planning.plan

    def counted(source: Any, drivers: Any, **kw: Any) -> planning.Plan:
        made.append(set(drivers.drivers))
        return plan(source, drivers, **kw)

    monkeypatch.setattr(planning, "plan", counted)
    return made


def test_a_valid_file_is_planned_once_with_only_the_drivers_it_names(
    tmp_path: Path, plans: list[set[str]]
) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(HEAD + "method:\n  - fault: process.kill\n    with: {name: nothing-here}\n")
    _, drivers, _ = loading.load_and_plan(path, (), (), ())
    assert plans == [{"process"}] and set(drivers.drivers) == {"process"}


def test_a_name_no_named_driver_has_is_planned_once_with_every_driver(
    tmp_path: Path, plans: list[set[str]]
) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(HEAD + "method:\n  - fault: process.kil\n    with: {name: nothing-here}\n")
    with pytest.raises(errors.SpecError, match=r"did you mean 'process\.kill'"):
        loading.load_and_plan(path, (), (), ())
    assert len(plans) == 1 and {"process", "http", "docker"} <= plans[0]


def test_a_bad_argument_is_planned_once_with_only_its_driver(tmp_path: Path, plans: list[set[str]]) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(HEAD + "method:\n  - fault: process.kill\n    with: {nam: nothing-here}\n")
    with pytest.raises(errors.SpecError, match="nam"):
        loading.load_and_plan(path, (), (), ())
    assert plans == [{"process"}]
