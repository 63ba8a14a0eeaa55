"""The crash matrix reuses the real-component fixtures of the suites that own them."""

from tests.k8s.conftest import cluster, namespace

__all__ = ["cluster", "namespace"]
