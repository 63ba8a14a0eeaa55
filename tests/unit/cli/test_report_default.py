"""``chaoskit report JOURNAL`` with neither ``--format`` nor ``-o`` writes the HTML page beside the
journal and prints its path; it used to pour the page's markup into the terminal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli.main import cli
from chaoskit.engine import journals
from tests.unit.report import samples


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "chaoskit-journal-1.json"
    path.parent.mkdir()
    journals.write(samples.journal(), path)
    return path


def test_without_format_the_page_is_written_beside_the_journal_and_its_path_printed(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(journal)])
    page = journal.with_name("chaoskit-journal-1.html")
    assert result.exit_code == 0, result.output
    assert "<html" not in result.output and "<svg" not in result.output
    assert result.output.strip() == f"wrote {page}"
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Checkout survives a stopped worker" in text


def test_where_the_journal_folder_cant_take_it_the_page_goes_to_the_current_directory(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory in the way refuses the write even to root (a read-only folder would not).
    journal.with_name("chaoskit-journal-1.html").mkdir()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = CliRunner().invoke(cli, ["report", str(journal)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {here / 'chaoskit-journal-1.html'}"
    assert (here / "chaoskit-journal-1.html").read_text().startswith("<!DOCTYPE html>")


def test_nowhere_to_write_is_one_error_naming_the_way_out(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal.with_name("chaoskit-journal-1.html").mkdir()
    (tmp_path / "chaoskit-journal-1.html").mkdir()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(journal)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "give -o FILE, or --format html" in result.output


@pytest.mark.parametrize(("fmt", "start"), [("html", "<!DOCTYPE html>"), ("md", "# ")])
def test_an_explicit_format_still_goes_to_stdout_and_writes_no_file(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, start: str
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(journal.parent))
    result = CliRunner().invoke(cli, ["report", str(journal), "--format", fmt])
    assert result.exit_code == 0 and result.output.startswith(start)
    assert sorted(os.listdir(journal.parent)) == before
