"""``chaoskit init`` scaffolds that run for real: against a web server and a process the test
starts (the Docker and Kubernetes ones are validated only, in tests/unit/cli/test_init.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.test_init import generated


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


# -- running a scaffold needs a live system: the ones that can, against things the test starts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "health").write_text("ok\n")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _run(path: str, *variables: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "chaoskit", "run", path, *(f"--var={v}" for v in variables)]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False
    )


@pytest.mark.slow
def test_the_http_scaffold_runs_and_completes_against_a_real_service(web: str) -> None:
    generated("--url", web)
    result = _run("experiment.yaml", f"proxy_api={_free_port()}", f"proxy_port={_free_port()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "p99" in result.stdout and "completed" in result.stdout


@pytest.mark.slow
def test_the_process_scaffold_runs_and_completes_against_a_real_process(tmp_path: Path) -> None:
    # A copy of sleep under a name of its own, so the fault can't touch anyone else's process.
    program = tmp_path / f"ckinit{os.getpid() % 100000}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    with subprocess.Popen([str(program), "300"]) as process:
        try:
            generated("--process", program.name)
            result = _run("experiment.yaml")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "process.stop" in result.stdout
            assert Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T"
        finally:
            process.kill()
            process.wait(timeout=30)
