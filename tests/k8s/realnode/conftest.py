"""The real node's fixtures: the chaoskit image (scripts/lib/chaoskit-image.sh) in the node's own
dockerd, where its pods find it without a registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.k8s.clusters import REAL_HOW, Cluster

ROOT = Path(__file__).resolve().parents[3]


def node_docker() -> Path:
    """scripts/lib/kube/node-env.sh's NODE_DOCKER_SOCK."""
    runtime = Path(os.environ.get("CHAOSKIT_RUNTIME") or "/var/cache/chaoskit/run")
    return runtime / "kube" / "node" / "docker.sock"


@pytest.fixture(scope="session")
def chaoskit_image(cluster: Cluster) -> str:
    require("the real node's dockerd", cluster.real_node is not None and node_docker().exists(), REAL_HOW)
    built = subprocess.run(
        ["bash", str(ROOT / "scripts/lib/chaoskit-image.sh"), f"unix://{node_docker()}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    return built.stdout.strip().splitlines()[-1]
