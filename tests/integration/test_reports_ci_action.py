"""The composite GitHub action's shell steps, run here with bash the way the runner runs them
(inputs substituted, ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY`` files), against a real local
server. ``uses:`` steps (setup-python, upload-artifact) belong to GitHub and are not run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests import servers

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / ".github" / "actions" / "chaoskit" / "action.yml"
WORKFLOW = REPO / ".github" / "workflows" / "resilience-gate.yml"

EXPERIMENT = """
title: the server answers
config: {url: "http://127.0.0.1:1/", status: 200}
steady_state:
  - name: answers
    probe: http.request
    with: {url: "${url}", timeout: 5s}
    expect: {path: status, equals: "${status}"}
method:
  - pause: 100ms
recovery: {within: 30s, interval: 250ms}
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    class Handler(servers.Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    with servers.serving(Handler) as base:
        yield f"{base}/"


def run_action(tmp_path: Path, **given: str) -> tuple[dict[str, int], dict[str, str], str]:
    """Exit code per step id, the outputs written, the job summary."""
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update({k.replace("_", "-"): v for k, v in given.items()})
    output, summary = tmp_path / "github-output", tmp_path / "step-summary"
    output.touch()
    summary.touch()

    def substitute(text: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m.group(1)], text)

    bindir = str(Path(sys.executable).parent)
    codes: dict[str, int] = {}
    for step in action["runs"]["steps"]:
        if "run" not in step:
            continue
        condition = step.get("if", "")
        if condition == "inputs.install != ''" and not inputs["install"]:
            continue
        env = {
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "CHAOSKIT_STATE_DIR": str(tmp_path / "state"),
            **{k: substitute(str(v)) for k, v in step.get("env", {}).items()},
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", substitute(step["run"])],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        codes[step.get("id", step["name"])] = done.returncode
        if done.returncode != 0:
            break
    outputs = dict(
        line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    return codes, outputs, summary.read_text(encoding="utf-8")


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    return path


def test_the_action_runs_reports_and_passes_the_gate(tmp_path: Path, url: str, experiment: Path) -> None:
    assert shutil.which("bash")
    codes, outputs, summary = run_action(
        tmp_path,
        experiment=str(experiment),
        vars=f"  url={url}\n\n  status=200\n",
        install="",
        max_recovery="30s",
    )
    assert codes == {"run": 0, "gate": 0}
    assert outputs == {"verdict": "completed", "exit-code": "0"}
    assert "**Verdict: completed**" in summary
    for name in ("chaoskit-junit.xml", "chaoskit-report.html", "chaoskit-journal.json"):
        assert (tmp_path / name).is_file()


def test_the_action_fails_the_step_with_the_gates_exit_code(
    tmp_path: Path, url: str, experiment: Path
) -> None:
    codes, outputs, _ = run_action(
        tmp_path, experiment=str(experiment), vars=f"url={url}", install="", min_score="100"
    )
    assert codes == {"run": 0, "gate": 1}
    assert outputs["exit-code"] == "1"
    codes, outputs, _ = run_action(
        tmp_path,
        experiment=str(experiment),
        vars=f"url={url}\nstatus=503",
        install="",
        allow="deviated not_steady",
    )
    assert outputs["verdict"] == "not_steady" and codes == {"run": 0, "gate": 0}


def test_an_invalid_experiment_fails_the_run_step_with_2(tmp_path: Path, experiment: Path) -> None:
    experiment.write_text("title: broken\nmethod:\n  - faultt: x\n", encoding="utf-8")
    codes, _, _ = run_action(tmp_path, experiment=str(experiment), install="")
    assert codes == {"run": 2}


def test_the_workflow_starts_the_service_then_uses_the_action() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = workflow["jobs"]["gate"]["steps"]
    names = [s.get("name", s.get("uses")) for s in steps]
    start = names.index("Start the service under test (the demo)")
    gate = next(i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/chaoskit")
    assert start < gate
    experiment = REPO / steps[gate]["with"]["experiment"]
    check = subprocess.run(
        [sys.executable, "-m", "chaoskit", "validate", str(experiment)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
