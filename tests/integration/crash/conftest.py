"""The crash matrix reuses the real-component fixtures of the suites that own them (``cluster``
and ``namespace`` come from the ``tests.k8s.clusters`` plugin)."""

from collections.abc import Iterator

import pytest

from tests.integration.crash import killing
from tests.integration.docker.conftest import engine, network, web
from tests.integration.prometheus.conftest import exporter

__all__ = ["engine", "exporter", "network", "web"]


@pytest.fixture(autouse=True)
def _leftovers() -> Iterator[None]:
    """After each test, kill what its runs started and left running (only after a failure does
    anything remain: the tests check that nothing does)."""
    before = len(killing.STARTED)
    yield
    killing.clean_up(killing.STARTED[before:])
