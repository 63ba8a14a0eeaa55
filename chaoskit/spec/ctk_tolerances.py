"""Chaos Toolkit tolerances as chaoskit ``expect`` checks, with Chaos Toolkit's meaning: where each
kind of tolerance looks in an activity's output comes from its provider's entry (``ctk_providers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from chaoskit.spec import ctk_providers, paths

WHOLE_OUTPUT_JSONPATH = "chaoskit.spec.chaostoolkit:whole_output_jsonpath"
"""The check for a ``jsonpath`` tolerance without ``target``. Converted files name it: it stays."""


def expect(
    tolerance: Any, provider: ctk_providers.Provider, at: paths.Location, report: ctk_providers.Report
) -> JsonValue:
    """The ``expect:`` for a probe's ``tolerance`` (at ``at``); None, reported, when there is none."""
    if isinstance(tolerance, bool | int | float | str | list):
        return _plain(tolerance, provider)
    if not isinstance(tolerance, Mapping):
        report.issue(at, f"unsupported tolerance {tolerance!r}")
        return None
    kind = tolerance.get("type")
    path = _target(tolerance.get("target"), provider, (*at, "target"), report)
    if kind == "range":
        bounds = tolerance.get("range")
        if not isinstance(bounds, list) or len(bounds) != 2:
            report.issue((*at, "range"), "a range tolerance needs range: [low, high]")
            return None
        return _with_path(path or provider.number_at, {"between": bounds})
    if kind == "regex":
        pattern = tolerance.get("pattern")
        if not isinstance(pattern, str):
            report.issue(at, "a regex tolerance needs pattern:")
            return None
        return _with_path(path or provider.text_at, {"matches": pattern})
    if kind == "jsonpath":
        return _jsonpath(tolerance, path, provider, at, report)
    if kind == "probe":
        return _probe(tolerance, at, report)
    report.issue(
        (*at, "type"),
        f"unknown tolerance type {kind!r}; Chaos Toolkit tolerances are range, regex, jsonpath and probe",
    )
    return None


def _with_path(path: str | None, check: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {"path": path, **check} if path else check


def _plain(tolerance: bool | float | str | list[Any], provider: ctk_providers.Provider) -> JsonValue:
    if isinstance(tolerance, bool):
        return {"equals": tolerance}
    if isinstance(tolerance, int | float):
        return _with_path(provider.number_at, {"equals": tolerance})
    if isinstance(tolerance, str):
        return _with_path(provider.text_at, {"equals": tolerance})
    if (
        provider.number_at is None
        and len(tolerance) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in tolerance)
    ):
        # Chaos Toolkit reads a two-item list as an inclusive range for plain values.
        return {"between": tolerance}
    return _with_path(provider.number_at, {"in": tolerance})


def _jsonpath(
    tolerance: Mapping[str, Any],
    path: str | None,
    provider: ctk_providers.Provider,
    at: paths.Location,
    report: ctk_providers.Report,
) -> JsonValue:
    expression = tolerance.get("path")
    if not isinstance(expression, str):
        report.issue(at, "a jsonpath tolerance needs path:")
        return None
    if path is None and provider.output is not None:
        # Chaos Toolkit matches the path against its whole provider output, whose shape differs
        # from chaoskit's: a function rebuilds that shape at check time.
        arguments: dict[str, JsonValue] = {"path": expression, "provider": provider.type}
        if "expect" in tolerance:
            expected = tolerance["expect"]
            arguments["matches"] = expected if isinstance(expected, list) else [expected]
        elif "count" in tolerance:
            arguments["count"] = tolerance["count"]
        return {"call": WHOLE_OUTPUT_JSONPATH, "arguments": arguments}
    if path is not None and provider.parsed:
        path = provider.parsed.get(path, path)
    check: dict[str, JsonValue] = {"jsonpath": expression}
    if "expect" in tolerance:
        expected = tolerance["expect"]
        # Chaos Toolkit compares the list of matches with [expect] (or with expect, a list).
        if isinstance(expected, list):
            check.update({"count": len(expected), "in": expected})
        else:
            check.update({"count": 1, "equals": expected})
    elif isinstance(tolerance.get("count"), int):
        check["count"] = tolerance["count"]
    return _with_path(path, check)


def _probe(tolerance: Mapping[str, Any], at: paths.Location, report: ctk_providers.Report) -> JsonValue:
    provider = tolerance.get("provider")
    if not isinstance(provider, Mapping) or provider.get("type") != "python":
        report.issue(
            (*at, "provider"),
            "chaoskit runs probe tolerances with a python provider only; "
            "use {type: python, module: ..., func: ...}",
        )
        return None
    module, func = provider.get("module"), provider.get("func")
    if not isinstance(module, str) or not isinstance(func, str):
        report.issue((*at, "provider"), "a python provider needs module: and func:")
        return None
    arguments = dict(provider.get("arguments") or {})
    arguments.pop("value", None)
    check: dict[str, JsonValue] = {"call": f"{module}:{func}"}
    if arguments:
        check["arguments"] = arguments
    return check


def _target(
    target: Any, provider: ctk_providers.Provider, at: paths.Location, report: ctk_providers.Report
) -> str | None:
    if target is None:
        return None
    if not isinstance(target, str):
        report.issue(at, "expected text")
        return None
    if provider.targets is None:
        return target
    if target not in provider.targets:
        report.issue(
            at,
            f"unknown target {target!r} for a {provider.type} probe; "
            f"use one of {', '.join(provider.targets)}",
        )
        return None
    return provider.targets[target]
