"""The python driver: calling real functions by ``module:function``, and the errors users see."""

from __future__ import annotations

import pydantic
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.python import driver as python_driver

DRIVER = python_driver()
PROBE = next(p for p in DRIVER.probes if p.name == "python.call")
ACTION = next(a for a in DRIVER.actions if a.name == "python.call")
HERE = __name__


def add(a: int, b: int = 1) -> dict[str, object]:
    return {"sum": a + b, "pair": (a, b)}


def gives_a_set() -> object:
    return {"nested": [{1, 2}]}


def fails() -> None:
    raise RuntimeError("the database is read-only")


class Checks:
    @staticmethod
    def healthy(service: str) -> bool:
        return service == "checkout"


NOT_CALLABLE = 42


def ctx() -> contract.RunContext:
    return contract.RunContext(run_id="test")


def call(function: str, **arguments: object) -> contract.JsonValue:
    return PROBE.run(PROBE.args(function=function, arguments=arguments), ctx())


def test_calls_with_keyword_arguments_and_returns_json() -> None:
    assert call(f"{HERE}:add", a=2, b=5) == {"sum": 7, "pair": [2, 5]}
    assert call(f"{HERE}:Checks.healthy", service="checkout") is True
    assert call("os.path:join", a="x") == "x"


def test_the_action_returns_the_same_output() -> None:
    result = ACTION.run(ACTION.args(function=f"{HERE}:add", arguments={"a": 1}), ctx())
    assert result.output == {"sum": 2, "pair": [1, 1]} and result.undo is None


def test_non_json_results_say_which_type_and_where() -> None:
    with pytest.raises(
        errors.DriverError, match=r"the result\['nested'\]\[0\] is a builtins.set, which is not JSON"
    ):
        call(f"{HERE}:gives_a_set")


def test_errors_name_the_function_and_what_went_wrong() -> None:
    with pytest.raises(errors.DriverError, match=r"raised RuntimeError: the database is read-only"):
        call(f"{HERE}:fails")
    with pytest.raises(errors.DriverError, match=r"arguments don't fit"):
        call(f"{HERE}:add", c=3)
    with pytest.raises(errors.DriverError, match=r"has no attribute 'nope'"):
        call(f"{HERE}:nope")
    with pytest.raises(errors.DriverError, match=r"is of type int, not a function"):
        call(f"{HERE}:NOT_CALLABLE")
    with pytest.raises(errors.DriverError, match=r"can't import tests.unit.drivers.no_such_module"):
        call("tests.unit.drivers.no_such_module:f")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("just_a_module", "package.module:function"),
        ("a.b:c:d", "package.module:function"),
        ("no_such_package_ck.mod:f", "no module named 'no_such_package_ck'"),
    ],
)
def test_bad_function_names_fail_validation(function: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        PROBE.args(function=function)
