"""The docker faults' revert data survives the ledger (model → JSON text → model) unchanged, and a
damaged record is refused naming what is wrong, never half-read. Their leases say which faults
can't stack on one container."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.docker import driver, matching, networks, processes
from chaoskit.errors import DriverError

FAULTS = {f.name: f for f in driver().faults}
CTX = contract.RunContext(run_id="20261207T050000Z-ab12cd")
WEB = contract.Target(kind="container", id="4f" * 32, name="web", detail={"image": "shop/web:1.4"})


def _prepared(name: str, args: dict[str, Any]) -> contract.Revert:
    """What ``prepare`` writes ahead, for the faults whose prepare needs no engine."""
    fault = FAULTS[name]
    prepared: contract.Revert = fault.prepare(fault.args.model_validate({"name": "web", **args}), WEB, CTX)
    return prepared


def samples() -> dict[str, contract.Revert]:
    """One record per fault, as prepare leaves it."""
    return {
        "docker.container.kill": _prepared("docker.container.kill", {"signal": "SIGTERM"}),
        "docker.container.stop": _prepared("docker.container.stop", {}),
        "docker.container.pause": _prepared("docker.container.pause", {}),
        "docker.container.restart": _prepared("docker.container.restart", {}),
        "docker.container.remove": _prepared("docker.container.remove", {}),
        # prepare reads the endpoint from the engine: the record a user-defined network gives.
        "docker.network.disconnect": networks.DisconnectRevert(
            container_id=WEB.id,
            name="web",
            network_id="9a" * 32,
            network_name="shop",
            aliases=("api", "shop-api"),
            ipv4_address="10.213.7.2",
            ipv6_address=None,
            links=("db:database",),
            driver_opt={"com.example.mtu": "1400"},
            ip_seen="10.213.7.2",
        ),
        "docker.network.partition": _prepared(
            "docker.network.partition", {"ports": [80, 443], "protocol": "tcp", "mechanism": "helper"}
        ),
        "docker.network.delay": _prepared("docker.network.delay", {"delay": "100ms", "jitter": "10ms"}),
        "docker.network.loss": _prepared("docker.network.loss", {"loss_percent": 12.5, "interface": "eth1"}),
        "docker.network.dns": _prepared("docker.network.dns", {"domains": ["db.shop"], "answer": "servfail"}),
        "docker.container.stress_cpu": _prepared("docker.container.stress_cpu", {"workers": 2}),
        "docker.container.stress_memory": _prepared("docker.container.stress_memory", {"size": "1GiB"}),
        "docker.container.fill_disk": _prepared(
            "docker.container.fill_disk", {"path": "/data", "percent_full": 90}
        ),
        "docker.container.stress_io": _prepared(
            "docker.container.stress_io", {"path": "/data", "workers": 2}
        ),
        # prepare reads the container's processes from /proc: the record two of them give.
        **{
            name: processes.ProcessesRevert(
                container_id=WEB.id,
                name="web",
                pids=[4242, 4243],
                starttimes=[991, 992],
                names=["worker", "worker"],
            )
            for name in ("docker.container.kill_process", "docker.container.stop_process")
        },
    }


SAMPLES = samples()


def _through_the_ledger(name: str, record: dict[str, Any]) -> contract.Revert:
    return contract.load_revert(FAULTS[name], json.loads(json.dumps(record)))


def test_every_fault_has_a_sample_of_its_own_model() -> None:
    assert set(SAMPLES) == set(FAULTS)
    for name, sample in SAMPLES.items():
        assert type(sample) is FAULTS[name].revert_type, name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_revert_data_round_trips_through_json_text(name: str) -> None:
    sample = SAMPLES[name]
    written = contract.dump_revert(sample)
    assert written["v"] == 1
    back = _through_the_ledger(name, written)
    assert back == sample
    assert type(back) is type(sample)


def test_what_prepare_records_is_typed_not_stringly() -> None:
    # Every fault on a container's life records just which container: they share one lease, and
    # the last one out may be handed another one's record.
    life = [f"docker.container.{verb}" for verb in ("kill", "stop", "pause", "restart", "remove")]
    assert {type(SAMPLES[n]) for n in life} == {matching.ContainerRevert}
    assert contract.dump_revert(SAMPLES["docker.container.remove"]) == {
        "v": 1, "container_id": WEB.id, "name": "web"
    }  # fmt: skip
    partition = SAMPLES["docker.network.partition"]
    assert isinstance(partition, networks.PartitionRevert)
    assert partition.mechanism.value == "helper"
    assert partition.helper_image  # resolved now, so recover needs no environment
    assert all(rule[-1] == "DROP" for rule in partition.rules) and len(partition.rules) == 8
    delay = SAMPLES["docker.network.delay"]
    assert isinstance(delay, networks.NetemRevert)
    assert delay.netem == ("delay", "100ms", "10ms")


def names_field(field: str) -> str:
    """Matches a validation error's line for ``field`` (or a part of it: ``connection.context``)."""
    return rf"\n{re.escape(field)}(\.\S+)?\n"


def damaged_records(samples: dict[str, contract.Revert]) -> list[Any]:
    """``(fault name, record, what the error must name)``: every field of the wrong type, every
    required field missing, an unknown key, another version, no version. Shared by the other
    drivers' revert tests."""
    cases = []
    for name, sample in samples.items():
        written = contract.dump_revert(sample)
        fields = type(sample).model_fields
        for field in fields:
            # A value no field of any of these models takes: wrong for a str, an int, a tuple, ...
            cases.append(
                pytest.param(
                    name, {**written, field: {"x": []}}, names_field(field), id=f"{name}-{field}-type"
                )
            )
            if fields[field].is_required():
                missing = {k: v for k, v in written.items() if k != field}
                cases.append(pytest.param(name, missing, names_field(field), id=f"{name}-{field}-missing"))
        cases.append(
            pytest.param(name, {**written, "colour": "red"}, names_field("colour"), id=f"{name}-unknown-key")
        )
        cases.append(pytest.param(name, {**written, "v": 2}, "version 2", id=f"{name}-version"))
        unversioned = {k: v for k, v in written.items() if k != "v"}
        cases.append(pytest.param(name, unversioned, "version None", id=f"{name}-no-version"))
    return cases


@pytest.mark.parametrize(("name", "record", "named"), damaged_records(SAMPLES))
def test_a_damaged_record_is_refused_naming_what_is_wrong(
    name: str, record: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        _through_the_ledger(name, record)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("docker.network.partition", "rules", []),  # a partition without rules undoes nothing
        ("docker.network.partition", "mechanism", "ssh"),
        ("docker.network.disconnect", "aliases", "api"),
    ],
)
def test_values_of_the_right_json_type_but_wrong_meaning_are_refused(
    name: str, field: str, value: object
) -> None:
    written = contract.dump_revert(SAMPLES[name])
    with pytest.raises(ValueError, match=names_field(field)):
        _through_the_ledger(name, {**written, field: value})


def test_an_unknown_signal_fails_when_preparing_before_anything_is_written() -> None:
    with pytest.raises(DriverError, match="unknown signal 'SIGNOPE'"):
        _prepared("docker.container.kill", {"signal": "SIGNOPE"})


def test_revert_models_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        SAMPLES["docker.container.stop"].container_id = "another"  # type: ignore[attr-defined]


def _lease(name: str, **args: Any) -> str | None:
    fault = FAULTS[name]
    return fault.lease(fault.args.model_validate({"name": "web", **args}), WEB)


def test_faults_on_a_containers_life_share_one_lease_so_they_cant_stack() -> None:
    life = ["kill", "stop", "pause", "restart", "remove"]
    keys = {_lease(f"docker.container.{fault}") for fault in life}
    assert keys == {f"docker.container.state@container:{WEB.id}"}


def test_network_leases_are_per_network_and_per_interface() -> None:
    assert _lease("docker.network.disconnect", network="a") != _lease(
        "docker.network.disconnect", network="b"
    )
    assert _lease("docker.network.delay", delay="1s") == _lease("docker.network.loss", loss_percent=5)
    assert _lease("docker.network.delay", delay="1s") != _lease(
        "docker.network.delay", delay="1s", interface="eth1"
    )
    assert _lease("docker.network.partition") == f"docker.network.partition@container:{WEB.id}"


def test_only_faults_that_restore_what_prepare_read_capture_state() -> None:
    capturing = {name for name, fault in FAULTS.items() if fault.captures_state}
    assert capturing == {"docker.container.stop", "docker.container.pause", "docker.network.disconnect"}


def test_the_loss_share_and_the_share_of_containers_are_two_arguments() -> None:
    """``percent`` was both the packets dropped and the share of matching containers hit:
    ``percent: 10`` on five containers faulted one of them."""
    from chaoskit.drivers.docker import networks

    args = networks.LossArgs.model_validate({"name": "web-*", "loss_percent": 10})
    assert args.loss_percent == 10
    assert args.percent is None  # every match is hit unless a share is asked for
    both = networks.LossArgs.model_validate({"name": "web-*", "loss_percent": 10, "percent": 40})
    assert (both.loss_percent, both.percent) == (10, 40)
