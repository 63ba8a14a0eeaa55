"""The crash matrix reuses the real-component fixtures of the suites that own them (``cluster``
and ``namespace`` come from the ``tests.k8s.clusters`` plugin)."""

from tests.integration.docker.conftest import engine, network, web

__all__ = ["engine", "network", "web"]
