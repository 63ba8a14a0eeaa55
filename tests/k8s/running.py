"""Running experiments and recovery for the suite the way a user does: ``chaoskit run`` /
``chaoskit recover`` as subprocesses when the CLI has them, else the same engine calls in-process
(or in ``python -m tests.k8s.running`` for a subprocess that can be killed)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chaoskit.drivers import registry
from chaoskit.engine import events, journals, planning, recovering, running
from chaoskit.spec import loading

ROOT = Path(__file__).resolve().parents[2]


def has_command(name: str) -> bool:
    """Whether ``chaoskit <name>`` exists (each subcommand is its own module ``chaoskit/cli/<name>.py``)."""
    return importlib.util.find_spec(f"chaoskit.cli.{name}") is not None


def run_argv(experiment: Path, variables: dict[str, str], journal: Path) -> list[str]:
    """The command line that runs ``experiment`` with ``variables`` and writes ``journal``."""
    pairs = [f"{k}={v}" for k, v in variables.items()]
    if has_command("run"):
        return [
            sys.executable,
            "-m",
            "chaoskit",
            "run",
            str(experiment),
            *(a for p in pairs for a in ("--var", p)),
            "--journal",
            str(journal),
            "--quiet",
        ]
    return [sys.executable, "-m", "tests.k8s.running", "run", str(experiment), str(journal), *pairs]


def run(experiment: Path, variables: dict[str, str], state_dir: Path, journal: Path) -> journals.Journal:
    """Run an experiment to its end and return its journal."""
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(state_dir)}
    done = subprocess.run(  # noqa: PLW1510 - the journal, not the exit code, is checked
        run_argv(experiment, variables, journal),
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
    if has_command("recover"):
        argv = [sys.executable, "-m", "chaoskit", "recover", *([run_id] if run_id else [])]
        argv += ["--sweep"] if sweep else []
    else:
        argv = [sys.executable, "-m", "tests.k8s.running", "recover", *([run_id] if run_id else [])]
    return subprocess.run(argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _run_in_process(experiment: str, journal: str, pairs: list[str]) -> int:
    variables: dict[str, Any] = dict(p.split("=", 1) for p in pairs)
    loaded = loading.load(Path(experiment), variables=variables)
    planned = planning.plan(loaded, registry.load())
    state_dir = Path(os.environ["CHAOSKIT_STATE_DIR"])
    runner = running.Runner(
        planned, running.Settings(state_dir=state_dir), clock=running.RealClock(), bus=events.Bus()
    )
    result = asyncio.run(runner.run())
    Path(journal).write_text(result.model_dump_json(indent=2))
    return int(result.exit_code)


def _recover_in_process(run_id: str | None) -> int:
    report = recovering.recover(Path(os.environ["CHAOSKIT_STATE_DIR"]), registry.load(), run_id, sweep=True)
    print(json.dumps(report.lines()))
    return 0 if report.ok else 4


if __name__ == "__main__":
    if sys.argv[1] == "run":
        sys.exit(_run_in_process(sys.argv[2], sys.argv[3], sys.argv[4:]))
    sys.exit(_recover_in_process(sys.argv[2] if len(sys.argv) > 2 else None))
