"""``chaoskit.testing``'s fake faults follow the contract as the real drivers do: typed, versioned
revert data that survives the ledger, refused when damaged, and enough to revert from alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import contract
from tests.unit.drivers.test_docker_reverts import damaged_records

FAKE = testing.FakeDriver()
FAULTS = {f.name: f for f in FAKE.driver().faults}
CTX = contract.RunContext(run_id="fake-run")


def _prepare(name: str, args: dict[str, Any]) -> contract.Revert:
    fault = FAULTS[name]
    parsed = fault.args.model_validate(args)
    (target,) = fault.targets(parsed, CTX)
    prepared: contract.Revert = fault.prepare(parsed, target, CTX)
    return prepared


SAMPLES = {
    "fake.break": _prepare("fake.break", {"targets": ["a"], "fail_revert": True}),
    "fake.kill": _prepare("fake.kill", {"targets": ["b"]}),
    "fake.destroy": _prepare("fake.destroy", {"targets": ["c"]}),
    "fake.marker": _prepare("fake.marker", {"path": "/tmp/chaoskit-marker"}),
}


def _through_the_ledger(name: str, record: dict[str, Any]) -> contract.Revert:
    return contract.load_revert(FAULTS[name], json.loads(json.dumps(record)))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fake_revert_data_round_trips_through_json_text(name: str) -> None:
    assert type(SAMPLES[name]) is FAULTS[name].revert_type
    assert _through_the_ledger(name, contract.dump_revert(SAMPLES[name])) == SAMPLES[name]


def test_every_fake_fault_is_covered() -> None:
    assert set(SAMPLES) == set(FAULTS)


@pytest.mark.parametrize(("name", "record", "named"), damaged_records(SAMPLES))
def test_a_damaged_fake_record_is_refused_naming_what_is_wrong(
    name: str, record: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        _through_the_ledger(name, record)


def test_a_marker_is_reverted_from_the_record_read_back_alone(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    marker = {f.name: f for f in fake.driver().faults}["fake.marker"]
    path = tmp_path / "marker"
    args = marker.args.model_validate({"path": str(path)})
    (target,) = marker.targets(args, CTX)
    written = contract.dump_revert(marker.inject(args, target, marker.prepare(args, target, CTX), CTX))
    assert path.read_text() == "fake-run"
    # Another process (recover) with only the ledger's text.
    recovered = contract.load_revert(marker, json.loads(json.dumps(written)))
    assert marker.revert(recovered, CTX) is contract.RevertOutcome.REVERTED
    assert not path.exists()
    assert marker.revert(recovered, CTX) is contract.RevertOutcome.ALREADY_CLEAN


def test_a_break_told_to_fail_its_revert_still_does_after_the_round_trip() -> None:
    fake = testing.FakeDriver()
    broken = {f.name: f for f in fake.driver().faults}["fake.break"]
    args = broken.args.model_validate({"targets": ["a"], "fail_revert": True})
    (target,) = broken.targets(args, CTX)
    applied = broken.inject(args, target, broken.prepare(args, target, CTX), CTX)
    assert not fake.healthy()
    recovered = _through_the_ledger("fake.break", contract.dump_revert(applied))
    with pytest.raises(errors.DriverError, match="revert told to fail"):
        broken.revert(recovered, CTX)
