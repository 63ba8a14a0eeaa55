"""Chaos Toolkit controls, translated: python controls run as Chaos Toolkit runs them
(``controls:``, see ``chaoskit.engine.controlling``), and ``chaosaddons.controls.safeguards``
become guards and preflight checks.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import JsonValue

from chaoskit.spec import paths

SAFEGUARDS = "chaosaddons.controls.safeguards"
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class Translator(Protocol):
    """What translating controls needs from the translator it is part of."""

    @property
    def document(self) -> dict[str, JsonValue]:
        """The chaoskit document being written."""
        ...

    @property
    def origins(self) -> dict[paths.Location, paths.Location]:
        """chaoskit path → Chaos Toolkit path."""
        ...

    @property
    def secret_names(self) -> Mapping[tuple[str, str], str]:
        """(scope, key) → chaoskit secret name."""
        ...

    def issue(self, at: paths.Location, message: str) -> None: ...

    def activity(
        self, entry: Any, at: paths.Location, target: paths.Location, *, in_hypothesis: bool
    ) -> list[JsonValue]:
        """The chaoskit steps for one Chaos Toolkit activity."""
        ...


def controls(into: Translator, declared: Any, at: paths.Location, *, activity: str | None = None) -> None:
    """``controls:`` at ``at``: safeguards become guards (probes with a ``frequency``) and
    preflight checks (the others, asked once before anything runs); other python controls run as
    Chaos Toolkit runs them. Refused, by name: a control whose module can't be imported, one of
    another provider type, and safeguards on an activity. ``activity``: the name of the activity
    they are declared on."""
    if not isinstance(declared, list):
        into.issue(at, "expected a list of controls")
        return
    for i, control in enumerate(declared):
        if not isinstance(control, Mapping):
            into.issue((*at, i), "expected a control: {name: ..., provider: {type: python, module: ...}}")
            continue
        provider = control.get("provider")
        module = provider.get("module") if isinstance(provider, Mapping) else None
        name = control.get("name")
        what = f"control {name!r}" + (f" ({module})" if isinstance(module, str) else "")
        if module == SAFEGUARDS and activity is None:
            assert isinstance(provider, Mapping)
            _safeguards(into, provider, (*at, i, "provider"))
            continue
        if module == SAFEGUARDS:
            into.issue(
                (*at, i),
                f"{what} on an activity can't run in chaoskit: declare the safeguards at the top "
                "level of the experiment (they become guards and preflight checks)",
            )
            continue
        converted = _control(into, control, what, (*at, i), activity)
        if converted is None:
            continue
        listed = into.document.setdefault("controls", [])
        assert isinstance(listed, list)
        if converted in listed:
            continue  # the same activity's controls, met again through a ref:
        into.origins[("controls", len(listed))] = (*at, i)
        listed.append(converted)


def _control(
    into: Translator, control: Mapping[str, Any], what: str, at: paths.Location, activity: str | None
) -> dict[str, JsonValue] | None:
    provider = control.get("provider")
    if not isinstance(provider, Mapping):
        into.issue(at, f"{what} needs provider: {{type: python, module: ...}}")
        return None
    kind = provider.get("type", "python")
    if kind != "python":
        into.issue(
            (*at, "provider", "type"),
            f"{what}: {kind!r} controls can't run in chaoskit (it runs python controls); remove "
            "it or run the experiment with Chaos Toolkit",
        )
        return None
    module = provider.get("module")
    if not isinstance(module, str) or not _MODULE.fullmatch(module):
        into.issue((*at, "provider", "module"), f"{what} needs module: a Python module path")
        return None
    if not _importable(module):
        into.issue(
            (*at, "provider", "module"),
            f"{what}: module {module!r} can't be imported; install the package that provides it "
            "in the environment chaoskit runs in, or remove the control",
        )
        return None
    converted: dict[str, JsonValue] = {
        "name": control["name"] if isinstance(control.get("name"), str) else module,
        "module": module,
    }
    arguments = provider.get("arguments")
    if arguments is not None and not isinstance(arguments, Mapping):
        into.issue((*at, "provider", "arguments"), "expected arguments as a mapping of name: value")
        return None
    if arguments:
        converted["arguments"] = dict(arguments)
    scope = control.get("scope")
    if scope is not None:
        if scope not in ("before", "after"):
            into.issue((*at, "scope"), f"unknown control scope {scope!r}; use before or after")
            return None
        converted["scope"] = scope
    scopes = provider.get("secrets")
    if scopes is not None:
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            into.issue((*at, "provider", "secrets"), "expected a list of secret scopes")
            return None
        converted["secrets"] = [
            name for (scope_name, _), name in into.secret_names.items() if scope_name in scopes
        ]
    if activity is not None:
        converted["activity"] = activity
    return converted


def _safeguards(into: Translator, provider: Mapping[str, Any], at: paths.Location) -> None:
    arguments = provider.get("arguments")
    probes = arguments.get("probes") if isinstance(arguments, Mapping) else None
    if not isinstance(probes, list):
        into.issue(at, "safeguards need arguments: {probes: [...]}")
        return
    for j, probe in enumerate(probes):
        _safeguard(into, probe, (*at, "arguments", "probes", j))


def _safeguard(into: Translator, probe: Any, at: paths.Location) -> None:
    frequency = probe.get("frequency") if isinstance(probe, Mapping) else None
    section = "guards" if frequency is not None else "preflight"
    listed = into.document.setdefault(section, [])
    assert isinstance(listed, list)
    if isinstance(probe, Mapping):
        probe = {k: v for k, v in probe.items() if k not in ("frequency", "background")}
    # Anything else is left to the activity's translation, which says what an activity must be.
    steps = into.activity(probe, at, (section, len(listed)), in_hypothesis=True)
    for step in steps:
        if isinstance(step, dict) and frequency is not None:
            step["interval"] = frequency
    listed.extend(steps)


def _importable(module: str) -> bool:
    """Whether ``module`` can be found. Only its parent packages are imported: the module itself is
    the user's code, which the run imports once, when it starts."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False  # a parent package that is missing, or one that fails to import
