"""The README's tour is true: its experiment runs as written and its gate command passes on the
journal, through real `chaoskit` subprocesses (the demo, the embedded proxy, real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
