"""Output paths that exist and are not regular files (a device such as /dev/stdout, a FIFO, a
folder, a symlink to a device) are refused before a run starts, and never replaced by a file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli.main import cli
from chaoskit.engine import journals
from tests.unit.report import samples

EXPERIMENT = "title: short\nmethod:\n  - pause: 10ms\n"


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[list[Path]]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    folder = tmp_path / "folder"
    folder.mkdir()
    # Like /dev/stdout (a symlink to /proc/self/fd/1) when stdout is redirected to a file.
    log = tmp_path / "log"
    log.write_text("the log\n", encoding="utf-8")
    stdout = tmp_path / "stdout"
    stdout.symlink_to(log)
    yield [fifo, null, folder, stdout]
    # Still what they were: nothing was renamed over them.
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert null.is_symlink() and null.resolve() == Path("/dev/null")
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert stdout.is_symlink() and log.read_text(encoding="utf-8") == "the log\n"


@pytest.mark.parametrize("option", ["--journal", "--junit", "--report"])
def test_run_refuses_an_output_that_is_not_a_regular_file_before_it_starts(
    tmp_path: Path, specials: list[Path], option: str
) -> None:
    experiment = tmp_path / "short.yaml"
    experiment.write_text(EXPERIMENT, encoding="utf-8")
    said = {}
    for target in specials:
        args = ["run", str(experiment), "--state-dir", str(tmp_path / "state"), option, str(target)]
        if option != "--journal":
            args += ["--journal", str(tmp_path / "journal.json")]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        # A folder click itself refuses ("Invalid value for '--journal'"); the others are ours.
        assert option in result.stderr and str(target) in result.stderr
        assert not (tmp_path / "journal.json").exists(), "the run started"
        said[target.name] = result.stderr
    assert "not a regular file (a device, pipe or socket)" in said["fifo"]
    assert f"a symlink (to {tmp_path / 'log'})" in said["stdout"]
    if option == "--journal":
        assert "hint: to print the journal on stdout, use --output json" in said["fifo"]


def test_journals_write_refuses_to_replace_what_is_not_a_regular_file(specials: list[Path]) -> None:
    journal = samples.journal(journals.Verdict.COMPLETED, method_ok=True)
    for target in specials:
        with pytest.raises(OSError, match="symlink, or exists and is not a regular file"):
            journals.write(journal, target)


def test_journals_write_still_replaces_a_regular_file(tmp_path: Path) -> None:
    journal = samples.journal(journals.Verdict.COMPLETED, method_ok=True)
    path = tmp_path / "journal.json"
    path.write_text("old", encoding="utf-8")
    journals.write(journal, path)
    assert journals.load(path).run_id == journal.run_id
