"""The docker driver's pure parts: rule specs, leftover detection, helper output parsing, argument
validation, and the engine connection error. The real-engine behaviour is in tests/integration/docker."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from chaoskit.drivers import contract
from chaoskit.drivers.docker import containers, driver, engines, leftovers, matching, namespacing, networks
from chaoskit.errors import ComponentMissing, DriverError


def _partition(**args: object) -> networks.PartitionArgs:
    return networks.PartitionArgs.model_validate({"name": "web", **args})


def test_partition_everything_drops_all_but_loopback_both_ways() -> None:
    rules = networks.partition_rules(_partition(), [], "chaoskit:r1")
    assert rules == [
        ["INPUT", "!", "-i", "lo", "-m", "comment", "--comment", "chaoskit:r1", "-j", "DROP"],
        ["OUTPUT", "!", "-o", "lo", "-m", "comment", "--comment", "chaoskit:r1", "-j", "DROP"],
    ]


def test_partition_towards_peers_and_ports() -> None:
    rules = networks.partition_rules(_partition(ports=[80], protocol="tcp"), ["10.0.0.5/32"], "chaoskit:r1")
    assert ["INPUT", "-s", "10.0.0.5/32", "-p", "tcp", "--dport", "80"] in [r[:7] for r in rules]
    assert ["OUTPUT", "-d", "10.0.0.5/32", "-p", "tcp", "--sport", "80"] in [r[:7] for r in rules]
    assert len(rules) == 4  # two chains x (dport, sport)
    assert all(r[-6:] == ["-m", "comment", "--comment", "chaoskit:r1", "-j", "DROP"] for r in rules)
    both = networks.partition_rules(_partition(ports=[53]), ["10.0.0.0/24", "10.1.0.0/24"], "c")
    assert len(both) == 2 * 2 * 2 * 2  # chains x peers x protocols x sides


def test_partition_args_are_checked() -> None:
    with pytest.raises(ValidationError, match="1-65535"):
        _partition(ports=[0])
    with pytest.raises(ValidationError, match="say which containers"):
        networks.PartitionArgs.model_validate({"ports": [80]})
    with pytest.raises(ValidationError, match="only one of count, percent or all"):
        _partition(count=1, all=True)
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        matching.Selector.model_validate({"regex": "("})


def test_comment_carries_a_safe_run_id() -> None:
    assert networks.comment_for("20261125T190829Z-50fe9b") == "chaoskit:20261125T190829Z-50fe9b"
    assert networks.comment_for('a b"c') == "chaoskit:a_b_c"
    assert len(networks.comment_for("x" * 500)) <= 256


LISTING = """-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-A INPUT -p udp -m udp --dport 9 -j DROP
-A INPUT -s 10.0.0.5/32 -m comment --comment "chaoskit:run-a" -j DROP
-A OUTPUT ! -o lo -m comment --comment "chaoskit:run-b" -j DROP
-A OUTPUT -m comment --comment "someone else" -j DROP
"""


def test_leftover_rules_are_found_by_comment() -> None:
    assert leftovers.leftover_rules(LISTING, "run-a") == [
        ["INPUT", "-s", "10.0.0.5/32", "-m", "comment", "--comment", "chaoskit:run-a", "-j", "DROP"]
    ]
    every = leftovers.leftover_rules(LISTING, None)
    assert [r[0] for r in every] == ["INPUT", "OUTPUT"]
    assert every[1][:4] == ["OUTPUT", "!", "-o", "lo"]
    assert leftovers.leftover_rules(LISTING, "run-c") == []


def test_helper_output_is_split_per_command() -> None:
    commands = [["iptables", "-I", "A"], ["iptables", "-I", "B"], ["tc", "qdisc"]]
    logs = "\n@@chaoskit-rc=0\nline one\nline two\n\n@@chaoskit-rc=2\n"
    results = namespacing._parse(commands, logs)
    assert [r.code for r in results] == [0, 2]  # stopped on the error: the third never ran
    assert results[1].output == "line one\nline two"
    script = namespacing._script(commands, stop_on_error=True)
    assert script.count("@@chaoskit-rc=") == 3 and "exit 0" in script


def test_signals_by_name_or_number() -> None:
    assert containers._signal_number("SIGKILL") == 9
    assert containers._signal_number("term") == 15
    assert containers._signal_number(10) == 10
    with pytest.raises(DriverError, match="unknown signal"):
        containers._signal_number("SIGNOPE")


def test_the_driver_offers_every_activity_with_its_reversibility() -> None:
    d = driver()
    kinds = {f.name: f.reversibility for f in d.faults}
    assert kinds == {
        "docker.container.kill": contract.Reversibility.SELF_HEALING,
        "docker.container.stop": contract.Reversibility.REVERSIBLE,
        "docker.container.pause": contract.Reversibility.REVERSIBLE,
        "docker.container.restart": contract.Reversibility.SELF_HEALING,
        "docker.container.remove": contract.Reversibility.IRREVERSIBLE,
        "docker.network.disconnect": contract.Reversibility.REVERSIBLE,
        "docker.network.partition": contract.Reversibility.REVERSIBLE,
        "docker.network.delay": contract.Reversibility.REVERSIBLE,
        "docker.network.loss": contract.Reversibility.REVERSIBLE,
        "docker.network.dns": contract.Reversibility.REVERSIBLE,
        "docker.container.kill_process": contract.Reversibility.SELF_HEALING,
        "docker.container.stop_process": contract.Reversibility.REVERSIBLE,
        "docker.container.stress_cpu": contract.Reversibility.REVERSIBLE,
        "docker.container.stress_memory": contract.Reversibility.REVERSIBLE,
        "docker.container.fill_disk": contract.Reversibility.REVERSIBLE,
        "docker.container.stress_io": contract.Reversibility.REVERSIBLE,
    }
    assert {p.name for p in d.probes} == {
        "docker.container.running",
        "docker.container.healthy",
        "docker.container.restarts",
        "docker.container.exec",
    }
    assert [a.name for a in d.actions] == ["docker.container.run"]
    assert d.sweep is not None
    assert d.missing() is None


# The SDK leaks its socket when it can't fetch the API version (docker-py, from_env); collect it
# here so the warning belongs to this test, where it is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_unreachable_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    # A socket path where no engine listens: the real SDK fails to connect.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/chaoskit-test.sock")
    ctx = contract.RunContext(run_id="unit")
    try:
        with pytest.raises(
            ComponentMissing, match=r"can't reach the Docker engine at DOCKER_HOST=unix:///nonexistent"
        ):
            engines.client(ctx)
    finally:
        ctx.close()
        gc.collect()


def test_importing_the_driver_does_not_import_the_docker_sdk() -> None:
    code = "import sys, chaoskit.drivers.docker as d; d.driver(); print('docker' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "False"
