"""The pytest plugin, run inside a real pytest session (``pytester``): fixtures, automatic revert,
``assert_steady_state``."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit.drivers.toxiproxy import clients
from chaoskit.proxy import ProxyServer
from chaoskit.pytest_plugin import SteadyStateError, assert_steady_state

pytest_plugins = ["pytester"]


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A real TCP server that echoes one message per connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.sendall(conn.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def test_the_plugin_is_registered_and_offers_its_fixtures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:randomly")
    out = result.stdout.str()
    for fixture in ("chaoskit_proxy", "chaoskit_faults", "assert_steady_state", "chaoskit_probes"):
        assert fixture in out


def test_a_session_that_uses_none_of_it_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=1)


def test_faults_through_the_embedded_proxy_break_and_heal_a_connection(
    pytester: pytest.Pytester, echo_server: str
) -> None:
    pytester.makepyfile(
        f"""
        import socket
        from chaoskit import probes

        def talk(address):
            host, port = address.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as conn:
                conn.sendall(b"ping")
                return conn.recv(16)

        def test_resilience(chaoskit_proxy, chaoskit_faults, assert_steady_state):
            db = chaoskit_proxy.add("db", upstream="{echo_server}")
            host, port = db.rsplit(":", 1)
            assert talk(db) == b"ping"
            chaoskit_faults.down("db")
            assert not probes.tcp_connect(host, int(port), timeout=1).ok
            chaoskit_faults.revert_all()
            seconds = assert_steady_state(lambda: probes.tcp_connect(host, int(port)), within="10s")
            assert seconds < 10
            assert talk(db) == b"ping"
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_faults_are_reverted_when_the_test_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ProxyServer() as server, clients.Client(server.url) as api:
        api.create_proxy("api", upstream="127.0.0.1:9", listen="127.0.0.1:0")
        monkeypatch.setenv("CHAOSKIT_TOXIPROXY_URL", server.url)
        pytester.makepyfile(
            """
            from chaoskit.drivers.toxiproxy import clients

            def test_breaks(chaoskit_faults):
                chaoskit_faults.latency("api", "300ms")
                chaoskit_faults.down("api")
                with clients.Client(chaoskit_faults.url) as api:
                    assert len(api.toxics("api")) == 1
                    assert api.proxy("api")["enabled"] is False
                raise AssertionError("the system under test fell over")
            """
        )
        result = pytester.runpytest("-p", "no:randomly")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*the system under test fell over*"])
        assert api.toxics("api") == []
        assert api.proxy("api")["enabled"] is True


def test_assert_steady_state_reports_what_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        from chaoskit import probes

        def test_down(assert_steady_state):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            down = probes.tcp_connect("127.0.0.1", port, timeout=1)
            assert_steady_state(down, within="1s", interval="200ms")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*steady state did not hold within 1s:*",
            "*tcp.connect FAILED: expected connected equals true, got false*",
        ]
    )


def test_assert_steady_state_polls_callables_until_they_all_hold() -> None:
    calls = {"n": 0}

    def recovers_on_the_third_call() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    seconds = assert_steady_state(recovers_on_the_third_call, True, within="20s", interval=0.05)
    assert calls["n"] == 3
    assert seconds >= 0.1


def test_assert_steady_state_evaluates_once_without_within() -> None:
    calls = {"n": 0}

    def never() -> bool:
        calls["n"] += 1
        return False

    with pytest.raises(SteadyStateError, match=r"steady state did not hold:\n  never: FAILED \(False\)"):
        assert_steady_state(never)
    assert calls["n"] == 1
    with pytest.raises(ValueError, match="at least one check"):
        assert_steady_state()


def test_every_fault_helper_adds_its_toxic_and_revert_all_takes_them_back() -> None:
    from chaoskit.pytest_plugin import FaultSet

    with ProxyServer() as server, clients.Client(server.url) as api:
        api.create_proxy("db", upstream="127.0.0.1:9", listen="127.0.0.1:0")
        faults = FaultSet(server.url)
        faults.latency("db", "100ms", jitter="10ms")
        faults.bandwidth("db", 64)
        faults.timeout("db", "1s")
        faults.reset_peer("db", "2s", stream="upstream")
        faults.toxic("db", "slicer", {"average_size": 8, "size_variation": 2, "delay": 10})
        kinds = sorted(t["type"] for t in api.toxics("db"))
        assert kinds == ["bandwidth", "latency", "reset_peer", "slicer", "timeout"]
        faults.revert_all()
        assert api.toxics("db") == []
        faults.revert_all()  # idempotent


BLOCKED_SESSION = """
import sys, pytest

class Block:
    # Stand-in for an install without the optional pieces: these imports fail.
    names = ("httpx", "pydantic", "prometheus_client", "prometheus_api_client", "chaoskit.proxy",
             "chaoskit.probes", "chaoskit.drivers", "docker", "kubernetes")

    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in self.names):
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, Block())
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_a_session_without_the_optional_pieces_still_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subprocess must load this checkout's plugin, whatever the environment has installed.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    test_file = pytester.makepyfile("def test_plain():\n    assert True\n")
    script = pytester.makepyfile(blocked_session=BLOCKED_SESSION)
    result = pytester.run(sys.executable, str(script), str(test_file), timeout=120)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*1 passed*"])
    plugins = pytester.run(sys.executable, str(script), "--trace-config", str(test_file), timeout=120)
    plugins.stdout.fnmatch_lines(["*chaoskit.pytest_plugin*"])
