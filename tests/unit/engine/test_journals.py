"""The journal model: its committed schema, redaction and atomic writing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chaoskit.engine import journals

ROOT = Path(__file__).resolve().parents[3]


def _journal(**changes: object) -> journals.Journal:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = journals.Journal(
        run_id="r1",
        chaoskit_version="0.1.0",
        experiment=journals.ExperimentInfo(title="t"),
        started=now,
        ended=now,
        verdict=journals.Verdict.COMPLETED,
        exit_code=0,
        reason="held before and after",
        seed=7,
    )
    return base.model_copy(update=changes)


def test_committed_schema_is_the_generated_one() -> None:
    committed = (ROOT / "schemas" / "journal.schema.json").read_text(encoding="utf-8")
    assert committed == journals.schema_text(), "run: python -c 'from chaoskit.engine import journals; ...'"


def test_redact_reaches_strings_keys_and_nested_values() -> None:
    value = {"token=s3cr3t": ["Bearer s3cr3t", {"x": "no"}], "n": 3}
    assert journals.redact(value, ["s3cr3t"]) == {"token=***": ["Bearer ***", {"x": "no"}], "n": 3}


def test_redact_hides_a_longer_secret_whole_when_it_contains_a_shorter_one() -> None:
    assert journals.redact("pw=abcdef", ["abc", "abcdef"]) == "pw=***"


def test_redacted_journal_has_no_secret_anywhere(tmp_path: Path) -> None:
    journal = _journal(
        reason="probe said hunter2", errors=[journals.ErrorRecord(phase=None, step=None, message="hunter2")]
    )
    clean = journals.redact(journal, ["hunter2"])
    path = tmp_path / "j.json"
    journals.write(clean, path)
    assert "hunter2" not in path.read_text()
    assert journals.load(path).reason == "probe said ***"


def test_write_replaces_the_file_whole_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.json"
    journals.write(_journal(seed=1), path)
    journals.write(_journal(seed=2), path)
    assert journals.load(path).seed == 2
    assert [p.name for p in path.parent.iterdir()] == ["journal.json"]
