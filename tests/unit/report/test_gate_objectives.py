"""``chaoskit gate --max-rpo/--max-rto``: judged on the RPO and RTO a data.verify probe put in the
journal; a run that measured none fails them; exit 1 names the reading and the limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli import gate
from chaoskit.engine import journals
from chaoskit.engine.phases import Phase

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _journal(path: Path, *readings: tuple[int, float, float | None]) -> Path:
    journal = journals.Journal(
        run_id="r1",
        chaoskit_version="0",
        experiment=journals.ExperimentInfo(title="failover"),
        started=NOW,
        ended=NOW,
        verdict=journals.Verdict.COMPLETED,
        exit_code=0,
        reason="held",
        seed=1,
        objectives=[
            journals.ObjectivesRecord(
                step=f"read back {i}",
                activity="data.verify",
                phase=Phase.AFTER,
                at=NOW,
                rpo_writes=writes,
                rpo_seconds=seconds,
                rto_seconds=rto,
            )
            for i, (writes, seconds, rto) in enumerate(readings)
        ],
    )
    journals.write(journal, path)
    return path


def _gate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(gate.command, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--max-rpo", "0"], 1),
        (["--max-rpo", "12"], 0),
        (["--max-rpo", "1s"], 1),
        (["--max-rpo", "2s"], 0),
        (["--max-rto", "3s"], 1),
        (["--max-rto", "4s"], 0),
        (["--max-rpo", "12", "--max-rto", "4s"], 0),
    ],
)
def test_thresholds_on_rpo_and_rto(tmp_path: Path, flags: list[str], code: int) -> None:
    path = _journal(tmp_path / "j.json", (12, 1.5, 3.25))
    exit_code, output = _gate(str(path), *flags)
    assert exit_code == code, output
    assert "RPO 12 writes (1.500s), RTO 3.250s" in output


def test_a_miss_names_the_reading_and_the_limit(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.json", (0, 0.0, 0.5), (3, 0.4, 2.0))
    exit_code, output = _gate(str(path), "--max-rpo", "0")
    assert exit_code == 1
    assert "read back 1: 3 acknowledged writes lost; the gate allows at most 0" in output
    assert not [line for line in output.splitlines() if line.startswith("  - read back 0")]


def test_never_accepted_again_fails_max_rto(tmp_path: Path) -> None:
    exit_code, output = _gate(str(_journal(tmp_path / "j.json", (0, 0.0, None))), "--max-rto", "1m")
    assert exit_code == 1
    assert "writes were not accepted again; the gate allows at most 1m" in output


def test_a_run_without_readings_fails_rpo_thresholds_but_not_others(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.json")
    assert _gate(str(path))[0] == 0
    exit_code, output = _gate(str(path), "--max-rpo", "0")
    assert exit_code == 1 and "no RPO or RTO was measured" in output


def test_a_bad_max_rpo_is_a_usage_error(tmp_path: Path) -> None:
    exit_code, output = _gate(str(_journal(tmp_path / "j.json")), "--max-rpo", "lots")
    assert exit_code == 2 and "a count of writes (0) or a duration (2s)" in output
