"""Running experiments and recovery for the suite the way a user does: ``chaoskit run`` and
``chaoskit recover`` as subprocesses, with their own state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chaoskit.engine import journals

ROOT = Path(__file__).resolve().parents[2]


def run_argv(experiment: Path, variables: dict[str, str], journal: Path) -> list[str]:
    """The command line that runs ``experiment`` with ``variables`` and writes ``journal``."""
    pairs = [a for k, v in variables.items() for a in ("--var", f"{k}={v}")]
    return [
        sys.executable,
        "-m",
        "chaoskit",
        "run",
        str(experiment),
        *pairs,
        "--journal",
        str(journal),
        "--quiet",
    ]


def run(experiment: Path, variables: dict[str, str], state_dir: Path, journal: Path) -> journals.Journal:
    """Run an experiment to its end and return its journal (the verdict is checked by the caller)."""
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(state_dir)}
    done = subprocess.run(
        run_argv(experiment, variables, journal),
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if not journal.exists():
        raise AssertionError(f"no journal (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return journals.Journal.model_validate_json(journal.read_text())


def recover(state_dir: Path, run_id: str | None, *, sweep: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(state_dir)}
    argv = [
        sys.executable,
        "-m",
        "chaoskit",
        "recover",
        *([run_id] if run_id else []),
        *(["--sweep"] if sweep else []),
    ]
    return subprocess.run(argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
