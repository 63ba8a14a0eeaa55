"""The toxiproxy driver without a server: revert models through the ledger's JSON, endpoints and
lease keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients, proxies, toxics
from chaoskit.proxy import toxic_types

TOXIC = {"url": "http://127.0.0.1:8474", "proxy": "backend", "toxic": "chaoskit-r1-abc123-latency"}
DOWN = {"url": "http://127.0.0.1:8474", "proxy": "backend", "was_enabled": True}
ALL: list[contract.Fault[Any, Any]] = [*toxics.FAULTS, proxies.Down()]
FAULTS = [(f, TOXIC if isinstance(f, toxics.ToxicFault) else DOWN) for f in ALL]
IDS = [f.name for f in ALL]


def through_the_ledger(fault: contract.Fault[Any, Any], revert: contract.Revert) -> contract.Revert:
    return contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(revert))))


@pytest.mark.parametrize(("fault", "fields"), FAULTS, ids=IDS)
def test_every_revert_model_round_trips_through_the_ledger(
    fault: contract.Fault[Any, Any], fields: dict[str, Any]
) -> None:
    revert = fault.revert_type(**fields)
    dumped = contract.dump_revert(revert)
    assert dumped == {"v": 1, **fields}
    assert through_the_ledger(fault, revert) == revert


@pytest.mark.parametrize(("fault", "fields"), FAULTS, ids=IDS)
@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: {**d, "proxy": 7}, "proxy"),  # wrong type, not coerced to text
        (lambda d: {**d, "url": None}, "url"),
        (lambda d: {**d, "colour": "red"}, "colour"),  # unknown key
        (lambda d: {k: v for k, v in d.items() if k != "proxy"}, "proxy"),  # missing field
        (lambda d: {**d, "v": 2}, "version"),  # another chaoskit wrote it
        (lambda d: {k: v for k, v in d.items() if k != "v"}, "version"),
    ],
    ids=["wrong-type", "null", "unknown-key", "missing", "other-version", "no-version"],
)
def test_a_damaged_revert_record_is_refused_naming_the_field(
    fault: contract.Fault[Any, Any], fields: dict[str, Any], damage: Any, named: str
) -> None:
    record = damage({"v": 1, **fields})
    with pytest.raises(ValueError, match=named):
        contract.load_revert(fault, record)


@pytest.mark.parametrize("field", ["toxic", "was_enabled"])
def test_the_fault_specific_field_is_strict(field: str) -> None:
    fault = proxies.Down() if field == "was_enabled" else toxics.Latency()
    record = {
        "v": 1,
        **(DOWN if field == "was_enabled" else TOXIC),
        field: "yes" if field == "was_enabled" else 5,
    }
    with pytest.raises(ValueError, match=field):
        contract.load_revert(fault, record)


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://127.0.0.1:8474", "127.0.0.1:8474"),
        ("http://localhost:8474/", "127.0.0.1:8474"),
        ("http://LOCALHOST:8474", "127.0.0.1:8474"),
        ("http://toxiproxy.internal", "toxiproxy.internal:80"),
        ("https://toxiproxy.internal/api", "toxiproxy.internal:443"),
        ("http://[::1]:8474", "[::1]:8474"),
        ("127.0.0.1:8474", "127.0.0.1:8474"),
    ],
)
def test_endpoint_is_host_port_of_the_api_with_loopback_and_default_ports_normalised(
    url: str, endpoint: str
) -> None:
    assert clients.endpoint(url) == endpoint
    toxic = toxics.ToxicRevert(url=url, proxy="p", toxic="t")
    down = proxies.DownRevert(url=url, proxy="p", was_enabled=True)
    assert toxics.Latency().endpoint(toxic) == endpoint
    assert proxies.Down().endpoint(down) == endpoint


def test_lease_keys_name_type_server_proxy_and_stream() -> None:
    target = contract.Target(kind="toxiproxy proxy", id="x#backend", name="backend")
    latency = toxics.Latency()
    one = latency.lease(toxics.LatencyArgs(proxy="backend", url="http://localhost:8474/", latency=1), target)
    assert one == "toxiproxy.latency@http://127.0.0.1:8474#backend/downstream"
    same = latency.lease(toxics.LatencyArgs(proxy="backend", url="http://127.0.0.1:8474", latency=2), target)
    assert same == one
    upstream = toxics.LatencyArgs(proxy="backend", stream="upstream", latency=1)
    assert latency.lease(upstream, target).endswith("#backend/upstream")
    bandwidth = toxics.Bandwidth().lease(toxics.BandwidthArgs(proxy="backend", rate=1), target)
    assert bandwidth == "toxiproxy.bandwidth@http://127.0.0.1:8474#backend/downstream"
    generic = toxics.Toxic().lease(toxics.GenericToxicArgs(proxy="backend", type="slicer"), target)
    assert generic.startswith("toxiproxy.slicer@")
    down = proxies.Down().lease(proxies.ProxyArgs(proxy="backend"), target)
    assert down == "toxiproxy.down@http://127.0.0.1:8474#backend"
    assert all(not f.captures_state for f in toxics.FAULTS)
    assert proxies.Down().captures_state is True


@pytest.mark.parametrize(
    ("fault", "args", "seconds"),
    [
        (
            toxics.Latency(),
            toxics.LatencyArgs(proxy="p", latency="1.25s", jitter="40ms"),
            {"latency": 1.25, "jitter": 0.04},
        ),
        (toxics.SlowClose(), toxics.SlowCloseArgs(proxy="p", delay="2s"), {"delay": 2.0}),
        (toxics.Timeout(), toxics.TimeoutArgs(proxy="p", timeout="250ms"), {"timeout": 0.25}),
        (toxics.ResetPeer(), toxics.ResetPeerArgs(proxy="p", timeout=3), {"timeout": 3.0}),
        (toxics.Slicer(), toxics.SlicerArgs(proxy="p", average_size=8, delay="1.5ms"), {"delay": 0.0015}),
    ],
    ids=lambda v: getattr(v, "name", ""),
)  # fmt: skip
def test_the_embedded_proxy_reads_back_the_durations_the_driver_sends(
    fault: toxics.ToxicFault[Any], args: toxics.ToxicArgs, seconds: dict[str, float]
) -> None:
    # The driver and the proxy share chaoskit.units: what a user typed is what the proxy waits.
    body = {"type": fault.toxic_type(args), "attributes": fault.attributes(args)}
    toxic = toxic_types.build(body, set())
    assert {name: toxic.seconds(name) for name in seconds} == pytest.approx(seconds)
