"""Functions that ``expect: {call: ...}`` and converted Chaos Toolkit probe tolerances call in tests."""

from __future__ import annotations

from typing import Any


def contains(value: Any, needle: str) -> bool:
    return needle in str(value)


def at_least(value: Any, minimum: int) -> bool:
    return isinstance(value, int | float) and value >= minimum


def explode(value: Any) -> bool:
    raise RuntimeError(f"cannot judge {value!r}")
