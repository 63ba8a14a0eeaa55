"""Counts read as English: "1 fault", "2 faults", never "1 faults" or "1 fault(s)"."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit import wording
from chaoskit.cli import main

PACKAGE = Path(__file__).resolve().parents[2] / "chaoskit"

# Messages in files other engineers were changing at the time; each is to use wording.counted.
# Remove an entry when its file is fixed: the test fails on any new one.
NOT_YET = {
    # Not counts in the plural: "2 attempts" only when retries > 0; "{job} runs the experiment".
    "drivers/prometheus/querying.py": 1,
    "operator/statuses.py": 1,
}
# "(s)" after a word, or a count placed before a plural noun, in an f-string.
NOUNS = "faults|polls|steps|runs|times|experiments|stages|attempts|targets|pods"
CLUMSY = re.compile(rf"""f["'].*(\w\(s\)|\{{[^{{}}]*\}} ({NOUNS})\b)""")


@pytest.mark.parametrize(
    ("count", "noun", "plural", "expected"),
    [
        (0, "fault", None, "0 faults"),
        (1, "fault", None, "1 fault"),
        (2, "poll", None, "2 polls"),
        (1, "time", None, "1 time"),
        (3, "entry", "entries", "3 entries"),
        (1, "entry", "entries", "1 entry"),
    ],
)
def test_counted(count: int, noun: str, plural: str | None, expected: str) -> None:
    assert wording.counted(count, noun, plural) == expected


def test_no_new_message_counts_in_the_plural_whatever_the_count() -> None:
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        hits = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if CLUMSY.search(line))
        if hits:
            found[path.relative_to(PACKAGE).as_posix()] = hits
    grown = {f: n for f, n in found.items() if n > NOT_YET.get(f, 0)}
    assert not grown, f"use wording.counted in: {grown}"


def test_validate_counts_one_step_and_one_fault(tmp_path: Path) -> None:
    experiment = tmp_path / "one.yaml"
    experiment.write_text(
        textwrap.dedent(
            """
            title: one of each
            steady_state: []
            method:
              - fault: process.stop
                with: {pid: 999999}
                duration: 1s
            """
        )
    )
    shown = CliRunner().invoke(main.cli, ["validate", str(experiment)])
    assert shown.exit_code == 0, shown.output
    assert "1 step, 1 fault)" in shown.output
