"""Crash safety of the reversible docker faults (pause, stop, partition, disconnect) on a real
Docker engine: the runner is SIGKILLed while the fault is in place; after ``chaoskit recover`` the
containers are as they were, read through the driver's own probes and real HTTP requests to
their published ports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaoskit.drivers import contract
from tests.integration.crash import killing
from tests.integration.docker import faulting
from tests.integration.docker.conftest import Web, iptables_rules, wait_until

pytestmark = pytest.mark.docker


def running(site: Web) -> Any:
    ctx = contract.RunContext(run_id="observer")
    try:
        return faulting.probe("docker.container.running", {"name": site.name}, ctx)
    finally:
        ctx.close()


def experiment(fault: str, args: str) -> str:
    return f"title: {fault} then crash\nmethod:\n  - fault: {fault}\n    with: {{{args}}}\n    duration: 1h\n"


def status(site: Web) -> str:
    return str(site.reload().status)


@pytest.mark.parametrize("fault", ["docker.container.pause", "docker.container.stop"])
def test_container_fault_is_recovered_after_a_sigkill_at_any_moment(
    web: Callable[..., Web], tmp_path: Path, fault: str
) -> None:
    delays = killing.moments(fault)
    sites = [web() for _ in delays]
    gone = "paused" if fault.endswith("pause") else "exited"

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        assert running(site)["running"] is True
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(
                fault, f"name: {site.name}, grace: 1" if fault.endswith("stop") else f"name: {site.name}"
            ),
            delay,
            left_behind=lambda: status(site) == gone and not site.ok(timeout=1.5),
        )
        assert wait_until(lambda: running(site)["running"] is True, 30), running(site)
        assert status(site) == "running"
        assert wait_until(site.ok, 30), f"{site.name} does not answer HTTP after recover"

    killing.each_moment(delays, moment)


def test_partition_is_recovered_after_a_sigkill_at_any_moment(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    fault = "docker.network.partition"
    delays = killing.moments(fault)
    sites = [web() for _ in delays]

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        assert "chaoskit:" not in iptables_rules(site.container)
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(fault, f"name: {site.name}, ports: [80]"),
            delay,
            left_behind=lambda: not site.ok(timeout=1.5),
        )
        assert "chaoskit:" not in iptables_rules(site.container), "partition rules outlived recover"
        assert wait_until(site.ok, 30), f"{site.name} does not answer HTTP after recover"

    killing.each_moment(delays, moment)


def test_disconnect_is_recovered_after_a_sigkill_at_any_moment(
    web: Callable[..., Web], network: Callable[..., str], tmp_path: Path
) -> None:
    fault = "docker.network.disconnect"
    # Docker pins addresses only on networks with a configured subnet.
    net = network(pinned=True)
    delays = killing.moments(fault)
    sites = [web(network=net, aliases=[f"api-{i}"]) for i in range(len(delays))]

    def attached(site: Web) -> dict[str, Any] | None:
        found: dict[str, Any] | None = site.reload().attrs["NetworkSettings"]["Networks"].get(net)
        return found

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        before = attached(site)
        assert before is not None
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            experiment(fault, f"name: {site.name}, network: {net}"),
            delay,
            left_behind=lambda: attached(site) is None and not site.ok(timeout=1.5),
        )
        after = attached(site)
        assert after is not None, f"{site.name} is not back on {net}"
        assert after["IPAddress"] == before["IPAddress"]
        assert f"api-{index}" in (after.get("Aliases") or [])
        assert wait_until(site.ok, 30), f"{site.name} does not answer HTTP after recover"

    killing.each_moment(delays, moment)
