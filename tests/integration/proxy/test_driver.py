"""The toxiproxy driver and ``chaoskit.faults`` against real embedded servers and real traffic."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest

from chaoskit import errors, faults
from chaoskit.drivers import contract, registry
from chaoskit.drivers.toxiproxy import clients, proxies, sweeping, toxics
from chaoskit.proxy import servers
from tests.integration.proxy import upstreams


@pytest.fixture
def ctx() -> Iterator[contract.RunContext]:
    context = contract.RunContext(run_id="run42")
    yield context
    context.close()


@pytest.fixture
def listen(api: httpx.Client, echo: upstreams.Upstream) -> str:
    response = api.post(
        "/proxies", json={"name": "backend", "upstream": echo.address, "listen": "127.0.0.1:0"}
    )
    return str(response.json()["listen"])


def rtt(sock: socket.socket) -> float:
    started = time.monotonic()
    sock.sendall(b"ping")
    assert upstreams.recv_exactly(sock, 4) == b"ping"
    return time.monotonic() - started


A = TypeVar("A", bound=contract.Args)
R = TypeVar("R", bound=contract.Revert)


def ledgered(fault: contract.Fault[Any, R], revert: R) -> R:
    """``revert`` as `chaoskit recover` reads it back: through the ledger's JSON and the model."""
    loaded = contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(revert))))
    assert isinstance(loaded, type(revert))
    return loaded


def apply(fault: contract.Fault[A, R], args: A, ctx: contract.RunContext) -> R:
    (target,) = fault.targets(args, ctx)
    revert = fault.prepare(args, target, ctx)
    assert ledgered(fault, revert) == revert  # must survive the ledger
    return fault.inject(args, target, revert, ctx)


def test_every_fault_is_registered_through_the_entry_point() -> None:
    loaded = registry.load()
    names = {
        "toxiproxy.latency",
        "toxiproxy.bandwidth",
        "toxiproxy.slow_close",
        "toxiproxy.timeout",
        "toxiproxy.reset_peer",
        "toxiproxy.slicer",
        "toxiproxy.limit_data",
        "toxiproxy.down",
        "toxiproxy.toxic",
    }
    assert names <= set(loaded.faults)
    assert "toxiproxy.proxy" in loaded.actions and "toxiproxy.proxy" in loaded.probes
    assert loaded.drivers["toxiproxy"].sweep is not None


def test_latency_fault_slows_traffic_and_reverts_from_ledger_data_alone(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext
) -> None:
    fault = toxics.Latency()
    args = toxics.LatencyArgs(proxy="backend", url=server.url, latency="1s")
    with upstreams.connect(listen) as sock:
        assert rtt(sock) < 0.5
        revert = apply(fault, args, ctx)
        (toxic,) = api.get("/proxies/backend/toxics").json()
        assert isinstance(revert, toxics.ToxicRevert)
        assert toxic["name"].startswith("chaoskit-run42-") and toxic["name"] == revert.toxic
        assert toxic["attributes"] == {"latency": 1000, "jitter": 0}
        assert rtt(sock) >= 0.99
        # A fresh process (chaoskit recover) has only the ledger's JSON.
        fresh = contract.RunContext(run_id="recover")
        try:
            restored = ledgered(fault, revert)
            assert fault.revert(restored, fresh) is contract.RevertOutcome.REVERTED
            assert fault.revert(restored, fresh) is contract.RevertOutcome.ALREADY_CLEAN
        finally:
            fresh.close()
        assert api.get("/proxies/backend/toxics").json() == []
        assert rtt(sock) < 0.5


@pytest.mark.parametrize(
    ("fault", "args", "kind", "attributes"),
    [
        (toxics.Bandwidth(), {"rate": 100}, "bandwidth", {"rate": 100}),
        (toxics.SlowClose(), {"delay": "2s"}, "slow_close", {"delay": 2000}),
        (toxics.Timeout(), {"timeout": "1s"}, "timeout", {"timeout": 1000}),
        (toxics.ResetPeer(), {"timeout": "250ms"}, "reset_peer", {"timeout": 250}),
        (
            toxics.Slicer(),
            {"average_size": 10, "size_variation": 2, "delay": "1ms"},
            "slicer",
            {"average_size": 10, "size_variation": 2, "delay": 1000},
        ),
        (toxics.LimitData(), {"bytes": 3}, "limit_data", {"bytes": 3}),
        (toxics.Toxic(), {"type": "noop"}, "noop", {}),
    ],
)
def test_each_toxic_fault_adds_its_toxic_and_reverts(
    server: servers.ProxyServer,
    api: httpx.Client,
    listen: str,
    ctx: contract.RunContext,
    fault: contract.Fault[Any, Any],
    args: dict[str, Any],
    kind: str,
    attributes: dict[str, int],
) -> None:
    parsed = fault.args(proxy="backend", url=server.url, stream="upstream", toxicity=0.5, **args)
    revert = apply(fault, parsed, ctx)
    (toxic,) = api.get("/proxies/backend/toxics").json()
    assert (toxic["type"], toxic["stream"], toxic["toxicity"], toxic["attributes"]) == (
        kind,
        "upstream",
        0.5,
        attributes,
    )
    assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
    assert api.get("/proxies/backend/toxics").json() == []


def test_limit_data_fault_cuts_connections(
    server: servers.ProxyServer, listen: str, ctx: contract.RunContext
) -> None:
    apply(toxics.LimitData(), toxics.LimitDataArgs(proxy="backend", url=server.url, bytes=3), ctx)
    with upstreams.connect(listen) as sock:
        sock.sendall(b"hello")
        assert upstreams.recv_all(sock) == b"hel"


def test_down_refuses_connections_until_reverted(
    server: servers.ProxyServer, listen: str, ctx: contract.RunContext
) -> None:
    fault = proxies.Down()
    revert = apply(fault, proxies.ProxyArgs(proxy="backend", url=server.url), ctx)
    with pytest.raises(ConnectionRefusedError):
        upstreams.connect(listen)
    assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
    assert fault.revert(revert, ctx) is contract.RevertOutcome.ALREADY_CLEAN
    with upstreams.connect(listen) as sock:
        assert rtt(sock) < 1


def test_unknown_proxy_names_the_ones_that_exist(
    server: servers.ProxyServer, listen: str, ctx: contract.RunContext
) -> None:
    args = toxics.LatencyArgs(proxy="backnd", url=server.url, latency=1)
    with pytest.raises(errors.TargetError, match=r"no proxy named 'backnd' \(it has: backend\)"):
        toxics.Latency().targets(args, ctx)
    dry = contract.RunContext(run_id="dry", dry_run=True)
    assert toxics.Latency().targets(args, dry)[0].name == "backnd"  # the dry run does not call the server


def test_api_errors_quote_the_server_and_unreachable_servers_say_how_to_fix(
    server: servers.ProxyServer, listen: str, ctx: contract.RunContext
) -> None:
    bad = toxics.GenericToxicArgs(proxy="backend", url=server.url, type="bandwidth", attributes={"rate": 0})
    with pytest.raises(
        clients.ApiError, match="answered 400: attribute 'rate' of a bandwidth toxic must be greater"
    ):
        apply(toxics.Toxic(), bad, ctx)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    with clients.Client(url, attempts=2) as client, pytest.raises(errors.DriverError) as caught:
        client.proxies()
    assert url in caught.value.message and "chaoskit proxy serve" in caught.value.render()


def test_two_servers_in_one_run(echo: upstreams.Upstream, ctx: contract.RunContext) -> None:
    with servers.ProxyServer() as first, servers.ProxyServer() as second:
        action = proxies.ProxyAction()
        for server in (first, second):
            action.run(proxies.ProxySpec(name="svc", upstream=echo.address, url=server.url), ctx)
        apply(toxics.Latency(), toxics.LatencyArgs(proxy="svc", url=first.url, latency=0.5), ctx)
        apply(proxies.Down(), proxies.ProxyArgs(proxy="svc", url=second.url), ctx)
        with clients.Client(first.url) as a, clients.Client(second.url) as b:
            assert [t["type"] for t in a.toxics("svc")] == ["latency"]
            assert a.proxy("svc")["enabled"] is True
            assert b.toxics("svc") == [] and b.proxy("svc")["enabled"] is False


def test_sweep_removes_only_the_runs_leftovers(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext
) -> None:
    apply(toxics.Latency(), toxics.LatencyArgs(proxy="backend", url=server.url, latency=1), ctx)
    other = contract.RunContext(run_id="other")
    apply(toxics.Latency(), toxics.LatencyArgs(proxy="backend", url=server.url, latency=1), other)
    other.close()
    api.post("/proxies/backend/toxics", json={"name": "users-own", "type": "noop"})
    done = sweeping.sweep("run42", ctx, urls=[server.url])
    assert len(done) == 1 and "chaoskit-run42-" in done[0]
    assert sorted(t["name"].split("-")[1] for t in api.get("/proxies/backend/toxics").json()) == [
        "other",
        "own",
    ]
    # Without a run id, only runs known to be dead are swept: not a live one, not an unknown one.
    states = {"other": "live"}
    scoped = dataclasses.replace(ctx, run_state=lambda run_id: states.get(run_id, "unknown"))
    assert sweeping.sweep(None, scoped, urls=[server.url]) == ["skipped the toxics of run other: it is live"]
    states["other"] = "unknown"
    [said] = sweeping.sweep(None, scoped, urls=[server.url])
    assert "no ledger for it here (chaoskit recover other --sweep)" in said
    assert len(api.get("/proxies/backend/toxics").json()) == 2
    states["other"] = "dead"
    [removed] = sweeping.sweep(None, scoped, urls=[server.url])
    assert "chaoskit-other-" in removed
    assert [t["name"] for t in api.get("/proxies/backend/toxics").json()] == ["users-own"]


def test_proxy_action_creates_updates_and_undoes_and_the_probe_reads_it(
    server: servers.ProxyServer, echo: upstreams.Upstream, ctx: contract.RunContext
) -> None:
    action, probe = proxies.ProxyAction(), proxies.ProxyProbe()
    result = action.run(proxies.ProxySpec(name="db", upstream=echo.address, url=server.url), ctx)
    assert isinstance(result.output, dict) and str(result.output["listen"]).startswith("127.0.0.1:")
    assert result.undo == {"url": server.url, "proxy": "db"}
    with upstreams.connect(str(result.output["listen"])) as sock:
        assert rtt(sock) < 1
    again = action.run(proxies.ProxySpec(name="db", upstream="127.0.0.1:9", url=server.url), ctx)
    assert again.undo is None  # it existed: not ours to delete
    read = probe.run(proxies.ProxyRead(name="db", url=server.url), ctx)
    assert isinstance(read, dict) and read["exists"] is True and read["upstream"] == "127.0.0.1:9"
    assert action.undo(result.undo, ctx) is contract.RevertOutcome.REVERTED
    assert action.undo(result.undo, ctx) is contract.RevertOutcome.ALREADY_CLEAN
    assert probe.run(proxies.ProxyRead(name="db", url=server.url), ctx) == {
        "exists": False,
        "name": "db",
    }


def test_library_context_managers_revert_on_exit_and_on_errors(
    server: servers.ProxyServer, api: httpx.Client, listen: str
) -> None:
    with upstreams.connect(listen) as sock:
        with faults.latency(proxy="backend", latency="1s", url=server.url) as toxic:
            assert toxic["attributes"]["latency"] == 1000
            assert rtt(sock) >= 0.99
        assert rtt(sock) < 0.5
        with pytest.raises(RuntimeError), faults.bandwidth("backend", rate=1, url=server.url):
            assert len(api.get("/proxies/backend/toxics").json()) == 1
            raise RuntimeError("the test body failed")
        assert api.get("/proxies/backend/toxics").json() == []
    with faults.down("backend", url=server.url), pytest.raises(ConnectionRefusedError):
        upstreams.connect(listen)
    with upstreams.connect(listen) as sock:
        assert rtt(sock) < 1
    for manager in (
        faults.slow_close("backend", "1s", url=server.url),
        faults.timeout("backend", "1s", url=server.url),
        faults.reset_peer("backend", url=server.url),
        faults.slicer("backend", 10, 2, "1ms", url=server.url),
        faults.limit_data("backend", 10, url=server.url),
        faults.toxic("backend", "noop", url=server.url),
    ):
        with manager:
            assert len(api.get("/proxies/backend/toxics").json()) == 1
        assert api.get("/proxies/backend/toxics").json() == []


def enabled(api: httpx.Client, proxy: str = "backend") -> bool:
    return bool(api.get(f"/proxies/{proxy}").json()["enabled"])


@pytest.mark.parametrize("initially", [True, False])
def test_down_revert_restores_enabled_exactly_and_is_idempotent(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext, initially: bool
) -> None:
    api.post("/proxies/backend", json={"enabled": initially})
    fault = proxies.Down()
    revert = apply(fault, proxies.ProxyArgs(proxy="backend", url=server.url), ctx)
    assert isinstance(revert, proxies.DownRevert) and revert.was_enabled is initially
    assert enabled(api) is False
    first = fault.revert(ledgered(fault, revert), ctx)
    assert first is (contract.RevertOutcome.REVERTED if initially else contract.RevertOutcome.ALREADY_CLEAN)
    assert enabled(api) is initially
    assert fault.revert(ledgered(fault, revert), ctx) is contract.RevertOutcome.ALREADY_CLEAN
    assert enabled(api) is initially


def test_down_revert_puts_back_the_recorded_state_whatever_it_finds(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext
) -> None:
    # Disabled before the fault; something enabled it while the fault was applied. The revert
    # restores what was recorded, instead of calling the proxy "already clean".
    api.post("/proxies/backend", json={"enabled": False})
    fault = proxies.Down()
    revert = apply(fault, proxies.ProxyArgs(proxy="backend", url=server.url), ctx)
    api.post("/proxies/backend", json={"enabled": True})
    assert fault.revert(revert, ctx) is contract.RevertOutcome.REVERTED
    assert enabled(api) is False


def test_the_same_proxy_down_twice_comes_back_when_the_first_record_is_reverted_last(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext
) -> None:
    # Two overlapping downs (allow_overlap): the second records the first's "disabled". The engine
    # hands the first record to the last revert (captures_state); the driver must then re-enable,
    # whichever of the two ends first.
    fault = proxies.Down()
    assert fault.captures_state is True
    args = proxies.ProxyArgs(proxy="backend", url=server.url)
    first = apply(fault, args, ctx)
    second = apply(fault, args, ctx)
    assert isinstance(first, proxies.DownRevert) and isinstance(second, proxies.DownRevert)
    assert (first.was_enabled, second.was_enabled) == (True, False)
    (target,) = fault.targets(args, ctx)
    assert fault.lease(args, target) == fault.lease(
        proxies.ProxyArgs(proxy="backend", url=server.url + "/"), target
    )
    assert fault.revert(second, ctx) is contract.RevertOutcome.ALREADY_CLEAN  # first out: still down
    assert enabled(api) is False
    assert fault.revert(ledgered(fault, first), ctx) is contract.RevertOutcome.REVERTED
    assert enabled(api) is True
    with upstreams.connect(listen) as sock:
        assert rtt(sock) < 1


def test_reverts_against_an_unreachable_server_raise_and_a_vanished_proxy_is_already_clean(
    server: servers.ProxyServer, api: httpx.Client, listen: str, ctx: contract.RunContext
) -> None:
    latency, down = toxics.Latency(), proxies.Down()
    toxic = apply(latency, toxics.LatencyArgs(proxy="backend", url=server.url, latency=1), ctx)
    disabled = apply(down, proxies.ProxyArgs(proxy="backend", url=server.url), ctx)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    elsewhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    pairs: list[tuple[contract.Fault[Any, Any], proxies.ProxyRevert]] = [(latency, toxic), (down, disabled)]
    for fault, revert in pairs:
        moved = revert.model_copy(update={"url": elsewhere})
        with pytest.raises(errors.Unreachable, match=elsewhere):
            fault.revert(moved, ctx)
        assert fault.endpoint(moved) == elsewhere.removeprefix("http://")
    # Nothing was reverted on the real server by the failed attempts.
    assert len(api.get("/proxies/backend/toxics").json()) == 1 and enabled(api) is False
    # A proxy that is really gone (404) holds no fault any more.
    assert api.delete("/proxies/backend").status_code == 204
    assert latency.revert(toxic, ctx) is contract.RevertOutcome.ALREADY_CLEAN
    assert down.revert(disabled, ctx) is contract.RevertOutcome.ALREADY_CLEAN


def test_toxic_leases_are_per_proxy_stream_and_type_and_toxics_capture_no_state(
    server: servers.ProxyServer, listen: str, ctx: contract.RunContext
) -> None:
    fault = toxics.Latency()
    assert fault.captures_state is False
    args = toxics.LatencyArgs(proxy="backend", url=server.url, latency=1)
    (target,) = fault.targets(args, ctx)
    host_port = server.url.removeprefix("http://")
    assert fault.lease(args, target) == f"toxiproxy.latency@http://{host_port}#backend/downstream"
    upstream = args.model_copy(update={"stream": "upstream"})
    assert fault.lease(upstream, target) != fault.lease(args, target)
    generic = toxics.GenericToxicArgs(proxy="backend", url=server.url, type="latency")
    assert toxics.Toxic().lease(generic, target) == fault.lease(args, target)
    # Two overlapping toxics (allow_overlap) are two objects: each revert removes only its own.
    one, two = apply(fault, args, ctx), apply(fault, args, ctx)
    assert isinstance(two, toxics.ToxicRevert)
    assert fault.revert(one, ctx) is contract.RevertOutcome.REVERTED
    with clients.Client(server.url) as client:
        assert [t["name"] for t in client.toxics("backend")] == [two.toxic]
