"""Fixtures for the conformance tests: the server under test and a real echo upstream.

The server is the one at ``TOXIPROXY_URL`` when it is set (e.g. a real Toxiproxy on this
machine), otherwise an embedded chaoskit proxy started once per module, seeded so its toxicity
rolls and jitter are the same on every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from chaoskit.proxy import servers
from tests.integration.proxy import upstreams


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        yield url.rstrip("/")
        return
    with servers.ProxyServer(seed=14) as server:
        yield server.url


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
def echo() -> Iterator[upstreams.Upstream]:
    with upstreams.Upstream(upstreams.echo) as upstream:
        yield upstream
