"""The agent's HTTP API on a real socket: the token is required, faults are created, listed,
leased and reverted, and a bad request is a 4xx with the reason; the ``chaoskit agent`` command
serves until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.agent import httpapi, working
from tests.unit.agent.conftest import state, wait

TOKEN = "s3cret-token"
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def url(agent: working.Agent) -> Iterator[str]:
    server = httpapi.Server(("127.0.0.1", 0), agent, httpapi.shared_token(TOKEN))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def call(method: str, url: str, body: object = None, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode()
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def test_health_needs_no_token_and_faults_need_the_right_one(url: str) -> None:
    assert call("GET", f"{url}/healthz", token=None) == (200, "ok")
    assert call("GET", f"{url}/v1/faults", token=None)[0] == 401
    assert call("GET", f"{url}/v1/faults", token="wrong")[0] == 401
    assert call("GET", f"{url}/v1/faults") == (200, [])


@pytest.mark.usefixtures("root")
def test_create_list_renew_and_revert_over_http(url: str, spawn: Spawn) -> None:
    main, other = spawn(), spawn(token="777000333")
    body = {
        "run_id": "run-http",
        "kind": "stop_process",
        "target": {"pid": main.pid},
        "args": {"pattern": r"600\.777000333$"},
        "lease_seconds": 20,
    }
    status, created = call("POST", f"{url}/v1/faults", body)
    assert status == 201, created
    assert wait(lambda: state(other.pid) == "T")
    status, listed = call("GET", f"{url}/v1/faults?run_id=run-http")
    assert [r["id"] for r in listed] == [created["id"]] and listed[0]["state"] == "applied"
    assert call("GET", f"{url}/v1/faults?run_id=another")[1] == []
    status, lease = call("PUT", f"{url}/v1/leases/run-http", {"seconds": 40})
    assert status == 200 and lease["expires"] == 1_000_040.0  # 40 s after the fake clock's now
    assert call("DELETE", f"{url}/v1/faults/{created['id']}") == (200, {"outcome": "reverted"})
    assert wait(lambda: state(other.pid) in {"S", "R"})
    assert call("DELETE", f"{url}/v1/faults/{created['id']}") == (200, {"outcome": "already-clean"})


def test_bad_requests_say_why(url: str) -> None:
    status, answer = call("POST", f"{url}/v1/faults", {"run_id": "r", "kind": "nope", "target": {"pid": 1}})
    assert status == 400 and "unknown fault 'nope'" in answer["error"]
    status, answer = call("POST", f"{url}/v1/faults", {"kind": "stress_cpu"})
    assert status == 400 and "run_id" in answer["error"]
    status, answer = call("DELETE", f"{url}/v1/faults/..%2F..%2Fetc")
    assert status == 400
    assert call("GET", f"{url}/v1/nothing")[0] == 404


def test_token_review_accepts_only_the_named_accounts() -> None:
    answers: dict[str, dict[str, Any]] = {
        "good": {"authenticated": True, "user": {"username": "system:serviceaccount:chaos:runner"}},
        "other": {"authenticated": True, "user": {"username": "system:serviceaccount:default:default"}},
        "bad": {"authenticated": False},
    }
    check = httpapi.token_review(lambda token: answers[token], {"system:serviceaccount:chaos:runner"})
    assert [check(t) for t in ("good", "other", "bad")] == [True, False, False]
    both = httpapi.either(httpapi.shared_token(TOKEN), check)
    assert both(TOKEN) and both("good") and not both("other")
    assert not httpapi.shared_token("")("")


def test_the_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "CHAOSKIT_AGENT_TOKEN": TOKEN}
    argv = [
        sys.executable,
        "-m",
        "chaoskit",
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(tmp_path),
    ]
    refused = subprocess.run(
        [*argv, "--no-cluster"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 2 and "--allow-host-targets" in refused.stderr
    child = subprocess.Popen(
        [*argv, "--no-cluster", "--allow-host-targets"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        assert "serving on 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        assert call("GET", f"http://127.0.0.1:{port}/v1/faults") == (200, [])
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stderr is not None:
            child.stderr.close()
    assert (tmp_path / "faults").is_dir() and (tmp_path / "leases").is_dir()
