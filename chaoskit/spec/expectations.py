"""Checking a probe's output against its ``expect``: each check says what it expected and what it got.

A check never raises on odd output (a missing path, text where a number was expected); it fails
with a message a person can act on.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from chaoskit import pyrefs
from chaoskit.spec import models, paths


@dataclass(frozen=True)
class Check:
    """The outcome of one ``expect``."""

    ok: bool
    expected: str
    """Human: ``status equals 200``, ``latency_ms.p99 below 200``."""
    got: JsonValue
    """The value at the path (the matches, for a JSONPath)."""
    message: str
    """``expected latency_ms.p99 below 200, got 350.2``; for a pass, the same without "got"."""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 200 else repr(value[:197] + "...")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    try:
        text = json.dumps(value, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _text(value: JsonValue) -> str:
    """What ``matches`` searches: text as is, mappings and lists as JSON, anything else as ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _equal(a: JsonValue, b: JsonValue) -> bool:
    # JSON has one number type: 200 equals 200.0, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _describe(expect: models.Expect) -> list[tuple[str, str]]:
    """(check name, human phrase) for every check the expect gives."""
    phrases: list[tuple[str, str]] = []
    fields = expect.model_fields_set
    if "equals" in fields:
        phrases.append(("equals", f"equals {_show(expect.equals)}"))
    if expect.below is not None:
        phrases.append(("below", f"below {_show(expect.below)}"))
    if expect.above is not None:
        phrases.append(("above", f"above {_show(expect.above)}"))
    if expect.between is not None:
        phrases.append(("between", f"between {_show(expect.between[0])} and {_show(expect.between[1])}"))
    if expect.in_ is not None:
        phrases.append(("in", f"in {_show(expect.in_)}"))
    if expect.matches is not None:
        phrases.append(("matches", f"matches /{expect.matches}/"))
    if expect.call is not None:
        phrases.append(("call", f"accepted by {expect.call}()"))
    return phrases


def _one(name: str, expect: models.Expect, value: JsonValue) -> str | None:
    """Why ``value`` fails check ``name``, or None when it holds."""
    if name == "equals":
        return None if _equal(value, expect.equals) else ""
    if name == "in":
        return None if any(_equal(value, item) for item in expect.in_ or []) else ""
    if name == "matches":
        return None if re.search(expect.matches or "", _text(value)) else ""
    if name == "call":
        return _call(expect, value)
    number = _number(value)
    if number is None:
        return "not a number"
    if name == "below":
        return None if expect.below is not None and number < expect.below else ""
    if name == "above":
        return None if expect.above is not None and number > expect.above else ""
    low, high = expect.between or (0.0, 0.0)
    return None if low <= number <= high else ""


def _call(expect: models.Expect, value: JsonValue) -> str | None:
    try:
        function = pyrefs.resolve(expect.call or "")
    except pyrefs.Unresolvable as e:
        return f"can't load {expect.call}: {e}"
    try:
        return None if function(value=value, **expect.arguments) else "it returned a false value"
    except Exception as e:
        return f"{expect.call}() raised {type(e).__name__}: {e}"


def check(expect: models.Expect, value: JsonValue) -> Check:
    """Whether ``value`` (a probe's output) meets every check in ``expect``."""
    where = expect.path or "output"
    target: JsonValue = value
    if expect.path:
        try:
            target = paths.lookup(value, paths.parse(expect.path))
        except paths.PathError as e:
            expected = " and ".join(p for _, p in _describe(expect)) or "to exist"
            return Check(False, f"{where} {expected}", None, f"expected {where} {expected}, but {e}")
    phrases = _describe(expect)
    if expect.jsonpath is not None:
        return _check_jsonpath(expect, target, where, phrases)
    expected = f"{where} {' and '.join(p for _, p in phrases)}"
    for name, phrase in phrases:
        why = _one(name, expect, target)
        if why is not None:
            reason = f" ({why})" if why else ""
            return Check(False, expected, target, f"expected {where} {phrase}, got {_show(target)}{reason}")
    return Check(True, expected, target, f"{expected}: {_show(target)}")


def _check_jsonpath(
    expect: models.Expect, target: JsonValue, where: str, phrases: list[tuple[str, str]]
) -> Check:
    document = target
    if isinstance(document, str):
        # Chaos Toolkit reads JSON text (a process's stdout, a body) before applying the path.
        with contextlib.suppress(json.JSONDecodeError):
            document = json.loads(document)
    matches = paths.jsonpath_find(document, expect.jsonpath or "$")
    subject = f"{where} {expect.jsonpath}"
    parts = [p for _, p in phrases]
    if expect.count is not None:
        parts.insert(0, f"has {expect.count} match{'es' if expect.count != 1 else ''}")
    expected = f"{subject} {' and '.join(parts) or 'has a match'}"
    got: JsonValue = list(matches)
    if expect.count is not None and len(matches) != expect.count:
        return Check(False, expected, got, f"expected {expected}, got {len(matches)} matches: {_show(got)}")
    if not matches and expect.count != 0:
        return Check(False, expected, got, f"expected {expected}, got no match in {_show(document)}")
    for match in matches:
        for name, phrase in phrases:
            why = _one(name, expect, match)
            if why is not None:
                reason = f" ({why})" if why else ""
                return Check(False, expected, got, f"expected {subject} {phrase}, got {_show(match)}{reason}")
    return Check(True, expected, got, f"{expected}: {_show(got)}")


def check_all(expects: Sequence[models.Expect], value: JsonValue) -> list[Check]:
    """One ``Check`` per expect; the probe holds when every one is ``ok``."""
    return [check(expect, value) for expect in expects]
