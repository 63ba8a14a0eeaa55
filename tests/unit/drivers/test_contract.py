"""The driver contract's plug point: an activity's argument and revert models are the ones its type
parameters name, so strict mypy checks every driver's use of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import pytest

from chaoskit.drivers import contract


class _Args(contract.Args):
    n: int = 1


class _Other(contract.Args):
    s: str = ""


class _Revert(contract.Revert):
    n: int


S = TypeVar("S", bound=contract.Args)


class _Base(contract.Fault[S, _Revert]):
    """A generic intermediate, as docker's container faults share one."""

    def targets(self, args: S, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return [contract.Target(kind="t", id="1", name="1")]

    def prepare(self, args: S, target: contract.Target, ctx: contract.RunContext) -> _Revert:
        return _Revert(n=1)

    def inject(self, args: S, target: contract.Target, revert: _Revert, ctx: contract.RunContext) -> _Revert:
        return revert


def test_fault_keywords_set_the_models() -> None:
    class Kill(_Base[_Args], args=_Args, revert=_Revert):
        name = "t.kill"
        summary = ""

    assert Kill.args is _Args  # type: ignore[misc]
    assert Kill.revert_type is _Revert  # type: ignore[misc]
    assert Kill().args is _Args


def test_a_model_other_than_the_type_parameter_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"args=_Other does not match its type parameter _Args"):

        class Kill(_Base[_Args], args=_Other, revert=_Revert):
            name = "t.kill"
            summary = ""

    class _Revert2(contract.Revert):
        n: int

    with pytest.raises(TypeError, match=r"revert_type=_Revert2 does not match its type parameter _Revert"):

        class Kill2(_Base[_Args], args=_Args, revert=_Revert2):
            name = "t.kill"
            summary = ""


def test_probe_and_action_keywords_are_checked_too() -> None:
    class Ok(contract.Probe[_Args], args=_Args):
        name = "t.ok"
        summary = ""

        def run(self, args: _Args, ctx: contract.RunContext) -> contract.JsonValue:
            return args.n

    assert Ok().args is _Args
    with pytest.raises(TypeError, match="does not match"):

        class Bad(contract.Action[_Args], args=_Other):
            name = "t.bad"
            summary = ""

            def run(self, args: _Args, ctx: contract.RunContext) -> contract.ActionResult:
                return contract.ActionResult()


def test_a_subclass_of_a_concrete_activity_keeps_its_models() -> None:
    class Kill(_Base[_Args], args=_Args, revert=_Revert):
        name = "t.kill"
        summary = ""

    class Harder(Kill):
        name = "t.harder"

    assert Harder().args is _Args
    assert Harder().revert_type is _Revert


def test_the_old_class_attribute_form_is_still_checked() -> None:
    """Drivers not yet converted assign ``args = X`` in the body; a mismatch is still refused."""
    with pytest.raises(TypeError, match="args = _Other does not match"):

        class Bad(contract.Probe[_Args]):
            name = "t.bad"
            summary = ""
            args = _Other  # type: ignore[assignment]

            def run(self, args: _Args, ctx: contract.RunContext) -> contract.JsonValue:
                return None


def _bound(cls: type, base: type) -> tuple[object, ...] | None:
    for klass in cls.__mro__:
        bound = contract._type_arguments(klass, base)
        if bound is not None:
            return bound
    return None


def test_every_installed_activity_is_typed_by_its_own_models() -> None:
    """No ``Fault[Any, ...]``: each activity's type parameters are concrete models, the very ones
    the engine validates its ``with:`` (and a fault's revert data) against."""
    from chaoskit.drivers import registry

    loaded = registry.load()
    assert not loaded.broken
    kinds: list[tuple[str, type, dict[str, object]]] = [
        ("fault", contract.Fault, dict(loaded.faults)),
        ("probe", contract.Probe, dict(loaded.probes)),
        ("action", contract.Action, dict(loaded.actions)),
    ]
    for kind, base, items in kinds:
        for name, item in items.items():
            bound = _bound(type(item), base)
            assert bound is not None and bound[0] is not Any, (kind, name, bound)
            assert isinstance(bound[0], type) and issubclass(bound[0], contract.Args), (kind, name)
            assert bound[0] is item.args, (kind, name)  # type: ignore[attr-defined]
            if kind == "fault":
                assert bound[1] is item.revert_type, name  # type: ignore[attr-defined]
