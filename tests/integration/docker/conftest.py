"""Fixtures for the docker suite: a real Docker engine (scripts/test starts one), the test images it
imported, and HTTP target containers published on 127.0.0.1 that are removed after each test."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chaoskit.drivers import contract
from tests.conftest import require

HOW = "run scripts/test, which starts dockerd and builds the test images"
TEST_LABEL = "chaoskit.test"
HTTP_IMAGE = os.environ.get("CHAOSKIT_DOCKER_HTTP_IMAGE", "chaoskit-test/http:latest")
HELPER_IMAGE = os.environ.get("CHAOSKIT_DOCKER_HELPER_IMAGE", "chaoskit-test/nethelper:latest")


def _engine() -> Any | None:
    client = None
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(HTTP_IMAGE)
        client.images.get(HELPER_IMAGE)
    except Exception:
        if client is not None:
            client.close()
        return None
    return client


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    client = _engine()
    require("docker", client is not None, HOW)
    os.environ.setdefault("CHAOSKIT_DOCKER_HELPER_IMAGE", HELPER_IMAGE)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(port: int, timeout: float = 2.0) -> bool:
    """One real request to the published port: True on a 200 within ``timeout``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until(check: Callable[[], bool], seconds: float = 30.0, interval: float = 0.25) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass (generous: the machine is shared and slow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class Web:
    """An HTTP target container and the loopback port it is published on."""

    def __init__(self, container: Any, port: int) -> None:
        self.container = container
        self.port = port

    @property
    def name(self) -> str:
        return str(self.container.name)

    def ok(self, timeout: float = 2.0) -> bool:
        return http_ok(self.port, timeout)

    def reload(self) -> Any:
        self.container.reload()
        return self.container


@pytest.fixture
def web(engine: Any) -> Iterator[Callable[..., Web]]:
    """Start HTTP target containers; each is removed at the end of the test, whatever happened."""
    made: list[Any] = []

    def start(
        *,
        labels: dict[str, str] | None = None,
        network: str | None = None,
        restart: str | None = None,
        aliases: list[str] | None = None,
        healthcheck: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Web:
        import docker.errors

        name = f"ck-test-{uuid.uuid4().hex[:8]}"
        for attempt in range(3):
            port = free_port()
            try:
                container = engine.containers.run(
                    HTTP_IMAGE,
                    name=name,
                    detach=True,
                    labels={TEST_LABEL: "1", **(labels or {})},
                    ports={"80/tcp": ("127.0.0.1", port)},
                    restart_policy={"Name": restart} if restart else None,
                    network=network,
                    healthcheck=healthcheck,
                )
                break
            except docker.errors.APIError as e:
                # Another process on this shared machine may take the free port first.
                with contextlib.suppress(Exception):
                    engine.containers.get(name).remove(force=True)
                if ("already in use" not in str(e) and "already allocated" not in str(e)) or attempt == 2:
                    raise
        made.append(container)
        if aliases and network:
            # An alias can only be set when connecting; re-attach with it.
            net = engine.networks.get(network)
            net.disconnect(container)
            net.connect(container, aliases=aliases)
        site = Web(container, port)
        if wait:
            assert wait_until(site.ok, 30), f"container {name} never answered HTTP on 127.0.0.1:{port}"
        return site

    yield start
    for container in made:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.fixture
def network(engine: Any) -> Iterator[Callable[..., str]]:
    """Create user-defined bridge networks, removed at the end of the test."""
    made: list[Any] = []

    def create(pinned: bool = False) -> str:
        """A bridge network; ``pinned`` gives it a configured /24 (Docker pins addresses only there).

        The /24 is one no network on this dockerd uses, and another is tried when a test running
        beside this one takes it first (Docker answers "Pool overlaps"), so side-by-side tests
        never collide on a random pick.
        """
        import docker.errors
        import docker.types

        name = f"ck-test-{uuid.uuid4().hex[:8]}"
        if not pinned:
            net = engine.networks.create(name, driver="bridge", labels={TEST_LABEL: "1"})
        else:
            for _ in range(20):
                used = {
                    pool.get("Subnet")
                    for existing in engine.networks.list()
                    for pool in ((existing.attrs.get("IPAM") or {}).get("Config") or [])
                }
                free = [f"10.{b}.{c}.0/24" for b in range(213, 217) for c in range(1, 250)]
                subnet = random.choice([s for s in free if s not in used])
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
                try:
                    net = engine.networks.create(name, driver="bridge", labels={TEST_LABEL: "1"}, ipam=ipam)
                    break
                except docker.errors.APIError as e:
                    if "overlaps" not in str(e):
                        raise
            else:
                raise AssertionError("no free /24 under 10.213-216.0.0 after 20 tries")
        made.append(net)
        return str(net.name)

    yield create
    for net in made:
        with contextlib.suppress(Exception):
            net.reload()
            for container in net.containers:
                with contextlib.suppress(Exception):
                    net.disconnect(container, force=True)
            net.remove()


@pytest.fixture
def ctx() -> Iterator[contract.RunContext]:
    run = contract.RunContext(run_id=f"test-{uuid.uuid4().hex[:10]}")
    yield run
    run.close()


def iptables_rules(container: Any) -> str:
    """The container's iptables rules, read through the helper image (independent of the driver)."""
    client = container.client
    out = client.containers.run(
        HELPER_IMAGE,
        ["iptables", "-w", "-S"],
        network_mode=f"container:{container.id}",
        cap_add=["NET_ADMIN"],
        remove=True,
        labels={TEST_LABEL: "1"},
    )
    return bytes(out).decode()
