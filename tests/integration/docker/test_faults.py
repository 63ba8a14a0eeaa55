"""Docker faults against a real engine, each checked by real HTTP traffic to a 127.0.0.1-published
port failing during the fault and passing after it is reverted, and by inspecting the container."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from chaoskit.drivers import contract
from chaoskit.errors import ComponentMissing, TargetError
from tests.integration.docker import faulting
from tests.integration.docker.conftest import HTTP_IMAGE, TEST_LABEL, Web, iptables_rules, wait_until

pytestmark = pytest.mark.docker


def test_pause_freezes_traffic_and_revert_unpauses(web: Callable[..., Web], ctx: contract.RunContext) -> None:
    site = web()
    records = faulting.apply("docker.container.pause", {"name": site.name}, ctx)
    assert site.reload().status == "paused"
    assert not site.ok(timeout=1.5)
    assert faulting.revert("docker.container.pause", records, ctx) == ["reverted"]
    assert site.reload().status == "running"
    assert wait_until(site.ok, 20)
    # Idempotent: a second revert finds nothing to do.
    assert faulting.revert("docker.container.pause", records, ctx) == ["already-clean"]


def test_a_stop_handed_a_pauses_state_restores_running(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    # A pause and a stop overlapped on one container (they share a lease); the stop ended last, so
    # the engine hands it the pause's record: running is what both found, so it unpauses.
    site = web()
    records = faulting.apply("docker.container.pause", {"name": site.name}, ctx)
    assert site.reload().status == "paused"
    assert faulting.revert("docker.container.stop", records, ctx) == ["reverted"]
    assert site.reload().status == "running"
    assert wait_until(site.ok, 20)
    assert faulting.revert("docker.container.stop", records, ctx) == ["already-clean"]


@pytest.mark.parametrize("mechanism", ["nsenter", "helper"])
def test_partition_drops_traffic_and_revert_removes_exactly_its_rules(
    web: Callable[..., Web], ctx: contract.RunContext, engine: Any, mechanism: str
) -> None:
    site = web()
    # A rule that is not ours must survive the revert.
    foreign = ["INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"]
    engine.containers.run(
        faulting_helper_image(),
        ["iptables", "-w", "-A", *foreign],
        network_mode=f"container:{site.container.id}",
        cap_add=["NET_ADMIN"],
        remove=True,
    )
    records = faulting.apply(
        "docker.network.partition", {"name": site.name, "ports": [80], "mechanism": mechanism}, ctx
    )
    rules = iptables_rules(site.container)
    assert f'--comment "chaoskit:{ctx.run_id}"' in rules
    assert not site.ok(timeout=1.5)
    assert faulting.revert("docker.network.partition", records, ctx) == ["reverted"]
    after = iptables_rules(site.container)
    assert "chaoskit:" not in after
    assert "--dport 9 -j DROP" in after
    assert wait_until(site.ok, 20)
    assert faulting.revert("docker.network.partition", records, ctx) == ["already-clean"]


def faulting_helper_image() -> str:
    from tests.integration.docker.conftest import HELPER_IMAGE

    return HELPER_IMAGE


def test_partition_from_a_peer_container_only(
    web: Callable[..., Web], network: Callable[[], str], ctx: contract.RunContext
) -> None:
    net = network()
    target = web(network=net)
    peer = web(network=net)
    bystander = web(network=net)
    ip = target.reload().attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
    # busybox wget -T crashes (static build), so time it out with busybox timeout instead.
    fetch = {"command": f"busybox timeout 3 wget -q -O - http://{ip}/"}

    def reaches(site: Web) -> bool:
        result = faulting.probe("docker.container.exec", {"name": site.name, **fetch}, ctx)
        return bool(result["exit_code"] == 0 and "chaoskit test target" in result["output"])

    assert reaches(peer) and reaches(bystander)
    records = faulting.apply("docker.network.partition", {"name": target.name, "peers": [peer.name]}, ctx)
    assert not reaches(peer)
    assert reaches(bystander)
    assert target.ok()  # the host (docker-proxy) is not a peer
    faulting.revert("docker.network.partition", records, ctx)
    assert wait_until(lambda: reaches(peer), 20)


def test_disconnect_cuts_traffic_and_revert_reconnects_with_same_ip_and_aliases(
    web: Callable[..., Web], network: Callable[..., str], ctx: contract.RunContext
) -> None:
    # Docker pins addresses only on networks with a configured subnet.
    net = network(pinned=True)
    site = web(network=net, aliases=["shop-api"])
    before = site.reload().attrs["NetworkSettings"]["Networks"][net]
    records = faulting.apply("docker.network.disconnect", {"name": site.name, "network": net}, ctx)
    assert net not in site.reload().attrs["NetworkSettings"]["Networks"]
    assert not site.ok(timeout=1.5)
    assert faulting.revert("docker.network.disconnect", records, ctx) == ["reverted"]
    after = site.reload().attrs["NetworkSettings"]["Networks"][net]
    assert after["IPAddress"] == before["IPAddress"]
    assert "shop-api" in after["Aliases"]
    assert wait_until(site.ok, 20)
    assert faulting.revert("docker.network.disconnect", records, ctx) == ["already-clean"]


def test_disconnect_revert_goes_back_on_the_network_when_its_address_was_taken_meanwhile(
    web: Callable[..., Web], network: Callable[..., str], engine: Any, ctx: contract.RunContext
) -> None:
    """While a container is away, another may be given its address (Docker reuses freed ones):
    the revert must still put it back on the network, with another address, not fail forever.
    (Found by the crash bench: parallel runs on one network.)"""
    net = network(pinned=True)
    site = web(network=net)
    address = site.reload().attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
    records = faulting.apply("docker.network.disconnect", {"name": site.name, "network": net}, ctx)
    taker = web(wait=False)
    engine.networks.get(net).connect(taker.container, ipv4_address=address)
    assert faulting.revert("docker.network.disconnect", records, ctx) == ["reverted"]
    after = site.reload().attrs["NetworkSettings"]["Networks"][net]
    assert after["IPAddress"] and after["IPAddress"] != address
    assert faulting.revert("docker.network.disconnect", records, ctx) == ["already-clean"]


def test_kill_with_restart_policy_comes_back_and_restarts_are_counted(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web(restart="always")
    assert faulting.probe("docker.container.restarts", {"name": site.name}, ctx)["restarts"] == 0
    faulting.apply("docker.container.kill", {"name": site.name}, ctx)
    assert faulting.FAULTS["docker.container.kill"].reversibility is contract.Reversibility.SELF_HEALING
    assert wait_until(
        lambda: faulting.probe("docker.container.restarts", {"name": site.name}, ctx)["restarts"] >= 1
    )
    assert wait_until(site.ok, 30)
    assert faulting.probe("docker.container.running", {"name": site.name}, ctx)["running"] is True


def test_stop_is_reverted_by_start_unless_it_came_back(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    records = faulting.apply("docker.container.stop", {"name": site.name, "grace": 1}, ctx)
    assert site.reload().status == "exited"
    running = faulting.probe("docker.container.running", {"name": site.name}, ctx)
    assert running == {"running": False, "count": 0, "total": 1, "containers": {site.name: "exited"}}
    assert not site.ok(timeout=1)
    assert faulting.revert("docker.container.stop", records, ctx) == ["reverted"]
    assert wait_until(site.ok, 20)
    assert faulting.revert("docker.container.stop", records, ctx) == ["already-clean"]


def test_restart_and_remove(web: Callable[..., Web], ctx: contract.RunContext, engine: Any) -> None:
    site = web()
    started = site.reload().attrs["State"]["StartedAt"]
    faulting.apply("docker.container.restart", {"name": site.name, "grace": 1}, ctx)
    assert site.reload().attrs["State"]["StartedAt"] != started
    assert wait_until(site.ok, 20)

    assert faulting.FAULTS["docker.container.remove"].reversibility is contract.Reversibility.IRREVERSIBLE
    faulting.apply("docker.container.remove", {"name": site.name}, ctx)
    assert site.name not in {c.name for c in engine.containers.list(all=True)}
    assert faulting.probe("docker.container.running", {"name": site.name}, ctx)["total"] == 0


def test_netem_missing_is_a_clear_error_and_leaves_nothing(
    web: Callable[..., Web], ctx: contract.RunContext, engine: Any
) -> None:
    site = web()

    def qdiscs() -> str:
        out = engine.containers.run(
            faulting_helper_image(),
            ["tc", "qdisc", "show", "dev", "eth0"],
            network_mode=f"container:{site.container.id}",
            cap_add=["NET_ADMIN"],
            remove=True,
        )
        return bytes(out).decode()

    try:
        records = faulting.apply("docker.network.delay", {"name": site.name, "delay": "200ms"}, ctx)
    except ComponentMissing as e:
        # This machine's kernel has no sch_netem: the error says so, and nothing was applied.
        assert "netem is not available" in e.message
        assert site.name in e.message
        assert "netem" not in qdiscs()
        return
    # A kernel with netem: the delay is in place, and the revert removes it.
    assert "netem" in qdiscs()
    assert faulting.revert("docker.network.delay", records, ctx) == ["reverted"]
    assert "netem" not in qdiscs()


def test_targets_by_labels_compose_regex_and_count(web: Callable[..., Web], ctx: contract.RunContext) -> None:
    sites = [
        web(labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "api", "tier": "x"})
    ]
    sites.append(web(labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}))
    fault = faulting.FAULTS["docker.container.kill"]

    def names(**args: Any) -> set[str]:
        return {t.name for t in fault.targets(fault.args.model_validate(args), ctx)}

    assert names(compose_project="shop") == {s.name for s in sites}
    assert names(compose_project="shop", compose_service="api") == {sites[0].name}
    assert names(labels={"tier": "x"}) == {sites[0].name}
    assert names(labels={"tier": ""}) == {sites[0].name}
    assert names(regex=f"^({sites[0].name}|{sites[1].name})$") == {s.name for s in sites}
    assert len(names(compose_project="shop", count=1)) == 1
    with pytest.raises(TargetError, match="max_targets=1"):
        names(compose_project="shop", max_targets=1)
    with pytest.raises(TargetError, match="no running containers matched"):
        names(name="ck-test-does-not-exist")


def test_probes_healthy_and_exec(web: Callable[..., Web], ctx: contract.RunContext) -> None:
    check = {
        "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"],
        "interval": 500_000_000,
        "retries": 3,
    }
    site = web(healthcheck=check)
    assert wait_until(
        lambda: faulting.probe("docker.container.healthy", {"name": site.name}, ctx)["healthy"], 30
    )
    result = faulting.probe(
        "docker.container.exec", {"name": site.name, "command": ["cat", "/www/index.html"]}, ctx
    )
    assert result == {"exit_code": 0, "output": "chaoskit test target\n"}
    failed = faulting.probe("docker.container.exec", {"name": site.name, "command": "exit 3"}, ctx)
    assert failed["exit_code"] == 3


def test_targets_resolve_while_containers_come_and_go(engine: Any) -> None:
    # Containers are removed by another thread while targets are listed: the SDK inspects each listed
    # container, and one that is gone by then must simply not be a candidate (it used to fail the run).
    import threading
    import time

    from chaoskit.drivers.docker import matching

    tag = f"churn-{uuid.uuid4().hex[:8]}"
    labels = {TEST_LABEL: "1", "chaoskit.churn": tag}
    started = [engine.containers.run(HTTP_IMAGE, detach=True, labels=labels) for _ in range(12)]
    selector = matching.Selector(labels={"chaoskit.churn": tag})
    ctx = contract.RunContext(run_id="churn-test")

    def remove_all() -> None:
        import docker

        client = docker.from_env()  # its own client: a docker client is not shared by threads
        try:
            for container in started:
                with contextlib.suppress(Exception):
                    client.containers.get(container.id).remove(force=True)
        finally:
            client.close()

    remover = threading.Thread(target=remove_all)
    try:
        remover.start()
        deadline = time.monotonic() + 60
        rounds = 0
        while remover.is_alive() and time.monotonic() < deadline and rounds < 2000:
            found = matching.find(selector, ctx, include_stopped=True)
            assert all(c.labels.get("chaoskit.churn") == tag for c in found)
            rounds += 1
        assert rounds > 0
    finally:
        remover.join(timeout=60)
        ctx.close()
        remove_all()
