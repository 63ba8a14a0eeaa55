"""The chaoskit image (scripts/lib/chaoskit-image.sh) running the node agent as its DaemonSet runs
it - in a container, with the host's pid and network namespaces, the host's cgroup tree and the
DaemonSet's capabilities, not privileged - applies faults to another container of the same engine:
its memory cgroup charged and freed, iptables rules in its netns added and removed."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.conftest import TEST_LABEL, Web, free_port, wait_until
from tests.integration.docker.test_stress import memory_bytes

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "image-agent-token"
MiB = 1024 * 1024
CAPABILITIES = ["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "KILL", "NET_ADMIN", "NET_RAW"]
"""operators/agent/daemonset.yaml's."""


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    """The image, built (or found in the cache) for this engine."""
    env = {**os.environ, "DOCKER_HOST": os.environ.get("DOCKER_HOST", "")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/lib/chaoskit-image.sh")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def agent_url(engine: Any, image: str) -> Iterator[str]:
    port = free_port()
    container = engine.containers.run(
        image,
        ["agent", "--listen", f"127.0.0.1:{port}", "--state-dir", "/tmp/agent", "--no-cluster",
         "--allow-host-targets", "--sweep-every", "1"],
        detach=True, environment={"CHAOSKIT_AGENT_TOKEN": TOKEN}, labels={TEST_LABEL: "1"},
        pid_mode="host", network_mode="host", cap_add=CAPABILITIES,
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _healthy(url), 30), container.logs().decode()[-2000:]
        yield url
    finally:
        container.remove(force=True)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def call(method: str, url: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=150) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _rules(container: Any) -> str:
    container.reload()
    pid = str(container.attrs["State"]["Pid"])
    listed = subprocess.run(
        ["nsenter", "-t", pid, "-n", "iptables", "-w", "-S"], capture_output=True, text=True, check=True
    )
    return listed.stdout


def test_the_agent_in_its_image_stresses_and_partitions_another_container(
    web: Callable[..., Web], agent_url: str
) -> None:
    site = web()
    target = {"container_id": site.container.id}
    before = memory_bytes(site.container)
    stress = {"run_id": "img", "kind": "stress_memory", "target": target, "args": {"size": "64MiB"}}
    status, memory = call("POST", f"{agent_url}/v1/faults", stress)
    assert status == 201, memory
    partition = {"run_id": "img", "kind": "partition", "target": target, "args": {"cidrs": ["10.1.2.3"]}}
    status, cut = call("POST", f"{agent_url}/v1/faults", partition)
    assert status == 201, cut
    try:
        assert memory_bytes(site.container) - before >= 60 * MiB
        assert f"chaoskit:img/{cut['id']}" in _rules(site.container)
    finally:
        assert call("DELETE", f"{agent_url}/v1/faults/{cut['id']}") == (200, {"outcome": "reverted"})
        assert call("DELETE", f"{agent_url}/v1/faults/{memory['id']}") == (200, {"outcome": "reverted"})
    assert "chaoskit:" not in _rules(site.container)
    assert wait_until(lambda: memory_bytes(site.container) - before < 16 * MiB, 10)
