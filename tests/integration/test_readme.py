"""The README's tour is true: its experiment runs as written and its gate command passes on the
journal, through real `chaoskit` subprocesses (the demo, the embedded proxy, real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION_PYTHON = Path("/usr/bin/python3")


def _chaoskit(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The experiment starts `chaoskit demo` by name: the one installed next to this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CHAOSKIT_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    experiment = tmp_path / "tour.yaml"
    experiment.write_text(readme.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")

    ran = _chaoskit(["run", str(experiment), "--quiet"], tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "completed (exit 0)" in ran.stdout + ran.stderr

    # The gate command exactly as the README shows it (without its comment).
    [line] = [line for line in readme.splitlines() if line.startswith("chaoskit gate ")]
    gate = shlex.split(line.split("#", 1)[0])
    assert "--min-score" in gate
    gated = _chaoskit(gate[1:], tmp_path)
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "gate passed" in gated.stdout


def first_command(readme: str) -> str:
    """The README's first set-up command, as a user copies it: the first line of the first bash
    block that is not a comment."""
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    return next(line for line in block.splitlines() if line.strip() and not line.startswith("#"))


def test_the_first_command_is_found_and_runs_the_quickstart() -> None:
    command = first_command((ROOT / "README.md").read_text(encoding="utf-8"))
    assert command.startswith("python3 "), command
    assert "experiments/quickstart.yaml" in command


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_first_command_works_with_the_distributions_python(tmp_path: Path) -> None:
    """On stock Debian 12 / Ubuntu 24.04, ``python3`` is the system's, marked externally managed
    (PEP 668): the README's first command must work there, in a fresh clone, with no venv active."""
    python_ok = (
        DISTRIBUTION_PYTHON.exists()
        and subprocess.run(
            [
                str(DISTRIBUTION_PYTHON),
                "-c",
                "import sys, venv, ensurepip; assert sys.version_info >= (3, 11)",
            ],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    require(
        "the distribution's python3 (>= 3.11, with venv)",
        python_ok,
        "apt-get install python3 python3-venv (Debian 12, Ubuntu 24.04)",
    )
    require("git", shutil.which("git") is not None, "apt-get install git")
    command = first_command((ROOT / "README.md").read_text(encoding="utf-8"))
    clone = tmp_path / "chaoskit"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)

    # A newcomer's shell: the distribution's python3 first on PATH, no virtualenv active, and no
    # developer's Python leaking in. pip keeps the machine's own configuration (its index).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "CONDA_PREFIX"}
        and not k.startswith(("COV_", "PYTEST_"))
    }
    env["PATH"] = os.pathsep.join(["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
    env["CHAOSKIT_STATE_DIR"] = str(tmp_path / "state")
    ran = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, f"{command}\n{output[-4000:]}"
    verdicts = [
        line for line in ran.stdout.splitlines() if line.startswith(("completed", "deviated", "error"))
    ]
    assert verdicts and verdicts[-1].startswith("completed (exit 0)"), output[-4000:]
