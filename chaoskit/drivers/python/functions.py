"""``python.call``: call ``package.module:function`` with keyword arguments and return its
JSON-serialisable result - for one-off needs no driver covers.

The ``module:function`` shape is checked when the experiment is validated, and so is that the
top-level package can be found (without importing it); the module is imported only when the step
runs.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import Field, JsonValue, field_validator, model_validator

from chaoskit import jsonvalues, pyrefs
from chaoskit.drivers import contract
from chaoskit.errors import DriverError


class CallArgs(contract.Args):
    function: str
    """What to call, as ``package.module:function`` (or ``module:Class.method``)."""
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    """Keyword arguments for the call."""
    dialect: Literal["chaoskit", "chaostoolkit"] = "chaoskit"
    """Set on steps translated from a Chaos Toolkit file: as ``chaos validate`` does, validation
    then imports the module and checks that the function exists and the arguments fit it."""

    @model_validator(mode="after")
    def _function_fits(self) -> Self:
        if self.dialect != "chaostoolkit":
            return self
        try:
            function = resolve(self.function)
        except DriverError as e:
            raise ValueError(e.message) from None
        try:
            signature = inspect.signature(function)
        except ValueError:
            return self  # a builtin without a signature: the call itself will tell
        # Chaos Toolkit passes these two itself when the function takes them.
        given = {name: None for name in ("configuration", "secrets") if name in signature.parameters}
        try:
            signature.bind(**{**given, **self.arguments})
        except TypeError as e:
            fits = f"{function.__name__}{signature}"
            raise ValueError(f"{self.function}: the arguments don't fit {fits}: {e}") from None
        return self

    @field_validator("function")
    @classmethod
    def _shape(cls, value: str) -> str:
        if not pyrefs.SHAPE.fullmatch(value):
            raise ValueError(f"write the function as package.module:function, got {value!r}")
        top = value.split(":", 1)[0].split(".", 1)[0]
        if importlib.util.find_spec(top) is None:
            raise ValueError(f"no module named {top!r} can be imported (is it installed, or on PYTHONPATH?)")
        return value


def resolve(spec: str) -> Callable[..., Any]:
    """The callable ``spec`` names; a ``DriverError`` saying what is missing otherwise."""
    try:
        return pyrefs.resolve(spec)
    except pyrefs.Unresolvable as e:
        raise DriverError(f"python.call {spec}: {e}") from e


def call(args: CallArgs) -> contract.JsonValue:
    function = resolve(args.function)
    try:
        inspect.signature(function).bind(**args.arguments)
    except TypeError as e:
        raise DriverError(f"python.call {args.function}: the arguments don't fit: {e}") from e
    except ValueError:
        pass  # some builtins have no signature to check against; the call itself will tell
    try:
        result = function(**args.arguments)
    except Exception as e:
        raise DriverError(f"python.call {args.function} raised {type(e).__name__}: {e}") from e
    try:
        return jsonvalues.strict(result, "the result")
    except ValueError as e:
        raise DriverError(
            f"python.call {args.function}: {e}",
            hint="return only dicts, lists, text, numbers, booleans or None",
        ) from e


class CallProbe(contract.Probe[CallArgs], args=CallArgs):
    name = "python.call"
    summary = "Call package.module:function with keyword arguments; its JSON result is the output."

    def run(self, args: CallArgs, ctx: contract.RunContext) -> contract.JsonValue:
        return call(args)


class CallAction(contract.Action[CallArgs], args=CallArgs):
    name = "python.call"
    summary = "Call package.module:function with keyword arguments, for a change no driver makes."

    def run(self, args: CallArgs, ctx: contract.RunContext) -> contract.ActionResult:
        return contract.ActionResult(output=call(args))
