"""The agent's mechanics on real processes of this host: faults applied and recorded with the run
id, reverted on request, swept once the run's lease expires (also by an agent started afresh over
the same state dir, as after a crash), and nothing left behind."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from chaoskit.agent import locating, records, working
from chaoskit.drivers import contract
from chaoskit.errors import DriverError, TargetError, UsageError
from chaoskit.stressors import spawning
from tests.unit.agent.conftest import Clock, state, wait

Spawn = Callable[..., subprocess.Popen[bytes]]
pytestmark = pytest.mark.usefixtures("root")


def test_stop_process_freezes_by_pattern_and_revert_continues(agent: working.Agent, spawn: Spawn) -> None:
    main, other = spawn(), spawn(token="777000111")
    record, said = agent.create("run-a", "stop_process", {"pid": main.pid}, {"pattern": r"600\.777000111$"})
    assert wait(lambda: state(other.pid) == "T"), said
    assert state(main.pid) != "T"  # the target's own process is spared without main: true
    on_file = agent.book.get(record.id)
    assert on_file is not None and on_file.state == "applied" and on_file.run_id == "run-a"
    assert agent.revert(record.id) is contract.RevertOutcome.REVERTED
    assert wait(lambda: state(other.pid) in {"S", "R"})
    assert agent.book.get(record.id) is None
    assert agent.revert(record.id) is contract.RevertOutcome.ALREADY_CLEAN


def test_stress_cpu_runs_with_the_run_mark_until_reverted(agent: working.Agent, spawn: Spawn) -> None:
    target = spawn()
    record, _ = agent.create("run-b", "stress_cpu", {"pid": target.pid}, {"workers": 1, "load": 50})
    mark = record.undo["mark"]
    assert mark == f"run-b/{record.id}"
    pids = spawning.carrying(mark)
    assert pids
    environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
    assert b"CHAOSKIT_RUN_ID=run-b" in environ
    agent.revert(record.id)
    assert spawning.carrying(mark) == []


def test_fill_disk_writes_through_the_target_root_and_removes_the_file(
    agent: working.Agent, spawn: Spawn, tmp_path: Path
) -> None:
    target = spawn()
    record, _ = agent.create(
        "run-c", "fill_disk", {"pid": target.pid}, {"path": str(tmp_path), "size": "4MiB"}
    )
    (written,) = record.undo["files"]
    assert Path(written).parent == tmp_path
    assert Path(written).stat().st_size == 4 * 1024 * 1024
    agent.revert(record.id)
    assert not Path(written).exists()
    assert spawning.carrying(record.undo["mark"]) == []


def test_a_failed_apply_leaves_no_record(agent: working.Agent, spawn: Spawn, tmp_path: Path) -> None:
    target = spawn()
    with pytest.raises(DriverError, match="can't fill"):
        missing = {"path": str(tmp_path / "nope"), "size": 4096}
        agent.create("run-d", "fill_disk", {"pid": target.pid}, missing)
    assert agent.faults() == []


def test_expired_lease_is_swept_and_a_renewed_one_is_not(
    agent: working.Agent, spawn: Spawn, clock: Clock
) -> None:
    target, frozen = spawn(), spawn(token="777000222")
    stress, _ = agent.create("run-e", "stress_memory", {"pid": target.pid}, {"size": "8MiB"}, lease=10)
    pattern = {"pattern": r"600\.777000222$"}
    stop, _ = agent.create("run-e", "stop_process", {"pid": target.pid}, pattern, lease=10)
    clock.now += 8
    agent.renew("run-e", 10)
    clock.now += 8
    assert agent.sweep() == []  # renewed: 2 s left
    assert spawning.carrying(stress.undo["mark"]) and state(frozen.pid) == "T"
    clock.now += 3
    assert agent.sweep() == [stop.id, stress.id]  # last applied, first reverted
    assert spawning.carrying(stress.undo["mark"]) == []
    assert wait(lambda: state(frozen.pid) in {"S", "R"})
    assert agent.faults() == []
    assert not (agent.book.leases / "run-e.json").exists()


def test_a_restarted_agent_sweeps_what_its_predecessor_held(
    agent: working.Agent, spawn: Spawn, clock: Clock, tmp_path: Path
) -> None:
    target = spawn()
    record, _ = agent.create("run-f", "stress_cpu", {"pid": target.pid}, {"load": 10}, lease=5)
    successor = working.Agent(records.Book(tmp_path / "state"), host_targets=True, clock=clock)
    assert [r.id for r in successor.faults("run-f")] == [record.id]
    clock.now += 6
    assert successor.sweep() == [record.id]
    assert spawning.carrying(record.undo["mark"]) == []


def test_partition_rules_in_the_target_netns_marked_and_removed(agent: working.Agent, spawn: Spawn) -> None:
    target = spawn("unshare", "--net")
    assert wait(lambda: os.readlink(f"/proc/{target.pid}/exe").endswith("sleep"))

    def rules() -> str:
        done = subprocess.run(
            ["nsenter", "-t", str(target.pid), "-n", "iptables", "-w", "-S"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    record, _ = agent.create("run-g", "partition", {"pid": target.pid}, {"cidrs": ["10.9.8.0/24"]})
    listed = rules()
    assert f"chaoskit:run-g/{record.id}" in listed and "10.9.8.0/24" in listed
    assert agent.revert(record.id) is contract.RevertOutcome.REVERTED
    assert "chaoskit:" not in rules()


def test_requests_that_cannot_be_served_say_why(agent: working.Agent, spawn: Spawn) -> None:
    target = spawn()
    with pytest.raises(UsageError, match="unknown fault 'stress_gpu'"):
        agent.create("run-h", "stress_gpu", {"pid": target.pid}, {})
    with pytest.raises(UsageError, match="workers"):
        agent.create("run-h", "stress_cpu", {"pid": target.pid}, {"workers": 0})
    with pytest.raises(UsageError, match="answer must be nxdomain, servfail or an IPv4 address"):
        agent.create("run-h", "dns", {"pid": target.pid}, {"domains": ["a.test"], "answer": "nope"})
    with pytest.raises(UsageError, match="not a DNS name"):
        agent.create("run-h", "dns", {"pid": target.pid}, {"domains": ["a b"]})
    with pytest.raises(UsageError, match="run id"):
        agent.create("../etc", "stress_cpu", {"pid": target.pid}, {})
    with pytest.raises(TargetError, match="no process in process"):
        agent.create("run-h", "kill_process", {"pid": target.pid}, {"process": "no-such-name"})
    with pytest.raises(TargetError, match="no process 999999999"):
        agent.create("run-h", "stress_cpu", {"pid": 999999999}, {})
    assert agent.faults() == []


def test_pods_only_unless_host_targets_and_namespaces_enforced(tmp_path: Path) -> None:
    pod = {
        "metadata": {"namespace": "shop", "name": "web-1"},
        "status": {
            "containerStatuses": [
                {"name": "web", "containerID": "docker://" + "ab" * 32, "state": {"running": {}}}
            ]
        },
    }
    strict = working.Agent(records.Book(tmp_path), namespaces=["shop"], read_pod=lambda namespace, name: pod)
    with pytest.raises(TargetError, match="only pods"):
        strict.create("run-i", "stress_cpu", {"pid": os.getpid()}, {})
    with pytest.raises(TargetError, match="namespace 'kube-system' is not one"):
        strict.create("run-i", "stress_cpu", {"pod": {"namespace": "kube-system", "name": "dns"}}, {})
    with pytest.raises(TargetError, match="pod shop/web-1 container web has no process on this node"):
        strict.create("run-i", "stress_cpu", {"pod": {"namespace": "shop", "name": "web-1"}}, {})


def test_pod_container_ids_from_the_pod_status() -> None:
    pod = {
        "metadata": {"namespace": "n", "name": "p"},
        "status": {
            "containerStatuses": [
                {"name": "a", "containerID": "docker://aaa", "state": {"running": {}}},
                {"name": "b", "containerID": "containerd://bbb", "state": {"running": {}}},
                {"name": "c", "containerID": "", "state": {"waiting": {}}},
            ]
        },
    }
    assert locating.pod_container_id(pod, None) == ("a", "aaa")
    with pytest.raises(TargetError, match="dockershim"):
        locating.pod_container_id(pod, "b")
    with pytest.raises(TargetError, match="not running"):
        locating.pod_container_id(pod, "c")
    with pytest.raises(TargetError, match="no container 'd'"):
        locating.pod_container_id(pod, "d")
