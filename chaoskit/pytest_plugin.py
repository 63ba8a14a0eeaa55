"""chaoskit's pytest plugin (entry point ``pytest11``): resilience tests in plain pytest.

Fixtures:

* ``chaoskit_proxy``  - an embedded fault proxy (``chaoskit.proxy.ProxyServer``) for the test;
  ``chaoskit_proxy.add("db", upstream="127.0.0.1:5432")`` returns the address to connect to instead.
* ``chaoskit_faults`` - applies ``chaoskit.faults`` context managers (``latency``, ``down``,
  ``http_abort``, ...) that are all taken back when the test ends, passed or failed. Uses
  ``chaoskit_proxy`` when the test has it.
* ``assert_steady_state`` - the function below, without an import.

Loading the plugin imports only pytest and the standard library, so installing chaoskit never slows
down or breaks a test session; a fixture whose optional piece is missing fails only the tests using it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from chaoskit.proxy import ProxyServer

T = TypeVar("T")

Check = Any
"""A ``chaoskit.probes.Result``, a bool, or a callable returning one of those (polled)."""


class SteadyStateError(AssertionError):
    """The steady state did not hold (within the time allowed)."""


def _evaluate(check: Check) -> tuple[bool, str]:
    outcome = check() if callable(check) else check
    ok = bool(outcome)
    if hasattr(outcome, "probe") and hasattr(outcome, "checks"):
        return ok, str(outcome)
    name = getattr(check, "__name__", repr(check))
    return ok, f"{name}: {'ok' if ok else 'FAILED'} ({outcome!r})"


def assert_steady_state(
    *checks: Check, within: float | str | None = None, interval: float | str = 0.5
) -> float:
    """Assert that every check holds. A check is a probe ``Result`` (``chaoskit.probes``), a bool,
    or a zero-argument callable returning one of those.

    Without ``within``: each check is evaluated once. With ``within`` (seconds or ``"30s"``):
    callables are polled every ``interval`` until all hold at once, or the time runs out. Returns the
    seconds it took (the measured recovery time); raises ``AssertionError`` listing what failed::

        recovered = assert_steady_state(lambda: probes.http_request(url, equals=200), within="30s")
    """
    from chaoskit import durations

    if not checks:
        raise ValueError("assert_steady_state needs at least one check")
    deadline = durations.parse(within) if within is not None else 0.0
    pause = durations.parse(interval)
    started = time.monotonic()
    while True:
        outcomes = [_evaluate(check) for check in checks]
        elapsed = time.monotonic() - started
        if all(ok for ok, _ in outcomes):
            return elapsed
        if elapsed + pause > deadline:
            failed = "\n".join(f"  {text}" for ok, text in outcomes if not ok)
            when = f" within {durations.format(deadline)}" if within is not None else ""
            raise SteadyStateError(f"steady state did not hold{when}:\n{failed}")
        time.sleep(pause)


class EmbeddedProxy:
    """The ``chaoskit_proxy`` fixture: an embedded proxy server and its Toxiproxy API."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        """The Toxiproxy-compatible API URL (give it to ``chaoskit.faults`` or a Toxiproxy client)."""
        return self.server.url

    def add(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """Proxy ``upstream`` (``host:port``) as ``name``; returns the ``host:port`` to connect to."""
        from chaoskit.drivers.toxiproxy import clients

        with clients.Client(self.url) as api:
            return str(api.create_proxy(name, upstream=upstream, listen=listen)["listen"])


class FaultSet:
    """The ``chaoskit_faults`` fixture: faults applied now, all taken back at the end of the test
    (last applied, first reverted). Each method returns what the fault's context manager yields."""

    def __init__(self, url: str) -> None:
        self.url = url
        """The Toxiproxy API the faults go to."""
        self._stack = contextlib.ExitStack()

    def apply(self, fault: contextlib.AbstractContextManager[T]) -> T:
        """Enter any context manager now and exit it at the end of the test."""
        return self._stack.enter_context(fault)

    def _faults(self) -> Any:
        try:
            from chaoskit import faults
        except ImportError as e:  # pragma: no cover - only without the toxiproxy driver
            pytest.fail(f"chaoskit_faults needs chaoskit.faults, which could not be imported: {e}")
        return faults

    def latency(self, proxy: str, latency: float | str, jitter: float | str = 0, **options: Any) -> Any:
        """Delay data through ``proxy`` by ``latency`` (± ``jitter``)."""
        return self.apply(self._faults().latency(proxy, latency, jitter, url=self.url, **options))

    def down(self, proxy: str) -> Any:
        """Disable ``proxy``: connections close and new ones are refused."""
        return self.apply(self._faults().down(proxy, url=self.url))

    def bandwidth(self, proxy: str, rate: int, **options: Any) -> Any:
        """Limit ``proxy`` to ``rate`` KB/s."""
        return self.apply(self._faults().bandwidth(proxy, rate, url=self.url, **options))

    def timeout(self, proxy: str, timeout: float | str = 0, **options: Any) -> Any:
        """Drop data through ``proxy``; close idle connections after ``timeout``."""
        return self.apply(self._faults().timeout(proxy, timeout, url=self.url, **options))

    def reset_peer(self, proxy: str, timeout: float | str = 0, **options: Any) -> Any:
        """Reset connections through ``proxy`` ``timeout`` after data arrives."""
        return self.apply(self._faults().reset_peer(proxy, timeout, url=self.url, **options))

    def http_abort(self, proxy: str, status: int = 503, **options: Any) -> Any:
        """Answer the HTTP requests ``match=`` picks with ``status`` instead of forwarding them
        (``body=``, ``headers=``, ``reset=True``, ``toxicity=`` per request)."""
        return self.apply(self._faults().http_abort(proxy, status, url=self.url, **options))

    def http_delay(self, proxy: str, latency: float | str, jitter: float | str = 0, **options: Any) -> Any:
        """Hold the HTTP responses ``match=`` picks (``stream="upstream"``: the requests) by ``latency``."""
        return self.apply(self._faults().http_delay(proxy, latency, jitter, url=self.url, **options))

    def http_modify(self, proxy: str, **options: Any) -> Any:
        """Change the HTTP requests or responses ``match=`` picks: ``set_headers=``,
        ``remove_headers=``, ``body=``, ``truncate=``."""
        return self.apply(self._faults().http_modify(proxy, url=self.url, **options))

    def toxic(self, proxy: str, type: str, attributes: dict[str, Any] | None = None, **options: Any) -> Any:
        """Any toxic, with the server's own attribute names and units."""
        return self.apply(self._faults().toxic(proxy, type, attributes, url=self.url, **options))

    def revert_all(self) -> None:
        """Take every applied fault back now (the fixture also does it at the end of the test)."""
        self._stack.close()


@pytest.fixture
def chaoskit_proxy() -> Iterator[EmbeddedProxy]:
    """An embedded fault proxy for this test, stopped at its end."""
    try:
        from chaoskit.proxy import ProxyServer
    except ImportError as e:  # pragma: no cover - only in a broken install
        pytest.fail(f"chaoskit_proxy needs chaoskit.proxy, which could not be imported: {e}")
    with ProxyServer() as server:
        yield EmbeddedProxy(server)


@pytest.fixture
def chaoskit_faults(request: pytest.FixtureRequest) -> Iterator[FaultSet]:
    """Faults for this test, all reverted at its end. They go to the test's ``chaoskit_proxy`` when it
    has one, else to ``$CHAOSKIT_TOXIPROXY_URL`` or ``http://127.0.0.1:8474``."""
    if "chaoskit_proxy" in request.fixturenames:
        url = request.getfixturevalue("chaoskit_proxy").url
    else:
        url = os.environ.get("CHAOSKIT_TOXIPROXY_URL", "http://127.0.0.1:8474")
    faults = FaultSet(url)
    try:
        yield faults
    finally:
        faults.revert_all()


@pytest.fixture(name="assert_steady_state")
def _assert_steady_state_fixture() -> Callable[..., float]:
    """``assert_steady_state(*checks, within=..., interval=...)`` without importing it."""
    return assert_steady_state


@pytest.fixture
def chaoskit_probes() -> Any:
    """The ``chaoskit.probes`` module (``chaoskit_probes.http_request(...)``), imported on first use."""
    from chaoskit import probes

    return probes


__all__ = ["EmbeddedProxy", "FaultSet", "SteadyStateError", "assert_steady_state"]
