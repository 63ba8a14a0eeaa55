"""``process.start`` of ``chaoskit`` runs the chaoskit that runs the experiment, not one on PATH."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from chaoskit import __version__
from chaoskit.drivers import contract
from chaoskit.drivers.process import starting


def _started_output(argv: list[str], tmp_path: Path) -> str:
    out = tmp_path / "out.txt"
    start = starting.Start()
    args = starting.StartArgs.model_validate({"argv": argv, "stdout": str(out)})
    ctx = contract.RunContext(run_id="test", rng=random.Random(0))
    result = start.run(args, ctx)
    try:
        deadline = time.monotonic() + 30
        while "version" not in (out.read_text() if out.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        return out.read_text() if out.exists() else ""
    finally:
        assert result.undo is not None
        start.undo(result.undo, ctx)


def test_chaoskit_in_argv_is_the_running_chaoskit_not_the_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    impostor = tmp_path / "bin" / "chaoskit"
    impostor.parent.mkdir()
    marker = tmp_path / "impostor-ran"
    impostor.write_text(f"#!/bin/sh\ntouch {marker}\necho 'chaoskit, version 0.0-impostor'\n")
    impostor.chmod(0o755)
    # Only the impostor is on PATH: no venv activated, as when a newcomer runs .venv/bin/chaoskit.
    monkeypatch.setenv("PATH", f"{impostor.parent}:/usr/bin:/bin")

    output = _started_output(["chaoskit", "--version"], tmp_path)

    assert output.strip().endswith(f"chaoskit, version {__version__}"), output
    assert not marker.exists()


def test_chaoskit_runs_even_when_no_chaoskit_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert f"version {__version__}" in _started_output(["chaoskit", "--version"], tmp_path)


def test_other_programs_and_a_chaoskit_path_are_run_as_given() -> None:
    assert starting.command(["python3", "-V"]) == ["python3", "-V"]
    assert starting.command(["./chaoskit", "demo"]) == ["./chaoskit", "demo"]
