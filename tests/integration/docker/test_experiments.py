"""The docker driver end to end: ``chaoskit run`` and ``chaoskit recover`` as subprocesses against a
real engine, running the shipped ``experiments/docker-*.yaml`` and crashing the runner mid-fault."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.conftest import HTTP_IMAGE, Web, free_port, http_ok, iptables_rules, wait_until

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENTS = ROOT / "experiments"


def chaoskit(*args: str | Path, state: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *map(str, args), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=state,
    )


@pytest.fixture
def named(engine: Any) -> Iterator[Callable[[], str]]:
    """Names for containers the experiments start; removed afterwards if a run left them."""
    names: list[str] = []

    def make() -> str:
        names.append(f"ck-test-{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make
    for name in names:
        with contextlib.suppress(Exception):
            engine.containers.get(name).remove(force=True)


@pytest.mark.parametrize("experiment", ["kill-restart", "pause", "partition", "disconnect"])
def test_shipped_experiment_completes(
    experiment: str, engine: Any, named: Callable[[], str], network: Callable[..., str], tmp_path: Path
) -> None:
    name = named()
    port = free_port()
    extra: list[str] = []
    if experiment == "disconnect":
        extra = ["--var", f"network={network(pinned=True)}"]
    journal = tmp_path / "journal.json"
    done = chaoskit(
        "run",
        EXPERIMENTS / f"docker-{experiment}.yaml",
        "--var",
        f"image={HTTP_IMAGE}",
        "--var",
        f"port={port}",
        "--var",
        f"name={name}",
        *extra,
        "--journal",
        journal,
        state=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(journal.read_text())
    assert record["verdict"] == "completed"
    assert record["recovery"]["met"] is True
    assert isinstance(record["recovery"]["measured"], float)
    (fault,) = record["faults"]
    assert name in json.dumps(fault)
    if experiment != "kill-restart":
        # The method's own check: real traffic failed while the fault was applied.
        during = [c for c in record["checks"] if "no request succeeds" in json.dumps(c)]
        assert during and all(c["ok"] for c in during), during
    # The container the setup started was removed after teardown.
    assert name not in {c.name for c in engine.containers.list(all=True)}


def test_dry_run_lists_the_containers_that_would_be_hit(
    web: Callable[..., Web], tmp_path: Path, engine: Any
) -> None:
    group = uuid.uuid4().hex[:8]
    hit = [web(labels={"ck.group": group}), web(labels={"ck.group": group})]
    spared = web()
    experiment = tmp_path / "dry.yaml"
    experiment.write_text(
        f"""
title: dry run
method:
  - name: freeze the group
    fault: docker.container.pause
    with: {{labels: {{ck.group: "{group}"}}}}
"""
    )
    done = chaoskit("run", experiment, "--dry-run", state=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for site in hit:
        assert site.name in done.stdout
    assert spared.name not in done.stdout
    assert all(site.reload().status == "running" for site in hit)


def test_sigkilled_runner_is_recovered_pause_partition_disconnect(
    web: Callable[..., Web], network: Callable[..., str], tmp_path: Path
) -> None:
    net = network(pinned=True)
    paused, parted, cut = web(), web(), web(network=net, aliases=["cut-api"])
    address = cut.reload().attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
    experiment = tmp_path / "crash.yaml"
    experiment.write_text(
        f"""
title: three faults held while the runner is killed
method:
  - {{name: pause, fault: docker.container.pause, with: {{name: {paused.name}}}}}
  - {{name: partition, fault: docker.network.partition, with: {{name: {parted.name}}}}}
  - {{name: disconnect, fault: docker.network.disconnect, with: {{name: {cut.name}, network: {net}}}}}
  - pause: 5m
"""
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "run", str(experiment), "--state-dir", str(tmp_path), "-q"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        applied = wait_until(
            lambda: (
                paused.reload().status == "paused"
                and "chaoskit:" in iptables_rules(parted.container)
                and net not in cut.reload().attrs["NetworkSettings"]["Networks"]
            ),
            60,
            0.5,
        )
        assert applied, "the runner never applied all three faults"
        # Give the runner a moment to write the third `applied` ledger record.
        time.sleep(1)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)

    # Nothing took the faults back: they are all still there, and traffic fails.
    assert paused.reload().status == "paused"
    assert not paused.ok(timeout=1.5)
    assert not parted.ok(timeout=1.5)
    assert not cut.ok(timeout=1.5)

    done = chaoskit("recover", state=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("reverted") >= 3, done.stdout

    assert paused.reload().status == "running"
    assert "chaoskit:" not in iptables_rules(parted.container)
    endpoint = cut.reload().attrs["NetworkSettings"]["Networks"][net]
    assert endpoint["IPAddress"] == address
    assert "cut-api" in endpoint["Aliases"]
    for site in (paused, parted, cut):
        assert wait_until(site.ok, 20), f"{site.name} does not serve after recover"

    again = chaoskit("recover", state=tmp_path)
    assert again.returncode == 0
    assert "Nothing to recover" in again.stdout


def test_sweep_removes_leftover_rules_and_helpers_without_the_ledger(
    web: Callable[..., Web], tmp_path: Path, engine: Any
) -> None:
    from chaoskit.drivers import contract
    from tests.integration.docker import faulting

    site = web()
    other_run = web()
    ctx = contract.RunContext(run_id=f"sweep-{uuid.uuid4().hex[:8]}")
    keep = contract.RunContext(run_id=f"keep-{uuid.uuid4().hex[:8]}")
    try:
        faulting.apply("docker.network.partition", {"name": site.name, "mechanism": "helper"}, ctx)
        faulting.apply("docker.network.partition", {"name": other_run.name, "ports": [80]}, keep)
        # A helper container a killed run would have left behind.
        engine.containers.create(
            "chaoskit-test/nethelper:latest",
            ["sleep", "600"],
            labels={"chaoskit.run-id": ctx.run_id, "chaoskit.role": "helper"},
        )
        assert not site.ok(timeout=1.5)
        assert not other_run.ok(timeout=1.5)

        # Sweeping one run (no ledger exists for it) removes its leftovers and nothing else.
        assert faulting.DRIVER.sweep is not None
        done = list(faulting.DRIVER.sweep(ctx.run_id, ctx))
        assert any("removed helper container" in line for line in done), done
        assert any(f"iptables rules from container {site.name}" in line for line in done), done
        assert "chaoskit:" not in iptables_rules(site.container)
        assert wait_until(site.ok, 20)
        assert not engine.containers.list(all=True, filters={"label": f"chaoskit.run-id={ctx.run_id}"})
        assert f"chaoskit:{keep.run_id}" in iptables_rules(other_run.container)

        # `chaoskit recover --sweep` without a run id leaves a run with no ledger here alone (it may
        # be going on from another machine) and says how to sweep it by its id.
        swept = chaoskit("recover", "--sweep", state=tmp_path)
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert f"chaoskit recover {keep.run_id} --sweep" in swept.stdout
        assert f"chaoskit:{keep.run_id}" in iptables_rules(other_run.container)
        swept = chaoskit("recover", keep.run_id, "--sweep", state=tmp_path)
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert re.search(rf"iptables rules? from container {other_run.name}", swept.stdout)
        assert "chaoskit:" not in iptables_rules(other_run.container)
        assert wait_until(other_run.ok, 20)
    finally:
        ctx.close()
        keep.close()


def test_published_port_is_loopback_only(web: Callable[..., Web]) -> None:
    site = web()
    bindings = site.reload().attrs["HostConfig"]["PortBindings"]["80/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert http_ok(site.port)


def test_remove_is_refused_without_irreversible_ok(
    web: Callable[..., Web], tmp_path: Path, engine: Any
) -> None:
    site = web()
    experiment = tmp_path / "remove.yaml"
    step = f"  - {{name: remove it, fault: docker.container.remove, with: {{name: {site.name}}}}}\n"
    experiment.write_text("title: remove\nmethod:\n" + step)
    refused = chaoskit("run", experiment, "--journal", tmp_path / "j.json", state=tmp_path)
    assert refused.returncode == 2
    assert "irreversible: ok" in refused.stderr
    assert site.reload().status == "running"

    experiment.write_text("title: remove\nmethod:\n" + step.replace("}}\n", "}, irreversible: ok}\n"))
    done = chaoskit("run", experiment, "--journal", tmp_path / "j.json", state=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert site.name not in {c.name for c in engine.containers.list(all=True)}


def test_a_kill_of_a_container_a_pause_holds_is_refused_and_the_pause_still_reverts(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    # A kill its restart policy answers would resume the paused container behind the pause's back.
    site = web(restart="always")
    started = site.reload().attrs["State"]["StartedAt"]
    experiment = tmp_path / "stack.yaml"
    experiment.write_text(
        "title: pause, then kill the same container\n"
        "method:\n"
        f"  - {{name: freeze, fault: docker.container.pause, with: {{name: {site.name}}}}}\n"
        f"  - {{name: crash, fault: docker.container.kill, with: {{name: {site.name}}}}}\n"
    )
    run = chaoskit("run", experiment, "--journal", tmp_path / "j.json", state=tmp_path)
    journal = json.loads((tmp_path / "j.json").read_text())
    assert run.returncode == 4, run.stdout + run.stderr
    (error,) = journal["errors"]
    assert error["step"] == "crash"
    assert "not injected" in error["message"] and "already held by an earlier step" in error["message"]
    assert site.reload().status == "running"
    assert site.reload().attrs["State"]["StartedAt"] == started  # never killed
    assert wait_until(site.ok, 20)


def test_a_docker_context_is_honoured_when_docker_host_is_unset(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    site = web()
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    # What `docker context create chaoskit-test --docker host=...` writes.
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"chaoskit-test").hexdigest()
    meta.mkdir(parents=True)
    (config / "config.json").write_text("{}")
    (meta / "meta.json").write_text(
        json.dumps(
            {
                "Name": "chaoskit-test",
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
            }
        )
    )
    experiment = tmp_path / "ctx.yaml"
    experiment.write_text(
        "title: context\nmethod:\n"
        f"  - {{name: p, fault: docker.container.pause, with: {{name: {site.name}}}}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env.update(DOCKER_CONFIG=str(config), DOCKER_CONTEXT="chaoskit-test")
    done = subprocess.run(
        [sys.executable, "-m", "chaoskit", "run", str(experiment), "--dry-run", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert site.name in done.stdout
