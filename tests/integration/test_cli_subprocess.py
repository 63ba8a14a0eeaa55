"""``chaoskit`` as a user runs it: a subprocess, its exit codes and its signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HEAVY = ("docker", "kubernetes", "prometheus_api_client", "kopf", "httpx")


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _chaoskit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(["sleep", "300"]) as process:
        try:
            yield process
        finally:
            process.kill()
            process.wait(timeout=30)


def test_help_imports_no_heavy_library() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from chaoskit.cli import main
        try:
            main.cli(["--help"])
        except SystemExit:
            pass
        for command in ("run", "validate", "status", "recover"):
            try:
                main.cli([command, "--help"])
            except SystemExit:
                pass
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _experiment(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(
    ("argv", "code", "verdict"), [(["true"], 0, "completed"), (["false"], 3, "not_steady")]
)
def test_exit_code_is_the_verdicts(tmp_path: Path, argv: list[str], code: int, verdict: str) -> None:
    path = _experiment(
        tmp_path,
        f"""
        title: exit codes
        steady_state:
          - probe: process.command
            with: {{argv: {json.dumps(argv)}}}
            expect: {{path: exit_code, equals: 0}}
        """,
    )
    result = _chaoskit("run", str(path), "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    journal = json.loads((tmp_path / "chaoskit-journal.json").read_text())  # the default path
    assert journal["verdict"] == verdict and journal["exit_code"] == code


def test_an_invalid_file_exits_2_with_file_line_col_and_no_traceback(tmp_path: Path) -> None:
    path = _experiment(tmp_path, "title: bad\nmethod:\n  - fault: process.stpo\n")
    result = _chaoskit("run", str(path), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert f"{path}:3:5: method[0].fault:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_reverts_runs_rollbacks_writes_the_journal_and_exits_130(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], sig: signal.Signals
) -> None:
    rolled_back = tmp_path / "rolled-back"
    path = _experiment(
        tmp_path,
        f"""
        title: interrupted
        method:
          - name: freeze
            fault: process.stop
            with: {{pid: {sleeper.pid}}}
          - pause: 1h
        rollbacks:
          - action: process.command
            with: {{argv: [touch, "{rolled_back}"]}}
        """,
    )
    journal = tmp_path / "j.json"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaoskit",
            "run",
            str(path),
            "--journal",
            str(journal),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as runner:
        try:
            deadline = time.monotonic() + 60
            while _state_of(sleeper.pid) != "T" and time.monotonic() < deadline and runner.poll() is None:
                time.sleep(0.05)
            assert _state_of(sleeper.pid) == "T", "the fault was never applied"
            os.kill(runner.pid, sig)
            output, _ = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait(timeout=30)
    assert runner.returncode == 130, output
    assert _state_of(sleeper.pid) != "T"
    assert rolled_back.exists()
    written = json.loads(journal.read_text())
    assert written["verdict"] == "interrupted"
    assert written["faults"][0]["revert"] == "reverted"
    assert "Traceback" not in output


def test_the_quickstart_on_a_taken_port_suggests_var_not_the_demos_flags(tmp_path: Path) -> None:
    """``chaoskit run`` has no --port: the demo it starts names the experiment's variable."""
    import socket

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as taken, socket.socket() as a, socket.socket() as b, socket.socket() as c:
        for s in (taken, a, b, c):
            s.bind(("127.0.0.1", 0))
        taken.listen()
        port, backend, proxy, api = (s.getsockname()[1] for s in (taken, a, b, c))
        for s in (a, b, c):
            s.close()
        env = {**os.environ, "CHAOSKIT_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
        ran = subprocess.run(
            [sys.executable, "-m", "chaoskit", "run", str(root / "experiments" / "quickstart.yaml"),
             "--var", f"port={port}", "--var", f"backend_port={backend}", "--var", f"proxy_port={proxy}",
             "--var", f"proxy_api={api}", "--journal", str(tmp_path / "j.json")],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env,
        )  # fmt: skip
    output = ran.stdout + ran.stderr
    assert ran.returncode == 4, output
    assert f"can't listen on 127.0.0.1:{port}" in output
    assert "--var port=N" in output
    assert "--port N" not in output and "--api-port" not in output
    assert "Traceback" not in output


def test_runs_in_a_row_each_keep_their_journal_and_the_newest_is_chaoskit_journal_json(
    tmp_path: Path,
) -> None:
    path = _experiment(
        tmp_path,
        """
        title: twice
        steady_state:
          - probe: process.command
            with: {argv: ["true"]}
            expect: {path: exit_code, equals: 0}
        """,
    )
    state = str(tmp_path / "s")
    ids = []
    for _ in range(2):
        result = _chaoskit("run", str(path), "--state-dir", state, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        latest = json.loads((tmp_path / "chaoskit-journal.json").read_text())
        ids.append(latest["run_id"])
        assert f"journal: chaoskit-journal-{latest['run_id']}.json (the newest: chaoskit-journal.json)" in (
            result.stdout
        )
    assert ids[0] != ids[1]
    own = sorted(tmp_path.glob("chaoskit-journal-*.json"))
    assert sorted(p.name for p in own) == sorted(f"chaoskit-journal-{i}.json" for i in ids)
    for journal in own:  # neither overwrote the other
        assert journal.name == f"chaoskit-journal-{json.loads(journal.read_text())['run_id']}.json"
    assert not (tmp_path / "chaoskit-journal.json").is_symlink()

    history = _chaoskit("history", "--state-dir", state, "--output", "json")
    rows = {row["run_id"]: row["journal"] for row in json.loads(history.stdout)}
    assert rows == {i: str(tmp_path / f"chaoskit-journal-{i}.json") for i in ids}

    # --journal PATH writes exactly PATH, and leaves the newest-run copy alone.
    explicit = tmp_path / "mine.json"
    result = _chaoskit("run", str(path), "--state-dir", state, "--journal", str(explicit), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(explicit.read_text())["run_id"] not in ids
    assert json.loads((tmp_path / "chaoskit-journal.json").read_text())["run_id"] == ids[1]
    assert len(list(tmp_path.glob("chaoskit-journal-*.json"))) == 2


def test_a_symlink_at_chaoskit_journal_json_is_refused_before_the_run_and_left_alone(
    tmp_path: Path,
) -> None:
    path = _experiment(
        tmp_path,
        """
        title: linked
        steady_state:
          - probe: process.command
            with: {argv: ["true"]}
            expect: {path: exit_code, equals: 0}
        """,
    )
    target = tmp_path / "elsewhere.json"
    target.write_text("precious\n")
    (tmp_path / "chaoskit-journal.json").symlink_to(target)
    result = _chaoskit("run", str(path), "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "chaoskit-journal.json is a symlink" in result.stderr
    assert "pass --journal PATH" in result.stderr
    assert target.read_text() == "precious\n"
    assert (tmp_path / "chaoskit-journal.json").is_symlink()
    assert not list(tmp_path.glob("chaoskit-journal-*.json"))


def test_a_run_killed_mid_fault_shows_in_history_as_crashed_once_recover_takes_it_back(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _experiment(
        tmp_path,
        f"""
        title: killed mid-fault
        method:
          - name: freeze
            fault: process.stop
            with: {{pid: {sleeper.pid}}}
          - pause: 1h
        """,
    )
    state = str(tmp_path / "s")
    with subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "run", str(path), "--state-dir", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    ) as runner:
        try:
            deadline = time.monotonic() + 60
            while _state_of(sleeper.pid) != "T" and time.monotonic() < deadline and runner.poll() is None:
                time.sleep(0.05)
            assert _state_of(sleeper.pid) == "T", "the fault was never applied"
        finally:
            runner.kill()  # SIGKILL: no revert, no journal, no history row
            runner.wait(timeout=30)
    assert _state_of(sleeper.pid) == "T"
    assert json.loads(_chaoskit("history", "--state-dir", state, "--output", "json").stdout) == []

    recovered = _chaoskit("recover", "--state-dir", state)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert _state_of(sleeper.pid) != "T"
    [row] = json.loads(_chaoskit("history", "--state-dir", state, "--output", "json").stdout)
    assert (row["experiment"], row["verdict"], row["recover_failed"]) == ("killed mid-fault", "crashed", 0)
    assert row["recovered_at"] is not None and row["file"] == str(path)
    assert "crashed, recovered" in _chaoskit("history", "--state-dir", state).stdout
    assert not list(tmp_path.glob("chaoskit-journal*.json"))
