"""The crash matrix reuses the real-component fixtures of the suites that own them."""

from tests.integration.docker.conftest import engine, network, web
from tests.k8s.conftest import cluster, namespace

__all__ = ["cluster", "engine", "namespace", "network", "web"]
