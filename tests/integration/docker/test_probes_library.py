"""``chaoskit.probes.docker_running`` against the real Docker engine of the docker suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chaoskit import probes
from tests.integration.docker.conftest import Web

pytestmark = pytest.mark.docker


def test_docker_running_is_ok_only_while_the_container_runs(web: Callable[..., Web]) -> None:
    site = web()
    running = probes.docker_running(site.name)
    assert running.ok and running.value is True
    site.container.stop(timeout=1)
    stopped = probes.docker_running(site.name)
    assert not stopped.ok
    assert stopped.check is not None and stopped.check.message == "expected running equals true, got false"
