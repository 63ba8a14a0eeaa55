"""The crash matrix reuses the real-component fixtures of the suites that own them (``cluster``
and ``namespace`` come from the ``tests.k8s.clusters`` plugin)."""

from tests.integration.docker.conftest import engine, network, web
from tests.integration.prometheus.conftest import exporter

__all__ = ["engine", "exporter", "network", "web"]
