"""``python -m bench halt``: three concurrent local ``chaoskit run``s hold a proxy fault (a latency
toxic on the embedded proxy), a process fault (``process.stop`` of a sleeper) and a Docker fault
(``docker.container.pause``, when the test dockerd answers), then ``chaoskit halt``. Prints the
time from the halt to the last fault reverted, from the ledgers' ``reverted`` lines (target: 2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGET = 2.0
DOCKER_HOST = "unix:///var/cache/chaoskit/run/docker.sock"
CHAOSKIT = [sys.executable, "-m", "chaoskit"]


def missing() -> str | None:
    return None if Path("/proc/self/stat").exists() else "needs Linux /proc for the process driver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise SystemExit(f"bench halt: timed out waiting for {what}")


def _lines(state: Path) -> list[dict[str, Any]]:
    found = []
    for path in (state / "ledgers").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
    return found


@contextlib.contextmanager
def _proxy() -> Iterator[str]:
    """The embedded proxy with one proxy ``bench`` on it; yields its API URL."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [*CHAOSKIT, "proxy", "serve", "--port", str(port)], stderr=subprocess.DEVNULL
    ) as server:
        try:
            _wait("the embedded proxy", lambda: urllib.request.urlopen(f"{api}/version", timeout=1))
            body = json.dumps({"name": "bench", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
            request = urllib.request.Request(f"{api}/proxies", body.encode(), method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            yield api
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextlib.contextmanager
def _container() -> Iterator[str | None]:
    """A container to pause from an image the test dockerd already has; None (and why, printed)
    when there is none."""
    try:
        import docker

        client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", DOCKER_HOST), timeout=5)
        client.ping()
    except Exception as e:
        print(f"docker: skipped (the test dockerd at {DOCKER_HOST} does not answer: {type(e).__name__})")
        yield None
        return
    images = [tag for image in client.images.list() for tag in image.tags]
    # The suite's HTTP image runs any command; others (the chaoskit image has an entrypoint) may
    # not run `sleep` at all, and a container that exited can't be paused.
    images.sort(key=lambda tag: not tag.startswith("chaoskit-test/http:"))
    if not images:
        print("docker: skipped (the test dockerd has no image)")
        yield None
        return
    container = client.containers.run(
        images[0], ["sleep", "300"], detach=True, name=f"bench-halt-{os.getpid()}"
    )
    container.reload()
    if container.status != "running":
        print(f"docker: skipped ({images[0]} does not keep `sleep 300` running)")
        with contextlib.suppress(Exception):
            container.remove(force=True)
        yield None
        return
    try:
        yield container.name
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
        client.close()


def _experiment(folder: Path, name: str, fault: str, args: str) -> Path:
    path = folder / f"{name}.yaml"
    step = f"  - name: {name}\n    fault: {fault}\n    with: {args}\n"
    path.write_text(f"title: halt bench {name}\nmethod:\n{step}  - pause: 1h\n")
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench halt")
    parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-halt-") as tmp,
        _proxy() as api,
        _container() as container,
        subprocess.Popen(["sleep", "300"]) as sleeper,
    ):
        folder = Path(tmp)
        state = folder / "state"
        experiments = [
            _experiment(
                folder, "proxy", "toxiproxy.latency", f"{{url: '{api}', proxy: bench, latency: 300ms}}"
            ),
            _experiment(folder, "process", "process.stop", f"{{pid: {sleeper.pid}}}"),
        ]
        if container is not None:
            experiments.append(
                _experiment(folder, "docker", "docker.container.pause", f"{{name: {container}}}")
            )
        env = {**os.environ, "CHAOSKIT_HALT": "", "DOCKER_HOST": os.environ.get("DOCKER_HOST", DOCKER_HOST)}
        runs = [
            subprocess.Popen(
                [
                    *CHAOSKIT,
                    "run",
                    str(e),
                    "--state-dir",
                    str(state),
                    "--journal",
                    str(e.with_suffix(".json")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            for e in experiments
        ]
        try:
            count = len(experiments)
            _wait(
                f"{count} faults applied",
                lambda: sum(1 for line in _lines(state) if line.get("type") == "applied") >= count,
            )
            pulled = datetime.now(UTC)
            halt = [*CHAOSKIT, "halt", "--state-dir", str(state), "--reason", "bench"]
            halted = subprocess.run(halt, capture_output=True, text=True, check=False, timeout=120, env=env)
            codes = [run.wait(timeout=60) for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
                    run.wait(timeout=30)
            sleeper.kill()
        print(halted.stdout, end="")
        reverted = [
            datetime.fromisoformat(line["at"])
            for line in _lines(state)
            if line.get("type") == "reverted" and isinstance(line.get("at"), str)
        ]
        if len(reverted) < count:
            print(f"halt: only {len(reverted)} of {count} faults reverted; exit codes {codes}")
            return 1
        seconds = (max(reverted) - pulled).total_seconds()
        verdict = "within" if seconds <= TARGET else "OVER"
        print(f"halt → last of {count} faults reverted: {seconds:.3f} s ({verdict} the {TARGET:g} s target)")
        print(f"run exit codes: {codes} (5 = halted)")
    return 0
