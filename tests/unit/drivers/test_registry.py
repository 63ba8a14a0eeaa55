"""The registry refuses ambiguity: a name registered twice or outside its driver's prefix is an error
naming every source; standing in for a driver is said out loud with ``replace``."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chaoskit import errors, testing
from chaoskit.cli import main
from chaoskit.drivers import contract, registry
from chaoskit.drivers.process import signalling


class _Kill(signalling.Kill):
    """A plugin's ``process.kill``: the same name as the built-in, other code."""


def _driver(name: str, *faults: contract.Fault[contract.A, contract.R]) -> contract.Driver:
    return contract.Driver(name=name, summary="test", faults=faults)


def test_a_second_driver_of_one_name_is_refused_naming_both_entry_points() -> None:
    builtin = registry.load(only={"process"})
    plugin = registry.Loaded(_driver("process", _Kill()), "entry point 'process' = plug:driver of plug 1.0")
    with pytest.raises(errors.DriverConflict) as caught:
        registry.build([*(registry.Loaded(d, o) for d, o in _with_origins(builtin)), plugin])
    message = caught.value.render()
    assert "two drivers are called 'process'" in message
    assert "entry point 'process' = chaoskit.drivers.process:driver of chaoskit" in message
    assert "entry point 'process' = plug:driver of plug 1.0" in message
    assert caught.value.exit_code is errors.ExitCode.INVALID and int(caught.value.exit_code) == 2


def _with_origins(loaded: registry.Registry) -> Sequence[tuple[contract.Driver, str]]:
    return [(driver, loaded.origins[name]) for name, driver in loaded.drivers.items()]


def test_one_activity_name_twice_is_refused_naming_both_classes() -> None:
    driver = _driver("process", signalling.Kill(), _Kill())
    with pytest.raises(errors.DriverConflict) as caught:
        registry.build([driver])
    message = caught.value.message
    assert "fault process.kill is registered twice" in message
    assert "chaoskit.drivers.process.signalling:Kill" in message
    assert f"{__name__}:_Kill" in message


def test_an_activity_outside_its_drivers_prefix_is_refused() -> None:
    with pytest.raises(errors.DriverConflict) as caught:
        registry.build([_driver("evil", _Kill())])
    assert "fault process.kill" in caught.value.message
    assert "outside the prefix of its driver 'evil'" in caught.value.message
    assert caught.value.hint is not None and "'evil.kill'" in caught.value.hint


def test_a_probe_and_an_action_may_share_a_name() -> None:
    fake = testing.FakeDriver().driver()
    loaded = registry.build([fake])
    assert set(loaded.probes) >= {"fake.value", "fake.status"}


def test_replace_stands_in_for_a_driver_by_name_and_only_then() -> None:
    builtin = registry.load(only={"process"})
    stand_in = _driver("process", _Kill())
    replaced = registry.build(list(builtin.drivers.values()), replace=[stand_in])
    assert isinstance(replaced.faults["process.kill"], _Kill)
    assert "process.stop" not in replaced.faults  # the whole driver is replaced, not merged
    assert replaced.origins["process"] == "driver 'process' given as replace="
    with pytest.raises(
        errors.DriverConflict, match="replace= names driver 'procss', which is not registered"
    ):
        registry.build(list(builtin.drivers.values()), replace=[_driver("procss")])


def test_load_with_replace_swaps_an_installed_driver() -> None:
    loaded = registry.load(only={"process"}, replace=[_driver("process", _Kill())])
    assert registry.source(loaded.faults["process.kill"]) == f"{__name__}:_Kill"


def test_every_installed_activity_sits_under_its_drivers_prefix() -> None:
    loaded = registry.load()
    assert not loaded.broken
    for name, driver in loaded.drivers.items():
        for kind in registry.KINDS:
            for item in getattr(driver, kind):
                assert item.name.startswith(f"{name}."), (name, item.name)


def test_the_cli_shows_a_conflict_as_one_error_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    real = registry._entries

    def doubled() -> list[object]:
        entries = list(real())
        return [*entries, *(e for e in entries if e.name == "process")]

    monkeypatch.setattr(registry, "_entries", doubled)
    result = CliRunner().invoke(main.cli, ["drivers"])
    assert result.exit_code == 2, result.output
    assert "two drivers are called 'process'" in result.output
    assert "Traceback" not in result.output
