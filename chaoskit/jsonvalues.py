"""Python values as JSON values: the one normaliser for what drivers, user functions and ``--var``
hand chaoskit. Every layer may import it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import JsonValue

Refuse = Callable[[object, str], JsonValue]
"""What to do with a part that is not JSON (given it and where it is): return a JSON value in its
place, or raise ``ValueError``."""


def lenient(value: object) -> JsonValue:
    """``value`` as JSON, every part that is not JSON as its text (outputs of drivers, which should
    return JSON, are journaled whatever they return)."""
    return _Walk(lambda item, _: str(item), text_keys=True, nonfinite=True)(value, "the value")


def strict(
    value: object, where: str = "the value", *, text_keys: bool = False, nonfinite: bool = False
) -> JsonValue:
    """``value`` as JSON (tuples become lists); a ``ValueError`` naming the first part that is not.
    ``text_keys``: mapping keys become text rather than being refused; ``nonfinite``: NaN and the
    infinities are kept (for a validator to refuse in its own words) rather than refused."""
    return _Walk(_refuse, text_keys=text_keys, nonfinite=nonfinite)(value, where)


def _refuse(value: object, where: str) -> JsonValue:
    kind = type(value)
    raise ValueError(f"{where} is a {kind.__module__}.{kind.__qualname__}, which is not JSON")


@dataclass(frozen=True)
class _Walk:
    other: Refuse
    text_keys: bool
    nonfinite: bool

    def __call__(self, value: object, where: str) -> JsonValue:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            if not self.nonfinite and (math.isnan(value) or math.isinf(value)):
                raise ValueError(f"{where} is {value}, which JSON can't hold")
            return value
        if isinstance(value, list | tuple):
            return [self(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, Mapping):
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                if not isinstance(key, str) and not self.text_keys:
                    raise ValueError(f"{where} has a key of type {type(key).__name__}; JSON keys are text")
                out[str(key)] = self(item, f"{where}[{str(key)!r}]")
            return out
        return self.other(value, where)
