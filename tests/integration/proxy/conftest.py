"""Fixtures for the proxy tests: an embedded proxy server and real upstreams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chaoskit.proxy import servers
from tests.integration.proxy import upstreams


@pytest.fixture
def server() -> Iterator[servers.ProxyServer]:
    with servers.ProxyServer() as running:
        yield running


@pytest.fixture
def api(server: servers.ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def echo() -> Iterator[upstreams.Upstream]:
    with upstreams.Upstream(upstreams.echo) as upstream:
        yield upstream
