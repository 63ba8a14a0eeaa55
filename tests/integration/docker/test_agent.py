"""The node agent on the real Docker engine: faults applied into a container by its id (as the
agent finds a pod's container on a dockershim node), measured from outside through the container's
own cgroup counters, its HTTP port and its processes; a requesting run SIGKILLed mid-fault swept
once its lease expires; and the kubernetes driver's in-pod faults reaching the agent (the API
server stood in for by recorded answers naming the container as a pod's)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.agent import httpapi, records, working
from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import podfaults
from chaoskit.kube import kubeconfigs
from chaoskit.stressors import spawning
from tests.integration.docker.conftest import Web, wait_until
from tests.integration.docker.test_stress import (  # noqa: F401 (resolving: a fixture)
    _states,
    cpu_rate,
    lookup,
    memory_bytes,
    nat_rules,
    resolving,
)

pytestmark = pytest.mark.docker

TOKEN = "agent-test-token"
MiB = 1024 * 1024


class Agent:
    """A ``chaoskit agent`` process serving on loopback, and how to talk to it."""

    def __init__(self, url: str, child: subprocess.Popen[str]) -> None:
        self.url, self.child = url, child
        self.said: list[str] = []
        """What it logged so far."""

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=150) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture
def agent(tmp_path: Path, engine: Any) -> Iterator[Agent]:
    env = {**os.environ, "CHAOSKIT_AGENT_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "chaoskit", "agent", "--listen", "127.0.0.1:0",
            "--state-dir", str(tmp_path / "agent"), "--no-cluster", "--allow-host-targets",
            "--sweep-every", "0.5"]  # fmt: skip
    child = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    line = child.stderr.readline()
    assert "serving on 127.0.0.1:" in line, line
    port = int(line.split("127.0.0.1:")[1].split(",")[0])
    served = Agent(f"http://127.0.0.1:{port}", child)
    # Keep reading its log so that it never blocks on a full pipe.
    drain = threading.Thread(target=lambda: served.said.extend(child.stderr or ()), daemon=True)
    drain.start()
    yield served
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=20)
    drain.join(timeout=5)
    child.stderr.close()


def _fault(kind: str, site: Web, args: dict[str, Any], run_id: str, lease: float = 30) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "kind": kind,
        "target": {"container_id": site.container.id},
        "args": args,
        "lease_seconds": lease,
    }


def test_cpu_stress_by_container_id_is_charged_to_the_container(
    web: Callable[..., Web], agent: Agent
) -> None:
    site = web()
    status, created = agent.call("POST", "/v1/faults", _fault("stress_cpu", site, {"workers": 1}, "run-cpu"))
    assert status == 201, created
    try:
        assert created["target"]["host_pid"] == site.reload().attrs["State"]["Pid"]
        assert cpu_rate(site.container, 3.0) > 0.3
    finally:
        assert agent.call("DELETE", f"/v1/faults/{created['id']}") == (200, {"outcome": "reverted"})
    assert cpu_rate(site.container) < 0.1
    assert spawning.carrying(f"run-cpu/{created['id']}") == []


def test_processes_in_the_container_stopped_and_continued(web: Callable[..., Web], agent: Agent) -> None:
    site = web()
    site.container.exec_run(["sh", "-c", "sleep 600 &"], detach=True)
    assert wait_until(lambda: _states(site, "sleep") == ["S"], 10)
    status, created = agent.call(
        "POST", "/v1/faults", _fault("stop_process", site, {"process": "sleep"}, "r")
    )
    assert status == 201, created
    assert wait_until(lambda: _states(site, "sleep") == ["T"], 5)
    assert site.ok(), "the main process was frozen too"
    agent.call("DELETE", f"/v1/faults/{created['id']}")
    assert wait_until(lambda: _states(site, "sleep") == ["S"], 5)
    status, killed = agent.call(
        "POST", "/v1/faults", _fault("kill_process", site, {"pattern": "sleep 600"}, "r")
    )
    assert status == 201, killed
    assert wait_until(lambda: _states(site, "sleep") == [], 5)
    assert site.ok()


def test_partition_cuts_the_container_off_until_reverted(web: Callable[..., Web], agent: Agent) -> None:
    site = web()
    status, created = agent.call("POST", "/v1/faults", _fault("partition", site, {}, "run-part"))
    assert status == 201, created
    try:
        assert not site.ok(timeout=2.0), "the container still answers through its published port"
    finally:
        agent.call("DELETE", f"/v1/faults/{created['id']}")
    assert wait_until(site.ok, 10)
    rules = subprocess.run(
        ["nsenter", "-t", str(site.reload().attrs["State"]["Pid"]), "-n", "iptables", "-w", "-S"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "chaoskit:" not in rules.stdout


def test_dns_names_fail_in_the_container_through_the_agent(resolving: Any, agent: Agent) -> None:  # noqa: F811
    assert "10.9.9.9" in lookup(resolving, "api.example.test")
    body = {
        "run_id": "run-dns",
        "kind": "dns",
        "target": {"container_id": resolving.id},
        "args": {"domains": ["*.example.test"], "answer": "nxdomain"},
    }
    status, created = agent.call("POST", "/v1/faults", body)
    assert status == 201, created
    try:
        assert "NXDOMAIN" in lookup(resolving, "api.example.test")
        assert "10.9.9.9" in lookup(resolving, "other.test"), "names not chosen must still resolve"
        assert f"chaoskit:run-dns/{created['id']}" in nat_rules(resolving)
    finally:
        assert agent.call("DELETE", f"/v1/faults/{created['id']}") == (200, {"outcome": "reverted"})
    assert "10.9.9.9" in lookup(resolving, "api.example.test")
    assert "chaoskit:" not in nat_rules(resolving)
    assert spawning.carrying(f"run-dns/{created['id']}") == []


REQUESTER = """
import json, sys, time, urllib.request
url, token, container = sys.argv[1:4]
def call(method, path, body):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method)
    request.add_header("Authorization", "Bearer " + token)
    return json.loads(urllib.request.urlopen(request, timeout=150).read())
made = call("POST", "/v1/faults", {"run_id": "run-killed", "kind": "stress_memory",
    "target": {"container_id": container}, "args": {"size": "96MiB"}, "lease_seconds": 5})
print(made["id"], flush=True)
for _ in range(600):
    time.sleep(1)
    call("PUT", "/v1/leases/run-killed", {"seconds": 5})
"""


def test_a_sigkilled_requesting_run_is_swept_after_its_lease(web: Callable[..., Web], agent: Agent) -> None:
    site = web()
    before = memory_bytes(site.container)
    run = subprocess.Popen(
        [sys.executable, "-c", REQUESTER, agent.url, TOKEN, site.container.id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        fault_id = run.stdout.readline().strip()
        assert fault_id, "the requesting run made no fault"
        assert memory_bytes(site.container) - before >= 90 * MiB
        time.sleep(6)  # renewed meanwhile: still applied after its first lease would have run out
        assert spawning.carrying(f"run-killed/{fault_id}")
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        if run.stdout is not None:
            run.stdout.close()
    assert wait_until(lambda: not spawning.carrying(f"run-killed/{fault_id}"), 15)
    assert wait_until(lambda: memory_bytes(site.container) - before < 16 * MiB, 10)
    assert wait_until(lambda: agent.call("GET", "/v1/faults") == (200, []), 10), agent.said
    assert any("lease expired, reverted stress_memory" in line for line in agent.said), agent.said


class RecordedApi:
    """The API server's answers the driver needs: the pod (its container is the test's Docker
    container, as on a dockershim node), the agent's pod on the node and its token Secret."""

    def __init__(self, site: Web, agent_port: int, kubeconfig: Path) -> None:
        self.connection = kubeconfigs.resolve(str(kubeconfig))
        self.client = None
        self.site, self.agent_port = site, agent_port

    def pod(self) -> dict[str, Any]:
        return {
            "metadata": {"namespace": "shop", "name": "web-1", "uid": "u1"},
            "spec": {"nodeName": "node-1"},
            "status": {
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "containerStatuses": [
                    {
                        "name": "web",
                        "containerID": f"docker://{self.site.container.id}",
                        "state": {"running": {}},
                    }
                ],
            },
        }

    def list(self, path: str, *, what: str, **query: Any) -> list[dict[str, Any]]:
        if path == "/api/v1/namespaces/chaoskit-system/pods":
            assert query["fieldSelector"] == "spec.nodeName=node-1"
            agent_pod = {
                "metadata": {"name": "chaoskit-agent-x"},
                "status": {"phase": "Running", "hostIP": "127.0.0.1"},
            }
            return [agent_pod]
        assert path == "/api/v1/namespaces/shop/pods", path
        return [self.pod()]

    def get(self, path: str, *, what: str, **query: Any) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/chaoskit-system/secrets/chaoskit-agent-token", path
        return {"data": {"token": base64.b64encode(TOKEN.encode()).decode()}}


def test_the_kubernetes_driver_stresses_a_pod_through_the_agent(
    web: Callable[..., Web], engine: Any, tmp_path: Path
) -> None:
    site = web()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    api = RecordedApi(site, 0, kubeconfig)
    agent = working.Agent(records.Book(tmp_path / "agent"), read_pod=lambda namespace, name: api.pod())
    server = httpapi.Server(("127.0.0.1", 0), agent, httpapi.shared_token(TOKEN))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    ctx = contract.RunContext(run_id=f"run-{uuid.uuid4().hex[:8]}")
    ctx.resource(api.connection.key, lambda: api)
    fault = podfaults.StressMemory()
    args = fault.args.model_validate({
        "kubeconfig": str(kubeconfig), "namespace": "shop", "names": ["web-1"], "size": "64MiB",
        "via": "node", "agent_port": server.server_address[1], "lease": 5,
    })  # fmt: skip
    before = memory_bytes(site.container)
    try:
        (target,) = fault.targets(args, ctx)
        revert = fault.prepare(args, target, ctx)
        fault.inject(args, target, revert, ctx)
        assert memory_bytes(site.container) - before >= 60 * MiB
        time.sleep(7)  # longer than the lease: the run's heartbeat keeps it
        assert [r.id for r in agent.faults(ctx.run_id)] == [revert.fault_id]
        assert agent.sweep() == []
        assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
        assert wait_until(lambda: memory_bytes(site.container) - before < 16 * MiB, 10)
        assert fault.revert(revert, ctx) is contract.RevertOutcome.ALREADY_CLEAN
    finally:
        ctx.close()
        server.shutdown()
        server.server_close()
