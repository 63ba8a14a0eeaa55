"""The Kubernetes suite's own fixtures; ``cluster`` and ``namespace`` come from
``tests.k8s.clusters``, loaded once for every suite that needs them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from chaoskit.drivers import contract


@pytest.fixture
def ctx() -> Iterator[contract.RunContext]:
    run = contract.RunContext(run_id=f"test-{uuid.uuid4().hex[:12]}")
    yield run
    run.close()
